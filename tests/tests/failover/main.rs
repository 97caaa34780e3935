//! Issue #11 part 4: failover without losing an acknowledged order.
//!
//! Redis replicates asynchronously: a master that dies can take its last acknowledged writes
//! with it, and the replica promoted in its place sells their units again. With
//! `redis.replica_acks = n` every reservation batch waits for `n` replicas before any answer,
//! and a batch they do not hold is answered 503 `outcome_unknown` (its token retry tells the
//! truth). The faults are real: a replica stopped with SIGSTOP (its link cut, so nothing reaches
//! it), a master killed with SIGKILL under load, a real failover of a real Redis Cluster.
//!
//! # Layout
//! - `support` — reading the cluster as it is now, waiting for a promotion, settling a purchase
//!   through 503s, and the ids an answer carries.
//! - `replica_acks` — one Redis and a paused replica: its batches answered `outcome_unknown`.
//! - `silenced` — a failover with a silenced replica, with and without `replica_acks`.
//! - `master_kill` — a master SIGKILLed under load from two gateway processes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod master_kill;
mod replica_acks;
mod silenced;
mod support;

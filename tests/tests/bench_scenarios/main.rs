//! The bench's other scenarios against a real gateway and Redis: `steady` (open loop, mixed
//! requests), the lifecycle mix after a flash, `compare`, and a self-contained `rehearse`.
//!
//! # Layout
//! - `support` — a config on the shared Redis and the bench's command-line pieces.
//! - `steady` — the open-loop mix, and a stall charged to every request due during it.
//! - `lifecycle_mix` — payments, cancellations and expiries after a flash.
//! - `compare` — the gateway against the reference servers.
//! - `rehearse` — a flash on its own Redis (or cluster) and gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod compare;
mod lifecycle_mix;
mod rehearse;
mod steady;
mod support;

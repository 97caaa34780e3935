//! Issue #11 part 3: a hot campaign's stock split into buckets on a real Redis Cluster (three
//! masters, a replica each). Every unit sells exactly once, no buyer goes over the limit, every
//! bucket drains, and Σ bucket stock + Σ pending transfers + units taken = total whenever it is
//! sampled — with the gateway killed while transfers are in flight, with units returned by
//! cancellations and expiries, and with three gateways selling at once.
//!
//! # Layout
//! - `support` — bucketed campaigns, the purchase load, and what its answers sold.
//! - `before_buckets` — a campaign from before buckets keeps its keys.
//! - `crash` — a gateway killed while transfers are in flight.
//! - `drain` — one gateway sells eight buckets dry, conserved whenever sampled.
//! - `returns` — cancelled and expired units back in their bucket, sold again.
//! - `shared_sale` — three gateways sell one bucketed campaign out.
//! - `transit` — units on their way to a dry home bucket are sold, not refused.
//!
//! One test a module, and the modules' names sort in the order the tests' names did before
//! they had modules: the harness starts tests in name order, two at a time on a small machine,
//! and in this order the two heavy loads (`drain`, `shared_sale`) do not meet at their peaks
//! (in another, `shared_sale` saw Redis time out).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod before_buckets;
mod crash;
mod drain;
mod returns;
mod shared_sale;
mod support;
mod transit;

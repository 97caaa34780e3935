//! Issue #11 part 3: a hot campaign's stock split into buckets on a real Redis Cluster (three
//! masters, a replica each). Every unit sells exactly once, no buyer goes over the limit, every
//! bucket drains, and Σ bucket stock + Σ pending transfers + units taken = total whenever it is
//! sampled — with the gateway killed while transfers are in flight, with units returned by
//! cancellations and expiries, and with three gateways selling at once.
//!
//! # Layout
//! - `support` — bucketed campaigns, the purchase load, and what its answers sold.
//! - `sale` — one gateway and three gateways selling a bucketed campaign out, conserved.
//! - `transfers` — transfers cut by a killed gateway, and units in flight to a dry bucket.
//! - `returns` — cancelled and expired units back in their bucket, sold again.
//! - `upgrade` — a campaign from before buckets keeps its keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod returns;
mod sale;
mod support;
mod transfers;
mod upgrade;

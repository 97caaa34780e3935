//! The purchase pipeline's stages, cheapest first (ARCHITECTURE.md §1).
//!
//! # Layout
//! - [`limits`]: global, per-IP and per-user token buckets (stages 1 and 3).
//! - [`catalog`]: the known campaigns behind a Bloom filter; window and sold-out mark
//!   (stages 5–7).
//! - [`catalog_load`]: the configured campaigns checked against Redis and the store, opened or
//!   updated, and made a catalog (at start and at each reload).
//! - [`reserver`]: batches reservations into single Redis script calls (stage 8).
//! - [`replicas`]: with `redis.replica_acks`, a batch is answered only once replicas hold it.
//! - [`reserve_error`]: why a reservation got no decision, shared by the two above.
//! - [`handoff`]: the bounded queue to the persistence workers (stage 9).
//!
//! Identity (stage 2) is [`crate::auth`], body parsing (stage 4) [`crate::http::body`]; the
//! stages are put in order by [`crate::handlers::purchase`].

pub mod catalog;
pub mod catalog_load;
pub mod handoff;
pub mod limits;
pub mod replicas;
pub mod reserve_error;
pub mod reserver;

//! Stock state of flash-sale campaigns in Redis.
//!
//! Everything that reads or changes a campaign's stock lives here, so that the rules behind
//! invariants 1–4 (no oversell, per-user limits, no lost order, idempotent retries) sit in one
//! crate, beside the Lua scripts in `lua/` that enforce them atomically.
//!
//! The design as built (the key layout in §2, buckets in §7): `docs/ARCHITECTURE.md`.
//!
//! # Layout
//! - [`connection`]: the one async connection every caller shares (one Redis today).
//! - [`keys`]: the Redis key layout of a campaign and its stock buckets (one slot per bucket).
//! - [`buckets`]: a hot campaign's stock over several buckets: transfers, repair, census.
//! - [`held`]: how many orders Redis holds of a campaign (fewer than the store: Redis went
//!   back in time).
//! - [`scripts`]: the embedded Lua scripts, hashed once, EVALSHA with NOSCRIPT fallback.
//! - [`campaign`]: loading a campaign without ever resetting live stock; reading stock.
//! - [`rebuild`]: noticing that Redis went back in time, and rebuilding a campaign from the store.
//! - [`opening`]: the ledger's permit, without which no campaign's stock is ever created.
//! - [`reserve`]: the commit point of a purchase, batched.
//! - [`replication`]: waiting until replicas hold a batch's orders (failover without loss).
//! - [`lifecycle`]: pay, cancel, expire: every change after the reservation, atomically.
//! - [`lookup`]: one order read back, for idempotent retries.
//! - [`journal`]: orders not yet in the store; read, ack (blocking, for persistence threads).
//! - [`presence`]: whether Redis still knows a campaign (the store-side sweep).
//! - [`retire`]: whether Redis still holds anything unsettled of a campaign, and removing it.
//! - [`node`]: the lease on a gateway's node id and the mark of the ids minted under it.
//! - [`record`]: the compact order record the scripts write.
//! - [`order`]: the order shared by Redis, the store and the API.
//! - [`health`]: whether Redis keeps what the scripts write (its eviction policy, on every
//!   master of a Cluster), and whether a Cluster is whole (its state).
//! - [`error`]: failures to reach or understand Redis.
#![forbid(unsafe_code)]

pub mod buckets;
pub mod campaign;
pub mod connection;
pub mod error;
pub mod health;
pub mod held;
pub mod journal;
pub mod keys;
pub mod lifecycle;
pub mod lookup;
pub mod node;
pub mod opening;
pub mod order;
pub mod presence;
pub mod rebuild;
pub mod record;
pub mod replication;
pub mod reserve;
pub mod retire;
pub mod scripts;

pub use campaign::{
    CampaignSpec, Loaded, StockChange, apply_settings, open_campaign, remaining_stock,
    set_stock_total, units_left,
};
pub use connection::{BlockingClient, BlockingConnection, StockConnection, Timeouts};
pub use error::StockError;
pub use health::{
    EvictionPolicy, MasterPolicy, PolicyError, cluster_state, eviction_policies, eviction_policy,
};
pub use held::orders_held;
pub use keys::{CampaignKeys, CampaignLayout, MAX_BUCKETS};
pub use lifecycle::{Expired, PaymentOutcome, PaymentRecord, Transition};
pub use opening::{OpenPermit, SalesLedger};
pub use order::{Order, OrderStatus};
pub use rebuild::{Rebuilt, rebuild_campaign};
pub use replication::wait_for_replicas;
pub use reserve::{Reservation, ReserveOutcome, reserve_batch};
pub use scripts::Scripts;

//! Issue #13 part 1: a settled campaign retired from Redis by the gateway. Every order reads
//! the same before and after (by id and in the owner's list), the campaign view keeps its final
//! counts, payments get their first answers and a late one is recorded, Redis gives its memory
//! back, and neither a restart nor a reload gives the campaign stock again — on SQLite and on
//! PostgreSQL, and with the gateway SIGKILLed in the middle of a retirement.
//!
//! # Layout
//! - `sale` — the settled sale on a private Redis, and the scenario changes made to it.
//! - `checks` — every read of the campaign, the ledger's word, and the store's row counts.
//! - `compare` — retired on SQLite and PostgreSQL: reads, payments, memory, restart, reload.
//! - `kill` — the gateway SIGKILLed mid-retirement and mid-archive.
//! - `store_gaps` — orders the store lacks with an empty journal, written by the retirement.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod checks;
mod compare;
mod kill;
mod sale;
mod store_gaps;

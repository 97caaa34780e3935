//! Shared by the `lua/lifecycle.lua` tests: a campaign with one reserved order, and what they
//! read back from Redis.

use flashgate_stock::{CampaignKeys, Order, Reservation, ReserveOutcome, Scripts, reserve_batch};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

pub const T0: i64 = 1_800_000_000_000;
pub const TIMEOUT: i64 = 60_000; // common::spec's payment timeout
pub const PRICE: i64 = 1999;

/// A campaign of 10 units (limit 3) where `user` holds an order of `qty` units reserved at T0.
pub async fn reserved(
    user: &str,
    qty: u32,
) -> (MultiplexedConnection, Scripts, CampaignKeys, Order) {
    let mut conn = super::connection().await;
    let (scripts, keys) = super::loaded_campaign(&mut conn, "life", 10, 3).await;
    let batch = [Reservation {
        user_id: user,
        order_id: 42,
        quantity: qty,
    }];
    let mut out = reserve_batch(&mut conn, &scripts, &keys, T0, &batch)
        .await
        .unwrap();
    let ReserveOutcome::Accepted(order) = out.remove(0) else {
        panic!("not accepted")
    };
    let _: () = conn.del(&keys.journal).await.unwrap(); // as if persisted
    (conn, scripts, keys, order)
}

pub async fn units_of(conn: &mut MultiplexedConnection, keys: &CampaignKeys, user: &str) -> String {
    conn.hget(&keys.buyers, user).await.unwrap()
}

/// Every key a lifecycle action may write, as `DUMP` serialises it (None: absent): equal
/// snapshots mean byte-for-byte the same state.
pub async fn snapshot(
    conn: &mut MultiplexedConnection,
    keys: &CampaignKeys,
) -> Vec<Option<Vec<u8>>> {
    let mut all = Vec::new();
    for key in [
        &keys.stock,
        &keys.buyers,
        &keys.orders,
        &keys.deadlines,
        &keys.journal,
        &keys.payments,
    ] {
        let dumped: Option<Vec<u8>> = redis::cmd("DUMP").arg(key).query_async(conn).await.unwrap();
        all.push(dumped);
    }
    all
}

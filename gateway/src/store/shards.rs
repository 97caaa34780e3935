//! How orders are spread over tables, the same in every backend: the order id's low
//! `shard_bits` (its user's shard gene) pick one of `2^shard_bits` tables, so an order and all
//! other orders of its user are in one table.

/// Largest accepted `shard_bits`: the shard gene of an order id is 4 bits wide.
pub const MAX_SHARD_BITS: u8 = 4;

/// Table names, indexed by shard; `&'static` so routing an order allocates nothing.
pub(super) const TABLES: [&str; 1 << MAX_SHARD_BITS] = [
    "orders_00",
    "orders_01",
    "orders_02",
    "orders_03",
    "orders_04",
    "orders_05",
    "orders_06",
    "orders_07",
    "orders_08",
    "orders_09",
    "orders_10",
    "orders_11",
    "orders_12",
    "orders_13",
    "orders_14",
    "orders_15",
];

/// Every column, in the order [`super::row::RawOrder`] is read from.
pub(super) const COLUMNS: &str = "order_id, campaign_id, sku, user_id, quantity, \
    unit_price_cents, amount_cents, status, version, created_at, pay_deadline, paid_at, updated_at";

/// The shard (table index) of `order_id` when there are `2^shard_bits` tables.
pub(super) fn shard_of(order_id: u64, shard_bits: u8) -> usize {
    // The mask keeps the value below 16, so the cast cannot truncate.
    (order_id & ((1u64 << shard_bits.min(MAX_SHARD_BITS)) - 1)) as usize
}

/// The table holding `order_id` when there are `2^shard_bits` tables.
#[cfg(test)]
pub(super) fn table_of(order_id: u64, shard_bits: u8) -> &'static str {
    TABLES[shard_of(order_id, shard_bits)]
}

/// Routing depends on `shard_bits`: a store opened with another value than it was created with
/// would look in the wrong tables. `recorded` is the value the store holds; returns whether
/// none is recorded yet (the caller records `shard_bits`).
///
/// # Errors
/// [`super::StoreError::Misconfigured`] when the recorded value differs.
pub(super) fn shard_bits_unrecorded(
    recorded: Option<i64>,
    shard_bits: u8,
) -> Result<bool, super::StoreError> {
    match recorded {
        Some(bits) if bits != i64::from(shard_bits) => Err(super::StoreError::Misconfigured(
            format!("the store was created with shard_bits {bits}, opened with {shard_bits}"),
        )),
        Some(_) => Ok(false),
        None => Ok(true),
    }
}

/// Where a page of overdue orders starts, as bound to SQL: after `after`'s (deadline, id), or
/// from the very first.
pub(super) fn page_start(after: Option<(i64, u64)>) -> (i64, i64) {
    after.map_or((i64::MIN, i64::MIN), |(deadline, id)| {
        (deadline, i64::try_from(id).unwrap_or(i64::MAX))
    })
}

/// The first `limit` of every table's first `limit` orders, in (deadline, id) order: the
/// first `limit` of all tables, since no table can contribute more.
pub(super) fn first_by_deadline(
    mut orders: Vec<flashgate_stock::Order>,
    limit: usize,
) -> Vec<flashgate_stock::Order> {
    orders.sort_unstable_by_key(|o| (o.pay_deadline_ms, o.order_id));
    orders.truncate(limit);
    orders
}

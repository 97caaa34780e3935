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

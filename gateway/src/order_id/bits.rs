//! The id's bit layout: the width and place of each part, reading the parts back out of an id,
//! and the user's shard gene that fills the lowest bits.

/// Bits of the user's shard gene; the order store has `2^GENE_BITS` shards.
pub const GENE_BITS: u32 = 4;
/// Bits of the node id: up to 256 gateway instances mint ids at once.
pub const NODE_BITS: u32 = 8;
/// Bits of the per-millisecond sequence: 1024 ids per node per millisecond.
pub const SEQUENCE_BITS: u32 = 10;
/// Bits of milliseconds since [`EPOCH_UNIX_MS`]: ~69.7 years.
pub const TIMESTAMP_BITS: u32 = 41;
/// The custom epoch, 2026-01-01T00:00:00Z, in Unix milliseconds.
pub const EPOCH_UNIX_MS: i64 = 1_767_225_600_000;
/// The largest node id that fits in [`NODE_BITS`].
pub const MAX_NODE_ID: u16 = (1 << NODE_BITS) - 1;

pub(super) const MAX_GENE: u8 = (1 << GENE_BITS) - 1;
pub(super) const MAX_SEQUENCE: u64 = (1 << SEQUENCE_BITS) - 1;
pub(super) const MAX_TIMESTAMP: u64 = (1 << TIMESTAMP_BITS) - 1;
pub(super) const SEQUENCE_SHIFT: u32 = GENE_BITS;
pub(super) const NODE_SHIFT: u32 = GENE_BITS + SEQUENCE_BITS;
pub(super) const TIMESTAMP_SHIFT: u32 = GENE_BITS + SEQUENCE_BITS + NODE_BITS;

// The sign bit must stay zero so ids are positive `i64`s.
const _: () = assert!(TIMESTAMP_SHIFT + TIMESTAMP_BITS == 63);

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The shard gene of a user: which of the `2^GENE_BITS` order shards holds their orders.
///
/// A user id made only of ASCII digits that fits a `u64` uses `id mod 2^GENE_BITS` (so numeric
/// ids spread evenly and the gene is easy to compute elsewhere, e.g. in SQL); any other id uses
/// FNV-1a 64 of its UTF-8 bytes `mod 2^GENE_BITS`. The numeric rule is spelled out by hand rather
/// than delegated to `str::parse`, which also accepts a leading `+`.
///
/// **This function must never change.** Stored orders are routed by the gene baked into their
/// ids; a different answer for the same user sends their queries to the wrong shard. It is
/// deliberately independent of process, platform and `std`'s (randomly seeded) hashers.
pub fn shard_gene(user_id: &str) -> u8 {
    let mask = u64::from(MAX_GENE);
    let gene = match parse_decimal_u64(user_id) {
        Some(n) => n & mask,
        None => fnv1a64(user_id.as_bytes()) & mask,
    };
    // Masked to GENE_BITS (< 8) bits above, so this never truncates.
    gene as u8
}

/// The shard gene carried in an order id.
pub fn gene_of(order_id: u64) -> u8 {
    (order_id & u64::from(MAX_GENE)) as u8
}

/// The node id that minted an order id.
pub fn node_of(order_id: u64) -> u16 {
    ((order_id >> NODE_SHIFT) & u64::from(MAX_NODE_ID)) as u16
}

/// When an order id was minted, in Unix milliseconds.
pub fn timestamp_ms_of(order_id: u64) -> i64 {
    // At most 2^41 - 1 after the shift (the sign bit is zero), so the cast is lossless.
    ((order_id >> TIMESTAMP_SHIFT) & MAX_TIMESTAMP) as i64 + EPOCH_UNIX_MS
}

#[cfg(test)]
pub(super) fn sequence_of(order_id: u64) -> u64 {
    (order_id >> SEQUENCE_SHIFT) & MAX_SEQUENCE
}

fn parse_decimal_u64(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u64, |acc, b| {
        let digit = b.is_ascii_digit().then(|| u64::from(b - b'0'))?;
        acc.checked_mul(10)?.checked_add(digit)
    })
}

pub(super) fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET_BASIS, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

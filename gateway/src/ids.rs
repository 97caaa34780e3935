//! Which identifiers may become part of a Redis key or a record.
//!
//! Campaign ids, SKUs and user ids end up inside key names (`fg:{campaign}:…`) and inside the
//! `|`-separated order record, so they are held to a short, plain alphabet before they get there.

/// Longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// Whether `id` is 1..=64 bytes of `[A-Za-z0-9_.:@-]`: no braces (hash tags), no `|` (records),
/// no spaces or control characters.
pub fn is_key_safe(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'@' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_ids_and_rejects_key_breakers() {
        assert!(is_key_safe("user-42@shop.example"));
        assert!(is_key_safe("PHONE_X.128"));
        for bad in ["", "a{b}", "a|b", "a b", "é", &"x".repeat(65)] {
            assert!(!is_key_safe(bad), "{bad:?}");
        }
    }
}

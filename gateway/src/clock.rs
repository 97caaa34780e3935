//! Wall-clock time in the units the scripts, records and tokens use.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix milliseconds. A clock before 1970 reads as 0, which every window check treats as "not
/// started": failing closed.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Unix seconds (token expiries).
pub fn now_s() -> i64 {
    now_ms() / 1000
}

/// The last instant RFC 3339 can write with four year digits (9999-12-31T23:59:59.999Z).
const LAST_WRITABLE_MS: i64 = 253_402_300_799_999;

/// `ms` as an RFC 3339 UTC timestamp with milliseconds, as the API shows times. Out-of-range
/// values are clamped, never a panic.
pub fn rfc3339(ms: i64) -> String {
    let ms = ms.clamp(0, LAST_WRITABLE_MS);
    let time = UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(time).to_string()
}

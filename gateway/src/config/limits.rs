//! `[limits]`: the token buckets in front of Redis (the node, a client IP, a user, the
//! payment callbacks).

use std::num::NonZeroU32;
use std::time::Duration;

use super::checks::{Errors, MS};
use super::raw::{RawLimits, RawRateLimit};

/// `[limits]`: token buckets checked before any Redis work. `None` means no limit.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsConfig {
    /// One bucket for the whole node.
    pub global: Option<RateLimit>,
    /// One bucket per client IP.
    pub per_ip: Option<RateLimit>,
    /// One bucket per authenticated user.
    pub per_user: Option<RateLimit>,
    /// One bucket for every payment callback of the node, checked before the body is read
    /// (default 1000/s, burst 2000): callbacks are exempt from the buyers' buckets (the
    /// provider sends from few addresses), yet each costs an HMAC and a Redis call, so their
    /// cost needs a bound of its own. A provider retries a 429.
    pub payment_callback: RateLimit,
    /// How often idle per-key buckets are dropped (default 10s): keyed limiters grow forever
    /// otherwise.
    pub prune_interval: Duration,
}

/// A token bucket: sustained rate plus how many may arrive at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: NonZeroU32,
    /// Requests allowed in one burst.
    pub burst: NonZeroU32,
}

/// The payment callbacks' bucket when `[limits.payment_callback]` is absent: well above what a
/// provider sends (one callback per payment), well below what a flood could cost.
const DEFAULT_CALLBACK_LIMIT: RateLimit = RateLimit {
    per_second: NonZeroU32::MIN.saturating_add(999),
    burst: NonZeroU32::MIN.saturating_add(1999),
};

pub(super) fn limits(e: &mut Errors, l: RawLimits) -> LimitsConfig {
    LimitsConfig {
        global: l.global.map(|r| rate_limit(e, "limits.global", r)),
        per_ip: l.per_ip.map(|r| rate_limit(e, "limits.per_ip", r)),
        per_user: l.per_user.map(|r| rate_limit(e, "limits.per_user", r)),
        payment_callback: l.payment_callback.map_or(DEFAULT_CALLBACK_LIMIT, |r| {
            rate_limit(e, "limits.payment_callback", r)
        }),
        prune_interval: e.duration(
            "limits.prune_interval",
            l.prune_interval.as_deref(),
            Duration::from_secs(10),
            MS,
        ),
    }
}

fn rate_limit(e: &mut Errors, table: &str, r: RawRateLimit) -> RateLimit {
    let mut one = |key: &str, raw: Option<i64>| {
        let field = format!("{table}.{key}");
        let v = e
            .required(&field, raw)
            .map_or(1, |v| e.int(&field, Some(v), 1, 1, i64::from(u32::MAX)));
        NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN)
    };
    RateLimit {
        per_second: one("per_second", r.per_second),
        burst: one("burst", r.burst),
    }
}

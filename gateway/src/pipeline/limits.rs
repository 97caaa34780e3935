//! Token-bucket rate limits: global, per client IP, per user, and the payment callbacks' own.
//!
//! The cheapest defence, so it runs first: an empty bucket costs an atomic compare-and-swap and
//! answers 429 with `Retry-After`. Keyed limiters keep one entry per key, so they are pruned
//! periodically ([`Limiters::prune`]) to keep memory bounded under a flood of distinct keys.

use std::net::IpAddr;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, NotUntil, Quota, RateLimiter};

use crate::config::{LimitsConfig, RateLimit};

/// A bucket is empty: the request is refused (429) and may be retried after `retry_after_s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limited ({scope})")]
pub struct Limited {
    /// Which bucket: `ip`, `global`, `user` or `payment_callback` (in the message, for logs).
    pub scope: &'static str,
    /// Whole seconds until the bucket holds a token again (rounded up).
    pub retry_after_s: u64,
}

/// The gateway's buckets; a limit left out of the config is not enforced.
#[derive(Debug)]
pub struct Limiters {
    global: Option<DefaultDirectRateLimiter>,
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_user: Option<DefaultKeyedRateLimiter<String>>,
    /// The payment callbacks' bucket: always on (they are exempt from the others).
    payment_callback: DefaultDirectRateLimiter,
    clock: DefaultClock,
}

fn quota(limit: &RateLimit) -> Quota {
    Quota::per_second(limit.per_second).allow_burst(limit.burst)
}

impl Limiters {
    pub fn new(config: &LimitsConfig) -> Self {
        Self {
            global: config
                .global
                .as_ref()
                .map(|l| RateLimiter::direct(quota(l))),
            per_ip: config.per_ip.as_ref().map(|l| RateLimiter::keyed(quota(l))),
            per_user: config
                .per_user
                .as_ref()
                .map(|l| RateLimiter::keyed(quota(l))),
            payment_callback: RateLimiter::direct(quota(&config.payment_callback)),
            clock: DefaultClock::default(),
        }
    }

    fn refused(
        &self,
        scope: &'static str,
        not_until: &NotUntil<<DefaultClock as Clock>::Instant>,
    ) -> Limited {
        let wait: Duration = not_until.wait_time_from(self.clock.now());
        Limited {
            scope,
            retry_after_s: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        }
    }

    /// Stage 1: the whole gateway's and this client address's buckets.
    ///
    /// # Errors
    /// 429 when either is empty.
    pub fn check_client(&self, ip: IpAddr) -> Result<(), Limited> {
        if let Some(limiter) = &self.per_ip {
            limiter.check_key(&ip).map_err(|n| self.refused("ip", &n))?;
        }
        if let Some(limiter) = &self.global {
            limiter.check().map_err(|n| self.refused("global", &n))?;
        }
        Ok(())
    }

    /// Stage 3: this user's bucket (after identity, so it cannot be spent in someone's name).
    ///
    /// # Errors
    /// 429 when it is empty.
    pub fn check_user(&self, user_id: &String) -> Result<(), Limited> {
        if let Some(limiter) = &self.per_user {
            limiter
                .check_key(user_id)
                .map_err(|n| self.refused("user", &n))?;
        }
        Ok(())
    }

    /// A payment callback's bucket, checked before its body is read: a flood of callbacks
    /// (forged ones included: the signature is only checked after the body) costs a CAS each.
    ///
    /// # Errors
    /// 429 when it is empty.
    pub fn check_payment_callback(&self) -> Result<(), Limited> {
        self.payment_callback
            .check()
            .map_err(|n| self.refused("payment_callback", &n))
    }

    /// Forgets keys whose buckets are full again: they hold no information.
    pub fn prune(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_user {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// How many keys the per-IP and per-user limiters hold.
    pub fn key_counts(&self) -> (usize, usize) {
        (
            self.per_ip.as_ref().map_or(0, |l| l.len()),
            self.per_user.as_ref().map_or(0, |l| l.len()),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    fn limit(per_second: u32, burst: u32) -> Option<RateLimit> {
        Some(RateLimit {
            per_second: NonZeroU32::new(per_second).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        })
    }

    fn config(
        global: Option<RateLimit>,
        per_ip: Option<RateLimit>,
        per_user: Option<RateLimit>,
    ) -> LimitsConfig {
        LimitsConfig {
            global,
            per_ip,
            per_user,
            payment_callback: RateLimit {
                per_second: NonZeroU32::new(1).unwrap(),
                burst: NonZeroU32::new(2).unwrap(),
            },
            prune_interval: Duration::from_secs(10),
        }
    }

    #[test]
    fn a_spent_bucket_refuses_with_a_retry_time_and_others_are_unaffected() {
        let limits = Limiters::new(&config(None, limit(1, 2), limit(1, 1)));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert!(limits.check_client(a).is_ok());
        assert!(limits.check_client(a).is_ok());
        let err = limits.check_client(a).unwrap_err();
        assert!(
            matches!(
                err,
                Limited {
                    scope: "ip",
                    retry_after_s: 1
                }
            ),
            "{err:?}"
        );
        assert!(limits.check_client(b).is_ok());

        let (u, v) = ("u".to_string(), "v".to_string());
        assert!(limits.check_user(&u).is_ok());
        assert!(matches!(
            limits.check_user(&u),
            Err(Limited { scope: "user", .. })
        ));
        assert!(limits.check_user(&v).is_ok());
        assert_eq!(limits.key_counts(), (2, 2));
    }

    #[test]
    fn the_global_bucket_spans_clients_and_absent_limits_allow_all() {
        let limits = Limiters::new(&config(limit(1, 1), None, None));
        assert!(limits.check_client("10.0.0.1".parse().unwrap()).is_ok());
        assert!(limits.check_client("10.0.0.2".parse().unwrap()).is_err());
        let open = Limiters::new(&config(None, None, None));
        for _ in 0..1000 {
            assert!(open.check_client("10.0.0.1".parse().unwrap()).is_ok());
        }
    }

    #[test]
    fn payment_callbacks_have_their_own_bucket() {
        let limits = Limiters::new(&config(limit(1, 1), None, None));
        assert!(limits.check_client("10.0.0.1".parse().unwrap()).is_ok());
        assert!(limits.check_client("10.0.0.1".parse().unwrap()).is_err());
        assert!(
            limits.check_payment_callback().is_ok(),
            "not spent by buyers"
        );
        assert!(limits.check_payment_callback().is_ok());
        assert!(matches!(
            limits.check_payment_callback(),
            Err(Limited {
                scope: "payment_callback",
                retry_after_s: 1
            })
        ));
    }
}

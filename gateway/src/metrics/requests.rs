//! Requests by route and outcome, and their latency by route.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use super::histogram::Histogram;

/// What a request was for: the label of every request metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Route {
    Purchase,
    OrderGet,
    OrderList,
    Cancel,
    OrderToken,
    PaymentCallback,
    CampaignList,
    CampaignGet,
    Health,
    Other,
}

impl Route {
    pub const ALL: [Route; 10] = [
        Route::Purchase,
        Route::OrderGet,
        Route::OrderList,
        Route::Cancel,
        Route::OrderToken,
        Route::PaymentCallback,
        Route::CampaignList,
        Route::CampaignGet,
        Route::Health,
        Route::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Route::Purchase => "purchase",
            Route::OrderGet => "order_get",
            Route::OrderList => "order_list",
            Route::Cancel => "cancel",
            Route::OrderToken => "order_token",
            Route::PaymentCallback => "payment_callback",
            Route::CampaignList => "campaign_list",
            Route::CampaignGet => "campaign_get",
            Route::Health => "health",
            Route::Other => "other",
        }
    }
}

/// Outcome label of a request that was answered without an error code.
pub const NO_CODE: &str = "none";

type Key = (Route, u16, &'static str);

/// Counters per (route, status, error code) and a latency histogram per route.
///
/// A request takes a read lock on the map and adds to an atomic; the write lock is taken only
/// the first time a combination is seen (a few dozen in a gateway's life).
#[derive(Debug, Default)]
pub struct RequestMetrics {
    counts: RwLock<HashMap<Key, AtomicU64>>,
    seconds: [Histogram; Route::ALL.len()],
}

impl RequestMetrics {
    pub fn record(&self, route: Route, status: u16, code: &'static str, took: Duration) {
        self.seconds[route as usize].observe(took);
        let key = (route, status, code);
        {
            let counts = self.counts.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(n) = counts.get(&key) {
                n.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        self.counts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Purchases answered 2xx since start: the rate the archive pass yields to. Summed from the
    /// counters when asked (a few times a second at most), so the hot path counts once.
    pub fn accepted_purchases(&self) -> u64 {
        let counts = self.counts.read().unwrap_or_else(PoisonError::into_inner);
        counts
            .iter()
            .filter(|((route, status, _), _)| {
                matches!(route, Route::Purchase) && (200..300).contains(status)
            })
            .map(|(_, n)| n.load(Ordering::Relaxed))
            .sum()
    }

    pub fn render(&self, out: &mut String) {
        out.push_str(
            "# HELP flashgate_requests_total Requests answered, by route, status and error code.\n",
        );
        out.push_str("# TYPE flashgate_requests_total counter\n");
        let counts = self.counts.read().unwrap_or_else(PoisonError::into_inner);
        let mut keys: Vec<&Key> = counts.keys().collect();
        keys.sort();
        for key @ (route, status, code) in keys {
            let n = counts.get(key).map_or(0, |n| n.load(Ordering::Relaxed));
            let _ = writeln!(
                out,
                "flashgate_requests_total{{route=\"{}\",status=\"{status}\",code=\"{code}\"}} {n}",
                route.name()
            );
        }
        drop(counts);
        out.push_str("# HELP flashgate_request_duration_seconds Time from request to answer.\n");
        out.push_str("# TYPE flashgate_request_duration_seconds histogram\n");
        for route in Route::ALL {
            self.seconds[route as usize].render(
                out,
                "flashgate_request_duration_seconds",
                &format!("route=\"{}\"", route.name()),
            );
        }
    }
}

#[cfg(test)]
mod accepted_tests {
    use super::*;

    #[test]
    fn only_purchases_answered_2xx_count_as_accepted() {
        let m = RequestMetrics::default();
        let took = Duration::from_micros(10);
        m.record(Route::Purchase, 202, NO_CODE, took);
        m.record(Route::Purchase, 202, NO_CODE, took);
        m.record(Route::Purchase, 200, NO_CODE, took);
        m.record(Route::Purchase, 409, "sold_out", took);
        m.record(Route::OrderGet, 200, NO_CODE, took);
        assert_eq!(m.accepted_purchases(), 3);
    }
}

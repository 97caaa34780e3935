//! `[[campaigns]]`: the sales this gateway serves, each entry checked.

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use super::checks::Errors;
use super::raw::RawCampaign;

/// Largest integer a Lua number (a double) holds exactly: 2^53 - 1.
const MAX_EXACT_LUA_INT: i64 = (1 << 53) - 1;

/// Longest id or SKU: both become parts of Redis keys.
const MAX_KEY_PART: usize = 64;

/// One `[[campaigns]]` entry: a product on sale for a time window.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignConfig {
    /// Stable id used in URLs and Redis keys (1..=64 of `[A-Za-z0-9_.-]`).
    pub id: String,
    /// The product's SKU, recorded on every order (same charset as `id`).
    pub sku: String,
    /// Human-readable name shown to buyers.
    pub name: String,
    /// Price of one unit in cents (≥ 0).
    pub unit_price_cents: i64,
    /// Units for sale; 0 is allowed (a sold-out campaign).
    pub stock: u64,
    /// Most units one user may buy over the whole campaign (default 1).
    pub per_user_limit: u32,
    /// Most units in one purchase (default `per_user_limit`).
    pub max_quantity: u32,
    /// Sale opens, Unix ms.
    pub start_ms: i64,
    /// Sale closes (exclusive), Unix ms; always after `start_ms`.
    pub end_ms: i64,
    /// Unpaid orders are released back to stock after this long.
    pub pay_timeout: Duration,
    /// Stock buckets (a power of two, 1..=16, default 1): a hot campaign's stock split over as
    /// many slots, so it sells on several Redis Cluster masters at once. Fixed when the campaign
    /// is first put on sale.
    pub buckets: u32,
}

pub(super) fn campaigns(e: &mut Errors, raw: Vec<RawCampaign>) -> Vec<CampaignConfig> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, c) in raw.into_iter().enumerate() {
        let campaign = one(e, i, c);
        if let Some(first) = seen.get(&campaign.id) {
            e.push(
                format!("campaigns[{i}].id"),
                format!("duplicate of campaigns[{first}].id {:?}", campaign.id),
            );
        } else if !campaign.id.is_empty() {
            seen.insert(campaign.id.clone(), i);
        }
        out.push(campaign);
    }
    out
}

fn one(e: &mut Errors, i: usize, c: RawCampaign) -> CampaignConfig {
    let f = |key: &str| format!("campaigns[{i}].{key}");

    let id = key_part(e, &f("id"), c.id);
    let sku = key_part(e, &f("sku"), c.sku);
    let name = match e.required(&f("name"), c.name) {
        Some(n) if n.trim().is_empty() => {
            e.push(f("name"), "must not be empty");
            n
        }
        n => n.unwrap_or_default(),
    };
    let unit_price_cents: i64 = e
        .required(&f("unit_price_cents"), c.unit_price_cents)
        .map_or(0, |v| {
            e.int(&f("unit_price_cents"), Some(v), 0, 0, i64::MAX)
        });
    // The scripts do stock arithmetic in Lua numbers (doubles): exact up to 2^53.
    let stock = e
        .required(&f("stock"), c.stock)
        .map_or(0, |v| e.int(&f("stock"), Some(v), 0, 0, MAX_EXACT_LUA_INT));
    let per_user_limit: u32 = e.int(
        &f("per_user_limit"),
        c.per_user_limit,
        1,
        1,
        i64::from(u32::MAX),
    );
    let max_quantity = max_quantity(e, &f("max_quantity"), c.max_quantity, per_user_limit);
    // Payment amounts are checked in Lua numbers (doubles): exact up to 2^53.
    if unit_price_cents
        .checked_mul(i64::from(max_quantity))
        .is_none_or(|amount| amount > MAX_EXACT_LUA_INT)
    {
        e.push(
            f("unit_price_cents"),
            format!("times max_quantity ({max_quantity}) exceeds 2^53 - 1 cents"),
        );
    }
    let start_ms = time(e, &f("start"), c.start);
    let end_ms = time(e, &f("end"), c.end);
    if let (Some(start), Some(end)) = (start_ms, end_ms)
        && end <= start
    {
        e.push(f("end"), "must be after start");
    }
    let pay_timeout = match e.required(&f("pay_timeout"), c.pay_timeout) {
        Some(s) => e.duration(
            &f("pay_timeout"),
            Some(&s),
            Duration::ZERO,
            Duration::from_secs(1),
        ),
        None => Duration::ZERO,
    };
    let buckets = buckets(e, &f("buckets"), c.buckets);
    CampaignConfig {
        id,
        sku,
        name,
        unit_price_cents,
        stock,
        per_user_limit,
        max_quantity,
        start_ms: start_ms.unwrap_or(0),
        end_ms: end_ms.unwrap_or(0),
        pay_timeout,
        buckets,
    }
}

/// `max_quantity`: at most `per_user_limit`, which is also its default.
fn max_quantity(e: &mut Errors, field: &str, raw: Option<i64>, per_user_limit: u32) -> u32 {
    match raw {
        Some(q) if q > i64::from(per_user_limit) => {
            e.push(
                field,
                format!("must not exceed per_user_limit ({per_user_limit}), got {q}"),
            );
            per_user_limit
        }
        q => e.int(field, q, per_user_limit, 1, i64::from(per_user_limit)),
    }
}

/// `buckets`: a power of two up to [`flashgate_stock::MAX_BUCKETS`], 1 by default.
fn buckets(e: &mut Errors, field: &str, raw: Option<i64>) -> u32 {
    let buckets: u32 = e.int(field, raw, 1, 1, i64::from(flashgate_stock::MAX_BUCKETS));
    if !buckets.is_power_of_two() {
        e.push(field, format!("must be a power of two, got {buckets}"));
    }
    buckets
}

/// 1..=64 chars of `[A-Za-z0-9_.-]`: safe inside a Redis key and a URL path segment.
fn key_part(e: &mut Errors, field: &str, raw: Option<String>) -> String {
    let Some(s) = e.required(field, raw) else {
        return String::new();
    };
    let ok_char = |ch: char| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-');
    if s.is_empty() || s.len() > MAX_KEY_PART || !s.chars().all(ok_char) {
        e.push(
            field,
            format!("must be 1..={MAX_KEY_PART} characters of [A-Za-z0-9_.-], got {s:?}"),
        );
    }
    s
}

/// An RFC 3339 time (`2026-11-22T10:00:00Z`) as Unix milliseconds.
fn time(e: &mut Errors, field: &str, raw: Option<String>) -> Option<i64> {
    let s = e.required(field, raw)?;
    let parsed = humantime::parse_rfc3339_weak(&s)
        .map_err(|err| err.to_string())
        .and_then(|t| {
            let ms = t
                .duration_since(UNIX_EPOCH)
                .map_err(|err| err.to_string())?
                .as_millis();
            i64::try_from(ms).map_err(|err| err.to_string())
        });
    match parsed {
        Ok(ms) => Some(ms),
        Err(err) => {
            e.push(
                field,
                format!("not an RFC 3339 time like \"2026-11-22T10:00:00Z\": {s:?} ({err})"),
            );
            None
        }
    }
}

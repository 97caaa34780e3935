//! Unit tests of `[[campaigns]]` entries: defaults, times, money and stock buckets.
use std::time::Duration;

use super::*;

#[test]
fn campaign_defaults_and_lookup() {
    let c = parse(&(minimal() + CAMPAIGN)).unwrap();
    let camp = c.campaign("c1").unwrap();
    assert_eq!(camp.per_user_limit, 1);
    assert_eq!(camp.max_quantity, 1);
    assert_eq!(camp.start_ms, 1_795_341_600_000);
    assert_eq!(camp.end_ms - camp.start_ms, 2 * 3600 * 1000);
    assert_eq!(camp.pay_timeout, Duration::from_secs(900));
    assert!(c.campaign("nope").is_none());
}

#[test]
fn bad_times_and_durations_are_named() {
    let text = minimal()
        + &CAMPAIGN
            .replace("2026-11-22T10:00:00Z", "next tuesday")
            .replace("2026-11-22T12:00:00Z", "2026-13-01T00:00:00Z")
            .replace("\"15m\"", "\"15 parsecs\"")
        + "[persistence]\nflush_interval = \"fast\"\n";
    let got = invalid(&text);
    assert_eq!(
        fields(&got),
        [
            "persistence.flush_interval",
            "campaigns[0].start",
            "campaigns[0].end",
            "campaigns[0].pay_timeout"
        ],
        "{got:?}"
    );
    assert!(got[1].message.contains("next tuesday"), "{:?}", got[1]);
}

#[test]
fn money_and_time_that_would_overflow_downstream_are_refused() {
    let text = r#"
[auth]
jwt_secret = "a-jwt-secret-long-enough"
order_token_secret = "an-order-token-secret-long-enough"
order_token_ttl = "400days"
[redis]
url = "redis://127.0.0.1:6379"
[[campaigns]]
id = "huge"
sku = "S"
name = "n"
unit_price_cents = 9223372036854775807
stock = 9007199254740993
per_user_limit = 2
start = "2026-01-01T00:00:00Z"
end = "2027-01-01T00:00:00Z"
pay_timeout = "1000days"
"#;
    let Err(ConfigError::Invalid(errors)) = Config::from_toml_str_with_env(text, &|_| None) else {
        panic!("expected invalid");
    };
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    for field in [
        "auth.order_token_ttl",
        "campaigns[0].unit_price_cents",
        "campaigns[0].stock",
        "campaigns[0].pay_timeout",
    ] {
        assert!(fields.contains(&field), "{field} missing from {fields:?}");
    }
}

#[test]
fn stock_buckets_default_to_one_and_must_be_a_power_of_two_up_to_sixteen() {
    let c = parse(&(minimal() + CAMPAIGN)).unwrap();
    assert_eq!(c.campaign("c1").unwrap().buckets, 1);
    let with = |n: i64| format!("{}{CAMPAIGN}buckets = {n}\n", minimal());
    assert_eq!(parse(&with(8)).unwrap().campaign("c1").unwrap().buckets, 8);
    assert_eq!(
        parse(&with(16)).unwrap().campaign("c1").unwrap().buckets,
        16
    );
    for bad in [0, 3, 12, 32] {
        assert_eq!(
            fields(&invalid(&with(bad))),
            ["campaigns[0].buckets"],
            "{bad}"
        );
    }
}

//! Unit tests of the config: the helpers every test file here uses, and the tests of a whole
//! file (the defaults, the example files, parse errors, loading, every bad field at once).
//!
//! - `secret.rs`: secrets from the file, a `_file` key or the environment, never shown.
//! - `redis.rs`: `[redis]`: URL, cluster or embedded, its password, replica acks.
//! - `campaign.rs`: `[[campaigns]]` entries.
//! - `sections.rs`: the smaller sections (`[server]`, `[limits]`, `[persistence]`, `[archive]`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod campaign;
mod redis;
mod secret;
mod sections;

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use super::*;

const JWT: &str = "jwt-secret-0123456789";
const ORDER: &str = "order-secret-0123456789";

fn minimal() -> String {
    format!(
        "[auth]\njwt_secret = \"{JWT}\"\norder_token_secret = \"{ORDER}\"\n[redis]\nurl = \"redis://127.0.0.1:6379\"\n"
    )
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str_with_env(text, &no_env)
}

fn invalid(text: &str) -> Vec<FieldError> {
    match parse(text) {
        Err(ConfigError::Invalid(errors)) => errors,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn fields(errors: &[FieldError]) -> Vec<&str> {
    errors.iter().map(|e| e.field.as_str()).collect()
}

const CAMPAIGN: &str = r#"
[[campaigns]]
id = "c1"
sku = "SKU-1"
name = "Thing"
unit_price_cents = 100
stock = 5
start = "2026-11-22T10:00:00Z"
end = "2026-11-22T12:00:00Z"
pay_timeout = "15m"
"#;

#[test]
fn minimal_config_gets_defaults() {
    let c = parse(&minimal()).unwrap();
    assert_eq!(c.server.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.server.node_id, 0);
    assert_eq!(c.server.max_body_bytes, 4096);
    assert_eq!(c.server.shutdown_grace, Duration::from_secs(10));
    assert_eq!(c.server.header_read_timeout, Duration::from_secs(5));
    assert_eq!(c.auth.jwt_secret.expose(), JWT);
    assert_eq!(c.auth.order_token_secret.expose(), ORDER);
    assert_eq!(c.auth.order_token_ttl, Duration::from_secs(600));
    let ms500 = Duration::from_millis(500);
    assert_eq!(
        c.redis,
        RedisConfig::Url {
            target: RedisTarget::local(6379),
            response_timeout: ms500,
            connection_timeout: ms500,
            replica_acks: None,
        }
    );
    assert_eq!(
        c.store,
        StoreConfig {
            path: PathBuf::from("data/orders.db"),
            url: None,
            shard_bits: 4,
            archive_path: PathBuf::from("data/orders-archive.db"),
            archive_url: None,
        }
    );
    let p = &c.persistence;
    assert_eq!((p.workers, p.queue_capacity, p.batch_size), (1, 65536, 512));
    assert_eq!(p.flush_interval, Duration::from_millis(5));
    assert_eq!(p.reconcile_interval, Duration::from_secs(5));
    assert_eq!(p.reconcile_grace, Duration::from_secs(2));
    assert_eq!(p.retire_after, Some(Duration::from_secs(24 * 3600)));
    let a = &c.archive;
    assert_eq!(a.after, Some(Duration::from_secs(90 * 24 * 3600)));
    assert_eq!(
        (a.batch, a.interval, a.pause_above),
        (500, Duration::from_secs(600), 50)
    );
    assert_eq!(c.limits.global, None);
    assert_eq!(c.limits.per_ip, None);
    assert_eq!(c.limits.per_user, None);
    let callbacks = c.limits.payment_callback;
    assert_eq!(
        (callbacks.per_second.get(), callbacks.burst.get()),
        (1000, 2000),
        "payment callbacks are always bounded"
    );
    assert_eq!(c.limits.prune_interval, Duration::from_secs(10));
    assert!(c.campaigns.is_empty());
}

#[test]
fn example_file_parses_and_sets_every_section() {
    let c = parse(include_str!("../../../../config/flashgate.example.toml")).unwrap();
    assert!(matches!(c.redis, RedisConfig::Url { .. }));
    assert!(c.limits.global.is_some() && c.limits.per_ip.is_some() && c.limits.per_user.is_some());
    let camp = c.campaign("phone-launch").unwrap();
    assert_eq!((camp.per_user_limit, camp.max_quantity), (2, 1));
}

#[test]
fn demo_file_parses_with_embedded_redis() {
    let c = parse(include_str!("../../../../config/demo.toml")).unwrap();
    assert_eq!(
        c.redis,
        RedisConfig::Embedded {
            port: 6380,
            dir: "data/redis".into(),
            binary: "redis-server".into(),
            response_timeout: Duration::from_millis(500),
            connection_timeout: Duration::from_millis(500),
        }
    );
    assert_eq!(c.store.path, PathBuf::from("data/orders.db"));
    assert_eq!(c.server.listen, "127.0.0.1:8080".parse().unwrap());
    let phone = c.campaign("demo-phone").unwrap();
    assert_eq!(
        (
            phone.sku.as_str(),
            phone.unit_price_cents,
            phone.stock,
            phone.per_user_limit
        ),
        ("PHONE-X-128", 99900, 10000, 1)
    );
    assert_eq!(phone.start_ms, 1_767_225_600_000);
    assert_eq!(phone.end_ms, 1_893_456_000_000);
}

#[test]
fn unknown_field_is_rejected_by_name() {
    let err = parse(&(minimal() + "[store]\nshard_bitz = 2\n")).unwrap_err();
    assert!(matches!(err, ConfigError::Parse(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("shard_bitz"), "{text}");
    assert!(text.contains("line"), "should give a position: {text}");
}

/// A bad value in every section, and two bad campaigns around a good one.
const BAD_IN_EVERY_SECTION: &str = r#"
[server]
listen = "nowhere"
node_id = 300
max_body_bytes = 0
header_read_timeout = "soon"
[auth]
jwt_secret = "short"
[redis]
[store]
shard_bits = 5
[persistence]
workers = 0
batch_size = 10001
[limits.per_ip]
per_second = 0
[[campaigns]]
id = "bad id!"
sku = ""
name = " "
unit_price_cents = -1
stock = -3
per_user_limit = 2
max_quantity = 3
start = "2026-11-22T12:00:00Z"
end = "2026-11-22T10:00:00Z"
pay_timeout = "0s"
[[campaigns]]
id = "dup"
sku = "S"
name = "n"
unit_price_cents = 1
stock = 0
start = "2026-11-22T10:00:00Z"
end = "2026-11-22T12:00:00Z"
pay_timeout = "1m"
[[campaigns]]
id = "dup"
"#;

#[test]
fn every_bad_field_is_reported() {
    let errors = invalid(BAD_IN_EVERY_SECTION);
    let got = fields(&errors);
    let want = [
        "server.listen",
        "server.node_id",
        "server.max_body_bytes",
        "server.header_read_timeout",
        "auth.jwt_secret",
        "auth.order_token_secret",
        "redis.url",
        "store.shard_bits",
        "persistence.workers",
        "persistence.batch_size",
        "limits.per_ip.per_second",
        "limits.per_ip.burst",
        "campaigns[0].id",
        "campaigns[0].sku",
        "campaigns[0].name",
        "campaigns[0].unit_price_cents",
        "campaigns[0].stock",
        "campaigns[0].max_quantity",
        "campaigns[0].end",
        "campaigns[0].pay_timeout",
        "campaigns[2].id",
        "campaigns[2].sku",
        "campaigns[2].start",
    ];
    for field in want {
        assert!(got.contains(&field), "{field} not reported; got {got:?}");
    }
    // The valid second campaign (stock 0 = sold out) must not be blamed.
    assert!(
        !got.iter().any(|f| f.starts_with("campaigns[1]")),
        "{got:?}"
    );
    let dup = errors
        .iter()
        .find(|e| e.field == "campaigns[2].id")
        .unwrap();
    assert!(
        dup.message.contains("duplicate of campaigns[1]"),
        "{}",
        dup.message
    );
    let display = ConfigError::Invalid(errors.clone()).to_string();
    assert_eq!(display.lines().count(), errors.len() + 1, "{display}");
    assert!(
        display.contains("\n  server.node_id: must be between 0 and 255, got 300"),
        "{display}"
    );
}

#[test]
fn malformed_toml_reports_position() {
    let err = parse("[server\nlisten = 1").unwrap_err();
    assert!(matches!(err, ConfigError::Parse(_)));
    assert!(err.to_string().contains("line 1"), "{err}");
}

#[test]
fn load_reads_file_and_reports_missing_path() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(minimal().as_bytes()).unwrap();
    // `load` uses the real environment; only assert what it cannot change.
    let c = Config::load(file.path()).unwrap();
    assert_eq!(c.store.shard_bits, 4);
    let err = Config::load(std::path::Path::new("/definitely/not/here.toml")).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
    assert!(
        err.to_string().contains("/definitely/not/here.toml"),
        "{err}"
    );
}

#[test]
fn a_parse_error_names_where_but_never_quotes_the_line() {
    let text = "[server]\nnode_id = 1\n[store]\nurl = postgres://user:topsecret@db/orders\n";
    let err = Config::from_toml_str_with_env(text, &no_env).unwrap_err();
    let shown = err.to_string();
    assert!(matches!(err, ConfigError::Parse(_)), "{err:?}");
    assert!(shown.contains("line 4"), "{shown}");
    assert!(!shown.contains("topsecret"), "{shown}");
    let bad_redis = "[redis]\nurl = \"http://user:topsecret@cache\"\n";
    let err = Config::from_toml_str_with_env(bad_redis, &no_env).unwrap_err();
    assert!(!err.to_string().contains("topsecret"), "{err}");
}

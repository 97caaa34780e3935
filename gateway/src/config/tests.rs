#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::num::NonZeroU32;
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
fn only_present_limit_tables_are_set() {
    let text = minimal() + "[limits.per_ip]\nper_second = 20\nburst = 40\n";
    let c = parse(&text).unwrap();
    assert_eq!(c.limits.global, None);
    let ip = c.limits.per_ip.unwrap();
    assert_eq!(
        (ip.per_second, ip.burst),
        (NonZeroU32::new(20).unwrap(), NonZeroU32::new(40).unwrap())
    );
}

#[test]
fn the_payment_callback_limit_is_configurable_and_checked() {
    let text = minimal() + "[limits.payment_callback]\nper_second = 5\nburst = 7\n";
    let cb = parse(&text).unwrap().limits.payment_callback;
    assert_eq!((cb.per_second.get(), cb.burst.get()), (5, 7));
    let bad = minimal() + "[limits.payment_callback]\nper_second = 0\n";
    let err = parse(&bad).unwrap_err().to_string();
    assert!(err.contains("limits.payment_callback.per_second"), "{err}");
    assert!(err.contains("limits.payment_callback.burst"), "{err}");
}

#[test]
fn example_file_parses_and_sets_every_section() {
    let c = parse(include_str!("../../../config/flashgate.example.toml")).unwrap();
    assert!(matches!(c.redis, RedisConfig::Url { .. }));
    assert!(c.limits.global.is_some() && c.limits.per_ip.is_some() && c.limits.per_user.is_some());
    let camp = c.campaign("phone-launch").unwrap();
    assert_eq!((camp.per_user_limit, camp.max_quantity), (2, 1));
}

#[test]
fn demo_file_parses_with_embedded_redis() {
    let c = parse(include_str!("../../../config/demo.toml")).unwrap();
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

#[test]
fn every_bad_field_is_reported() {
    let text = r#"
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
    let errors = invalid(text);
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
fn env_overrides_secrets() {
    let env = |name: &str| match name {
        ENV_JWT_SECRET => Some("jwt-from-environment-123".to_owned()),
        ENV_ORDER_TOKEN_SECRET => Some("order-from-environment-123".to_owned()),
        _ => None,
    };
    let c = Config::from_toml_str_with_env(&minimal(), &env).unwrap();
    assert_eq!(c.auth.jwt_secret.expose(), "jwt-from-environment-123");
    assert_eq!(
        c.auth.order_token_secret.expose(),
        "order-from-environment-123"
    );
    // Env alone is enough: no secrets in the file at all.
    let c = Config::from_toml_str_with_env("[redis]\nembedded = true\n", &env).unwrap();
    assert_eq!(c.auth.jwt_secret.expose(), "jwt-from-environment-123");
}

#[test]
fn short_env_secret_names_the_variable() {
    let env = |name: &str| (name == ENV_JWT_SECRET).then(|| "tiny".to_owned());
    let Err(ConfigError::Invalid(errors)) = Config::from_toml_str_with_env(&minimal(), &env) else {
        panic!("short env secret accepted");
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].message.contains("too short") && errors[0].field.contains(ENV_JWT_SECRET),
        "{errors:?}"
    );
}

#[test]
fn secret_file_is_read_and_trimmed() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "  file-secret-0123456789  ").unwrap();
    let path = file.path().display().to_string().replace('\\', "/");
    let text = format!(
        "[auth]\njwt_secret_file = \"{path}\"\norder_token_secret = \"{ORDER}\"\n[redis]\nembedded = true\n"
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.auth.jwt_secret.expose(), "file-secret-0123456789");

    let both = format!(
        "[auth]\njwt_secret = \"{JWT}\"\njwt_secret_file = \"{path}\"\norder_token_secret_file = \"/no/such/file\"\n[redis]\nembedded = true\n"
    );
    let got = invalid(&both);
    assert_eq!(
        fields(&got),
        ["auth.jwt_secret_file", "auth.order_token_secret_file"],
        "{got:?}"
    );
}

#[test]
fn secret_debug_is_redacted() {
    let c = parse(&minimal()).unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains(JWT) && !debug.contains(ORDER), "{debug}");
    assert!(debug.contains("Secret(***)"));
    assert!(Secret::new("15-bytes-secret").is_none());
    assert_eq!(
        Secret::new("16-bytes-secret!").unwrap().expose(),
        "16-bytes-secret!"
    );
}

#[test]
fn redis_url_and_embedded_conflict() {
    let text = minimal() + "embedded = true\n";
    let got = invalid(&text);
    assert_eq!(fields(&got), ["redis.embedded"], "{got:?}");
    assert!(got[0].message.contains("redis.url"));
}

#[test]
fn redis_neither_names_url() {
    let text = format!("[auth]\njwt_secret = \"{JWT}\"\norder_token_secret = \"{ORDER}\"\n");
    assert_eq!(fields(&invalid(&text)), ["redis.url"]);
    let text = text + "[redis]\nembedded = false\n";
    assert_eq!(fields(&invalid(&text)), ["redis.url"]);
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

/// The target of a config whose `[redis]` table is `redis`, with `env` as the environment.
fn redis_target(
    redis: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RedisTarget, ConfigError> {
    let text = format!(
        "[auth]\njwt_secret = \"{JWT}\"\norder_token_secret = \"{ORDER}\"\n[redis]\n{redis}\n"
    );
    Config::from_toml_str_with_env(&text, env).map(|c| match c.redis {
        RedisConfig::Url { target, .. } => target,
        other => panic!("not a url: {other:?}"),
    })
}

fn password(target: &RedisTarget) -> Option<String> {
    target
        .connection_info()
        .redis_settings()
        .password()
        .map(str::to_owned)
}

#[test]
fn redis_password_from_url_env_or_file_is_never_shown() {
    let url = "url = \"redis://fg:pw-in-url@cache.internal:6390/2\"";
    let target = redis_target(url, &no_env).unwrap();
    assert_eq!(password(&target).as_deref(), Some("pw-in-url"));
    let info = target.connection_info();
    assert_eq!(info.redis_settings().username(), Some("fg"));
    assert_eq!(info.redis_settings().db(), 2);
    assert_eq!(target.to_string(), "cache.internal:6390");
    let config = parse(&minimal().replace(
        "redis://127.0.0.1:6379",
        "redis://fg:pw-in-url@cache.internal:6390/2",
    ))
    .unwrap();
    let shown = format!("{target} {target:?} {config:?}");
    assert!(!shown.contains("pw-in-url"), "{shown}");

    // The environment wins over the URL's password, as over every secret in the file.
    let env = |name: &str| (name == ENV_REDIS_PASSWORD).then(|| "pw-from-env".to_owned());
    assert_eq!(
        password(&redis_target(url, &env).unwrap()).as_deref(),
        Some("pw-from-env")
    );

    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "pw-from-file").unwrap();
    let from_file = format!(
        "url = \"redis://cache.internal\"\npassword_file = \"{}\"",
        file.path().display()
    );
    let target = redis_target(&from_file, &no_env).unwrap();
    assert_eq!(password(&target).as_deref(), Some("pw-from-file"));
    assert_eq!(target.addr(), "cache.internal:6379");
    assert_eq!(
        password(&redis_target("url = \"redis://h\"", &no_env).unwrap()),
        None
    );
}

#[test]
fn redis_password_in_two_places_or_a_bad_url_is_named_without_the_secret() {
    let both = "url = \"redis://:pw-in-url@h\"\npassword_file = \"/nonexistent\"";
    let Err(ConfigError::Invalid(got)) = redis_target(both, &no_env) else {
        panic!("accepted a password twice")
    };
    assert_eq!(fields(&got), ["redis.password_file"], "{got:?}");

    let bad_port = "url = \"redis://:pw-in-url@h:port\"";
    let Err(e) = redis_target(bad_port, &no_env) else {
        panic!("accepted a bad port")
    };
    let shown = e.to_string();
    assert!(
        shown.contains("redis.url") && !shown.contains("pw-in-url"),
        "{shown}"
    );

    let embedded = "embedded = true\npassword_file = \"/nonexistent\"";
    let Err(ConfigError::Invalid(got)) = redis_target(embedded, &no_env) else {
        panic!("accepted a password for the embedded redis")
    };
    assert_eq!(fields(&got), ["redis.password_file"], "{got:?}");
}

#[test]
fn a_redis_cluster_is_named_by_its_seed_nodes_and_checked() {
    let head =
        format!("[auth]\njwt_secret = \"{JWT}\"\norder_token_secret = \"{ORDER}\"\n[redis]\n");
    let ok = parse(
        &(head.clone()
            + "cluster = [\"redis://:pw@10.0.0.1:7000\", \"redis://:pw@10.0.0.2:7000\"]\n"),
    )
    .unwrap();
    let RedisConfig::Cluster { seeds, .. } = &ok.redis else {
        panic!("not a cluster: {:?}", ok.redis);
    };
    assert_eq!(seeds.len(), 2);
    assert!(seeds.iter().all(|s| password(s).as_deref() == Some("pw")));
    assert!(
        !format!("{:?}", ok.redis).contains("pw\""),
        "{:?}",
        ok.redis
    );

    let both =
        head.clone() + "url = \"redis://127.0.0.1:6379\"\ncluster = [\"redis://127.0.0.1:7000\"]\n";
    assert_eq!(fields(&invalid(&both)), ["redis.cluster"]);
    let empty = head.clone() + "cluster = []\n";
    assert_eq!(fields(&invalid(&empty)), ["redis.cluster"]);
    let scheme = head.clone() + "cluster = [\"redis://127.0.0.1:7000\", \"http://secret@x\"]\n";
    let got = invalid(&scheme);
    assert_eq!(fields(&got), ["redis.cluster[1]"]);
    assert!(!got[0].message.contains("secret"), "{got:?}");
    let mixed = head + "cluster = [\"redis://:a@10.0.0.1:7000\", \"redis://:b@10.0.0.2:7000\"]\n";
    assert_eq!(fields(&invalid(&mixed)), ["redis.cluster"]);
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

#[test]
fn replica_acks_are_off_by_default_and_checked_when_set() {
    assert_eq!(parse(&minimal()).unwrap().redis.replica_acks(), None);
    let head =
        format!("[auth]\njwt_secret = \"{JWT}\"\norder_token_secret = \"{ORDER}\"\n[redis]\n");
    let with = |lines: &str| format!("{}{lines}\n", minimal());

    let on = parse(&with("replica_acks = 1")).unwrap();
    assert_eq!(
        on.redis.replica_acks(),
        Some(ReplicaAcks {
            replicas: 1,
            timeout: Duration::from_millis(50)
        })
    );
    let tuned = parse(&with("replica_acks = 2\nreplica_ack_timeout = \"20ms\"")).unwrap();
    assert_eq!(
        tuned.redis.replica_acks(),
        Some(ReplicaAcks {
            replicas: 2,
            timeout: Duration::from_millis(20)
        })
    );
    let cluster =
        parse(&(head.clone() + "cluster = [\"redis://127.0.0.1:7000\"]\nreplica_acks = 1\n"))
            .unwrap();
    assert_eq!(cluster.redis.replica_acks().map(|a| a.replicas), Some(1));
    // 0 is off, whatever the timeout says.
    let off = parse(&with("replica_acks = 0\nreplica_ack_timeout = \"10ms\"")).unwrap();
    assert_eq!(off.redis.replica_acks(), None);

    // Every bad field named at once.
    let bad = invalid(&with("replica_acks = -1\nreplica_ack_timeout = \"0ms\""));
    assert_eq!(
        fields(&bad),
        ["redis.replica_acks", "redis.replica_ack_timeout"],
        "{bad:?}"
    );
    assert_eq!(
        fields(&invalid(&with("replica_acks = 17"))),
        ["redis.replica_acks"]
    );
    assert_eq!(
        fields(&invalid(&with(
            "replica_acks = 1\nreplica_ack_timeout = \"6s\""
        ))),
        ["redis.replica_ack_timeout"]
    );
    assert_eq!(
        fields(&invalid(&with("replica_ack_timeout = \"soon\""))),
        ["redis.replica_ack_timeout"]
    );
    // The embedded Redis has no replica: no purchase could ever be acknowledged.
    let embedded = head + "embedded = true\nreplica_acks = 1\n";
    assert_eq!(fields(&invalid(&embedded)), ["redis.replica_acks"]);
}

#[test]
fn server_workers_default_to_the_cores_and_are_bounded() {
    assert_eq!(parse(&minimal()).unwrap().server.workers, None);
    let one = format!("[server]\nworkers = 1\n{}", minimal());
    assert_eq!(parse(&one).unwrap().server.workers, Some(1));
    for bad in ["0", "1025", "-1"] {
        let text = format!("[server]\nworkers = {bad}\n{}", minimal());
        assert_eq!(fields(&invalid(&text)), ["server.workers"], "{bad}");
    }
}

#[test]
fn retirement_is_a_duration_after_the_end_or_never() {
    let with = |v: &str| format!("{}\n[persistence]\nretire_after = {v}\n", minimal());
    assert_eq!(
        parse(&with("\"90m\"")).unwrap().persistence.retire_after,
        Some(Duration::from_secs(5400))
    );
    for never in ["\"0\"", "\"0s\""] {
        assert_eq!(parse(&with(never)).unwrap().persistence.retire_after, None);
    }
    assert_eq!(
        fields(&invalid(&with("\"soon\""))),
        ["persistence.retire_after"]
    );
}

#[test]
fn the_archive_has_an_age_a_pace_and_a_place() {
    let with = |v: &str| format!("{}\n[archive]\n{v}\n", minimal());
    let c = parse(&with(
        "after = \"30d\"\nbatch = 100\ninterval = \"1s\"\npause_above = 0\npath = \"/x/a.db\"\n\
         url = \"postgres://u@h/archive\"",
    ))
    .unwrap();
    assert_eq!(c.archive.after, Some(Duration::from_secs(30 * 24 * 3600)));
    assert_eq!(
        (c.archive.batch, c.archive.interval, c.archive.pause_above),
        (100, Duration::from_secs(1), 0)
    );
    assert_eq!(c.store.archive_path, PathBuf::from("/x/a.db"));
    assert_eq!(
        c.store.archive_url.as_ref().map(|u| u.expose().to_owned()),
        Some("postgres://u@h/archive".to_owned())
    );
    // Beside the store file by default, and never with `0`.
    let c = parse(&format!(
        "[store]\npath = \"/d/o.db\"\n{}\n[archive]\nafter = \"0\"\n",
        minimal()
    ))
    .unwrap();
    assert_eq!(c.store.archive_path, PathBuf::from("/d/o-archive.db"));
    assert_eq!(c.archive.after, None);
    for (bad, field) in [
        ("batch = 0", "archive.batch"),
        ("after = \"soon\"", "archive.after"),
        ("url = \"mysql://x\"", "archive.url"),
        ("path = \" \"", "archive.path"),
    ] {
        assert_eq!(fields(&invalid(&with(bad))), [field], "{bad}");
    }
}

//! Raw → typed conversion. Every check records a [`FieldError`] and carries on with a
//! placeholder value, so one pass reports every bad field; the placeholder config is
//! discarded if anything was recorded.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use super::checks::{Errors, MS, NO_MAX};
use super::error::FieldError;
use super::raw::{RawAuth, RawConfig, RawLimits, RawRateLimit, RawRedis};
use super::{
    AdminConfig, ArchiveConfig, AuthConfig, Config, DatabaseUrl, ENV_ADMIN_TOKEN, ENV_ARCHIVE_URL,
    ENV_JWT_SECRET, ENV_ORDER_TOKEN_SECRET, ENV_PAYMENT_SECRET, ENV_REDIS_PASSWORD, ENV_STORE_URL,
    LimitsConfig, PersistenceConfig, RateLimit, RedisConfig, RedisTarget, ReplicaAcks, Secret,
    ServerConfig, StoreConfig,
};

pub(super) fn validate(
    raw: RawConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<FieldError>> {
    let mut errs = Errors::default();
    let e = &mut errs;

    let raw_admin = raw.admin;
    let admin = AdminConfig {
        token: optional_secret(
            e,
            "admin.token",
            ENV_ADMIN_TOKEN,
            raw_admin.token,
            raw_admin.token_file,
            env,
        ),
        listen: raw_admin.listen.as_deref().and_then(|text| {
            text.parse()
                .map_err(|err| {
                    e.push(
                        "admin.listen",
                        format!("not an ip:port address: {text:?} ({err})"),
                    );
                })
                .ok()
        }),
    };

    let s = raw.server;
    let listen = match s.listen.as_deref() {
        None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        Some(text) => text.parse().unwrap_or_else(|err| {
            e.push(
                "server.listen",
                format!("not an ip:port address: {text:?} ({err})"),
            );
            SocketAddr::from(([127, 0, 0, 1], 8080))
        }),
    };
    let server = ServerConfig {
        listen,
        node_id: e.int("server.node_id", s.node_id, 0, 0, 255),
        max_body_bytes: e.int("server.max_body_bytes", s.max_body_bytes, 4096, 1, 1 << 20),
        shutdown_grace: e.duration(
            "server.shutdown_grace",
            s.shutdown_grace.as_deref(),
            Duration::from_secs(10),
            Duration::ZERO,
        ),
        header_read_timeout: e.duration(
            "server.header_read_timeout",
            s.header_read_timeout.as_deref(),
            Duration::from_secs(5),
            MS,
        ),
        request_timeout: e.duration(
            "server.request_timeout",
            s.request_timeout.as_deref(),
            Duration::from_secs(10),
            MS,
        ),
        max_connections: e.int(
            "server.max_connections",
            s.max_connections,
            10_000,
            1,
            1_000_000,
        ),
        // hyper needs at least 8 KiB of read buffer.
        max_header_bytes: e.int(
            "server.max_header_bytes",
            s.max_header_bytes,
            16_384,
            8_192,
            1 << 20,
        ),
        max_headers: e.int("server.max_headers", s.max_headers, 64, 1, 1_000),
        http2_max_streams: e.int(
            "server.http2_max_streams",
            s.http2_max_streams,
            128,
            1,
            10_000,
        ),
        workers: s
            .workers
            .map(|w| e.int("server.workers", Some(w), 1, 1, 1_024)),
    };

    let auth = auth(e, raw.auth, env);
    let redis = redis(e, raw.redis, env);

    let st = raw.store;
    let ar = raw.archive;
    let path = match st.path {
        Some(p) if p.trim().is_empty() => {
            e.push("store.path", "must not be empty");
            PathBuf::new()
        }
        p => PathBuf::from(p.unwrap_or_else(|| "data/orders.db".into())),
    };
    let store = StoreConfig {
        archive_path: match ar.path {
            Some(p) if p.trim().is_empty() => {
                e.push("archive.path", "must not be empty");
                PathBuf::new()
            }
            Some(p) => PathBuf::from(p),
            None => super::default_archive_path(&path),
        },
        path,
        url: database_url(e, "store.url", env(ENV_STORE_URL).or(st.url)),
        archive_url: database_url(e, "archive.url", env(ENV_ARCHIVE_URL).or(ar.url)),
        shard_bits: e.int("store.shard_bits", st.shard_bits, 4, 0, 4),
    };
    let archive = ArchiveConfig {
        after: Some(e.duration(
            "archive.after",
            ar.after.as_deref(),
            Duration::from_secs(90 * 24 * 3600),
            Duration::ZERO,
        ))
        .filter(|d| !d.is_zero()),
        batch: e.int("archive.batch", ar.batch, 500, 1, 10_000),
        interval: e.duration(
            "archive.interval",
            ar.interval.as_deref(),
            Duration::from_secs(600),
            Duration::from_millis(100),
        ),
        pause_above: e.int("archive.pause_above", ar.pause_above, 50, 0, 1_000_000_000),
    };

    let p = raw.persistence;
    let persistence = PersistenceConfig {
        workers: e.int("persistence.workers", p.workers, 1, 1, 64),
        queue_capacity: e.int(
            "persistence.queue_capacity",
            p.queue_capacity,
            65536,
            1,
            NO_MAX,
        ),
        batch_size: e.int("persistence.batch_size", p.batch_size, 512, 1, 10_000),
        flush_interval: e.duration(
            "persistence.flush_interval",
            p.flush_interval.as_deref(),
            5 * MS,
            MS,
        ),
        reconcile_interval: e.duration(
            "persistence.reconcile_interval",
            p.reconcile_interval.as_deref(),
            Duration::from_secs(5),
            MS,
        ),
        reconcile_grace: e.duration(
            "persistence.reconcile_grace",
            p.reconcile_grace.as_deref(),
            Duration::from_secs(2),
            Duration::ZERO,
        ),
        retire_after: Some(e.duration(
            "persistence.retire_after",
            p.retire_after.as_deref(),
            Duration::from_secs(24 * 3600),
            Duration::ZERO,
        ))
        .filter(|d| !d.is_zero()),
    };

    let limits = limits(e, raw.limits);
    let campaigns = super::campaign::campaigns(e, raw.campaigns);

    if errs.0.is_empty() {
        Ok(Config {
            server,
            auth,
            redis,
            store,
            persistence,
            archive,
            limits,
            admin,
            campaigns,
            source: None,
        })
    } else {
        Err(errs.0)
    }
}

fn auth(e: &mut Errors, a: RawAuth, env: &dyn Fn(&str) -> Option<String>) -> AuthConfig {
    AuthConfig {
        jwt_secret: secret(
            e,
            "auth.jwt_secret",
            ENV_JWT_SECRET,
            a.jwt_secret,
            a.jwt_secret_file,
            env,
        ),
        order_token_secret: secret(
            e,
            "auth.order_token_secret",
            ENV_ORDER_TOKEN_SECRET,
            a.order_token_secret,
            a.order_token_secret_file,
            env,
        ),
        order_token_ttl: e.duration(
            "auth.order_token_ttl",
            a.order_token_ttl.as_deref(),
            Duration::from_secs(600),
            Duration::from_secs(1),
        ),
        payment_secret: optional_secret(
            e,
            "auth.payment_secret",
            ENV_PAYMENT_SECRET,
            a.payment_secret,
            a.payment_secret_file,
            env,
        ),
    }
}

/// Env var wins; otherwise exactly one of the inline value and the `_file` key.
/// As [`secret`], for one that may be left out entirely (set nowhere: `None`, no error).
fn optional_secret(
    e: &mut Errors,
    field: &str,
    var: &str,
    inline: Option<String>,
    file: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Secret> {
    if env(var).is_none() && inline.is_none() && file.is_none() {
        return None;
    }
    Some(secret(e, field, var, inline, file, env))
}

fn secret(
    e: &mut Errors,
    field: &str,
    var: &str,
    inline: Option<String>,
    file: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Secret {
    let Some((value, source)) = secret_text(e, field, var, inline, file, env) else {
        return Secret(String::new());
    };
    let len = value.len();
    Secret::new(value).unwrap_or_else(|| {
        e.push(
            source,
            format!("too short: {len} bytes, need at least {}", Secret::MIN_LEN),
        );
        Secret(String::new())
    })
}

/// The rule every secret follows: the env var wins; otherwise exactly one of the inline value
/// and the `_file` key (its text trimmed). The value and where it came from, or `None` with the
/// reason recorded. No message ever quotes a value.
fn secret_text(
    e: &mut Errors,
    field: &str,
    var: &str,
    inline: Option<String>,
    file: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<(String, String)> {
    let file_field = format!("{field}_file");
    match (env(var), inline, file) {
        (Some(v), _, _) => Some((v, format!("{field} (from env {var})"))),
        (None, Some(_), Some(_)) => {
            e.push(file_field, format!("conflicts with {field}: set only one"));
            None
        }
        (None, Some(v), None) => Some((v, field.to_owned())),
        (None, None, Some(path)) => match std::fs::read_to_string(&path) {
            Ok(text) => Some((text.trim().to_owned(), file_field)),
            Err(err) => {
                e.push(file_field, format!("cannot read {path:?}: {err}"));
                None
            }
        },
        (None, None, None) => {
            e.push(
                field,
                format!("missing: set {field}, {field}_file or env {var}"),
            );
            None
        }
    }
}

/// The Redis password, by the rule of every secret, the URL's password standing for the inline
/// value. Any non-empty one: how long it must be is the Redis server's business.
fn redis_password(
    e: &mut Errors,
    in_url: Option<String>,
    file: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Secret> {
    if env(ENV_REDIS_PASSWORD).is_none() {
        match (&in_url, &file) {
            (None, None) => return None,
            (Some(_), Some(_)) => {
                e.push(
                    "redis.password_file",
                    "conflicts with the password in redis.url: set only one",
                );
                return None;
            }
            _ => {}
        }
    }
    let (value, source) = secret_text(e, "redis.password", ENV_REDIS_PASSWORD, in_url, file, env)?;
    if value.is_empty() {
        e.push(source, "must not be empty");
        return None;
    }
    Some(Secret(value))
}

fn redis(e: &mut Errors, r: RawRedis, env: &dyn Fn(&str) -> Option<String>) -> RedisConfig {
    let half_second = Duration::from_millis(500);
    let response_timeout = e.duration(
        "redis.response_timeout",
        r.response_timeout.as_deref(),
        half_second,
        MS,
    );
    let connection_timeout = e.duration(
        "redis.connection_timeout",
        r.connection_timeout.as_deref(),
        half_second,
        MS,
    );
    let embedded = r.embedded.unwrap_or(false);
    let replica_acks = replica_acks(e, r.replica_acks, r.replica_ack_timeout.as_deref());
    if let Some(urls) = r.cluster {
        if r.url.is_some() || embedded {
            e.push(
                "redis.cluster",
                "conflicts with redis.url and redis.embedded: set exactly one of them",
            );
        }
        if urls.is_empty() {
            e.push("redis.cluster", "must name at least one node");
        }
        let mut seeds = Vec::with_capacity(urls.len());
        let mut passwords = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            let field = format!("redis.cluster[{i}]");
            // Never echoed: the URL may carry a password.
            let parsed = if url.starts_with("redis://") {
                RedisTarget::parse(url)
            } else {
                Err("must start with redis://".to_owned())
            };
            match parsed {
                Ok((target, password)) => {
                    seeds.push(target);
                    passwords.push(password);
                }
                Err(message) => e.push(&field, message),
            }
        }
        let in_url = passwords.first().cloned().flatten();
        if passwords.iter().any(|p| *p != in_url) {
            e.push(
                "redis.cluster",
                "every node must carry the same password (or none: use redis.password_file)",
            );
        }
        let password = redis_password(e, in_url, r.password_file, env);
        return RedisConfig::Cluster {
            seeds: seeds
                .into_iter()
                .map(|s| s.with_password(password.clone()))
                .collect(),
            response_timeout,
            connection_timeout,
            replica_acks,
        };
    }
    match (r.url, embedded) {
        (Some(_), true) => {
            e.push(
                "redis.embedded",
                "conflicts with redis.url: set either url or embedded = true, not both",
            );
        }
        (None, false) => {
            e.push(
                "redis.url",
                "missing: set redis.url, or redis.embedded = true for a private redis-server",
            );
        }
        (Some(url), false) => {
            let schemes = ["redis://", "rediss://", "redis+unix://", "unix://"];
            // Never echoed: the URL may carry a password.
            let parsed = if schemes.iter().any(|s| url.starts_with(s)) {
                RedisTarget::parse(&url)
            } else {
                Err(format!("must start with one of {schemes:?}"))
            };
            let (target, in_url) = parsed.unwrap_or_else(|message| {
                e.push("redis.url", message);
                (RedisTarget::local(0), None)
            });
            let password = redis_password(e, in_url, r.password_file, env);
            return RedisConfig::Url {
                target: target.with_password(password),
                response_timeout,
                connection_timeout,
                replica_acks,
            };
        }
        (None, true) => {
            if r.password_file.is_some() {
                e.push(
                    "redis.password_file",
                    "only with redis.url: the embedded redis has no password",
                );
            }
            if replica_acks.is_some() {
                e.push(
                    "redis.replica_acks",
                    "only with redis.url or redis.cluster: the embedded redis has no replicas, so \
                     no purchase could ever be acknowledged",
                );
            }
        }
    }
    let nonempty = |e: &mut Errors, field: &str, v: Option<String>, default: &str| match v {
        Some(s) if s.trim().is_empty() => {
            e.push(field, "must not be empty");
            PathBuf::new()
        }
        v => PathBuf::from(v.unwrap_or_else(|| default.into())),
    };
    RedisConfig::Embedded {
        port: e.int("redis.embedded_port", r.embedded_port, 6380, 1, 65535),
        dir: nonempty(e, "redis.embedded_dir", r.embedded_dir, "data/redis"),
        binary: nonempty(
            e,
            "redis.embedded_binary",
            r.embedded_binary,
            "redis-server",
        ),
        response_timeout,
        connection_timeout,
    }
}

/// `redis.replica_acks` and its timeout; `None` when off (0, the default).
fn replica_acks(e: &mut Errors, acks: Option<i64>, timeout: Option<&str>) -> Option<ReplicaAcks> {
    let replicas: u32 = e.int("redis.replica_acks", acks, 0, 0, 16);
    let field = "redis.replica_ack_timeout";
    let longest = Duration::from_secs(5);
    let mut timeout = e.duration(field, timeout, 50 * MS, MS);
    if timeout > longest {
        e.push(
            field,
            "must be at most 5s: with a replica missing, every purchase waits this long",
        );
        timeout = longest;
    }
    (replicas > 0).then_some(ReplicaAcks { replicas, timeout })
}

/// The payment callbacks' bucket when `[limits.payment_callback]` is absent: well above what a
/// provider sends (one callback per payment), well below what a flood could cost.
const DEFAULT_CALLBACK_LIMIT: RateLimit = RateLimit {
    per_second: NonZeroU32::MIN.saturating_add(999),
    burst: NonZeroU32::MIN.saturating_add(1999),
};

fn limits(e: &mut Errors, l: RawLimits) -> LimitsConfig {
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

/// A PostgreSQL URL from the file or the environment, checked.
fn database_url(e: &mut Errors, field: &str, raw: Option<String>) -> Option<DatabaseUrl> {
    let parsed = DatabaseUrl::new(raw?);
    if parsed.is_none() {
        e.push(field, "must be a postgres:// or postgresql:// URL");
    }
    parsed
}

//! The gateway's configuration: one TOML file (ARCHITECTURE.md §6), parsed into a raw serde struct
//! that rejects unknown keys, then validated into the typed [`Config`] with *every* bad
//! field reported at once, so `--check-config` can show an operator the whole list.
//!
//! Secrets may come from the environment (`FLASHGATE_JWT_SECRET`,
//! `FLASHGATE_ORDER_TOKEN_SECRET`, `FLASHGATE_REDIS_PASSWORD`…, which win over the file) or
//! from `*_file` keys.

mod campaign;
mod checks;
mod error;
mod raw;
mod redis_target;
#[cfg(test)]
mod tests;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{ConfigError, FieldError};
pub use redis_target::RedisTarget;

/// Environment variable that overrides `auth.jwt_secret`, so deployments keep it out of files.
pub const ENV_JWT_SECRET: &str = "FLASHGATE_JWT_SECRET";
/// Environment variable that overrides `auth.order_token_secret`.
pub const ENV_ORDER_TOKEN_SECRET: &str = "FLASHGATE_ORDER_TOKEN_SECRET";
/// Environment variable that overrides `auth.payment_secret`.
pub const ENV_PAYMENT_SECRET: &str = "FLASHGATE_PAYMENT_SECRET";
/// Environment variable that overrides `admin.token`.
pub const ENV_ADMIN_TOKEN: &str = "FLASHGATE_ADMIN_TOKEN";
/// Environment variable that overrides the password of `redis.url` (and `redis.password_file`).
pub const ENV_REDIS_PASSWORD: &str = "FLASHGATE_REDIS_PASSWORD";
/// Environment variable that overrides `store.url`.
pub const ENV_STORE_URL: &str = "FLASHGATE_STORE_URL";
/// Overrides `archive.url`, so that a password need not be written in the config file.
pub const ENV_ARCHIVE_URL: &str = "FLASHGATE_ARCHIVE_URL";

/// Everything the gateway needs to start, already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// How the HTTP listener behaves.
    pub server: ServerConfig,
    /// Keys for verifying callers and signing order tokens.
    pub auth: AuthConfig,
    /// Where the authoritative stock counters live.
    pub redis: RedisConfig,
    /// Where orders are durably stored.
    pub store: StoreConfig,
    /// How accepted orders travel from the hot path to the store.
    pub persistence: PersistenceConfig,
    /// When settled orders leave the hot tables for the archive.
    pub archive: ArchiveConfig,
    /// Admission control in front of Redis.
    pub limits: LimitsConfig,
    /// The operators' listener, apart from public traffic.
    pub admin: AdminConfig,
    /// The sales this gateway serves.
    pub campaigns: Vec<CampaignConfig>,
    /// The file this config was read from, which a reload reads again (none when it came
    /// from a string).
    pub source: Option<PathBuf>,
}

/// `[admin]`: the operators' port (`/metrics`), never exposed with the public API.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AdminConfig {
    /// Where to serve it (e.g. `127.0.0.1:9090`); none by default.
    pub listen: Option<SocketAddr>,
    /// The bearer token of the admin API (`/admin/v1/…`; `/metrics` needs none). From
    /// `admin.token`, `admin.token_file` or `FLASHGATE_ADMIN_TOKEN`; without one the admin
    /// API refuses everything.
    pub token: Option<Secret>,
}

/// `[server]`: the HTTP front door.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Address to bind (default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// This node's id (0..=255), embedded in order ids so nodes never mint the same id.
    pub node_id: u16,
    /// Largest request body accepted (default 4096): purchase bodies are tiny, and a cap keeps
    /// a flood of big bodies from eating memory.
    pub max_body_bytes: usize,
    /// How long in-flight requests get to finish after SIGTERM (default 10s).
    pub shutdown_grace: Duration,
    /// Drop connections that do not send their headers in time (default 5s): slowloris guard.
    pub header_read_timeout: Duration,
    /// Longest a request body may take to arrive (default 10s): 408 `request_timeout`. Only
    /// the body is timed, never the work after it (a purchase in Redis is not cut off).
    pub request_timeout: Duration,
    /// Open connections at most (default 10000); beyond it new ones are answered 503
    /// `too_many_connections` and closed, and the connections being served are not disturbed.
    pub max_connections: usize,
    /// Bytes of request head (request line and headers) at most (8192..=1 MiB, default 16384).
    pub max_header_bytes: usize,
    /// Headers per request at most (default 64).
    pub max_headers: usize,
    /// Concurrent HTTP/2 streams per connection at most (default 128).
    pub http2_max_streams: u32,
    /// Threads serving requests (default: one per core). Fewer than the cores when the gateway
    /// shares its machine with busy neighbours (Redis, a load generator): a runnable worker
    /// then waits out the others' time slices, which is the requests' p99 (docs/BENCHMARKS.md
    /// §10).
    pub workers: Option<usize>,
}

/// `[auth]`: secrets and token lifetimes.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthConfig {
    /// HMAC key for verifying user JWTs.
    pub jwt_secret: Secret,
    /// HMAC key for signing the order tokens handed to the payment step.
    pub order_token_secret: Secret,
    /// How long an order token stays valid (default 10m).
    pub order_token_ttl: Duration,
    /// HMAC-SHA256 key the payment provider signs its callbacks with; without it the payment
    /// callback endpoint is off (no unsigned callback is ever accepted).
    pub payment_secret: Option<Secret>,
}

/// A key that must never reach a log line: `Debug` prints `Secret(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Shortest accepted secret: shorter HMAC keys are guessable.
    pub const MIN_LEN: usize = 16;

    /// Wraps `value`, or `None` if it is shorter than [`Secret::MIN_LEN`] bytes.
    pub fn new(value: impl Into<String>) -> Option<Secret> {
        let value = value.into();
        (value.len() >= Self::MIN_LEN).then_some(Secret(value))
    }

    /// The secret itself, for the one place that needs the bytes (a MAC key).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A database URL. `Debug` hides it: it may carry a password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Accepts `postgres://` and `postgresql://` URLs.
    pub fn new(value: impl Into<String>) -> Option<Self> {
        let value = value.into();
        (value.starts_with("postgres://") || value.starts_with("postgresql://"))
            .then_some(Self(value))
    }

    /// The URL itself, for the one place that connects.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DatabaseUrl(***)")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `[redis]`: either an external server or a private one the gateway supervises
/// (ARCHITECTURE.md §6).
/// Never a fallback from one to the other: a second Redis would sell the same stock twice.
#[derive(Debug, Clone, PartialEq)]
pub enum RedisConfig {
    /// An existing Redis; unreachable at start-up is an error.
    Url {
        /// From the `redis://` or `unix://` URL, with its password held apart (or taken from
        /// `redis.password_file` / `FLASHGATE_REDIS_PASSWORD`): shown as its address only.
        target: RedisTarget,
        /// Per-command timeout (default 500ms), so a stalled Redis fails requests fast.
        response_timeout: Duration,
        /// Connect timeout (default 500ms).
        connection_timeout: Duration,
        /// Replicas that must hold a reservation batch before it is answered (off by default).
        replica_acks: Option<ReplicaAcks>,
    },
    /// A Redis Cluster, found through some of its nodes; every campaign's keys share one slot.
    Cluster {
        /// Seed nodes (`redis.cluster`), each shown as its address only; the password (from
        /// the URLs, `redis.password_file` or `FLASHGATE_REDIS_PASSWORD`) is the same for all.
        seeds: Vec<RedisTarget>,
        /// Per-command timeout (default 500ms).
        response_timeout: Duration,
        /// Connect timeout (default 500ms).
        connection_timeout: Duration,
        /// Replicas of the campaign's master that must hold a reservation batch before it is
        /// answered (off by default).
        replica_acks: Option<ReplicaAcks>,
    },
    /// A `redis-server` the gateway starts, supervises and stops (AOF on).
    Embedded {
        /// Port it listens on, on 127.0.0.1 (default 6380, to stay clear of a system Redis).
        port: u16,
        /// Its data directory (default `data/redis`).
        dir: PathBuf,
        /// The executable to run (default `redis-server`, looked up on PATH).
        binary: PathBuf,
        /// Per-command timeout (default 500ms).
        response_timeout: Duration,
        /// Connect timeout (default 500ms).
        connection_timeout: Duration,
    },
}

impl RedisConfig {
    /// The replicas every reservation batch waits for, if any (never for the embedded Redis,
    /// which has none).
    pub fn replica_acks(&self) -> Option<ReplicaAcks> {
        match self {
            Self::Url { replica_acks, .. } | Self::Cluster { replica_acks, .. } => *replica_acks,
            Self::Embedded { .. } => None,
        }
    }
}

/// `redis.replica_acks` and `redis.replica_ack_timeout`: after each reservation batch, and
/// before any answer, the gateway waits until `replicas` replicas of the master hold what the
/// batch wrote (Redis `WAIT`). A batch they do not acknowledge within `timeout` is answered
/// 503 `outcome_unknown`: Redis replicates asynchronously, and a master that dies before its
/// replicas have an order takes the order with it when a replica takes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaAcks {
    /// Replicas that must acknowledge (1..=16; `replica_acks = 0`, the default, is off).
    pub replicas: u32,
    /// Longest wait for them (1ms..=5s, default 50ms): with a replica missing, every purchase
    /// waits this long before its 503.
    pub timeout: Duration,
}

/// `[store]`: where orders are kept for good: SQLite at `path` (the embedded default), or
/// PostgreSQL at `url` (production, and whenever several gateways run).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// SQLite database file (default `data/orders.db`); unused when `url` is set.
    pub path: PathBuf,
    /// `postgres://user[:password]@host[:port]/database` (or `FLASHGATE_STORE_URL`, which wins
    /// over the file, so a password need not be in it).
    pub url: Option<DatabaseUrl>,
    /// log2 of the number of shards (0..=4, default 4): more shards, more parallel writers.
    pub shard_bits: u8,
    /// `archive.path`: the SQLite archive file (default beside `path`, `orders-archive.db`),
    /// attached to the store's connections.
    pub archive_path: PathBuf,
    /// `archive.url` (or `FLASHGATE_ARCHIVE_URL`): another PostgreSQL database for the
    /// archive; by default the archive is schema `flashgate_archive` of the store's own.
    pub archive_url: Option<DatabaseUrl>,
}

/// Where the archive of the store at `path` lives by default: beside it, `orders.db` →
/// `orders-archive.db`.
pub fn default_archive_path(path: &std::path::Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(|| "orders".to_owned(), |s| s.to_string_lossy().into_owned());
    path.with_file_name(format!("{stem}-archive.db"))
}

/// `[archive]`: the pass that moves settled orders of retired campaigns out of the hot tables
/// (ARCHITECTURE.md §9), so they stay small whatever the history. Where the archive lives is
/// part of [`StoreConfig`], which every reader opens.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveConfig {
    /// Orders last updated longer ago than this are archived (default 90 days; `0` = never).
    pub after: Option<Duration>,
    /// Rows looked at per step, one short write lock each (1..=10000, default 500).
    pub batch: usize,
    /// Time from the end of one pass to the start of the next (default 10m).
    pub interval: Duration,
    /// Accepted purchases per second on this gateway above which the pass waits (default 50;
    /// 0 = never wait): a flash sale's writes never queue behind it.
    pub pause_above: u64,
}

/// `[persistence]`: the queue and workers between the hot path and the store.
#[derive(Debug, Clone, PartialEq)]
pub struct PersistenceConfig {
    /// Writer threads (1..=64, default 1: SQLite has one writer, so a second thread would only
    /// wait for the lock; a store with parallel writers wants more).
    pub workers: usize,
    /// Orders buffered before the hot path sees back-pressure (default 65536).
    pub queue_capacity: usize,
    /// Most orders written per transaction (1..=10000, default 512).
    pub batch_size: usize,
    /// Longest a partial batch waits before it is written (default 5ms).
    pub flush_interval: Duration,
    /// How often the reconciler replays the Redis journal into the store (default 5s).
    pub reconcile_interval: Duration,
    /// Journal entries younger than this are left to the workers (default 2s).
    pub reconcile_grace: Duration,
    /// How long after its end a settled campaign stays in Redis before it is retired (default
    /// 24h; `0`: never): its keys leave Redis and it is answered from the store from then on
    /// (ARCHITECTURE.md §9). A campaign that is not settled then is retired once it is.
    pub retire_after: Option<Duration>,
}

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

impl Config {
    /// Reads and validates the file at `path`, taking secrets from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Self::from_toml_str(&text)?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parses and validates `text`, taking secrets from the process environment.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        Self::from_toml_str_with_env(text, &|name| std::env::var(name).ok())
    }

    /// Parses and validates `text`, looking environment variables up with `env` (so tests
    /// need not touch the real environment).
    pub fn from_toml_str_with_env(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let raw: raw::RawConfig = toml::from_str(text).map_err(|e| error::parse_error(text, &e))?;
        validate::validate(raw, env).map_err(ConfigError::Invalid)
    }

    /// The campaign with this id, if configured.
    pub fn campaign(&self, id: &str) -> Option<&CampaignConfig> {
        self.campaigns.iter().find(|c| c.id == id)
    }
}

//! The config file exactly as written: every key optional, unknown keys rejected.
//!
//! Numbers are `i64` (TOML's integer type) and durations/times are strings so that an
//! out-of-range or malformed value becomes a named [`super::FieldError`] when its section is
//! checked, instead of a serde error that stops at the first problem.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawConfig {
    pub server: RawServer,
    pub auth: RawAuth,
    pub redis: RawRedis,
    pub store: RawStore,
    pub persistence: RawPersistence,
    pub archive: RawArchive,
    pub limits: RawLimits,
    pub admin: RawAdmin,
    pub campaigns: Vec<RawCampaign>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawArchive {
    pub after: Option<String>,
    pub batch: Option<i64>,
    pub interval: Option<String>,
    pub pause_above: Option<i64>,
    pub path: Option<String>,
    pub url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawAdmin {
    pub listen: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawServer {
    pub listen: Option<String>,
    pub node_id: Option<i64>,
    pub max_body_bytes: Option<i64>,
    pub shutdown_grace: Option<String>,
    pub header_read_timeout: Option<String>,
    pub request_timeout: Option<String>,
    pub max_connections: Option<i64>,
    pub max_header_bytes: Option<i64>,
    pub max_headers: Option<i64>,
    pub http2_max_streams: Option<i64>,
    pub workers: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawAuth {
    pub jwt_secret: Option<String>,
    pub jwt_secret_file: Option<String>,
    pub order_token_secret: Option<String>,
    pub order_token_secret_file: Option<String>,
    pub order_token_ttl: Option<String>,
    pub payment_secret: Option<String>,
    pub payment_secret_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawRedis {
    pub url: Option<String>,
    pub cluster: Option<Vec<String>>,
    pub password_file: Option<String>,
    pub embedded: Option<bool>,
    pub embedded_port: Option<i64>,
    pub embedded_dir: Option<String>,
    pub embedded_binary: Option<String>,
    pub response_timeout: Option<String>,
    pub connection_timeout: Option<String>,
    pub replica_acks: Option<i64>,
    pub replica_ack_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawStore {
    pub path: Option<String>,
    pub url: Option<String>,
    pub shard_bits: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawPersistence {
    pub workers: Option<i64>,
    pub queue_capacity: Option<i64>,
    pub batch_size: Option<i64>,
    pub flush_interval: Option<String>,
    pub reconcile_interval: Option<String>,
    pub reconcile_grace: Option<String>,
    pub retire_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawLimits {
    pub global: Option<RawRateLimit>,
    pub per_ip: Option<RawRateLimit>,
    pub per_user: Option<RawRateLimit>,
    pub payment_callback: Option<RawRateLimit>,
    pub prune_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawRateLimit {
    pub per_second: Option<i64>,
    pub burst: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawCampaign {
    pub id: Option<String>,
    pub sku: Option<String>,
    pub name: Option<String>,
    pub unit_price_cents: Option<i64>,
    pub stock: Option<i64>,
    pub per_user_limit: Option<i64>,
    pub max_quantity: Option<i64>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub pay_timeout: Option<String>,
    pub buckets: Option<i64>,
}

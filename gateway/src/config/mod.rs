//! The gateway's configuration: one TOML file (ARCHITECTURE.md §6), parsed into a raw serde struct
//! that rejects unknown keys, then validated into the typed [`Config`] with *every* bad
//! field reported at once, so `--check-config` can show an operator the whole list.
//!
//! Secrets may come from the environment (`FLASHGATE_JWT_SECRET`,
//! `FLASHGATE_ORDER_TOKEN_SECRET`, `FLASHGATE_REDIS_PASSWORD`…, which win over the file) or
//! from `*_file` keys.
//!
//! # Layout
//!
//! - `mod.rs`: [`Config`], loaded from a file or a string, its sections checked in order.
//! - `raw.rs`: the file exactly as written (serde), before any check.
//! - `checks.rs`: `Errors`, the list every bad field is recorded in, with the checks of one
//!   value (an integer in a range, a duration, a required key).
//! - `error.rs`: [`ConfigError`] and [`FieldError`], what a caller is told.
//! - `secret.rs`: [`Secret`], and the rule every secret is read by (env, value or `_file`).
//! - One file per section, its typed struct and its checks: `server.rs`, `auth.rs`,
//!   `redis.rs` (with `redis_target.rs`: [`RedisTarget`], a Redis's address with the password
//!   kept apart), `store.rs`, `archive.rs`, `persistence.rs`, `limits.rs`, `admin.rs`,
//!   `campaign.rs`.
//! - `tests/`: unit tests, one file per subject (`mod.rs`: whole files, and the helpers the
//!   others use; `secret.rs`, `redis.rs`, `campaign.rs`, `sections.rs`).

mod admin;
mod archive;
mod auth;
mod campaign;
mod checks;
mod error;
mod limits;
mod persistence;
mod raw;
mod redis;
mod redis_target;
mod secret;
mod server;
mod store;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use self::redis::{ENV_REDIS_PASSWORD, RedisConfig, ReplicaAcks};
pub use admin::{AdminConfig, ENV_ADMIN_TOKEN};
pub use archive::ArchiveConfig;
pub use auth::{AuthConfig, ENV_JWT_SECRET, ENV_ORDER_TOKEN_SECRET, ENV_PAYMENT_SECRET};
pub use campaign::CampaignConfig;
pub use error::{ConfigError, FieldError};
pub use limits::{LimitsConfig, RateLimit};
pub use persistence::PersistenceConfig;
pub use redis_target::RedisTarget;
pub use secret::Secret;
pub use server::ServerConfig;
pub use store::{DatabaseUrl, ENV_ARCHIVE_URL, ENV_STORE_URL, StoreConfig, default_archive_path};

use checks::Errors;
use raw::RawConfig;

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
        let raw: RawConfig = toml::from_str(text).map_err(|e| error::parse_error(text, &e))?;
        validate(raw, env).map_err(ConfigError::Invalid)
    }

    /// The campaign with this id, if configured.
    pub fn campaign(&self, id: &str) -> Option<&CampaignConfig> {
        self.campaigns.iter().find(|c| c.id == id)
    }
}

/// Raw → typed conversion. Every check records a [`FieldError`] and carries on with a
/// placeholder value, so one pass reports every bad field; the placeholder config is
/// discarded if anything was recorded. The sections are checked in this order, which is the
/// order their errors are listed in.
fn validate(
    raw: RawConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<FieldError>> {
    let mut errs = Errors::default();
    let e = &mut errs;

    let admin = admin::admin(e, raw.admin, env);
    let server = server::server(e, raw.server);
    let auth = auth::auth(e, raw.auth, env);
    let redis = redis::redis(e, raw.redis, env);
    let store = store::store(e, raw.store, &raw.archive, env);
    let archive = archive::archive(e, &raw.archive);
    let persistence = persistence::persistence(e, raw.persistence);
    let limits = limits::limits(e, raw.limits);
    let campaigns = campaign::campaigns(e, raw.campaigns);

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

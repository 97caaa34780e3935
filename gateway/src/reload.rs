//! Hot reload of the campaigns from the config file (`POST /admin/v1/reload`, or SIGHUP).
//!
//! The file is validated first; an invalid one changes nothing and every bad field is named.
//! A valid one is loaded into Redis (settings only: live stock is never reset) and its new
//! catalog replaces the old one in one atomic swap, so each request sees either the old
//! campaigns or the new ones, never a mix. Campaigns already on sale keep their reservers, so
//! purchases in flight carry on. Other sections (server, Redis, store…) need a restart; a
//! reload that changes them says so and leaves them as they are.

use std::sync::Arc;

use serde::Serialize;

use crate::app::App;
use crate::config::{Config, ConfigError, FieldError};
use crate::pipeline::catalog::Catalog;
use crate::pipeline::catalog_load::{load_catalog, spec_of};

/// What a reload did.
#[derive(Debug, Serialize)]
pub struct Reloaded {
    /// Every campaign now on sale here.
    pub campaigns: Vec<String>,
    /// Of those, the ones this reload added.
    pub added: Vec<String>,
    /// Sections of the file that differ from those in force but need a restart.
    pub not_applied: Vec<&'static str>,
}

/// Why a reload changed nothing. The admin API answers it through `ApiError` (422 or 503); a
/// SIGHUP logs it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    /// The file is unreadable or invalid, or removes a campaign on sale: every bad field.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// Redis or the store failed while the campaigns were loaded; their settings were put
    /// back.
    #[error("Redis or the store could not be reached: the config in force stays")]
    Unreachable,
    /// The task that reads the file panicked.
    #[error("reading the config file failed unexpectedly")]
    Panicked,
}

fn refused(field: &str, message: impl Into<String>) -> ReloadError {
    ReloadError::Invalid(vec![FieldError {
        field: field.to_owned(),
        message: message.into(),
    }])
}

/// Reads the config file again and applies its campaigns.
///
/// # Errors
/// [`ReloadError::Invalid`] (nothing changed) for an unreadable or invalid file, or one
/// that removes a campaign on sale; [`ReloadError::Unreachable`] when Redis or the store
/// cannot be reached.
pub async fn reload(app: &App) -> Result<Reloaded, ReloadError> {
    let _one_at_a_time = app.reloading.lock().await;
    reload_locked(app).await
}

/// [`reload`], for a caller that holds `app.reloading` (an admin edit of the file).
///
/// # Errors
/// As [`reload`].
pub async fn reload_locked(app: &App) -> Result<Reloaded, ReloadError> {
    let config = read_config(app).await?;
    let current = app.catalog();
    keeps_every_campaign(&current, &config)?;
    let not_applied = not_applied(&app.config, &config);

    let catalog = load_catalog(
        &config,
        &app.redis,
        &app.scripts,
        &app.store,
        &app.reserving,
        Some(&current),
    )
    .await;
    let catalog = match catalog {
        Ok(catalog) => catalog,
        Err(e) => {
            // Redis failed between campaigns: put back the settings of those in force.
            tracing::error!(error = %e, "reload failed while loading campaigns; restoring their settings");
            restore(app, &current).await;
            return Err(ReloadError::Unreachable);
        }
    };
    let added: Vec<String> = catalog
        .campaigns()
        .filter(|c| current.get(&c.config.id).is_err())
        .map(|c| c.config.id.clone())
        .collect();
    add_journals(app, &catalog);
    let mut campaigns: Vec<String> = catalog.campaigns().map(|c| c.config.id.clone()).collect();
    campaigns.sort();
    app.catalog.store(Arc::new(catalog));
    tracing::info!(?campaigns, ?added, ?not_applied, "config reloaded");
    Ok(Reloaded {
        campaigns,
        added,
        not_applied,
    })
}

/// The config file the gateway was started from, read and validated again.
async fn read_config(app: &App) -> Result<Config, ReloadError> {
    let Some(path) = app.config.source.clone() else {
        return Err(refused(
            "(config)",
            "this gateway was not started from a file",
        ));
    };
    match tokio::task::spawn_blocking(move || Config::load(&path)).await {
        Ok(Ok(config)) => Ok(config),
        Ok(Err(ConfigError::Invalid(errors))) => Err(ReloadError::Invalid(errors)),
        Ok(Err(other)) => Err(refused("(config)", other.to_string())),
        Err(_) => Err(ReloadError::Panicked),
    }
}

/// Refuses a config that leaves out a campaign on sale here, naming each.
fn keeps_every_campaign(current: &Catalog, config: &Config) -> Result<(), ReloadError> {
    let removed: Vec<FieldError> = current
        .campaigns()
        .filter(|c| config.campaign(&c.config.id).is_none())
        .map(|c| FieldError {
            field: "campaigns".into(),
            message: format!(
                "{} is on sale here and cannot be removed by a reload: close it early instead \
                 (set its end to now)",
                c.config.id
            ),
        })
        .collect();
    if removed.is_empty() {
        Ok(())
    } else {
        Err(ReloadError::Invalid(removed))
    }
}

/// The sections of `new` that differ from `old` but need a restart.
fn not_applied(old: &Config, new: &Config) -> Vec<&'static str> {
    [
        ("server", new.server != old.server),
        ("auth", new.auth != old.auth),
        ("redis", new.redis != old.redis),
        ("store", new.store != old.store),
        ("persistence", new.persistence != old.persistence),
        ("limits", new.limits != old.limits),
        ("admin", new.admin != old.admin),
    ]
    .into_iter()
    .filter_map(|(section, changed)| changed.then_some(section))
    .collect()
}

/// The reconciler drains every journal it ever knew: add the new campaigns' before they sell.
fn add_journals(app: &App, catalog: &Catalog) {
    let mut journals = (*app.journals.load_full()).clone();
    for campaign in catalog.campaigns() {
        for keys in &campaign.layout.buckets {
            if !journals.iter().any(|k| **k == *keys) {
                journals.push(Arc::new(keys.clone()));
            }
        }
    }
    app.journals.store(Arc::new(journals));
}

/// Writes the settings of the campaigns in `catalog` to Redis again, after a reload that may
/// have written some of its own (best effort: Redis just failed). Settings only: a campaign
/// Redis no longer holds stays absent, whatever the failure was.
async fn restore(app: &App, catalog: &Catalog) {
    let mut conn = app.redis.clone();
    for campaign in catalog.campaigns() {
        let spec = spec_of(&campaign.config);
        if let Err(e) =
            flashgate_stock::apply_settings(&mut conn, &app.scripts, campaign.layout.first(), &spec)
                .await
        {
            tracing::error!(campaign = %campaign.config.id, error = %e, "could not restore a campaign's settings in Redis");
        }
    }
}

//! A whole gateway's life: start dependencies, serve, shut down in order.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use flashgate_stock::{BlockingClient, StockConnection, Timeouts};
use flashgate_stock::{Scripts, lifecycle};
use tokio::net::TcpListener;

use crate::app::{App, load_catalog};
use crate::auth::{JwtVerifier, OrderTokens};
use crate::clock::now_ms;
use crate::config::{Config, RedisConfig};
use crate::embedded_redis::{EmbeddedRedis, EmbeddedRedisError};
use crate::metrics::Metrics;
use crate::node_lease::{LeaseError, NodeLease};
use crate::order_id::{OrderIdError, OrderIdGenerator};
use crate::persistence::health::StoreHealth;
use crate::persistence::{Context, Journals, Persistence};
use crate::pipeline::catalog::Campaign;
use crate::pipeline::handoff;
use crate::pipeline::limits::Limiters;
use crate::pipeline::replicas::ReplicaWait;
use crate::redis_health::{RedisRefused, require_no_eviction};
use crate::store::{OrderStore, StoreError};

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("embedded redis: {0}")]
    EmbeddedRedis(#[from] EmbeddedRedisError),
    /// Named by address only: the URL may carry a password.
    #[error(transparent)]
    Redis(#[from] RedisRefused),
    #[error("loading campaigns: {0}")]
    Campaigns(#[from] crate::app::LoadError),
    #[error("order store: {0}")]
    Store(#[from] StoreError),
    #[error("order ids: {0}")]
    OrderIds(#[from] OrderIdError),
    #[error("{0}")]
    NodeId(#[from] LeaseError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// How often sold-out marks are checked against Redis: a returned unit sells again within it.
const SOLD_OUT_REFRESH: Duration = Duration::from_millis(500);
/// How often unpaid orders past their deadline are expired: well inside the promised second.
const EXPIRY_SWEEP: Duration = Duration::from_millis(200);
/// Deadline groups (one per reserve call) expired per script call.
const EXPIRY_GROUPS: usize = 64;

/// Runs a gateway on `listener` until `shutdown` resolves; then stops accepting, finishes
/// in-flight requests, drains the persistence queue into the store and stops an embedded Redis.
///
/// # Errors
/// When a dependency cannot be started or reached at start.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    // Handled from the very start: SIGHUP's default action would end the process, and an
    // operator may send it while the gateway is still starting.
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut seeds = Vec::new();
    let (embedded, target, timeouts) = match &config.redis {
        RedisConfig::Url {
            target,
            response_timeout,
            connection_timeout,
            ..
        } => (
            None,
            target.clone(),
            (*response_timeout, *connection_timeout),
        ),
        RedisConfig::Cluster {
            seeds: nodes,
            response_timeout,
            connection_timeout,
            ..
        } => {
            seeds = nodes
                .iter()
                .map(crate::config::RedisTarget::connection_info)
                .collect();
            let first = nodes
                .first()
                .cloned()
                .unwrap_or_else(|| crate::config::RedisTarget::local(0));
            (None, first, (*response_timeout, *connection_timeout))
        }
        RedisConfig::Embedded {
            port,
            dir,
            binary,
            response_timeout,
            connection_timeout,
        } => {
            let redis = EmbeddedRedis::start(binary, *port, dir).await?;
            let target = redis.target();
            (
                Some(redis),
                target,
                (*response_timeout, *connection_timeout),
            )
        }
    };
    let unreachable = |e| RedisRefused::unreachable(&target, &e, timeouts.1);
    let stock_timeouts = Timeouts {
        response: timeouts.0,
        connect: timeouts.1,
    };
    let (client, redis) = if seeds.is_empty() {
        (
            BlockingClient::single(target.connection_info()).map_err(unreachable)?,
            StockConnection::connect(target.connection_info(), stock_timeouts)
                .await
                .map_err(unreachable)?,
        )
    } else {
        (
            BlockingClient::cluster(seeds.clone(), None, stock_timeouts).map_err(unreachable)?,
            StockConnection::connect_cluster(seeds.clone(), None, stock_timeouts)
                .await
                .map_err(unreachable)?,
        )
    };
    // `WAIT` blocks the connection it is sent on: the waits for replicas get a connection of
    // their own, so scripts and reads never queue behind them, and a response timeout that
    // leaves room for the wait.
    let replica_acks = match config.redis.replica_acks() {
        None => None,
        Some(acks) => {
            let timeouts = Timeouts {
                response: stock_timeouts.response + acks.timeout,
                ..stock_timeouts
            };
            let conn = if seeds.is_empty() {
                StockConnection::connect(target.connection_info(), timeouts).await
            } else {
                StockConnection::connect_cluster(seeds, None, timeouts).await
            };
            tracing::info!(
                replicas = acks.replicas,
                timeout = ?acks.timeout,
                "every reservation batch waits for replicas before it is answered"
            );
            Some((conn.map_err(unreachable)?, acks))
        }
    };
    // Before anything is written: a Redis that may evict keys would lose orders.
    require_no_eviction(&mut redis.clone(), &target, timeouts.0).await?;

    // Before anything else is started: a second gateway with this node id must not run.
    let lease = NodeLease::acquire(
        &mut redis.clone(),
        config.server.node_id,
        listener.local_addr()?,
        config.server.listen.port() != 0,
    )
    .await?;
    // Renewed from now on, not once the rest has started: opening the store may take a while.
    let _keeping = AbortOnDrop(tokio::spawn(lease.clone().keep(redis.clone())));
    // A predecessor on this node id may have minted ids up to a few seconds ahead.
    lease.wait_for_clock().await;

    // Opening blocks (PostgreSQL connects and migrates): off the async workers.
    let store_config = config.store.clone();
    let store: Arc<dyn OrderStore> =
        tokio::task::spawn_blocking(move || crate::store::open(&store_config))
            .await
            .map_err(|e| StoreError::Unavailable(format!("opening the store: {e}")))??;
    let scripts = Arc::new(Scripts::new());
    let metrics = Arc::new(Metrics::default());
    let replica_wait = replica_acks.map(|(conn, acks)| {
        ReplicaWait::new(
            conn,
            acks,
            metrics.replica_wait_seconds.clone(),
            metrics.replica_shortfalls.clone(),
        )
    });
    let catalog = load_catalog(
        &config,
        &redis,
        &scripts,
        &store,
        &metrics.script_seconds,
        replica_wait.as_ref(),
        None,
    )
    .await?;
    let journals: Journals = Arc::new(ArcSwap::from_pointee(
        catalog
            .campaigns()
            .flat_map(|c| c.layout.buckets.iter().cloned().map(Arc::new))
            .collect::<Vec<_>>(),
    ));
    let (handoff, queued) = handoff::channel(config.persistence.queue_capacity);
    let store_health = Arc::new(StoreHealth::default());
    let persistence = Persistence::start(
        queued,
        Context {
            store: store.clone(),
            redis: client,
            scripts: scripts.clone(),
            campaigns: journals.clone(),
            config: config.persistence.clone(),
            health: store_health.clone(),
        },
    )?;

    let app = Arc::new(App {
        limits: Limiters::new(&config.limits),
        jwt: JwtVerifier::new(config.auth.jwt_secret.expose().as_bytes()),
        order_tokens: OrderTokens::new(config.auth.order_token_secret.expose().as_bytes()),
        ids: OrderIdGenerator::new(config.server.node_id)?
            .leased(lease.held())
            .starting_after(lease.floor_ms())
            .minting_until(lease.mint_until()),
        catalog: ArcSwap::from_pointee(catalog),
        journals,
        reloading: tokio::sync::Mutex::new(()),
        redis,
        replica_wait,
        scripts,
        handoff,
        store,
        metrics,
        store_health,
        config,
    });
    // Bound before any task starts: a port in use fails the start cleanly.
    let admin = match app.config.admin.listen {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    let background = spawn_background(&app, hangups);
    let admin = match admin {
        Some(admin) => {
            tracing::info!(addr = %admin.local_addr()?, "admin listener (/metrics, /admin/v1)");
            Some(AbortOnDrop(tokio::spawn(crate::admin::serve(
                admin,
                app.clone(),
            ))))
        }
        None => None,
    };
    tracing::info!(addr = %listener.local_addr()?, "flashgate serving");

    let server = &app.config.server;
    crate::server::serve(listener, app.clone(), shutdown, server).await;

    // No reload may swap the catalog from here on (one in progress finishes first), and the
    // admin API and background tasks stop.
    let no_more_reloads = app.reloading.lock().await;
    drop(admin);
    for task in background {
        task.abort();
    }
    // Requests still running past the grace period are refused a reservation from here on, and
    // calls in flight finish, so the persistence drain below sees every committed order.
    app.catalog().close(app.config.server.shutdown_grace).await;
    drop(no_more_reloads);
    // No order id is minted from here on: a successor may have the node id at once.
    drop(_keeping);
    lease
        .release(&mut app.redis.clone(), app.ids.last_ms())
        .await;
    // Workers drain the queue; the reconciler's last pass takes whatever the queue did not.
    drop(app);
    tokio::task::spawn_blocking(move || persistence.shutdown())
        .await
        .map_err(std::io::Error::other)?;
    if let Some(redis) = embedded {
        redis.stop().await?;
    }
    tracing::info!("flashgate stopped");
    Ok(())
}

fn spawn_background(
    app: &Arc<App>,
    hangups: Option<tokio::signal::unix::Signal>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let prune = {
        let app = app.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(app.config.limits.prune_interval);
            loop {
                tick.tick().await;
                app.limits.prune();
            }
        })
    };
    let sold_out = {
        let app = app.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SOLD_OUT_REFRESH);
            let mut conn = app.redis.clone();
            loop {
                tick.tick().await;
                if let Err(e) = app
                    .catalog()
                    .refresh_sold_out(&mut conn, &app.scripts)
                    .await
                {
                    tracing::debug!(error = %e, "sold-out refresh failed");
                }
            }
        })
    };
    let expiry = {
        let app = app.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(EXPIRY_SWEEP);
            let mut conn = app.redis.clone();
            let mut reported = Reported::default();
            loop {
                tick.tick().await;
                for campaign in app.catalog().campaigns() {
                    sweep(&app, &mut conn, campaign, &mut reported).await;
                }
            }
        })
    };
    let reload_on_hangup = {
        let app = app.clone();
        tokio::spawn(async move {
            let Some(mut hangups) = hangups else {
                tracing::warn!("SIGHUP cannot be handled here; reload through the admin API");
                return;
            };
            while hangups.recv().await.is_some() {
                match crate::reload::reload(&app).await {
                    Ok(done) => {
                        tracing::info!(campaigns = ?done.campaigns, not_applied = ?done.not_applied, "SIGHUP: config reloaded")
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "SIGHUP: reload refused; the config in force stays")
                    }
                }
            }
        })
    };
    let retirement = crate::retirement::spawn(app);
    let mut tasks = vec![prune, sold_out, expiry, reload_on_hangup, retirement];
    tasks.extend(crate::archive::spawn(app));
    tasks
}

/// Expires every due unpaid order of `campaign`. Every gateway sweeps; the script claims each
/// deadline group once, so no order is expired twice and none is missed while one gateway runs.
/// A group naming a malformed order is held (left as it is) and passed over, so it never
/// stalls the orders due after it. Malformed data is logged for an operator when it is news
/// (see [`Reported`]).
async fn sweep(
    app: &App,
    conn: &mut StockConnection,
    campaign: &Campaign,
    reported: &mut Reported,
) {
    // Redis' state of a campaign refused until repaired may be older than the store's: an
    // order paid since would be expired and its units sold again.
    if campaign.needs_repair() || campaign.is_retired() {
        return;
    }
    let mut malformed = Vec::new();
    let mut refused = false;
    // A bucket that cannot be swept (malformed data, its master down) holds no other back.
    for keys in &campaign.layout.buckets {
        if let Err(e) = sweep_bucket(app, conn, keys, &mut malformed).await {
            if e.is_corrupt() {
                refused = true;
                if reported.refused.insert(campaign.config.id.clone()) {
                    tracing::error!(campaign = %campaign.config.id, bucket = keys.bucket, error = %e, "expiry sweep refused: malformed data in Redis, nothing changed; needs an operator");
                }
            } else {
                tracing::debug!(error = %e, "expiry sweep failed");
            }
        }
    }
    if campaign.layout.is_bucketed() {
        let given_before = now_ms() - TRANSFER_REPAIR_AGE_MS;
        match flashgate_stock::buckets::repair(conn, &app.scripts, &campaign.layout, given_before)
            .await
        {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(campaign = %campaign.config.id, transfers = n, "finished stock transfers a crash left half done")
            }
            Err(e) => tracing::debug!(error = %e, "transfer repair failed"),
        }
    }
    if !refused {
        reported.refused.remove(&campaign.config.id);
    }
    let last = reported.malformed.get(&campaign.config.id);
    if last.map_or(!malformed.is_empty(), |last| *last != malformed) {
        if !malformed.is_empty() {
            tracing::error!(campaign = %campaign.config.id, orders = ?malformed, "unpaid orders past their deadline have malformed data in Redis: left as they are, not expired; needs an operator");
        }
        reported
            .malformed
            .insert(campaign.config.id.clone(), malformed);
    }
}

/// A transfer between buckets still pending after this long was cut in half by a crash (the
/// normal path completes one within a few round trips): the sweeper finishes it.
const TRANSFER_REPAIR_AGE_MS: i64 = 2_000;

/// Expires the due unpaid orders of one bucket, collecting the malformed ones it passed over.
async fn sweep_bucket(
    app: &App,
    conn: &mut StockConnection,
    keys: &flashgate_stock::CampaignKeys,
    malformed: &mut Vec<u64>,
) -> Result<(), flashgate_stock::StockError> {
    let mut held = 0;
    loop {
        let expired =
            lifecycle::expire_due(conn, &app.scripts, keys, now_ms(), EXPIRY_GROUPS, held).await?;
        app.metrics
            .expired_orders
            .fetch_add(expired.orders, std::sync::atomic::Ordering::Relaxed);
        if expired.orders > 0 {
            tracing::info!(campaign = %keys.campaign_id, bucket = keys.bucket, orders = expired.orders, units = expired.units, "unpaid orders expired");
        }
        malformed.extend(expired.malformed);
        held += expired.held_groups;
        if expired.groups < EXPIRY_GROUPS as u64 {
            return Ok(());
        }
    }
}

/// What the expiry sweeper last logged about malformed data, per campaign: it sweeps every
/// 200 ms, so it logs a change, not every sighting.
#[derive(Debug, Default)]
struct Reported {
    /// The malformed orders each sweep held.
    malformed: std::collections::HashMap<String, Vec<u64>>,
    /// Campaigns whose sweep is refused (a malformed stock or journal).
    refused: std::collections::HashSet<String>,
}

/// Aborts a background task when dropped, on every way out of [`run`].
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

//! A whole gateway's life: start dependencies, serve, shut down in order.
//!
//! [`run`] is the steps in order; each is a function below, and connecting to Redis (an
//! embedded one started first when configured) is the `redis` submodule. The loops that run
//! beside the requests are [`crate::background`].

mod redis;

use std::future::Future;
use std::sync::Arc;

use arc_swap::ArcSwap;
use flashgate_stock::{Scripts, StockConnection};
use tokio::net::TcpListener;

use crate::app::App;
use crate::auth::{JwtVerifier, OrderTokens};
use crate::background::{self, Task, Tasks};
use crate::clock::Clock;
use crate::config::Config;
use crate::embedded_redis::EmbeddedRedisError;
use crate::metrics::Metrics;
use crate::node_lease::{LeaseError, NodeLease};
use crate::order_id::{DEFAULT_MAX_ROLLBACK_WAIT, OrderIdError, OrderIdGenerator};
use crate::persistence::health::StoreHealth;
use crate::persistence::{Context, Journals, Persistence};
use crate::pipeline::catalog_load::{LoadError, load_catalog};
use crate::pipeline::handoff;
use crate::pipeline::limits::Limiters;
use crate::pipeline::replicas::ReplicaWait;
use crate::pipeline::reserver;
use crate::redis_health::RedisRefused;
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
    Campaigns(#[from] LoadError),
    #[error("order store: {0}")]
    Store(#[from] StoreError),
    #[error("order ids: {0}")]
    OrderIds(#[from] OrderIdError),
    #[error("{0}")]
    NodeId(#[from] LeaseError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Runs a gateway on `listener` until `shutdown` resolves; then stops accepting, finishes
/// in-flight requests, drains the persistence queue into the store and stops an embedded Redis.
/// `clock` is the one clock every part of the gateway reads time from (see `crate::clock`):
/// [`Clock::system`] in production, a clock a test can move in integration tests.
///
/// # Errors
/// When a dependency cannot be started or reached at start.
pub async fn run(
    listener: TcpListener,
    config: Config,
    clock: Clock,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    // Handled from the very start: an operator may send SIGHUP while the gateway is starting.
    let hangups = background::hangup::register();
    let (embedded, redis) = redis::connect(&config.redis).await?;
    let (lease, renewal) = lease_node_id(&config, &listener, &redis.conn, &clock).await?;
    let store = open_store(&config).await?;
    let (app, persistence) = build_app(config, redis, store, &lease, clock).await?;
    // Bound before any task starts: a port in use fails the start cleanly.
    let admin = match app.config.admin.listen {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    let mut tasks = background::start(&app, hangups);
    if let Some(admin) = admin {
        tracing::info!(addr = %admin.local_addr()?, "admin listener (/metrics, /admin/v1)");
        let serve = crate::admin::serve(admin, app.clone());
        tasks.push(Task::spawn("admin listener", serve));
    }
    tracing::info!(addr = %listener.local_addr()?, "flashgate serving");

    let server = &app.config.server;
    crate::server::serve(listener, app.clone(), shutdown, server).await;

    shut_down(app, tasks, lease, renewal, persistence).await?;
    if let Some(redis) = embedded {
        redis.stop().await?;
    }
    tracing::info!("flashgate stopped");
    Ok(())
}

/// Leases the node id, before anything else is started: a second gateway with this node id
/// must not run. Returns the lease and the task that renews it.
///
/// # Errors
/// When another live gateway holds the node id, or Redis cannot be reached.
async fn lease_node_id(
    config: &Config,
    listener: &TcpListener,
    redis: &StockConnection,
    clock: &Clock,
) -> Result<(NodeLease, Task), RunError> {
    let lease = NodeLease::acquire_on(
        clock.clone(),
        &mut redis.clone(),
        config.server.node_id,
        listener.local_addr()?,
        config.server.listen.port() != 0,
    )
    .await?;
    // Renewed from now on, not once the rest has started: opening the store may take a while.
    let renewal = Task::spawn("node lease renewal", lease.clone().keep(redis.clone()));
    // A predecessor on this node id may have minted ids up to a few seconds ahead.
    lease.wait_for_clock().await;
    Ok((lease, renewal))
}

/// Opens the order store, off the async workers: opening blocks (PostgreSQL connects and
/// migrates).
///
/// # Errors
/// When the store cannot be opened.
async fn open_store(config: &Config) -> Result<Arc<dyn OrderStore>, RunError> {
    let store_config = config.store.clone();
    let store = tokio::task::spawn_blocking(move || crate::store::open(&store_config))
        .await
        .map_err(|e| StoreError::Unavailable(format!("opening the store: {e}")))??;
    Ok(store)
}

/// Loads the campaigns, starts the persistence threads and builds the state every request
/// shares.
///
/// # Errors
/// When the campaigns cannot be loaded, or a persistence thread or the order ids cannot start.
async fn build_app(
    config: Config,
    redis: redis::Connections,
    store: Arc<dyn OrderStore>,
    lease: &NodeLease,
    clock: Clock,
) -> Result<(Arc<App>, Persistence), RunError> {
    let scripts = Arc::new(Scripts::new());
    let metrics = Arc::new(Metrics::default());
    let replica_wait = redis.replica_acks.map(|(conn, acks)| {
        ReplicaWait::new(
            conn,
            acks,
            metrics.replica_wait_seconds.clone(),
            metrics.replica_shortfalls.clone(),
        )
    });
    let reserving = reserver::Shared {
        script_seconds: metrics.script_seconds.clone(),
        replicas: replica_wait,
        clock: clock.clone(),
    };
    let catalog = load_catalog(&config, &redis.conn, &scripts, &store, &reserving, None).await?;
    let journals: Journals = Arc::new(ArcSwap::from_pointee(
        catalog
            .campaigns()
            .flat_map(|c| c.layout.buckets.iter().cloned().map(Arc::new))
            .collect::<Vec<_>>(),
    ));
    let (handoff, queued) = handoff::channel(config.persistence.queue_capacity);
    let store_health = Arc::new(StoreHealth::new(clock.clone()));
    let persistence = Persistence::start(
        queued,
        Context {
            store: store.clone(),
            redis: redis.client,
            scripts: scripts.clone(),
            campaigns: journals.clone(),
            config: config.persistence.clone(),
            health: store_health.clone(),
            clock: clock.clone(),
        },
    )?;
    let app = Arc::new(App {
        limits: Limiters::new(&config.limits),
        jwt: JwtVerifier::new(config.auth.jwt_secret.expose().as_bytes()),
        order_tokens: OrderTokens::new(config.auth.order_token_secret.expose().as_bytes()),
        ids: OrderIdGenerator::with_clock(
            config.server.node_id,
            clock.clone(),
            DEFAULT_MAX_ROLLBACK_WAIT,
        )?
        .leased(lease.held())
        .starting_after(lease.floor_ms())
        .minting_until(lease.mint_until()),
        catalog: ArcSwap::from_pointee(catalog),
        journals,
        reloading: tokio::sync::Mutex::new(()),
        redis: redis.conn,
        reserving,
        clock,
        scripts,
        handoff,
        store,
        metrics,
        store_health,
        config,
    });
    Ok((app, persistence))
}

/// Shuts a gateway down once it has stopped accepting, in order: reloads, background tasks
/// and the admin API stop; reservations finish; the node id is given back; the persistence
/// queue drains into the store.
///
/// # Errors
/// When the persistence drain could not be waited for.
async fn shut_down(
    app: Arc<App>,
    tasks: Tasks,
    lease: NodeLease,
    renewal: Task,
    persistence: Persistence,
) -> Result<(), RunError> {
    // No reload may swap the catalog from here on (one in progress finishes first), and the
    // admin API and background tasks stop.
    let no_more_reloads = app.reloading.lock().await;
    tasks.stop().await;
    // Requests still running past the grace period are refused a reservation from here on, and
    // calls in flight finish, so the persistence drain below sees every committed order.
    app.catalog().close(app.config.server.shutdown_grace).await;
    drop(no_more_reloads);
    // No order id is minted from here on: a successor may have the node id at once.
    renewal.stop().await;
    lease
        .release(&mut app.redis.clone(), app.ids.last_ms())
        .await;
    // Workers drain the queue; the reconciler's last pass takes whatever the queue did not.
    drop(app);
    tokio::task::spawn_blocking(move || persistence.shutdown())
        .await
        .map_err(std::io::Error::other)?;
    Ok(())
}

//! Redis at start: a private `redis-server` first if the config asks for one, then the
//! connections a gateway uses, and the check that this Redis may be used at all.

use flashgate_stock::{BlockingClient, StockConnection, Timeouts};
use redis::{ConnectionInfo, RedisError, RedisResult};

use super::RunError;
use crate::config::{RedisConfig, RedisTarget, ReplicaAcks};
use crate::embedded_redis::EmbeddedRedis;
use crate::redis_health::{RedisRefused, require_no_eviction};

/// The connections to Redis a gateway is built from.
pub(super) struct Connections {
    /// One multiplexed, self-reconnecting connection for requests and background tasks.
    pub conn: StockConnection,
    /// For the persistence threads, which are not async.
    pub client: BlockingClient,
    /// With `redis.replica_acks`: a connection of its own for the waits for replicas, and the
    /// acknowledgements each batch waits for.
    pub replica_acks: Option<(StockConnection, ReplicaAcks)>,
}

/// Starts an embedded Redis when configured, connects to Redis (one node or a cluster) and
/// refuses a Redis that may evict keys, before anything is written.
///
/// # Errors
/// When the embedded Redis cannot start, or Redis cannot be reached or used.
pub(super) async fn connect(
    config: &RedisConfig,
) -> Result<(Option<EmbeddedRedis>, Connections), RunError> {
    let (embedded, endpoint) = endpoint(config).await?;
    let client = endpoint
        .blocking_client()
        .map_err(|e| endpoint.unreachable(&e))?;
    let conn = endpoint
        .connection(endpoint.timeouts)
        .await
        .map_err(|e| endpoint.unreachable(&e))?;
    let replica_acks = replica_connection(config, &endpoint).await?;
    // Before anything is written: a Redis that may evict keys would lose orders.
    require_no_eviction(
        &mut conn.clone(),
        &endpoint.target,
        endpoint.timeouts.response,
    )
    .await?;
    Ok((
        embedded,
        Connections {
            conn,
            client,
            replica_acks,
        },
    ))
}

/// Where the gateway's Redis is, and how long it is given to answer.
struct Endpoint {
    /// The one node; for a cluster its first seed. Named in errors, checked for eviction.
    target: RedisTarget,
    /// A cluster's seeds; empty for one node.
    seeds: Vec<ConnectionInfo>,
    timeouts: Timeouts,
}

/// The configured Redis, started first if it is an embedded one.
async fn endpoint(config: &RedisConfig) -> Result<(Option<EmbeddedRedis>, Endpoint), RunError> {
    let mut seeds = Vec::new();
    let (embedded, target, timeouts) = match config {
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
            seeds = nodes.iter().map(RedisTarget::connection_info).collect();
            let first = nodes
                .first()
                .cloned()
                .unwrap_or_else(|| RedisTarget::local(0));
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
    let timeouts = Timeouts {
        response: timeouts.0,
        connect: timeouts.1,
    };
    Ok((
        embedded,
        Endpoint {
            target,
            seeds,
            timeouts,
        },
    ))
}

impl Endpoint {
    fn unreachable(&self, e: &RedisError) -> RedisRefused {
        RedisRefused::unreachable(&self.target, e, self.timeouts.connect)
    }

    /// The client of the persistence threads.
    fn blocking_client(&self) -> RedisResult<BlockingClient> {
        if self.seeds.is_empty() {
            BlockingClient::single(self.target.connection_info())
        } else {
            BlockingClient::cluster(self.seeds.clone(), None, self.timeouts)
        }
    }

    /// A multiplexed connection to the node or the cluster.
    async fn connection(&self, timeouts: Timeouts) -> RedisResult<StockConnection> {
        if self.seeds.is_empty() {
            StockConnection::connect(self.target.connection_info(), timeouts).await
        } else {
            StockConnection::connect_cluster(self.seeds.clone(), None, timeouts).await
        }
    }
}

/// With `redis.replica_acks`, the connection the waits for replicas are sent on.
///
/// `WAIT` blocks the connection it is sent on: the waits for replicas get a connection of
/// their own, so scripts and reads never queue behind them, and a response timeout that
/// leaves room for the wait.
async fn replica_connection(
    config: &RedisConfig,
    endpoint: &Endpoint,
) -> Result<Option<(StockConnection, ReplicaAcks)>, RunError> {
    let Some(acks) = config.replica_acks() else {
        return Ok(None);
    };
    let timeouts = Timeouts {
        response: endpoint.timeouts.response + acks.timeout,
        ..endpoint.timeouts
    };
    let conn = endpoint.connection(timeouts).await;
    tracing::info!(
        replicas = acks.replicas,
        timeout = ?acks.timeout,
        "every reservation batch waits for replicas before it is answered"
    );
    Ok(Some((conn.map_err(|e| endpoint.unreachable(&e))?, acks)))
}

//! Redis at start: a private `redis-server` first if the config asks for one, then the
//! connections a gateway uses, and the check that this Redis may be used at all.

use flashgate_stock::{BlockingClient, StockConnection, Timeouts};

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
    let unreachable = |e| RedisRefused::unreachable(&target, &e, timeouts.1);
    let stock_timeouts = Timeouts {
        response: timeouts.0,
        connect: timeouts.1,
    };
    let (client, conn) = if seeds.is_empty() {
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
    let replica_acks = match config.replica_acks() {
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
    require_no_eviction(&mut conn.clone(), &target, timeouts.0).await?;
    Ok((
        embedded,
        Connections {
            conn,
            client,
            replica_acks,
        },
    ))
}

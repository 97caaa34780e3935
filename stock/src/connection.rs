//! The one connection every async caller shares: the handle through which the gateway reaches
//! Redis, and the only one it holds.
//!
//! Over one Redis it is a self-reconnecting multiplexed connection (`ConnectionManager`: a plain
//! multiplexed connection never reconnects); over a Redis Cluster, the cluster client, which
//! routes each command by its keys' slot and follows MOVED/ASK and slot changes itself. The
//! gateway never sees which: every command it needs is a function of this crate over
//! [`StockConnection`], and every script keeps its keys in one slot.
//!
//! The persistence threads block on Redis; [`BlockingClient`] gives them connections to the
//! same Redis or Cluster.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};
use redis::{Cmd, ConnectionInfo, Pipeline, RedisFuture, RedisResult, Value};

/// How often the cluster client tries a command again (after a redirection, a lost node or
/// `CLUSTERDOWN`) before it gives up. The library's default, 16 with waits growing to minutes,
/// keeps a persistence thread (whose connections have no overall deadline) and so a shutdown
/// hanging for minutes on a cluster that lost a master and its replicas. Two is enough for the
/// redirections of a failover or a slot move; an error after that is answered 503 (a purchase)
/// or tried again at the next pass (persistence).
const CLUSTER_RETRIES: u32 = 2;
/// The waits between those tries, in ms: short, for the same reason.
const CLUSTER_RETRY_WAIT_MS: (u64, u64) = (50, 250);

/// How the connection behaves when Redis is slow or gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// How long one command may wait for its answer.
    pub response: Duration,
    /// How long connecting (or reconnecting) may take.
    pub connect: Duration,
}

/// A cloneable, multiplexed, self-reconnecting connection to Redis or a Redis Cluster. Clones
/// share the sockets.
#[derive(Clone)]
pub struct StockConnection {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for StockConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StockConnection")
    }
}

impl StockConnection {
    /// Connects to the Redis `info` names (its password included, never printed).
    ///
    /// # Errors
    /// When Redis cannot be reached within `timeouts.connect`, or refuses the login.
    pub async fn connect(info: ConnectionInfo, timeouts: Timeouts) -> redis::RedisResult<Self> {
        let client = redis::Client::open(info)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(timeouts.response))
            .set_connection_timeout(Some(timeouts.connect))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        Ok(Self {
            inner: Inner::Single(ConnectionManager::new_with_config(client, config).await?),
        })
    }

    /// Connects to the Redis Cluster that `seeds` (some of its nodes) belong to, logging in
    /// with `password` on every node.
    ///
    /// # Errors
    /// When no seed can be reached, or the cluster refuses the login.
    pub async fn connect_cluster(
        seeds: Vec<ConnectionInfo>,
        password: Option<&str>,
        timeouts: Timeouts,
    ) -> RedisResult<Self> {
        let client = cluster_client(seeds, password, timeouts)?;
        Ok(Self {
            inner: Inner::Cluster(client.get_async_connection().await?),
        })
    }

    /// Whether this is a Cluster: commands of several campaigns can then not share a pipeline
    /// (their keys live in different slots).
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner, Inner::Cluster(_))
    }

    /// Sends `cmd` to every master: the one Redis, or each master of the Cluster that the
    /// client is connected to, for commands about a node rather than a key (its settings, its
    /// state). Each answer comes with its node's address (`None` for the one Redis), and a
    /// node's error reply is that node's answer, not a failure of the whole (on the one Redis,
    /// any error is).
    ///
    /// # Errors
    /// When the command could not be sent to the Cluster, or a node did not answer.
    pub(crate) async fn on_every_master(
        &mut self,
        cmd: &Cmd,
    ) -> RedisResult<Vec<(Option<String>, RedisResult<Value>)>> {
        match &mut self.inner {
            Inner::Single(c) => Ok(vec![(None, c.req_packed_command(cmd).await)]),
            Inner::Cluster(c) => {
                let routing = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
                let Value::Map(answers) = c.route_command(cmd.clone(), routing).await? else {
                    return Err(redis::RedisError::from((
                        redis::ErrorKind::Client,
                        "a command sent to every master answered other than node by node",
                    )));
                };
                Ok(answers
                    .into_iter()
                    .map(|(node, answer)| {
                        let node = redis::from_redis_value::<String>(node).ok();
                        (node, answer.extract_error())
                    })
                    .collect())
            }
        }
    }
}

fn cluster_client(
    seeds: Vec<ConnectionInfo>,
    password: Option<&str>,
    timeouts: Timeouts,
) -> RedisResult<ClusterClient> {
    let mut builder = ClusterClientBuilder::new(seeds)
        .connection_timeout(timeouts.connect)
        .response_timeout(timeouts.response)
        .retries(CLUSTER_RETRIES)
        .min_retry_wait(CLUSTER_RETRY_WAIT_MS.0)
        .max_retry_wait(CLUSTER_RETRY_WAIT_MS.1);
    if let Some(password) = password {
        builder = builder.password(password);
    }
    builder.build()
}

/// Where the persistence threads get their blocking connections: the same Redis, or the same
/// Cluster, as the [`StockConnection`].
#[derive(Clone)]
pub enum BlockingClient {
    Single(redis::Client),
    Cluster(Box<ClusterClient>),
}

impl std::fmt::Debug for BlockingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Single(_) => "BlockingClient(single)",
            Self::Cluster(_) => "BlockingClient(cluster)",
        })
    }
}

impl BlockingClient {
    /// A client of the Redis `info` names.
    ///
    /// # Errors
    /// When `info` cannot be used (nothing is connected yet).
    pub fn single(info: ConnectionInfo) -> RedisResult<Self> {
        Ok(Self::Single(redis::Client::open(info)?))
    }

    /// A client of the Cluster `seeds` belong to.
    ///
    /// # Errors
    /// When the seeds cannot be used (nothing is connected yet).
    pub fn cluster(
        seeds: Vec<ConnectionInfo>,
        password: Option<&str>,
        timeouts: Timeouts,
    ) -> RedisResult<Self> {
        Ok(Self::Cluster(Box::new(cluster_client(
            seeds, password, timeouts,
        )?)))
    }

    /// A new blocking connection, answering within `timeout`.
    ///
    /// # Errors
    /// When Redis (or no node of the Cluster) can be reached.
    pub fn connect(&self, timeout: Duration) -> RedisResult<BlockingConnection> {
        Ok(match self {
            Self::Single(client) => {
                let conn = client.get_connection_with_timeout(timeout)?;
                conn.set_read_timeout(Some(timeout))?;
                conn.set_write_timeout(Some(timeout))?;
                BlockingConnection::Single(conn)
            }
            Self::Cluster(client) => {
                BlockingConnection::Cluster(Box::new(client.get_connection()?))
            }
        })
    }
}

/// A blocking connection to Redis or a Cluster, for the persistence threads.
pub enum BlockingConnection {
    Single(redis::Connection),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl std::fmt::Debug for BlockingConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlockingConnection")
    }
}

impl redis::ConnectionLike for BlockingConnection {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Self::Single(c) => c.req_command(cmd),
            Self::Cluster(c) => c.req_command(cmd),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            Self::Single(c) => c.check_connection(),
            Self::Cluster(c) => c.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            Self::Single(c) => c.is_open(),
            Self::Cluster(c) => c.is_open(),
        }
    }
}

impl ConnectionLike for StockConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.inner {
            Inner::Single(c) => c.req_packed_command(cmd),
            Inner::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.inner {
            Inner::Single(c) => c.req_packed_commands(cmd, offset, count),
            Inner::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Single(c) => c.get_db(),
            Inner::Cluster(c) => c.get_db(),
        }
    }
}

//! One test body on one Redis and on a Redis Cluster.
//!
//! Everything about a purchase, an order's lifecycle, persistence and the reconciler must hold
//! the same on the shared Redis and on a Cluster, where every campaign lives in a
//! slot of its own and commands over several campaigns cannot share a pipeline. A test written
//! once against [`TestRedis`] runs on both: [`on_each_redis!`](crate::on_each_redis) makes the
//! two test functions, `<name>::on_single_redis` and `<name>::on_cluster`. Pass the `TestRedis`
//! into the body by value, so it outlives the gateways the body starts.
//!
//! Each Cluster test starts its own private Cluster (three masters and a replica each, ~3 s),
//! killed when the test ends: nothing is shared between tests.

use std::path::PathBuf;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::redis_cluster::RedisCluster;
use crate::scenario::{CampaignSpec, Scenario};

/// Which Redis a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisKind {
    /// The Redis the test process shares (a private one, or `FLASHGATE_TEST_REDIS`).
    Single,
    /// A private Redis Cluster of this test's own.
    Cluster,
}

/// The Redis of one test; keep it alive for the test (a Cluster stops when it is dropped).
pub struct TestRedis {
    cluster: Option<RedisCluster>,
}

impl TestRedis {
    /// The shared Redis, or a newly started private Cluster.
    pub fn start(kind: RedisKind) -> Self {
        Self {
            cluster: (kind == RedisKind::Cluster).then(RedisCluster::start),
        }
    }

    pub fn kind(&self) -> RedisKind {
        match self.cluster {
            Some(_) => RedisKind::Cluster,
            None => RedisKind::Single,
        }
    }

    /// The private Cluster, on a Cluster.
    pub fn cluster(&self) -> Option<&RedisCluster> {
        self.cluster.as_ref()
    }

    /// Points `scenario`'s gateway at this Redis.
    pub fn point(&self, scenario: &mut Scenario) {
        match &self.cluster {
            Some(cluster) => scenario.redis_cluster = cluster.urls(),
            None => {
                scenario.redis_cluster.clear();
                scenario.redis_url = crate::shared_redis_url();
            }
        }
    }

    /// A scenario on this Redis with its orders in the SQLite file at `store_path`.
    pub fn scenario(&self, store_path: PathBuf, campaigns: Vec<CampaignSpec>) -> Scenario {
        let mut scenario = Scenario::new(crate::shared_redis_url(), store_path, campaigns);
        self.point(&mut scenario);
        scenario
    }

    /// A gateway on this Redis selling `campaign`, with its own SQLite store in a temporary
    /// directory: the directory (keep it alive), the scenario, the gateway and the campaign id.
    /// Like [`crate::gateway::selling`], on either Redis.
    pub fn selling(
        &self,
        campaign: CampaignSpec,
    ) -> (
        tempfile::TempDir,
        Scenario,
        crate::gateway::InProcess,
        String,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let id = campaign.id.clone();
        let scenario = self.scenario(dir.path().join("orders.db"), vec![campaign]);
        let gateway = crate::gateway::InProcess::start(&scenario);
        (dir, scenario, gateway, id)
    }

    /// A gateway on this Redis selling `campaign`, with its orders in a `backend` store: the
    /// home (keep it alive), the scenario, the gateway and the campaign id. Like
    /// [`crate::store_home::selling_on`], on either Redis.
    pub fn selling_on(
        &self,
        backend: crate::store_home::Backend,
        campaign: CampaignSpec,
    ) -> (
        crate::store_home::StoreHome,
        Scenario,
        crate::gateway::InProcess,
        String,
    ) {
        let home = crate::store_home::StoreHome::new(backend);
        let id = campaign.id.clone();
        let mut scenario = home.scenario(vec![campaign]);
        self.point(&mut scenario);
        let gateway = crate::gateway::InProcess::start(&scenario);
        (home, scenario, gateway, id)
    }

    /// A connection for reading and writing keys behind the gateway's back: on a Cluster, each
    /// command goes to the node of its key's slot.
    pub async fn conn(&self) -> RedisConn {
        match &self.cluster {
            Some(cluster) => RedisConn::Cluster(
                redis::cluster::ClusterClient::new(cluster.urls())
                    .unwrap()
                    .get_async_connection()
                    .await
                    .expect("the test's Redis Cluster"),
            ),
            None => RedisConn::Single(crate::shared_redis().await),
        }
    }
}

/// A connection to a test's Redis, one Redis or a Cluster: `redis::AsyncCommands` work on it.
#[derive(Clone)]
pub enum RedisConn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// For each named `async fn name(redis: TestRedis)` of the test file, two tests:
/// `name::on_single_redis` on the shared Redis and `name::on_cluster` on a private Cluster
/// (`cargo test on_cluster` runs every Cluster variant). The bodies stay plain functions, which
/// rustfmt and clippy see as any other.
#[macro_export]
macro_rules! on_each_redis {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn on_single_redis() {
                    super::$name($crate::redis_kind::TestRedis::start(
                        $crate::redis_kind::RedisKind::Single,
                    ))
                    .await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn on_cluster() {
                    super::$name($crate::redis_kind::TestRedis::start(
                        $crate::redis_kind::RedisKind::Cluster,
                    ))
                    .await;
                }
            }
        )*
    };
}

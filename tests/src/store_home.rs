//! Where a test's orders go: SQLite in its temporary directory, or PostgreSQL in a private
//! database created on the machine's server (`FLASHGATE_TEST_PG`, default
//! `postgres://postgres@127.0.0.1:5432/test`) and dropped after the test.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use flashgate_stock::Order;

use crate::scenario::{CampaignSpec, Scenario};

/// The two order stores the foundation's tests run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The server the PostgreSQL tests create their databases on.
pub fn admin_url() -> String {
    std::env::var("FLASHGATE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database of its own for one test; dropped (connections and all) with it.
#[derive(Debug)]
pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub fn create() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "fg_it_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        blocking(|| {
            let mut admin = admin();
            // One statement per call: neither may run inside a transaction block.
            for sql in [
                format!("DROP DATABASE IF EXISTS {name}"),
                format!("CREATE DATABASE {name}"),
            ] {
                admin.batch_execute(&sql).unwrap();
            }
        });
        let admin_url = admin_url();
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(b, _)| b);
        let url = format!("{base}/{name}");
        Self { name, url }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        blocking(|| {
            let _ = admin().batch_execute(&sql);
        });
    }
}

/// Runs blocking PostgreSQL client work on a thread of its own: its client runs a runtime of
/// its own, which tokio forbids on a thread that drives async tasks (as a test's does).
fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

fn admin() -> postgres::Client {
    postgres::Client::connect(&admin_url(), postgres::NoTls)
        .expect("PostgreSQL at FLASHGATE_TEST_PG (default postgres://postgres@127.0.0.1:5432/test)")
}

/// A test's temporary directory and, on PostgreSQL, its database: keep it alive for the test.
#[derive(Debug)]
pub struct StoreHome {
    pub dir: tempfile::TempDir,
    pub database: Option<PgDatabase>,
}

impl StoreHome {
    pub fn new(backend: Backend) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            database: (backend == Backend::Postgres).then(PgDatabase::create),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A scenario on the shared Redis whose orders go to this home.
    pub fn scenario(&self, campaigns: Vec<CampaignSpec>) -> Scenario {
        let mut scenario = Scenario::new(
            crate::shared_redis_url(),
            self.dir.path().join("orders.db"),
            campaigns,
        );
        scenario.store_url = self.database.as_ref().map(|d| d.url.clone());
        scenario
    }
}

/// Every order of `campaign_id` in the store `scenario` writes to, whichever it is. Blocking,
/// on a thread of its own, so async tests may call it.
pub fn stored(scenario: &Scenario, campaign_id: &str) -> Vec<Order> {
    let config = scenario.config().store;
    blocking(|| {
        flashgate::store::open(&config)
            .unwrap()
            .orders_of_campaign(campaign_id)
            .unwrap()
    })
}

/// A gateway on the shared Redis selling `campaign`, with its orders in a `backend` store: the
/// home (keep it alive), the scenario, the gateway and the campaign id.
pub fn selling_on(
    backend: Backend,
    campaign: CampaignSpec,
) -> (StoreHome, Scenario, crate::gateway::InProcess, String) {
    let home = StoreHome::new(backend);
    let id = campaign.id.clone();
    let scenario = home.scenario(vec![campaign]);
    let gateway = crate::gateway::InProcess::start(&scenario);
    (home, scenario, gateway, id)
}

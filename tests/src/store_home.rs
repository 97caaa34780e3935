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
    /// The role that owns the database and that `url` logs in as, when not the admin's.
    pub owner: Option<String>,
}

impl PgDatabase {
    /// A database owned by a role of its own, which `url` logs in as: taking that role's
    /// login away is a store outage for whoever uses `url`, and for nobody else.
    pub fn create_with_owner() -> Self {
        let mut db = Self::create();
        let role = format!("{}_owner", db.name);
        let (name, r) = (db.name.clone(), role.clone());
        blocking(move || {
            let mut admin = admin();
            admin
                .batch_execute(&format!("DROP ROLE IF EXISTS {r}; CREATE ROLE {r} LOGIN"))
                .unwrap();
            admin
                .batch_execute(&format!("ALTER DATABASE {name} OWNER TO {r}"))
                .unwrap();
        });
        db.url = db.url.replacen("://postgres@", &format!("://{role}@"), 1);
        assert!(
            db.url.contains(&role),
            "admin URL must log in as postgres: {}",
            db.url
        );
        db.owner = Some(role);
        db
    }

    /// Takes the owner's login away and ends its sessions (`false`), or gives it back (`true`).
    pub fn set_login(&self, allowed: bool) {
        let role = self.owner.clone().expect("a database with its own owner");
        blocking(move || {
            let mut admin = admin();
            let login = if allowed { "LOGIN" } else { "NOLOGIN" };
            admin
                .batch_execute(&format!("ALTER ROLE {role} {login}"))
                .unwrap();
            if !allowed {
                admin
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                        &[&role],
                    )
                    .unwrap();
            }
        });
    }

    /// Runs `sql` in this database as the admin, behind the gateway's back.
    pub fn execute(&self, sql: &str) {
        let sql = sql.to_owned();
        let admin_url = admin_url();
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(b, _)| b);
        let as_admin = format!("{base}/{}", self.name);
        blocking(move || {
            postgres::Client::connect(&as_admin, postgres::NoTls)
                .unwrap()
                .batch_execute(&sql)
                .unwrap();
        });
    }

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
        Self {
            name,
            url,
            owner: None,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let mut sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE);", self.name);
        if let Some(role) = &self.owner {
            sql.push_str(&format!("DROP ROLE IF EXISTS {role};"));
        }
        blocking(|| {
            let mut admin = admin();
            // One statement per call: DROP DATABASE may not run inside a transaction block.
            for statement in sql.split(';').filter(|s| !s.trim().is_empty()) {
                let _ = admin.batch_execute(statement);
            }
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

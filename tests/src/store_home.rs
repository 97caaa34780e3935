//! Where a test's orders go: SQLite in its temporary directory, or PostgreSQL in a database of
//! its own on the test process's server (a private one the test kit starts, or
//! `FLASHGATE_TEST_PG`), dropped after the test.

use std::path::Path;

use flashgate_stock::Order;
use flashgate_testkit::Database;
use flashgate_testkit::postgres::{admin_execute, admin_try_execute, blocking};

use crate::scenario::{CampaignSpec, Scenario};

/// The two order stores the foundation's tests run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database of its own for one test; dropped (connections and all) with it.
#[derive(Debug)]
pub struct PgDatabase {
    pub name: String,
    pub url: String,
    /// The role that owns the database and that `url` logs in as, when not the admin's.
    pub owner: Option<String>,
    /// The database itself, which drops it (again: a database with an owner of its own goes
    /// in [`PgDatabase`]'s drop, before the role).
    database: Database,
}

impl PgDatabase {
    /// A database owned by a role of its own, which `url` logs in as: taking that role's
    /// login away is a store outage for whoever uses `url`, and for nobody else.
    pub fn create_with_owner() -> Self {
        let mut db = Self::create();
        let role = format!("{}_owner", db.name);
        admin_execute(&[
            format!("DROP ROLE IF EXISTS {role}"),
            format!("CREATE ROLE {role} LOGIN"),
            format!("ALTER DATABASE {} OWNER TO {role}", db.name),
        ]);
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
        let login = if allowed { "LOGIN" } else { "NOLOGIN" };
        let mut statements = vec![format!("ALTER ROLE {role} {login}")];
        if !allowed {
            statements.push(format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"
            ));
        }
        admin_execute(&statements);
    }

    /// Runs `sql` in this database as the admin, behind the gateway's back.
    pub fn execute(&self, sql: &str) {
        let as_admin = self.database.url.clone();
        blocking(move || {
            postgres::Client::connect(&as_admin, postgres::NoTls)
                .unwrap()
                .batch_execute(sql)
                .unwrap();
        });
    }

    pub fn create() -> Self {
        let database = Database::create("fg_it");
        Self {
            name: database.name.clone(),
            url: database.url.clone(),
            owner: None,
            database,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Some(role) = &self.owner {
            // A role may only go once it owns nothing: the database first (`self.database`'s
            // own drop comes after this one), then the role.
            let statements = [
                format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
                format!("DROP ROLE IF EXISTS {role}"),
            ];
            admin_try_execute(&statements);
        }
    }
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

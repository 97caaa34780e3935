//! Config text for one test: its own campaign ids, store file and secrets.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

pub const JWT_SECRET: &str = "integration-test-jwt-secret";
pub const ORDER_TOKEN_SECRET: &str = "integration-test-order-token-secret";
pub const PAYMENT_SECRET: &str = "integration-test-payment-secret";

/// A campaign of a test.
#[derive(Debug, Clone)]
pub struct CampaignSpec {
    pub id: String,
    pub stock: u64,
    pub per_user_limit: u32,
    pub max_quantity: u32,
    pub start: String,
    pub end: String,
    pub pay_timeout: String,
    pub unit_price_cents: i64,
    /// Stock buckets (1: not split).
    pub buckets: u32,
}

/// A campaign id no other test or run uses, so tests can share one Redis.
pub fn unique_id(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A node id that no gateway on the shared Redis holds now. Gateways lease their node id (see
/// `flashgate::node_lease`), and the tests run many gateways at once, from several processes:
/// a counter in the shared Redis hands each a different one, skipping ids still leased.
pub fn fresh_node_id() -> u16 {
    use redis::Commands as _;
    let mut conn = redis::Client::open(crate::shared_redis_url())
        .and_then(|c| c.get_connection())
        .expect("the shared Redis");
    for _ in 0..256 {
        let n: u64 = conn.incr("fg:test:node-id-counter", 1).unwrap();
        let id = (n % 256) as u16;
        let taken: bool = conn
            .exists(flashgate_stock::node::NodeKeys::new(id).lease)
            .unwrap();
        if !taken {
            return id;
        }
    }
    panic!("every node id is leased on the shared Redis");
}

impl CampaignSpec {
    /// An open campaign (started a day ago, ends in a day).
    pub fn open(prefix: &str, stock: u64, per_user_limit: u32) -> Self {
        Self {
            id: unique_id(prefix),
            stock,
            per_user_limit,
            max_quantity: per_user_limit,
            start: "2020-01-01T00:00:00Z".into(),
            end: "2099-01-01T00:00:00Z".into(),
            pay_timeout: "15m".into(),
            unit_price_cents: 1999,
            buckets: 1,
        }
    }
}

/// A whole test config.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub redis_url: String,
    /// Seed URLs of a Redis Cluster: when set, `[redis] cluster` replaces `url`.
    pub redis_cluster: Vec<String>,
    /// Extra lines of the `[redis]` table (e.g. `password_file = "…"`).
    pub redis_extra: String,
    pub store_path: PathBuf,
    /// PostgreSQL instead of SQLite at `store_path`.
    pub store_url: Option<String>,
    pub campaigns: Vec<CampaignSpec>,
    /// Extra TOML appended as is (e.g. `[limits.per_ip]` tables).
    pub extra: String,
    /// Extra lines of the `[server]` table (e.g. `max_connections = 64`).
    pub server_extra: String,
    pub node_id: u16,
    pub listen: String,
    /// Lines of the `[persistence]` table.
    pub persistence: String,
}

impl Scenario {
    pub fn new(redis_url: String, store_path: PathBuf, campaigns: Vec<CampaignSpec>) -> Self {
        Self {
            redis_url,
            redis_cluster: Vec::new(),
            redis_extra: String::new(),
            store_path,
            store_url: None,
            campaigns,
            extra: String::new(),
            server_extra: String::new(),
            node_id: fresh_node_id(),
            listen: "127.0.0.1:0".into(),
            persistence: "reconcile_interval = \"500ms\"\nreconcile_grace = \"200ms\"\n".into(),
        }
    }

    pub fn toml(&self) -> String {
        let mut t = format!(
            r#"
[server]
listen = "{listen}"
node_id = {node}
shutdown_grace = "5s"
{server_extra}

[auth]
jwt_secret = "{JWT_SECRET}"
order_token_secret = "{ORDER_TOKEN_SECRET}"
payment_secret = "{PAYMENT_SECRET}"

[redis]
{redis}
{redis_extra}

[store]
path = "{store}"
{store_url}

[persistence]
{persistence}
"#,
            listen = self.listen,
            node = self.node_id,
            server_extra = self.server_extra,
            redis = if self.redis_cluster.is_empty() {
                format!("url = \"{}\"", self.redis_url)
            } else {
                format!("cluster = {:?}", self.redis_cluster)
            },
            redis_extra = self.redis_extra,
            store = self.store_path.display(),
            store_url = self
                .store_url
                .as_ref()
                .map_or(String::new(), |url| format!("url = \"{url}\"")),
            persistence = self.persistence,
        );
        for c in &self.campaigns {
            write!(
                t,
                r#"
[[campaigns]]
id = "{id}"
sku = "SKU-{id}"
name = "test campaign {id}"
unit_price_cents = {price}
stock = {stock}
per_user_limit = {limit}
max_quantity = {max}
start = "{start}"
end = "{end}"
pay_timeout = "{pay}"
buckets = {buckets}
"#,
                id = c.id,
                price = c.unit_price_cents,
                stock = c.stock,
                limit = c.per_user_limit,
                max = c.max_quantity,
                start = c.start,
                end = c.end,
                pay = c.pay_timeout,
                buckets = c.buckets,
            )
            .unwrap();
        }
        t.push_str(&self.extra);
        t
    }

    pub fn config(&self) -> flashgate::config::Config {
        flashgate::config::Config::from_toml_str_with_env(&self.toml(), &|_| None)
            .unwrap_or_else(|e| panic!("test config invalid: {e}\n{}", self.toml()))
    }
}

//! A master SIGKILLed under load from two gateway processes: the replica takes over, the
//! gateways sell again without a restart, and no acknowledged order is lost.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use flashgate_stock::{CampaignKeys, StockConnection};
use flashgate_tests::client::{Client, Reply};
use flashgate_tests::gateway::Process;
use flashgate_tests::redis_cluster::RedisCluster;
use flashgate_tests::scenario::{CampaignSpec, Scenario, fresh_node_id};
use flashgate_tests::store_home::{Backend, StoreHome, stored};
use http::StatusCode;
use serde_json::json;
use tokio::task::JoinHandle;

use crate::support::{
    ACKS, cluster_conn, missing_in_redis, order_id, settle, unknown_order, wait_for_promotion,
};

/// What one purchase of the load answered.
struct Sale {
    campaign: String,
    gateway: usize,
    user: String,
    started: Instant,
    reply: Reply,
}

/// Two gateway processes, many buyers on two campaigns; the master serving one campaign is
/// SIGKILLed mid-load. Its replica takes over, the gateways find it without a restart and sell
/// again (once the old master is back as a replica to acknowledge), and afterwards every
/// acknowledged order is in Redis and in the store, no unit is sold twice, and every
/// `outcome_unknown` is settled by its token retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_under_load_loses_no_acknowledged_order() {
    let mut cluster = RedisCluster::start_with_node_timeout(Duration::from_millis(1000));
    let home = StoreHome::new(Backend::Postgres);
    let stock = 20_000;
    let (a, b) = (
        CampaignSpec::open("kill-a", stock, 1),
        CampaignSpec::open("kill-b", stock, 1),
    );
    let campaigns = [a.id.clone(), b.id.clone()];
    let mut base = home.scenario(vec![a, b]);
    base.redis_cluster = cluster.urls();
    base.redis_extra = ACKS.into();
    let gateways: Vec<Process> = (0..2)
        .map(|_| {
            let mut scenario = base.clone();
            scenario.node_id = fresh_node_id();
            Process::start(&scenario, home.path())
        })
        .collect();
    let clients: Vec<Client> = gateways.iter().map(Process::client).collect();
    let key = CampaignKeys::new(&campaigns[0]).stock;
    let (master, replicas) = cluster.master_and_replicas_of(&key);

    let load = Load::start(&clients, &campaigns);
    load.until_both_sell_a_since(
        Instant::now(),
        Duration::from_secs(20),
        "no sale before the kill",
    )
    .await;
    // Mid-load: the kill lands while batches are in flight.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    cluster.kill(master);
    let killed = Instant::now();
    let cluster = tokio::task::spawn_blocking(move || {
        let took = wait_for_promotion(&cluster, &key, replicas[0]);
        eprintln!("failover took {took:?}");
        cluster.restart(master);
        cluster.wait_until_replicating(master);
        cluster
    })
    .await
    .unwrap();
    let replicated = Instant::now();
    // Both gateways sell the killed master's campaign again, without a restart.
    load.until_both_sell_a_since(
        replicated,
        Duration::from_secs(30),
        "the gateways never sold again",
    )
    .await;
    eprintln!("selling again {:?} after the kill", killed.elapsed());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sales = load.finish().await;

    let (mut acknowledged, unknown) = tally(&sales);
    settle_unknown_outcomes(&clients, &unknown, &mut acknowledged).await;

    let mut conn = cluster_conn(&cluster).await;
    for id in &campaigns {
        let orders = acknowledged.remove(id.as_str()).unwrap_or_default();
        check_campaign(&cluster, &mut conn, &base, id, &orders, stock).await;
    }
    drop(gateways);
}

/// 24 buyers buying in a loop, each purchase on the two campaigns and the two gateways in
/// turn, until stopped; every answer is kept.
struct Load {
    /// The campaign whose master is killed.
    campaign_a: String,
    stop: Arc<AtomicBool>,
    sales: Arc<std::sync::Mutex<Vec<Sale>>>,
    workers: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(clients: &[Client], campaigns: &[String; 2]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sales = Arc::new(std::sync::Mutex::new(Vec::<Sale>::new()));
        let workers = (0..24)
            .map(|w| {
                let (clients, campaigns) = (clients.to_vec(), campaigns.clone());
                let (stop, sales) = (stop.clone(), sales.clone());
                tokio::spawn(async move {
                    let mut n = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let (gateway, campaign) = ((w + n) % 2, campaigns[n % 2].clone());
                        let user = format!("w{w}-{n}");
                        let started = Instant::now();
                        let reply = clients[gateway]
                            .purchase(&user, json!({ "campaign_id": campaign }))
                            .await
                            .unwrap_or_else(|e| panic!("gateway {gateway} stopped answering: {e}"));
                        sales.lock().unwrap().push(Sale {
                            campaign,
                            gateway,
                            user,
                            started,
                            reply,
                        });
                        n += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
            })
            .collect();
        Self {
            campaign_a: campaigns[0].clone(),
            stop,
            sales,
            workers,
        }
    }

    /// Whether `gateway` accepted a purchase of the first campaign begun at or after `since`.
    fn accepted_on_a_since(&self, since: Instant, gateway: usize) -> bool {
        self.sales.lock().unwrap().iter().any(|s| {
            s.campaign == self.campaign_a
                && s.gateway == gateway
                && s.started >= since
                && s.reply.status == StatusCode::ACCEPTED
        })
    }

    /// Waits until both gateways accepted a purchase of the first campaign begun at or after
    /// `since`, failing with `what` after `patience`.
    async fn until_both_sell_a_since(&self, since: Instant, patience: Duration, what: &str) {
        let deadline = Instant::now() + patience;
        while !(self.accepted_on_a_since(since, 0) && self.accepted_on_a_since(since, 1)) {
            assert!(Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the buyers and returns every answer they got.
    async fn finish(self) -> Vec<Sale> {
        self.stop.store(true, Ordering::Relaxed);
        for worker in self.workers {
            worker.await.unwrap();
        }
        std::mem::take(&mut *self.sales.lock().unwrap())
    }
}

/// The acknowledged orders of each campaign.
type Acknowledged<'a> = HashMap<&'a str, Vec<u64>>;

/// The acknowledged orders of each campaign, and every `outcome_unknown` with its token;
/// any answer but these and the 503s that record nothing fails the test.
fn tally(sales: &[Sale]) -> (Acknowledged<'_>, Vec<(&Sale, String)>) {
    let mut acknowledged = Acknowledged::new();
    let mut unknown = Vec::new();
    let mut codes: HashMap<String, usize> = HashMap::new();
    for s in sales {
        *codes
            .entry(format!("{} {}", s.reply.status.as_u16(), s.reply.code()))
            .or_default() += 1;
        match (s.reply.status, s.reply.code()) {
            (StatusCode::ACCEPTED, _) => acknowledged
                .entry(&s.campaign)
                .or_default()
                .push(order_id(&s.reply)),
            (StatusCode::SERVICE_UNAVAILABLE, "outcome_unknown") => {
                unknown.push((s, unknown_order(&s.reply).1));
            }
            // Nothing recorded: Redis could not be reached, or the gateway was saturated.
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "redis_unavailable" | "overloaded" | "campaign_not_loaded",
            ) => {}
            (status, _) => panic!("{status}: {}", s.reply.body),
        }
    }
    eprintln!("{} purchases: {codes:?}", sales.len());
    (acknowledged, unknown)
}

/// Every unknown outcome settled by its token retry: a real order, or nothing.
async fn settle_unknown_outcomes<'a>(
    clients: &[Client],
    unknown: &[(&'a Sale, String)],
    acknowledged: &mut Acknowledged<'a>,
) {
    for (s, token) in unknown {
        let r = settle(
            &clients[s.gateway],
            &s.user,
            &s.campaign,
            Some(token.clone()),
        )
        .await;
        match r.status {
            StatusCode::ACCEPTED | StatusCode::OK => acknowledged
                .entry(&s.campaign)
                .or_default()
                .push(order_id(&r)),
            other => panic!("{other}: {}", r.body),
        }
    }
}

/// Campaign `id` after the failover: its acknowledged `orders` distinct, within the stock,
/// all in Redis and none besides, their units gone from its stock, and all in the store.
async fn check_campaign(
    cluster: &RedisCluster,
    conn: &mut StockConnection,
    base: &Scenario,
    id: &str,
    orders: &[u64],
    stock: u64,
) {
    let distinct: HashSet<u64> = orders.iter().copied().collect();
    assert_eq!(distinct.len(), orders.len(), "an order acknowledged twice");
    assert!(orders.len() as u64 <= stock, "oversold {id}");
    let lost = missing_in_redis(cluster, id, orders).await;
    assert_eq!(lost, [0u64; 0], "acknowledged orders of {id} lost");
    // Redis holds exactly the acknowledged orders, and their units are gone from its stock.
    let keys = CampaignKeys::new(id);
    let held = flashgate_stock::orders_held(conn, &keys).await.unwrap();
    assert_eq!(
        held,
        orders.len() as u64,
        "orders of {id} nobody was told of"
    );
    let left = flashgate_stock::remaining_stock(conn, &keys)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        left as u64 + held,
        stock,
        "units of {id} counted twice or lost"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let in_store: HashSet<u64> = stored(base, id).iter().map(|o| o.order_id).collect();
        if distinct.is_subset(&in_store) {
            assert_eq!(in_store.len(), distinct.len(), "stored orders of {id}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} acknowledged orders of {id} never stored",
            distinct.difference(&in_store).count()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

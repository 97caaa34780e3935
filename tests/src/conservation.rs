//! Conservation of a bucketed campaign's stock, checked against Redis while it sells:
//! Σ bucket stock + Σ pending transfers + units taken = total.
//!
//! Two checks make one sample. Each bucket, read atomically by a script (one slot): its share
//! equals its stock plus the units of its live orders (unpaid or paid), counted from the
//! orders themselves. The campaign, by the stock crate's census (a double collect over the
//! buckets): the shares plus the pending transfers add up to the total. Together they say
//! Σ stock + Σ pending + Σ units of live orders = total.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use flashgate_stock::buckets::Census;
use flashgate_stock::{CampaignLayout, Scripts, StockConnection, Timeouts};
use redis::IntoConnectionInfo as _;

/// share, stock and units of live orders of one bucket, at one moment.
const BUCKET_SCRIPT: &str = r"
local share = tonumber(redis.call('HGET', KEYS[1], 'stock_total') or '0')
local stock = tonumber(redis.call('GET', KEYS[2]) or '0')
local taken = 0
local orders = redis.call('HVALS', KEYS[3])
for i = 1, #orders do
  local qty, status = string.match(orders[i], '^[^|]*|(%d+)|[^|]*|[^|]*|([^|]*)|')
  if status == 'pending_payment' or status == 'paid' then
    taken = taken + tonumber(qty)
  end
end
return {share, stock, taken}
";

/// A connection to the cluster (or one Redis) a test's gateways use.
pub async fn connect(cluster: &[String]) -> StockConnection {
    let timeouts = Timeouts {
        response: Duration::from_secs(5),
        connect: Duration::from_secs(5),
    };
    let seeds = cluster
        .iter()
        .map(|u| u.as_str().into_connection_info().unwrap())
        .collect();
    StockConnection::connect_cluster(seeds, None, timeouts)
        .await
        .unwrap()
}

/// One sample: `Err` says what does not add up.
pub async fn check(
    conn: &mut StockConnection,
    layout: &CampaignLayout,
    total: u64,
) -> Result<Census, String> {
    let script = redis::Script::new(BUCKET_SCRIPT);
    for keys in &layout.buckets {
        let (share, stock, taken): (i64, i64, i64) = script
            .key(&keys.meta)
            .key(&keys.stock)
            .key(&keys.orders)
            .invoke_async(conn)
            .await
            .map_err(|e| e.to_string())?;
        if share != stock + taken {
            return Err(format!(
                "bucket {}: share {share} != stock {stock} + taken {taken}",
                keys.bucket
            ));
        }
    }
    let census = Census::take(conn, &Scripts::new(), layout)
        .await
        .map_err(|e| e.to_string())?;
    if census.total() != i64::try_from(total).unwrap() {
        return Err(format!(
            "Σ shares + pending = {} != total {total}: {census:?}",
            census.total()
        ));
    }
    Ok(census)
}

/// Samples conservation until stopped: how many samples were taken, and every violation.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(u64, Vec<String>)>,
}

impl Sampler {
    pub fn start(mut conn: StockConnection, layout: CampaignLayout, total: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let (mut samples, mut violations) = (0, Vec::new());
            while !flag.load(Ordering::Relaxed) {
                match check(&mut conn, &layout, total).await {
                    Ok(_) => samples += 1,
                    // A census that found transfers never pausing is no sample, not a breach.
                    Err(e) if e.contains("never paused") => {}
                    Err(e) => violations.push(e),
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (samples, violations)
        });
        Self { stop, task }
    }

    /// Stops sampling: (samples, violations).
    pub async fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

//! `flashgate-bench archive`: how fast the archive pass empties the hot tables (issue #13).
//! Fills a store with settled orders of a retired campaign (and a share of a live one's, which
//! must stay), then runs the pass's steps back to back and reports rows a second and the hot
//! tables' size before and after. With `--seed-only` it leaves the filled store for a gateway,
//! to measure a flash sale during a pass (`docs/bench/archive-during-flash.sh`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use flashgate::order_id::shard_gene;
use flashgate::store::{OrderStore, PostgresStore, Retirement, SqliteStore};
use flashgate_stock::{Order, OrderStatus};

/// The campaign whose orders are archived, and the live one whose orders stay.
pub const RETIRED: &str = "archive-history";
const LIVE: &str = "archive-live";
/// Orders written per transaction while filling.
const FILL_BATCH: usize = 5_000;
/// The archive cutoff the pass uses: every seeded order was last updated long before it.
const DAY_MS: i64 = 24 * 3_600_000;

#[derive(Debug, clap::Args)]
pub struct ArchiveArgs {
    /// SQLite store file (its archive beside it); a fresh temporary one by default.
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// A PostgreSQL database instead (give it an empty one).
    #[arg(long)]
    pub store_url: Option<String>,
    /// Settled orders of the retired campaign.
    #[arg(long, default_value_t = 1_000_000)]
    pub orders: u64,
    /// Orders of a live campaign, besides: they must stay hot.
    #[arg(long, default_value_t = 100_000)]
    pub live_orders: u64,
    /// Rows a step (the gateway's `archive.batch`).
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Fill the store and stop, leaving the pass to a gateway.
    #[arg(long)]
    pub seed_only: bool,
    /// Buyers the orders are spread over.
    #[arg(long, default_value_t = 50_000)]
    pub users: u64,
}

/// Fills the store, runs the pass, prints the report; false if an order went missing or a
/// live one moved.
///
/// # Errors
/// The store could not be opened or written.
pub fn run(args: &ArchiveArgs) -> anyhow::Result<bool> {
    let temporary = tempfile::tempdir()?;
    let path = args
        .path
        .clone()
        .unwrap_or_else(|| temporary.path().join("orders.db"));
    let store: Box<dyn OrderStore> = match &args.store_url {
        Some(url) => Box::new(PostgresStore::open(url, 4)?),
        None => Box::new(SqliteStore::open(&path, 4)?),
    };
    let now = flashgate::clock::now_ms();
    let started = Instant::now();
    fill(store.as_ref(), args, now)?;
    let filled = started.elapsed();
    store.retire_campaign(
        RETIRED,
        &Retirement {
            stock_total: args.orders,
            remaining: 0,
            retired_at_ms: now - 100 * DAY_MS,
        },
    )?;
    let before = store.row_counts()?;
    let bytes_before = hot_bytes(args, &path)?;
    println!(
        "filled {} + {} orders in {:.1}s ({:.0} orders/s); hot rows {}, hot tables {:.1} MB",
        args.orders,
        args.live_orders,
        filled.as_secs_f64(),
        (args.orders + args.live_orders) as f64 / filled.as_secs_f64(),
        before.hot,
        bytes_before as f64 / 1e6
    );
    if args.seed_only {
        if args.path.is_none() {
            anyhow::bail!("--seed-only needs --path or --store-url to leave the store somewhere");
        }
        return Ok(true);
    }

    let (moved, took) = pass(store.as_ref(), args.batch, now - 30 * DAY_MS)?;
    let after = store.row_counts()?;
    let bytes_after = hot_bytes(args, &path)?;
    println!(
        "archived {moved} orders in {:.2}s: {:.0} rows/s ({} rows a step)",
        took.as_secs_f64(),
        moved as f64 / took.as_secs_f64(),
        args.batch
    );
    println!(
        "hot rows {} -> {}, archived rows {}; hot tables {:.1} MB -> {:.1} MB in use",
        before.hot,
        after.hot,
        after.archived,
        bytes_before as f64 / 1e6,
        bytes_after as f64 / 1e6
    );
    let ok = moved == args.orders
        && after.hot == args.live_orders
        && after.archived == args.orders
        && store.count_of_campaign(LIVE)? == args.live_orders;
    if !ok {
        println!("FAILED: expected every retired order archived and every live one hot");
    }
    Ok(ok)
}

/// Writes the orders: the retired campaign's settled ones over three months, ninety to a
/// hundred and eighty days ago (so PostgreSQL's archive gets several monthly partitions),
/// and the live campaign's.
fn fill(store: &dyn OrderStore, args: &ArchiveArgs, now: i64) -> anyhow::Result<()> {
    let total = args.orders + args.live_orders;
    let span = 90 * DAY_MS;
    let first = now - 180 * DAY_MS;
    let mut batch = Vec::with_capacity(FILL_BATCH);
    for n in 0..total {
        let retired = n < args.orders;
        let user = format!("{}", n % args.users.max(1));
        let created = if retired {
            first + i64::try_from(n).unwrap_or(0) * span / i64::try_from(args.orders.max(1))?
        } else {
            now - DAY_MS
        };
        let status = if retired {
            [
                OrderStatus::Paid,
                OrderStatus::Cancelled,
                OrderStatus::Expired,
                OrderStatus::Paid,
            ][usize::try_from(n % 4)?]
        } else {
            OrderStatus::Paid
        };
        batch.push(Order {
            // Unique, in creation order, carrying the user's gene like a minted id.
            order_id: ((n + 1) << 8) | u64::from(shard_gene(&user)),
            campaign_id: (if retired { RETIRED } else { LIVE }).to_owned(),
            sku: "sku-1".to_owned(),
            user_id: user,
            quantity: 1,
            unit_price_cents: 1_999,
            status,
            version: 2,
            created_at_ms: created,
            pay_deadline_ms: created + 600_000,
            paid_at_ms: (status == OrderStatus::Paid).then_some(created + 1_000),
            updated_at_ms: created + 1_000,
        });
        if batch.len() == FILL_BATCH || n + 1 == total {
            let written = store.write_batch(&batch).context("filling the store")?;
            anyhow::ensure!(
                written.collisions.is_empty(),
                "seeded ids collided: {:?}",
                written.collisions.first()
            );
            batch.clear();
        }
    }
    Ok(())
}

/// The pass as the gateway runs it, without its pauses: every step of every table, back to
/// back. Returns the orders moved and the time taken.
fn pass(store: &dyn OrderStore, batch: usize, before_ms: i64) -> anyhow::Result<(u64, Duration)> {
    let started = Instant::now();
    let mut moved = 0;
    for shard in 0..store.shards() {
        let mut after = None;
        loop {
            let step = store.archive_step(shard, after, before_ms, batch)?;
            moved += step.moved as u64;
            match step.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    Ok((moved, started.elapsed()))
}

/// Bytes the hot tables take: in SQLite, the pages of the store file in use (tables, indexes
/// and the small ledger; a file keeps freed pages for reuse); in PostgreSQL, the hot tables
/// with their indexes.
fn hot_bytes(args: &ArchiveArgs, path: &std::path::Path) -> anyhow::Result<u64> {
    match &args.store_url {
        Some(url) => {
            let mut client = postgres::Client::connect(url, postgres::NoTls)?;
            let bytes: i64 = client
                .query_one(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8 FROM pg_class c \
                     JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname LIKE 'orders\\_%'",
                    &[],
                )?
                .get(0);
            Ok(u64::try_from(bytes).unwrap_or(0))
        }
        None => {
            let conn = rusqlite::Connection::open(path)?;
            let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
            let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            Ok(u64::try_from((pages - free) * size).unwrap_or(0))
        }
    }
}

//! Putting a campaign into Redis and reading its live stock.

use redis::aio::ConnectionLike;

use crate::StockError;
use crate::keys::CampaignKeys;
use crate::opening::OpenPermit;
use crate::scripts::Scripts;

/// The settings of a campaign that the scripts need. Times are Unix ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignSpec {
    pub sku: String,
    pub unit_price_cents: i64,
    pub per_user_limit: u32,
    pub pay_timeout_ms: i64,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Units to put on sale if the campaign is not yet in Redis; ignored if it is.
    pub stock: u64,
    /// Buckets to split the stock into if the campaign is not yet in Redis (a power of two up
    /// to [`crate::MAX_BUCKETS`]); a live campaign keeps the count it was opened with.
    pub buckets: u32,
}

impl CampaignSpec {
    /// The settings every script that writes a campaign's meta takes, in the order they take
    /// them: sku, unit price, per-user limit, payment timeout, start, end.
    pub(crate) fn settings_args(&self, call: &mut redis::ScriptInvocation<'_>) {
        call.arg(&self.sku)
            .arg(self.unit_price_cents)
            .arg(self.per_user_limit)
            .arg(self.pay_timeout_ms)
            .arg(self.start_ms)
            .arg(self.end_ms);
    }
}

/// What loading found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    /// True when this load put the stock in place; false when the campaign was already live and
    /// its stock was left alone.
    pub created: bool,
    /// The stock total in force (may differ from the config's if the campaign was live).
    pub stock_total: u64,
    /// Units still for sale.
    pub remaining: i64,
    /// The buckets in force: the count the campaign was opened with.
    pub buckets: u32,
}

/// Writes a campaign's settings into every bucket Redis holds, and nothing at all if it does not
/// hold the campaign (`lua/load_campaign.lua`, settings mode; `keys` are the campaign's, its
/// bucket 0's). Returns `None` for a campaign absent from Redis: whether it may be created is the
/// ledger's call ([`open_campaign`]), never a loader's.
///
/// # Errors
/// When Redis cannot be reached or answers in an unknown shape.
pub async fn apply_settings<C: ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    keys: &CampaignKeys,
    spec: &CampaignSpec,
) -> Result<Option<Loaded>, StockError> {
    let Some(first) = invoke_load(conn, scripts, keys, spec, spec.stock, "settings").await? else {
        return Ok(None);
    };
    let mut loaded = first;
    for bucket in 1..first.buckets {
        let keys = CampaignKeys::bucket(&keys.campaign_id, bucket);
        // A bucket an interrupted opening never created stays absent: the ledger's permit
        // completes it ([`open_campaign`]); settings never create stock.
        if let Some(more) = invoke_load(conn, scripts, &keys, spec, 0, "settings").await? {
            loaded.add(more);
        }
    }
    Ok(Some(loaded))
}

/// Puts a campaign on sale: sets its stock if Redis has none, and its settings
/// (`lua/load_campaign.lua`, open mode). The permit is spent, whatever happens.
///
/// # Errors
/// [`StockError::PermitMismatch`] for another campaign's permit (nothing written); otherwise
/// when Redis cannot be reached or answers in an unknown shape.
pub async fn open_campaign<C: ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    keys: &CampaignKeys,
    spec: &CampaignSpec,
    permit: OpenPermit,
) -> Result<Loaded, StockError> {
    if permit.campaign_id() != keys.campaign_id {
        return Err(StockError::PermitMismatch {
            permit: permit.campaign_id().to_owned(),
            campaign: keys.campaign_id.clone(),
        });
    }
    let refused = || {
        StockError::bad_reply(
            "load_campaign.lua",
            "Redis holds orders or buyers of the campaign but no stock: not opened",
        )
    };
    let shares = crate::buckets::shares(spec.stock, spec.buckets);
    let mut loaded = invoke_load(conn, scripts, keys, spec, shares[0], "open")
        .await?
        .ok_or_else(refused)?;
    // A campaign an interrupted opening left half done keeps the count it was opened with.
    let shares = crate::buckets::shares(spec.stock, loaded.buckets);
    for (bucket, share) in (1..loaded.buckets).zip(shares.into_iter().skip(1)) {
        let keys = CampaignKeys::bucket(&keys.campaign_id, bucket);
        let more = invoke_load(conn, scripts, &keys, spec, share, "open")
            .await?
            .ok_or_else(refused)?;
        loaded.add(more);
    }
    Ok(loaded)
}

impl Loaded {
    fn add(&mut self, bucket: Loaded) {
        self.created |= bucket.created;
        self.stock_total += bucket.stock_total;
        self.remaining += bucket.remaining;
    }
}

async fn invoke_load<C: ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    keys: &CampaignKeys,
    spec: &CampaignSpec,
    share: u64,
    mode: &str,
) -> Result<Option<Loaded>, StockError> {
    let mut call = scripts.load_campaign.prepare_invoke();
    call.key(&keys.meta)
        .key(&keys.stock)
        .key(&keys.orders)
        .key(&keys.buyers);
    spec.settings_args(&mut call);
    let reply: redis::Value = call
        .arg(share)
        .arg(mode)
        .arg(spec.buckets.max(1))
        .arg(keys.bucket)
        .arg(spec.stock)
        .invoke_async(conn)
        .await?;
    let fields = crate::reserve::strings(reply)?;
    let bad = || StockError::bad_reply("load_campaign.lua", format!("{fields:?}"));
    match fields.as_slice() {
        [absent, ..] if absent == "-1" => Ok(None),
        [created, total, remaining, buckets] => Ok(Some(Loaded {
            created: created == "1",
            stock_total: total.parse().map_err(|_| bad())?,
            remaining: remaining.parse().map_err(|_| bad())?,
            buckets: buckets
                .parse::<u32>()
                .map_err(|_| bad())?
                .clamp(1, crate::MAX_BUCKETS),
        })),
        _ => Err(bad()),
    }
}

/// Units still for sale in one bucket (the whole campaign when it has one), or `None` when
/// Redis does not hold it.
///
/// # Errors
/// When Redis cannot be reached.
pub async fn remaining_stock<C: ConnectionLike>(
    conn: &mut C,
    keys: &CampaignKeys,
) -> Result<Option<i64>, StockError> {
    Ok(redis::cmd("GET").arg(&keys.stock).query_async(conn).await?)
}

/// Units of a campaign for sale now or soon (every bucket's stock and every pending
/// transfer), or `None` when Redis does not hold it.
///
/// # Errors
/// When Redis cannot be reached.
pub async fn units_left<C: ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    layout: &crate::CampaignLayout,
) -> Result<Option<i64>, StockError> {
    if !layout.is_bucketed() {
        return remaining_stock(conn, layout.first()).await;
    }
    Ok(crate::buckets::glance(conn, scripts, layout)
        .await?
        .map(|(left, _)| left))
}

/// (units left, stock total) of each campaign, in order, `None` for a campaign Redis does not
/// hold. One round trip on one Redis for campaigns of one bucket; a census for each campaign
/// split into buckets.
///
/// # Errors
/// When Redis cannot be reached.
pub async fn live_states(
    conn: &mut crate::StockConnection,
    scripts: &Scripts,
    campaigns: &[&crate::CampaignLayout],
) -> Result<Vec<Option<(i64, u64)>>, StockError> {
    let single: Vec<&CampaignKeys> = campaigns
        .iter()
        .filter(|c| !c.is_bucketed())
        .map(|c| c.first())
        .collect();
    let mut flat: Vec<Option<String>> = Vec::new();
    if conn.is_cluster() {
        // Campaigns live in different slots: one pipeline (one slot) each.
        for keys in &single {
            let pair: Vec<Option<String>> = redis::pipe()
                .get(&keys.stock)
                .hget(&keys.meta, "stock_total")
                .query_async(conn)
                .await?;
            flat.extend(pair);
        }
    } else if !single.is_empty() {
        let mut read = redis::pipe();
        for keys in &single {
            read.get(&keys.stock).hget(&keys.meta, "stock_total");
        }
        flat = read.query_async(conn).await?;
    }
    let mut singles = flat.chunks(2).map(|pair| {
        let n = |i: usize| pair.get(i).cloned().flatten();
        Some((n(0)?.parse().ok()?, n(1)?.parse().ok()?))
    });
    let mut states = Vec::with_capacity(campaigns.len());
    for layout in campaigns {
        if layout.is_bucketed() {
            let glance = crate::buckets::glance(conn, scripts, layout).await?;
            states.push(glance.map(|(left, total)| (left, u64::try_from(total).unwrap_or(0))));
        } else {
            states.push(singles.next().flatten());
        }
    }
    Ok(states)
}

/// What an explicit stock change did (`lua/set_stock.lua`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockChange {
    /// The new total is in force: `taken` units stay taken, `left` are for sale.
    Applied { before: u64, taken: u64, left: i64 },
    /// The new total is below the units already taken (held or sold): nothing changed.
    BelowTaken { total: u64, taken: u64 },
    /// Redis has no such campaign.
    NotLoaded,
    /// Redis holds more for sale than the total (written behind the scripts' back): nothing
    /// was changed.
    Inconsistent,
}

/// Sets a live campaign's stock total to `total`, keeping every unit already taken. A campaign
/// split into buckets changes by the difference, in its bucket 0: lowering it takes back only
/// what bucket 0 has for sale.
///
/// # Errors
/// When Redis cannot be reached.
pub async fn set_stock_total<C: ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    layout: &crate::CampaignLayout,
    total: u64,
) -> Result<StockChange, StockError> {
    if !layout.is_bucketed() {
        return set_share(conn, scripts, layout.first(), i128::from(total), "total").await;
    }
    let change = set_share(conn, scripts, layout.first(), i128::from(total), "campaign").await?;
    Ok(match change {
        // What is taken over every bucket, read once the change is in force.
        StockChange::Applied { before, left, .. } => {
            match crate::buckets::Census::take(conn, scripts, layout).await {
                Ok(census) => StockChange::Applied {
                    before,
                    taken: u64::try_from(census.taken()).unwrap_or(0),
                    left: census.left(),
                },
                Err(_) => StockChange::Applied {
                    before,
                    taken: 0,
                    left,
                },
            }
        }
        other => other,
    })
}

async fn set_share<C: ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    keys: &CampaignKeys,
    value: i128,
    mode: &str,
) -> Result<StockChange, StockError> {
    let (status, before, taken, left): (i64, i64, i64, i64) = scripts
        .set_stock
        .key(&keys.meta)
        .key(&keys.stock)
        .arg(value.to_string())
        .arg(mode)
        .invoke_async(conn)
        .await?;
    let (before, taken) = (
        u64::try_from(before).unwrap_or(0),
        u64::try_from(taken).unwrap_or(0),
    );
    Ok(match status {
        1 => StockChange::Applied {
            before,
            taken,
            left,
        },
        0 => StockChange::BelowTaken {
            total: before,
            taken,
        },
        -2 => StockChange::Inconsistent,
        _ => StockChange::NotLoaded,
    })
}

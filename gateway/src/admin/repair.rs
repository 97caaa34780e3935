//! `POST /admin/v1/campaigns/{id}/rebuild`: the operator's repair of a campaign whose Redis
//! state cannot be trusted, and the explicit re-opening of one that Redis lost.
//!
//! A gateway refuses such a campaign (503 `campaign_needs_repair`, reason on `/readyz`) when
//! Redis has no state for a campaign the store's ledger says was on sale, or holds fewer of its
//! orders than the store. The rebuild puts every stored order back into Redis and recomputes
//! stock, buyers and deadlines from them (`lua/rebuild.lua`): units the store says are taken
//! stay taken, so nothing sells twice. It is the only way back to sale for such a campaign.

use flashgate_stock::{Order, Rebuilt};
use http::StatusCode;
use serde_json::json;

use crate::app::{App, blocking};
use crate::http::{Answer, ApiError, ErrorCode, json as answer};
use crate::pipeline::catalog::Campaign;

/// Rebuilds campaign `id` from the store and lets it sell again. Other instances let it sell
/// again at their next reload, which checks it anew.
///
/// # Errors
/// 404 for a campaign not in the catalog; 409 `campaign_retired`; 503 when the store or Redis
/// cannot be reached
/// (nothing is released for sale then; a rerun is harmless).
pub async fn rebuild(app: &App, id: &str) -> Result<Answer, ApiError> {
    // One at a time with reloads and admin edits: the catalog must not change under it.
    let _one_at_a_time = app.reloading.lock().await;
    let campaign = app.campaign(id)?;
    let (total, stored) = stored_state(app, id).await?;
    let rebuilt = rebuild_in_redis(app, &campaign, total, &stored).await?;
    release(app, &campaign, id, &rebuilt).await;
    Ok(answer(
        StatusCode::OK,
        &json!({
            "campaign_id": id,
            "stored_orders": stored.len(),
            "restored": rebuilt.restored,
            "newer_in_redis": rebuilt.newer_in_redis,
            "orders": rebuilt.orders,
            "stock_total": rebuilt.stock_total,
            "taken": rebuilt.taken,
            "remaining": rebuilt.left,
        }),
    ))
}

/// The campaign's stock total in the ledger and its stored orders; 409 for a retired one.
///
/// The total in force is the ledger's (set at the opening, changed by `/stock`): Redis' may
/// be lost or old, and the config's only seeds a new campaign.
async fn stored_state(app: &App, id: &str) -> Result<(Option<u64>, Vec<Order>), ApiError> {
    let campaign_id = id.to_owned();
    let read = blocking(&app.store, move |store| {
        // A retired campaign's orders are final and its keys gone on purpose: rebuilding it
        // would put its unsold units back on sale.
        if store.campaign_retirement(&campaign_id)?.is_some() {
            return Ok(None);
        }
        let total = store.campaign_stock_total(&campaign_id)?;
        Ok(Some((total, store.orders_of_campaign(&campaign_id)?)))
    })
    .await
    .map_err(|e| {
        tracing::error!(campaign = id, error = %e, "rebuild cannot read the store");
        ApiError::Unavailable {
            code: ErrorCode::StoreUnavailable,
            message: "the order store cannot be read: nothing was rebuilt",
        }
    })?;
    read.ok_or_else(|| ApiError::Conflict {
        code: ErrorCode::CampaignRetired,
        message: format!("campaign {id} is retired: its orders are final and it is never rebuilt"),
    })
}

/// Puts the stored orders back into Redis and recomputes the campaign's stock from them.
async fn rebuild_in_redis(
    app: &App,
    campaign: &Campaign,
    total: Option<u64>,
    stored: &[Order],
) -> Result<Rebuilt, ApiError> {
    let mut spec = crate::pipeline::catalog_load::spec_of(&campaign.config);
    spec.stock = total.unwrap_or(spec.stock);
    let mut conn = app.redis.clone();
    flashgate_stock::rebuild_campaign(&mut conn, &app.scripts, &campaign.layout, &spec, stored)
        .await
        .map_err(|e| {
            tracing::error!(campaign = campaign.config.id.as_str(), error = %e, "rebuild failed in Redis");
            ApiError::Unavailable {
                code: ErrorCode::RedisUnavailable,
                message: "stock service failed during the rebuild: the campaign stays refused; retry",
            }
        })
}

/// Lets the rebuilt campaign sell again here: entered in the ledger, its sold-out mark set
/// from what is left, its refusal lifted.
async fn release(app: &App, campaign: &Campaign, id: &str, rebuilt: &Rebuilt) {
    let campaign_id = id.to_owned();
    if let Err(e) = blocking(&app.store, move |s| s.confirm_campaign_open(&campaign_id)).await {
        tracing::warn!(campaign = id, error = %e, "could not record the rebuilt campaign in the ledger");
    }
    if rebuilt.left > 0 {
        campaign.clear_sold_out();
    } else {
        campaign.mark_sold_out();
    }
    campaign.repaired();
    if rebuilt.taken > rebuilt.stock_total {
        tracing::error!(
            campaign = id,
            taken = rebuilt.taken,
            total = rebuilt.stock_total,
            "the orders hold more units than the campaign's total: nothing left for sale"
        );
    }
    tracing::warn!(
        campaign = id,
        ?rebuilt,
        "campaign rebuilt from the store by an operator"
    );
}

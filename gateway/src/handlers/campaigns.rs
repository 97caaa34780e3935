//! `GET /api/v1/campaigns` and `GET /api/v1/campaigns/{id}`: public campaign state.

use flashgate_stock::CampaignLayout;
use http::StatusCode;

use super::views::CampaignView;
use crate::app::App;
use crate::clock::rfc3339;
use crate::http::{Answer, ApiError, ErrorCode, json};
use crate::pipeline::catalog::Campaign;

const UNAVAILABLE: ApiError = ApiError::Unavailable {
    code: ErrorCode::RedisUnavailable,
    message: "stock service unavailable",
};

/// One campaign.
///
/// # Errors
/// 404 unknown campaign, 503 when Redis cannot be read.
pub async fn get(app: &App, campaign_id: &str) -> Result<Answer, ApiError> {
    let campaign = app.campaign(campaign_id)?;
    let campaign = &*campaign;
    // A retired campaign's counts are the ledger's: Redis has nothing of it.
    let live = if campaign.is_retired() {
        None
    } else {
        live_state(app, &[&*campaign.layout]).await?[0]
    };
    Ok(json(
        StatusCode::OK,
        &view(campaign, live, app.clock.now_ms()),
    ))
}

/// Every campaign on sale here.
///
/// # Errors
/// 503 when Redis cannot be read.
pub async fn list(app: &App) -> Result<Answer, ApiError> {
    let catalog = app.catalog();
    let mut campaigns: Vec<_> = catalog.campaigns().collect();
    campaigns.sort_by_key(|c| (c.config.start_ms, c.config.id.clone()));
    let keys: Vec<&CampaignLayout> = campaigns.iter().map(|c| &*c.layout).collect();
    let live = live_state(app, &keys).await?;
    let now = app.clock.now_ms();
    let views: Vec<_> = campaigns
        .iter()
        .zip(live)
        .map(|(campaign, state)| view(campaign, state, now))
        .collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "campaigns": views }),
    ))
}

/// (remaining, stock total) per campaign from Redis; `None` when not loaded.
async fn live_state(
    app: &App,
    layouts: &[&CampaignLayout],
) -> Result<Vec<Option<(i64, u64)>>, ApiError> {
    let mut conn = app.redis.clone();
    flashgate_stock::campaign::live_states(&mut conn, &app.scripts, layouts)
        .await
        .map_err(|_| UNAVAILABLE)
}

/// `campaign` as the API shows it at `now` (Unix ms, the gateway clock's).
fn view(campaign: &Campaign, live: Option<(i64, u64)>, now: i64) -> CampaignView<'_> {
    let c = &campaign.config;
    // A retired campaign shows the counts it had when it left Redis, for good.
    let final_counts = campaign.retirement().map(|r| (r.remaining, r.stock_total));
    let (remaining, stock_total) = final_counts.or(live).unwrap_or((0, c.stock));
    let status = if campaign.is_retired() {
        "ended"
    } else if now < c.start_ms {
        "upcoming"
    } else if now >= c.end_ms {
        "ended"
    } else if remaining <= 0 {
        "sold_out"
    } else {
        "active"
    };
    CampaignView {
        id: &c.id,
        sku: &c.sku,
        name: &c.name,
        unit_price_cents: c.unit_price_cents,
        stock_total,
        remaining,
        per_user_limit: c.per_user_limit,
        max_quantity: c.max_quantity,
        starts_at: rfc3339(c.start_ms),
        ends_at: rfc3339(c.end_ms),
        pay_timeout_s: c.pay_timeout.as_secs(),
        status,
    }
}

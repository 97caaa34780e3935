//! `GET /api/v1/orders/{id}`: one order, to its owner only.
//!
//! Redis is asked first (it holds the latest state while a campaign is hot), the store second
//! (orders of campaigns no longer in Redis). An order id whose shard gene is not the caller's
//! cannot be theirs: it is answered 404 without any I/O.

use std::sync::Arc;

use flashgate_stock::Order;
use http::{Request, StatusCode};

use super::identify;
use super::views::OrderView;
use crate::app::App;
use crate::http::{Answer, ApiError, json};
use crate::order_id::{gene_of, shard_gene};
use crate::pipeline::catalog::Campaign;

pub(crate) const NOT_FOUND: ApiError = ApiError::NotFound {
    code: "order_not_found",
    message: "no such order",
};

/// The caller's order `id`.
///
/// # Errors
/// 401/429 from identity; 404 when the order does not exist or is someone else's; 503 when
/// neither Redis nor the store can answer.
pub async fn get<B>(app: &App, req: Request<B>, id: &str) -> Result<Answer, ApiError> {
    let identity = identify(app, &req)?;
    let order_id: u64 = id.parse().map_err(|_| NOT_FOUND)?;
    if gene_of(order_id) != shard_gene(&identity.user_id) {
        return Err(NOT_FOUND);
    }

    let redis_answer = locate(app, order_id).await;
    if let Ok(Some((_, order))) = &redis_answer {
        if order.user_id != identity.user_id {
            return Err(NOT_FOUND);
        }
        return Ok(json(StatusCode::OK, &OrderView::from(order)));
    }

    let store = app.store.clone();
    let stored = tokio::task::spawn_blocking(move || store.get(order_id))
        .await
        .map_err(|_| ApiError::Internal)?;
    match stored {
        Ok(Some(order)) if order.user_id == identity.user_id => {
            Ok(json(StatusCode::OK, &OrderView::from(&order)))
        }
        Ok(_) if redis_answer.is_ok() => Err(NOT_FOUND),
        _ => Err(ApiError::Unavailable {
            code: "order_lookup_unavailable",
            message: "neither Redis nor the order store could answer",
        }),
    }
}

/// The campaign holding `order_id` in Redis, and the order as Redis has it (one round trip over
/// every campaign here). `Ok(None)` when no campaign has it.
///
/// # Errors
/// 503 when Redis cannot be asked; 500 for a record that cannot be read.
pub(crate) async fn locate(
    app: &App,
    order_id: u64,
) -> Result<Option<(Arc<Campaign>, Order)>, ApiError> {
    let campaigns: Vec<_> = app.catalog.campaigns().collect();
    let mut lookup = redis::pipe();
    for campaign in &campaigns {
        lookup.hget(&campaign.keys.orders, order_id);
    }
    let mut conn = app.redis.clone();
    let records: Vec<Option<String>> =
        lookup
            .query_async(&mut conn)
            .await
            .map_err(|_| ApiError::Unavailable {
                code: "redis_unavailable",
                message: "stock service unavailable",
            })?;
    for (campaign, record) in campaigns.into_iter().zip(records) {
        let Some(record) = record else { continue };
        let order = flashgate_stock::record::decode(&campaign.config.id, order_id, &record)
            .map_err(|e| {
                tracing::error!(error = %e, "corrupt order record");
                ApiError::Internal
            })?;
        return Ok(Some((campaign.clone(), order)));
    }
    Ok(None)
}

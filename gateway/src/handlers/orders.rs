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
use crate::app::{App, blocking};
use crate::http::{Answer, ApiError, ErrorCode, json};
use crate::order_id::{gene_of, shard_gene};
use crate::pipeline::catalog::Campaign;

pub(crate) const NOT_FOUND: ApiError = ApiError::NotFound {
    code: ErrorCode::OrderNotFound,
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

    let stored = blocking(&app.store, move |s| s.get(order_id)).await;
    match stored {
        Ok(Some(order)) if order.user_id == identity.user_id => {
            Ok(json(StatusCode::OK, &OrderView::from(&order)))
        }
        Ok(_) if redis_answer.is_ok() => Err(NOT_FOUND),
        _ => Err(ApiError::Unavailable {
            code: ErrorCode::OrderLookupUnavailable,
            message: "neither Redis nor the order store could answer",
        }),
    }
}

/// An order Redis does not hold, as the store knows it.
pub(crate) enum Stored {
    /// Its campaign is retired: the store's state is final, and the one to answer from.
    Retired(Order),
    /// The store has no such order.
    Missing,
    /// Stored, but its campaign is not retired: this gateway does not serve it, or Redis lost
    /// it. Not this gateway's to decide.
    Elsewhere,
}

/// The store's copy of `order_id`, for an order no campaign here has in Redis.
///
/// # Errors
/// 503 `store_unavailable` when the store cannot tell.
pub(crate) async fn stored_order(app: &App, order_id: u64) -> Result<Stored, ApiError> {
    const UNAVAILABLE: ApiError = ApiError::Unavailable {
        code: ErrorCode::StoreUnavailable,
        message: "the order store cannot be read; retry",
    };
    let Some(order) = blocking(&app.store, move |s| s.get(order_id))
        .await
        .map_err(|_| UNAVAILABLE)?
    else {
        return Ok(Stored::Missing);
    };
    let retired_here = app
        .campaign(&order.campaign_id)
        .is_ok_and(|c| c.is_retired());
    let retired = retired_here || {
        let id = order.campaign_id.clone();
        blocking(&app.store, move |s| s.campaign_retirement(&id))
            .await
            .map_err(|_| UNAVAILABLE)?
            .is_some()
    };
    Ok(if retired {
        Stored::Retired(order)
    } else {
        Stored::Elsewhere
    })
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
    let catalog = app.catalog();
    // A retired campaign has nothing in Redis: the store answers for its orders.
    let campaigns: Vec<_> = catalog.campaigns().filter(|c| !c.is_retired()).collect();
    let wanted: Vec<_> = campaigns
        .iter()
        .map(|c| (c.layout.of_order(order_id), order_id))
        .collect();
    let mut conn = app.redis.clone();
    let records = flashgate_stock::lookup::records_across(&mut conn, &wanted)
        .await
        .map_err(|_| ApiError::Unavailable {
            code: ErrorCode::RedisUnavailable,
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

/// Orders per page when the caller does not say, and at most.
const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 100;

/// A page of the caller's orders, newest first: `?limit=1..100&cursor=<next_cursor>`.
///
/// Pages come from the store (the user's shard table only), so an order appears once the
/// persistence queue has written it (milliseconds, seconds at worst); each listed order's state
/// is then read from Redis, which leads while its campaign is hot.
///
/// # Errors
/// 401/429 from identity; 400 for unknown or malformed query parameters; 503 when the store
/// cannot be read.
pub async fn list<B>(app: &App, req: Request<B>) -> Result<Answer, ApiError> {
    let identity = identify(app, &req)?;
    let (limit, cursor) = page_query(req.uri().query().unwrap_or_default())?;
    let (user, gene) = (identity.user_id.clone(), shard_gene(&identity.user_id));
    let mut orders = blocking(&app.store, move |s| {
        s.orders_of_user(&user, gene, cursor, limit + 1)
    })
    .await
    .map_err(|e| {
        tracing::warn!(error = %e, "order store unavailable for a listing");
        ApiError::Unavailable {
            code: ErrorCode::StoreUnavailable,
            message: "the order store cannot be read",
        }
    })?;
    let next_cursor = (orders.len() > limit).then(|| {
        orders.truncate(limit);
        orders.last().map(|o| o.order_id.to_string())
    });
    refresh_from_redis(app, &mut orders).await;
    let views: Vec<OrderView<'_>> = orders.iter().map(OrderView::from).collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "orders": views, "next_cursor": next_cursor.flatten() }),
    ))
}

fn page_query(query: &str) -> Result<(usize, Option<u64>), ApiError> {
    let (mut limit, mut cursor) = (DEFAULT_PAGE, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            ErrorCode::InvalidLimit,
                            format!("limit must be 1 to {MAX_PAGE}"),
                        )
                    })?;
            }
            "cursor" => {
                cursor = Some(value.parse().map_err(|_| {
                    ApiError::bad_request(
                        ErrorCode::InvalidCursor,
                        "cursor must be a next_cursor value",
                    )
                })?);
            }
            other => {
                return Err(ApiError::bad_request(
                    ErrorCode::UnknownParameter,
                    format!("unknown query parameter {other:?}; expected limit, cursor"),
                ));
            }
        }
    }
    Ok((limit, cursor))
}

/// Replaces each order's state with Redis' where Redis still has it (one round trip).
async fn refresh_from_redis(app: &App, orders: &mut [Order]) {
    let mut campaigns = Vec::new();
    let mut asked = Vec::new();
    for (i, order) in orders.iter().enumerate() {
        if let Ok(campaign) = app.campaign(&order.campaign_id)
            && !campaign.is_retired()
        {
            campaigns.push((campaign, order.order_id));
            asked.push(i);
        }
    }
    if asked.is_empty() {
        return;
    }
    let wanted: Vec<_> = campaigns
        .iter()
        .map(|(c, id)| (c.layout.of_order(*id), *id))
        .collect();
    let mut conn = app.redis.clone();
    let Ok(records) = flashgate_stock::lookup::records_across(&mut conn, &wanted).await else {
        return; // the store's state stands
    };
    for (i, record) in asked.into_iter().zip(records) {
        let (Some(order), Some(record)) = (orders.get_mut(i), record) else {
            continue;
        };
        if let Ok(current) =
            flashgate_stock::record::decode(&order.campaign_id, order.order_id, &record)
            && current.version >= order.version
        {
            *order = current;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn page_parameters_are_strict() {
        assert_eq!(page_query(""), Ok((DEFAULT_PAGE, None)));
        assert_eq!(page_query("limit=5&cursor=42"), Ok((5, Some(42))));
        assert_eq!(
            page_query("limit=0").unwrap_err().code(),
            ErrorCode::InvalidLimit
        );
        assert_eq!(
            page_query("limit=101").unwrap_err().code(),
            ErrorCode::InvalidLimit
        );
        assert_eq!(
            page_query("cursor=x").unwrap_err().code(),
            ErrorCode::InvalidCursor
        );
        assert_eq!(
            page_query("sort=asc").unwrap_err().code(),
            ErrorCode::UnknownParameter
        );
    }
}

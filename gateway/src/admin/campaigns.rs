//! Admin changes to campaigns: create or update one, change a live campaign's stock with its
//! accounting, close one early.

use http::StatusCode;
use serde_json::{Value, json};

use super::config_file;
use crate::app::App;
use crate::clock::rfc3339;
use crate::http::{Answer, ApiError, ErrorCode, json as answer};
use crate::reload::reload_locked;

/// Campaign keys an admin may set; the same as in the config file.
const FIELDS: [&str; 9] = [
    "sku",
    "name",
    "unit_price_cents",
    "stock",
    "per_user_limit",
    "max_quantity",
    "start",
    "end",
    "pay_timeout",
];

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidField, message)
}

/// `PUT /admin/v1/campaigns/{id}`: the campaign with these fields (created if new, its other
/// fields kept if it exists). Validated and applied like a reload; refused whole otherwise.
///
/// # Errors
/// 400 for a body that is not an object of known fields; 422 for a campaign the config
/// refuses (the file is left as it was).
pub async fn put(app: &App, id: &str, body: &[u8]) -> Result<Answer, ApiError> {
    let fields: serde_json::Map<String, Value> = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(ErrorCode::MalformedJson, e.to_string()))?;
    let mut changes = Vec::with_capacity(fields.len());
    for (key, value) in fields {
        if !FIELDS.contains(&key.as_str()) {
            return Err(ApiError::bad_request(
                ErrorCode::UnknownField,
                format!("{key}: campaigns take {}", FIELDS.join(", ")),
            ));
        }
        let value = config_file::toml_value(value)
            .ok_or_else(|| bad(format!("{key}: not a string or a number")))?;
        changes.push((key, value));
    }
    if changes.iter().any(|(k, _)| k == "stock") && app.campaign(id).is_ok() {
        return Err(ApiError::Conflict {
            code: ErrorCode::StockIsLive,
            message: "this campaign is on sale: its stock lives in Redis; change it with \
                      POST /admin/v1/campaigns/{id}/stock"
                .into(),
        });
    }
    let id = id.to_owned();
    edit_and_reload(app, &id.clone(), move |existing| {
        Ok(match existing {
            Some(table) => {
                for (key, value) in changes {
                    table.insert(&key, toml_edit::value(value));
                }
                None
            }
            None => {
                let mut table = toml_edit::Table::new();
                table.insert("id", toml_edit::value(id));
                for (key, value) in changes {
                    table.insert(&key, toml_edit::value(value));
                }
                Some(table)
            }
        })
    })
    .await
}

/// `POST /admin/v1/campaigns/{id}/close`: the campaign ends now (its end is set to now in the
/// file and reloaded); unpaid orders still expire and can still be paid in time.
///
/// # Errors
/// 404 for an unknown campaign; as [`put`].
pub async fn close(app: &App, id: &str) -> Result<Answer, ApiError> {
    let now_ms = app.clock.now_ms();
    let not_started = app.campaign(id)?.config.start_ms > now_ms;
    let now = rfc3339(now_ms);
    edit_and_reload(app, id, move |existing| {
        let table = existing.ok_or_else(|| bad("the campaign is not in the config file"))?;
        // A campaign not started yet closes too: its window becomes empty.
        if not_started {
            table.insert("start", toml_edit::value(now.clone()));
        }
        table.insert("end", toml_edit::value(now));
        Ok(None)
    })
    .await
}

/// `POST /admin/v1/campaigns/{id}/stock` `{"stock_total": N}`: the live stock total becomes N.
/// Units already taken (held by unpaid orders, or sold) stay taken; N below them is refused.
///
/// # Errors
/// 400 for a bad body; 404 for an unknown campaign; 409 `stock_below_taken` or
/// `campaign_retired`.
pub async fn set_stock(app: &App, id: &str, body: &[u8]) -> Result<Answer, ApiError> {
    let campaign = app.campaign(id)?;
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(ErrorCode::MalformedJson, e.to_string()))?;
    let total = body["stock_total"]
        .as_u64()
        .filter(|n| *n < (1 << 53))
        .ok_or_else(|| bad("stock_total: a whole number from 0 to 2^53-1"))?;
    if campaign.is_retired() {
        return Err(ApiError::Conflict {
            code: ErrorCode::CampaignRetired,
            message: format!("campaign {id} is retired: it is never given stock again"),
        });
    }
    if let Some(reason) = campaign.repair_reason() {
        // Redis' count of what is taken is wrong: a new total would be computed from it.
        return Err(ApiError::Conflict {
            code: ErrorCode::CampaignNeedsRepair,
            message: format!("rebuild the campaign before changing its stock: {reason}"),
        });
    }
    let mut conn = app.redis.clone();
    let change = flashgate_stock::set_stock_total(&mut conn, &app.scripts, &campaign.layout, total)
        .await
        // The script may have run before Redis failed to answer: the same total again is safe.
        .map_err(|_| UNCONFIRMED)?;
    match change {
        flashgate_stock::StockChange::Applied {
            before,
            taken,
            left,
        } => {
            if left > 0 {
                campaign.clear_sold_out();
            } else {
                campaign.mark_sold_out();
            }
            // The ledger keeps the total a rebuild starts from, should Redis lose this change.
            let campaign_id = id.to_owned();
            let recorded = crate::app::blocking(&app.store, move |s| {
                s.record_campaign_stock_total(&campaign_id, total)
            })
            .await;
            if let Err(e) = &recorded {
                tracing::error!(campaign = id, total, error = %e, "stock changed in Redis but not recorded in the store's ledger; a rebuild would start from the old total");
            }
            tracing::info!(
                campaign = id,
                before,
                total,
                taken,
                left,
                "stock changed by admin"
            );
            Ok(answer(
                StatusCode::OK,
                &json!({ "campaign_id": id, "stock_total_before": before, "stock_total": total,
                         "taken": taken, "remaining": left, "recorded": recorded.is_ok() }),
            ))
        }
        flashgate_stock::StockChange::BelowTaken { total, taken } => Err(ApiError::Conflict {
            code: ErrorCode::StockBelowTaken,
            message: format!(
                "{taken} units of the {total} are already held or sold: the total cannot go below them"
            ),
        }),
        flashgate_stock::StockChange::Inconsistent => Err(ApiError::Conflict {
            code: ErrorCode::StockInconsistent,
            message: "Redis holds more units for sale than the campaign's total: nothing was \
                      changed; look at fg:{campaign}:meta and :stock"
                .into(),
        }),
        flashgate_stock::StockChange::NotLoaded => Err(ApiError::NotFound {
            code: ErrorCode::UnknownCampaign,
            message: "no such campaign",
        }),
    }
}

/// Edits the config file and reloads it, under the reload lock; a refused reload puts the file
/// back as it was.
async fn edit_and_reload(
    app: &App,
    id: &str,
    edit: impl FnOnce(Option<&mut toml_edit::Table>) -> Result<Option<toml_edit::Table>, ApiError>
    + Send
    + 'static,
) -> Result<Answer, ApiError> {
    let _one_at_a_time = app.reloading.lock().await;
    let Some(path) = app.config.source.clone() else {
        return Err(bad("this gateway was not started from a config file"));
    };
    let id_owned = id.to_owned();
    let original =
        tokio::task::spawn_blocking(move || config_file::edit_campaign(&path, &id_owned, edit))
            .await
            .map_err(|_| ApiError::Internal)??;
    match reload_locked(app).await {
        Ok(_) => {
            let campaign = app.campaign(id)?;
            Ok(answer(
                StatusCode::OK,
                &json!({ "campaign_id": id, "start": rfc3339(campaign.config.start_ms),
                         "end": rfc3339(campaign.config.end_ms) }),
            ))
        }
        Err(refusal) => {
            let _ = tokio::task::spawn_blocking(move || original.restore()).await;
            Err(refusal.into())
        }
    }
}

const REDIS_DOWN: ApiError = ApiError::Unavailable {
    code: ErrorCode::RedisUnavailable,
    message: "stock service unavailable",
};

/// A script that changes Redis and failed may have run before Redis failed to answer:
/// `redis_unavailable` would promise nothing changed.
const UNCONFIRMED: ApiError = ApiError::Unavailable {
    code: ErrorCode::ChangeUnconfirmed,
    message: "stock service did not confirm the change; it may have been applied: retry",
};

/// `GET /admin/v1/campaigns/{id}/poisoned`: the orders the store refused for good, set aside
/// with the reason.
///
/// # Errors
/// 404 for an unknown campaign; 503 when Redis does not answer.
pub async fn poisoned(app: &App, id: &str) -> Result<Answer, ApiError> {
    let campaign = app.campaign(id)?;
    let mut conn = app.redis.clone();
    let mut orders = Vec::new();
    for keys in &campaign.layout.buckets {
        orders.extend(
            flashgate_stock::journal::poisoned(&mut conn, keys)
                .await
                .map_err(|_| REDIS_DOWN)?,
        );
    }
    let orders: Vec<Value> = orders
        .into_iter()
        .map(|(order_id, reason)| json!({ "order_id": order_id.to_string(), "reason": reason }))
        .collect();
    Ok(answer(
        StatusCode::OK,
        &json!({ "campaign_id": id, "orders": orders }),
    ))
}

/// `POST /admin/v1/campaigns/{id}/poisoned/{order_id}/retry`: once the cause is fixed, the
/// order goes back in the journal and the reconciler writes it again.
///
/// # Errors
/// 404 for an unknown campaign or an order that is not set aside; 503 when Redis does not
/// answer.
pub async fn retry_poisoned(app: &App, id: &str, order_id: &str) -> Result<Answer, ApiError> {
    let campaign = app.campaign(id)?;
    let not_set_aside = ApiError::NotFound {
        code: ErrorCode::OrderNotFound,
        message: "no such order set aside",
    };
    let Ok(order_id) = order_id.parse::<u64>() else {
        return Err(not_set_aside);
    };
    let mut conn = app.redis.clone();
    let retried = flashgate_stock::journal::retry_poisoned(
        &mut conn,
        &app.scripts,
        campaign.layout.of_order(order_id),
        order_id,
    )
    .await
    .map_err(|_| UNCONFIRMED)?;
    if !retried {
        return Err(not_set_aside);
    }
    tracing::info!(
        campaign = id,
        order_id,
        "refused order journaled again by admin"
    );
    Ok(answer(
        StatusCode::OK,
        &json!({ "campaign_id": id, "order_id": order_id.to_string(), "journaled": true }),
    ))
}

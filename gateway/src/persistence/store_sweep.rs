//! The store-side sweep: defence in depth behind the Redis expiry sweeper.
//!
//! The deadline sweeper works from Redis' deadline groups. Should an order slip past it (a
//! group lost, a campaign no gateway sweeps any more, a store that missed the expiry), the store
//! still shows the order unpaid long after its deadline. This sweep asks the store for such
//! orders and settles each against Redis, the source of truth: still unpaid there → expired now
//! (stock and quota return); already settled there → journaled again so the store catches up;
//! unknown there → reported, since only an operator can tell what happened to it.

use std::time::Duration;

use flashgate_stock::{CampaignKeys, Transition, lifecycle};

use super::Context;
use super::acker::Acker;
use crate::clock::now_ms;

/// Orders looked at per sweep.
const BATCH: usize = 500;

/// Settles orders the store holds as unpaid more than `margin` past their deadline; returns how
/// many it expired.
pub fn run(context: &Context, acker: &mut Acker, margin: Duration) -> usize {
    let now = now_ms();
    let before = now - i64::try_from(margin.as_millis()).unwrap_or(i64::MAX);
    let overdue = match context.store.overdue_unpaid(before, BATCH) {
        Ok(overdue) => overdue,
        Err(e) => {
            tracing::warn!(error = %e, "store-side sweep cannot read the store");
            return 0;
        }
    };
    let mut expired = 0;
    for order in overdue {
        let keys = CampaignKeys::new(&order.campaign_id);
        let settled = acker
            .connection()
            .map_err(flashgate_stock::StockError::from)
            .and_then(|conn| {
                lifecycle::expire_order(conn, &context.scripts, &keys, now, order.order_id)
            });
        match settled {
            Ok(Transition::Expired(_)) => expired += 1,
            Ok(Transition::NotFound) => tracing::error!(
                order_id = order.order_id,
                campaign = %order.campaign_id,
                "order unpaid in the store but unknown to Redis: needs an operator"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "store-side sweep cannot reach Redis");
                acker.reset();
                break;
            }
        }
    }
    if expired > 0 {
        tracing::warn!(
            orders = expired,
            "store-side sweep expired orders the deadline sweep missed"
        );
    }
    expired
}

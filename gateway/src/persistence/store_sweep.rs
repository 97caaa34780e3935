//! The store-side sweep: defence in depth behind the Redis expiry sweeper.
//!
//! The deadline sweeper works from Redis' deadline groups. Should an order slip past it (a
//! group lost, a campaign no gateway sweeps any more, a store that missed the expiry), the store
//! still shows the order unpaid long after its deadline. This sweep asks the store for such
//! orders and settles each against Redis, the source of truth: still unpaid there → expired now
//! (stock and quota return); already settled there → journaled again so the store catches up.
//!
//! It pages through them with a cursor on (deadline, order id), wrapping around at the end, so
//! orders it cannot settle never hide the ones behind them: every overdue order is examined
//! within a few passes.
//!
//! # Orders Redis does not know
//!
//! An order is only ever written to the store from its Redis record, so a stored order Redis
//! does not know was committed there once and Redis has lost it since; it is not in flight (no
//! reservation writes the store first). Nothing in Redis can ever settle it any more: a payment
//! for it finds no order, and no sweeper has its deadline. Left alone it stays unpaid in the
//! store forever. So the sweep settles it from the store's own state: unpaid, past its deadline
//! by the margin → expired in the store (compare-and-set on its version, one version up), with
//! a warning naming why. Both cases are safe for stock:
//!
//! - **The campaign is gone from Redis** (retired, or Redis lost it): nothing can change the
//!   order again short of an operator re-opening the campaign, who then starts from the store,
//!   where the order is final.
//! - **The campaign is there but the order is not** (Redis restored from an older snapshot, a
//!   failover that lost the write): Redis' stock and the buyer's quota never counted the order
//!   (or were restored to before it), so expiring it in the store only makes the store agree
//!   with Redis; it touches no Redis stock, so it can never make a unit sell twice. Should the
//!   same id be reserved again (a retry with the order's token), that is a new reservation with
//!   another creation time: the store reports it as a collision and it is set aside for an
//!   operator, never merged silently.
//!
//! What is expired this way is counted (`flashgate_store_sweep_settled_total`) and logged with
//! the order id and campaign, for the operator to reconcile with the payment provider.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use flashgate_stock::{Order, StockError, Transition, lifecycle, presence};

use super::Context;
use super::acker::Acker;

/// Orders looked at per sweep.
const BATCH: usize = 500;

/// Where the next pass starts: after this (deadline, order id), or from the first when none.
#[derive(Debug, Default)]
pub struct StoreSweep {
    after: Option<(i64, u64)>,
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Orders expired in Redis (stock and quota returned).
    pub expired: usize,
    /// Orders Redis does not know, expired in the store.
    pub settled_in_store: usize,
}

impl StoreSweep {
    /// Examines the next page of orders the store holds as unpaid more than `margin` past
    /// their deadline, and settles each.
    pub fn run(&mut self, context: &Context, acker: &mut Acker, margin: Duration) -> Swept {
        let now = context.clock.now_ms();
        let before = now - i64::try_from(margin.as_millis()).unwrap_or(i64::MAX);
        let page = match context.store.overdue_unpaid_page(before, self.after, BATCH) {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "store-side sweep cannot read the store");
                return Swept::default();
            }
        };
        let mut swept = Swept::default();
        let mut campaigns: HashMap<String, bool> = HashMap::new();
        let mut examined: usize = 0;
        for order in &page {
            match settle(context, acker, &mut campaigns, order, now) {
                Ok(Settled::Expired) => swept.expired += 1,
                Ok(Settled::InStore) => swept.settled_in_store += 1,
                Ok(Settled::Nothing) => {}
                // Malformed data in Redis: only an operator can settle it. Passed over (the
                // script changed nothing), so it never stalls the orders behind it.
                Err(e @ StockError::Corrupt { .. }) => {
                    tracing::error!(
                        order_id = order.order_id,
                        campaign = %order.campaign_id,
                        error = %e,
                        "store-side sweep: the order's data in Redis is malformed; passed over"
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, "store-side sweep cannot reach Redis");
                    acker.reset();
                    break;
                }
            }
            examined += 1;
        }
        // A full page continues after its last examined order, as does one cut short; the end
        // of the list starts over from the first.
        self.after = match examined.checked_sub(1).and_then(|i| page.get(i)) {
            Some(last) if examined < page.len() || page.len() == BATCH => {
                Some((last.pay_deadline_ms, last.order_id))
            }
            None if !page.is_empty() => self.after,
            _ => None,
        };
        if swept.expired > 0 {
            tracing::warn!(
                orders = swept.expired,
                "store-side sweep expired orders the deadline sweep missed"
            );
        }
        context
            .health
            .settled_in_store
            .fetch_add(swept.settled_in_store as u64, Ordering::Relaxed);
        swept
    }
}

enum Settled {
    Expired,
    InStore,
    Nothing,
}

/// Settles one overdue order against Redis, or from the store's state when Redis does not know
/// it (see the module docs).
fn settle(
    context: &Context,
    acker: &mut Acker,
    campaigns: &mut HashMap<String, bool>,
    order: &Order,
    now: i64,
) -> Result<Settled, StockError> {
    let keys = acker.keys_of(order);
    let conn = acker.connection()?;
    match lifecycle::expire_order(conn, &context.scripts, &keys, now, order.order_id)? {
        Transition::Expired(_) => return Ok(Settled::Expired),
        Transition::NotFound => {}
        _ => return Ok(Settled::Nothing),
    }
    let campaign_known = match campaigns.get(&order.campaign_id) {
        Some(known) => *known,
        None => {
            let known = presence::campaign_known(conn, &keys)?;
            campaigns.insert(order.campaign_id.clone(), known);
            known
        }
    };
    let why = if campaign_known {
        "order unknown to Redis (its campaign is there: Redis lost the order)"
    } else {
        "campaign unknown to Redis (retired or lost)"
    };
    match context.store.expire_unpaid(order, now) {
        Ok(true) => {
            tracing::warn!(
                order_id = order.order_id,
                campaign = %order.campaign_id,
                user = %order.user_id,
                why,
                "unpaid order past its deadline expired in the store: Redis cannot settle it"
            );
            Ok(Settled::InStore)
        }
        // Changed since it was read (another gateway's sweep, a late write): nothing to do.
        Ok(false) => Ok(Settled::Nothing),
        Err(e) => {
            tracing::warn!(order_id = order.order_id, error = %e, "store-side sweep cannot expire the order in the store");
            Ok(Settled::Nothing)
        }
    }
}

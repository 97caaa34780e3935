//! Payment, cancellation, payment timeout and stock return, through real gateways on real Redis.
//!
//! # Layout
//! - [`payment`]: paying in time, payments racing their deadlines, bad or foreign callbacks
//!   and cancels, a payment id reused for another order.
//! - [`expiry`]: unpaid orders expire once (by the deadline sweep, or the store-side sweep when
//!   Redis lost the deadline, with two gateways sweeping) and their units sell again.
//! - [`listing`]: a buyer's order list.
//! - [`malformed`]: damaged Redis rows are answered or skipped, never acted on.
//! - [`support`]: buying, reading Redis' records, the campaign's stock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod expiry;
mod listing;
mod malformed;
mod payment;
mod support;

use expiry::{
    an_unpaid_order_expires_within_a_second_and_its_unit_sells_again,
    the_store_side_sweep_settles_an_order_the_deadline_sweep_missed,
    two_gateways_sweeping_expire_every_order_once_and_both_sell_again,
};
use listing::{
    a_user_lists_orders_of_several_campaigns_with_the_states_redis_has,
    a_user_lists_their_own_orders_newest_first_page_by_page,
};
use payment::{
    a_payment_id_reused_for_another_order_is_refused_and_changes_nothing,
    bad_callbacks_and_foreign_cancels_change_nothing_and_cancel_returns_stock,
    paying_in_time_is_paid_in_redis_and_in_the_store,
    payments_racing_deadlines_settle_every_order_exactly_once,
};

// Everything about an order's life holds the same on one Redis and on a Cluster.
flashgate_tests::on_each_redis!(
    paying_in_time_is_paid_in_redis_and_in_the_store,
    an_unpaid_order_expires_within_a_second_and_its_unit_sells_again,
    payments_racing_deadlines_settle_every_order_exactly_once,
    bad_callbacks_and_foreign_cancels_change_nothing_and_cancel_returns_stock,
    a_user_lists_their_own_orders_newest_first_page_by_page,
    the_store_side_sweep_settles_an_order_the_deadline_sweep_missed,
    two_gateways_sweeping_expire_every_order_once_and_both_sell_again,
    a_payment_id_reused_for_another_order_is_refused_and_changes_nothing,
    a_user_lists_orders_of_several_campaigns_with_the_states_redis_has,
);

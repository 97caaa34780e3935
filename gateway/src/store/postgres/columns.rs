//! An order row in PostgreSQL, the same in the hot tables and the archive: its columns' types,
//! its decoding, and rows as column arrays for `UNNEST`.

use flashgate_stock::Order;
use postgres::types::ToSql;

use crate::store::StoreError;
use crate::store::row::{RawOrder, Row};

/// An order row's columns with their types, the same in the hot tables and the archive (each
/// adds its own key: the archive's must hold its partition column).
pub(super) const ORDER_COLUMN_TYPES: &str = "order_id bigint NOT NULL, campaign_id text NOT NULL, \
    sku text NOT NULL, user_id text NOT NULL, quantity bigint NOT NULL, \
    unit_price_cents bigint NOT NULL, amount_cents bigint NOT NULL, status text NOT NULL, \
    version bigint NOT NULL, created_at bigint NOT NULL, pay_deadline bigint NOT NULL, \
    paid_at bigint, updated_at bigint NOT NULL";

pub(super) fn read(row: &postgres::Row) -> Result<Order, StoreError> {
    RawOrder {
        order_id: row.try_get(0)?,
        campaign_id: row.try_get(1)?,
        sku: row.try_get(2)?,
        user_id: row.try_get(3)?,
        quantity: row.try_get(4)?,
        unit_price_cents: row.try_get(5)?,
        amount_cents: row.try_get(6)?,
        status: row.try_get(7)?,
        version: row.try_get(8)?,
        created_at: row.try_get(9)?,
        pay_deadline: row.try_get(10)?,
        paid_at: row.try_get(11)?,
        updated_at: row.try_get(12)?,
    }
    .into_order()
}

/// The columns of one shard's rows as arrays, for `UNNEST`: an order's fields (`S` is
/// `&str`) for a batch write, or hot rows with their values as stored (`S` is `String`)
/// for the archive's copy.
#[derive(Default)]
pub(super) struct Columns<S> {
    pub(super) order_id: Vec<i64>,
    campaign_id: Vec<S>,
    sku: Vec<S>,
    user_id: Vec<S>,
    quantity: Vec<i64>,
    unit_price_cents: Vec<i64>,
    amount_cents: Vec<i64>,
    status: Vec<S>,
    version: Vec<i64>,
    pub(super) created_at: Vec<i64>,
    pay_deadline: Vec<i64>,
    paid_at: Vec<Option<i64>>,
    updated_at: Vec<i64>,
}

impl<'a> Columns<&'a str> {
    pub(super) fn push(&mut self, row: &Row<'a>) {
        let o = row.order;
        self.order_id.push(row.order_id);
        self.campaign_id.push(&o.campaign_id);
        self.sku.push(&o.sku);
        self.user_id.push(&o.user_id);
        self.quantity.push(i64::from(o.quantity));
        self.unit_price_cents.push(o.unit_price_cents);
        self.amount_cents.push(row.amount_cents);
        self.status.push(o.status.as_str());
        self.version.push(i64::from(o.version));
        self.created_at.push(o.created_at_ms);
        self.pay_deadline.push(o.pay_deadline_ms);
        self.paid_at.push(o.paid_at_ms);
        self.updated_at.push(o.updated_at_ms);
    }
}

impl Columns<String> {
    /// Adds a hot row (read as [`COLUMNS`](crate::store::shards::COLUMNS)) as stored, undecoded.
    pub(super) fn push_stored(&mut self, row: &postgres::Row) -> Result<(), StoreError> {
        self.order_id.push(row.try_get(0)?);
        self.campaign_id.push(row.try_get(1)?);
        self.sku.push(row.try_get(2)?);
        self.user_id.push(row.try_get(3)?);
        self.quantity.push(row.try_get(4)?);
        self.unit_price_cents.push(row.try_get(5)?);
        self.amount_cents.push(row.try_get(6)?);
        self.status.push(row.try_get(7)?);
        self.version.push(row.try_get(8)?);
        self.created_at.push(row.try_get(9)?);
        self.pay_deadline.push(row.try_get(10)?);
        self.paid_at.push(row.try_get(11)?);
        self.updated_at.push(row.try_get(12)?);
        Ok(())
    }
}

impl<S: ToSql + Sync> Columns<S> {
    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 13] {
        [
            &self.order_id,
            &self.campaign_id,
            &self.sku,
            &self.user_id,
            &self.quantity,
            &self.unit_price_cents,
            &self.amount_cents,
            &self.status,
            &self.version,
            &self.created_at,
            &self.pay_deadline,
            &self.paid_at,
            &self.updated_at,
        ]
    }
}

//! Orders looked up by campaign, and a damaged row reported as corrupt rather than read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{order, orders};
use crate::store::StoreError;
use crate::store::shards::table_of;
use crate::store::test_backends::each_backend;

#[test]
fn orders_of_campaign_filters_by_campaign() {
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        let a = orders(0, 25, "spring");
        let b = orders(100, 110, "autumn");
        store.write_batch(&a).unwrap();
        store.write_batch(&b).unwrap();
        let mut got = store.orders_of_campaign("autumn").unwrap();
        got.sort_by_key(|o| o.order_id);
        let mut want = b.clone();
        want.sort_by_key(|o| o.order_id);
        assert_eq!(got, want);
        assert_eq!(store.orders_of_campaign("spring").unwrap().len(), 25);
        assert!(store.orders_of_campaign("winter").unwrap().is_empty());
    });
}

#[test]
fn a_damaged_row_is_reported_as_corrupt() {
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        let o = order(5, "c1");
        store.write_batch(std::slice::from_ref(&o)).unwrap();
        fresh.execute(&format!(
            "UPDATE {} SET status = 'lost'",
            table_of(o.order_id, 4)
        ));
        let err = store.get(o.order_id).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { order_id, .. } if order_id == o.order_id));
        assert!(!err.is_transient());
        assert!(store.orders_of_campaign("c1").is_err());
    });
}

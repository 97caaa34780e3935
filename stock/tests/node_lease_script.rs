//! `lua/node_lease.lua`: the node id's lease and the mark of the ids minted under it, against a
//! real Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use flashgate_stock::node::{self, Claim, NodeKeys};
use redis::AsyncCommands;

fn keys() -> NodeKeys {
    let name = common::unique_campaign("node").campaign_id;
    NodeKeys {
        lease: format!("fg:test:{{{name}}}:lease"),
        mark: format!("fg:test:{{{name}}}:mark"),
    }
}

#[tokio::test]
async fn the_mark_only_rises_while_leased_and_a_release_records_the_last_id() {
    let mut conn = common::connection().await;
    let keys = keys();
    let claim = node::claim(&mut conn, &keys, "a/1", 10_000, "", 5_000)
        .await
        .unwrap();
    assert_eq!(
        claim,
        Claim::Held {
            mark_before: 0,
            mark: 5_000
        }
    );
    // A renewal asking for less leaves the mark where it is.
    let claim = node::claim(&mut conn, &keys, "a/1", 10_000, "", 4_000)
        .await
        .unwrap();
    assert_eq!(
        claim,
        Claim::Held {
            mark_before: 5_000,
            mark: 5_000
        }
    );
    // Another holder is refused and moves nothing.
    let taken = node::claim(&mut conn, &keys, "b/1", 10_000, "", 9_000)
        .await
        .unwrap();
    assert!(
        matches!(taken, Claim::Taken { ref holder, .. } if holder == "a/1"),
        "{taken:?}"
    );
    let mark: i64 = conn.get(&keys.mark).await.unwrap();
    assert_eq!(mark, 5_000);
    // Only the holder's release counts; it records the last millisecond minted.
    assert!(!node::release(&mut conn, &keys, "b/1", 1).await.unwrap());
    assert!(node::release(&mut conn, &keys, "a/1", 4_321).await.unwrap());
    let lease: Option<String> = conn.get(&keys.lease).await.unwrap();
    assert_eq!(lease, None);
    // The next holder finds the mark, which outlives the lease.
    let claim = node::claim(&mut conn, &keys, "b/1", 10_000, "", 100)
        .await
        .unwrap();
    assert_eq!(
        claim,
        Claim::Held {
            mark_before: 4_321,
            mark: 4_321
        }
    );
    let _: () = conn.del(&[&keys.lease, &keys.mark]).await.unwrap();
}

#[tokio::test]
async fn a_damaged_mark_is_an_error_before_any_write() {
    let mut conn = common::connection().await;
    let keys = keys();
    let _: () = conn.set(&keys.mark, "not-a-number").await.unwrap();
    assert!(
        node::claim(&mut conn, &keys, "a/1", 10_000, "", 5_000)
            .await
            .is_err()
    );
    let lease: Option<String> = conn.get(&keys.lease).await.unwrap();
    assert_eq!(lease, None, "the lease was not taken");
    let _: () = conn.del(&keys.mark).await.unwrap();
}

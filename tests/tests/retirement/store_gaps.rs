//! Orders the store lacks, or holds in an older state, while the journal is empty: the
//! retirement writes them under its fence.

use flashgate_tests::gateway::Process;
use flashgate_tests::store_home::Backend;

use crate::checks::{reads, retired};
use crate::sale::{gateway, retiring_after, settled_sale};

/// The store lacking an order, or holding an older state of one, while the journal is empty
/// (an entry lost to a crash or a flushed Redis): under the fence the retirement writes them,
/// instead of waiting for ever for a reconciler that has nothing to replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_the_store_lacks_with_an_empty_journal_are_written_by_the_retirement() {
    let mut sale = settled_sale(Backend::Sqlite, 4, 30).await;
    let before = reads(&gateway(&sale).client(), &sale, 1).await;
    sale.gateway.take().unwrap().stop().unwrap();
    let (missing, older) = (sale.orders[0].1, sale.orders[1].1);
    let store = sale.scenario.config().store;
    tokio::task::spawn_blocking(move || {
        let conn = rusqlite::Connection::open(&store.path).unwrap();
        let table = |id: u64| format!("orders_{:02}", id & 15);
        conn.execute(
            &format!("DELETE FROM {} WHERE order_id = ?1", table(missing)),
            [i64::try_from(missing).unwrap()],
        )
        .unwrap();
        let changed = conn
            .execute(
                &format!(
                    "UPDATE {} SET version = version - 1, status = 'pending_payment' \
                     WHERE order_id = ?1",
                    table(older)
                ),
                [i64::try_from(older).unwrap()],
            )
            .unwrap();
        assert_eq!(changed, 1);
    })
    .await
    .unwrap();

    let retiring = retiring_after(&sale.scenario, "1s");
    let dir = tempfile::tempdir().unwrap();
    let process = Process::start(&retiring, dir.path());
    retired(&mut sale).await;
    let after = reads(&process.client(), &sale, 1).await;
    assert_eq!(before, after, "every order reads as before, from the store");
}

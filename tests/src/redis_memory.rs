//! What a test reads of a Redis to show a campaign has left it: its keys, and the memory they
//! gave back.

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;

/// The keys of `campaign` (every bucket) Redis still has.
pub async fn campaign_keys(conn: &mut MultiplexedConnection, campaign: &str) -> Vec<String> {
    redis::cmd("KEYS")
        .arg(format!("fg:{{{campaign}*"))
        .query_async(conn)
        .await
        .unwrap()
}

/// Redis' `used_memory`, once the values `UNLINK` handed to its background thread are freed.
pub async fn used_memory(conn: &mut MultiplexedConnection) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info: String = redis::cmd("INFO").query_async(conn).await.unwrap();
        if info_number(&info, "lazyfree_pending_objects") == 0 {
            return info_number(&info, "used_memory");
        }
        assert!(Instant::now() < deadline, "UNLINK never freed its values");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn info_number(info: &str, field: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in {info}"))
}

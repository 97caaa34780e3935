//! The Lua scripts, embedded at build time and hashed once.
//!
//! `redis::Script` keeps the SHA1 and invokes by EVALSHA, falling back to loading the script on
//! NOSCRIPT (a restarted or failed-over Redis). Building them once means no request ever hashes a
//! script.

use redis::Script;

/// Every script the stock crate runs.
#[derive(Debug, Clone)]
pub struct Scripts {
    pub(crate) reserve: Script,
    pub(crate) load_campaign: Script,
    pub(crate) ack: Script,
    pub(crate) lifecycle: Script,
    pub(crate) set_aside: Script,
    pub(crate) set_stock: Script,
    pub(crate) retry_poisoned: Script,
    pub(crate) rebuild: Script,
    pub(crate) transfer: Script,
    pub(crate) retire_fence: Script,
}

impl Scripts {
    pub fn new() -> Self {
        Self {
            reserve: Script::new(include_str!("../../lua/reserve.lua")),
            load_campaign: Script::new(include_str!("../../lua/load_campaign.lua")),
            ack: Script::new(include_str!("../../lua/ack.lua")),
            lifecycle: Script::new(include_str!("../../lua/lifecycle.lua")),
            set_aside: Script::new(include_str!("../../lua/set_aside.lua")),
            set_stock: Script::new(include_str!("../../lua/set_stock.lua")),
            retry_poisoned: Script::new(include_str!("../../lua/retry_poisoned.lua")),
            rebuild: Script::new(include_str!("../../lua/rebuild.lua")),
            transfer: Script::new(include_str!("../../lua/transfer.lua")),
            retire_fence: Script::new(include_str!("../../lua/retire_fence.lua")),
        }
    }

    /// The SHA1 of every script, for readiness checks (`SCRIPT EXISTS`).
    pub fn hashes(&self) -> [&str; 10] {
        [
            self.reserve.get_hash(),
            self.load_campaign.get_hash(),
            self.ack.get_hash(),
            self.lifecycle.get_hash(),
            self.set_aside.get_hash(),
            self.set_stock.get_hash(),
            self.retry_poisoned.get_hash(),
            self.rebuild.get_hash(),
            self.transfer.get_hash(),
            self.retire_fence.get_hash(),
        ]
    }

    /// Whether Redis holds every script (`SCRIPT EXISTS`): what readiness reports.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn all_loaded<C>(&self, conn: &mut C) -> Result<bool, crate::StockError>
    where
        C: redis::aio::ConnectionLike,
    {
        let loaded: Vec<bool> = redis::cmd("SCRIPT")
            .arg("EXISTS")
            .arg(&self.hashes()[..])
            .query_async(conn)
            .await?;
        Ok(loaded.iter().all(|l| *l))
    }

    /// Loads every script into Redis, so readiness can say the scripts are in place.
    ///
    /// # Errors
    /// When Redis cannot be reached or rejects a script.
    pub async fn load_all<C>(&self, conn: &mut C) -> Result<(), crate::StockError>
    where
        C: redis::aio::ConnectionLike,
    {
        for script in [
            &self.reserve,
            &self.load_campaign,
            &self.ack,
            &self.lifecycle,
            &self.set_aside,
            &self.set_stock,
            &self.retry_poisoned,
            &self.rebuild,
            &self.transfer,
            &self.retire_fence,
        ] {
            script.prepare_invoke().load_async(conn).await?;
        }
        Ok(())
    }
}

impl Default for Scripts {
    fn default() -> Self {
        Self::new()
    }
}

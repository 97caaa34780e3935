//! What can go wrong when talking to Redis about stock.

/// A failure to reach Redis or to make sense of its answer.
///
/// Business outcomes (sold out, limit reached, …) are not errors: they are
/// [`crate::ReserveOutcome`] values. An error here means the purchase did not get an answer from
/// the commit point, so the gateway answers 503 and nothing was recorded.
#[derive(Debug, thiserror::Error)]
pub enum StockError {
    /// Redis could not be reached or refused the command.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A script answered something this version does not understand: scripts and code disagree.
    #[error("unexpected reply from {script}: {detail}")]
    BadReply {
        script: &'static str,
        detail: String,
    },
    /// An opening permit was presented for another campaign: a caller bug, refused before
    /// anything is written.
    #[error("the opening permit is for campaign {permit}, not {campaign}")]
    PermitMismatch { permit: String, campaign: String },
    /// Data in Redis does not have the shape the scripts write (a buyers row, an order record,
    /// the stock, a key of the wrong type): the script refused before writing anything. Retrying
    /// cannot help; an operator must repair the data.
    #[error("malformed data in Redis ({script}): {detail}")]
    Corrupt {
        script: &'static str,
        detail: String,
    },
}

impl StockError {
    pub(crate) fn bad_reply(script: &'static str, detail: impl Into<String>) -> Self {
        Self::BadReply {
            script,
            detail: detail.into(),
        }
    }

    /// A script's failure: malformed data it refused (`FGCORRUPT`, raised by the scripts before
    /// any write, or Redis' `WRONGTYPE`) is [`StockError::Corrupt`]; anything else is Redis'.
    pub(crate) fn from_script(script: &'static str, e: redis::RedisError) -> Self {
        match e.code() {
            Some("FGCORRUPT" | "WRONGTYPE") => Self::Corrupt {
                script,
                detail: format!(
                    "{} {}",
                    e.code().unwrap_or_default(),
                    e.detail().unwrap_or_default()
                ),
            },
            _ => Self::Redis(e),
        }
    }

    /// Whether retrying is pointless until an operator repairs data in Redis.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Self::Corrupt { .. })
    }
}

//! The one error type of the order store, whatever the backend.

/// Why the order store could not do what was asked.
///
/// Variants describe what the caller can do about it, not which library failed: persistence
/// workers retry [`StoreError::is_transient`] errors with backoff and log the rest.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot answer right now (locked or busy past the timeout, disk full, cannot
    /// open the file, a worker panicked while holding a connection). Retrying later may work.
    #[error("order store unavailable: {0}")]
    Unavailable(String),

    /// A stored row does not decode into an order: the data is damaged or was written by
    /// something else. Retrying will not help.
    #[error("stored order {order_id} is corrupt: {reason}")]
    Corrupt { order_id: u64, reason: String },

    /// An order given to the store cannot be represented in it (id above `i64::MAX`, amount
    /// overflowing). Nothing of its batch was written.
    #[error("order {order_id} cannot be stored: {reason}")]
    InvalidOrder { order_id: u64, reason: String },

    /// The store was opened with settings the file or the code does not accept (shard bits out of
    /// range or different from those the file was created with, a newer schema).
    #[error("order store misconfigured: {0}")]
    Misconfigured(String),

    /// Preparing the file system for the store failed (creating its directory).
    #[error("order store I/O failed")]
    Io(#[from] std::io::Error),

    /// Any other failure of the database itself; the source says which.
    #[error("order store query failed")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl StoreError {
    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Io(_))
    }
}

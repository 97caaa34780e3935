//! Why a reservation got no decision: the answer both the reserver and the wait for replicas
//! give, in a module of its own so neither has to import the other for it.

/// Why a reservation got no decision. The client may retry; with an order token the retry is
/// recognised if the lost call did commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReserveError {
    /// Refused before reaching Redis: nothing was recorded.
    #[error("too many reservations waiting")]
    Overloaded,
    /// Redis could not be reached, and nothing was recorded for this order id.
    #[error("redis unavailable")]
    Unavailable,
    /// The script call failed in a way that leaves open whether it committed (a timeout, a
    /// dropped connection) and Redis could not be asked afterwards; or, with
    /// `redis.replica_acks`, the order exists on the master but too few replicas acknowledged
    /// it, so a failover could still lose it (see [`super::replicas`]).
    #[error("outcome unknown")]
    OutcomeUnknown,
}

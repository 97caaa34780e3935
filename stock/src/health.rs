//! Whether this Redis can be trusted to keep what the scripts write.
//!
//! A Redis under memory pressure with an evicting `maxmemory-policy` drops keys: an evicted
//! orders hash is a lost order, an evicted buyers hash resets every per-user limit, an evicted
//! stock key makes a campaign look lost. Only `noeviction` keeps them (writes then fail with
//! an error, which the gateway answers 503). The policy can be changed on a running Redis, so
//! it is read at start and on every readiness probe: one cheap command.

use redis::aio::ConnectionLike;
use redis::{ErrorKind, RedisError, ServerErrorKind};

/// The one policy under which Redis never drops a key.
pub const NO_EVICTION: &str = "noeviction";

/// Redis' `maxmemory-policy` as read, and where it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvictionPolicy {
    /// As Redis names it: `noeviction`, `allkeys-lru`, `volatile-ttl`…
    pub name: String,
    /// `CONFIG GET`, or `INFO memory` where CONFIG is renamed or denied (managed Redis).
    pub read_from: &'static str,
}

impl EvictionPolicy {
    /// True when Redis may drop keys: the scripts' state would not survive memory pressure.
    pub fn evicts(&self) -> bool {
        self.name != NO_EVICTION
    }
}

/// Why the policy is not known.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Redis did not answer (unreachable, timed out): nothing is known about the policy.
    #[error("redis: {0}")]
    Redis(#[source] RedisError),
    /// Redis answered but gave the policy through neither command (both renamed or denied by
    /// ACL, or an answer without it).
    #[error(
        "maxmemory-policy cannot be read: CONFIG GET answered {config}; INFO memory answered \
         {info}; allow one of them to the gateway's Redis user"
    )]
    Unreadable { config: String, info: String },
}

/// Reads `maxmemory-policy`: `CONFIG GET`, or `INFO memory` when CONFIG is not allowed.
///
/// # Errors
/// [`PolicyError::Redis`] when Redis does not answer, [`PolicyError::Unreadable`] when it
/// refuses both ways of reading the policy.
pub async fn eviction_policy<C: ConnectionLike>(
    conn: &mut C,
) -> Result<EvictionPolicy, PolicyError> {
    let config: Result<Vec<String>, RedisError> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query_async(conn)
        .await;
    let config = match config {
        Ok(pair) => match pair.as_slice() {
            [_, name] => {
                return Ok(EvictionPolicy {
                    name: name.clone(),
                    read_from: "CONFIG GET",
                });
            }
            _ => format!("{pair:?}"),
        },
        Err(e) if refused(&e) => e.to_string(),
        Err(e) => return Err(PolicyError::Redis(e)),
    };
    let info: Result<String, RedisError> = redis::cmd("INFO").arg("memory").query_async(conn).await;
    let info = match info {
        Ok(text) => match field(&text, "maxmemory_policy") {
            Some(name) => {
                return Ok(EvictionPolicy {
                    name: name.to_owned(),
                    read_from: "INFO memory",
                });
            }
            None => "no maxmemory_policy field".to_owned(),
        },
        Err(e) if refused(&e) => e.to_string(),
        Err(e) => return Err(PolicyError::Redis(e)),
    };
    Err(PolicyError::Unreadable { config, info })
}

/// Redis answered that the command is not ours to use (unknown or renamed command, denied by
/// ACL): it is up, and the other way of reading may be allowed. A refused login is not that:
/// no command will be.
fn refused(e: &RedisError) -> bool {
    let login = matches!(e.code(), Some("NOAUTH" | "WRONGPASS"));
    !login
        && matches!(
            e.kind(),
            ErrorKind::Server(ServerErrorKind::ResponseError | ServerErrorKind::NoPerm)
                | ErrorKind::Extension
        )
}

/// The value of `name` in an `INFO` reply (`name:value` lines).
fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn info_field_is_found_by_exact_name() {
        let info = "# Memory\r\nmaxmemory:0\r\nmaxmemory_policy:allkeys-lru\r\n";
        assert_eq!(field(info, "maxmemory_policy"), Some("allkeys-lru"));
        assert_eq!(field(info, "maxmemory"), Some("0"));
        assert_eq!(field(info, "max"), None);
    }
}

//! Whether this Redis can be trusted to keep what the scripts write.
//!
//! A Redis under memory pressure with an evicting `maxmemory-policy` drops keys: an evicted
//! orders hash is a lost order, an evicted buyers hash resets every per-user limit, an evicted
//! stock key makes a campaign look lost. Only `noeviction` keeps them (writes then fail with
//! an error, which the gateway answers 503). The policy can be changed on a running Redis, so
//! it is read at start and on every readiness probe: one cheap command. On a Redis Cluster it
//! is read from every master, since each holds the keys of its own slots.
//!
//! A Cluster can also be whole or not: [`cluster_state`] is what its nodes say of it.

use redis::aio::ConnectionLike;
use redis::{ErrorKind, RedisError, ServerErrorKind, Value};

use crate::StockConnection;

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

/// The policy of one master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterPolicy {
    /// The master's address on a Cluster; `None` for the one Redis (the gateway names it).
    pub node: Option<String>,
    pub policy: EvictionPolicy,
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

/// Reads `maxmemory-policy` of the one Redis, or of every master of a Cluster (one that evicts
/// loses the orders of its slots): `CONFIG GET`, or `INFO memory` where CONFIG is not allowed.
///
/// # Errors
/// [`PolicyError::Redis`] when Redis (or a master) does not answer, [`PolicyError::Unreadable`]
/// when one refuses both ways of reading the policy.
pub async fn eviction_policies(
    conn: &mut StockConnection,
) -> Result<Vec<MasterPolicy>, PolicyError> {
    let mut config = redis::cmd("CONFIG");
    config.arg("GET").arg("maxmemory-policy");
    let mut read = Vec::new();
    // Masters whose CONFIG answer did not give the policy, and that answer.
    let mut refused_config = Vec::new();
    for (node, answer) in conn
        .on_every_master(&config)
        .await
        .map_err(PolicyError::Redis)?
    {
        match answer {
            Ok(value) => match config_policy(&value) {
                Some(name) => read.push(MasterPolicy {
                    node,
                    policy: EvictionPolicy {
                        name,
                        read_from: "CONFIG GET",
                    },
                }),
                None => refused_config.push((node, format!("{value:?}"))),
            },
            Err(e) if refused(&e) => refused_config.push((node, e.to_string())),
            Err(e) => return Err(PolicyError::Redis(e)),
        }
    }
    if refused_config.is_empty() {
        return Ok(read);
    }
    let mut info = redis::cmd("INFO");
    info.arg("memory");
    let infos = conn
        .on_every_master(&info)
        .await
        .map_err(PolicyError::Redis)?;
    for (node, config) in refused_config {
        let answer = infos.iter().find(|(n, _)| *n == node).map(|(_, a)| a);
        let info = match answer {
            Some(Ok(value)) => {
                let text = redis::from_redis_value_ref::<String>(value).unwrap_or_default();
                match field(&text, "maxmemory_policy") {
                    Some(name) => {
                        read.push(MasterPolicy {
                            node,
                            policy: EvictionPolicy {
                                name: name.to_owned(),
                                read_from: "INFO memory",
                            },
                        });
                        continue;
                    }
                    None => "no maxmemory_policy field".to_owned(),
                }
            }
            Some(Err(e)) if refused(e) => e.to_string(),
            Some(Err(e)) => return Err(PolicyError::Redis(e.clone())),
            None => "no answer from this node".to_owned(),
        };
        let at = |what: String| match &node {
            Some(node) => format!("{what} (at {node})"),
            None => what,
        };
        return Err(PolicyError::Unreadable {
            config: at(config),
            info: at(info),
        });
    }
    Ok(read)
}

/// The policy in a `CONFIG GET maxmemory-policy` answer (a name/value pair).
fn config_policy(value: &Value) -> Option<String> {
    match redis::from_redis_value_ref::<Vec<String>>(value)
        .ok()?
        .as_slice()
    {
        [_, name] => Some(name.clone()),
        _ => None,
    }
}

/// `CLUSTER INFO`'s `cluster_state`, as a node of the Cluster says it: `ok` while every hash
/// slot has a master that answers, `fail` once one has none (a master and its replicas down),
/// when the whole Cluster refuses commands. `None` on the one Redis, which has no such state.
///
/// # Errors
/// When no node answers, or the answer has no `cluster_state`.
pub async fn cluster_state(
    conn: &mut StockConnection,
) -> Result<Option<String>, crate::StockError> {
    if !conn.is_cluster() {
        return Ok(None);
    }
    let info: String = redis::cmd("CLUSTER").arg("INFO").query_async(conn).await?;
    match field(&info, "cluster_state") {
        Some(state) => Ok(Some(state.to_owned())),
        None => Err(crate::StockError::bad_reply(
            "CLUSTER INFO",
            "no cluster_state field",
        )),
    }
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
    use super::{config_policy, field};
    use redis::Value;

    #[test]
    fn config_get_answer_gives_the_policy_only_as_a_pair() {
        let pair = |k: &str, v: &str| {
            Value::Array(vec![
                Value::BulkString(k.as_bytes().to_vec()),
                Value::BulkString(v.as_bytes().to_vec()),
            ])
        };
        assert_eq!(
            config_policy(&pair("maxmemory-policy", "allkeys-lru")).as_deref(),
            Some("allkeys-lru")
        );
        assert_eq!(config_policy(&Value::Array(vec![])), None);
        assert_eq!(config_policy(&Value::Nil), None);
    }

    #[test]
    fn info_field_is_found_by_exact_name() {
        let info = "# Memory\r\nmaxmemory:0\r\nmaxmemory_policy:allkeys-lru\r\n";
        assert_eq!(field(info, "maxmemory_policy"), Some("allkeys-lru"));
        assert_eq!(field(info, "maxmemory"), Some("0"));
        assert_eq!(field(info, "max"), None);
    }
}

//! The servers under comparison: the gateway, the hello server and the naive gateway, with
//! the processes whose CPU time each is charged, and the yardsticks the comparison starts
//! for itself.

use std::net::SocketAddr;

use crate::args::Target;
use crate::cpu;
use crate::processes::{self, Server};

use super::CompareArgs;

/// Which server a [`Subject`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Gateway,
    Hello,
    Naive,
}

impl Role {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::Hello => "hello",
            Self::Naive => "naive",
        }
    }

    /// The answer status of a reservation (hello reserves nothing).
    pub(super) fn reserved(self) -> Option<u16> {
        match self {
            Self::Gateway => Some(202),
            Self::Hello => None,
            Self::Naive => Some(201),
        }
    }
}

/// A server under comparison and how to watch what it spends.
pub(super) struct Subject {
    pub(super) kind: Role,
    pub(super) addr: SocketAddr,
    /// Its process, for its CPU time.
    pub(super) pid: Option<u32>,
    /// Whether it reserves in the Redis watched (its time there is charged to it).
    pub(super) uses_redis: bool,
}

impl Subject {
    fn new(kind: Role, addr: SocketAddr, uses_redis: bool) -> Self {
        Self {
            kind,
            addr,
            pid: cpu::listening_pid(addr),
            uses_redis,
        }
    }
}

/// Every server of the comparison, in the order each round loads them: the gateway first,
/// then hello, then naive (if any). The yardsticks started here stop when it is dropped.
pub(super) struct Lineup {
    pub(super) subjects: Vec<Subject>,
    /// The yardsticks started for the comparison, kept running until it ends.
    _started: Vec<Server>,
}

impl Lineup {
    /// The gateway at `target`, and the yardsticks: the hello server given or one started,
    /// and the naive gateway on the Redis given or `own_redis_url`. The yardsticks run on as
    /// many threads as the gateway: the same server stack.
    ///
    /// # Errors
    /// A reference server that would not start.
    pub(super) fn start(
        args: &CompareArgs,
        target: &Target,
        own_redis_url: Option<String>,
    ) -> anyhow::Result<Self> {
        let workers = target.config.server.workers;
        let mut started: Vec<Server> = Vec::new();
        let hello = match args.reference {
            Some(addr) => addr,
            None => {
                let (server, addr) = processes::reference_server(None, workers)?;
                started.push(server);
                addr
            }
        };
        let naive_url = args.naive_redis.clone().or_else(|| own_redis_url.clone());
        let naive = match (&naive_url, args.no_naive) {
            (Some(url), false) => {
                let (server, addr) = processes::reference_server(Some(url), workers)?;
                started.push(server);
                Some(addr)
            }
            _ => {
                eprintln!(
                    "compare: no naive gateway (--no-naive, or a Cluster without --naive-redis)"
                );
                None
            }
        };
        let mut subjects = vec![
            Subject::new(Role::Gateway, target.addr, true),
            Subject::new(Role::Hello, hello, false),
        ];
        if let Some(addr) = naive {
            subjects.push(Subject::new(Role::Naive, addr, naive_url == own_redis_url));
        }
        Ok(Self {
            subjects,
            _started: started,
        })
    }
}

//! A private Redis Cluster: three masters and a replica each, on free ports, in a temp dir,
//! killed on drop. Started with `redis-server --cluster-enabled yes` and `redis-cli --cluster
//! create`, then awaited until every node says `cluster_state:ok`. A node whose port someone
//! else took first is started again on another.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::guarded::Guarded;

#[derive(Debug)]
pub struct RedisCluster {
    ports: Vec<u16>,
    /// `None` once [`RedisCluster::kill`] has killed the node.
    children: Vec<Option<Guarded>>,
    /// `--cluster-node-timeout`, for a node started again.
    node_timeout: Duration,
    _dir: TempDir,
}

/// A port whose cluster bus port (+10000) is free too.
fn cluster_port() -> u16 {
    loop {
        let port = crate::free_port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

impl RedisCluster {
    /// Three masters, one replica each; a node is failed over 2 s after it stops answering.
    pub fn start() -> Self {
        Self::start_with_node_timeout(Duration::from_secs(2))
    }

    /// Three masters, one replica each, failed over after `node_timeout` of silence
    /// (`--cluster-node-timeout`): short for failover tests.
    pub fn start_with_node_timeout(node_timeout: Duration) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // The cluster forms on a patient timeout and gets the test's own once it is whole: with
        // a short one, a node starved of CPU (tests run in parallel on two cores) drops a
        // handshake half-done and may not learn of a peer for a long while.
        let forming = node_timeout.max(Duration::from_secs(5));
        let (ports, children) = (0..6)
            .map(|_| start_node(dir.path(), forming))
            .map(|(port, node)| (port, Some(node)))
            .unzip();
        let cluster = Self {
            ports,
            children,
            node_timeout,
            _dir: dir,
        };
        cluster.create();
        cluster.wait_until_ok();
        cluster.wait_until_replicas_synced();
        cluster.wait_until_every_node_knows_every_replica();
        cluster.set_node_timeout(node_timeout);
        cluster
    }

    /// Joins the started nodes into one cluster: three masters, a replica each.
    fn create(&self) {
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(self.ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli on PATH (apt-get install redis-tools)");
        assert!(created.success(), "redis-cli --cluster create failed");
    }

    /// A replica that has not synced yet cannot take over: wait for every link. Each node
    /// is asked until all three replicas are up, not once: right after `--cluster create` a
    /// replica may not know it is one yet, and its first sync waits out the master's
    /// `repl-diskless-sync-delay` (5 s).
    fn wait_until_replicas_synced(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let synced = self
                .ports
                .iter()
                .filter(|p| {
                    let info = self.cli(**p, &["INFO", "replication"]);
                    info.contains("role:slave") && info.contains("master_link_status:up")
                })
                .count();
            if synced == self.ports.len() / 2 {
                break;
            }
            assert!(Instant::now() < deadline, "replicas never synced");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every node knows every replica's master (gossip may lag the sync): a test
    /// asking one node for a master's replicas must not be told there are none.
    fn wait_until_every_node_knows_every_replica(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for port in &self.ports {
            let mut nudged = Instant::now();
            loop {
                let nodes = self.cli(*port, &["CLUSTER", "NODES"]);
                let replicas = nodes
                    .lines()
                    .filter(|l| {
                        let f: Vec<&str> = l.split(' ').collect();
                        f.len() > 3 && f[2].contains("slave") && f[3] != "-"
                    })
                    .count();
                if replicas == self.ports.len() / 2 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {port} does not know every replica: {nodes}"
                );
                // Gossip brings a missing peer back in the end; a MEET brings it now (a MEET
                // of a known node is dropped as a duplicate once answered).
                if nudged.elapsed() > Duration::from_secs(2) {
                    self.meet_all(*port);
                    nudged = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Gives every node the test's own `--cluster-node-timeout`, now that the cluster is whole.
    fn set_node_timeout(&self, node_timeout: Duration) {
        let millis = node_timeout.as_millis().to_string();
        for port in &self.ports {
            let set = self.cli(*port, &["CONFIG", "SET", "cluster-node-timeout", &millis]);
            assert!(set.contains("OK"), "node {port}: {set}");
        }
    }

    /// Has the node on `port` meet every other node of the cluster.
    fn meet_all(&self, port: u16) {
        for other in self.ports.iter().filter(|p| **p != port) {
            self.cli(port, &["CLUSTER", "MEET", "127.0.0.1", &other.to_string()]);
        }
    }

    /// Waits until the replica on `replica` has applied everything its master on `master` had
    /// written when this was called (replication offsets).
    pub fn wait_until_caught_up(&self, master: u16, replica: u16) {
        let offset = |port: u16| -> u64 {
            self.cli(port, &["INFO", "replication"])
                .lines()
                .find_map(|l| l.trim().strip_prefix("master_repl_offset:"))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        let wanted = offset(master);
        let deadline = Instant::now() + Duration::from_secs(20);
        while offset(replica) < wanted {
            assert!(
                Instant::now() < deadline,
                "replica {replica} never caught up with {master}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The seed URLs of every node.
    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// The ports of the nodes still running.
    pub fn live_ports(&self) -> Vec<u16> {
        self.ports
            .iter()
            .zip(&self.children)
            .filter(|(_, c)| c.is_some())
            .map(|(p, _)| *p)
            .collect()
    }

    /// What `redis-cli -p <port> <args>` prints.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        cli(port, args)
    }

    /// The port of the master serving `key`'s slot now, and of its replicas, as the live nodes
    /// see it.
    pub fn master_and_replicas_of(&self, key: &str) -> (u16, Vec<u16>) {
        self.healthy_master_of(key)
            .unwrap_or_else(|| panic!("no healthy master serves {key}"))
    }

    /// Like [`RedisCluster::master_and_replicas_of`], but `None` while the slot's master is
    /// failing and no replica has taken over yet.
    pub fn healthy_master_of(&self, key: &str) -> Option<(u16, Vec<u16>)> {
        let port = self.live_ports()[0];
        let slot: u16 = self
            .cli(port, &["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .expect("CLUSTER KEYSLOT answers a number");
        let nodes = self.cli(port, &["CLUSTER", "NODES"]);
        let lines: Vec<Vec<&str>> = nodes.lines().map(|l| l.split(' ').collect()).collect();
        let port_of = |fields: &[&str]| -> u16 {
            let addr = fields[1].split('@').next().unwrap();
            addr.rsplit(':').next().unwrap().parse().unwrap()
        };
        let serves = |fields: &[&str]| {
            fields[8..].iter().any(|range| match range.split_once('-') {
                Some((a, b)) => {
                    (a.parse().unwrap_or(u16::MAX)..=b.parse().unwrap_or(0)).contains(&slot)
                }
                None => range.parse::<u16>() == Ok(slot),
            })
        };
        let master = lines.iter().find(|f| {
            f.len() > 8 && f[2].contains("master") && !f[2].contains("fail") && serves(f)
        })?;
        let replicas = lines
            .iter()
            .filter(|f| f[3] == master[0])
            .map(|f| port_of(f))
            .collect();
        Some((port_of(master), replicas))
    }

    /// SIGKILLs the node on `port`: a crash, nothing saved, no goodbye to the cluster.
    pub fn kill(&mut self, port: u16) {
        let i = self
            .ports
            .iter()
            .position(|p| *p == port)
            .expect("a node of this cluster");
        drop(self.children[i].take());
    }

    /// Starts the node on `port` again after [`RedisCluster::kill`], on its cluster config
    /// (`nodes.conf`) and without data (the cluster keeps none on disk): a failed master comes
    /// back as a replica of the node that took its slots over, and syncs from it.
    pub fn restart(&mut self, port: u16) {
        let i = self.index(port);
        assert!(self.children[i].is_none(), "node {port} is running");
        let node = spawn_node(self._dir.path(), port, self.node_timeout);
        assert!(answers(port, &node), "node {port} did not start again");
        self.children[i] = Some(node);
    }

    /// SIGSTOPs the node on `port`: it neither reads nor answers anything (its replication
    /// link included) until [`RedisCluster::resume`]; the kernel still buffers what is sent to
    /// it.
    pub fn pause(&self, port: u16) {
        self.signal(port, "STOP");
    }

    /// SIGCONTs a node [`RedisCluster::pause`] stopped.
    pub fn resume(&self, port: u16) {
        self.signal(port, "CONT");
    }

    fn signal(&self, port: u16, signal: &str) {
        self.children[self.index(port)]
            .as_ref()
            .expect("a running node")
            .signal(signal);
    }

    fn index(&self, port: u16) -> usize {
        self.ports
            .iter()
            .position(|p| *p == port)
            .expect("a node of this cluster")
    }

    /// Waits until the replica on `port` has a live replication link to its master.
    pub fn wait_until_replicating(&self, port: u16) {
        self.wait_for(port, "role:slave", &["INFO", "replication"]);
        self.wait_for(port, "master_link_status:up", &["INFO", "replication"]);
    }

    /// Waits until every live node says `cluster_state:ok` (after a failover, say).
    pub fn wait_until_ok(&self) {
        for port in self.live_ports() {
            self.wait_for(port, "cluster_state:ok", &["CLUSTER", "INFO"]);
        }
    }

    fn wait_for(&self, port: u16, expected: &str, command: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let answer = cli(port, command);
            if answer.contains(expected) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {port} never answered {expected}: {answer}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// What `redis-cli -p <port> <args>` prints.
fn cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// A node on a free port pair, started again on another when its port was taken.
fn start_node(dir: &std::path::Path, node_timeout: Duration) -> (u16, Guarded) {
    for _ in 0..5 {
        let port = cluster_port();
        let node = spawn_node(dir, port, node_timeout);
        if answers(port, &node) {
            return (port, node);
        }
    }
    panic!("no cluster node started on any of 5 free ports");
}

/// Waits until `node` answers on `port` (`INFO server` gives its pid, not a stranger's):
/// `false` if it exited first.
fn answers(port: u16, node: &Guarded) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid = format!("process_id:{}", node.pid());
    loop {
        if cli(port, &["INFO", "server"])
            .lines()
            .any(|l| l.trim() == pid)
        {
            return true;
        }
        if !node.is_running() {
            return false;
        }
        assert!(Instant::now() < deadline, "node {port} never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One cluster node on `port`, its data and `nodes.conf` under `dir/<port>`.
fn spawn_node(dir: &std::path::Path, port: u16, node_timeout: Duration) -> Guarded {
    let node_dir = dir.join(port.to_string());
    std::fs::create_dir_all(&node_dir).unwrap();
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
        ])
        .args([
            "--cluster-node-timeout",
            &node_timeout.as_millis().to_string(),
        ])
        .args(["--appendonly", "no", "--save", ""])
        // A replica's first sync at once, not after the default 5 s wait for more replicas to
        // share it: the start waits for every replica's link.
        .args(["--repl-diskless-sync-delay", "0"])
        .arg("--dir")
        .arg(&node_dir);
    Guarded::spawn(&command, "KILL").expect("redis-server on PATH (apt-get install redis-server)")
}

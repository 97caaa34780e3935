//! A private Redis Cluster: three masters and a replica each, on free ports, in a temp dir,
//! killed on drop. Started with `redis-server --cluster-enabled yes` and `redis-cli --cluster
//! create`, then awaited until every node says `cluster_state:ok`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub struct RedisCluster {
    ports: Vec<u16>,
    children: Vec<Child>,
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
    /// Three masters, one replica each.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<u16> = (0..6).map(|_| cluster_port()).collect();
        let children = ports
            .iter()
            .map(|port| {
                let node_dir = dir.path().join(port.to_string());
                std::fs::create_dir_all(&node_dir).unwrap();
                Command::new("redis-server")
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .args([
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                    ])
                    .args(["--cluster-node-timeout", "2000"])
                    .args(["--appendonly", "no", "--save", ""])
                    .arg("--dir")
                    .arg(&node_dir)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("redis-server on PATH (apt-get install redis-server)")
            })
            .collect();
        let cluster = Self {
            ports,
            children,
            _dir: dir,
        };
        for port in &cluster.ports {
            cluster.wait_for(*port, "PONG", &["PING"]);
        }
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli on PATH (apt-get install redis-tools)");
        assert!(created.success(), "redis-cli --cluster create failed");
        for port in &cluster.ports {
            cluster.wait_for(*port, "cluster_state:ok", &["CLUSTER", "INFO"]);
        }
        cluster
    }

    /// The seed URLs of every node.
    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    fn wait_for(&self, port: u16, expected: &str, command: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let answer = Command::new("redis-cli")
                .args(["-p", &port.to_string()])
                .args(command)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
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

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

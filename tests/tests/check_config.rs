//! `flashgate --check-config`: names every bad field and exits non-zero; accepts the shipped
//! configs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use flashgate_tests::gateway::binary;

fn repo_file(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

#[test]
fn the_shipped_configs_are_valid() {
    for file in ["config/demo.toml", "config/flashgate.example.toml"] {
        let out = Command::new(binary())
            .arg("--check-config")
            .arg(repo_file(file))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_bad_config_is_refused_naming_every_bad_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
[server]
node_id = 300
[auth]
jwt_secret = "short"
order_token_secret = "long-enough-order-token-secret"
[redis]
url = "redis://127.0.0.1:6379"
[[campaigns]]
id = "bad id with spaces"
sku = "S"
name = "x"
unit_price_cents = -5
stock = 10
start = "2026-02-01T00:00:00Z"
end = "2026-01-01T00:00:00Z"
pay_timeout = "15m"
"#,
    )
    .unwrap();
    let out = Command::new(binary())
        .arg("--check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for field in [
        "server.node_id",
        "auth.jwt_secret",
        "campaigns[0].id",
        "campaigns[0].unit_price_cents",
        "campaigns[0].end",
    ] {
        assert!(stderr.contains(field), "{field} not named in:\n{stderr}");
    }
}

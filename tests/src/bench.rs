//! Runs `flashgate-bench` as its users do, and reads its JSON report.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::gateway::bench_binary;

/// One finished bench command.
#[derive(Debug)]
pub struct BenchRun {
    /// Exit status 0.
    pub passed: bool,
    /// The `--json` report (Null when none was written).
    pub report: Value,
    pub stderr: String,
}

/// Runs `flashgate-bench <args> --json <json>`, off the async threads.
pub async fn bench(args: Vec<OsString>, json: &Path) -> BenchRun {
    let json = json.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(bench_binary())
            .args(args)
            .arg("--json")
            .arg(&json)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        eprintln!("{}{stderr}", String::from_utf8_lossy(&out.stdout));
        let report = std::fs::read(&json)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or(Value::Null);
        BenchRun {
            passed: out.status.success(),
            report,
            stderr,
        }
    })
    .await
    .unwrap()
}

/// `["--flag", "value", …]` as the arguments of a command.
pub fn args<I, S>(parts: I) -> Vec<OsString>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    parts.into_iter().map(Into::into).collect()
}

/// The names of the failed checks of a report's verification.
pub fn failed_checks(report: &Value) -> Vec<String> {
    report["verification"]["checks"]
        .as_array()
        .map(|checks| {
            checks
                .iter()
                .filter(|c| c["passed"] == false)
                .filter_map(|c| Some(c["name"].as_str()?.to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether check `name` of a report's verification is there and passed.
pub fn check_passed(report: &Value, name: &str) -> bool {
    report["verification"]["checks"]
        .as_array()
        .is_some_and(|checks| {
            checks
                .iter()
                .any(|c| c["name"] == name && c["passed"] == true)
        })
}

//! What verification found: each check and how it went, printed for a person and written as
//! JSON.

use serde_json::{Value, json};

/// One check and how it went.
#[derive(Debug)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

impl Check {
    pub fn new(name: &'static str, passed: bool, detail: String) -> Self {
        Self {
            name,
            passed,
            detail,
        }
    }
}

/// Every check of a run.
#[derive(Debug)]
pub struct Verification {
    pub checks: Vec<Check>,
    /// Orders stored that the client never saw accepted, but that an ambiguous answer (a broken
    /// connection, `outcome_unknown`) may have committed: reported, not failed.
    pub committed_unseen: usize,
}

impl Verification {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    pub fn print(&self) {
        println!(
            "verification: {}",
            if self.passed() { "PASSED" } else { "FAILED" }
        );
        for c in &self.checks {
            println!(
                "  [{}] {:<34} {}",
                if c.passed { " ok " } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        if self.committed_unseen > 0 {
            println!(
                "  note: {} orders committed behind ambiguous answers",
                self.committed_unseen
            );
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "passed": self.passed(),
            "committed_unseen": self.committed_unseen,
            "checks": self.checks.iter().map(|c| json!({
                "name": c.name, "passed": c.passed, "detail": c.detail
            })).collect::<Vec<_>>(),
        })
    }
}

//! The Prometheus text format's pieces every part of `/metrics` writes the same way.

use std::fmt::Write as _;

/// A metric family's `# HELP` and `# TYPE` lines, written once before its samples.
pub(crate) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

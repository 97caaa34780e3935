//! Unit tests of the smaller sections: `[limits]`, `[server]`, `[persistence]`, `[archive]`.
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use super::*;

#[test]
fn only_present_limit_tables_are_set() {
    let text = minimal() + "[limits.per_ip]\nper_second = 20\nburst = 40\n";
    let c = parse(&text).unwrap();
    assert_eq!(c.limits.global, None);
    let ip = c.limits.per_ip.unwrap();
    assert_eq!(
        (ip.per_second, ip.burst),
        (NonZeroU32::new(20).unwrap(), NonZeroU32::new(40).unwrap())
    );
}

#[test]
fn the_payment_callback_limit_is_configurable_and_checked() {
    let text = minimal() + "[limits.payment_callback]\nper_second = 5\nburst = 7\n";
    let cb = parse(&text).unwrap().limits.payment_callback;
    assert_eq!((cb.per_second.get(), cb.burst.get()), (5, 7));
    let bad = minimal() + "[limits.payment_callback]\nper_second = 0\n";
    let err = parse(&bad).unwrap_err().to_string();
    assert!(err.contains("limits.payment_callback.per_second"), "{err}");
    assert!(err.contains("limits.payment_callback.burst"), "{err}");
}

#[test]
fn server_workers_default_to_the_cores_and_are_bounded() {
    assert_eq!(parse(&minimal()).unwrap().server.workers, None);
    let one = format!("[server]\nworkers = 1\n{}", minimal());
    assert_eq!(parse(&one).unwrap().server.workers, Some(1));
    for bad in ["0", "1025", "-1"] {
        let text = format!("[server]\nworkers = {bad}\n{}", minimal());
        assert_eq!(fields(&invalid(&text)), ["server.workers"], "{bad}");
    }
}

#[test]
fn retirement_is_a_duration_after_the_end_or_never() {
    let with = |v: &str| format!("{}\n[persistence]\nretire_after = {v}\n", minimal());
    assert_eq!(
        parse(&with("\"90m\"")).unwrap().persistence.retire_after,
        Some(Duration::from_secs(5400))
    );
    for never in ["\"0\"", "\"0s\""] {
        assert_eq!(parse(&with(never)).unwrap().persistence.retire_after, None);
    }
    assert_eq!(
        fields(&invalid(&with("\"soon\""))),
        ["persistence.retire_after"]
    );
}

#[test]
fn the_archive_has_an_age_a_pace_and_a_place() {
    let with = |v: &str| format!("{}\n[archive]\n{v}\n", minimal());
    let c = parse(&with(
        "after = \"30d\"\nbatch = 100\ninterval = \"1s\"\npause_above = 0\npath = \"/x/a.db\"\n\
         url = \"postgres://u@h/archive\"",
    ))
    .unwrap();
    assert_eq!(c.archive.after, Some(Duration::from_secs(30 * 24 * 3600)));
    assert_eq!(
        (c.archive.batch, c.archive.interval, c.archive.pause_above),
        (100, Duration::from_secs(1), 0)
    );
    assert_eq!(c.store.archive_path, PathBuf::from("/x/a.db"));
    assert_eq!(
        c.store.archive_url.as_ref().map(|u| u.expose().to_owned()),
        Some("postgres://u@h/archive".to_owned())
    );
    // Beside the store file by default, and never with `0`.
    let c = parse(&format!(
        "[store]\npath = \"/d/o.db\"\n{}\n[archive]\nafter = \"0\"\n",
        minimal()
    ))
    .unwrap();
    assert_eq!(c.store.archive_path, PathBuf::from("/d/o-archive.db"));
    assert_eq!(c.archive.after, None);
    for (bad, field) in [
        ("batch = 0", "archive.batch"),
        ("after = \"soon\"", "archive.after"),
        ("url = \"mysql://x\"", "archive.url"),
        ("path = \" \"", "archive.path"),
    ] {
        assert_eq!(fields(&invalid(&with(bad))), [field], "{bad}");
    }
}

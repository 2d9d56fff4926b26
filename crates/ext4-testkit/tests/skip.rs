//! Both behaviours of the skip helper, `ext4_testkit::require`, shown on a
//! child run of this very test binary (environment variables cannot be
//! changed safely inside a running test process): without
//! `EXT4_REQUIRE_ORACLES` (or with `0`) a missing oracle is a skip line and
//! the test passes; with it set (CI) the test fails and says why.
//!
//! Outside CI such a test is also reported as ignored rather than passed
//! when its oracle was missing at build time: `#[oracle_test]`, whose
//! decision is tested in `ext4-testkit-macros`.

use std::process::{Command, Output};

/// Set in the child runs only; the probe does nothing in an ordinary run.
const CHILD: &str = "EXT4_SKIP_PROBE_CHILD";

/// The child: an oracle that is never there.
#[test]
fn probe_of_a_missing_oracle() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let went_on = ext4_testkit::require(false, "the probe's oracle");
    assert!(!went_on, "require(false) said go on");
    println!("the test returned after the skip");
}

/// Runs the probe alone in a child, with `EXT4_REQUIRE_ORACLES` as given.
fn probe(required: Option<&str>) -> Output {
    let mut c = Command::new(std::env::current_exe().expect("this test binary"));
    c.args(["--exact", "probe_of_a_missing_oracle", "--nocapture", "--test-threads=1"]).env(CHILD, "1");
    match required {
        Some(v) => c.env("EXT4_REQUIRE_ORACLES", v),
        None => c.env_remove("EXT4_REQUIRE_ORACLES"),
    };
    c.output().expect("the test binary runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn outside_ci_a_missing_oracle_skips() {
    for required in [None, Some(""), Some("0")] {
        let out = probe(required);
        let t = text(&out);
        assert!(out.status.success(), "EXT4_REQUIRE_ORACLES={required:?}: the probe failed:\n{t}");
        assert!(t.contains("SKIPPED: the probe's oracle"), "no skip line:\n{t}");
        assert!(t.contains("the test returned after the skip"), "{t}");
    }
}

#[test]
fn in_ci_a_missing_oracle_fails() {
    for required in ["1", "yes"] {
        let out = probe(Some(required));
        let t = text(&out);
        assert!(!out.status.success(), "EXT4_REQUIRE_ORACLES={required}: the probe passed:\n{t}");
        assert!(t.contains("required oracle missing (EXT4_REQUIRE_ORACLES is set): the probe's oracle"), "{t}");
        assert!(!t.contains("SKIPPED"), "{t}");
    }
}

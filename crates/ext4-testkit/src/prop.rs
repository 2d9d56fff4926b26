//! The proptest configuration of the project's property tests: proptest's
//! own (`PROPTEST_CASES` and the other `PROPTEST_*` variables apply), a
//! default case count per test that keeps CI's run time, and failures
//! persisted to `proptest-regressions/NAME.txt` in the crate under test,
//! where they are committed and replayed first by every later run.

use proptest::test_runner::{Config, FileFailurePersistence};

/// The configuration of the property test `name`: `default_cases` unless
/// `PROPTEST_CASES` is set, failures kept in
/// `proptest-regressions/NAME.txt` of the crate (`cargo test` runs a
/// crate's tests in its directory).
pub fn config(default_cases: u32, name: &str) -> Config {
    let mut c = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = default_cases;
    }
    let path: &'static str = Box::leak(regressions_file(name).into_boxed_str());
    c.failure_persistence = Some(Box::new(FileFailurePersistence::Direct(path)));
    c
}

/// `proptest-regressions/NAME.txt`, with characters other than letters,
/// digits, `-` and `_` replaced.
fn regressions_file(name: &str) -> String {
    let name: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    format!("proptest-regressions/{name}.txt")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_case_count_follows_proptest_cases_else_the_default() {
        let c = config(7, "x");
        match std::env::var("PROPTEST_CASES") {
            Ok(v) => assert_eq!(c.cases.to_string(), v.trim()),
            Err(_) => assert_eq!(c.cases, 7),
        }
        assert_eq!(regressions_file("write_model-ext4 1k"), "proptest-regressions/write_model-ext4_1k.txt");
    }
}

//! The house rule for a missing backend: say SKIPPED (so a skip is never silent), or fail
//! under `BAZAAR_REQUIRE_BACKENDS=1`, as CI sets it.

use std::io::Write;
use std::path::PathBuf;

/// True when CI asked for every backend (`BAZAAR_REQUIRE_BACKENDS=1`).
pub fn backends_required() -> bool {
    std::env::var("BAZAAR_REQUIRE_BACKENDS").as_deref() == Ok("1")
}

/// A backend is missing: fails under `BAZAAR_REQUIRE_BACKENDS=1`, else prints SKIPPED (past
/// the test harness's capture, so a skip is never silent) and gives `None` to return with.
pub fn skip<T>(what: impl std::fmt::Display) -> Option<T> {
    if backends_required() {
        panic!("{what}, and BAZAAR_REQUIRE_BACKENDS=1");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED: {what}");
    None
}

/// The first of `candidates` that is an executable file, or a skip naming them.
pub fn binary(what: &str, candidates: &[&str]) -> Option<PathBuf> {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| skip(format!("{what} not installed (looked for {candidates:?})")))
}

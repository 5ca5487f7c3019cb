//! How a test that cannot run here says so: it fails when `CI` is set (CI installs what
//! every test needs), and elsewhere prints one line and returns.
//!
//! The line goes to the process's stderr directly, past the test harness's capture
//! (which takes only `print!`/`eprint!`), so that it shows in `cargo test`'s output
//! beside `test NAME ... ok` even though the test passes:
//! `SKIPPED TEST: WHY (installs: PACKAGES; with CI set this fails)`.

use std::io::Write;

/// Fails the calling test when `CI` is set; otherwise prints the skip line. `installs`
/// names the packages that `.ci/run` installs for it.
pub fn skip(test: &str, why: &str, installs: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {why} (CI is set: .ci/run installs {installs})"
    );
    let line = format!("SKIPPED {test}: {why} (installs: {installs}; with CI set this fails)\n");
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line.as_bytes());
    let _ = err.flush();
}

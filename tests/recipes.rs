//! The recipes of docs/operations.md, compiled and run: each file in `tests/recipes/` is
//! a code block of the doc, verbatim (`tests/docs.rs` checks that every Rust block in
//! docs/ is one of these files, so the two cannot drift apart).

/// "Testing your controller with the reference router".
#[path = "recipes/router.rs"]
mod router;

/// "Testing your controller without a server: `FakeSource`".
#[path = "recipes/fake_source.rs"]
mod fake_source;

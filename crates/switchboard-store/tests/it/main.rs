#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on the unexpected"
)]
// Tests of the Store contract. Every scenario here is written against the
// trait and runs on both backends: SQLite, and a real PostgreSQL server
// each test starts (`pg.rs`).
mod audit;
mod copy;
mod pg;
mod story;
mod triggers;

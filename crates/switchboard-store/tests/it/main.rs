#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on the unexpected"
)]
// Tests of the Store contract. Every scenario here is written against the
// trait, so the PostgreSQL backend will run the same stories.
mod audit;
mod story;
mod triggers;

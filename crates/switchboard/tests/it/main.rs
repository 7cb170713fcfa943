#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on the unexpected"
)]
// End-to-end tests: each starts the real `switchboard` binary on a free
// loopback port with a temporary database and drives it over HTTP and the
// CLI, as a user would. If you are adding a feature, its test goes in the
// module of the door it comes through.
mod alertmanager_e2e;
mod alerts;
mod api;
mod approvals;
mod audit;
mod auth;
mod authz;
mod browser;
mod chat;
mod chat_platforms;
mod chatops_rpc;
mod cli;
mod cluster;
mod fleet;
mod harness;
mod irc;
mod lifecycle;
mod matrix;
mod notifications;
mod oidc;
mod partition;
mod report;
// The store's real PostgreSQL server for one test, shared rather than copied.
#[path = "../../../switchboard-store/tests/it/pg.rs"]
#[allow(
    dead_code,
    reason = "not every helper of the store's tests is used here"
)]
mod pg;
mod sinks;
mod storage;
mod test_servers;
mod triggers;
mod web;
mod workflows;
mod xmpp;

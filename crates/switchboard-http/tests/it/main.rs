#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on the unexpected"
)]
// Property tests of the HTTP door: whatever a client sends, the answer is a
// deliberate one (2xx, or a 4xx with a JSON error), never a 500 or a panic,
// and nothing stored is harmed.
mod robustness;

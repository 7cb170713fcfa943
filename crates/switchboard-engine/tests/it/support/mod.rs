//! Real servers the engine's tests start.
pub mod prometheus;
pub mod sshd;

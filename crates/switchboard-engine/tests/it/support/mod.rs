//! Real servers the engine's tests start.
pub mod alertmanager;
pub mod prometheus;
pub mod sshd;

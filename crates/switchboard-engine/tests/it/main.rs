//! The engine's integration tests, in one test binary (each binary links the
//! whole dependency tree, so one binary keeps a cold build small): real
//! servers (OpenSSH, OpenLDAP, Prometheus) started on loopback by `support`.

mod hooks;
mod inventory_sources;
mod ldap;
mod prometheus;
mod schedules;
mod ssh;
mod support;

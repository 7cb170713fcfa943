//! Route handlers, one file per resource.

pub mod actions;
pub mod alerts;
pub mod audit;
pub mod authz;
pub mod catalog;
pub mod chat;
pub mod chatops_rpc;
pub mod executions;
pub mod hooks;
pub mod hosts;
pub mod ops;
pub mod report;
pub mod schedules;
pub mod silences;
pub mod tokens;
pub mod workflows;

//! Switchboard's domain: the types every other crate speaks and the pure logic
//! over them — catalog loading and validation, parameter types, the chat alias
//! grammar, command templating, secret masking and the execution state machine.
//!
//! This crate deliberately does no networking, no SQL and no process spawning,
//! and it has no async runtime: it reads catalog files and computes. Everything
//! here can be tested with plain unit and property tests.

pub mod alerts;
pub mod alias;
pub mod audit;
pub mod catalog;
pub mod chat;
pub mod command;
pub mod directory;
pub mod execution;
pub mod graphs;
pub mod hooks;
pub mod http_request;
pub mod ids;
pub mod inventory;
pub mod masking;
pub mod offline;
pub mod params;
pub mod policy;
pub mod report;
pub mod schedules;
pub mod secret;
pub mod template;
pub mod token;
pub mod workflow;

pub use catalog::{Action, Catalog, CatalogError, CatalogErrors, Runner};
pub use execution::{Approval, Artifact, Execution, ExecutionStatus, OutputChunk, Stream};
pub use ids::{ActionName, ExecutionId, IdError, Origin, Principal, Timestamp};
pub use masking::Masker;
pub use params::{ParamError, ParamSpec, ParamType, ParamValue, RawParams, ValidatedParams};

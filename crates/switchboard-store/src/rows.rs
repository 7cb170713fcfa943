//! The rows both backends read back, and their conversion to domain
//! types: executions, tokens, alerts and what belongs to them, schedule
//! ticks and leases. SQLite and PostgreSQL keep the same representation
//! (times as integer microseconds, JSON as text), so one mapping serves
//! both; each backend keeps only its SQL.

use switchboard_core::token::{Scope, TokenRecord};
use switchboard_core::{
    ActionName, Execution, ExecutionId, ExecutionStatus, Origin, Principal, Timestamp,
};

use crate::{DeliveryStatus, Lease, StoreError, StoredAlert, StoredDelivery, StoredTick};

/// The columns of an [`ExecutionRow`], as a literal for `concat!`.
macro_rules! columns {
    () => {
        "id, action, params, requester, origin, status, node, exit_code, result, error, \
         output_bytes, output_truncated, created_at, started_at, finished_at, approval_rule, \
         approval_expires_at, parent_id, step"
    };
}

/// The columns of a [`TokenRow`], as a literal for `concat!`.
macro_rules! token_columns {
    () => {
        "id, principal, scopes, description, created_by, created_at, expires_at, revoked_at, last_used_at"
    };
}

#[derive(sqlx::FromRow)]
pub(crate) struct ExecutionRow {
    id: i64,
    action: String,
    params: String,
    requester: String,
    origin: String,
    status: String,
    node: Option<String>,
    exit_code: Option<i64>,
    result: Option<String>,
    error: Option<String>,
    output_bytes: i64,
    output_truncated: bool,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    approval_rule: Option<String>,
    approval_expires_at: Option<i64>,
    parent_id: Option<i64>,
    step: Option<String>,
}

pub(crate) fn corrupt(id: i64, what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("execution {id}: {what}"))
}

impl TryFrom<ExecutionRow> for Execution {
    type Error = StoreError;

    fn try_from(r: ExecutionRow) -> Result<Self, StoreError> {
        let id = r.id;
        let json = |text: &str| serde_json::from_str(text).map_err(|e| corrupt(id, e));
        Ok(Execution {
            id: ExecutionId(r.id),
            action: ActionName::new(r.action).map_err(|e| corrupt(id, e))?,
            params: json(&r.params)?,
            requester: Principal::new(r.requester).map_err(|e| corrupt(id, e))?,
            origin: Origin::new(r.origin).map_err(|e| corrupt(id, e))?,
            status: ExecutionStatus::parse(&r.status)
                .ok_or_else(|| corrupt(id, format!("status `{}`", r.status)))?,
            node: r.node,
            exit_code: r.exit_code.and_then(|c| i32::try_from(c).ok()),
            result: r.result.as_deref().map(json).transpose()?,
            error: r.error,
            output_bytes: r.output_bytes,
            output_truncated: r.output_truncated,
            created_at: Timestamp(r.created_at),
            started_at: r.started_at.map(Timestamp),
            finished_at: r.finished_at.map(Timestamp),
            approval_rule: r
                .approval_rule
                .as_deref()
                .map(|t| serde_json::from_str(t).map_err(|e| corrupt(id, e)))
                .transpose()?,
            approval_expires_at: r.approval_expires_at.map(Timestamp),
            parent: r.parent_id.map(ExecutionId),
            step: r.step,
        })
    }
}

pub(crate) fn to_executions(rows: Vec<ExecutionRow>) -> Result<Vec<Execution>, StoreError> {
    rows.into_iter().map(Execution::try_from).collect()
}

#[derive(sqlx::FromRow)]
pub(crate) struct TokenRow {
    id: i64,
    principal: String,
    scopes: String,
    description: String,
    created_by: String,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    last_used_at: Option<i64>,
}

impl TryFrom<TokenRow> for TokenRecord {
    type Error = StoreError;

    fn try_from(r: TokenRow) -> Result<Self, StoreError> {
        let bad = |what: String| StoreError::Corrupt(format!("token {}: {what}", r.id));
        Ok(TokenRecord {
            id: r.id,
            principal: Principal::new(r.principal.clone()).map_err(|e| bad(e.to_string()))?,
            scopes: Scope::parse_list(&r.scopes).map_err(bad)?,
            description: r.description.clone(),
            created_by: Principal::new(r.created_by.clone()).map_err(|e| bad(e.to_string()))?,
            created_at: Timestamp(r.created_at),
            expires_at: r.expires_at.map(Timestamp),
            revoked_at: r.revoked_at.map(Timestamp),
            last_used_at: r.last_used_at.map(Timestamp),
        })
    }
}

/// The columns of an [`AlertRow`], as a literal for `concat!`.
macro_rules! alert_columns {
    () => {
        "fingerprint, labels, annotations, status, starts_at, ends_at, updated_at, source, \
         generator_url, dedup_key"
    };
}

pub(crate) type AlertRow = (
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    i64,
    String,
    Option<String>,
    Option<String>,
);

/// The columns of a [`DeliveryRow`], as a literal for `concat!`.
macro_rules! delivery_columns {
    () => {
        "id, group_key, receiver, integration, status, notification, attempts, next_attempt_at, \
         last_error, created_at, delivered_at"
    };
}

pub(crate) type DeliveryRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    i64,
    Option<i64>,
);

pub(crate) fn malformed(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

pub(crate) fn to_json<T: serde::Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| malformed(what, e))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    what: &str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| malformed(what, e))
}

pub(crate) fn alert(r: AlertRow) -> Result<StoredAlert, StoreError> {
    Ok(StoredAlert {
        fingerprint: r.0,
        labels: from_json("alert labels", &r.1)?,
        annotations: from_json("alert annotations", &r.2)?,
        firing: r.3 == "firing",
        starts_at: Timestamp(r.4),
        ends_at: r.5.map(Timestamp),
        updated_at: Timestamp(r.6),
        source: r.7,
        generator_url: r.8,
        dedup_key: r.9,
    })
}

pub(crate) fn delivery(r: DeliveryRow) -> Result<StoredDelivery, StoreError> {
    Ok(StoredDelivery {
        id: r.0,
        group_key: r.1,
        receiver: r.2,
        integration: r.3,
        status: DeliveryStatus::parse(&r.4)?,
        notification: from_json("delivery", &r.5)?,
        attempts: u32::try_from(r.6).unwrap_or(0),
        next_attempt_at: Timestamp(r.7),
        last_error: r.8,
        created_at: Timestamp(r.9),
        delivered_at: r.10.map(Timestamp),
    })
}

pub(crate) type TickRow = (
    String,
    i64,
    String,
    i64,
    String,
    Option<i64>,
    Option<String>,
);

pub(crate) fn tick_of(r: TickRow) -> StoredTick {
    StoredTick {
        schedule: r.0,
        tick: Timestamp(r.1),
        node: r.2,
        claimed_at: Timestamp(r.3),
        outcome: r.4,
        execution: r.5.map(ExecutionId),
        reason: r.6,
    }
}

pub(crate) type LeaseRow = (String, String, i64, i64, i64);

pub(crate) fn lease_of(r: LeaseRow) -> Lease {
    Lease {
        name: r.0,
        holder: r.1,
        token: r.2,
        acquired_at: Timestamp(r.3),
        expires_at: Timestamp(r.4),
    }
}

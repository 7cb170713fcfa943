//! `GET /audit` (records, in chain order) and `GET /audit/verify`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use switchboard_core::Timestamp;
use switchboard_core::audit::AuditRecord;
use switchboard_core::token::Scope;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::caller::Caller;
use crate::error::{ApiError, ErrorBody};

const MAX_PAGE: u32 = 5000;

/// Which audit records to read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only records after this sequence number (the `next_after` of the previous page).
    after: Option<i64>,
    /// Only records at or after this RFC 3339 time.
    since: Option<String>,
    /// Page size, 1 to 5000 (default 1000).
    limit: Option<u32>,
}

/// A page of audit records.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Records in chain order: `seq`, `ts`, `actor`, `origin`, `kind`,
    /// `subject`, `outcome`, `detail`, `prev_hash`, `hash`.
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<AuditRecord>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}

/// Reads the audit log in chain order, a page at a time.
#[utoipa::path(
    get, path = "/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody))
)]
pub async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    caller
        .require(&state.engine, Scope::Admin, "read the audit log")
        .await?;
    let Query(q) =
        query.map_err(|e| ApiError::bad_request(format!("invalid query: {}", e.body_text())))?;
    let limit = q.limit.unwrap_or(1000);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "`limit` must be between 1 and {MAX_PAGE}"
        )));
    }
    let since = q
        .since
        .map(|t| {
            Timestamp::parse_rfc3339(&t).ok_or_else(|| {
                ApiError::bad_request(format!("`since`: `{t}` is not an RFC 3339 time"))
            })
        })
        .transpose()?;
    let records = state
        .engine
        .audit_records(q.after.unwrap_or(0), since, limit)
        .await?;
    let next_after = (records.len() == limit as usize)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    Ok(Json(AuditPage {
        records,
        next_after,
    }))
}

/// The result of verifying the chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyDto {
    /// Whether every record verifies.
    pub intact: bool,
    /// Records verified (up to the break).
    pub records: i64,
    /// Hash of the last verified record.
    pub head: String,
    /// The first broken record and why.
    pub broken_at: Option<i64>,
    pub reason: Option<String>,
}

/// Verifies the whole audit chain and names the first broken record.
#[utoipa::path(get, path = "/audit/verify", tag = "audit", responses((status = 200, body = VerifyDto)))]
pub async fn verify_audit(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<VerifyDto>, ApiError> {
    caller
        .require(&state.engine, Scope::Admin, "verify the audit log")
        .await?;
    let v = state.engine.verify_audit().await?;
    Ok(Json(VerifyDto {
        intact: v.broken.is_none(),
        records: v.records,
        head: v.head,
        broken_at: v.broken.as_ref().map(|b| b.seq),
        reason: v.broken.map(|b| b.reason),
    }))
}

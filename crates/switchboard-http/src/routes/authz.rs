//! The auditor's questions: `GET /authz/who-can`, `GET /authz/explain` and
//! `GET /authz/policies`. Asking about an action needs the `read` scope and
//! `view` on that action; asking about a service-wide verb (`admin`,
//! `silence`) or listing the policies needs `admin`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use switchboard_core::Principal;
use switchboard_core::policy::{PolicyInfo, Verb, WhoCan, door_origin};
use switchboard_core::token::Scope;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::caller::Caller;
use crate::dto::field_error;
use crate::error::{ApiError, ErrorBody};

/// What is asked about.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthzQuery {
    /// `view`, `run`, `approve`, `cancel`, `silence` or `admin`.
    verb: String,
    /// The action (not for `silence` and `admin`).
    action: Option<String>,
    /// The targeted host.
    target: Option<String>,
    /// One door (`api`, `cli`, `web`, `chat`, `chat:slack:#ops`, `schedule`,
    /// `alert`, `webhook`); who-can considers every door when absent, explain
    /// uses `api`.
    door: Option<String>,
    /// Whose decision to explain (explain only; default: the caller).
    principal: Option<String>,
}

/// Who may, by principal and by group, with the doors and policies.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhoCanDto {
    pub verb: String,
    pub action: Option<String>,
    pub target: Option<String>,
    /// The doors considered.
    pub doors: Vec<String>,
    /// Known principals who may: `principal`, `kind`, `doors`, `policies`
    /// (each `id`, `location`, `effect`).
    #[schema(value_type = Vec<Object>)]
    pub principals: Vec<switchboard_core::policy::Grant>,
    /// Groups whose membership alone is enough: `group`, `doors`, `policies`.
    #[schema(value_type = Vec<Object>)]
    pub groups: Vec<switchboard_core::policy::GroupGrant>,
    /// Present when any signed-in principal may.
    #[schema(value_type = Option<Object>)]
    pub everyone: Option<switchboard_core::policy::GroupGrant>,
    /// How many known principals were examined.
    pub examined: usize,
}

impl From<WhoCan> for WhoCanDto {
    fn from(w: WhoCan) -> Self {
        Self {
            verb: w.verb.to_string(),
            action: w.action,
            target: w.target,
            doors: w.doors,
            principals: w.principals,
            groups: w.groups,
            everyone: w.everyone,
            examined: w.examined,
        }
    }
}

/// One principal's decision and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExplainDto {
    pub principal: String,
    /// `user` or `service_account`.
    pub kind: String,
    /// Every group, nested ones expanded.
    pub groups: Vec<String>,
    pub verb: String,
    pub action: Option<String>,
    pub target: Option<String>,
    pub door: String,
    pub allowed: bool,
    /// One sentence: which policies permitted or forbade, or that none permits.
    pub reason: String,
    /// The deciding policies: `id`, `location`, `effect`.
    #[schema(value_type = Vec<Object>)]
    pub policies: Vec<switchboard_core::policy::PolicyRef>,
}

/// A policy in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyDto {
    pub id: String,
    /// `policies/sre.cedar:3`, or `built in`.
    pub location: String,
    /// `permit` or `forbid`.
    pub effect: String,
    pub description: Option<String>,
    /// The policy as written.
    pub text: String,
}

impl From<&PolicyInfo> for PolicyDto {
    fn from(p: &PolicyInfo) -> Self {
        Self {
            id: p.id.clone(),
            location: p.location.clone(),
            effect: match p.effect {
                switchboard_core::policy::Effect::Permit => "permit",
                switchboard_core::policy::Effect::Forbid => "forbid",
            }
            .to_owned(),
            description: p.description.clone(),
            text: p.text.clone(),
        }
    }
}

/// Checks the query and that the caller may ask it; returns the verb.
async fn may_ask(
    state: &AppState,
    caller: &Caller,
    query: Result<Query<AuthzQuery>, QueryRejection>,
) -> Result<(Verb, AuthzQuery), ApiError> {
    let Query(q) =
        query.map_err(|e| ApiError::bad_request(format!("invalid query: {}", e.body_text())))?;
    may_ask_this(state, caller, q).await
}

/// [`may_ask`] for a query already read.
async fn may_ask_this(
    state: &AppState,
    caller: &Caller,
    q: AuthzQuery,
) -> Result<(Verb, AuthzQuery), ApiError> {
    caller
        .require(&state.engine, Scope::Read, "ask who may do what")
        .await?;
    let verb: Verb = q.verb.parse().map_err(|e| field_error("verb", e))?;
    if let Some(door) = &q.door {
        door_origin(door).map_err(|e| field_error("door", e))?;
    }
    match (&q.action, verb.is_service_wide()) {
        (_, true) => {
            caller
                .require(&state.engine, Scope::Admin, "ask about service-wide verbs")
                .await?;
        }
        (Some(action), false) => {
            state
                .engine
                .visible_action(caller.identity(), &caller.origin, action)
                .await?;
        }
        (None, false) => {
            return Err(field_error(
                "action",
                format!("`{verb}` is about an action: name one"),
            ));
        }
    }
    Ok((verb, q))
}

/// Every principal (configuration, directory, the built-in admin) and group
/// that may do something, with the doors and the policies that let them.
#[utoipa::path(
    get, path = "/authz/who-can", tag = "authorization", params(AuthzQuery),
    responses((status = 200, body = WhoCanDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub async fn who_can(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AuthzQuery>, QueryRejection>,
) -> Result<Json<WhoCanDto>, ApiError> {
    let Query(q) =
        query.map_err(|e| ApiError::bad_request(format!("invalid query: {}", e.body_text())))?;
    Ok(Json(who_can_answer(&state, &caller, q).await?.into()))
}

/// Who may do what `q` asks, if `caller` may ask it (the web UI's view
/// asks through here too).
pub(crate) async fn who_can_answer(
    state: &AppState,
    caller: &Caller,
    q: AuthzQuery,
) -> Result<WhoCan, ApiError> {
    let (verb, q) = may_ask_this(state, caller, q).await?;
    Ok(state
        .engine
        .who_can(
            verb,
            q.action.as_deref(),
            q.target.as_deref(),
            q.door.as_deref(),
        )
        .await?)
}

/// One principal's decision, and the policies behind it.
#[utoipa::path(
    get, path = "/authz/explain", tag = "authorization", params(AuthzQuery),
    responses((status = 200, body = ExplainDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub async fn explain(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AuthzQuery>, QueryRejection>,
) -> Result<Json<ExplainDto>, ApiError> {
    let (verb, q) = may_ask(&state, &caller, query).await?;
    let principal = match &q.principal {
        Some(p) => Principal::new(p).map_err(|e| field_error("principal", e.to_string()))?,
        None => caller.principal().clone(),
    };
    let door = q.door.clone().unwrap_or_else(|| "api".to_owned());
    let origin = door_origin(&door).map_err(|e| field_error("door", e))?;
    let (who, decision) = state
        .engine
        .explain(
            &principal,
            verb,
            q.action.as_deref(),
            q.target.as_deref(),
            &origin,
        )
        .await?;
    Ok(Json(ExplainDto {
        principal: who.principal.to_string(),
        kind: match who.kind {
            switchboard_core::directory::PrincipalKind::User => "user",
            switchboard_core::directory::PrincipalKind::ServiceAccount => "service_account",
        }
        .to_owned(),
        groups: who.groups.into_iter().collect(),
        verb: verb.to_string(),
        action: q.action,
        target: q.target,
        door,
        allowed: decision.allowed,
        reason: decision.reason,
        policies: decision.policies,
    }))
}

/// Every policy in force, the built-in one first.
#[utoipa::path(
    get, path = "/authz/policies", tag = "authorization",
    responses((status = 200, body = Vec<PolicyDto>), (status = 403, body = ErrorBody))
)]
pub async fn policies(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<PolicyDto>>, ApiError> {
    caller
        .require(&state.engine, Scope::Admin, "list the policies")
        .await?;
    let catalog = state.engine.catalog();
    Ok(Json(
        catalog.policies.policies().map(PolicyDto::from).collect(),
    ))
}

//! Switchboard's HTTP door: the REST API under `/api/v1` (JSON, described by
//! an OpenAPI document generated from the same handler annotations that
//! build the router), server-sent events for live output, and the operating
//! endpoints `/healthz`, `/readyz` and `/metrics`.
//!
//! Handlers translate HTTP to engine calls and back; they hold no automation
//! logic. Every error leaves through [`error::ApiError`], the one mapping from
//! failures to statuses, which never shows internals to the client.

mod caller;
mod dto;
mod error;
mod routes;
mod web;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use switchboard_engine::Engine;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::ApiError;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The configured chat adapters, by platform name.
pub type ChatAdapters = BTreeMap<&'static str, Arc<dyn switchboard_connectors::chat::ChatAdapter>>;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    chat: Arc<ChatAdapters>,
    /// The ChatOps-RPC door, when `[chatops_rpc]` is configured.
    chatops_rpc: Option<Arc<switchboard_connectors::chat::chatops_rpc::ChatopsRpcConfig>>,
    openapi_json: Arc<String>,
    /// The web UI's session and CSRF keys.
    web: web::session::WebKeys,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard API",
        description = "Run, watch and cancel automation; every front door of Switchboard uses these calls.",
        license(name = "Apache-2.0")
    ),
    tags(
        (name = "actions", description = "The catalog of actions"),
        (name = "executions", description = "Runs of actions"),
        (name = "catalog", description = "The catalog itself"),
        (name = "hosts", description = "The inventory and target selectors"),
        (name = "audit", description = "The tamper-evident audit log"),
        (name = "tokens", description = "API tokens"),
        (name = "workflows", description = "Follow and steer workflows: their steps, answers, pause, resume, re-run"),
        (name = "chat", description = "The chat console and linked chat accounts"),
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "triggers", description = "Cron schedules and signed inbound webhooks"),
    )
)]
struct ApiDoc;

/// The `/api/v1` routes; all of them need a credential.
fn v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(routes::actions::list_actions))
        .routes(routes!(routes::actions::get_action))
        .routes(routes!(
            routes::executions::list_executions,
            routes::executions::submit
        ))
        .routes(routes!(routes::executions::get_execution))
        .routes(routes!(routes::executions::get_output))
        .routes(routes!(routes::executions::get_artifact))
        .routes(routes!(routes::executions::cancel))
        .routes(routes!(routes::executions::approve))
        .routes(routes!(routes::executions::reject))
        .routes(routes!(routes::executions::approval_queue))
        .routes(routes!(routes::workflows::steps))
        .routes(routes!(routes::workflows::answer))
        .routes(routes!(routes::workflows::pause))
        .routes(routes!(routes::workflows::resume))
        .routes(routes!(routes::workflows::rerun))
        .routes(routes!(routes::alerts::receive, routes::alerts::list))
        .routes(routes!(routes::alerts::from_alertmanager))
        .routes(routes!(routes::alerts::detail))
        .routes(routes!(routes::alerts::groups))
        .routes(routes!(routes::alerts::ack))
        .routes(routes!(routes::alerts::deliveries))
        .routes(routes!(routes::silences::list, routes::silences::create))
        .routes(routes!(routes::silences::expire))
        .routes(routes!(routes::hosts::list_hosts))
        .routes(routes!(routes::hosts::hosts_attention))
        .routes(routes!(routes::catalog::get_catalog))
        .routes(routes!(routes::catalog::reload))
        .routes(routes!(routes::audit::list_audit))
        .routes(routes!(routes::audit::verify_audit))
        .routes(routes!(routes::report::report))
        .routes(routes!(routes::audit::push_offline))
        .routes(routes!(
            routes::tokens::list_tokens,
            routes::tokens::create_token
        ))
        .routes(routes!(routes::tokens::revoke_token))
        .routes(routes!(routes::tokens::whoami))
        .routes(routes!(routes::authz::who_can))
        .routes(routes!(routes::authz::explain))
        .routes(routes!(routes::authz::policies))
        .routes(routes!(routes::chat::console))
        .routes(routes!(
            routes::chat::list_links,
            routes::chat::confirm_link
        ))
        .routes(routes!(routes::chat::unlink))
        .routes(routes!(routes::schedules::list))
        .routes(routes!(routes::ops::openapi_json))
}

/// The API under `/api/v1` plus the open operating endpoints, and the
/// inbound webhooks, which a signature authenticates instead of a token.
fn assemble(v1: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", v1)
        .routes(routes!(routes::hooks::receive))
        .routes(routes!(routes::ops::healthz))
        .routes(routes!(routes::ops::readyz))
        .routes(routes!(routes::ops::metrics))
}

/// The OpenAPI document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    assemble(v1()).into_openapi()
}

/// The whole HTTP application, with the chat platforms' inbound routes
/// for `chat`. Fails only when the system has no randomness for the web
/// UI's keys.
pub fn router(
    engine: Engine,
    chat: ChatAdapters,
    chatops_rpc: Option<switchboard_connectors::chat::chatops_rpc::ChatopsRpcConfig>,
) -> Result<Router, String> {
    let secure = engine
        .public_url()
        .is_some_and(|u| u.starts_with("https://"));
    let state = AppState {
        engine,
        chat: Arc::new(chat),
        chatops_rpc: chatops_rpc.map(Arc::new),
        openapi_json: Arc::new(String::new()),
        web: web::session::WebKeys::generate(secure)
            .map_err(|e| format!("cannot make the web UI's keys: {e}"))?,
    };
    let guarded = v1().route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        caller::authenticate,
    ));
    let (router, doc) = assemble(guarded).split_for_parts();
    let state = AppState {
        openapi_json: Arc::new(doc.to_pretty_json().unwrap_or_else(|_| "{}".to_owned())),
        ..state
    };
    Ok(router
        .route(
            "/",
            axum::routing::get(|| async { axum::response::Redirect::to("/ui/") }),
        )
        .merge(web::router())
        .route(
            "/chat/{platform}/{endpoint}",
            axum::routing::post(routes::chat::platform_hook),
        )
        .route(
            "/_chatops",
            axum::routing::get(routes::chatops_rpc::listing),
        )
        .route(
            "/_chatops/{method}",
            axum::routing::post(routes::chatops_rpc::invoke),
        )
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(TraceLayer::new_for_http())
        .with_state(state))
}

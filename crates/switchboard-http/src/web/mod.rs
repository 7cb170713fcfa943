//! The web UI: pages rendered by the daemon from minijinja templates
//! compiled into the binary, a style sheet, and a small script that follows
//! an execution's output live (server-sent events from the API, which takes
//! the session cookie for reads). Every page calls the same engine methods
//! as the API, as the signed-in user from the `web` door, so the same
//! policies, approvals and audit apply; a page shows only what its user may
//! view. No build step and no asset from the internet.
//!
//! This module holds the routes, the templates and what every page shares
//! (drawing a page, a message page, refusals, the CSRF check's page); the
//! pages are one file per family: `sign_in` (a token, or single sign-on
//! through the OIDC provider; sign out), `catalog` (the actions, an action
//! and its run form), `executions` (the list, one execution, the approvals
//! queue), `alerts` (attention, groups, alerts, acknowledgements, silences),
//! `console` (the chat console), `audit` (the audit log, who can do what).
//!
//! Not here: sessions and CSRF (`session`), the JSON API (`routes`).

mod alerts;
mod audit;
mod catalog;
mod console;
mod executions;
pub mod session;
mod sign_in;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::{Key, PrivateCookieJar};
use minijinja::{Environment, Value, context};
use serde::Deserialize;
use switchboard_core::params::{ParamSpec, ParamType};
use switchboard_core::{Action, ExecutionId};
use switchboard_engine::{EngineError, SubmitRequest};

use self::session::{WebUser, sign_in_csrf, sign_in_csrf_ok, web_origin};
use crate::AppState;

const TEMPLATES: [(&str, &str); 12] = [
    ("base.html", include_str!("templates/base.html")),
    ("sign_in.html", include_str!("templates/sign_in.html")),
    ("actions.html", include_str!("templates/actions.html")),
    ("action.html", include_str!("templates/action.html")),
    ("execution.html", include_str!("templates/execution.html")),
    ("message.html", include_str!("templates/message.html")),
    ("executions.html", include_str!("templates/executions.html")),
    ("approvals.html", include_str!("templates/approvals.html")),
    ("alerts.html", include_str!("templates/alerts.html")),
    ("console.html", include_str!("templates/console.html")),
    ("audit.html", include_str!("templates/audit.html")),
    ("who_can.html", include_str!("templates/who_can.html")),
];
const STYLE: &str = include_str!("static/app.css");
const LIVE: &str = include_str!("static/live.js");
const CONSOLE: &str = include_str!("static/console.js");

/// The pages' routes.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/actions") }))
        .route(
            "/ui/sign-in",
            get(sign_in::sign_in_page).post(sign_in::sign_in),
        )
        .route("/ui/sign-out", post(sign_in::sign_out))
        .route("/ui/sign-in/oidc", get(sign_in::oidc_start))
        .route("/ui/oidc/callback", get(sign_in::oidc_callback))
        .route("/ui/actions", get(catalog::actions))
        .route(
            "/ui/actions/{name}",
            get(catalog::action).post(catalog::run),
        )
        .route("/ui/executions", get(executions::executions))
        .route("/ui/executions/{id}", get(executions::execution))
        .route("/ui/executions/{id}/cancel", post(executions::cancel))
        .route("/ui/executions/{id}/workflow", post(executions::workflow))
        .route("/ui/approvals", get(executions::approvals))
        .route("/ui/executions/{id}/answer", post(executions::answer))
        .route("/ui/alerts", get(alerts::alerts))
        .route("/ui/alerts/ack", post(alerts::ack))
        .route("/ui/silences", post(alerts::silence))
        .route("/ui/silences/{id}/expire", post(alerts::unsilence))
        .route(
            "/ui/static/app.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE) }),
        )
        .route(
            "/ui/console",
            get(console::console_page).post(console::console_line),
        )
        .route("/ui/audit", get(audit::audit))
        .route("/ui/who-can", get(audit::who_can))
        .route(
            "/ui/static/console.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    CONSOLE,
                )
            }),
        )
        .route(
            "/ui/static/live.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    LIVE,
                )
            }),
        )
}

fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            // The templates are part of the binary; a broken one is caught
            // by the tests that render every page.
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "a web template does not compile");
            }
        }
        env
    })
}

/// A page, or a plain error when a template fails (a defect, logged).
fn page(status: StatusCode, name: &str, ctx: Value) -> Response {
    let rendered = templates().get_template(name).and_then(|t| t.render(ctx));
    match rendered {
        Ok(html) => (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(e) => {
            tracing::error!(template = name, error = %e, "a web page could not be rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be drawn",
            )
                .into_response()
        }
    }
}

/// A page saying what went wrong, in the layout.
fn message(user: Option<&WebUser>, status: StatusCode, title: &str, text: &str) -> Response {
    page(
        status,
        "message.html",
        context! { user => user.map(user_view), title, text },
    )
}

fn user_view(user: &WebUser) -> Value {
    context! {
        name => user.caller.principal().to_string(),
        csrf => user.csrf.clone(),
    }
}

/// The page of an engine refusal.
fn refusal(user: &WebUser, e: EngineError) -> Response {
    let (status, title) = match &e {
        EngineError::Forbidden(_) => (StatusCode::FORBIDDEN, "Not allowed"),
        EngineError::UnknownAction { .. } | EngineError::NotFound(_) => {
            (StatusCode::NOT_FOUND, "Not found")
        }
        _ => (StatusCode::BAD_REQUEST, "Refused"),
    };
    message(Some(user), status, title, &e.to_string())
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

fn forged(user: &WebUser) -> Response {
    message(
        Some(user),
        StatusCode::FORBIDDEN,
        "Form refused",
        "The form did not come from this session (its CSRF token does not match). Reload the page and try again.",
    )
}

/// An API refusal as one line: each field's problem, else its message.
fn api_error_text(e: crate::error::ApiError) -> String {
    let fields: Vec<String> = e
        .details
        .iter()
        .map(|d| format!("{}: {}", d.field, d.message))
        .collect();
    if fields.is_empty() {
        e.message
    } else {
        fields.join("; ")
    }
}

/// The fields of a filter form that were filled in, trimmed: an empty
/// field means "any".
fn filled(form: BTreeMap<String, String>) -> BTreeMap<String, String> {
    form.into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k, v.trim().to_owned()))
        .collect()
}

fn no_such_execution(user: &WebUser) -> Response {
    message(
        Some(user),
        StatusCode::NOT_FOUND,
        "Not found",
        "No such execution.",
    )
}

/// An execution's parameters as text, by name (secrets are stored masked).
fn param_pairs(e: &switchboard_core::Execution) -> Vec<(String, String)> {
    e.params
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            )
        })
        .collect()
}

fn parse_id(id: &str) -> Option<ExecutionId> {
    id.parse::<i64>().ok().map(ExecutionId)
}

//! The web UI: pages rendered by the daemon from minijinja templates
//! compiled into the binary, a style sheet, and a small script that follows
//! an execution's output live (server-sent events from the API, which takes
//! the session cookie for reads). Every page calls the same engine methods
//! as the API, as the signed-in user from the `web` door, so the same
//! policies, approvals and audit apply; a page shows only what its user may
//! view. No build step and no asset from the internet.
//!
//! Pages: sign in (an API token) and out; the catalog (grouped, searchable);
//! an action with its run form generated from its parameters (the server's
//! validation errors shown beside their fields); the executions (filters,
//! pages by id so that a million rows stay fast); an execution (status,
//! parameters, output live, result, files, cancel, run again); the
//! approvals the user may give (approve or reject with a reason); alerts
//! (the hosts that need attention, groups, firing alerts, acknowledgements
//! and silences); the chat console (the chat grammar, replies streamed);
//! the audit log with its chain's verification (admins); "who can do what"
//! (every principal and group that may, through which doors and policies).
//!
//! Not here: sessions and CSRF (`session`), the JSON API (`routes`).

pub mod session;

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
        .route("/ui/sign-in", get(sign_in_page).post(sign_in))
        .route("/ui/sign-out", post(sign_out))
        .route("/ui/sign-in/oidc", get(oidc_start))
        .route("/ui/oidc/callback", get(oidc_callback))
        .route("/ui/actions", get(actions))
        .route("/ui/actions/{name}", get(action).post(run))
        .route("/ui/executions", get(executions))
        .route("/ui/executions/{id}", get(execution))
        .route("/ui/executions/{id}/cancel", post(cancel))
        .route("/ui/approvals", get(approvals))
        .route("/ui/executions/{id}/answer", post(answer))
        .route("/ui/alerts", get(alerts))
        .route("/ui/alerts/ack", post(ack))
        .route("/ui/silences", post(silence))
        .route("/ui/silences/{id}/expire", post(unsilence))
        .route(
            "/ui/static/app.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE) }),
        )
        .route("/ui/console", get(console_page).post(console_line))
        .route("/ui/audit", get(audit))
        .route("/ui/who-can", get(who_can))
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
struct NextQuery {
    next: Option<String>,
}

/// Where to go after signing in: a page of the UI, never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/ui/") && !n.starts_with("//") && !n.contains("\\") => {
            n.to_owned()
        }
        _ => "/ui/actions".to_owned(),
    }
}

async fn sign_in_page(
    State(state): State<AppState>,
    jar: PrivateCookieJar<Key>,
    Query(q): Query<NextQuery>,
) -> Response {
    let (jar, csrf) = sign_in_csrf(&state.web, jar);
    let next = safe_next(q.next.as_deref());
    let oidc = state.engine.oidc_login_enabled();
    let next_query = serde_urlencoded::to_string([("next", &next)]).unwrap_or_default();
    (
        jar,
        page(
            StatusCode::OK,
            "sign_in.html",
            context! { csrf, next, next_query, oidc, error => Value::from(()) },
        ),
    )
        .into_response()
}

/// Where the provider sends the browser back: `[chat] public_url`'s
/// `/ui/oidc/callback`, else this request's host's.
fn oidc_redirect_uri(state: &AppState, headers: &axum::http::HeaderMap) -> String {
    match state.engine.public_url() {
        Some(base) => format!("{}/ui/oidc/callback", base.trim_end_matches('/')),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1");
            format!("http://{host}/ui/oidc/callback")
        }
    }
}

/// Starts signing in through the OIDC provider: a state, a PKCE verifier
/// and a nonce kept in a private cookie, and the browser sent to the
/// provider.
async fn oidc_start(
    State(state): State<AppState>,
    jar: PrivateCookieJar<Key>,
    headers: axum::http::HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    let redirect_uri = oidc_redirect_uri(&state, &headers);
    let Some(login) = session::OidcLoginStart::new(safe_next(q.next.as_deref())) else {
        return message(
            None,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Cannot sign in",
            "The system has no randomness.",
        );
    };
    let Some(url) = state.engine.oidc_authorization_url(
        &redirect_uri,
        &login.state,
        &login.challenge(),
        &login.nonce,
    ) else {
        return message(
            None,
            StatusCode::NOT_FOUND,
            "No single sign-on",
            "Sign-in through an OpenID Connect provider is not configured; sign in with a token.",
        );
    };
    (login.keep(&state.web, jar), Redirect::to(&url)).into_response()
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The provider's answer: the code is exchanged for an ID token (its state
/// and nonce checked), which signs the session in.
async fn oidc_callback(
    State(state): State<AppState>,
    jar: PrivateCookieJar<Key>,
    headers: axum::http::HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let refused = |text: String| message(None, StatusCode::UNAUTHORIZED, "Sign-in refused", &text);
    if let Some(error) = q.error {
        return refused(format!(
            "The provider said: {error}{}",
            q.error_description
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        ));
    }
    // One answer per sign-in: whatever comes back, the attempt is over.
    let (jar, started) = session::OidcLoginStart::take(jar);
    let problem = match (&started, &q.code, &q.state) {
        (None, _, _) => Some("This sign-in was not started here, or took too long. Try again."),
        (_, None, _) | (_, _, None) => Some("The provider's answer has no code."),
        (Some(s), _, Some(sent)) if !s.state_is(sent) => {
            Some("The answer is not for this sign-in (its state does not match).")
        }
        _ => None,
    };
    let (Some(started), Some(code), None) = (started, q.code, problem) else {
        let text = problem.unwrap_or("The sign-in could not go on.");
        return (jar, refused(text.to_owned())).into_response();
    };
    let redirect_uri = oidc_redirect_uri(&state, &headers);
    match state
        .engine
        .oidc_sign_in(&code, &redirect_uri, &started.verifier, &started.nonce)
        .await
    {
        // Not a redirect: the browser came from the provider's site, and a
        // redirect would not carry the new (SameSite=Strict) cookie; a page
        // of ours that moves on does.
        Ok(id_token) => (
            session::start(&state.web, jar, &id_token),
            page(
                StatusCode::OK,
                "message.html",
                context! {
                    title => "Signed in",
                    text => "Taking you on…",
                    next => started.next,
                },
            ),
        )
            .into_response(),
        Err(e) => (jar, refused(e.to_string())).into_response(),
    }
}

#[derive(Deserialize)]
struct SignInForm {
    token: String,
    csrf: String,
    next: Option<String>,
}

async fn sign_in(
    State(state): State<AppState>,
    jar: PrivateCookieJar<Key>,
    Form(form): Form<SignInForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    if !sign_in_csrf_ok(&jar, &form.csrf) {
        let (jar, csrf) = sign_in_csrf(&state.web, jar);
        let error = "The form had expired. Sign in again.";
        return (
            jar,
            page(
                StatusCode::FORBIDDEN,
                "sign_in.html",
                context! { csrf, next, error },
            ),
        )
            .into_response();
    }
    let token = form.token.trim();
    match state.engine.authenticate(token, &web_origin()).await {
        Ok(_) => (session::start(&state.web, jar, token), Redirect::to(&next)).into_response(),
        Err(e) => {
            let (jar, csrf) = sign_in_csrf(&state.web, jar);
            let error = match e {
                EngineError::Unauthenticated(m) => m,
                other => other.to_string(),
            };
            (
                jar,
                page(
                    StatusCode::UNAUTHORIZED,
                    "sign_in.html",
                    context! { csrf, next, error },
                ),
            )
                .into_response()
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn sign_out(
    user: WebUser,
    jar: PrivateCookieJar<Key>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !user.csrf_ok(&form.csrf) {
        return forged(&user);
    }
    (session::end(jar), Redirect::to("/ui/sign-in")).into_response()
}

fn forged(user: &WebUser) -> Response {
    message(
        Some(user),
        StatusCode::FORBIDDEN,
        "Form refused",
        "The form did not come from this session (its CSRF token does not match). Reload the page and try again.",
    )
}

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
}

/// The catalog the user may see, grouped by the first part of the names,
/// narrowed by a search of names, descriptions and tags.
async fn actions(
    State(state): State<AppState>,
    user: WebUser,
    Query(search): Query<SearchQuery>,
) -> Response {
    let q = search.q.unwrap_or_default().trim().to_lowercase();
    let mut groups: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let visible = state
        .engine
        .visible_actions(user.caller.identity(), &user.caller.origin);
    let total = visible.len();
    for a in visible {
        let name = a.name.to_string();
        let hay = format!("{name} {} {}", a.description, a.tags.join(" ")).to_lowercase();
        if !q.is_empty() && !q.split_whitespace().all(|w| hay.contains(w)) {
            continue;
        }
        let group = name.split('.').next().unwrap_or(&name).to_owned();
        groups.entry(group).or_default().push(context! {
            name,
            description => a.description.clone(),
            tags => a.tags.clone(),
            approval => a.approval.is_some(),
        });
    }
    let shown: usize = groups.values().map(Vec::len).sum();
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(name, actions)| context! { name, actions })
        .collect();
    page(
        StatusCode::OK,
        "actions.html",
        context! { user => user_view(&user), groups, q, shown, total },
    )
}

/// A bound as a form attribute: `1`, not `1.0`.
fn bound(b: f64) -> String {
    if b.fract() == 0.0 && b.abs() < 1e15 {
        format!("{b:.0}")
    } else {
        b.to_string()
    }
}

/// One parameter as the run form shows it. (The parameter's pattern is not
/// given to the browser: its regular expressions are not the server's, and
/// the server's message says what is wrong.)
fn field(spec: &ParamSpec, value: Option<&str>, error: Option<&String>) -> Value {
    let kind = match spec.ty {
        ParamType::Integer | ParamType::Number => "number",
        ParamType::Boolean => "checkbox",
        ParamType::Enum => "select",
        ParamType::Secret => "password",
        ParamType::List => "textarea",
        ParamType::String | ParamType::Duration | ParamType::Host => "text",
    };
    let default = spec.default.as_ref().map(|d| match d.to_json() {
        serde_json::Value::String(s) => s,
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    });
    // Secrets are never written back into a page.
    let value = if spec.ty == ParamType::Secret {
        String::new()
    } else {
        value
            .map(str::to_owned)
            .or(default.clone())
            .unwrap_or_default()
    };
    context! {
        name => spec.name.clone(),
        kind,
        ty => spec.ty.as_str(),
        required => spec.required,
        description => spec.description.clone(),
        choices => spec.choices.clone(),
        min => spec.min.map(bound),
        max => spec.max.map(bound),
        step => if spec.ty == ParamType::Integer { "1" } else { "any" },
        checked => value == "true",
        value,
        default,
        error => error.cloned(),
    }
}

fn action_page(
    user: &WebUser,
    action: &Action,
    values: &BTreeMap<String, String>,
    errors: &BTreeMap<String, String>,
    form_error: Option<String>,
    status: StatusCode,
) -> Response {
    let fields: Vec<Value> = action
        .params
        .iter()
        .map(|p| {
            field(
                p,
                values.get(&p.name).map(String::as_str),
                errors.get(&p.name),
            )
        })
        .collect();
    let aliases: Vec<String> = action
        .aliases
        .iter()
        .map(|a| a.format.text.clone())
        .collect();
    page(
        status,
        "action.html",
        context! {
            user => user_view(user),
            name => action.name.to_string(),
            description => action.description.clone(),
            tags => action.tags.clone(),
            runner => action.runner.as_str(),
            approval => action.approval.as_ref().map(switchboard_core::catalog::ApprovalRule::approvers_text),
            aliases,
            fields,
            form_error,
        },
    )
}

async fn action(
    State(state): State<AppState>,
    user: WebUser,
    Path(name): Path<String>,
    Query(prefill): Query<BTreeMap<String, String>>,
) -> Response {
    match state
        .engine
        .visible_action(user.caller.identity(), &user.caller.origin, &name)
        .await
    {
        Ok(a) => action_page(&user, &a, &prefill, &BTreeMap::new(), None, StatusCode::OK),
        Err(e) => refusal(&user, e),
    }
}

/// The form's text values as parameters of `action`'s types: numbers as
/// numbers, a checkbox as a boolean, a list one item a line; empty fields
/// left out (so defaults apply and missing required ones are named).
fn params_of(action: &Action, form: &BTreeMap<String, String>) -> switchboard_core::RawParams {
    let mut params = switchboard_core::RawParams::new();
    for spec in &action.params {
        let text = form.get(&spec.name).map(|v| v.trim()).unwrap_or("");
        let value = match spec.ty {
            ParamType::Boolean => serde_json::Value::Bool(text == "true"),
            _ if text.is_empty() => continue,
            ParamType::Integer => text
                .parse::<i64>()
                .map_or_else(|_| text.into(), serde_json::Value::from),
            ParamType::Number => text
                .parse::<f64>()
                .map_or_else(|_| text.into(), serde_json::Value::from),
            ParamType::List => text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(serde_json::Value::from)
                .collect(),
            _ => text.into(),
        };
        params.insert(spec.name.clone(), value);
    }
    params
}

async fn run(
    State(state): State<AppState>,
    user: WebUser,
    Path(name): Path<String>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !form.get("csrf").is_some_and(|c| user.csrf_ok(c)) {
        return forged(&user);
    }
    let action = match state
        .engine
        .visible_action(user.caller.identity(), &user.caller.origin, &name)
        .await
    {
        Ok(a) => a,
        Err(e) => return refusal(&user, e),
    };
    let request = SubmitRequest {
        action: name,
        params: params_of(&action, &form),
        requester: user.caller.identity().clone(),
        origin: user.caller.origin.clone(),
    };
    match state.engine.submit(request).await {
        Ok(e) => Redirect::to(&format!("/ui/executions/{}", e.id)).into_response(),
        Err(EngineError::InvalidParams(problems)) => {
            let errors: BTreeMap<String, String> =
                problems.into_iter().map(|p| (p.param, p.message)).collect();
            action_page(
                &user,
                &action,
                &form,
                &errors,
                Some("Some values are not right; see the fields marked below.".to_owned()),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(e @ (EngineError::Forbidden(_) | EngineError::Invalid(_))) => action_page(
            &user,
            &action,
            &form,
            &BTreeMap::new(),
            Some(e.to_string()),
            StatusCode::FORBIDDEN,
        ),
        Err(e) => refusal(&user, e),
    }
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

async fn execution(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = parse_id(&id) else {
        return no_such_execution(&user);
    };
    let e = match state
        .engine
        .get_visible(user.caller.identity(), &user.caller.origin, id)
        .await
    {
        Ok(e) => e,
        Err(e) => return refusal(&user, e),
    };
    // The output so far; the page's script follows the rest live.
    let mut output = String::new();
    let mut last_seq = 0;
    if let Ok(chunks) = state.engine.store().output(id, 0, 5000).await {
        // One chunk a line, kept without its line end.
        for c in chunks {
            output.push_str(&c.text);
            output.push('\n');
            last_seq = c.seq;
        }
    }
    let files: Vec<Value> = state
        .engine
        .artifacts(id)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|f| {
            context! {
                url => format!("/api/v1/executions/{id}/artifacts/{}", f.name),
                image => f.media_type.starts_with("image/"),
                name => f.name,
            }
        })
        .collect();
    let duration = match (e.started_at, e.finished_at) {
        (Some(s), Some(f)) => Some(switchboard_core::chat::short_duration(
            std::time::Duration::from_micros(u64::try_from(f.micros() - s.micros()).unwrap_or(0)),
        )),
        _ => None,
    };
    let params = param_pairs(&e);
    let rerun = serde_urlencoded::to_string(&params).unwrap_or_default();
    page(
        StatusCode::OK,
        "execution.html",
        context! {
            user => user_view(&user),
            id => id.0,
            action => e.action.to_string(),
            status => e.status.as_str(),
            finished => e.status.is_terminal(),
            requester => e.requester.to_string(),
            origin => e.origin.to_string(),
            created_at => e.created_at.to_string(),
            started_at => e.started_at.map(|t| t.to_string()),
            finished_at => e.finished_at.map(|t| t.to_string()),
            duration,
            exit_code => e.exit_code,
            error => e.error.clone(),
            params,
            result => e.result.as_ref().and_then(|r| serde_json::to_string_pretty(r).ok()),
            output,
            last_seq,
            files,
            rerun,
        },
    )
}

async fn cancel(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !user.csrf_ok(&form.csrf) {
        return forged(&user);
    }
    let Some(id) = parse_id(&id) else {
        return no_such_execution(&user);
    };
    match state
        .engine
        .cancel(id, user.caller.identity(), &user.caller.origin)
        .await
    {
        Ok(_) => Redirect::to(&format!("/ui/executions/{id}")).into_response(),
        Err(e) => refusal(&user, e),
    }
}

/// One execution as a list shows it.
fn execution_row(e: &switchboard_core::Execution) -> Value {
    context! {
        id => e.id.0,
        action => e.action.to_string(),
        status => e.status.as_str(),
        requester => e.requester.to_string(),
        origin => e.origin.to_string(),
        created_at => e.created_at.to_string(),
    }
}

/// The executions the user may view, newest first, a page at a time, with
/// the API's filters (empty fields of the form mean "any").
async fn executions(
    State(state): State<AppState>,
    user: WebUser,
    Query(form): Query<BTreeMap<String, String>>,
) -> Response {
    let given = filled(form);
    let query = serde_urlencoded::to_string(&given)
        .ok()
        .and_then(|q| serde_urlencoded::from_str::<crate::routes::executions::ListQuery>(&q).ok());
    let filter = match query.map(crate::routes::executions::ListQuery::into_filter) {
        Some(Ok(f)) => f,
        Some(Err(e)) => {
            let text = api_error_text(e);
            return message(
                Some(&user),
                StatusCode::BAD_REQUEST,
                "Filters refused",
                &text,
            );
        }
        None => {
            return message(
                Some(&user),
                StatusCode::BAD_REQUEST,
                "Filters refused",
                "The filters are not ones this page knows.",
            );
        }
    };
    let limit = filter.limit as usize;
    let list = match state
        .engine
        .list_visible(user.caller.identity(), &user.caller.origin, filter)
        .await
    {
        Ok(l) => l,
        Err(e) => return refusal(&user, e),
    };
    let older = (list.len() == limit)
        .then(|| list.last().map(|e| e.id.0))
        .flatten()
        .map(|before| {
            let mut next = given.clone();
            next.insert("before".to_owned(), before.to_string());
            serde_urlencoded::to_string(&next).unwrap_or_default()
        });
    let rows: Vec<Value> = list.iter().map(execution_row).collect();
    page(
        StatusCode::OK,
        "executions.html",
        context! {
            user => user_view(&user),
            rows,
            older,
            statuses => switchboard_core::ExecutionStatus::ALL.map(switchboard_core::ExecutionStatus::as_str),
            f => given,
        },
    )
}

/// What the user may approve or reject now.
async fn approvals(State(state): State<AppState>, user: WebUser) -> Response {
    let waiting = match state
        .engine
        .approval_queue(user.caller.identity(), &user.caller.origin)
        .await
    {
        Ok(w) => w,
        Err(e) => return refusal(&user, e),
    };
    let rows: Vec<Value> = waiting
        .iter()
        .map(|e| {
            let params = param_pairs(e);
            context! {
                id => e.id.0,
                action => e.action.to_string(),
                requester => e.requester.to_string(),
                origin => e.origin.to_string(),
                created_at => e.created_at.to_string(),
                approvers => e.approval_rule.as_ref().map(switchboard_core::catalog::ApprovalRule::approvers_text),
                expires_at => e.approval_expires_at.map(|t| t.to_string()),
                params,
            }
        })
        .collect();
    page(
        StatusCode::OK,
        "approvals.html",
        context! { user => user_view(&user), rows },
    )
}

#[derive(Deserialize)]
struct AnswerForm {
    csrf: String,
    /// `approve` or `reject`.
    decision: String,
    #[serde(default)]
    reason: String,
}

/// Approves or rejects an execution awaiting approval.
async fn answer(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<AnswerForm>,
) -> Response {
    if !user.csrf_ok(&form.csrf) {
        return forged(&user);
    }
    let Some(id) = parse_id(&id) else {
        return no_such_execution(&user);
    };
    let reason = Some(form.reason.trim().to_owned()).filter(|r| !r.is_empty());
    let (who, origin) = (user.caller.identity(), &user.caller.origin);
    let done = match form.decision.as_str() {
        "approve" => state
            .engine
            .approve(id, who, origin, reason)
            .await
            .map(|_| ()),
        "reject" => state
            .engine
            .reject(id, who, origin, reason)
            .await
            .map(|_| ()),
        other => {
            return message(
                Some(&user),
                StatusCode::BAD_REQUEST,
                "Refused",
                &format!("`{other}` is not approve or reject."),
            );
        }
    };
    match done {
        Ok(()) => Redirect::to(&format!("/ui/executions/{id}")).into_response(),
        Err(e) => refusal(&user, e),
    }
}

/// The hosts that need attention, the alert groups, the firing alerts and
/// the silences, with forms to acknowledge and to silence.
async fn alerts(State(state): State<AppState>, user: WebUser) -> Response {
    alerts_page(&state, &user, None, StatusCode::OK).await
}

async fn alerts_page(
    state: &AppState,
    user: &WebUser,
    form_error: Option<String>,
    status: StatusCode,
) -> Response {
    const SHOWN: u32 = 200;
    let since =
        switchboard_core::Timestamp::now().before(std::time::Duration::from_secs(24 * 3600));
    let (who, origin) = (user.caller.identity(), &user.caller.origin);
    let attention = match state.engine.attention(who, origin, since).await {
        Ok(a) => a,
        Err(e) => return refusal(user, e),
    };
    let firing = match state.engine.alerts(true, SHOWN).await {
        Ok(a) => a,
        Err(e) => return refusal(user, e),
    };
    let silences = match state.engine.silences(false).await {
        Ok(s) => s,
        Err(e) => return refusal(user, e),
    };
    let hosts: Vec<Value> = attention
        .iter()
        .map(|h| {
            let alerts: Vec<String> = h
                .alerts
                .iter()
                .map(|a| match &a.severity {
                    Some(s) => format!("{} ({s})", a.alertname),
                    None => a.alertname.clone(),
                })
                .collect();
            let failing: Vec<Value> = h
                .failing
                .iter()
                .map(|f| context! { action => f.action.clone(), id => f.execution.0, status => f.status.as_str() })
                .collect();
            context! { host => h.host.clone(), alerts, failing }
        })
        .collect();
    let groups: Vec<Value> = state
        .engine
        .alert_groups()
        .into_iter()
        .map(|g| {
            let labels: Vec<String> = g.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            context! {
                id => g.id,
                labels => labels.join(", "),
                receiver => g.receiver,
                alerts => g.alerts,
                acked => g.acked.map(|(by, at)| format!("{by} at {at}")),
            }
        })
        .collect();
    let alerts: Vec<Value> = firing
        .iter()
        .map(|a| {
            let ack = state
                .engine
                .alert_acked_by(&a.fingerprint)
                .map(|(by, _)| by);
            let labels: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            context! {
                fingerprint => a.fingerprint.clone(),
                name => a.labels.get("alertname").cloned().unwrap_or_default(),
                severity => a.labels.get("severity").cloned(),
                summary => a.annotations.get("summary").cloned(),
                labels => labels.join(", "),
                since => a.starts_at.to_string(),
                ack,
            }
        })
        .collect();
    let silences: Vec<Value> = silences
        .iter()
        .map(|s| {
            context! {
                id => s.id.clone(),
                matchers => s.matchers.clone(),
                ends_at => s.ends_at.to_string(),
                created_by => s.created_by.clone(),
                comment => s.comment.clone(),
                state => s.state,
            }
        })
        .collect();
    page(
        status,
        "alerts.html",
        context! { user => user_view(user), hosts, groups, alerts, silences, form_error },
    )
}

#[derive(Deserialize)]
struct AckForm {
    csrf: String,
    /// A fingerprint or a group's id.
    target: String,
    #[serde(default)]
    comment: String,
}

async fn ack(State(state): State<AppState>, user: WebUser, Form(form): Form<AckForm>) -> Response {
    if !user.csrf_ok(&form.csrf) {
        return forged(&user);
    }
    match state
        .engine
        .acknowledge(
            user.caller.identity(),
            &user.caller.origin,
            &form.target,
            &form.comment,
        )
        .await
    {
        Ok(_) => Redirect::to("/ui/alerts").into_response(),
        Err(e @ (EngineError::Forbidden(_) | EngineError::UnknownAlert(_))) => {
            alerts_page(&state, &user, Some(e.to_string()), StatusCode::FORBIDDEN).await
        }
        Err(e) => refusal(&user, e),
    }
}

#[derive(Deserialize)]
struct SilenceForm {
    csrf: String,
    matchers: String,
    duration: String,
    comment: String,
}

async fn silence(
    State(state): State<AppState>,
    user: WebUser,
    Form(form): Form<SilenceForm>,
) -> Response {
    if !user.csrf_ok(&form.csrf) {
        return forged(&user);
    }
    let duration = match humantime::parse_duration(form.duration.trim()) {
        Ok(d) if !d.is_zero() => d,
        _ => {
            let text = format!(
                "`{}` is not a duration like `2h` or `30m`",
                form.duration.trim()
            );
            return alerts_page(&state, &user, Some(text), StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    let new = switchboard_engine::alerts::silences::NewSilence {
        matchers: form.matchers.trim().to_owned(),
        starts_at: None,
        ends_at: None,
        duration: Some(duration),
        comment: form.comment.trim().to_owned(),
    };
    match state
        .engine
        .create_silence(user.caller.identity(), &user.caller.origin, new)
        .await
    {
        Ok(_) => Redirect::to("/ui/alerts").into_response(),
        Err(e @ (EngineError::Forbidden(_) | EngineError::Invalid(_))) => {
            let status = if matches!(e, EngineError::Forbidden(_)) {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            alerts_page(&state, &user, Some(e.to_string()), status).await
        }
        Err(e) => refusal(&user, e),
    }
}

async fn unsilence(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !user.csrf_ok(&form.csrf) {
        return forged(&user);
    }
    match state
        .engine
        .expire_silence(user.caller.identity(), &user.caller.origin, &id)
        .await
    {
        Ok(_) => Redirect::to("/ui/alerts").into_response(),
        Err(e) => refusal(&user, e),
    }
}

async fn console_page(user: WebUser) -> Response {
    page(
        StatusCode::OK,
        "console.html",
        context! { user => user_view(&user) },
    )
}

#[derive(Deserialize)]
struct ConsoleLine {
    text: String,
}

/// One line of the console page, answered as chat would answer it, the
/// replies streamed back (server-sent events). The page sends its CSRF
/// token in `X-CSRF-Token`.
async fn console_line(
    State(state): State<AppState>,
    user: WebUser,
    headers: axum::http::HeaderMap,
    axum::Json(line): axum::Json<ConsoleLine>,
) -> Response {
    let sent = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !user.csrf_ok(sent) {
        return forged(&user);
    }
    if let Err(e) = user
        .caller
        .require(
            &state.engine,
            switchboard_core::token::Scope::Run,
            "use the chat console",
        )
        .await
    {
        return e.into_response();
    }
    crate::routes::chat::console_replies(&state, &user.caller, "web", line.text)
        .unwrap_or_else(IntoResponse::into_response)
}

#[derive(Deserialize)]
struct AuditForm {
    #[serde(default)]
    after: Option<i64>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    actor: Option<String>,
}

/// The audit log in chain order, a page at a time (`after` the last record
/// shown), from a time on, narrowed to a kind of record or an actor; with
/// the chain's verification. Admins only, as in the API.
async fn audit(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<AuditForm>,
) -> Response {
    const PAGE: u32 = 200;
    if let Err(e) = user
        .caller
        .require(
            &state.engine,
            switchboard_core::token::Scope::Admin,
            "read the audit log",
        )
        .await
    {
        return message(Some(&user), e.status, "Not allowed", &e.message);
    }
    let blank = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let (since, kind, actor) = (blank(q.since), blank(q.kind), blank(q.actor));
    let since_at = match since
        .as_deref()
        .map(switchboard_core::Timestamp::parse_rfc3339)
    {
        Some(None) => {
            return message(
                Some(&user),
                StatusCode::BAD_REQUEST,
                "Filters refused",
                "`since` is not an RFC 3339 time such as 2026-11-26T00:00:00Z.",
            );
        }
        Some(at) => at,
        None => None,
    };
    let verified = match state.engine.verify_audit().await {
        Ok(v) => v,
        Err(e) => return refusal(&user, e),
    };
    let records = match state
        .engine
        .audit_records(q.after.unwrap_or(0), since_at, PAGE)
        .await
    {
        Ok(r) => r,
        Err(e) => return refusal(&user, e),
    };
    let next = (records.len() == PAGE as usize)
        .then(|| records.last().map(|r| r.seq))
        .flatten()
        .map(|after| {
            let mut params = vec![("after", after.to_string())];
            for (k, v) in [("since", &since), ("kind", &kind), ("actor", &actor)] {
                if let Some(v) = v {
                    params.push((k, v.clone()));
                }
            }
            serde_urlencoded::to_string(params).unwrap_or_default()
        });
    let rows: Vec<Value> = records
        .iter()
        .filter(|r| kind.as_deref().is_none_or(|k| r.event.kind.starts_with(k)))
        .filter(|r| actor.as_deref().is_none_or(|a| r.event.actor.as_str() == a))
        .map(|r| {
            context! {
                seq => r.seq,
                ts => r.event.ts.to_string(),
                actor => r.event.actor.to_string(),
                origin => r.event.origin.to_string(),
                kind => r.event.kind.clone(),
                subject => r.event.subject.clone(),
                outcome => r.event.outcome.clone(),
                detail => r.event.detail.to_string(),
            }
        })
        .collect();
    page(
        StatusCode::OK,
        "audit.html",
        context! {
            user => user_view(&user),
            intact => verified.broken.is_none(),
            verified_records => verified.records,
            head => verified.head,
            broken_at => verified.broken.as_ref().map(|b| b.seq),
            broken_reason => verified.broken.as_ref().map(|b| b.reason.clone()),
            rows,
            next,
            f => context! { since, kind, actor },
        },
    )
}

/// "Who can VERB ACTION [on TARGET] [through DOOR]?": every principal and
/// group that may, with the doors and the policies that let them.
async fn who_can(
    State(state): State<AppState>,
    user: WebUser,
    Query(form): Query<BTreeMap<String, String>>,
) -> Response {
    let mut given = filled(form);
    given.remove("principal");
    let actions: Vec<String> = state
        .engine
        .visible_actions(user.caller.identity(), &user.caller.origin)
        .iter()
        .map(|a| a.name.to_string())
        .collect();
    let mut answer = Value::from(());
    let mut error = Value::from(());
    if given.contains_key("verb") {
        let query = serde_urlencoded::to_string(&given)
            .ok()
            .and_then(|q| serde_urlencoded::from_str::<crate::routes::authz::AuthzQuery>(&q).ok());
        match query {
            None => error = Value::from("The question is not one this page knows."),
            Some(q) => match crate::routes::authz::who_can_answer(&state, &user.caller, q).await {
                Ok(w) => {
                    let refs = |p: &[switchboard_core::policy::PolicyRef]| -> Vec<String> {
                        p.iter().map(ToString::to_string).collect()
                    };
                    let principals: Vec<Value> = w
                        .principals
                        .iter()
                        .map(|g| {
                            context! {
                                name => g.principal.to_string(),
                                kind => format!("{:?}", g.kind).to_lowercase(),
                                doors => g.doors.join(", "),
                                policies => refs(&g.policies),
                            }
                        })
                        .collect();
                    let groups: Vec<Value> = w
                        .groups
                        .iter()
                        .chain(w.everyone.iter())
                        .map(|g| {
                            context! {
                                name => g.group.clone(),
                                doors => g.doors.join(", "),
                                policies => refs(&g.policies),
                            }
                        })
                        .collect();
                    answer = context! {
                        question => format!(
                            "Who can {} {}{}?",
                            w.verb,
                            w.action.clone().unwrap_or_else(|| "switchboard".to_owned()),
                            w.target.as_ref().map(|t| format!(" on {t}")).unwrap_or_default()
                        ),
                        principals,
                        groups,
                        everyone => w.everyone.is_some(),
                        examined => w.examined,
                        doors => w.doors.join(", "),
                    };
                }
                Err(e) => {
                    error = Value::from(api_error_text(e));
                }
            },
        }
    }
    page(
        StatusCode::OK,
        "who_can.html",
        context! {
            user => user_view(&user),
            verbs => ["run", "view", "approve", "cancel", "silence", "admin"],
            actions,
            f => given,
            answer,
            error,
        },
    )
}

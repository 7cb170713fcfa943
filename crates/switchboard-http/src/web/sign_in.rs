//! Signing in and out: the sign-in page and its form (an API token), single
//! sign-on through the OIDC provider (authorization code with PKCE), and
//! signing out. Not here: the cookies and CSRF values themselves (`session`).

use super::*;

#[derive(Deserialize)]
pub(super) struct NextQuery {
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

pub(super) async fn sign_in_page(
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
pub(super) async fn oidc_start(
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
pub(super) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The provider's answer: the code is exchanged for an ID token (its state
/// and nonce checked), which signs the session in.
pub(super) async fn oidc_callback(
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
pub(super) struct SignInForm {
    token: String,
    csrf: String,
    next: Option<String>,
}

pub(super) async fn sign_in(
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

pub(super) async fn sign_out(
    user: WebUser,
    jar: PrivateCookieJar<Key>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !user.csrf_ok(&form.csrf) {
        return forged(&user);
    }
    (session::end(jar), Redirect::to("/ui/sign-in")).into_response()
}

//! Web sessions: who is signed in, kept in a cookie, and the CSRF tokens of
//! their forms.
//!
//! The session cookie (`sb_session`) holds the API token the user signed in
//! with and when the session ends, encrypted and authenticated with the
//! daemon's key (`axum_extra`'s private cookies), `HttpOnly` (no script
//! reads it), `SameSite=Strict` (no other site sends it) and `Secure` when
//! the public URL is `https`. Every request authenticates that token with
//! the engine like an API call, so a revoked or expired token ends the
//! session at once. The key is made when the daemon starts: a restart signs
//! everyone out.
//!
//! Every form carries a CSRF token: an HMAC of the session with a second
//! key, checked in constant time; the sign-in form, which comes before any
//! session, carries a random value also held in a cookie of its own
//! (`sb_signin`).
//!
//! Not here: the pages, and what a signed-in user may do (the engine).

use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, Key, PrivateCookieJar, SameSite};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use switchboard_core::{Origin, Timestamp};

use crate::AppState;
use crate::caller::Caller;

/// The cookie of a signed-in session.
pub const SESSION_COOKIE: &str = "sb_session";
/// The cookie of a sign-in form's CSRF value.
const SIGN_IN_COOKIE: &str = "sb_signin";
/// The cookie of a sign-in through the OIDC provider under way.
const OIDC_COOKIE: &str = "sb_oidc";
/// How long a sign-in through the provider may take.
const OIDC_LENGTH: Duration = Duration::from_secs(10 * 60);
/// How long a session lasts.
const SESSION_LENGTH: Duration = Duration::from_secs(12 * 3600);

/// The web UI's keys, made when the daemon starts.
#[derive(Clone)]
pub struct WebKeys {
    cookies: Key,
    csrf: [u8; 32],
    /// Cookies are `Secure` (the public URL is `https`).
    secure: bool,
}

impl WebKeys {
    /// New random keys, from the operating system's generator (without
    /// which no session could be trusted: the daemon does not start).
    pub fn generate(secure: bool) -> Result<Self, getrandom::Error> {
        let mut cookies = [0u8; 64];
        let mut csrf = [0u8; 32];
        getrandom::fill(&mut cookies)?;
        getrandom::fill(&mut csrf)?;
        Ok(Self {
            cookies: Key::from(&cookies),
            csrf,
            secure,
        })
    }

    /// The CSRF token of forms shown in the session `session`.
    fn csrf_of(&self, session: &str) -> String {
        // HMAC takes keys of any length; the fallback is unreachable.
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.csrf) else {
            return String::new();
        };
        mac.update(b"switchboard-csrf\n");
        mac.update(session.as_bytes());
        hex(&mac.finalize().into_bytes()[..16])
    }

    fn cookie(&self, name: &'static str, value: String, max_age: Duration) -> Cookie<'static> {
        let mut c = Cookie::new(name, value);
        c.set_http_only(true);
        c.set_same_site(SameSite::Strict);
        c.set_path("/");
        c.set_secure(self.secure);
        c.set_expires(cookie_duration(max_age));
        c
    }
}

impl FromRef<AppState> for Key {
    fn from_ref(state: &AppState) -> Self {
        state.web.cookies.clone()
    }
}

fn cookie_duration(d: Duration) -> axum_extra::extract::cookie::Expiration {
    let at = std::time::SystemTime::now() + d;
    axum_extra::extract::cookie::Expiration::DateTime(at.into())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether two texts are equal, in time that does not depend on where they
/// differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The API token of a live session in `jar`.
pub fn session_token(jar: &PrivateCookieJar) -> Option<String> {
    let value = jar.get(SESSION_COOKIE)?.value().to_owned();
    let (ends, token) = value.split_once(':')?;
    let ends: i64 = ends.parse().ok()?;
    (Timestamp::now().micros() < ends && !token.is_empty()).then(|| token.to_owned())
}

/// `jar` with a new session for `token`.
pub fn start(keys: &WebKeys, jar: PrivateCookieJar, token: &str) -> PrivateCookieJar {
    let ends = Timestamp::now().after(SESSION_LENGTH).micros();
    jar.remove(Cookie::build(SIGN_IN_COOKIE).path("/"))
        .add(keys.cookie(SESSION_COOKIE, format!("{ends}:{token}"), SESSION_LENGTH))
}

/// `jar` without the session.
pub fn end(jar: PrivateCookieJar) -> PrivateCookieJar {
    jar.remove(Cookie::build(SESSION_COOKIE).path("/"))
}

/// The sign-in form's CSRF value: the one in `jar`, or a new one added to
/// it. Empty (so no sign-in can succeed) if the system has no randomness.
pub fn sign_in_csrf(keys: &WebKeys, jar: PrivateCookieJar) -> (PrivateCookieJar, String) {
    if let Some(c) = jar.get(SIGN_IN_COOKIE) {
        let value = c.value().to_owned();
        return (jar, value);
    }
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        return (jar, String::new());
    }
    let value = hex(&bytes);
    let jar = jar.add(keys.cookie(SIGN_IN_COOKIE, value.clone(), Duration::from_secs(3600)));
    (jar, value)
}

/// Whether a sign-in form's CSRF value is the one its cookie holds.
pub fn sign_in_csrf_ok(jar: &PrivateCookieJar, sent: &str) -> bool {
    jar.get(SIGN_IN_COOKIE)
        .is_some_and(|c| !sent.is_empty() && same(c.value(), sent))
}

fn random_text(bytes: usize) -> Option<String> {
    use base64::Engine as _;
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// A sign-in through the OIDC provider under way: what the browser must
/// come back with (`state`), what proves this daemon asked (the PKCE
/// `verifier`), what the ID token must carry (`nonce`), and where to go
/// after. Kept in a private cookie for ten minutes.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct OidcLoginStart {
    pub state: String,
    pub verifier: String,
    pub nonce: String,
    pub next: String,
}

impl OidcLoginStart {
    /// A new one (`None` when the system has no randomness).
    pub fn new(next: String) -> Option<Self> {
        Some(Self {
            state: random_text(24)?,
            verifier: random_text(48)?,
            nonce: random_text(24)?,
            next,
        })
    }

    /// The PKCE challenge of the verifier (S256).
    pub fn challenge(&self) -> String {
        use base64::Engine as _;
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(self.verifier.as_bytes()))
    }

    /// Whether the provider's `state` is this sign-in's.
    pub fn state_is(&self, sent: &str) -> bool {
        same(&self.state, sent)
    }

    /// `jar` keeping it.
    pub fn keep(&self, keys: &WebKeys, jar: PrivateCookieJar) -> PrivateCookieJar {
        let value = serde_json::to_string(self).unwrap_or_default();
        let mut c = keys.cookie(OIDC_COOKIE, value, OIDC_LENGTH);
        // The provider sends the browser back from its own site: a strict
        // cookie would not come with it.
        c.set_same_site(SameSite::Lax);
        jar.add(c)
    }

    /// The one `jar` keeps, taken out of it.
    pub fn take(jar: PrivateCookieJar) -> (PrivateCookieJar, Option<Self>) {
        let found = jar
            .get(OIDC_COOKIE)
            .and_then(|c| serde_json::from_str(c.value()).ok());
        (jar.remove(Cookie::build(OIDC_COOKIE).path("/")), found)
    }
}

/// The door of the web UI.
pub fn web_origin() -> Origin {
    Origin::new("web").unwrap_or_else(|_| Origin::api())
}

/// A signed-in user: their identity as the engine knows it, from the `web`
/// door, and the CSRF token of their forms. A page that needs one sends
/// whoever has no session to the sign-in page.
pub struct WebUser {
    pub caller: Caller,
    pub csrf: String,
}

impl WebUser {
    /// Whether `sent` is this session's CSRF token.
    pub fn csrf_ok(&self, sent: &str) -> bool {
        !self.csrf.is_empty() && same(&self.csrf, sent)
    }
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let next = parts
            .uri
            .path_and_query()
            .map_or("/ui/", |p| p.as_str())
            .to_owned();
        let to_sign_in = || {
            let query = serde_urlencoded::to_string([("next", &next)]).unwrap_or_default();
            Redirect::to(&format!("/ui/sign-in?{query}")).into_response()
        };
        let jar = PrivateCookieJar::<Key>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Some(token) = session_token(&jar) else {
            return Err(to_sign_in());
        };
        let origin = web_origin();
        match state.engine.authenticate(&token, &origin).await {
            Ok(who) => Ok(Self {
                csrf: state.web.csrf_of(&token),
                caller: Caller { who, origin },
            }),
            Err(_) => Err((end(jar), to_sign_in()).into_response()),
        }
    }
}

/// The caller of an API request (reads only) made by a page of a signed-in
/// session — the live output of an execution page — when it sent no
/// `Authorization` header.
pub async fn api_caller(state: &AppState, parts: &mut Parts) -> Option<Caller> {
    let jar = PrivateCookieJar::<Key>::from_request_parts(parts, state)
        .await
        .ok()?;
    let token = session_token(&jar)?;
    let origin = web_origin();
    let who = state.engine.authenticate(&token, &origin).await.ok()?;
    Some(Caller { who, origin })
}

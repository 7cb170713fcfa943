//! OIDC sign-in with keys this test makes and a JWKS it serves on loopback.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::harness::{Api, Server, test_catalog};

struct Issuer {
    key: EncodingKey,
    jwk: Value,
}

fn issuer(kid: &str) -> Issuer {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = pair.public_key().as_ref();
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    });
    Issuer {
        key: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn token(issuer: &Issuer, kid: &str, claims: Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    encode(&header, &claims, &issuer.key).unwrap()
}

fn claims(user: &str) -> Value {
    json!({
        "iss": "https://id.test/realms/ops", "aud": "switchboard", "exp": now() + 600, "iat": now(),
        "sub": "0001", "preferred_username": user, "groups": ["sre", "oncall"],
    })
}

#[tokio::test]
async fn oidc_tokens_are_verified_against_the_served_jwks() {
    let good = issuer("k1");
    let jwks = json!({"keys": [good.jwk.clone()]});
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_url = format!("http://{}/certs", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/certs",
        axum::routing::get(move || async move { axum::Json(jwks) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let config = format!(
        "[oidc]\nissuer = \"https://id.test/realms/ops\"\naudience = \"switchboard\"\njwks = \"{jwks_url}\"\n"
    );
    let server = Server::start_with_config(&test_catalog(), &config);

    let carol = Api::with_token(server.url.clone(), &token(&good, "k1", claims("carol")));
    let (status, me) = carol.get("/whoami").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["principal"], "carol");
    assert_eq!(
        me["groups"],
        json!(["oncall", "sre"]),
        "as the provider asserts them, sorted"
    );
    assert_eq!(me["scopes"], json!(["read", "run"]));
    let id = carol
        .submit("test.args", json!({"text": "signed in with OIDC"}))
        .await;
    assert_eq!(carol.wait_finished(id).await["requester"], "carol");
    let (status, _) = carol.get("/audit").await;
    assert_eq!(status, 403, "OIDC users get the configured scopes only");

    // The auditor's report knows carol only from her signing in: source
    // `oidc`, with the groups the provider asserted, and those groups'
    // members come from the provider.
    let (_, report) = server.get("/report?actions=test.args").await;
    let identity = &report["identity"];
    let carol_row = identity["principals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "carol")
        .unwrap_or_else(|| panic!("carol not in {identity}"));
    assert_eq!(
        (&carol_row["source"], &carol_row["groups"]),
        (&json!("oidc"), &json!(["oncall", "sre"])),
        "{carol_row}"
    );
    let sre = identity["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "sre")
        .unwrap_or_else(|| panic!("no group sre in {identity}"));
    assert_eq!(
        (&sre["sources"], &sre["members"]),
        (&json!(["oidc"]), &json!(1))
    );

    let mut expired = claims("carol");
    expired["exp"] = json!(now() - 3600);
    let mut foreign_audience = claims("carol");
    foreign_audience["aud"] = json!("another-app");
    let mut foreign_issuer = claims("carol");
    foreign_issuer["iss"] = json!("https://evil.test");
    let impostor = issuer("k1");
    let unknown_key = issuer("k9");
    let hs256 = encode(
        &Header::new(Algorithm::HS256),
        &claims("carol"),
        &EncodingKey::from_secret(b"guessable"),
    )
    .unwrap();
    let bad = [
        ("expired", token(&good, "k1", expired)),
        ("foreign audience", token(&good, "k1", foreign_audience)),
        ("foreign issuer", token(&good, "k1", foreign_issuer)),
        (
            "signed by another key under a known kid",
            token(&impostor, "k1", claims("carol")),
        ),
        (
            "signed by a key the issuer does not publish",
            token(&unknown_key, "k9", claims("carol")),
        ),
        ("shared-secret algorithm", hs256),
    ];
    for (why, jwt) in &bad {
        let (status, body) = Api::with_token(server.url.clone(), jwt)
            .get("/whoami")
            .await;
        assert_eq!(status, 401, "{why}: {body}");
        assert_eq!(body["error"]["code"], "unauthenticated", "{why}");
    }

    let (_, page) = server.get("/audit").await;
    let failures: Vec<&Value> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["kind"] == "auth.failed" && r["subject"].as_str().unwrap().starts_with("jwt:")
        })
        .collect();
    assert_eq!(failures.len(), bad.len());
    assert!(
        failures[0]["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains("ExpiredSignature"),
        "{}",
        failures[0]
    );
}

/// What the provider in the test was asked to sign in: the PKCE challenge
/// and the nonce of each code it gave out.
type Codes = std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, (String, String)>>>;

/// A provider on loopback for the web UI's sign-in: `/authorize` signs
/// `user` in at once (sending the browser back with a code), `/token` gives
/// the ID token for a code only with the verifier whose S256 challenge was
/// sent, `/certs` publishes its key. Its base URL.
async fn provider(issuer: Issuer, user: &'static str) -> String {
    use axum::extract::{Form, Query};
    use axum::response::{IntoResponse, Redirect};
    use sha2::{Digest, Sha256};
    let codes: Codes = Default::default();
    let jwks = json!({"keys": [issuer.jwk.clone()]});
    let issuer = std::sync::Arc::new(issuer);
    let (given, asked) = (codes.clone(), codes);
    let app = axum::Router::new()
        .route("/certs", axum::routing::get(move || async move { axum::Json(jwks) }))
        .route(
            "/authorize",
            axum::routing::get(move |Query(q): Query<std::collections::BTreeMap<String, String>>| async move {
                assert_eq!(q["response_type"], "code");
                assert_eq!(q["client_id"], "switchboard");
                assert_eq!(q["code_challenge_method"], "S256");
                let code = format!("code-{}", given.lock().unwrap().len() + 1);
                given
                    .lock()
                    .unwrap()
                    .insert(code.clone(), (q["code_challenge"].clone(), q["nonce"].clone()));
                Redirect::to(&format!("{}?code={code}&state={}", q["redirect_uri"], q["state"]))
            }),
        )
        .route(
            "/token",
            axum::routing::post(move |Form(f): Form<std::collections::BTreeMap<String, String>>| async move {
                let Some((challenge, nonce)) = asked.lock().unwrap().remove(&f["code"]) else {
                    return (axum::http::StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_grant"})))
                        .into_response();
                };
                let proof = URL_SAFE_NO_PAD.encode(Sha256::digest(f["code_verifier"].as_bytes()));
                if proof != challenge || f["grant_type"] != "authorization_code" {
                    return (
                        axum::http::StatusCode::BAD_REQUEST,
                        axum::Json(json!({"error": "invalid_grant", "error_description": "PKCE verification failed"})),
                    )
                        .into_response();
                }
                let mut c = claims(user);
                c["nonce"] = json!(nonce);
                axum::Json(json!({"id_token": token(&issuer, "k1", c), "token_type": "Bearer"})).into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn the_web_ui_signs_in_through_the_provider_with_pkce() {
    let provider = provider(issuer("k1"), "carol").await;
    let config = format!(
        "[oidc]\nissuer = \"https://id.test/realms/ops\"\naudience = \"switchboard\"\n\
         jwks = \"{provider}/certs\"\nauthorization_endpoint = \"{provider}/authorize\"\n\
         token_endpoint = \"{provider}/token\"\n"
    );
    let server = Server::start_with_config(&test_catalog(), &config);
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let go = async |url: &str| {
        let r = browser.get(url).send().await.unwrap();
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, location, r.text().await.unwrap())
    };

    // The sign-in page offers single sign-on.
    let (_, _, page) = go(&format!(
        "{}/ui/sign-in?next=%2Fui%2Fexecutions",
        server.url
    ))
    .await;
    assert!(page.contains("Sign in with single sign-on"), "{page}");
    // To the provider, with a PKCE challenge; back with a code.
    let (status, to_provider, _) = go(&format!(
        "{}/ui/sign-in/oidc?next=%2Fui%2Fexecutions",
        server.url
    ))
    .await;
    assert_eq!(status, 303);
    assert!(
        to_provider.starts_with(&format!("{provider}/authorize?")),
        "{to_provider}"
    );
    let (_, back, _) = go(&to_provider).await;
    assert!(
        back.starts_with(&format!("{}/ui/oidc/callback?code=", server.url)),
        "{back}"
    );
    // Forged state: refused, and that sign-in is over.
    let forged = back.replace("state=", "state=x");
    let (status, _, page) = go(&forged).await;
    assert_eq!(status, 401, "{page}");
    assert!(page.contains("state does not match"), "{page}");
    let (status, _, _) = go(&back).await;
    assert_eq!(status, 401, "the forged answer ended that sign-in");

    // A new sign-in, answered right: signed in as carol, moving on to the page asked for.
    let (_, to_provider, _) = go(&format!(
        "{}/ui/sign-in/oidc?next=%2Fui%2Fexecutions",
        server.url
    ))
    .await;
    let (_, back, _) = go(&to_provider).await;
    let (status, _, page) = go(&back).await;
    assert_eq!(status, 200, "{page}");
    // (`/` is written `&#x2f;` in HTML attributes.)
    assert!(
        page.contains("http-equiv=\"refresh\" content=\"0;url=&#x2f;ui&#x2f;executions\""),
        "{page}"
    );
    let (status, _, page) = go(&format!("{}/ui/executions", server.url)).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<span class=\"who\">carol</span>"), "{page}");
    // A code is good once: the same answer again signs nobody in.
    let (status, _, _) = go(&back).await;
    assert_eq!(status, 401);
}

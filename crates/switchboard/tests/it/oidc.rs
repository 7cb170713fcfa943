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

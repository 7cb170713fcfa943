//! What the focused end-to-end tests of platforms outside the compliance
//! suite (`discord.rs`, `teams.rs`) share: the catalog with a policy for
//! the platform's `#ops`, reading refusals, runs and link codes.

use serde_json::Value;

use crate::harness::{Server, copy_catalog, sample_catalog};

/// The sample catalog with `policy` added as `policies/<name>.cedar`.
pub fn catalog_with_policy(name: &str, policy: &str) -> tempfile::TempDir {
    let catalog = tempfile::tempdir().unwrap();
    copy_catalog(&sample_catalog(), catalog.path());
    std::fs::write(
        catalog.path().join(format!("policies/{name}.cedar")),
        policy,
    )
    .unwrap();
    catalog
}

/// The request was answered `status`, with an error message saying `why`.
pub fn refused_because((status, answer): (u16, Value), expected: u16, why: &str) {
    assert_eq!(status, expected, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(why), "{answer}");
}

/// Posts `body` to `url` as JSON with `headers`; the status and the
/// answer (`null` when it is not JSON).
pub async fn post(url: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The executions, newest first.
pub async fn executions(server: &Server) -> Vec<Value> {
    let (_, page) = server.get("/executions").await;
    page["executions"].as_array().unwrap().clone()
}

/// The code in the private message `Your link code is CODE. …`.
pub fn link_code(text: &str) -> String {
    let start = text.find("Your link code is ").unwrap() + "Your link code is ".len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

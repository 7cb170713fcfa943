use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use switchboard_core::Catalog;
use switchboard_engine::{Engine, EngineConfig};
use tower::ServiceExt;

const TOKEN: &str = "sb_property_test_token_0123456789";

struct App {
    _dir: tempfile::TempDir,
    router: axum::Router,
    rt: tokio::runtime::Runtime,
}

fn app() -> App {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let catalog =
        Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/catalog"))
            .unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let router = rt.block_on(async {
        let store = switchboard_store::open(&url).await.unwrap();
        let config = EngineConfig {
            temp_dir: dir.path().to_path_buf(),
            ..EngineConfig::default()
        };
        let engine = Engine::start(store, catalog, config).await.unwrap();
        switchboard_http::router(engine, Default::default(), None).unwrap()
    });
    App {
        _dir: dir,
        router,
        rt,
    }
}

impl App {
    fn send(&self, mut req: Request<Body>) -> (StatusCode, String) {
        let bearer = axum::http::HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap();
        req.headers_mut()
            .insert(axum::http::header::AUTHORIZATION, bearer);
        self.rt.block_on(async {
            let resp = self.router.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), 4 * 1024 * 1024)
                .await
                .unwrap();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        })
    }
}

fn assert_deliberate(status: StatusCode, body: &str) {
    assert!(!status.is_server_error(), "{status}: {body}");
    if status.is_client_error() {
        let v: serde_json::Value =
            serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
        assert!(v["error"]["message"].is_string(), "{body}");
        assert!(v["error"]["code"].is_string(), "{body}");
    }
}

/// JSON values with the shapes a submission has, and wrong ones.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(serde_json::Value::from),
        ".{0,20}".prop_map(serde_json::Value::from),
        prop_oneof![
            Just("demo.echo"),
            Just("host.disk"),
            Just("message"),
            Just("warn_above"),
            Just("path")
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("action".to_owned()),
                    Just("params".to_owned()),
                    Just("message".to_owned()),
                    Just("warn_above".to_owned()),
                    ".{0,8}".prop_map(|s| s)
                ],
                inner,
                0..4
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn submissions_never_get_a_server_error(body in json_value(), raw in proptest::collection::vec(any::<u8>(), 0..64), use_raw in any::<bool>()) {
        let app = app_once();
        let bytes = if use_raw { raw } else { serde_json::to_vec(&body).unwrap() };
        let req = Request::post("/api/v1/executions").header("content-type", "application/json").body(Body::from(bytes)).unwrap();
        let (status, text) = app.send(req);
        assert_deliberate(status, &text);
    }

    #[test]
    fn listings_and_lookups_never_get_a_server_error(query in "[a-z_=&%0-9.:T-]{0,40}", id in "[#0-9a-z%-]{0,12}") {
        let app = app_once();
        for uri in [format!("/api/v1/executions?{query}"), format!("/api/v1/executions/{id}"), format!("/api/v1/executions/{id}/output"), format!("/api/v1/actions/{id}")] {
            let Ok(req) = Request::get(uri.as_str()).body(Body::empty()) else { continue };
            let (status, text) = app.send(req);
            assert_deliberate(status, &text);
        }
    }
}

/// One app for all cases of a test binary: starting an engine per case
/// would make the property tests slow without testing more.
fn app_once() -> &'static App {
    static APP: std::sync::OnceLock<App> = std::sync::OnceLock::new();
    APP.get_or_init(app)
}

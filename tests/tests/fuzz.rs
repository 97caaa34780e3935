//! Property tests of what the gateway takes from the network: arbitrary bodies, JSON documents
//! of every shape, paths and methods, bearer tokens, and raw bytes on the socket.
//!
//! Nothing panics, nothing is answered 5xx, every 4xx the gateway writes carries a typed error
//! code, and the gateway keeps serving. Bounded for CI: 256 cases per property by default
//! (`PROPTEST_CASES` changes it), with shrinking to the smallest failing input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::time::Duration;

use flashgate_tests::client::{Client, Reply, token_for};
use flashgate_tests::gateway::InProcess;
use flashgate_tests::scenario::CampaignSpec;
use flashgate_tests::store_home::{Backend, StoreHome};
use http::Method;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

/// A gateway selling one campaign, and a runtime to talk to it from a plain test.
struct Fixture {
    _home: StoreHome,
    gateway: InProcess,
    client: Client,
    campaign: String,
    rt: tokio::runtime::Runtime,
}

fn fixture(prefix: &str) -> Fixture {
    let home = StoreHome::new(Backend::Sqlite);
    let campaign = CampaignSpec::open(prefix, 1_000_000, 1_000_000);
    let id = campaign.id.clone();
    let gateway = InProcess::start(&home.scenario(vec![campaign]));
    Fixture {
        client: gateway.client(),
        _home: home,
        gateway,
        campaign: id,
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    }
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        ..Config::default()
    })
}

/// The gateway's contract for any input: no 5xx, and a 4xx says what was wrong.
fn answered_well(reply: &Reply) -> Result<(), TestCaseError> {
    let status = reply.status.as_u16();
    prop_assert!(status < 500, "{status}: {}", reply.body);
    if status >= 400 {
        let code = reply.body["error"]["code"].as_str().unwrap_or_default();
        prop_assert!(
            !code.is_empty(),
            "{status} without an error code: {}",
            reply.body
        );
    }
    Ok(())
}

impl Fixture {
    fn send(&self, method: Method, path: &str, token: Option<&str>, body: Vec<u8>) -> Reply {
        self.rt
            .block_on(self.client.send(method, path, token, body))
            .unwrap()
    }

    fn still_serving(&self) {
        let health = self.rt.block_on(self.client.get("/healthz", None));
        assert_eq!(health.status.as_u16(), 200);
    }
}

#[test]
fn any_bytes_as_a_purchase_body_get_a_typed_answer() {
    let f = fixture("fuzzbytes");
    let token = token_for("fuzzer");
    runner()
        .run(&proptest::collection::vec(any::<u8>(), 0..700), |body| {
            answered_well(&f.send(Method::POST, "/api/v1/orders", Some(&token), body))
        })
        .unwrap();
    // A body over the limit is refused with its own code.
    let big = f.send(
        Method::POST,
        "/api/v1/orders",
        Some(&token),
        vec![b' '; 5_000],
    );
    assert_eq!(big.status.as_u16(), 413);
    assert_eq!(big.body["error"]["code"], "body_too_large");
    f.still_serving();
    drop(f.gateway);
}

/// JSON values of every shape, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|x| json!(x)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn any_json_document_as_a_purchase_gets_a_typed_answer() {
    let f = fixture("fuzzjson");
    let token = token_for("json-fuzzer");
    let campaign = f.campaign.clone();
    // Objects with the purchase's own keys (sometimes the real campaign), odd values and
    // unknown keys, and any other JSON document at all.
    let purchase_like = (
        prop_oneof![Just(json!(campaign)), json_value()],
        proptest::option::of(json_value()),
        proptest::option::of(json_value()),
        proptest::option::of(("[a-z_]{1,10}", json_value())),
    )
        .prop_map(|(campaign_id, quantity, token, extra)| {
            let mut doc = serde_json::Map::new();
            doc.insert("campaign_id".into(), campaign_id);
            if let Some(q) = quantity {
                doc.insert("quantity".into(), q);
            }
            if let Some(t) = token {
                doc.insert("token".into(), t);
            }
            if let Some((k, v)) = extra {
                doc.insert(k, v);
            }
            Value::Object(doc)
        });
    let documents = prop_oneof![purchase_like, json_value()];
    runner()
        .run(&documents, |doc| {
            let reply = f.send(
                Method::POST,
                "/api/v1/orders",
                Some(&token),
                doc.to_string().into_bytes(),
            );
            answered_well(&reply)
        })
        .unwrap();
    f.still_serving();
}

#[test]
fn any_path_method_and_token_get_a_typed_answer() {
    let f = fixture("fuzzpath");
    let method = prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::DELETE),
        Just(Method::PATCH),
        Just(Method::OPTIONS),
    ];
    let path = prop_oneof![
        "/[a-zA-Z0-9/._~%-]{0,40}",
        "/api/v1/(orders|campaigns|payments)/[a-zA-Z0-9._%-]{0,30}(/[a-z-]{0,12})?",
    ];
    let token = proptest::option::of(prop_oneof![
        "[ -~]{0,60}",
        Just(token_for("someone")),
        "[A-Za-z0-9_-]{1,20}\\.[A-Za-z0-9_-]{1,40}\\.[A-Za-z0-9_-]{1,40}",
    ]);
    runner()
        .run(&(method, path, token), |(method, path, token)| {
            let reply = f.send(method, &path, token.as_deref(), Vec::new());
            answered_well(&reply)
        })
        .unwrap();
    f.still_serving();
}

#[test]
fn raw_bytes_on_the_socket_never_take_the_gateway_down() {
    let f = fixture("fuzzraw");
    let addr = f.gateway.addr;
    // Garbage, and garbage after a plausible request line.
    let bytes = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(|tail| {
            let mut request = b"POST /api/v1/orders HTTP/1.1\r\n".to_vec();
            request.extend(tail);
            request.extend(b"\r\n\r\n");
            request
        }),
    ];
    runner()
        .run(&bytes, |bytes| {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            let _ = stream.write_all(&bytes);
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            // HTTP's own framing errors are hyper's to answer (400, or a close); whatever
            // answer comes is never a 5xx.
            let text = String::from_utf8_lossy(&answer);
            prop_assert!(!text.starts_with("HTTP/1.1 5"), "{text}");
            Ok(())
        })
        .unwrap();
    f.still_serving();
}

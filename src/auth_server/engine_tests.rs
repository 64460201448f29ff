//! Whatever an engine (or anyone reaching the port) sends, the engine modules answer HTTP 200
//! with that engine's well-formed "no" or "yes", and never panic.

use std::net::SocketAddr;

use proptest::prelude::*;

use super::http::{Caller, Input, Reply};
use super::*;
use crate::security::passwd::{hash_password, Argon2Params};

const WEAK: Argon2Params = Argon2Params {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

fn server(dir: &std::path::Path) -> AuthServer {
    let pw = dir.join("passwd");
    let acl = dir.join("acl");
    std::fs::write(&pw, format!("u:{}\n", hash_password(b"pw", &WEAK).unwrap())).unwrap();
    std::fs::write(&acl, "user u\ntopic readwrite a/#\npattern read p/%c/#\n").unwrap();
    let file = |p: &std::path::Path| FileOption {
        path: p.to_path_buf(),
        origin: "test".into(),
    };
    AuthServer::start(Settings {
        password_file: file(&pw),
        acl_file: file(&acl),
        security: Security {
            auth_workers: 1,
            ..Security::default()
        },
        rabbitmq_exchange: "amq.topic".into(),
        tokens: None,
    })
    .unwrap()
}

fn well_formed(engine: &str, r: &Reply) -> bool {
    if r.status != 200 {
        return false;
    }
    match engine {
        "rabbitmq" => r.body == "allow" || r.body == "deny",
        _ => serde_json::from_str::<serde_json::Value>(&r.body)
            .is_ok_and(|v| v.get("result").is_some()),
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z/+#$.*]{0,12}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("u")),
        Just(serde_json::Value::from("pw")),
        Just(serde_json::Value::from("a/b")),
    ];
    leaf.prop_recursive(2, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("topic".to_string()),
                    Just("qos".to_string()),
                    "[a-z_]{1,8}".prop_map(String::from)
                ],
                inner,
                0..4
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn request() -> impl Strategy<Value = Input> {
    let keys = prop_oneof![
        Just("username"),
        Just("password"),
        Just("clientid"),
        Just("client_id"),
        Just("topic"),
        Just("action"),
        Just("qos"),
        Just("retain"),
        Just("routing_key"),
        Just("permission"),
        Just("resource"),
        Just("name"),
        Just("topics"),
        Just("peerhost"),
        Just("peer_addr"),
        Just("variable_map.client_id"),
        Just("vhost"),
    ];
    let values = prop_oneof![
        json_value(),
        Just(serde_json::Value::from("publish")),
        Just(serde_json::Value::from("subscribe")),
        Just(serde_json::Value::from("write")),
        Just(serde_json::Value::from("read")),
        Just(serde_json::Value::from("topic")),
        Just(serde_json::Value::from("amq.topic")),
        Just(serde_json::json!([{"topic": "a/#", "qos": 1}, {"topic": "#", "qos": 300}])),
    ];
    let fields = proptest::collection::btree_map(keys, values, 0..8);
    prop_oneof![
        fields
            .clone()
            .prop_map(|m| Input::Json(serde_json::Value::Object(
                m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            ))),
        fields.prop_map(|m| Input::Params(
            m.into_iter()
                .map(|(k, v)| (
                    k.to_string(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_string)
                ))
                .collect()
        )),
        json_value().prop_map(Input::Json),
        "[ -~]{0,20}".prop_map(Input::Malformed),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn every_request_gets_a_well_formed_answer(
        input in request(),
        route in prop_oneof![
            Just(("rabbitmq", "user")), Just(("rabbitmq", "vhost")),
            Just(("rabbitmq", "resource")), Just(("rabbitmq", "topic")),
            Just(("emqx", "authn")), Just(("emqx", "authz")),
            Just(("vernemq", "auth_on_register")), Just(("vernemq", "auth_on_publish")),
            Just(("vernemq", "auth_on_subscribe")),
        ],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let srv = server(dir.path());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let caller = Caller { peer: SocketAddr::from(([127, 0, 0, 1], 9)) };
        let (engine, endpoint) = route;
        let reply = rt.block_on(async {
            match engine {
                "rabbitmq" => rabbitmq::answer(&srv, endpoint, input, caller).await,
                "emqx" => emqx::answer(&srv, endpoint, input, caller).await,
                _ => vernemq::answer(&srv, endpoint, input, caller).await,
            }
        });
        prop_assert!(well_formed(engine, &reply), "{engine}/{endpoint}: {reply:?}");
    }
}

#[test]
fn the_right_password_and_topic_are_allowed_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let caller = Caller {
        peer: SocketAddr::from(([127, 0, 0, 1], 9)),
    };
    let params = |pairs: &[(&str, &str)]| {
        Input::Params(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    };
    rt.block_on(async {
        let r = rabbitmq::answer(&srv, "user", params(&[("username", "u"), ("password", "pw")]), caller).await;
        assert_eq!(r.body, "allow");
        let r = emqx::answer(
            &srv,
            "authz",
            Input::Json(serde_json::json!({"username": "u", "topic": "a/b", "action": "publish", "qos": 1, "retain": false})),
            caller,
        )
        .await;
        assert_eq!(r.body, r#"{"result":"allow"}"#);
        let r = vernemq::answer(
            &srv,
            "auth_on_subscribe",
            Input::Json(serde_json::json!({"username": "u", "client_id": "c", "topics": [{"topic": "p/c/#", "qos": 1}]})),
            caller,
        )
        .await;
        assert_eq!(r.body, r#"{"result":"ok","topics":[{"qos":1,"topic":"p/c/#"}]}"#);
    });
}

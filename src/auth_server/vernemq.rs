//! VerneMQ's webhooks (`vmq_webhooks`; its README lists the payloads). Every hook is a POST with
//! a JSON body and a `vernemq-hook` header; the answer is HTTP 200 with `{"result": "ok"}` or
//! `{"result": {"error": "..."}}`, optionally with modifiers.
//!
//! - `auth_on_register`: `peer_addr`, `peer_port`, `username`, `password`, `client_id`,
//!   `mountpoint`, `clean_session` → the password check of `serve` (the throttle counts
//!   `peer_addr`, the device's address).
//! - `auth_on_publish`: `username`, `client_id`, `mountpoint`, `qos`, `topic`, `payload`,
//!   `retain` → the ACL's write decision with that QoS and retain flag.
//! - `auth_on_subscribe`: `username`, `client_id`, `mountpoint`, `topics: [{topic, qos}]` → each
//!   filter with `subscribe-all` (VerneMQ never checks each delivery). Answered `ok` with the
//!   `topics` modifier: each filter with its QoS capped at the rules' `max_qos`, or QoS 128 (not
//!   allowed) when denied, so one SUBSCRIBE can be granted in part.
//!
//! Topics are judged as the client sent them: a non-empty `mountpoint` is not prepended.

use zeroize::Zeroizing;

use super::http::{Caller, Input, Reply};
use super::{identity, AuthServer};
use crate::security::acl::Access;
use crate::security::password_gate::{Checked, Origin};

pub const ENDPOINTS: &[&str] = &["auth_on_register", "auth_on_publish", "auth_on_subscribe"];

/// VerneMQ's SUBACK code for a refused filter, in the `topics` modifier.
const NOT_ALLOWED: u8 = 128;

pub fn refused(why: &str) -> Reply {
    Reply::json(serde_json::json!({ "result": { "error": why } }))
}

fn ok() -> Reply {
    Reply::json(serde_json::json!({ "result": "ok" }))
}

pub async fn answer(
    server: &AuthServer,
    endpoint: &str,
    mut input: Input,
    caller: Caller,
) -> Reply {
    if let Input::Malformed(why) = &input {
        tracing::debug!(peer = %caller.peer, why, "malformed VerneMQ request");
        return refused("malformed request");
    }
    let username = input.get("username").filter(|u| !u.is_empty());
    let client_id = input.get("client_id");
    match endpoint {
        "auth_on_register" => {
            let (Some(user), Some(password)) = (username, input.take("password")) else {
                return refused("not_authorized");
            };
            let device = input.get("peer_addr").and_then(|p| p.parse().ok());
            let from = Origin {
                device,
                peer: Some(caller.peer),
                listener: None,
                client_id: client_id.as_deref(),
            };
            let password = Zeroizing::new(password.into_bytes());
            match server.login(&user, password, from).await {
                Checked::Valid => ok(),
                Checked::Invalid => refused("invalid_credentials"),
                Checked::Locked => refused("too_many_failures"),
                Checked::Busy => refused("server_busy"),
            }
        }
        "auth_on_publish" => {
            let (Some(topic), Some(qos)) = (
                input.get("topic"),
                input.get("qos").and_then(|q| q.parse::<u8>().ok()),
            ) else {
                return refused("not_allowed");
            };
            let retain = input.get("retain").as_deref() == Some("true");
            let who = identity(username.as_deref(), client_id.as_deref(), None);
            if server
                .authorize(&who, Access::Write, &topic, qos, retain)
                .allowed
            {
                ok()
            } else {
                refused("not_allowed")
            }
        }
        "auth_on_subscribe" => {
            let Input::Json(body) = &input else {
                return refused("not_allowed");
            };
            let Some(topics) = body.get("topics").and_then(|t| t.as_array()) else {
                return refused("not_allowed");
            };
            let who = identity(username.as_deref(), client_id.as_deref(), None);
            let mut granted = Vec::with_capacity(topics.len());
            for t in topics {
                let (Some(filter), Some(qos)) = (
                    t.get("topic").and_then(|v| v.as_str()),
                    t.get("qos").and_then(|v| v.as_u64()),
                ) else {
                    return refused("not_allowed");
                };
                let qos = u8::try_from(qos).unwrap_or(u8::MAX);
                let v = server.authorize(&who, Access::SubscribeAll, filter, qos.min(2), true);
                let q = if v.allowed && qos <= 2 {
                    qos.min(v.max_qos)
                } else {
                    NOT_ALLOWED
                };
                granted.push(serde_json::json!({ "topic": filter, "qos": q }));
            }
            Reply::json(serde_json::json!({ "result": "ok", "topics": granted }))
        }
        _ => refused("not_allowed"),
    }
}

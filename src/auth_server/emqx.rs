//! EMQX 5's HTTP authenticator and HTTP authorizer (EMQX documentation, "Access Control" →
//! "Authentication" / "Authorization" → "HTTP Service"). EMQX sends a request built from a
//! template, as a JSON body (POST, recommended) or query parameters (GET), with placeholders such
//! as `${username}`, `${password}`, `${clientid}`, `${peerhost}`, `${topic}`, `${action}`
//! (`publish`/`subscribe`), `${qos}` and `${retain}`; mqsec reads the fields of the same names
//! (see docs/auth-server.md for the templates).
//!
//! Answers: HTTP 200 with `{"result": "allow"}` or `{"result": "deny"}` (authentication adds
//! `"is_superuser": false`: superusers bypass authorization, which mqsec never grants). mqsec never
//! answers `ignore`, nor an error status: EMQX treats both as "no opinion" and goes on down its
//! chain, which ends in allowing everything unless `no_match = deny` is set.
//!
//! A SUBSCRIBE is asked with `subscribe-all` (EMQX never checks each delivery): the whole filter
//! must be readable, at the requested QoS (EMQX cannot lower it on our behalf), and retained
//! messages must be allowed since EMQX sends them. Without `qos`/`retain` in the template, a
//! PUBLISH is asked for the most it could be (QoS 2, retained).

use zeroize::Zeroizing;

use super::http::{Caller, Input, Reply};
use super::{identity, AuthServer};
use crate::security::acl::Access;
use crate::security::password_gate::{Checked, Origin};

pub const ENDPOINTS: &[&str] = &["authn", "authz"];

pub fn refused() -> Reply {
    result("deny")
}

fn result(r: &str) -> Reply {
    Reply::json(serde_json::json!({ "result": r }))
}

/// `${qos}`: a number, or its text.
fn qos(input: &Input) -> Option<u8> {
    match input.get("qos") {
        None => Some(2),
        Some(q) => q.parse().ok().filter(|q| *q <= 2),
    }
}

/// `${retain}`: `true`/`false`, as JSON or text.
fn retain(input: &Input) -> Option<bool> {
    match input.get("retain").as_deref() {
        None => Some(true),
        Some("true") | Some("1") => Some(true),
        Some("false") | Some("0") => Some(false),
        Some(_) => None,
    }
}

pub async fn answer(
    server: &AuthServer,
    endpoint: &str,
    mut input: Input,
    caller: Caller,
) -> Reply {
    if let Input::Malformed(why) = &input {
        tracing::debug!(peer = %caller.peer, why, "malformed EMQX request");
        return refused();
    }
    let username = input.get("username").filter(|u| !u.is_empty());
    let client_id = input.get("clientid");
    let device = input.get("peerhost").and_then(|p| p.parse().ok());
    match endpoint {
        "authn" => {
            let (Some(user), Some(password)) = (username, input.take("password")) else {
                return refused();
            };
            let from = Origin {
                device,
                peer: Some(caller.peer),
                listener: None,
                client_id: client_id.as_deref(),
            };
            let password = Zeroizing::new(password.into_bytes());
            if server.login(&user, password, from).await == Checked::Valid {
                Reply::json(serde_json::json!({ "result": "allow", "is_superuser": false }))
            } else {
                refused()
            }
        }
        "authz" => {
            let (Some(topic), Some(action), Some(qos), Some(retain)) = (
                input.get("topic"),
                input.get("action"),
                qos(&input),
                retain(&input),
            ) else {
                return refused();
            };
            let who = identity(username.as_deref(), client_id.as_deref(), device);
            let allowed = match action.as_str() {
                "publish" => {
                    server
                        .authorize(&who, Access::Write, &topic, qos, retain)
                        .allowed
                }
                "subscribe" => {
                    let v = server.authorize(&who, Access::SubscribeAll, &topic, qos, true);
                    v.allowed && qos <= v.max_qos
                }
                _ => false,
            };
            result(if allowed { "allow" } else { "deny" })
        }
        _ => refused(),
    }
}

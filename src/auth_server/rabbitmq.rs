//! RabbitMQ's `rabbitmq_auth_backend_http` (RabbitMQ 3.10 and later; its README in
//! deps/rabbitmq_auth_backend_http of rabbitmq-server). Four endpoints, asked with GET query
//! parameters or a POST form (`auth_http.http_method`), answered with a plain-text body:
//! `allow` (for `/user`: `allow` followed by the user's tags, here none) or `deny`.
//!
//! - `user`: `username`, `password` → the password check of `serve`.
//! - `vhost`: `username`, `vhost`, `ip` → allowed for users of the password file (the ACL has no
//!   notion of virtual hosts).
//! - `resource`: `username`, `vhost`, `resource` (`exchange`, `queue`), `name`, `permission`
//!   (`configure`, `write`, `read`) → what the MQTT plugin needs and no more: read and write on
//!   the MQTT exchange, and its own subscription queues (`mqtt-subscription-*`). Topic rights are
//!   decided at `topic`.
//! - `topic`: the above with `resource=topic`, `name` = the exchange, `routing_key`, and
//!   `variable_map.client_id` / `variable_map.username` / `variable_map.vhost` → the ACL. The MQTT
//!   plugin turns a topic into a routing key by `/` → `.` and `+` → `*` (`#` stays); mqsec maps
//!   it back (`.` → `/`, `*` → `+`). So an MQTT topic that contains `.` is judged as if each `.`
//!   were a `/`, exactly as RabbitMQ routes it (`a.b` and `a/b` are one topic there).
//!   `permission=write` is a PUBLISH (and a will). `permission=read` is a SUBSCRIBE, asked with
//!   `subscribe-all`: RabbitMQ never asks again for each delivery, so the whole filter must be
//!   readable. The plugin sends neither QoS nor retain: the question is asked for the most it
//!   could be (QoS 1, RabbitMQ's MQTT maximum, and retained), so a rule's `max_qos=0` or
//!   `retain=false` is never exceeded through RabbitMQ (such a rule then grants nothing there).

use zeroize::Zeroizing;

use super::http::{Caller, Input, Reply};
use super::{identity, AuthServer};
use crate::security::acl::Access;
use crate::security::password_gate::{Checked, Origin};

pub const ENDPOINTS: &[&str] = &["user", "vhost", "resource", "topic"];

/// The highest QoS RabbitMQ's MQTT plugin (3.x) delivers or accepts: QoS 2 is downgraded to 1.
const MAX_QOS: u8 = 1;
/// The prefix of the queues the MQTT plugin declares for a client's subscriptions.
const SUBSCRIPTION_QUEUE_PREFIX: &str = "mqtt-subscription-";

pub fn refused() -> Reply {
    Reply::text("deny")
}

fn verdict(allowed: bool) -> Reply {
    Reply::text(if allowed { "allow" } else { "deny" })
}

pub async fn answer(
    server: &AuthServer,
    endpoint: &str,
    mut input: Input,
    caller: Caller,
) -> Reply {
    if let Input::Malformed(why) = &input {
        tracing::debug!(peer = %caller.peer, why, "malformed RabbitMQ request");
        return refused();
    }
    let Some(username) = input.get("username").filter(|u| !u.is_empty()) else {
        return refused();
    };
    match endpoint {
        "user" => {
            let Some(password) = input.take("password") else {
                return refused();
            };
            let password = Zeroizing::new(password.into_bytes());
            let from = Origin {
                device: None,
                peer: Some(caller.peer),
                listener: None,
                client_id: None,
            };
            verdict(server.login(&username, password, from).await == Checked::Valid)
        }
        "vhost" => verdict(server.known_user(&username)),
        "resource" => {
            let (Some(kind), Some(name), Some(permission)) = (
                input.get("resource"),
                input.get("name"),
                input.get("permission"),
            ) else {
                return refused();
            };
            verdict(
                server.known_user(&username) && resource_allowed(server, &kind, &name, &permission),
            )
        }
        "topic" => {
            let (Some(name), Some(permission), Some(key)) = (
                input.get("name"),
                input.get("permission"),
                input.get("routing_key"),
            ) else {
                return refused();
            };
            if input.get("resource").as_deref() != Some("topic")
                || name != server.settings().rabbitmq_exchange
            {
                return refused();
            }
            let access = match permission.as_str() {
                "write" => Access::Write,
                "read" => Access::SubscribeAll,
                _ => return refused(),
            };
            let client_id = input.get("variable_map.client_id");
            let who = identity(Some(&username), client_id.as_deref(), None);
            let topic = routing_key_to_topic(&key);
            let v = server.authorize(&who, access, &topic, MAX_QOS, true);
            verdict(v.allowed && v.max_qos >= MAX_QOS)
        }
        _ => refused(),
    }
}

fn resource_allowed(server: &AuthServer, kind: &str, name: &str, permission: &str) -> bool {
    match kind {
        "exchange" => {
            name == server.settings().rabbitmq_exchange && matches!(permission, "read" | "write")
        }
        "queue" => {
            name.starts_with(SUBSCRIPTION_QUEUE_PREFIX)
                && matches!(permission, "configure" | "read" | "write")
        }
        _ => false,
    }
}

/// An AMQP routing key (or binding key) of the MQTT plugin back to the MQTT topic (or filter).
pub fn routing_key_to_topic(key: &str) -> String {
    key.chars()
        .map(|c| match c {
            '.' => '/',
            '*' => '+',
            c => c,
        })
        .collect()
}

/// The MQTT plugin's own mapping, for tests and documentation.
pub fn topic_to_routing_key(topic: &str) -> String {
    topic
        .chars()
        .map(|c| match c {
            '/' => '.',
            '+' => '*',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_keys_map_back_to_topics() {
        assert_eq!(routing_key_to_topic("sensors.001.temp"), "sensors/001/temp");
        assert_eq!(routing_key_to_topic("sensors.*.temp"), "sensors/+/temp");
        assert_eq!(routing_key_to_topic("sensors.#"), "sensors/#");
        assert_eq!(topic_to_routing_key("sensors/+/temp"), "sensors.*.temp");
        for t in ["a/b/c", "a/+/c", "#", "a/#", "+"] {
            assert_eq!(routing_key_to_topic(&topic_to_routing_key(t)), t);
        }
        // A '.' in an MQTT topic is a level separator for RabbitMQ, and so for mqsec.
        assert_eq!(
            routing_key_to_topic(&topic_to_routing_key("a.b/c")),
            "a/b/c"
        );
    }
}

//! A published message as the broker holds it: shared (not copied) by every queue it is in, with
//! its memory cost counted once at creation.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::codec::{Properties, QoS};

/// One published message, shared (not copied) by every subscriber it goes to.
#[derive(Debug)]
pub struct Message {
    pub topic: Arc<str>,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// Forwarded v5 properties (payload format, content type, response topic, correlation data,
    /// user properties). Boxed: most messages carry none.
    pub properties: Option<Box<Properties>>,
    pub expires_at: Option<Instant>,
    /// The publishing client (for no-local); `None` for broker-made messages ($SYS).
    pub origin: Option<Arc<str>>,
    /// Bytes this message holds in memory (topic, payload, properties, the struct itself):
    /// what queue limits count, so user properties cannot hide behind a small payload.
    pub cost: usize,
}

impl Message {
    pub fn new(
        topic: Arc<str>,
        payload: Bytes,
        qos: QoS,
        retain: bool,
        properties: Properties,
        expires_at: Option<Instant>,
        origin: Option<Arc<str>>,
    ) -> Message {
        let props_cost = if properties.is_empty() {
            0
        } else {
            std::mem::size_of::<Properties>() + properties_heap(&properties)
        };
        // The Arc's two counters come with every shared message.
        let cost = std::mem::size_of::<Message>()
            + 2 * std::mem::size_of::<usize>()
            + topic.len()
            + payload.len()
            + props_cost;
        Message {
            topic,
            payload,
            qos,
            retain,
            properties: if properties.is_empty() {
                None
            } else {
                Some(Box::new(properties))
            },
            expires_at,
            origin,
            cost,
        }
    }

    pub fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    /// Remaining message expiry in whole seconds (at least 1 while not expired).
    pub fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        self.expires_at.map(|t| {
            let left = t.saturating_duration_since(now).as_secs_f64().ceil();
            left.clamp(1.0, f64::from(u32::MAX)) as u32
        })
    }
}

/// Heap bytes held by the forwarded properties of a message.
fn properties_heap(p: &Properties) -> usize {
    let s = |o: &Option<String>| o.as_ref().map_or(0, String::len);
    s(&p.content_type)
        + s(&p.response_topic)
        + p.correlation_data.as_ref().map_or(0, |b| b.len())
        + p.subscription_identifiers.len() * 4
        + p.user_properties
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2 * std::mem::size_of::<String>())
            .sum::<usize>()
}

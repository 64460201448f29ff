//! Broker counters and the `$SYS/broker/...` topics published every `sys_interval`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::codec::{Properties, QoS};
use super::core::Broker;
use super::session::Message;

/// Publish the current `$SYS` values (retained, as Mosquitto does).
pub fn publish_sys(b: &Broker, now: Instant) {
    let s = &b.stats;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed).to_string();
    let subs = b.subs.len().to_string();
    let items: [(&str, String); 15] = [
        (
            "$SYS/broker/version",
            format!("mqsec {}", env!("CARGO_PKG_VERSION")),
        ),
        (
            "$SYS/broker/uptime",
            format!("{} seconds", now.duration_since(b.started).as_secs()),
        ),
        ("$SYS/broker/clients/connected", load(&s.connected)),
        ("$SYS/broker/clients/parked", load(&s.parked)),
        ("$SYS/broker/clients/total", b.sessions.len().to_string()),
        ("$SYS/broker/messages/received", load(&s.messages_received)),
        ("$SYS/broker/messages/sent", load(&s.messages_sent)),
        ("$SYS/broker/messages/dropped", load(&s.dropped)),
        ("$SYS/broker/messages/dropped/qos0", load(&s.dropped_qos0)),
        ("$SYS/broker/clients/write-stalled", load(&s.write_stalls)),
        (
            "$SYS/broker/retained messages/refused",
            load(&s.retained_refused),
        ),
        ("$SYS/broker/bytes/received", load(&s.bytes_received)),
        ("$SYS/broker/bytes/sent", load(&s.bytes_sent)),
        ("$SYS/broker/subscriptions/count", subs),
        (
            "$SYS/broker/retained messages/count",
            b.store.retained_count().to_string(),
        ),
    ];
    for (topic, value) in items {
        let msg = Arc::new(Message::new(
            topic.into(),
            Bytes::from(value),
            QoS::AtMostOnce,
            true,
            Properties::default(),
            None,
            None,
        ));
        b.publish(&msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::auth::AllowAnonymous;
    use crate::broker::store::MemoryStore;

    #[test]
    fn sys_topics_are_retained() {
        let b = Broker::new(
            Arc::new(crate::config::defaults::embedded()),
            Arc::new(AllowAnonymous {
                clientid_prefixes: vec![],
            }),
            Arc::new(MemoryStore::new()),
        );
        b.stats.messages_received.fetch_add(3, Ordering::Relaxed);
        b.stats.retained_refused.fetch_add(2, Ordering::Relaxed);
        publish_sys(&b, Instant::now());
        let mut out = Vec::new();
        b.store
            .retained_matching("$SYS/broker/messages/received", &mut out);
        assert_eq!(&out[0].payload[..], b"3");
        out.clear();
        b.store
            .retained_matching("$SYS/broker/retained messages/refused", &mut out);
        assert_eq!(&out[0].payload[..], b"2");
        out.clear();
        b.store.retained_matching("$SYS/broker/version", &mut out);
        assert!(out[0].payload.starts_with(b"mqsec "));
    }
}

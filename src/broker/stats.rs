//! Broker counters: bumped on the hot paths (relaxed atomics), read by `$SYS` and tests.

use std::sync::atomic::AtomicU64;

#[derive(Debug, Default)]
pub struct Stats {
    pub connected: AtomicU64,
    /// Of those, connections parked while idle (no task: `connection::Lot`).
    pub parked: AtomicU64,
    pub total_connections: AtomicU64,
    pub messages_received: AtomicU64,
    pub messages_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    /// Deliveries refused by a queue limit or authorization.
    pub dropped: AtomicU64,
    /// Of those, QoS 0 deliveries (lost for good: nobody will resend them).
    pub dropped_qos0: AtomicU64,
    /// Connections closed because their client stopped reading (output made no progress for
    /// `write_stall_timeout`).
    pub write_stalls: AtomicU64,
    pub wills: AtomicU64,
    /// Retained messages refused by `max_retained_messages` / `max_retained_bytes`.
    pub retained_refused: AtomicU64,
}

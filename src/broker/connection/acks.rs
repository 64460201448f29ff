//! Acknowledgements that wait for the durable store: PUBACK/PUBREC of a publish that is being
//! recorded, PUBCOMP of a released QoS 2 id, PUBREL after a recorded PUBREC. They go in the order
//! their packets came (MQTT requires it for PUBACK), each once its batch is durable; the
//! connection meanwhile keeps serving other packets. The writer rings the connection's bell when
//! a batch is decided, so no future per acknowledgement is kept.

use std::collections::VecDeque;
use std::sync::Arc;

use super::{Close, Conn};
use crate::broker::codec::reason::v5;
use crate::broker::codec::{Packet, Properties, PubResp};
use crate::broker::durable::{Pending, PendingState};

/// Acknowledgements waiting at most per connection: past this the connection stops reading
/// until the store catches up.
pub(super) const MAX_WAITING_ACKS: usize = 4096;

/// Named as the MQTT packets they are.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy)]
pub(super) enum Ack {
    PubAck(u16, u8),
    PubRec(u16, u8),
    PubComp(u16, u8),
    PubRel(u16),
}

pub(super) struct Waiting {
    pending: Option<Arc<Pending>>,
    ack: Ack,
}

pub(super) type AckQueue = VecDeque<Waiting>;

impl<S: super::Io> Conn<'_, S> {
    /// Send `ack` once `pending` is durable (now, when there is nothing to wait for and nothing
    /// ahead of it).
    pub(super) fn queue_ack(&mut self, pending: Option<Arc<Pending>>, ack: Ack) {
        if pending.is_none() && self.acks.is_none() {
            self.send_ack(ack);
            return;
        }
        self.acks
            .get_or_insert_with(Box::default)
            .push_back(Waiting { pending, ack });
    }

    /// Whether reading must pause until the store catches up.
    pub(super) fn acks_full(&self) -> bool {
        self.acks
            .as_ref()
            .is_some_and(|q| q.len() >= MAX_WAITING_ACKS)
    }

    /// Send every acknowledgement at the front whose batch is decided. A batch that could not be
    /// written is never acknowledged as a success: v5 learns 0x97 (the publisher may retry), a v3
    /// client (which has no way to hear it) is disconnected, and it resends after reconnecting.
    pub(super) fn flush_acks(&mut self) -> Result<(), Close> {
        let Some(mut q) = self.acks.take() else {
            return Ok(());
        };
        let mut result = Ok(());
        while let Some(front) = q.front() {
            let state = front
                .pending
                .as_ref()
                .map_or(PendingState::Durable, |p| p.state());
            if state == PendingState::Waiting {
                break;
            }
            let Some(w) = q.pop_front() else { break };
            if state == PendingState::Durable {
                self.send_ack(w.ack);
                continue;
            }
            match w.ack {
                Ack::PubAck(pid, _) if self.v5() => {
                    self.send_ack(Ack::PubAck(pid, v5::QUOTA_EXCEEDED));
                }
                Ack::PubRec(pid, _) if self.v5() => {
                    // The exchange ends with the failure code: the id is free again.
                    self.link.session.release_qos2(pid);
                    self.send_ack(Ack::PubRec(pid, v5::QUOTA_EXCEEDED));
                }
                _ => {
                    tracing::debug!(client_id = ?self.client_id(), "closing connection: the store could not record what it would acknowledge");
                    self.send_disconnect(v5::UNSPECIFIED_ERROR);
                    result = Err(Close);
                    break;
                }
            }
        }
        if !q.is_empty() && result.is_ok() {
            self.acks = Some(q);
        }
        result
    }

    fn send_ack(&mut self, ack: Ack) {
        let resp = |packet_id, reason| PubResp {
            packet_id,
            reason,
            properties: Properties::default(),
        };
        let p = match ack {
            Ack::PubAck(pid, r) => Packet::PubAck(resp(pid, r)),
            Ack::PubRec(pid, r) => Packet::PubRec(resp(pid, r)),
            Ack::PubComp(pid, r) => Packet::PubComp(resp(pid, r)),
            Ack::PubRel(pid) => Packet::PubRel(resp(pid, 0)),
        };
        self.send(&p);
    }
}

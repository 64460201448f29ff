//! What the session has for the client: PUBLISH (with topic aliases, subscription identifiers,
//! remaining message expiry) and PUBREL, encoded into the write buffer.

use std::time::Instant;

use super::{Conn, WRITE_HIGH_WATER};
use crate::broker::codec::{encode_packet, encoded_len, Packet, Properties, PubResp, Publish};
use crate::broker::session::Outbound;
use std::sync::atomic::Ordering;

/// Deliveries taken from the session per lock.
const BATCH: usize = 64;

impl<S: super::Io> Conn<'_, S> {
    /// Take what the session has ready and encode it. False: this connection was replaced.
    pub(super) fn fill(&mut self) -> bool {
        let session = self.link.session.clone();
        // Locals, not fields: the connection future (the memory of every idle connection)
        // stays smaller, and a batch costs one allocation.
        let mut out = Vec::new();
        let mut done = Vec::new();
        let high = WRITE_HIGH_WATER.min(self.ctx.broker.config.limits.max_write_buffer);
        loop {
            out.clear();
            let budget = high.saturating_sub(self.t.wbuf.len());
            if !session.take_ready(self.link.epoch, BATCH, budget, &mut out, &mut done) {
                return false;
            }
            if !done.is_empty() {
                self.ctx.broker.delivered_without_ack(&session, &mut done);
            }
            let n = out.len();
            self.want_fill = false;
            for o in out.drain(..) {
                self.write_outbound(o);
            }
            // Nothing taken: the queue is empty or the window full (an enqueue or an ack rings
            // again). A dropped delivery (too large for the client) opened the window again.
            if n == 0 && !self.want_fill {
                break;
            }
            if self.t.wbuf.len() >= high {
                self.want_fill = true;
                break;
            }
        }
        true
    }

    pub(super) fn write_outbound(&mut self, o: Outbound) {
        let (d, packet_id, dup) = match o {
            Outbound::PubRel(pid) => {
                self.send(&Packet::PubRel(PubResp::ok(pid)));
                return;
            }
            Outbound::Publish {
                delivery,
                packet_id,
                dup,
            } => (delivery, packet_id, dup),
        };
        let mut props = Properties::default();
        let mut new_alias = None;
        // An alias the client already knows replaces the topic (sent empty); otherwise the
        // topic goes in full, with a newly assigned alias while slots remain.
        let mut known_alias = false;
        if self.v5() {
            if let Some(p) = &d.msg.properties {
                props = (**p).clone();
            }
            props.subscription_identifiers = d.sub_ids;
            if d.msg.expires_at.is_some() {
                props.message_expiry_interval = d.msg.remaining_expiry(Instant::now());
            }
            if self.client_alias_max > 0 {
                let out = &mut self.aliases.get_or_insert_with(Box::default).outbound;
                match out.get(&d.msg.topic) {
                    Some(a) => {
                        props.topic_alias = Some(*a);
                        known_alias = true;
                    }
                    None if out.len() < usize::from(self.client_alias_max) => {
                        let a = out.len() as u16 + 1;
                        props.topic_alias = Some(a);
                        new_alias = Some(a);
                    }
                    None => {}
                }
            }
        }
        let topic = if known_alias {
            String::new()
        } else {
            d.msg.topic.to_string()
        };
        let p = Packet::Publish(Publish {
            dup,
            qos: d.qos,
            retain: d.retain,
            topic,
            packet_id,
            properties: props,
            payload: d.msg.payload.clone(),
        });
        if self.t.peer_max != 0 {
            let max = self.t.peer_max;
            let fits = encoded_len(&p, self.version).is_ok_and(|n| n <= max as usize);
            if !fits {
                // The spec: a server must not send it, and behaves as if it had been delivered.
                if let Some(pid) = packet_id {
                    self.ctx.broker.drop_inflight(&self.link.session, pid);
                }
                self.ctx
                    .broker
                    .stats
                    .dropped
                    .fetch_add(1, Ordering::Relaxed);
                self.want_fill = true;
                return;
            }
        }
        if let Some(a) = new_alias {
            if let Some(al) = &mut self.aliases {
                al.outbound.insert(d.msg.topic.clone(), a);
            }
        }
        match encode_packet(&p, self.version, &mut self.t.wbuf) {
            Ok(()) => {
                self.ctx
                    .broker
                    .stats
                    .messages_sent
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "could not encode a PUBLISH for the client"),
        }
    }
}

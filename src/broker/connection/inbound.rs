//! Packets from the client: PUBLISH and its acknowledgements, SUBSCRIBE, UNSUBSCRIBE, PINGREQ,
//! DISCONNECT.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::acks::Ack;
use super::{forwarded, Close, Conn};
use crate::broker::auth::SubscribeDecision;
use crate::broker::codec::reason::{v3, v5};
use crate::broker::codec::{
    valid_topic_filter, valid_topic_name, Auth, Disconnect, Packet, Properties, PubResp, Publish,
    QoS, SubAck, Subscribe, UnsubAck, Unsubscribe,
};
use crate::broker::core::{Departure, SubscribeError};
use crate::broker::session::{AckKind, AckOutcome, IncomingQos2, Message, Session, NEVER_EXPIRES};
use crate::broker::topic::{is_sys_topic, parse_filter, topic_too_deep, FilterError, SubOpts};
use crate::config::model::DeniedPublish;
use crate::security::events::{self, Event};
use crate::security::tokens::AUTH_METHOD;

/// Payloads up to this are copied out of the read buffer: otherwise a small retained or queued
/// message would keep the whole read buffer it arrived in alive.
const COPY_PAYLOAD_BELOW: usize = 2048;

impl<S: super::Io> Conn<'_, S> {
    pub(super) fn handle(&mut self, p: Packet) -> Result<Option<Departure>, Close> {
        let session = self.link.session.clone();
        match p {
            Packet::Publish(p) => self.on_publish(p, &session),
            Packet::PubAck(r) => self.on_ack(&session, r.packet_id, AckKind::PubAck),
            Packet::PubRec(r) => {
                let kind = if r.reason >= 0x80 {
                    AckKind::PubRecFailed
                } else {
                    AckKind::PubRec
                };
                self.on_ack(&session, r.packet_id, kind)
            }
            Packet::PubRel(r) => {
                let pid = r.packet_id;
                let known = session.release_qos2(pid);
                let reason = if !known && self.v5() {
                    v5::PACKET_IDENTIFIER_NOT_FOUND
                } else {
                    0
                };
                let pending = if known {
                    let ctl = self.link.ctl.clone();
                    self.ctx.broker.incoming_qos2_released(&session, pid, &ctl)
                } else {
                    None
                };
                self.queue_ack(pending, Ack::PubComp(pid, reason));
                Ok(None)
            }
            Packet::PubComp(r) => self.on_ack(&session, r.packet_id, AckKind::PubComp),
            Packet::Subscribe(s) => self.on_subscribe(s, &session),
            Packet::Unsubscribe(u) => self.on_unsubscribe(u, &session),
            Packet::PingReq => {
                self.send(&Packet::PingResp);
                Ok(None)
            }
            Packet::Disconnect(d) => self.on_disconnect(d, &session),
            Packet::Auth(a) if self.v5() => self.on_reauth(a),
            _ => {
                // A second CONNECT, AUTH without an authentication method, or a server packet.
                self.send_disconnect(v5::PROTOCOL_ERROR);
                Err(Close)
            }
        }
    }

    /// MQTT 5 re-authentication (AUTH 0x19): only a client whose CONNECT used an authentication
    /// method may send AUTH, with the same method. Success is answered with AUTH 0x00 and moves
    /// the token's deadline; a refused token ends the connection (DISCONNECT 0x87, no will).
    fn on_reauth(&mut self, a: Auth) -> Result<Option<Departure>, Close> {
        let id = self.link.identity.clone();
        let enhanced = id.token().is_some_and(|t| t.enhanced());
        if !enhanced || a.reason != v5::RE_AUTHENTICATE {
            // AUTH without an authentication method in CONNECT, or a continuation of an
            // exchange the broker never started.
            self.send_disconnect(v5::PROTOCOL_ERROR);
            return Err(Close);
        }
        let method = a.properties.authentication_method.as_deref().unwrap_or("");
        if method != AUTH_METHOD {
            // MQTT-4.12.1-1: the method of a re-authentication is the one CONNECT used; 0x8C
            // is not a DISCONNECT code, so this is a protocol error.
            self.send_disconnect(v5::PROTOCOL_ERROR);
            return Err(Close);
        }
        let data = a.properties.authentication_data.as_deref().unwrap_or(&[]);
        let b = self.ctx.broker.clone();
        match b.auth.reauthenticate(&id, method, data) {
            Ok(until) => {
                if let Some(until) = until {
                    b.token_deadline(&self.link.ctl, until);
                }
                // The new token's claims may allow less: its subscriptions follow at once, as
                // after a reload (deliveries are checked one by one anyway).
                crate::broker::auth::recheck_session(
                    &b,
                    &self.link.session,
                    "after re-authentication",
                    &mut Default::default(),
                );
                tracing::info!(client_id = ?self.client_id(), "re-authenticated: token refreshed");
                if events::enabled() {
                    events::emit(Event::new("reauthenticated").who(&id));
                }
                self.send(&Packet::Auth(Auth {
                    reason: v5::SUCCESS,
                    properties: Properties {
                        authentication_method: Some(AUTH_METHOD.to_string()),
                        ..Properties::default()
                    },
                }));
                Ok(None)
            }
            Err(why) => {
                tracing::info!(client_id = ?self.client_id(), reason = why.as_str(), "re-authentication refused");
                if events::enabled() {
                    events::emit(
                        Event::new("reauth_refused")
                            .who(&id)
                            .reason(why)
                            .code(v5::NOT_AUTHORIZED),
                    );
                }
                self.send_disconnect(v5::NOT_AUTHORIZED);
                Ok(Some(Departure::Graceful { with_will: false }))
            }
        }
    }

    fn on_ack(
        &mut self,
        session: &Session,
        pid: u16,
        kind: AckKind,
    ) -> Result<Option<Departure>, Close> {
        let ctl = self.link.ctl.clone();
        let (outcome, pending) = self.ctx.broker.acknowledge(session, pid, kind, Some(&ctl));
        match outcome {
            AckOutcome::Completed(_) => self.want_fill = true,
            AckOutcome::Received(_) => self.queue_ack(pending, Ack::PubRel(pid)),
            AckOutcome::Unknown => {
                // A late duplicate PUBACK/PUBCOMP is harmless; a PUBREC for nothing gets the
                // PUBREL the spec asks for (v5 with 0x92).
                if kind == AckKind::PubRec {
                    let mut resp = PubResp::ok(pid);
                    if self.v5() {
                        resp.reason = v5::PACKET_IDENTIFIER_NOT_FOUND;
                    }
                    self.send(&Packet::PubRel(resp));
                }
            }
            AckOutcome::WrongType => {
                tracing::info!(client_id = ?self.client_id(), pid, ack = ?kind, "closing connection: acknowledgement of the wrong type for a message in flight");
                self.send_disconnect(v5::PROTOCOL_ERROR);
                return Err(Close);
            }
        }
        Ok(None)
    }

    fn on_publish(
        &mut self,
        p: Publish,
        session: &Arc<Session>,
    ) -> Result<Option<Departure>, Close> {
        let b = self.ctx.broker.clone();
        b.stats.messages_received.fetch_add(1, Ordering::Relaxed);
        let listener = &self.ctx.listener.config;
        let topic: Arc<str> = match p.properties.topic_alias {
            Some(a) => {
                if a == 0 || a > listener.max_topic_alias {
                    self.send_disconnect(v5::TOPIC_ALIAS_INVALID);
                    return Err(Close);
                }
                if p.topic.is_empty() {
                    match self.aliases.as_ref().and_then(|al| al.inbound.get(&a)) {
                        Some(t) => t.clone(),
                        None => {
                            self.send_disconnect(v5::PROTOCOL_ERROR);
                            return Err(Close);
                        }
                    }
                } else {
                    let t: Arc<str> = Arc::from(p.topic.as_str());
                    self.aliases
                        .get_or_insert_with(Box::default)
                        .inbound
                        .insert(a, t.clone());
                    t
                }
            }
            None => {
                if !valid_topic_name(&p.topic) {
                    self.send_disconnect(v5::TOPIC_NAME_INVALID);
                    return Err(Close);
                }
                Arc::from(p.topic.as_str())
            }
        };
        if topic_too_deep(&topic, b.config.limits.max_topic_levels) {
            self.send_disconnect(v5::TOPIC_NAME_INVALID);
            return Err(Close);
        }
        if p.qos as u8 > listener.max_qos {
            self.send_disconnect(v5::QOS_NOT_SUPPORTED);
            return Err(Close);
        }
        if p.retain && !b.config.limits.retain_available {
            self.send_disconnect(v5::RETAIN_NOT_SUPPORTED);
            return Err(Close);
        }
        let pid = p.packet_id.unwrap_or(0);
        if p.qos == QoS::ExactlyOnce {
            // v5 clients were told Receive Maximum: more is a protocol error. A v3 client was
            // told nothing, so it is not cut off; packet ids (16 bits) bound what it can hold.
            let max = if self.v5() {
                usize::from(b.config.limits.max_inflight_messages)
            } else {
                usize::MAX
            };
            match session.incoming_qos2(pid, max) {
                IncomingQos2::New => {}
                IncomingQos2::Duplicate => {
                    // A resent QoS 2 PUBLISH we already routed: acknowledge again (after the
                    // first acknowledgement), route nothing.
                    self.queue_ack(None, Ack::PubRec(pid, 0));
                    return Ok(None);
                }
                IncomingQos2::TooMany => {
                    self.send_disconnect(v5::RECEIVE_MAXIMUM_EXCEEDED);
                    return Err(Close);
                }
            }
        }
        if p.qos != QoS::AtMostOnce && !b.store_writable() {
            // The store failed (the writer logged why): a message that would not be kept is
            // never acknowledged. v5 hears quota exceeded; v3 has no refusal, so it is
            // disconnected and resends after reconnecting.
            if self.v5() {
                self.ack_publish(session, p.qos, pid, v5::QUOTA_EXCEEDED, false);
                return Ok(None);
            }
            tracing::debug!(client_id = ?self.client_id(), "closing connection: QoS 1/2 PUBLISH while the store cannot write");
            return Err(Close);
        }
        let refused = if p.payload.len() > b.config.limits.message_size_limit as usize {
            // 0x95 is not a valid PUBACK/PUBREC code; "an administrative limit was exceeded" is.
            tracing::info!(client_id = ?self.client_id(), size = p.payload.len(), "PUBLISH refused: payload above message_size_limit");
            Some(v5::QUOTA_EXCEEDED)
        } else if topic.len() > b.config.limits.max_topic_length {
            tracing::info!(client_id = ?self.client_id(), length = topic.len(), "PUBLISH refused: topic above max_topic_length");
            Some(v5::QUOTA_EXCEEDED)
        } else if is_sys_topic(&topic) {
            Some(v5::NOT_AUTHORIZED)
        } else {
            match b.auth.publish(&self.link.identity, &topic, p.qos, p.retain) {
                true => None,
                false => Some(v5::NOT_AUTHORIZED),
            }
        };
        if let Some(code) = refused {
            if code == v5::NOT_AUTHORIZED
                && b.config.security.denied_publish == DeniedPublish::Disconnect
            {
                self.send_disconnect(v5::NOT_AUTHORIZED);
                return Err(Close);
            }
            // The connection stays; v5 learns why, v3 gets a plain ack (Mosquitto does the same).
            let reason = if self.v5() { code } else { 0 };
            // A v5 PUBREC with a failure code ends the exchange; v3's plain PUBREC leaves it open
            // like an accepted one, so the id is remembered the same way.
            let remember = !self.v5();
            self.ack_publish(session, p.qos, pid, reason, remember);
            return Ok(None);
        }
        let expires_at = p
            .properties
            .message_expiry_interval
            .and_then(|s| Instant::now().checked_add(Duration::from_secs(u64::from(s))));
        let payload = if p.payload.len() < COPY_PAYLOAD_BELOW {
            Bytes::copy_from_slice(&p.payload)
        } else {
            p.payload
        };
        let props = if self.v5() {
            forwarded(&p.properties)
        } else {
            Properties::default()
        };
        let msg = Arc::new(Message::new(
            topic,
            payload,
            p.qos,
            p.retain,
            props,
            expires_at,
            Some(self.client_id().clone()),
        ));
        if msg.retain
            && !msg.payload.is_empty()
            && b.config.limits.retain_available
            && !b.retain_allowed(&msg)
        {
            // Over the retained quota: refused as a whole (not routed without being kept), so
            // the publisher's 0x97 means nothing happened.
            tracing::info!(client_id = ?self.client_id(), topic = &*msg.topic, "PUBLISH refused: max_retained_messages or max_retained_bytes reached");
            b.stats.retained_refused.fetch_add(1, Ordering::Relaxed);
            let reason = if self.v5() { v5::QUOTA_EXCEEDED } else { 0 };
            self.ack_publish(session, p.qos, pid, reason, !self.v5());
            return Ok(None);
        }
        // A QoS 2 id is recorded in the same batch as the message, and remembered with it (a
        // resend is a duplicate, unless that batch failed).
        let mut ops = Vec::new();
        if p.qos == QoS::ExactlyOnce {
            ops.extend(b.incoming_qos2_op(session, pid));
        }
        let ctl = self.link.ctl.clone();
        let published = b.publish_with(&msg, Some(&ctl), ops);
        if p.qos == QoS::ExactlyOnce {
            session.remember_qos2(pid, published.pending.clone());
        }
        let reason = if self.v5() && published.delivered == 0 {
            v5::NO_MATCHING_SUBSCRIBERS
        } else {
            0
        };
        match p.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.queue_ack(published.pending, Ack::PubAck(pid, reason)),
            QoS::ExactlyOnce => self.queue_ack(published.pending, Ack::PubRec(pid, reason)),
        }
        Ok(None)
    }

    /// PUBACK or PUBREC for a QoS 1/2 PUBLISH that is not routed. `remember` records a QoS 2
    /// packet id, so that a resend is acknowledged again without being routed.
    fn ack_publish(&mut self, session: &Session, qos: QoS, pid: u16, reason: u8, remember: bool) {
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.queue_ack(None, Ack::PubAck(pid, reason)),
            QoS::ExactlyOnce => {
                if remember {
                    session.remember_qos2(pid, None);
                }
                self.queue_ack(None, Ack::PubRec(pid, reason));
            }
        }
    }

    fn on_subscribe(
        &mut self,
        s: Subscribe,
        session: &Arc<Session>,
    ) -> Result<Option<Departure>, Close> {
        let b = self.ctx.broker.clone();
        let sub_id = s.properties.subscription_identifiers.first().copied();
        let mut codes = Vec::with_capacity(s.filters.len());
        let mut retained = Vec::new();
        let fail = |v5: bool, code: u8| if v5 { code } else { v3::SUBACK_FAILURE };
        let limits = &b.config.limits;
        if !b.config.sys_interval.is_zero() && s.filters.iter().any(|f| is_sys_topic(&f.filter)) {
            // `$SYS` values are retained snapshots: bring them up to date before they are sent
            // (before the new subscriptions exist, so they arrive once, as retained messages).
            crate::broker::sys::publish_sys(&b, Instant::now());
        }
        let cap = limits.max_filters_per_subscribe;
        if cap != 0 && s.filters.len() > cap {
            tracing::info!(client_id = ?self.client_id(), filters = s.filters.len(), max = cap, "SUBSCRIBE: filters beyond max_filters_per_subscribe refused");
        }
        for (i, req) in s.filters.iter().enumerate() {
            if cap != 0 && i >= cap {
                codes.push(fail(self.v5(), v5::QUOTA_EXCEEDED));
                continue;
            }
            if req.filter.len() > limits.max_topic_length {
                tracing::info!(client_id = ?self.client_id(), length = req.filter.len(), "subscription refused: filter above max_topic_length");
                codes.push(fail(self.v5(), v5::QUOTA_EXCEEDED));
                continue;
            }
            if !valid_topic_filter(&req.filter) {
                codes.push(fail(self.v5(), v5::TOPIC_FILTER_INVALID));
                continue;
            }
            let f = match parse_filter(&req.filter, b.config.limits.max_topic_levels) {
                Ok(f) => f,
                Err(FilterError::Invalid) => {
                    codes.push(fail(self.v5(), v5::TOPIC_FILTER_INVALID));
                    continue;
                }
                Err(FilterError::TooDeep) => {
                    // As Mosquitto answers a filter deeper than its hierarchy limit: the
                    // connection ends (v5 DISCONNECT 0x81 first).
                    tracing::info!(client_id = ?self.client_id(), "closing connection: subscription filter deeper than max_topic_levels");
                    self.send_disconnect(v5::MALFORMED_PACKET);
                    return Err(Close);
                }
            };
            if f.share_group.is_some() && req.options.no_local {
                self.send_disconnect(v5::PROTOCOL_ERROR);
                return Err(Close);
            }
            let max_qos =
                QoS::from_u8(self.ctx.listener.config.max_qos).unwrap_or(QoS::ExactlyOnce);
            let asked = req.options.qos.min(max_qos);
            let granted =
                match b
                    .auth
                    .subscribe(&self.link.identity, f.filter, f.share_group, asked)
                {
                    SubscribeDecision::Granted(q) => Some(q.min(asked)),
                    SubscribeDecision::Denied => None,
                };
            let Some(qos) = granted else {
                codes.push(fail(self.v5(), v5::NOT_AUTHORIZED));
                continue;
            };
            let max_subs = limits.max_subscriptions_per_client;
            if max_subs != 0
                && session.subscription_count() >= max_subs
                && !session.has_subscription(&req.filter)
            {
                tracing::info!(client_id = ?self.client_id(), max_subs, "subscription refused: max_subscriptions_per_client reached");
                codes.push(fail(self.v5(), v5::QUOTA_EXCEEDED));
                continue;
            }
            let mut options = req.options;
            options.qos = qos;
            let opts = SubOpts {
                options,
                subscription_id: sub_id,
            };
            let new = match b.subscribe(session, self.link.epoch, &req.filter, &f, opts) {
                Ok(new) => new,
                // Taken over meanwhile: the session is no longer this connection's.
                Err(SubscribeError::TakenOver) => return Ok(Some(Departure::TakenOver)),
                Err(SubscribeError::SharedGroupQuota) => {
                    tracing::info!(client_id = ?self.client_id(), "subscription refused: max_shared_groups reached");
                    codes.push(fail(self.v5(), v5::QUOTA_EXCEEDED));
                    continue;
                }
            };
            let send_retained = match options.retain_handling {
                0 => true,
                1 => new,
                _ => false,
            };
            // Retained messages are not sent to shared subscriptions.
            if send_retained && f.share_group.is_none() {
                retained.push((f.filter, qos));
            }
            codes.push(qos as u8);
        }
        self.send(&Packet::SubAck(SubAck {
            packet_id: s.packet_id,
            reason_codes: codes,
            properties: Properties::default(),
        }));
        for (filter, qos) in retained {
            b.send_retained(session, filter, qos, sub_id);
        }
        self.want_fill = true;
        b.save_session(session);
        Ok(None)
    }

    fn on_unsubscribe(
        &mut self,
        u: Unsubscribe,
        session: &Arc<Session>,
    ) -> Result<Option<Departure>, Close> {
        let b = self.ctx.broker.clone();
        let mut codes = Vec::with_capacity(u.filters.len());
        for f in &u.filters {
            if !valid_topic_filter(f) || parse_filter(f, usize::MAX).is_err() {
                codes.push(v5::TOPIC_FILTER_INVALID);
                continue;
            }
            let existed = b.unsubscribe(session, f);
            codes.push(if existed {
                v5::SUCCESS
            } else {
                v5::NO_SUBSCRIPTION_EXISTED
            });
        }
        let reason_codes = if self.v5() { codes } else { Vec::new() };
        self.send(&Packet::UnsubAck(UnsubAck {
            packet_id: u.packet_id,
            reason_codes,
            properties: Properties::default(),
        }));
        b.save_session(session);
        Ok(None)
    }

    fn on_disconnect(
        &mut self,
        d: Disconnect,
        session: &Arc<Session>,
    ) -> Result<Option<Departure>, Close> {
        if self.v5() {
            if let Some(e) = d.properties.session_expiry_interval {
                if self.link.connect_expiry == 0 && e != 0 {
                    self.send_disconnect(v5::PROTOCOL_ERROR);
                    return Err(Close);
                }
                let mut e = e;
                if let Some(cap) = self.ctx.broker.config.limits.persistent_client_expiration {
                    e = e.min(u32::try_from(cap.as_secs()).unwrap_or(NEVER_EXPIRES - 1));
                }
                session.set_expiry(e);
            }
        }
        Ok(Some(Departure::Graceful {
            with_will: self.v5() && d.reason == v5::DISCONNECT_WITH_WILL_MESSAGE,
        }))
    }
}

//! The publish path: topic -> matching sessions (one delivery per
//! client, at the highest subscribed QoS, carrying every subscription identifier), retained
//! messages and wills.

use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::codec::QoS;
use super::core::Broker;
use super::durable::{Batch, Op, Pending};
use super::session::{ConnCtl, Message, Refused, Session, Will};
use super::topic::{delivery_qos, is_sys_topic, Match};

/// What a publish left to wait for.
pub struct Published {
    /// Clients it was queued for.
    pub delivered: usize,
    /// Set when the durable store records the publish (a retained update, a copy for a
    /// persistent session): its PUBACK/PUBREC waits until this is durable.
    pub pending: Option<Arc<Pending>>,
}

impl Broker {
    /// Route one message nobody waits for (wills, `$SYS`). Returns how many clients it was
    /// queued for.
    pub fn publish(&self, msg: &Arc<Message>) -> usize {
        self.publish_with(msg, None, Vec::new()).delivered
    }

    /// Route one message. With persistence, the retained update, every copy queued for a
    /// persistent session and `ops` (the publisher's own QoS 2 state) go to the store as one
    /// batch; `notify` is woken when it is durable.
    pub fn publish_with(
        &self,
        msg: &Arc<Message>,
        notify: Option<&Arc<ConnCtl>>,
        mut ops: Vec<Op>,
    ) -> Published {
        let pending = self.durable.as_ref().map(|_| Pending::new());
        if msg.retain && self.config.limits.retain_available {
            let kept = (!msg.payload.is_empty()).then(|| msg.clone());
            if kept.is_some() && !self.retain_allowed(msg) {
                // A will or a broker message over the quota: delivered live, not kept.
                self.stats.retained_refused.fetch_add(1, Ordering::Relaxed);
                tracing::info!(topic = &*msg.topic, "retained message not kept: max_retained_messages or max_retained_bytes reached");
            } else {
                if self.durable.is_some() && !is_sys_topic(&msg.topic) {
                    ops.push(Op::Retain {
                        topic: msg.topic.clone(),
                        msg: kept.clone(),
                    });
                }
                self.store.set_retained(&msg.topic, kept);
            }
        }
        let delivered = self.fan_out(msg, pending.as_ref(), &mut ops);
        let pending = self.submit(ops, pending, notify);
        Published { delivered, pending }
    }

    /// Hand a publish's ops to the durable store; the `Pending` to wait for, if there was
    /// anything to record.
    fn submit(
        &self,
        ops: Vec<Op>,
        pending: Option<Arc<Pending>>,
        notify: Option<&Arc<ConnCtl>>,
    ) -> Option<Arc<Pending>> {
        let d = self.durable.as_ref()?;
        if ops.is_empty() {
            return None;
        }
        d.submit(Batch {
            ops,
            pending: pending.clone(),
            notify: notify.cloned(),
        });
        pending
    }

    fn fan_out(
        &self,
        msg: &Arc<Message>,
        pending: Option<&Arc<Pending>>,
        ops: &mut Vec<Op>,
    ) -> usize {
        let mut matches: Vec<Match<Arc<Session>>> = Vec::new();
        // A shared group's message goes to a member that is online and may read it; one the ACL
        // refuses is passed over for the next (no session's lock is held while asking).
        self.subs.matches_with(
            &msg.topic,
            |s, opts, group| {
                s.online_owner().is_some_and(|who| {
                    let qos = delivery_qos(msg.qos, opts.options.qos);
                    let retain = opts.options.retain_as_published && msg.retain;
                    self.auth
                        .deliver(&who, &msg.topic, qos, retain, Some(group))
                })
            },
            &mut matches,
        );
        if matches.is_empty() {
            return 0;
        }
        if matches.len() > 1 {
            // Group each client's non-shared matches together; shared ones stand alone.
            matches.sort_by_key(|m| (m.shared, Arc::as_ptr(&m.target) as usize));
        }
        let mut delivered = 0;
        let mut i = 0;
        while i < matches.len() {
            let m = &matches[i];
            if m.shared {
                if self.deliver(
                    &m.target,
                    msg,
                    (m.opts.options.qos, m.opts.options.retain_as_published),
                    opt_vec(m.opts.subscription_id),
                    m.group.as_deref(),
                    pending,
                    ops,
                ) {
                    delivered += 1;
                }
                i += 1;
                continue;
            }
            let mut j = i;
            let mut qos: Option<QoS> = None;
            let mut rap = false;
            let mut ids = Vec::new();
            while j < matches.len()
                && !matches[j].shared
                && Arc::ptr_eq(&matches[j].target, &m.target)
            {
                let o = &matches[j].opts;
                let own =
                    o.options.no_local && msg.origin.as_deref() == Some(&*matches[j].client_id);
                if !own {
                    qos = Some(qos.map_or(o.options.qos, |q| q.max(o.options.qos)));
                    rap |= o.options.retain_as_published;
                    if let Some(id) = o.subscription_id {
                        ids.push(id);
                    }
                }
                j += 1;
            }
            if let Some(q) = qos {
                if self.deliver(&m.target, msg, (q, rap), ids, None, pending, ops) {
                    delivered += 1;
                }
            }
            i = j;
        }
        delivered
    }

    /// Whether keeping `msg` as its topic's retained message stays within
    /// `max_retained_messages` and `max_retained_bytes` (a replacement counts as its size change).
    pub fn retain_allowed(&self, msg: &Message) -> bool {
        let l = &self.config.limits;
        let exists = || self.store.has_retained(&msg.topic);
        let count_ok = l.max_retained_messages == 0
            || self.store.retained_count() < l.max_retained_messages
            || exists();
        let bytes_ok = l.max_retained_bytes == 0
            || self.store.retained_bytes() + msg.cost <= l.max_retained_bytes;
        count_ok && bytes_ok
    }

    #[allow(clippy::too_many_arguments)]
    /// Queue `msg` for `s` at the subscription's (QoS, retain as published), authorized for
    /// `group` when it comes through a shared subscription.
    fn deliver(
        &self,
        s: &Arc<Session>,
        msg: &Arc<Message>,
        (sub_qos, rap): (QoS, bool),
        ids: Vec<u32>,
        group: Option<&str>,
        pending: Option<&Arc<Pending>>,
        ops: &mut Vec<Op>,
    ) -> bool {
        let qos = delivery_qos(msg.qos, sub_qos);
        let retain = rap && msg.retain;
        let r = s.enqueue(msg, qos, retain, ids, &self.config.limits, pending, |who| {
            self.auth.deliver(who, &msg.topic, qos, retain, group)
        });
        match r {
            Ok(Some(stored)) => {
                self.store
                    .message_queued(&s.client_id, stored.delivery.seq, msg, qos);
                ops.push(Op::Queue {
                    session: s.clone(),
                    stored,
                });
                true
            }
            Ok(None) => true,
            Err(why) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                if why == Refused::QueueFull && qos == QoS::AtMostOnce {
                    self.stats.dropped_qos0.fetch_add(1, Ordering::Relaxed);
                }
                false
            }
        }
    }

    /// Queue the retained messages matching a new subscription. `filter` is the one the caller
    /// already parsed, without a `$share/` prefix (shared subscriptions get no retained messages).
    /// Stops at the first message the session's queue has no room for: the rest would be
    /// dropped too, and a `#` over a large store must not cost a lookup of every message.
    pub fn send_retained(&self, s: &Arc<Session>, filter: &str, sub_qos: QoS, sub_id: Option<u32>) {
        let pending = self.durable.as_ref().map(|_| Pending::new());
        let mut ops = Vec::new();
        self.store.visit_retained(filter, &mut |msg| {
            let qos = delivery_qos(msg.qos, sub_qos);
            let r = s.enqueue(
                msg,
                qos,
                true,
                opt_vec(sub_id),
                &self.config.limits,
                pending.as_ref(),
                |who| self.auth.deliver(who, &msg.topic, qos, true, None),
            );
            match r {
                Ok(Some(stored)) => {
                    ops.push(Op::Queue {
                        session: s.clone(),
                        stored,
                    });
                    ControlFlow::Continue(())
                }
                // A full queue takes no more: the lookup stops (its cost is bounded by what
                // can be delivered).
                Err(Refused::QueueFull | Refused::Ended) => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        });
        self.submit(ops, pending, None);
    }

    /// Send a will now (its publisher's authorization was checked when the will was accepted).
    /// Send a will now. Its publisher's write permission is asked again: the ACL may have been
    /// reloaded since the will was accepted (each subscriber's read permission is asked on
    /// delivery, as for any message).
    pub fn publish_will(&self, will: &Will) {
        if let Some(owner) = &will.owner {
            let m = &will.msg;
            if !self.auth.publish(owner, &m.topic, m.qos, m.retain) {
                tracing::info!(client_id = ?owner.client_id, topic = &*m.topic, "will not sent: its publisher may no longer write to its topic");
                return;
            }
        }
        self.stats.wills.fetch_add(1, Ordering::Relaxed);
        self.publish(&will.msg);
    }
}

fn opt_vec(id: Option<u32>) -> Vec<u32> {
    id.map(|i| vec![i]).unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::broker::auth::AllowAnonymous;
    use crate::broker::codec::{Properties, ProtocolVersion, SubscriptionOptions};
    use crate::broker::core::{AttachRequest, Attached, Departure};
    use crate::broker::session::{Attachment, ConnCtl, Epoch, Outbound};
    use crate::broker::store::MemoryStore;
    use crate::broker::topic::{parse_filter, SubOpts};
    use crate::security::identity::Identity;
    use bytes::Bytes;

    pub(crate) fn broker() -> Broker {
        Broker::new(
            Arc::new(crate::config::defaults::embedded()),
            Arc::new(AllowAnonymous {
                clientid_prefixes: vec![],
            }),
            Arc::new(MemoryStore::new()),
        )
    }

    /// Attach a v5 client the way a connection does.
    pub(crate) fn connect(
        b: &Broker,
        id: &str,
        clean_start: bool,
        expiry: u32,
        will: Option<Will>,
    ) -> Attached {
        b.attach(AttachRequest {
            client_id: id.into(),
            identity: Arc::new(Identity::anonymous(id)),
            clean_start,
            attachment: Attachment {
                ctl: Arc::new(ConnCtl::default()),
                identity: Arc::new(Identity::anonymous(id)),
                version: ProtocolVersion::V5,
                window: 20,
                expiry,
                will,
            },
            keep_alive: 0,
        })
        .unwrap()
    }

    fn client(b: &Broker, id: &str) -> Arc<Session> {
        connect(b, id, true, 0, None).session
    }

    fn sub(b: &Broker, s: &Arc<Session>, filter: &str, qos: QoS, no_local: bool, id: Option<u32>) {
        let f = parse_filter(filter, 200).unwrap();
        let opts = SubOpts {
            options: SubscriptionOptions {
                qos,
                no_local,
                ..Default::default()
            },
            subscription_id: id,
        };
        let added = s.subscribe(None, filter, opts, || {
            Some(b.subs.subscribe(&f, &s.client_id, s.clone(), opts))
        });
        assert_eq!(added, Some(Some(true)));
    }

    pub(crate) fn msg(topic: &str, qos: QoS, retain: bool, origin: Option<&str>) -> Arc<Message> {
        Arc::new(Message::new(
            topic.into(),
            Bytes::from_static(b"p"),
            qos,
            retain,
            Properties::default(),
            None,
            origin.map(Arc::from),
        ))
    }

    pub(crate) fn drain(s: &Session, epoch: Epoch) -> Vec<(QoS, Vec<u32>)> {
        let (mut out, mut done) = (Vec::new(), Vec::new());
        s.take_ready(epoch, 1000, usize::MAX, &mut out, &mut done);
        out.into_iter()
            .filter_map(|o| match o {
                Outbound::Publish { delivery, .. } => Some((delivery.qos, delivery.sub_ids)),
                Outbound::PubRel(_) => None,
            })
            .collect()
    }

    #[test]
    fn overlapping_subscriptions_deliver_once_at_max_qos() {
        let b = broker();
        let a = client(&b, "a");
        sub(&b, &a, "x/+", QoS::AtMostOnce, false, Some(1));
        sub(&b, &a, "x/#", QoS::ExactlyOnce, false, Some(2));
        assert_eq!(b.publish(&msg("x/y", QoS::ExactlyOnce, false, None)), 1);
        let got = drain(&a, 1);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, QoS::ExactlyOnce);
        let mut ids = got[0].1.clone();
        ids.sort();
        assert_eq!(ids, vec![1, 2]);
    }

    #[test]
    fn no_local_and_retained() {
        let b = broker();
        let a = client(&b, "a");
        sub(&b, &a, "t", QoS::AtLeastOnce, true, None);
        assert_eq!(b.publish(&msg("t", QoS::AtLeastOnce, true, Some("a"))), 0);
        assert_eq!(b.store.retained_count(), 1);
        let c = client(&b, "c");
        b.send_retained(&c, "#", QoS::AtMostOnce, None);
        assert_eq!(drain(&c, 1).len(), 1);
        b.publish(&Arc::new(Message::new(
            "t".into(),
            Bytes::new(),
            QoS::AtMostOnce,
            true,
            Properties::default(),
            None,
            None,
        )));
        assert_eq!(b.store.retained_count(), 0);
    }

    #[test]
    fn session_end_removes_subscriptions_and_sends_delayed_will() {
        let b = broker();
        let w = client(&b, "watcher");
        sub(&b, &w, "will/#", QoS::AtMostOnce, false, None);
        let will = Will {
            msg: msg("will/a", QoS::AtMostOnce, false, Some("a")),
            delay: 3600,
            owner: None,
        };
        let a = connect(&b, "a", true, 0, Some(will));
        sub(&b, &a.session, "x", QoS::AtMostOnce, false, None);
        assert_eq!(b.subs.len(), 2);
        b.detach(&a.session, a.epoch, Departure::Abnormal);
        assert!(b.sessions.get("a").is_none(), "expiry 0 ends at once");
        assert_eq!(b.subs.len(), 1, "only the watcher's subscription is left");
        assert_eq!(
            drain(&w, 1).len(),
            1,
            "will sent when the session ends first"
        );
    }

    /// Writes to `closed/...` are refused, and client `blind` may read nothing; everything else
    /// is allowed (an ACL reloaded while a will waits; a shared-group member the ACL refuses).
    struct ClosedTopics;

    impl crate::broker::auth::Authorizer for ClosedTopics {
        fn connect(
            &self,
            req: crate::broker::auth::ConnectRequest,
        ) -> crate::broker::auth::ConnectFuture {
            let id = Identity::anonymous(req.client_id);
            Box::pin(std::future::ready(
                crate::broker::auth::ConnectDecision::Allow(id),
            ))
        }
        fn publish(&self, _who: &Identity, topic: &str, _qos: QoS, _retain: bool) -> bool {
            !topic.starts_with("closed/")
        }
        fn subscribe(
            &self,
            _who: &Identity,
            _filter: &str,
            _share_group: Option<&str>,
            qos: QoS,
        ) -> crate::broker::auth::SubscribeDecision {
            crate::broker::auth::SubscribeDecision::Granted(qos)
        }
        fn deliver(
            &self,
            who: &Identity,
            _topic: &str,
            _qos: QoS,
            _retain: bool,
            _share_group: Option<&str>,
        ) -> bool {
            &*who.client_id != "blind"
        }
    }

    #[test]
    fn a_shared_group_member_the_acl_refuses_is_passed_over() {
        let b = Broker::new(
            Arc::new(crate::config::defaults::embedded()),
            Arc::new(ClosedTopics),
            Arc::new(MemoryStore::new()),
        );
        let blind = client(&b, "blind");
        let sees = client(&b, "sees");
        sub(&b, &blind, "$share/g/job", QoS::AtMostOnce, false, None);
        sub(&b, &sees, "$share/g/job", QoS::AtMostOnce, false, None);
        for _ in 0..4 {
            assert_eq!(b.publish(&msg("job", QoS::AtMostOnce, false, None)), 1);
        }
        assert_eq!(
            drain(&sees, 1).len(),
            4,
            "every job reaches the member that may read it"
        );
        assert!(drain(&blind, 1).is_empty());
    }

    #[test]
    fn a_will_is_sent_only_if_its_publisher_may_still_write() {
        let b = Broker::new(
            Arc::new(crate::config::defaults::embedded()),
            Arc::new(ClosedTopics),
            Arc::new(MemoryStore::new()),
        );
        let w = client(&b, "watcher");
        sub(&b, &w, "#", QoS::AtMostOnce, false, None);
        let owner = Some(Arc::new(Identity::anonymous("dev")));
        for (topic, sent) in [("open/w", 1), ("closed/w", 0)] {
            b.publish_will(&Will {
                msg: msg(topic, QoS::AtMostOnce, false, Some("dev")),
                delay: 0,
                owner: owner.clone(),
            });
            assert_eq!(drain(&w, 1).len(), sent, "{topic}");
        }
    }
}

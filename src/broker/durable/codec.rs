//! The bytes of each stored value: a session image, a queued delivery, a retained message.
//!
//! Big-endian fixed-width integers and length-prefixed strings; message properties use the
//! MQTT 5 PUBLISH property encoding of the broker's own codec (one definition of what a
//! forwarded property is). Every read is bounds-checked: a damaged value is an error that stops
//! the start, never a panic. A change here needs a new `FORMAT_VERSION` in `redb_store`.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use super::clock;
use super::{SessionImage, StoredDelivery};
use crate::broker::codec::properties::{self, PropertyContext};
use crate::broker::codec::read::Reader;
use crate::broker::codec::{DecodeError, ProtocolVersion, QoS, SubscriptionOptions};
use crate::broker::session::{Delivery, Message, Will};
use crate::broker::store::SessionRecord;
use crate::broker::topic::SubOpts;
use crate::security::identity::{AuthMethod, Identity};

/// Stage byte of a queued delivery (the first byte of its value, rewritten in place).
pub const STAGE_QUEUED: u8 = 0;
/// A QoS 2 delivery whose PUBREC came: a restart sends PUBREL.
pub const STAGE_RELEASED: u8 = 1;

type R<T> = Result<T, DecodeError>;

fn put_str(b: &mut BytesMut, s: &str) {
    b.put_u32(s.len() as u32);
    b.put_slice(s.as_bytes());
}

fn put_opt_str(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => {
            b.put_u8(1);
            put_str(b, s);
        }
        None => b.put_u8(0),
    }
}

fn get_u64(r: &mut Reader) -> R<u64> {
    let hi = r.u32()?;
    let lo = r.u32()?;
    Ok((u64::from(hi) << 32) | u64::from(lo))
}

fn get_bytes(r: &mut Reader) -> R<Bytes> {
    let n = r.u32()? as usize;
    r.take(n)
}

fn get_str(r: &mut Reader) -> R<String> {
    String::from_utf8(get_bytes(r)?.to_vec())
        .map_err(|_| DecodeError::Malformed("stored string is not UTF-8"))
}

fn get_opt_str(r: &mut Reader) -> R<Option<String>> {
    match r.u8()? {
        0 => Ok(None),
        _ => Ok(Some(get_str(r)?)),
    }
}

fn get_qos(r: &mut Reader) -> R<QoS> {
    QoS::from_u8(r.u8()?).ok_or(DecodeError::Malformed("stored QoS out of range"))
}

/// A message: topic, QoS, retain, expiry (wall clock, 0 = none), origin, properties, payload.
pub fn put_message(b: &mut BytesMut, m: &Message) {
    put_str(b, &m.topic);
    b.put_u8(m.qos as u8);
    b.put_u8(u8::from(m.retain));
    b.put_u64(m.expires_at.map_or(0, |t| clock::wall_ms(t).max(1)));
    put_opt_str(b, m.origin.as_deref());
    let props = m.properties.as_deref().cloned().unwrap_or_default();
    // Properties that were accepted from a client always encode again.
    if properties::encode_block(&props, PropertyContext::Publish, b).is_err() {
        properties::encode_block(&Default::default(), PropertyContext::Publish, b)
            .unwrap_or_default();
    }
    b.put_u32(m.payload.len() as u32);
    b.put_slice(&m.payload);
}

/// The message and its expiry as a wall-clock time (None: it never expires).
pub fn get_message(r: &mut Reader) -> R<(Message, Option<u64>)> {
    let topic = get_str(r)?;
    let qos = get_qos(r)?;
    let retain = r.u8()? != 0;
    let expires = get_u64(r)?;
    let origin = get_opt_str(r)?;
    let props = properties::decode(r, PropertyContext::Publish)?;
    let payload = get_bytes(r)?;
    let expires = (expires != 0).then_some(expires);
    Ok((
        Message::new(
            Arc::from(topic),
            payload,
            qos,
            retain,
            props,
            expires.map(clock::instant_at),
            origin.map(Arc::from),
        ),
        expires,
    ))
}

pub fn retained_value(m: &Message) -> Vec<u8> {
    let mut b = BytesMut::with_capacity(64 + m.topic.len() + m.payload.len());
    put_message(&mut b, m);
    b.to_vec()
}

pub fn get_retained(v: &[u8]) -> R<(Message, Option<u64>)> {
    let mut r = Reader::new(Bytes::copy_from_slice(v));
    let m = get_message(&mut r)?;
    r.finish()?;
    Ok(m)
}

/// A queued delivery: stage (first byte), generation, packet id, QoS, retain, subscription
/// identifiers, the message.
pub fn row_value(d: &StoredDelivery) -> Vec<u8> {
    let dl = &d.delivery;
    let mut b = BytesMut::with_capacity(64 + dl.msg.topic.len() + dl.msg.payload.len());
    b.put_u8(STAGE_QUEUED);
    b.put_u64(d.gen);
    b.put_u16(dl.pid.unwrap_or(0));
    b.put_u8(dl.qos as u8);
    b.put_u8(u8::from(dl.retain));
    b.put_u32(dl.sub_ids.len() as u32);
    for id in &dl.sub_ids {
        b.put_u32(*id);
    }
    put_message(&mut b, &dl.msg);
    b.to_vec()
}

/// A stored queued delivery.
pub struct Row {
    pub stage: u8,
    pub gen: u64,
    pub delivery: Delivery,
    /// The message's expiry, wall clock.
    pub expires: Option<u64>,
}

pub fn get_row(seq: u64, v: &[u8]) -> R<Row> {
    let mut r = Reader::new(Bytes::copy_from_slice(v));
    let stage = r.u8()?;
    if stage > STAGE_RELEASED {
        return Err(DecodeError::Malformed("stored delivery stage out of range"));
    }
    let gen = get_u64(&mut r)?;
    let pid = r.u16()?;
    if pid == 0 {
        return Err(DecodeError::Malformed(
            "stored delivery without a packet id",
        ));
    }
    let qos = get_qos(&mut r)?;
    let retain = r.u8()? != 0;
    let n = r.u32()? as usize;
    if n > r.remaining() / 4 {
        return Err(DecodeError::Malformed("stored subscription identifiers"));
    }
    let mut sub_ids = Vec::with_capacity(n);
    for _ in 0..n {
        sub_ids.push(r.u32()?);
    }
    let (msg, expires) = get_message(&mut r)?;
    r.finish()?;
    Ok(Row {
        stage,
        gen,
        delivery: Delivery {
            msg: Arc::new(msg),
            qos,
            retain,
            sub_ids,
            seq,
            pid: Some(pid),
            pending: None,
        },
        expires,
    })
}

fn put_identity(b: &mut BytesMut, id: &Identity) {
    put_str(b, &id.client_id);
    put_opt_str(b, id.username.as_deref());
    put_opt_str(b, id.cert_subject());
    b.put_u32(id.roles().len() as u32);
    for r in id.roles() {
        put_str(b, r);
    }
    b.put_u8(match id.auth {
        AuthMethod::Anonymous => 0,
        AuthMethod::Password => 1,
        AuthMethod::Certificate => 2,
        AuthMethod::Token => 3,
    });
    match id.listener_port() {
        Some(p) => {
            b.put_u8(1);
            b.put_u16(p);
        }
        None => b.put_u8(0),
    }
}

fn get_identity(r: &mut Reader) -> R<Identity> {
    let client_id = get_str(r)?;
    let username = get_opt_str(r)?;
    let cert_subject = get_opt_str(r)?;
    let n = r.u32()? as usize;
    if n > r.remaining() / 4 {
        return Err(DecodeError::Malformed("stored roles"));
    }
    let mut roles = Vec::with_capacity(n);
    for _ in 0..n {
        roles.push(get_str(r)?);
    }
    let auth = match r.u8()? {
        0 => AuthMethod::Anonymous,
        1 => AuthMethod::Password,
        2 => AuthMethod::Certificate,
        3 => AuthMethod::Token,
        _ => return Err(DecodeError::Malformed("stored authentication method")),
    };
    let listener_port = match r.u8()? {
        0 => None,
        _ => Some(r.u16()?),
    };
    // No address, certificate or token (never stored; see `Identity::token`), and no listener
    // index: a restored identity is judged by the listener of its port (security::policy).
    let mut id = Identity::anonymous(client_id);
    id.username = username.map(String::into_boxed_str);
    id.auth = auth;
    id.set_cert_subject(cert_subject);
    id.set_roles(roles);
    if let Some(p) = listener_port {
        id.set_listener_port(p);
    }
    Ok(id)
}

/// A session image: generation, next seq, protocol, expiry, offline since, owner,
/// subscriptions, will.
pub fn session_value(img: &SessionImage) -> Vec<u8> {
    let rec = &img.record;
    let mut b = BytesMut::with_capacity(128);
    b.put_u64(img.gen);
    b.put_u64(img.next_seq);
    b.put_u8(img.version.level());
    b.put_u32(rec.expiry_interval);
    b.put_u64(img.offline_since.unwrap_or(0));
    match &rec.owner {
        Some(id) => {
            b.put_u8(1);
            put_identity(&mut b, id);
        }
        None => b.put_u8(0),
    }
    b.put_u32(rec.subscriptions.len() as u32);
    for (f, o) in &rec.subscriptions {
        put_str(&mut b, f);
        b.put_u8(o.options.qos as u8);
        b.put_u8(u8::from(o.options.no_local) | (u8::from(o.options.retain_as_published) << 1));
        b.put_u8(o.options.retain_handling);
        match o.subscription_id {
            Some(id) => {
                b.put_u8(1);
                b.put_u32(id);
            }
            None => b.put_u8(0),
        }
    }
    match &img.will {
        Some(w) => {
            b.put_u8(1);
            b.put_u32(w.delay);
            b.put_u64(img.will_due.unwrap_or(0));
            put_message(&mut b, &w.msg);
        }
        None => b.put_u8(0),
    }
    b.to_vec()
}

pub fn get_session(client_id: &str, v: &[u8]) -> R<SessionImage> {
    let mut r = Reader::new(Bytes::copy_from_slice(v));
    let gen = get_u64(&mut r)?;
    let next_seq = get_u64(&mut r)?;
    let version = match r.u8()? {
        3 => ProtocolVersion::V31,
        4 => ProtocolVersion::V311,
        5 => ProtocolVersion::V5,
        _ => return Err(DecodeError::Malformed("stored protocol version")),
    };
    let expiry_interval = r.u32()?;
    let offline = get_u64(&mut r)?;
    let owner = match r.u8()? {
        0 => None,
        _ => Some(get_identity(&mut r)?),
    };
    let n = r.u32()? as usize;
    if n > r.remaining() / 8 {
        return Err(DecodeError::Malformed("stored subscriptions"));
    }
    let mut subscriptions = Vec::with_capacity(n);
    for _ in 0..n {
        let f = get_str(&mut r)?;
        let qos = get_qos(&mut r)?;
        let flags = r.u8()?;
        let retain_handling = r.u8()?;
        let subscription_id = match r.u8()? {
            0 => None,
            _ => Some(r.u32()?),
        };
        subscriptions.push((
            f,
            SubOpts {
                options: SubscriptionOptions {
                    qos,
                    no_local: flags & 1 != 0,
                    retain_as_published: flags & 2 != 0,
                    retain_handling,
                },
                subscription_id,
            },
        ));
    }
    let (will, will_due) = match r.u8()? {
        0 => (None, None),
        _ => {
            let delay = r.u32()?;
            let due = get_u64(&mut r)?;
            let (msg, _) = get_message(&mut r)?;
            (
                Some(Will {
                    msg: Arc::new(msg),
                    delay,
                    owner: None,
                }),
                (due != 0).then_some(due),
            )
        }
    };
    r.finish()?;
    Ok(SessionImage {
        record: SessionRecord {
            client_id: client_id.to_string(),
            owner,
            expiry_interval,
            subscriptions,
        },
        gen,
        next_seq,
        version,
        offline_since: (offline != 0).then_some(offline),
        will,
        will_due,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::codec::Properties;
    use std::time::{Duration, Instant};

    fn message() -> Message {
        Message::new(
            "a/b".into(),
            Bytes::from_static(b"payload"),
            QoS::ExactlyOnce,
            true,
            Properties {
                content_type: Some("text/plain".into()),
                user_properties: vec![("k".into(), "v".into())],
                correlation_data: Some(Bytes::from_static(b"c")),
                ..Properties::default()
            },
            Some(Instant::now() + Duration::from_secs(60)),
            Some("pub".into()),
        )
    }

    #[test]
    fn a_delivery_round_trips() {
        let d = StoredDelivery {
            gen: 77,
            delivery: Delivery {
                msg: Arc::new(message()),
                qos: QoS::AtLeastOnce,
                retain: false,
                sub_ids: vec![3, 9],
                seq: 5,
                pid: Some(12),
                pending: None,
            },
        };
        let row = get_row(5, &row_value(&d)).unwrap();
        assert_eq!(row.stage, STAGE_QUEUED);
        assert_eq!(row.gen, 77);
        let got = row.delivery;
        assert_eq!((got.seq, got.pid, got.qos), (5, Some(12), QoS::AtLeastOnce));
        assert_eq!(got.sub_ids, vec![3, 9]);
        assert_eq!(&*got.msg.topic, "a/b");
        assert_eq!(&got.msg.payload[..], b"payload");
        assert_eq!(got.msg.origin.as_deref(), Some("pub"));
        let p = got.msg.properties.as_deref().unwrap();
        assert_eq!(p.content_type.as_deref(), Some("text/plain"));
        assert_eq!(p.user_properties, vec![("k".into(), "v".into())]);
        let left = got.msg.remaining_expiry(Instant::now()).unwrap();
        assert!((58..=60).contains(&left), "{left}");
    }

    #[test]
    fn a_session_image_round_trips() {
        let img = SessionImage {
            record: SessionRecord {
                client_id: "c".into(),
                owner: Some({
                    let mut id = Identity::with_username("c", "alice")
                        .with_cert_subject(Some("CN=x".into()))
                        .with_roles(vec!["r".into()]);
                    id.set_listener_port(8883);
                    id
                }),
                expiry_interval: 3600,
                subscriptions: vec![(
                    "a/#".into(),
                    SubOpts {
                        options: SubscriptionOptions {
                            qos: QoS::ExactlyOnce,
                            no_local: true,
                            retain_as_published: false,
                            retain_handling: 2,
                        },
                        subscription_id: Some(4),
                    },
                )],
            },
            gen: 1,
            next_seq: 99,
            version: ProtocolVersion::V5,
            offline_since: Some(1_700_000_000_000),
            will: Some(Will {
                msg: Arc::new(message()),
                delay: 30,
                owner: None,
            }),
            will_due: Some(1_700_000_030_000),
        };
        let back = get_session("c", &session_value(&img)).unwrap();
        assert_eq!(back.record, img.record);
        assert_eq!(back.next_seq, 99);
        assert_eq!(back.offline_since, img.offline_since);
        assert_eq!(back.will_due, img.will_due);
        assert_eq!(back.will.unwrap().delay, 30);
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        let d = StoredDelivery {
            gen: 1,
            delivery: Delivery {
                msg: Arc::new(message()),
                qos: QoS::AtLeastOnce,
                retain: false,
                sub_ids: vec![],
                seq: 1,
                pid: Some(1),
                pending: None,
            },
        };
        let v = row_value(&d);
        for cut in 0..v.len() {
            assert!(get_row(1, &v[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = v.clone();
        flipped[0] = 9;
        assert!(get_row(1, &flipped).is_err());
    }

    proptest::proptest! {
        /// What is read back from disk is untrusted too: any bytes give a value or an error.
        #[test]
        fn arbitrary_bytes_never_panic(v in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = get_row(1, &v);
            let _ = get_session("c", &v);
            let _ = get_retained(&v);
        }
    }
}

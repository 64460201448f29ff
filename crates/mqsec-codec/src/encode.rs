//! Packets -> bytes. One body writer serves both the size computation and the real write (via the
//! `Sink` trait), so `encoded_len` can never disagree with what `encode_packet` emits.

use bytes::{BufMut, BytesMut};

use super::error::EncodeError;
use super::packet::*;
use super::properties::{self, PropertyContext};
use super::varint::{self, MAX_VARINT};

/// Where encoded bytes go: a buffer, or a counter that only measures.
pub(crate) trait Sink {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_slice(&mut self, s: &[u8]);
}

#[derive(Debug, Default)]
pub(crate) struct Counter(pub usize);

impl Sink for Counter {
    fn put_u8(&mut self, _: u8) {
        self.0 += 1;
    }
    fn put_u16(&mut self, _: u16) {
        self.0 += 2;
    }
    fn put_u32(&mut self, _: u32) {
        self.0 += 4;
    }
    fn put_slice(&mut self, s: &[u8]) {
        self.0 += s.len();
    }
}

impl Sink for BytesMut {
    fn put_u8(&mut self, v: u8) {
        BufMut::put_u8(self, v)
    }
    fn put_u16(&mut self, v: u16) {
        BufMut::put_u16(self, v)
    }
    fn put_u32(&mut self, v: u32) {
        BufMut::put_u32(self, v)
    }
    fn put_slice(&mut self, s: &[u8]) {
        BufMut::put_slice(self, s)
    }
}

/// `None` when `v` exceeds the variable byte integer range.
pub(crate) fn put_varint<S: Sink>(s: &mut S, v: u32) -> Option<()> {
    let mut b = [0u8; 4];
    let n = varint::write(v, &mut b)?;
    s.put_slice(&b[..n]);
    Some(())
}

pub(crate) fn put_binary<S: Sink>(
    s: &mut S,
    b: &[u8],
    field: &'static str,
) -> Result<(), EncodeError> {
    let len = u16::try_from(b.len()).map_err(|_| EncodeError::FieldTooLong {
        field,
        len: b.len(),
    })?;
    s.put_u16(len);
    s.put_slice(b);
    Ok(())
}

pub(crate) fn put_str<S: Sink>(s: &mut S, v: &str, field: &'static str) -> Result<(), EncodeError> {
    put_binary(s, v.as_bytes(), field)
}

fn first_byte(p: &Packet) -> u8 {
    let flags = match p {
        Packet::Publish(x) => (u8::from(x.dup) << 3) | ((x.qos as u8) << 1) | u8::from(x.retain),
        Packet::PubRel(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => 0b0010,
        _ => 0,
    };
    (p.packet_type() << 4) | flags
}

fn body_len(p: &Packet, v: ProtocolVersion) -> Result<u32, EncodeError> {
    let mut c = Counter::default();
    write_body(p, v, &mut c)?;
    match u32::try_from(c.0) {
        Ok(n) if n <= MAX_VARINT => Ok(n),
        _ => Err(EncodeError::PacketTooLarge(c.0)),
    }
}

/// The size of the whole packet on the wire (fixed header included), as `encode_packet` would
/// write it: compare with a peer's Maximum Packet Size before sending.
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> Result<usize, EncodeError> {
    let rl = body_len(packet, version)?;
    // `body_len` guarantees `rl <= MAX_VARINT`, so `varint::len` is `Some`.
    let n = varint::len(rl).ok_or(EncodeError::PacketTooLarge(rl as usize))?;
    Ok(1 + n + rl as usize)
}

/// Appends `packet` as `version` puts it on the wire. Fields the version does not have (v5
/// properties and reason codes in v3) are left out. On error nothing is appended.
pub fn encode_packet(
    packet: &Packet,
    version: ProtocolVersion,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let rl = body_len(packet, version)?;
    out.reserve(5 + rl as usize);
    Sink::put_u8(out, first_byte(packet));
    put_varint(out, rl).ok_or(EncodeError::PacketTooLarge(rl as usize))?;
    write_body(packet, version, out)
}

fn write_body<S: Sink>(p: &Packet, v: ProtocolVersion, s: &mut S) -> Result<(), EncodeError> {
    let v5 = v.is_v5();
    match p {
        Packet::Connect(c) => connect(c, v, s)?,
        Packet::ConnAck(c) => {
            s.put_u8(u8::from(c.session_present));
            s.put_u8(c.code);
            if v5 {
                properties::encode(&c.properties, PropertyContext::ConnAck, s)?;
            }
        }
        Packet::Publish(x) => {
            put_str(s, &x.topic, "topic name")?;
            if x.qos != QoS::AtMostOnce {
                let id = x
                    .packet_id
                    .ok_or(EncodeError::Invalid("QoS 1/2 PUBLISH without a packet id"))?;
                s.put_u16(id);
            }
            if v5 {
                properties::encode(&x.properties, PropertyContext::Publish, s)?;
            }
            s.put_slice(&x.payload);
        }
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            s.put_u16(r.packet_id);
            if v5 {
                reason_and_props(r.reason, &r.properties, PropertyContext::PubResp, s)?;
            }
        }
        Packet::Subscribe(x) => {
            s.put_u16(x.packet_id);
            if v5 {
                properties::encode(&x.properties, PropertyContext::Subscribe, s)?;
            }
            for f in &x.filters {
                put_str(s, &f.filter, "topic filter")?;
                let o = &f.options;
                let mut b = o.qos as u8;
                if v5 {
                    if o.retain_handling > 2 {
                        return Err(EncodeError::Invalid("retain handling above 2"));
                    }
                    b |= (u8::from(o.no_local) << 2)
                        | (u8::from(o.retain_as_published) << 3)
                        | (o.retain_handling << 4);
                }
                s.put_u8(b);
            }
        }
        Packet::SubAck(x) => {
            s.put_u16(x.packet_id);
            if v5 {
                properties::encode(&x.properties, PropertyContext::SubAck, s)?;
            }
            s.put_slice(&x.reason_codes);
        }
        Packet::Unsubscribe(x) => {
            s.put_u16(x.packet_id);
            if v5 {
                properties::encode(&x.properties, PropertyContext::Unsubscribe, s)?;
            }
            for f in &x.filters {
                put_str(s, f, "topic filter")?;
            }
        }
        Packet::UnsubAck(x) => {
            s.put_u16(x.packet_id);
            if v5 {
                properties::encode(&x.properties, PropertyContext::UnsubAck, s)?;
                s.put_slice(&x.reason_codes);
            }
        }
        Packet::PingReq | Packet::PingResp => {}
        Packet::Disconnect(d) => {
            if v5 {
                reason_and_props(d.reason, &d.properties, PropertyContext::Disconnect, s)?;
            }
        }
        Packet::Auth(a) => {
            if !v5 {
                return Err(EncodeError::Invalid("AUTH exists only in MQTT 5"));
            }
            reason_and_props(a.reason, &a.properties, PropertyContext::Auth, s)?;
        }
    }
    Ok(())
}

/// The v5 tail of acks, DISCONNECT and AUTH: both parts may be omitted when they are the
/// defaults (reason 0, no properties), and the spec lets the sender use that shortest form.
fn reason_and_props<S: Sink>(
    reason: u8,
    props: &Properties,
    ctx: PropertyContext,
    s: &mut S,
) -> Result<(), EncodeError> {
    let no_props = props.is_empty();
    if reason == 0 && no_props {
        return Ok(());
    }
    s.put_u8(reason);
    if !no_props {
        properties::encode(props, ctx, s)?;
    }
    Ok(())
}

fn connect<S: Sink>(c: &Connect, v: ProtocolVersion, s: &mut S) -> Result<(), EncodeError> {
    if c.protocol != v {
        return Err(EncodeError::Invalid(
            "CONNECT protocol differs from the version it is encoded for",
        ));
    }
    let name = if v == ProtocolVersion::V31 {
        "MQIsdp"
    } else {
        "MQTT"
    };
    put_str(s, name, "protocol name")?;
    s.put_u8(v.level());
    let mut flags = u8::from(c.clean_start) << 1;
    if let Some(w) = &c.will {
        flags |= 0b100 | ((w.qos as u8) << 3) | (u8::from(w.retain) << 5);
    }
    if c.password.is_some() {
        flags |= 0x40;
    }
    if c.username.is_some() {
        flags |= 0x80;
    }
    s.put_u8(flags);
    s.put_u16(c.keep_alive);
    if v.is_v5() {
        properties::encode(&c.properties, PropertyContext::Connect, s)?;
    }
    put_str(s, &c.client_id, "client identifier")?;
    if let Some(w) = &c.will {
        if v.is_v5() {
            properties::encode(&w.properties, PropertyContext::Will, s)?;
        }
        put_str(s, &w.topic, "will topic")?;
        put_binary(s, &w.payload, "will payload")?;
    }
    if let Some(u) = &c.username {
        put_str(s, u, "user name")?;
    }
    if let Some(p) = &c.password {
        put_binary(s, p, "password")?;
    }
    Ok(())
}

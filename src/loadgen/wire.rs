//! TEMPORARY: a minimal hand encoder/decoder for the packets the load generator uses, until
//! `broker::codec` has `encode_packet`/`decode_packet`. Replaced by the codec before merge.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::LoadError;
use crate::broker::codec::*;

fn put_str(out: &mut BytesMut, s: &str) {
    out.put_u16(s.len() as u16);
    out.put_slice(s.as_bytes());
}

fn put_varint(out: &mut BytesMut, mut n: usize) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.put_u8(b);
        if n == 0 {
            break;
        }
    }
}

pub(crate) fn encode(p: &Packet, v: ProtocolVersion, out: &mut BytesMut) -> Result<(), LoadError> {
    let v5 = v.is_v5();
    let mut body = BytesMut::new();
    let first: u8 = match p {
        Packet::Connect(c) => {
            put_str(&mut body, "MQTT");
            body.put_u8(v.level());
            body.put_u8(if c.clean_start { 0x02 } else { 0 });
            body.put_u16(c.keep_alive);
            if v5 {
                body.put_u8(0);
            }
            put_str(&mut body, &c.client_id);
            0x10
        }
        Packet::Publish(p) => {
            put_str(&mut body, &p.topic);
            if let Some(id) = p.packet_id {
                body.put_u16(id);
            }
            if v5 {
                body.put_u8(0);
            }
            body.put_slice(&p.payload);
            0x30 | (u8::from(p.dup) << 3) | ((p.qos as u8) << 1) | u8::from(p.retain)
        }
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            body.put_u16(r.packet_id);
            match p {
                Packet::PubAck(_) => 0x40,
                Packet::PubRec(_) => 0x50,
                Packet::PubRel(_) => 0x62,
                _ => 0x70,
            }
        }
        Packet::Subscribe(s) => {
            body.put_u16(s.packet_id);
            if v5 {
                body.put_u8(0);
            }
            for f in &s.filters {
                put_str(&mut body, &f.filter);
                body.put_u8(f.options.qos as u8);
            }
            0x82
        }
        Packet::PingReq => 0xC0,
        Packet::Disconnect(_) => 0xE0,
        _ => return Err(LoadError::Protocol("cannot encode".into())),
    };
    out.put_u8(first);
    put_varint(out, body.len());
    out.put_slice(&body);
    Ok(())
}

fn get_str(b: &mut Bytes) -> Result<String, LoadError> {
    if b.len() < 2 {
        return Err(LoadError::Protocol("short string".into()));
    }
    let n = b.get_u16() as usize;
    if b.len() < n {
        return Err(LoadError::Protocol("short string".into()));
    }
    String::from_utf8(b.split_to(n).to_vec()).map_err(|_| LoadError::Protocol("utf8".into()))
}

fn skip_props(b: &mut Bytes) -> Result<(), LoadError> {
    let mut n = 0usize;
    let mut shift = 0;
    loop {
        if b.is_empty() {
            return Err(LoadError::Protocol("short props".into()));
        }
        let x = b.get_u8();
        n |= ((x & 0x7f) as usize) << shift;
        shift += 7;
        if x & 0x80 == 0 {
            break;
        }
    }
    if b.len() < n {
        return Err(LoadError::Protocol("short props".into()));
    }
    b.advance(n);
    Ok(())
}

pub(crate) fn decode(buf: &mut BytesMut, v: ProtocolVersion) -> Result<Option<Packet>, LoadError> {
    let v5 = v.is_v5();
    let mut len = 0usize;
    let mut i = 1;
    loop {
        if buf.len() <= i {
            return Ok(None);
        }
        let x = buf[i];
        len |= ((x & 0x7f) as usize) << (7 * (i - 1));
        i += 1;
        if x & 0x80 == 0 {
            break;
        }
        if i > 4 {
            return Err(LoadError::Protocol("bad length".into()));
        }
    }
    if buf.len() < i + len {
        return Ok(None);
    }
    let first = buf[0];
    buf.advance(i);
    let mut b = buf.split_to(len).freeze();
    let short = || LoadError::Protocol("short packet".into());
    let p = match first >> 4 {
        2 => {
            if b.len() < 2 {
                return Err(short());
            }
            let flags = b.get_u8();
            let code = b.get_u8();
            Packet::ConnAck(ConnAck {
                session_present: flags & 1 == 1,
                code,
                properties: Properties::default(),
            })
        }
        3 => {
            let qos = QoS::from_u8((first >> 1) & 3).ok_or_else(short)?;
            let topic = get_str(&mut b)?;
            let packet_id = if qos != QoS::AtMostOnce {
                if b.len() < 2 {
                    return Err(short());
                }
                Some(b.get_u16())
            } else {
                None
            };
            if v5 {
                skip_props(&mut b)?;
            }
            Packet::Publish(Publish {
                dup: first & 8 != 0,
                qos,
                retain: first & 1 != 0,
                topic,
                packet_id,
                properties: Properties::default(),
                payload: b,
            })
        }
        4..=7 => {
            if b.len() < 2 {
                return Err(short());
            }
            let r = PubResp::ok(b.get_u16());
            match first >> 4 {
                4 => Packet::PubAck(r),
                5 => Packet::PubRec(r),
                6 => Packet::PubRel(r),
                _ => Packet::PubComp(r),
            }
        }
        9 => {
            if b.len() < 2 {
                return Err(short());
            }
            let packet_id = b.get_u16();
            if v5 {
                skip_props(&mut b)?;
            }
            Packet::SubAck(SubAck {
                packet_id,
                reason_codes: b.to_vec(),
                properties: Properties::default(),
            })
        }
        13 => Packet::PingResp,
        14 => Packet::Disconnect(Disconnect::default()),
        t => return Err(LoadError::Protocol(format!("unexpected packet type {t}"))),
    };
    Ok(Some(p))
}

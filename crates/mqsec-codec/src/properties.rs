//! MQTT 5 properties: identifiers, which packet types may carry each, and their wire form.

use super::encode::{put_binary, put_str, put_varint, Counter, Sink};
use super::error::{DecodeError, EncodeError};
use super::packet::Properties;
use super::read::Reader;
use super::varint::MAX_VARINT;

pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
pub const CONTENT_TYPE: u8 = 0x03;
pub const RESPONSE_TOPIC: u8 = 0x08;
pub const CORRELATION_DATA: u8 = 0x09;
pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
pub const SERVER_KEEP_ALIVE: u8 = 0x13;
pub const AUTHENTICATION_METHOD: u8 = 0x15;
pub const AUTHENTICATION_DATA: u8 = 0x16;
pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
pub const WILL_DELAY_INTERVAL: u8 = 0x18;
pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
pub const RESPONSE_INFORMATION: u8 = 0x1A;
pub const SERVER_REFERENCE: u8 = 0x1C;
pub const REASON_STRING: u8 = 0x1F;
pub const RECEIVE_MAXIMUM: u8 = 0x21;
pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
pub const TOPIC_ALIAS: u8 = 0x23;
pub const MAXIMUM_QOS: u8 = 0x24;
pub const RETAIN_AVAILABLE: u8 = 0x25;
pub const USER_PROPERTY: u8 = 0x26;
pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;

/// Where a property block sits: each place has its own allowlist (MQTT 5 table 2-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyContext {
    Connect,
    /// The will properties inside CONNECT's payload.
    Will,
    ConnAck,
    Publish,
    /// PUBACK, PUBREC, PUBREL, PUBCOMP.
    PubResp,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

const fn bits(ids: &[u8]) -> u64 {
    let mut m = 0u64;
    let mut i = 0;
    while i < ids.len() {
        m |= 1 << ids[i];
        i += 1;
    }
    m
}

impl PropertyContext {
    /// Bit `id` is set when property `id` may appear here.
    pub const fn allowed(self) -> u64 {
        match self {
            PropertyContext::Connect => bits(&[
                SESSION_EXPIRY_INTERVAL,
                AUTHENTICATION_METHOD,
                AUTHENTICATION_DATA,
                REQUEST_PROBLEM_INFORMATION,
                REQUEST_RESPONSE_INFORMATION,
                RECEIVE_MAXIMUM,
                TOPIC_ALIAS_MAXIMUM,
                USER_PROPERTY,
                MAXIMUM_PACKET_SIZE,
            ]),
            PropertyContext::Will => bits(&[
                PAYLOAD_FORMAT_INDICATOR,
                MESSAGE_EXPIRY_INTERVAL,
                CONTENT_TYPE,
                RESPONSE_TOPIC,
                CORRELATION_DATA,
                WILL_DELAY_INTERVAL,
                USER_PROPERTY,
            ]),
            PropertyContext::ConnAck => bits(&[
                SESSION_EXPIRY_INTERVAL,
                ASSIGNED_CLIENT_IDENTIFIER,
                SERVER_KEEP_ALIVE,
                AUTHENTICATION_METHOD,
                AUTHENTICATION_DATA,
                RESPONSE_INFORMATION,
                SERVER_REFERENCE,
                REASON_STRING,
                RECEIVE_MAXIMUM,
                TOPIC_ALIAS_MAXIMUM,
                MAXIMUM_QOS,
                RETAIN_AVAILABLE,
                USER_PROPERTY,
                MAXIMUM_PACKET_SIZE,
                WILDCARD_SUBSCRIPTION_AVAILABLE,
                SUBSCRIPTION_IDENTIFIER_AVAILABLE,
                SHARED_SUBSCRIPTION_AVAILABLE,
            ]),
            PropertyContext::Publish => bits(&[
                PAYLOAD_FORMAT_INDICATOR,
                MESSAGE_EXPIRY_INTERVAL,
                CONTENT_TYPE,
                RESPONSE_TOPIC,
                CORRELATION_DATA,
                SUBSCRIPTION_IDENTIFIER,
                TOPIC_ALIAS,
                USER_PROPERTY,
            ]),
            PropertyContext::PubResp | PropertyContext::SubAck | PropertyContext::UnsubAck => {
                bits(&[REASON_STRING, USER_PROPERTY])
            }
            PropertyContext::Subscribe => bits(&[SUBSCRIPTION_IDENTIFIER, USER_PROPERTY]),
            PropertyContext::Unsubscribe => bits(&[USER_PROPERTY]),
            PropertyContext::Disconnect => bits(&[
                SESSION_EXPIRY_INTERVAL,
                SERVER_REFERENCE,
                REASON_STRING,
                USER_PROPERTY,
            ]),
            PropertyContext::Auth => bits(&[
                AUTHENTICATION_METHOD,
                AUTHENTICATION_DATA,
                REASON_STRING,
                USER_PROPERTY,
            ]),
        }
    }

    pub fn allows(self, id: u8) -> bool {
        id < 64 && self.allowed() & (1u64 << id) != 0
    }
}

/// Every identifier the spec defines.
const KNOWN: u64 = bits(&[
    PAYLOAD_FORMAT_INDICATOR,
    MESSAGE_EXPIRY_INTERVAL,
    CONTENT_TYPE,
    RESPONSE_TOPIC,
    CORRELATION_DATA,
    SUBSCRIPTION_IDENTIFIER,
    SESSION_EXPIRY_INTERVAL,
    ASSIGNED_CLIENT_IDENTIFIER,
    SERVER_KEEP_ALIVE,
    AUTHENTICATION_METHOD,
    AUTHENTICATION_DATA,
    REQUEST_PROBLEM_INFORMATION,
    WILL_DELAY_INTERVAL,
    REQUEST_RESPONSE_INFORMATION,
    RESPONSE_INFORMATION,
    SERVER_REFERENCE,
    REASON_STRING,
    RECEIVE_MAXIMUM,
    TOPIC_ALIAS_MAXIMUM,
    TOPIC_ALIAS,
    MAXIMUM_QOS,
    RETAIN_AVAILABLE,
    USER_PROPERTY,
    MAXIMUM_PACKET_SIZE,
    WILDCARD_SUBSCRIPTION_AVAILABLE,
    SUBSCRIPTION_IDENTIFIER_AVAILABLE,
    SHARED_SUBSCRIPTION_AVAILABLE,
]);

fn flag(r: &mut Reader, what: &'static str) -> Result<u8, DecodeError> {
    let v = r.u8()?;
    if v > 1 {
        return Err(DecodeError::Protocol(what));
    }
    Ok(v)
}

/// Reads a property block (length prefix included) for `ctx`.
///
/// An identifier the spec does not define, or one not valid for this packet type, is a Malformed
/// Packet (MQTT 5 section 2.2.2.2); a repeated single-valued property or an out-of-range value is
/// a Protocol Error (each property's own section).
pub fn decode(r: &mut Reader, ctx: PropertyContext) -> Result<Properties, DecodeError> {
    let len = r.varint()?;
    let mut p = r.sub(len as usize)?;
    let mut props = Properties::default();
    let mut seen: u64 = 0;
    while !p.is_empty() {
        let id = p.varint()?;
        if id >= 64 || KNOWN & (1u64 << id) == 0 {
            return Err(DecodeError::Malformed("unknown property identifier"));
        }
        // `id < 64` was just checked, so the narrowing is exact.
        let id = id as u8;
        if !ctx.allows(id) {
            return Err(DecodeError::Malformed(
                "property not allowed in this packet type",
            ));
        }
        let multi = id == USER_PROPERTY
            || (id == SUBSCRIPTION_IDENTIFIER && ctx == PropertyContext::Publish);
        if !multi {
            if seen & (1u64 << id) != 0 {
                return Err(DecodeError::Protocol("property included more than once"));
            }
            seen |= 1u64 << id;
        }
        match id {
            PAYLOAD_FORMAT_INDICATOR => {
                // MQTT 5.0 3.3.2.3.2 defines the value as "either of" 0 and 1 and, unlike Request
                // Problem Information (3.1.2.11.7), names no Protocol Error for other values: a
                // value outside that set cannot be parsed according to the specification, which
                // 1.2 calls a Malformed Packet (0x81). Mosquitto 2.0.11 accepts any value.
                let v = p.u8()?;
                if v > 1 {
                    return Err(DecodeError::Malformed(
                        "payload format indicator is not 0 or 1",
                    ));
                }
                props.payload_format_indicator = Some(v)
            }
            MESSAGE_EXPIRY_INTERVAL => props.message_expiry_interval = Some(p.u32()?),
            CONTENT_TYPE => props.content_type = Some(p.string()?),
            RESPONSE_TOPIC => {
                let t = p.string()?;
                if !super::topic::valid_topic_name(&t) {
                    return Err(DecodeError::Protocol(
                        "response topic is empty or contains wildcards",
                    ));
                }
                props.response_topic = Some(t)
            }
            CORRELATION_DATA => props.correlation_data = Some(p.binary()?),
            SUBSCRIPTION_IDENTIFIER => {
                let v = p.varint()?;
                if v == 0 {
                    return Err(DecodeError::Protocol("subscription identifier 0"));
                }
                props.subscription_identifiers.push(v)
            }
            SESSION_EXPIRY_INTERVAL => props.session_expiry_interval = Some(p.u32()?),
            ASSIGNED_CLIENT_IDENTIFIER => props.assigned_client_identifier = Some(p.string()?),
            SERVER_KEEP_ALIVE => props.server_keep_alive = Some(p.u16()?),
            AUTHENTICATION_METHOD => props.authentication_method = Some(p.string()?),
            AUTHENTICATION_DATA => props.authentication_data = Some(p.binary()?),
            REQUEST_PROBLEM_INFORMATION => {
                props.request_problem_information =
                    Some(flag(&mut p, "request problem information is not 0 or 1")?)
            }
            WILL_DELAY_INTERVAL => props.will_delay_interval = Some(p.u32()?),
            REQUEST_RESPONSE_INFORMATION => {
                props.request_response_information =
                    Some(flag(&mut p, "request response information is not 0 or 1")?)
            }
            RESPONSE_INFORMATION => props.response_information = Some(p.string()?),
            SERVER_REFERENCE => props.server_reference = Some(p.string()?),
            REASON_STRING => props.reason_string = Some(p.string()?),
            RECEIVE_MAXIMUM => {
                let v = p.u16()?;
                if v == 0 {
                    return Err(DecodeError::Protocol("receive maximum 0"));
                }
                props.receive_maximum = Some(v)
            }
            TOPIC_ALIAS_MAXIMUM => props.topic_alias_maximum = Some(p.u16()?),
            TOPIC_ALIAS => {
                let v = p.u16()?;
                if v == 0 {
                    return Err(DecodeError::Protocol("topic alias 0"));
                }
                props.topic_alias = Some(v)
            }
            MAXIMUM_QOS => props.maximum_qos = Some(flag(&mut p, "maximum QoS is not 0 or 1")?),
            RETAIN_AVAILABLE => {
                props.retain_available = Some(flag(&mut p, "retain available is not 0 or 1")?)
            }
            USER_PROPERTY => {
                let k = p.string()?;
                let v = p.string()?;
                props.user_properties.push((k, v))
            }
            MAXIMUM_PACKET_SIZE => {
                let v = p.u32()?;
                if v == 0 {
                    return Err(DecodeError::Protocol("maximum packet size 0"));
                }
                props.maximum_packet_size = Some(v)
            }
            WILDCARD_SUBSCRIPTION_AVAILABLE => {
                props.wildcard_subscription_available = Some(flag(
                    &mut p,
                    "wildcard subscription available is not 0 or 1",
                )?)
            }
            SUBSCRIPTION_IDENTIFIER_AVAILABLE => {
                props.subscription_identifier_available = Some(flag(
                    &mut p,
                    "subscription identifier available is not 0 or 1",
                )?)
            }
            SHARED_SUBSCRIPTION_AVAILABLE => {
                props.shared_subscription_available =
                    Some(flag(&mut p, "shared subscription available is not 0 or 1")?)
            }
            _ => return Err(DecodeError::Malformed("unknown property identifier")),
        }
    }
    if props.authentication_data.is_some() && props.authentication_method.is_none() {
        return Err(DecodeError::Protocol(
            "authentication data without an authentication method",
        ));
    }
    Ok(props)
}

/// Writes the property block including its length prefix.
pub(crate) fn encode<S: Sink>(
    p: &Properties,
    ctx: PropertyContext,
    s: &mut S,
) -> Result<(), EncodeError> {
    let mut c = Counter::default();
    write_body(p, ctx, &mut c)?;
    let n = u32::try_from(c.0).map_err(|_| EncodeError::PacketTooLarge(c.0))?;
    put_varint(s, n).ok_or(EncodeError::PacketTooLarge(c.0))?;
    write_body(p, ctx, s)
}

fn id<S: Sink>(s: &mut S, ctx: PropertyContext, id: u8) -> Result<(), EncodeError> {
    if !ctx.allows(id) {
        return Err(EncodeError::Invalid(
            "a property is set that this packet type may not carry",
        ));
    }
    s.put_u8(id);
    Ok(())
}

fn write_body<S: Sink>(p: &Properties, ctx: PropertyContext, s: &mut S) -> Result<(), EncodeError> {
    if let Some(v) = p.payload_format_indicator {
        id(s, ctx, PAYLOAD_FORMAT_INDICATOR)?;
        s.put_u8(v);
    }
    if let Some(v) = p.message_expiry_interval {
        id(s, ctx, MESSAGE_EXPIRY_INTERVAL)?;
        s.put_u32(v);
    }
    if let Some(v) = &p.content_type {
        id(s, ctx, CONTENT_TYPE)?;
        put_str(s, v, "content type")?;
    }
    if let Some(v) = &p.response_topic {
        id(s, ctx, RESPONSE_TOPIC)?;
        put_str(s, v, "response topic")?;
    }
    if let Some(v) = &p.correlation_data {
        id(s, ctx, CORRELATION_DATA)?;
        put_binary(s, v, "correlation data")?;
    }
    for &v in &p.subscription_identifiers {
        id(s, ctx, SUBSCRIPTION_IDENTIFIER)?;
        if v == 0 || v > MAX_VARINT {
            return Err(EncodeError::Invalid(
                "subscription identifier outside 1..=268435455",
            ));
        }
        put_varint(s, v).ok_or(EncodeError::Invalid("subscription identifier too large"))?;
    }
    if ctx == PropertyContext::Subscribe && p.subscription_identifiers.len() > 1 {
        return Err(EncodeError::Invalid(
            "SUBSCRIBE carries at most one subscription identifier",
        ));
    }
    if let Some(v) = p.session_expiry_interval {
        id(s, ctx, SESSION_EXPIRY_INTERVAL)?;
        s.put_u32(v);
    }
    if let Some(v) = &p.assigned_client_identifier {
        id(s, ctx, ASSIGNED_CLIENT_IDENTIFIER)?;
        put_str(s, v, "assigned client identifier")?;
    }
    if let Some(v) = p.server_keep_alive {
        id(s, ctx, SERVER_KEEP_ALIVE)?;
        s.put_u16(v);
    }
    if let Some(v) = &p.authentication_method {
        id(s, ctx, AUTHENTICATION_METHOD)?;
        put_str(s, v, "authentication method")?;
    }
    if let Some(v) = &p.authentication_data {
        id(s, ctx, AUTHENTICATION_DATA)?;
        put_binary(s, v, "authentication data")?;
    }
    if let Some(v) = p.request_problem_information {
        id(s, ctx, REQUEST_PROBLEM_INFORMATION)?;
        s.put_u8(v);
    }
    if let Some(v) = p.will_delay_interval {
        id(s, ctx, WILL_DELAY_INTERVAL)?;
        s.put_u32(v);
    }
    if let Some(v) = p.request_response_information {
        id(s, ctx, REQUEST_RESPONSE_INFORMATION)?;
        s.put_u8(v);
    }
    if let Some(v) = &p.response_information {
        id(s, ctx, RESPONSE_INFORMATION)?;
        put_str(s, v, "response information")?;
    }
    if let Some(v) = &p.server_reference {
        id(s, ctx, SERVER_REFERENCE)?;
        put_str(s, v, "server reference")?;
    }
    if let Some(v) = &p.reason_string {
        id(s, ctx, REASON_STRING)?;
        put_str(s, v, "reason string")?;
    }
    if let Some(v) = p.receive_maximum {
        id(s, ctx, RECEIVE_MAXIMUM)?;
        s.put_u16(v);
    }
    if let Some(v) = p.topic_alias_maximum {
        id(s, ctx, TOPIC_ALIAS_MAXIMUM)?;
        s.put_u16(v);
    }
    if let Some(v) = p.topic_alias {
        id(s, ctx, TOPIC_ALIAS)?;
        s.put_u16(v);
    }
    if let Some(v) = p.maximum_qos {
        id(s, ctx, MAXIMUM_QOS)?;
        s.put_u8(v);
    }
    if let Some(v) = p.retain_available {
        id(s, ctx, RETAIN_AVAILABLE)?;
        s.put_u8(v);
    }
    for (k, v) in &p.user_properties {
        id(s, ctx, USER_PROPERTY)?;
        put_str(s, k, "user property name")?;
        put_str(s, v, "user property value")?;
    }
    if let Some(v) = p.maximum_packet_size {
        id(s, ctx, MAXIMUM_PACKET_SIZE)?;
        s.put_u32(v);
    }
    if let Some(v) = p.wildcard_subscription_available {
        id(s, ctx, WILDCARD_SUBSCRIPTION_AVAILABLE)?;
        s.put_u8(v);
    }
    if let Some(v) = p.subscription_identifier_available {
        id(s, ctx, SUBSCRIPTION_IDENTIFIER_AVAILABLE)?;
        s.put_u8(v);
    }
    if let Some(v) = p.shared_subscription_available {
        id(s, ctx, SHARED_SUBSCRIPTION_AVAILABLE)?;
        s.put_u8(v);
    }
    Ok(())
}

/// Encode a property block (length prefix included) into `out`, as it travels in a packet of
/// `ctx`: for a store that keeps a message's properties in the wire format.
pub fn encode_block(
    p: &Properties,
    ctx: PropertyContext,
    out: &mut bytes::BytesMut,
) -> Result<(), EncodeError> {
    encode(p, ctx, out)
}

//! Why a packet could not be decoded or encoded, and the v5 reason code each failure maps to.

use super::reason::v5;

/// A received packet the broker (or a client tool) must refuse. Every variant ends the connection;
/// `reason_code` says what a v5 peer is told in the CONNACK or DISCONNECT that precedes the close.
///
/// Details are static strings on purpose: errors get logged, and echoing peer-controlled bytes
/// (topics, client ids, passwords) into logs is a leak and an injection vector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes do not parse as the packet they claim to be (spec: Malformed Packet).
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// The packet parses but breaks a protocol rule (spec: Protocol Error).
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// The whole packet (fixed header included) would exceed the configured maximum. Raised from
    /// the length field alone, before the body is read or buffered.
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge { size: usize, max: u32 },
    /// CONNECT names a protocol level this codec does not speak.
    #[error("unsupported MQTT protocol level {0}")]
    UnsupportedProtocolVersion(u8),
    /// CONNECT's protocol name is neither "MQTT" nor "MQIsdp" (or does not match the level).
    #[error("bad protocol name in CONNECT")]
    BadProtocolName,
    /// A PUBLISH (or will) topic name is empty where it may not be, or contains wildcards.
    #[error("invalid topic name: {0}")]
    TopicNameInvalid(&'static str),
}

impl DecodeError {
    /// The MQTT 5 reason code for the CONNACK/DISCONNECT sent before closing.
    pub fn reason_code(&self) -> u8 {
        match self {
            DecodeError::Malformed(_) => v5::MALFORMED_PACKET,
            DecodeError::Protocol(_) => v5::PROTOCOL_ERROR,
            DecodeError::PacketTooLarge { .. } => v5::PACKET_TOO_LARGE,
            DecodeError::UnsupportedProtocolVersion(_) | DecodeError::BadProtocolName => {
                v5::UNSUPPORTED_PROTOCOL_VERSION
            }
            DecodeError::TopicNameInvalid(_) => v5::TOPIC_NAME_INVALID,
        }
    }

    /// The MQTT 3.1.1 CONNACK return code when this error is found in a v3 CONNECT, if the spec
    /// has one; `None` means "close without a CONNACK".
    pub fn v3_connack_code(&self) -> Option<u8> {
        match self {
            DecodeError::UnsupportedProtocolVersion(_) => {
                Some(super::reason::v3::UNACCEPTABLE_PROTOCOL_VERSION)
            }
            _ => None,
        }
    }
}

/// A packet value that cannot be put on the wire for the requested version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A string or binary field longer than the 65,535 bytes its 2-byte length prefix can express.
    #[error("{field} is {len} bytes; MQTT allows at most 65535")]
    FieldTooLong { field: &'static str, len: usize },
    /// The remaining length would exceed 268,435,455, the largest variable byte integer.
    #[error("packet body of {0} bytes exceeds the MQTT maximum of 268435455")]
    PacketTooLarge(usize),
    /// A value the packet model can hold but the wire format cannot (e.g. QoS 1 without a packet
    /// id, AUTH in MQTT 3, a subscription identifier of 0 or above 268,435,455).
    #[error("cannot encode: {0}")]
    Invalid(&'static str),
}

//! MQTT 3.1/3.1.1/5.0 packets <-> bytes, with hard limits and no panics.
//!
//! Our own codec rather than a crate from crates.io: a security broker must enforce limits before
//! it allocates and reject what the spec forbids, and `audit` must be able to craft edge-case
//! packets. It is a crate of its own so that the broker, `audit`, the load generator and the fuzz
//! target all build on it without the rest of mqsec.
//!
//! - `decode_packet` (broker side) / `decode_packet_from_server` (client tools) take one packet off
//!   the front of a `BytesMut`; `Ok(None)` means "read more". Any `Err` ends the connection: send
//!   `err.reason_code()` in a v5 CONNACK/DISCONNECT first (for a failed CONNECT,
//!   `connect_version_hint` tells which CONNACK format the client speaks).
//! - `encode_packet` / `encoded_len` write or measure a packet for a version; v3 drops v5-only
//!   fields. Properties are written in ascending identifier order.
//! - `topic`: the syntax of topic names and filters and the one wildcard matcher.

pub mod decode;
pub mod encode;
pub mod error;
pub mod packet;
pub mod properties;
pub mod read;
pub mod reason;
pub mod topic;
pub mod varint;

pub use decode::{
    connect_version_hint, decode_packet, decode_packet_from_server, Direction, Limits,
};
pub use encode::{encode_packet, encoded_len};
pub use error::{DecodeError, EncodeError};
pub use packet::*;
pub use topic::{
    check_topic_filter, check_topic_name, filter_matches, split_shared, valid_topic_filter,
    valid_topic_name, TopicError,
};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;

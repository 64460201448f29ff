//! MQTT 3.1/3.1.1/5.0 packets <-> bytes, with hard limits and no panics.
//!
//! Our own codec (architecture.md): a security broker must enforce limits before it allocates and
//! reject what the spec forbids, and `audit` must be able to craft edge-case packets.

pub mod decode;
pub mod encode;
pub mod error;
pub mod packet;
pub mod properties;
pub mod read;
pub mod reason;
pub mod topic_rules;
pub mod varint;

pub use decode::{
    connect_version_hint, decode_packet, decode_packet_from_server, Direction, Limits,
};
pub use encode::{encode_packet, encoded_len};
pub use error::{DecodeError, EncodeError};
pub use packet::*;
pub use topic_rules::{valid_topic_filter, valid_topic_name};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;

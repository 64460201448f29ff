//! MQTT 3.1/3.1.1/5.0 packets <-> bytes, with hard limits and no panics.
//!
//! Our own codec (architecture.md): a security broker must enforce limits before it allocates and
//! reject what the spec forbids, and `audit` must be able to craft edge-case packets.

pub mod packet;
pub mod reason;

pub use packet::*;

//! The load generator's wire layer: the project codec, client side.

use bytes::BytesMut;

use super::LoadError;
use mqsec_codec::{decode_packet_from_server, encode_packet, Limits, Packet, ProtocolVersion};

pub(crate) fn encode(p: &Packet, v: ProtocolVersion, out: &mut BytesMut) -> Result<(), LoadError> {
    encode_packet(p, v, out).map_err(|e| LoadError::Protocol(format!("encode: {e}")))
}

/// One server->client packet from the front of `buf`, `None` until it is complete.
pub(crate) fn decode(buf: &mut BytesMut, v: ProtocolVersion) -> Result<Option<Packet>, LoadError> {
    decode_packet_from_server(buf, v, &Limits::default())
        .map_err(|e| LoadError::Protocol(format!("decode: {e}")))
}

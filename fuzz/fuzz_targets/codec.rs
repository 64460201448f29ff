//! Fuzz the MQTT codec: any bytes, in any connection state and direction, must decode without
//! panicking, and whatever decodes must re-encode to bytes that decode to the same packet.
//!
//! Run: `cd fuzz && cargo fuzz run codec` (nightly, or `RUSTC_BOOTSTRAP=1` on stable).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

// The codec crate alone: linking the whole mqsec crate would mean building aws-lc, rustls and
// tokio under the sanitizer.
use mqsec_codec::{
    decode_packet, decode_packet_from_server, encode_packet, encoded_len, Limits, Packet,
    ProtocolVersion,
};

const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V31,
    ProtocolVersion::V311,
    ProtocolVersion::V5,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    // Selector: 0 = broker before CONNECT, 1-3 = broker after, 4-6 = client after CONNACK.
    let sel = selector % 7;
    let state = match sel {
        0 => None,
        n => Some(VERSIONS[usize::from((n - 1) % 3)]),
    };
    let from_server = sel >= 4;
    // A small limit as well, so the size check runs on both sides of the boundary.
    let limits = Limits {
        max_packet_size: if selector & 0x80 != 0 {
            64
        } else {
            Limits::default().max_packet_size
        },
    };
    let mut buf = BytesMut::from(stream);
    loop {
        let r = match (from_server, state) {
            (true, Some(v)) => decode_packet_from_server(&mut buf, v, &limits),
            _ => decode_packet(&mut buf, state, &limits),
        };
        let Ok(Some(p)) = r else { break };
        let v = match (&p, state) {
            (Packet::Connect(c), _) => c.protocol,
            (_, Some(v)) => v,
            (_, None) => panic!("a non-CONNECT packet decoded before CONNECT"),
        };
        let mut out = BytesMut::new();
        encode_packet(&p, v, &mut out).expect("a decoded packet must encode");
        assert_eq!(encoded_len(&p, v).ok(), Some(out.len()));
        let again = match (from_server, state) {
            (true, _) => decode_packet_from_server(&mut out, v, &Limits::default()),
            (false, None) => decode_packet(&mut out, None, &Limits::default()),
            (false, Some(_)) => decode_packet(&mut out, Some(v), &Limits::default()),
        };
        assert_eq!(again, Ok(Some(p)), "re-encoded packet decodes differently");
        assert!(out.is_empty());
    }
});

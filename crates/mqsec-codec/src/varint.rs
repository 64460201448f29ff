//! The MQTT variable byte integer: 7 bits per byte, little-endian groups, at most 4 bytes.

/// The largest value four bytes can carry.
pub const MAX_VARINT: u32 = 268_435_455;

/// Result of looking at the front of a buffer for a variable byte integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarInt {
    /// The value and how many bytes encoded it.
    Complete(u32, usize),
    /// The buffer ends before the last byte (continuation bit still set).
    Incomplete,
    /// A fifth byte would be needed: malformed.
    TooLong,
}

/// Reads a variable byte integer from the front of `buf` without consuming anything.
///
/// Non-minimal encodings (e.g. `0x80 0x00` for 0) are accepted: the spec obliges senders to be
/// minimal but several embedded stacks reserve a fixed-width length, and accepting them costs
/// nothing in safety since the value is still bounded by four bytes.
pub fn peek(buf: &[u8]) -> VarInt {
    let mut value: u32 = 0;
    for (i, &b) in buf.iter().take(4).enumerate() {
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return VarInt::Complete(value, i + 1);
        }
    }
    if buf.len() >= 4 {
        VarInt::TooLong
    } else {
        VarInt::Incomplete
    }
}

/// How many bytes `value` takes on the wire (1-4), or `None` above `MAX_VARINT`.
pub fn len(value: u32) -> Option<usize> {
    match value {
        0..=127 => Some(1),
        128..=16_383 => Some(2),
        16_384..=2_097_151 => Some(3),
        2_097_152..=MAX_VARINT => Some(4),
        _ => None,
    }
}

/// Writes `value` into `out` (up to 4 bytes) and returns the number of bytes used, or `None`
/// above `MAX_VARINT`.
pub fn write(value: u32, out: &mut [u8; 4]) -> Option<usize> {
    if value > MAX_VARINT {
        return None;
    }
    let mut v = value;
    let mut n = 0;
    loop {
        let mut b = (v & 0x7f) as u8;
        v >>= 7;
        if v > 0 {
            b |= 0x80;
        }
        out[n] = b;
        n += 1;
        if v == 0 {
            return Some(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_boundaries_round_trip() {
        // The boundary table of MQTT 5 section 1.5.5.
        let cases: &[(u32, &[u8])] = &[
            (0, &[0x00]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xff, 0x7f]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xff, 0xff, 0x7f]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (MAX_VARINT, &[0xff, 0xff, 0xff, 0x7f]),
        ];
        for &(value, bytes) in cases {
            let mut out = [0u8; 4];
            let n = write(value, &mut out).unwrap();
            assert_eq!(&out[..n], bytes, "{value}");
            assert_eq!(len(value), Some(bytes.len()));
            assert_eq!(peek(bytes), VarInt::Complete(value, bytes.len()));
        }
    }

    #[test]
    fn too_long_incomplete_and_out_of_range() {
        assert_eq!(peek(&[0x80, 0x80, 0x80, 0x80, 0x01]), VarInt::TooLong);
        assert_eq!(peek(&[0xff, 0xff, 0xff, 0xff]), VarInt::TooLong);
        assert_eq!(peek(&[0x80, 0x80]), VarInt::Incomplete);
        assert_eq!(peek(&[]), VarInt::Incomplete);
        assert_eq!(len(MAX_VARINT + 1), None);
        assert_eq!(write(MAX_VARINT + 1, &mut [0; 4]), None);
        assert_eq!(peek(&[0x80, 0x00]), VarInt::Complete(0, 2));
    }
}

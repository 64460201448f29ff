//! A bounds-checked reader over one packet's body. Every read returns a `Result`; nothing here
//! indexes or slices without checking the length first, so hostile input cannot panic the codec.

use bytes::{Buf, Bytes};

use super::error::DecodeError;
use super::varint::{self, VarInt};

const SHORT: DecodeError = DecodeError::Malformed("packet ends before a field it declares");

/// Reads MQTT data types from the front of a `Bytes`; binary fields are zero-copy slices of it.
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
}

impl Reader {
    pub fn new(buf: Bytes) -> Reader {
        Reader { buf }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        if self.buf.is_empty() {
            return Err(SHORT);
        }
        Ok(self.buf.get_u8())
    }

    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        if self.buf.len() < 2 {
            return Err(SHORT);
        }
        Ok(self.buf.get_u16())
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        if self.buf.len() < 4 {
            return Err(SHORT);
        }
        Ok(self.buf.get_u32())
    }

    pub fn varint(&mut self) -> Result<u32, DecodeError> {
        match varint::peek(&self.buf) {
            VarInt::Complete(v, n) => {
                self.buf.advance(n);
                Ok(v)
            }
            VarInt::Incomplete => Err(SHORT),
            VarInt::TooLong => Err(DecodeError::Malformed(
                "variable byte integer longer than 4 bytes",
            )),
        }
    }

    /// The next `n` bytes as a zero-copy slice.
    pub fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        if self.buf.len() < n {
            return Err(SHORT);
        }
        Ok(self.buf.split_to(n))
    }

    /// Everything left (e.g. a PUBLISH payload).
    pub fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    /// Binary Data: a 2-byte length then that many bytes.
    pub fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }

    /// UTF-8 Encoded String: a 2-byte length, then well-formed UTF-8 without U+0000
    /// (MQTT-1.5.4-1, -2; Rust's UTF-8 check also refuses the surrogates of MQTT-1.5.4-1).
    pub fn string(&mut self) -> Result<String, DecodeError> {
        let raw = self.binary()?;
        let s = std::str::from_utf8(&raw)
            .map_err(|_| DecodeError::Malformed("string is not valid UTF-8"))?;
        if raw.contains(&0) {
            return Err(DecodeError::Malformed("string contains U+0000"));
        }
        Ok(s.to_owned())
    }

    /// A reader over the next `n` bytes (e.g. a property block), advancing this one past them.
    pub fn sub(&mut self, n: usize) -> Result<Reader, DecodeError> {
        Ok(Reader::new(self.take(n)?))
    }

    /// Fails unless every byte was consumed: trailing bytes inside a packet are malformed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Malformed(
                "unexpected bytes after the last field",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_bounds() {
        let mut r = Reader::new(Bytes::from_static(&[
            0x01, 0x00, 0x02, 0x00, 0x03, b'a', b'b',
        ]));
        assert_eq!(r.u8().unwrap(), 1);
        assert_eq!(r.u16().unwrap(), 2);
        assert_eq!(r.string(), Err(SHORT));
        let mut r = Reader::new(Bytes::from_static(&[0x00, 0x02, b'a', b'b']));
        assert_eq!(r.string().unwrap(), "ab");
        r.finish().unwrap();
        assert_eq!(r.u8(), Err(SHORT));
        assert_eq!(r.u16(), Err(SHORT));
        assert_eq!(r.u32(), Err(SHORT));
        assert_eq!(r.varint(), Err(SHORT));
    }

    #[test]
    fn string_rules() {
        // The spec's own example (MQTT 5 figure 1-1 family): U+FEFF stays, it is not stripped.
        let mut r = Reader::new(Bytes::from_static(&[
            0x00, 0x05, 0x41, 0xF0, 0xAA, 0x9B, 0x94,
        ]));
        assert_eq!(r.string().unwrap(), "A\u{2A6D4}");
        let mut r = Reader::new(Bytes::from_static(&[0x00, 0x03, b'a', 0x00, b'b']));
        assert!(matches!(r.string(), Err(DecodeError::Malformed(_))));
        // An encoded surrogate (ED A0 80) is not UTF-8.
        let mut r = Reader::new(Bytes::from_static(&[0x00, 0x03, 0xED, 0xA0, 0x80]));
        assert!(matches!(r.string(), Err(DecodeError::Malformed(_))));
        let mut r = Reader::new(Bytes::from_static(&[0x00, 0x01, 0xC0]));
        assert!(matches!(r.string(), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn binary_is_a_slice_of_the_input() {
        let input = Bytes::from_static(&[0x00, 0x02, 9, 8, 7]);
        let mut r = Reader::new(input.clone());
        let b = r.binary().unwrap();
        assert_eq!(&b[..], &[9, 8]);
        assert_eq!(b.as_ptr(), input[2..].as_ptr());
        assert!(r.finish().is_err());
    }
}

//! XChaCha20-Poly1305 (libsodium's `crypto_aead_xchacha20poly1305_ietf`) over caller buffers.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};

use super::envelope::{AEAD_TAG_LEN, NONCE_LEN};
use super::keys::KEY_LEN;

/// Encrypt `buf` in place; returns the tag. Fails only above the cipher's length limit (2^38
/// bytes), far beyond what the envelope accepts.
pub(crate) fn seal_in_place(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
) -> Option<[u8; AEAD_TAG_LEN]> {
    // The cipher copies the key and wipes its copy on drop (ZeroizeOnDrop).
    let cipher = XChaCha20Poly1305::new(key.into());
    let tag = cipher
        .encrypt_in_place_detached(XNonce::from_slice(nonce), aad, buf)
        .ok()?;
    Some(tag.into())
}

/// Verify the tag over `aad` and `buf`, then decrypt `buf` in place. On failure `buf` is left as
/// it was (the crate checks the tag before it decrypts) and `false` is returned.
pub(crate) fn open_in_place(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; AEAD_TAG_LEN],
) -> bool {
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt_in_place_detached(XNonce::from_slice(nonce), aad, buf, Tag::from_slice(tag))
        .is_ok()
}

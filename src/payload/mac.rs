//! HMAC-SHA256 over header || topic block || payload, for devices that cannot encrypt.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::envelope::{topic_block_prefix, MAC_TAG_LEN};
use super::keys::KEY_LEN;

type HmacSha256 = Hmac<Sha256>;

fn keyed(key: &[u8; KEY_LEN], header: &[u8], topic: Option<&str>, payload: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; a 32-byte key cannot be refused, so the error arm is dead.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts every key length"),
    };
    mac.update(header);
    mac.update(&topic_block_prefix(topic));
    mac.update(topic.unwrap_or("").as_bytes());
    mac.update(payload);
    mac
}

pub(crate) fn tag(
    key: &[u8; KEY_LEN],
    header: &[u8],
    topic: Option<&str>,
    payload: &[u8],
) -> [u8; MAC_TAG_LEN] {
    keyed(key, header, topic, payload)
        .finalize()
        .into_bytes()
        .into()
}

/// Constant-time check of a full 32-byte tag (`verify_slice` compares with `subtle`).
pub(crate) fn verify(
    key: &[u8; KEY_LEN],
    header: &[u8],
    topic: Option<&str>,
    payload: &[u8],
    tag: &[u8],
) -> bool {
    tag.len() == MAC_TAG_LEN && keyed(key, header, topic, payload).verify_slice(tag).is_ok()
}

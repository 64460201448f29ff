//! Fuzz whole sessions: the input is split into up to four byte streams, each fed as one client
//! of an in-process broker at the same time (CONNECT, then anything). The broker must not panic,
//! every connection must end, and every subscription left in the tree must belong to a live
//! session. The same driver runs in CI as a property test on generated packet sequences
//! (`mqsec::broker::session_fuzz`).
//!
//! Run: `cd fuzz && cargo +nightly fuzz run session --features session`.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mqsec::broker::session_fuzz::run_clients;

/// Separates the clients' streams in the input.
const SPLIT: &[u8] = b"\xde\xad";

fuzz_target!(|data: &[u8]| {
    let mut clients: Vec<Vec<u8>> = Vec::new();
    let mut rest = data;
    while clients.len() < 4 {
        match rest.windows(SPLIT.len()).position(|w| w == SPLIT) {
            Some(i) => {
                clients.push(rest[..i].to_vec());
                rest = &rest[i + SPLIT.len()..];
            }
            None => {
                clients.push(rest.to_vec());
                break;
            }
        }
    }
    let out = run_clients(&clients, Duration::from_millis(5));
    assert_eq!(
        out.tree_subscriptions, out.session_subscriptions,
        "subscriptions outlived their sessions: {out:?}"
    );
});

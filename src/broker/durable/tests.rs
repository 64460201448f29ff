//! The durable store inside one process: what a broker records comes back in a new broker
//! opened on the same file; a file that is not ours is refused; a failing disk refuses
//! publishes instead of acknowledging them.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::broker::codec::{QoS, SubscriptionOptions};
use crate::broker::core::{Broker, Departure};
use crate::broker::router::tests::{connect, msg};
use crate::broker::session::{AckKind, AckOutcome, Epoch, IncomingQos2, Outbound};
use crate::broker::store::MemoryStore;
use crate::broker::topic::{parse_filter, SubOpts};

fn broker(d: Arc<Durable>, restored: Restored) -> Broker {
    broker_with(crate::config::defaults::embedded(), d, restored)
}

fn broker_with(config: crate::config::Config, d: Arc<Durable>, restored: Restored) -> Broker {
    let b = Broker::with_durable(
        Arc::new(config),
        Arc::new(crate::broker::auth::AllowAnonymous {
            clientid_prefixes: vec![],
        }),
        Arc::new(MemoryStore::new()),
        Some(d),
    );
    b.restore_durable(restored);
    b
}

fn open(dir: &Path) -> Broker {
    let (d, r) = Durable::open(dir, SyncPolicy::Ack).unwrap();
    broker(d, r)
}

fn close(b: Broker) {
    assert!(b.durable.as_ref().unwrap().close(), "close flushes");
}

fn subscribe(b: &Broker, s: &Arc<Session>, epoch: Epoch, filter: &str, qos: QoS) {
    let f = parse_filter(filter, 200).unwrap();
    let opts = SubOpts {
        options: SubscriptionOptions {
            qos,
            ..Default::default()
        },
        subscription_id: None,
    };
    b.subscribe(s, epoch, filter, &f, opts).unwrap();
    b.save_session(s);
}

fn wait(p: &Arc<Pending>) -> PendingState {
    let deadline = Instant::now() + Duration::from_secs(30);
    while p.state() == PendingState::Waiting {
        assert!(Instant::now() < deadline, "batch never decided");
        std::thread::sleep(Duration::from_millis(2));
    }
    p.state()
}

fn take(s: &Session, epoch: Epoch) -> Vec<Outbound> {
    let (mut out, mut done) = (Vec::new(), Vec::new());
    assert!(s.take_ready(epoch, 1000, usize::MAX, &mut out, &mut done));
    out
}

fn pids(out: &[Outbound]) -> Vec<u16> {
    out.iter()
        .filter_map(|o| match o {
            Outbound::Publish { packet_id, .. } => *packet_id,
            Outbound::PubRel(_) => None,
        })
        .collect()
}

#[test]
fn queues_packet_ids_and_qos2_state_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(dir.path());
    let a = connect(&b, "sub", false, 3600, None);
    subscribe(&b, &a.session, a.epoch, "t/#", QoS::ExactlyOnce);
    b.detach(&a.session, a.epoch, Departure::Abnormal);
    for i in 0..5u8 {
        let m = msg(&format!("t/{i}"), QoS::AtLeastOnce, false, None);
        let p = b.publish_with(&m, None, Vec::new());
        assert_eq!(p.delivered, 1);
        assert_eq!(wait(p.pending.as_ref().unwrap()), PendingState::Durable);
    }
    let p = b.publish_with(
        &msg("t/q2", QoS::ExactlyOnce, false, None),
        None,
        Vec::new(),
    );
    assert_eq!(wait(p.pending.as_ref().unwrap()), PendingState::Durable);
    // Online again: the first QoS 1 is acknowledged, the QoS 2 one gets its PUBREC.
    let a = connect(&b, "sub", false, 3600, None);
    assert!(a.present);
    let out = take(&a.session, a.epoch);
    let sent = pids(&out);
    assert_eq!(sent.len(), 6);
    let (o, _) = b.acknowledge(&a.session, sent[0], AckKind::PubAck, None);
    assert!(matches!(o, AckOutcome::Completed(Some(_))));
    let (o, pending) = b.acknowledge(&a.session, sent[5], AckKind::PubRec, None);
    assert!(matches!(o, AckOutcome::Received(Some(_))));
    assert_eq!(wait(pending.as_ref().unwrap()), PendingState::Durable);
    close(b);

    let b = open(dir.path());
    let s = b.sessions.get("sub").expect("restored");
    let a = connect(&b, "sub", false, 3600, None);
    assert!(a.present && Arc::ptr_eq(&s, &a.session));
    let again = a.session.resend_all();
    assert!(
        matches!(again[..], [Outbound::PubRel(pid)] if pid == sent[5]),
        "the QoS 2 exchange goes on with PUBREL: {again:?}"
    );
    let rest = take(&a.session, a.epoch);
    assert_eq!(
        pids(&rest),
        sent[1..5].to_vec(),
        "same packet ids, same order"
    );
    assert_eq!(b.subs.len(), 1, "the subscription came back");
}

#[test]
fn retained_messages_and_delayed_wills_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(dir.path());
    let p = b.publish_with(&msg("r/1", QoS::AtMostOnce, true, None), None, Vec::new());
    assert_eq!(wait(p.pending.as_ref().unwrap()), PendingState::Durable);
    let will = Will {
        msg: msg("will/w", QoS::AtLeastOnce, false, Some("w")),
        delay: 60,
        owner: None,
    };
    let w = connect(&b, "w", false, 3600, Some(will));
    b.detach(&w.session, w.epoch, Departure::Abnormal);
    close(b);

    let b = open(dir.path());
    let mut found = Vec::new();
    b.store.retained_matching("r/#", &mut found);
    assert_eq!(found.len(), 1);
    let s = b.sessions.get("w").expect("restored");
    assert!(s.take_due_will(Instant::now()).is_none(), "not due yet");
    let due = s.take_due_will(Instant::now() + Duration::from_secs(61));
    assert_eq!(&*due.expect("the will waits").msg.topic, "will/w");
}

#[test]
fn a_session_that_expired_while_down_is_gone_and_its_will_sent() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(dir.path());
    let watcher = connect(&b, "watcher", false, 3600, None);
    subscribe(
        &b,
        &watcher.session,
        watcher.epoch,
        "will/#",
        QoS::AtLeastOnce,
    );
    b.detach(&watcher.session, watcher.epoch, Departure::Abnormal);
    let will = Will {
        msg: msg("will/e", QoS::AtLeastOnce, false, Some("e")),
        delay: 30,
        owner: None,
    };
    let e = connect(&b, "e", false, 1, Some(will));
    b.detach(&e.session, e.epoch, Departure::Abnormal);
    close(b);
    // Wall-clock time passes while the broker is down.
    std::thread::sleep(Duration::from_millis(1100));
    let b = open(dir.path());
    assert!(b.sessions.get("e").is_none(), "expired while down");
    assert_eq!(
        b.sessions.get("watcher").unwrap().queue_len(),
        1,
        "its will went"
    );
    close(b);
    let b = open(dir.path());
    assert!(b.sessions.get("e").is_none(), "and the store forgot it");
}

#[test]
fn files_that_are_not_an_mqsec_store_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    std::fs::write(&path, vec![0x5au8; 8192]).unwrap();
    let e = Durable::open(dir.path(), SyncPolicy::Ack).err().unwrap();
    assert!(
        e.to_string().starts_with(&path.display().to_string()),
        "{e}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        vec![0x5au8; 8192],
        "left as it was"
    );

    std::fs::remove_file(&path).unwrap();
    {
        let db = redb::Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        w.open_table(redb::TableDefinition::<&str, u64>::new("other"))
            .unwrap()
            .insert("x", 1)
            .unwrap();
        w.commit().unwrap();
    }
    let e = Durable::open(dir.path(), SyncPolicy::Ack).err().unwrap();
    assert!(e.to_string().contains("another program"), "{e}");

    std::fs::remove_file(&path).unwrap();
    drop(open(dir.path()));
    {
        let db = redb::Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        w.open_table(redb::TableDefinition::<&str, u64>::new("mqsec_meta"))
            .unwrap()
            .insert("format", 99)
            .unwrap();
        w.commit().unwrap();
    }
    let e = Durable::open(dir.path(), SyncPolicy::Ack).err().unwrap();
    assert!(
        e.to_string().contains("newer mqsec (store format 99"),
        "{e}"
    );
}

/// Memory storage whose writes fail on demand, like a full disk.
#[derive(Debug)]
struct Flaky {
    inner: redb::backends::InMemoryBackend,
    fail: Arc<AtomicBool>,
}

impl redb::StorageBackend for Flaky {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.check()?;
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.check()?;
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.check()?;
        self.inner.write(offset, data)
    }
}

impl Flaky {
    fn check(&self) -> Result<(), std::io::Error> {
        if self.fail.load(Ordering::SeqCst) {
            Err(std::io::Error::from(std::io::ErrorKind::StorageFull))
        } else {
            Ok(())
        }
    }
}

#[test]
fn a_failing_disk_refuses_instead_of_acknowledging() {
    let fail = Arc::new(AtomicBool::new(false));
    let flaky = Flaky {
        inner: redb::backends::InMemoryBackend::new(),
        fail: fail.clone(),
    };
    let path = Path::new("flaky");
    let (db, restored) = redb_store::open_backend(flaky, path).unwrap();
    let b = broker(Durable::start(db, path.into(), SyncPolicy::Ack), restored);
    let a = connect(&b, "sub", false, 3600, None);
    subscribe(&b, &a.session, a.epoch, "t", QoS::AtLeastOnce);
    let ok = b.publish_with(&msg("t", QoS::AtLeastOnce, false, None), None, Vec::new());
    assert_eq!(wait(ok.pending.as_ref().unwrap()), PendingState::Durable);
    assert!(b.store_writable());

    fail.store(true, Ordering::SeqCst);
    let bad = b.publish_with(&msg("t", QoS::AtLeastOnce, false, None), None, Vec::new());
    assert_eq!(wait(bad.pending.as_ref().unwrap()), PendingState::Failed);
    assert!(
        !b.store_writable(),
        "QoS 1/2 publishes are refused from now on"
    );
    // The subscriber gets the message that was kept, never the one that was not.
    assert_eq!(pids(&take(&a.session, a.epoch)).len(), 1);
    assert_eq!(a.session.queue_len(), 0);
    // A QoS 2 publisher whose message was in that batch (its connection gone before it heard):
    // its resend is a new message, not a duplicate to acknowledge.
    let p = connect(&b, "pub", false, 3600, None);
    p.session.remember_qos2(7, bad.pending.clone());
    assert_eq!(p.session.incoming_qos2(7, 20), IncomingQos2::New);
    p.session.remember_qos2(8, ok.pending.clone());
    assert_eq!(p.session.incoming_qos2(8, 20), IncomingQos2::Duplicate);
}

#[test]
fn copies_queued_after_the_last_session_save_keep_their_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let publish = |b: &Broker, n: usize| {
        for _ in 0..n {
            let p = b.publish_with(&msg("t", QoS::AtLeastOnce, false, None), None, Vec::new());
            assert_eq!(wait(p.pending.as_ref().unwrap()), PendingState::Durable);
        }
    };
    let b = open(dir.path());
    let a = connect(&b, "sub", false, 3600, None);
    subscribe(&b, &a.session, a.epoch, "t", QoS::AtLeastOnce);
    b.detach(&a.session, a.epoch, Departure::Abnormal);
    publish(&b, 3);
    close(b);
    let b = open(dir.path());
    publish(&b, 2);
    close(b);
    let b = open(dir.path());
    assert_eq!(
        b.sessions.get("sub").unwrap().queue_len(),
        5,
        "none overwritten"
    );
}

#[test]
fn the_interval_policy_acknowledges_at_once_and_syncs_by_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (d, r) = Durable::open(dir.path(), SyncPolicy::Every(Duration::from_secs(3600))).unwrap();
    let b = broker(d, r);
    let a = connect(&b, "sub", false, 3600, None);
    subscribe(&b, &a.session, a.epoch, "t", QoS::AtLeastOnce);
    b.detach(&a.session, a.epoch, Departure::Abnormal);
    let started = Instant::now();
    let p = b.publish_with(&msg("t", QoS::AtLeastOnce, false, None), None, Vec::new());
    assert_eq!(wait(p.pending.as_ref().unwrap()), PendingState::Durable);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "no wait for the hourly sync"
    );
    close(b);
    let b = open(dir.path());
    assert_eq!(
        b.sessions.get("sub").unwrap().queue_len(),
        1,
        "synced at shutdown"
    );
}

#[test]
fn todays_persistent_client_expiration_bounds_what_was_stored() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(dir.path());
    let a = connect(
        &b,
        "forever",
        false,
        crate::broker::session::NEVER_EXPIRES,
        None,
    );
    b.detach(&a.session, a.epoch, Departure::Abnormal);
    close(b);
    std::thread::sleep(Duration::from_millis(1100));
    let mut cfg = crate::config::defaults::embedded();
    cfg.limits.persistent_client_expiration = Some(Duration::from_secs(1));
    let (d, r) = Durable::open(dir.path(), SyncPolicy::Ack).unwrap();
    let b = broker_with(cfg, d, r);
    assert!(
        b.sessions.get("forever").is_none(),
        "offline longer than the cap"
    );
}

#[test]
fn pubrel_goes_only_once_the_pubrec_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(dir.path());
    let a = connect(&b, "sub", false, 3600, None);
    subscribe(&b, &a.session, a.epoch, "t", QoS::ExactlyOnce);
    let p = b.publish_with(&msg("t", QoS::ExactlyOnce, false, None), None, Vec::new());
    assert_eq!(wait(p.pending.as_ref().unwrap()), PendingState::Durable);
    let pid = pids(&take(&a.session, a.epoch))[0];
    let s = &a.session;
    assert!(matches!(
        s.acknowledged(pid, AckKind::PubRec),
        AckOutcome::Received(Some(_))
    ));
    let record = Pending::new();
    s.set_released(pid, record.clone());
    assert!(
        s.released_pending(pid).is_some(),
        "a repeated PUBREC waits too"
    );
    // Reconnecting before the record is durable: the message again (DUP), not PUBREL.
    assert!(matches!(
        s.resend_all()[..],
        [Outbound::Publish { dup: true, .. }]
    ));
    assert!(matches!(
        s.acknowledged(pid, AckKind::PubRec),
        AckOutcome::Received(Some(_))
    ));
    let record = Pending::new();
    s.set_released(pid, record.clone());
    record.set(true);
    assert!(s.released_pending(pid).is_none());
    assert!(matches!(s.resend_all()[..], [Outbound::PubRel(x)] if x == pid));
}

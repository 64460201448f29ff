//! Payload envelope speed: a 100-byte message sealed and opened (target: well under 5 µs), and
//! 1 MiB throughput, for XChaCha20-Poly1305 and HMAC-SHA256.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mqsec::payload::{self, Key, KeyId, KeyRing};

fn ring() -> KeyRing {
    let key = Key::generate(KeyId::new("bench").expect("valid id")).expect("OS random generator");
    KeyRing::from_keys(vec![key]).expect("one key")
}

fn small(c: &mut Criterion) {
    let r = ring();
    let msg = [0x5au8; 100];
    let topic = Some("plant/1/temp");
    let mut g = c.benchmark_group("payload/100B round trip");
    g.bench_function("xchacha20poly1305 seal+open", |b| {
        b.iter(|| {
            let e = payload::seal(&r, topic, black_box(&msg)).expect("seal");
            payload::open(&r, topic, black_box(&e), None).expect("open")
        })
    });
    g.bench_function("hmac-sha256 sign+verify", |b| {
        b.iter(|| {
            let e = payload::sign(&r, topic, black_box(&msg)).expect("sign");
            payload::verify(&r, topic, black_box(&e), None).expect("verify")
        })
    });
    g.finish();
}

fn throughput(c: &mut Criterion) {
    let r = ring();
    let msg = vec![0x5au8; 1 << 20];
    let topic = Some("bulk");
    let env = payload::seal(&r, topic, &msg).expect("seal");
    let sig = payload::sign(&r, topic, &msg).expect("sign");
    let mut g = c.benchmark_group("payload/1MiB");
    g.throughput(Throughput::Bytes(msg.len() as u64));
    g.bench_function("xchacha20poly1305 seal", |b| {
        b.iter(|| payload::seal(&r, topic, black_box(&msg)).expect("seal"))
    });
    g.bench_function("xchacha20poly1305 open", |b| {
        b.iter(|| payload::open(&r, topic, black_box(&env), None).expect("open"))
    });
    g.bench_function("hmac-sha256 sign", |b| {
        b.iter(|| payload::sign(&r, topic, black_box(&msg)).expect("sign"))
    });
    g.bench_function("hmac-sha256 verify", |b| {
        b.iter(|| payload::verify(&r, topic, black_box(&sig), None).expect("verify"))
    });
    g.finish();
}

criterion_group!(benches, small, throughput);
criterion_main!(benches);

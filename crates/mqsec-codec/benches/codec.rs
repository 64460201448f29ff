//! Decode + encode of a PUBLISH with a 100-byte payload, the broker's hot path, in 3.1.1 and 5.0.

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use mqsec_codec::{
    decode_packet, encode_packet, Limits, Packet, Properties, ProtocolVersion, Publish, QoS,
};

fn publish(properties: Properties) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "sensors/building-7/floor-3/temperature".into(),
        packet_id: Some(4242),
        properties,
        payload: Bytes::from(vec![0x5A; 100]),
    })
}

fn bench(c: &mut Criterion) {
    let v5_props = Properties {
        message_expiry_interval: Some(3600),
        user_properties: vec![("trace".into(), "0af7651916cd43dd".into())],
        ..Properties::default()
    };
    let limits = Limits::default();
    for (name, v, p) in [
        (
            "publish_100b_v311",
            ProtocolVersion::V311,
            publish(Properties::default()),
        ),
        ("publish_100b_v5", ProtocolVersion::V5, publish(v5_props)),
    ] {
        let mut wire = BytesMut::new();
        encode_packet(&p, v, &mut wire).unwrap();
        let wire = wire.freeze();
        c.bench_function(&format!("{name}/decode"), |b| {
            b.iter(|| {
                let mut buf = BytesMut::from(&wire[..]);
                black_box(decode_packet(&mut buf, Some(v), &limits).unwrap())
            })
        });
        let mut out = BytesMut::with_capacity(4096);
        c.bench_function(&format!("{name}/encode"), |b| {
            b.iter(|| {
                out.clear();
                encode_packet(black_box(&p), v, &mut out).unwrap();
                black_box(out.len())
            })
        });
        c.bench_function(&format!("{name}/decode+encode"), |b| {
            b.iter(|| {
                let mut buf = BytesMut::from(&wire[..]);
                let p = decode_packet(&mut buf, Some(v), &limits).unwrap().unwrap();
                out.clear();
                encode_packet(&p, v, &mut out).unwrap();
                black_box(out.len())
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Decisions on a 10,000-user ACL: the cost the broker pays on every PUBLISH and delivery.
//! Lookups are indexed by username, so the size of the file should not show up in these numbers.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use mqsec::security::acl::{Access, Acl, AclRequest};
use mqsec::security::identity::Identity;

const USERS: usize = 10_000;

fn big_acl() -> Acl {
    let mut text = String::with_capacity(USERS * 120);
    text.push_str("pattern deny devices/%c/firmware\n");
    text.push_str("pattern write devices/%c/out/#\n");
    text.push_str("pattern read devices/%c/in/#\n");
    text.push_str("pattern readwrite users/%u/#\n");
    text.push_str("pattern read broadcast/%u\n");
    for i in 0..USERS {
        text.push_str(&format!(
            "user device{i:05}\ntopic write sensors/{i:05}/#\ntopic read commands/{i:05}\ntopic deny sensors/{i:05}/private/#\ntopic read fleet/+/status\n\n"
        ));
    }
    Acl::parse(&text, "bench.acl").expect("generated ACL parses")
}

fn bench(c: &mut Criterion) {
    let acl = big_acl();
    let id = Identity::with_username("dev-05000", "device05000");
    let cases = [
        (
            "publish_allowed_own_rule",
            Access::Write,
            "sensors/05000/temp/1",
        ),
        (
            "publish_denied_default",
            Access::Write,
            "sensors/05001/temp/1",
        ),
        (
            "publish_denied_deny_rule",
            Access::Write,
            "sensors/05000/private/x",
        ),
        (
            "publish_allowed_pattern",
            Access::Write,
            "devices/dev-05000/out/t",
        ),
        ("delivery_allowed_own_rule", Access::Read, "fleet/7/status"),
        (
            "delivery_allowed_pattern",
            Access::Read,
            "users/device05000/inbox",
        ),
        ("delivery_denied", Access::Read, "users/device05001/inbox"),
        ("subscribe_allowed", Access::Subscribe, "fleet/+/status"),
    ];
    let mut g = c.benchmark_group("acl_10000_users");
    for (name, access, topic) in cases {
        let req = AclRequest::new(access, topic);
        g.bench_function(name, |b| {
            b.iter(|| black_box(acl.decide(black_box(&id), black_box(&req)).allowed))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

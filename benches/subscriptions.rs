//! What a client can make the broker compute: the subscription tree (subscribe cost next to a
//! large tree, matching on the publish path) and retained-message lookup for a wildcard filter.
//!
//! The sizes vary what must NOT show up in the cost: subscribe next to 1k..100k sibling filters
//! or subscribers, and a retained lookup with a fixed number of matches in a store of 1k..100k
//! messages. The `matches=` series varies what should show up: the number of matches.

use std::hint::black_box;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use mqsec::broker::codec::{Properties, QoS, SubscriptionOptions};
use mqsec::broker::message::Message;
use mqsec::broker::store::{MemoryStore, Store};
use mqsec::broker::topic::{parse_filter, Match, SubOpts, SubscriptionTree};

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

fn opts() -> SubOpts {
    SubOpts {
        options: SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            ..Default::default()
        },
        subscription_id: None,
    }
}

fn sub(t: &SubscriptionTree<u32>, filter: &str, client: &Arc<str>, target: u32) {
    let f = parse_filter(filter, 200).expect("bench filters are valid");
    t.subscribe(&f, client, target, opts());
}

/// Built once, and only when a benchmark that needs it runs (`cargo bench -- NAME` filters).
struct Lazy<T>(OnceLock<T>);

impl<T> Lazy<T> {
    fn new() -> Self {
        Lazy(OnceLock::new())
    }

    fn get(&self, build: impl FnOnce() -> T) -> &T {
        self.0.get_or_init(build)
    }
}

fn subscription_tree(c: &mut Criterion) {
    let mut g = c.benchmark_group("subscription_tree");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let newcomer: Arc<str> = Arc::from("newcomer");

    // One subscribe + unsubscribe of `fleet/new/cmd` beside N filters `fleet/{i}/cmd`: the
    // node `fleet` has N children.
    for n in SIZES {
        let tree = Lazy::new();
        let f = parse_filter("fleet/new/cmd", 200).expect("valid");
        g.bench_with_input(
            BenchmarkId::new("subscribe_beside_siblings", n),
            &n,
            |b, _| {
                let t = tree.get(|| {
                    let t = SubscriptionTree::default();
                    for i in 0..n {
                        sub(
                            &t,
                            &format!("fleet/{i}/cmd"),
                            &Arc::from(format!("c{i}")),
                            0,
                        );
                    }
                    t
                });
                b.iter(|| {
                    t.subscribe(&f, &newcomer, 1, opts());
                    t.unsubscribe(&f, "newcomer")
                })
            },
        );
    }

    // One more subscriber to a filter N clients already hold.
    for n in SIZES {
        let tree = Lazy::new();
        let f = parse_filter("alerts/#", 200).expect("valid");
        g.bench_with_input(
            BenchmarkId::new("subscribe_beside_subscribers", n),
            &n,
            |b, _| {
                let t = tree.get(|| {
                    let t = SubscriptionTree::default();
                    for i in 0..n {
                        sub(&t, "alerts/#", &Arc::from(format!("c{i}")), 0);
                    }
                    t
                });
                b.iter(|| {
                    t.subscribe(&f, &newcomer, 1, opts());
                    t.unsubscribe(&f, "newcomer")
                })
            },
        );
    }

    // The publish path: one topic, 100 subscribers (the fan-out scenario), and one topic in a
    // tree of 100k filters of which four match.
    let mut out: Vec<Match<u32>> = Vec::with_capacity(128);
    let tree = Lazy::new();
    g.bench_function("matches_fanout_100", |b| {
        let t = tree.get(|| {
            let t = SubscriptionTree::default();
            for i in 0..100u32 {
                sub(&t, "bench/fanout", &Arc::from(format!("c{i}")), i);
            }
            t
        });
        b.iter(|| {
            out.clear();
            t.matches(black_box("bench/fanout"), |_| true, &mut out);
            out.len()
        })
    });
    let tree = Lazy::new();
    g.bench_function("matches_in_100k_filters", |b| {
        let t = tree.get(|| {
            let t = SubscriptionTree::default();
            for i in 0..100_000u32 {
                sub(
                    &t,
                    &format!("fleet/{i}/cmd"),
                    &Arc::from(format!("c{i}")),
                    i,
                );
            }
            sub(&t, "fleet/+/cmd", &Arc::from("w1"), 0);
            sub(&t, "fleet/#", &Arc::from("w2"), 0);
            sub(&t, "#", &Arc::from("w3"), 0);
            t
        });
        b.iter(|| {
            out.clear();
            t.matches(black_box("fleet/54321/cmd"), |_| true, &mut out);
            out.len()
        })
    });
    g.finish();
}

fn retained(topic: &str) -> Option<Arc<Message>> {
    Some(Arc::new(Message::new(
        topic.into(),
        Bytes::from_static(b"21.5"),
        QoS::AtMostOnce,
        true,
        Properties::default(),
        None,
        None,
    )))
}

/// A store of `total` retained messages: `matching` of them under `prefix/{i}/suffix`, the
/// rest under `filler/{i}/suffix`.
fn store(total: usize, matching: usize, prefix: &str, filler: &str) -> MemoryStore {
    let s = MemoryStore::new();
    for i in 0..total {
        let t = match i < matching {
            true => format!("{prefix}/{i}/temp"),
            false => format!("{filler}/{i}/temp"),
        };
        s.set_retained(&t, retained(&t));
    }
    s
}

fn retained_lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("retained_lookup");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let mut out = Vec::with_capacity(10_000);

    // 100 matches of `sensors/+/temp`; the rest of the store is elsewhere in the tree.
    for n in SIZES {
        let s = Lazy::new();
        g.bench_with_input(BenchmarkId::new("100_matches_store", n), &n, |b, _| {
            let s = s.get(|| store(n, 100, "sensors", "devices"));
            b.iter(|| {
                out.clear();
                s.retained_matching(black_box("sensors/+/temp"), &mut out);
                out.len()
            })
        });
    }

    // A store of 100k messages; `hit/+/temp` matches 10..10k of them.
    for m in [10, 100, 1_000, 10_000] {
        let s = Lazy::new();
        g.bench_with_input(BenchmarkId::new("store_100k_matches", m), &m, |b, _| {
            let s = s.get(|| store(100_000, m, "hit", "fill"));
            b.iter(|| {
                out.clear();
                s.retained_matching(black_box("hit/+/temp"), &mut out);
                out.len()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, subscription_tree, retained_lookup);
criterion_main!(benches);

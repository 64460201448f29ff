//! Topic semantics and the subscription tree.
//!
//! Syntax (wildcard placement, NUL, `$share/GROUP/FILTER`) and the one filter-vs-topic matcher
//! are the codec's `topic` module; this module adds the broker's level limit and the tree the
//! publish path walks (which applies the same matching rules, level by level, to many filters at
//! once).
//!
//! The tree is persistent (copy-on-write along the changed path) and published through an
//! `ArcSwap`: a publish loads the current root without any lock and never waits for a subscribe;
//! subscribes serialize on a mutex among themselves and copy only the nodes on their path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use super::codec::{split_shared, QoS, SubscriptionOptions};

/// A parsed SUBSCRIBE filter: the share group (if any) and the filter proper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter<'a> {
    pub share_group: Option<&'a str>,
    pub filter: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterError {
    /// Bad syntax (wildcards misplaced, empty, bad share group).
    Invalid,
    /// More levels than the broker accepts.
    TooDeep,
}

/// Splits `$share/GROUP/FILTER`; checks the share group and the level limit. Wildcard syntax must
/// already have been checked (`codec::valid_topic_filter`).
pub fn parse_filter(raw: &str, max_levels: usize) -> Result<Filter<'_>, FilterError> {
    let (share_group, filter) = split_shared(raw).map_err(|_| FilterError::Invalid)?;
    if filter.split('/').count() > max_levels {
        return Err(FilterError::TooDeep);
    }
    Ok(Filter {
        share_group,
        filter,
    })
}

/// Whether `topic` is in the broker's own `$SYS` tree (`$SYSTEM/x` is not: a level, not a prefix).
pub fn is_sys_topic(topic: &str) -> bool {
    topic == "$SYS" || topic.starts_with("$SYS/")
}

/// Whether a topic name has more levels than allowed.
pub fn topic_too_deep(topic: &str, max_levels: usize) -> bool {
    topic.bytes().filter(|b| *b == b'/').count() >= max_levels
}

/// Does `filter` (no share prefix) match `topic`? Used for retained messages.
pub use super::codec::filter_matches;

/// What one subscription asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubOpts {
    pub options: SubscriptionOptions,
    pub subscription_id: Option<u32>,
}

/// One subscriber of a filter. `T` is the session handle the router delivers to.
#[derive(Debug, Clone)]
pub struct Entry<T> {
    pub client_id: Arc<str>,
    pub target: T,
    pub opts: SubOpts,
}

#[derive(Debug)]
struct SharedGroup<T> {
    name: Box<str>,
    members: Vec<Entry<T>>,
    /// Survives copy-on-write (shared by every version of this group) so rotation is fair.
    cursor: Arc<AtomicUsize>,
}

impl<T: Clone> Clone for SharedGroup<T> {
    fn clone(&self) -> Self {
        SharedGroup {
            name: self.name.clone(),
            members: self.members.clone(),
            cursor: self.cursor.clone(),
        }
    }
}

#[derive(Debug)]
struct Node<T> {
    children: HashMap<Box<str>, Arc<Node<T>>>,
    plus: Option<Arc<Node<T>>>,
    hash: Option<Arc<Node<T>>>,
    subs: Vec<Entry<T>>,
    shared: Vec<SharedGroup<T>>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            plus: None,
            hash: None,
            subs: Vec::new(),
            shared: Vec::new(),
        }
    }
}

impl<T: Clone> Clone for Node<T> {
    fn clone(&self) -> Self {
        Node {
            children: self.children.clone(),
            plus: self.plus.clone(),
            hash: self.hash.clone(),
            subs: self.subs.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<T> Node<T> {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.plus.is_none()
            && self.hash.is_none()
            && self.subs.is_empty()
            && self.shared.is_empty()
    }
}

/// A delivery the tree found for a topic.
#[derive(Debug, Clone)]
pub struct Match<T> {
    pub client_id: Arc<str>,
    pub target: T,
    pub opts: SubOpts,
    /// From a shared subscription: delivered on its own, never merged with the client's others.
    pub shared: bool,
}

pub struct SubscriptionTree<T> {
    root: ArcSwap<Node<T>>,
    writer: Mutex<()>,
    count: AtomicUsize,
}

impl<T: Clone> Default for SubscriptionTree<T> {
    fn default() -> Self {
        SubscriptionTree {
            root: ArcSwap::from_pointee(Node::default()),
            writer: Mutex::new(()),
            count: AtomicUsize::new(0),
        }
    }
}

impl<T: Clone> SubscriptionTree<T> {
    /// Number of subscriptions held.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds or replaces `client_id`'s subscription to `filter`. Returns true if it is new.
    pub fn subscribe(
        &self,
        filter: &Filter<'_>,
        client_id: &Arc<str>,
        target: T,
        opts: SubOpts,
    ) -> bool {
        let _w = self.writer.lock();
        let root = self.root.load_full();
        let levels: Vec<&str> = filter.filter.split('/').collect();
        let mut added = false;
        let new_root = modify(&root, &levels, &mut |node: &mut Node<T>| {
            let entry = Entry {
                client_id: client_id.clone(),
                target: target.clone(),
                opts,
            };
            let list = match filter.share_group {
                None => &mut node.subs,
                Some(g) => {
                    let idx = match node.shared.iter().position(|s| &*s.name == g) {
                        Some(i) => i,
                        None => {
                            node.shared.push(SharedGroup {
                                name: g.into(),
                                members: Vec::new(),
                                cursor: Arc::new(AtomicUsize::new(0)),
                            });
                            node.shared.len() - 1
                        }
                    };
                    &mut node.shared[idx].members
                }
            };
            match list.iter_mut().find(|e| e.client_id == entry.client_id) {
                Some(e) => *e = entry,
                None => {
                    list.push(entry);
                    added = true;
                }
            }
        });
        self.root.store(Arc::new(new_root));
        if added {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        added
    }

    /// Removes `client_id`'s subscription to `filter`; true if there was one.
    pub fn unsubscribe(&self, filter: &Filter<'_>, client_id: &str) -> bool {
        let _w = self.writer.lock();
        let root = self.root.load_full();
        let levels: Vec<&str> = filter.filter.split('/').collect();
        if !exists(&root, &levels) {
            return false;
        }
        let mut removed = false;
        let new_root = modify(
            &root,
            &levels,
            &mut |node: &mut Node<T>| match filter.share_group {
                None => {
                    let before = node.subs.len();
                    node.subs.retain(|e| &*e.client_id != client_id);
                    removed = node.subs.len() != before;
                }
                Some(g) => {
                    if let Some(grp) = node.shared.iter_mut().find(|s| &*s.name == g) {
                        let before = grp.members.len();
                        grp.members.retain(|e| &*e.client_id != client_id);
                        removed = grp.members.len() != before;
                    }
                    node.shared.retain(|s| !s.members.is_empty());
                }
            },
        );
        if removed {
            self.root.store(Arc::new(new_root));
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }

    /// Every subscription matching `topic`. Shared groups contribute one member each, chosen
    /// round-robin among those `online` accepts (any member if none does).
    pub fn matches(&self, topic: &str, online: impl Fn(&T) -> bool, out: &mut Vec<Match<T>>) {
        let root = self.root.load();
        let levels: smallvec_like::Levels<'_> = smallvec_like::Levels::new(topic);
        let dollar = topic.starts_with('$');
        collect(&root, levels.as_slice(), 0, dollar, &online, out);
    }
}

fn exists<T>(node: &Node<T>, levels: &[&str]) -> bool {
    let mut n = node;
    for l in levels {
        let next = match *l {
            "+" => n.plus.as_deref(),
            "#" => n.hash.as_deref(),
            lit => n.children.get(lit).map(|a| &**a),
        };
        match next {
            Some(x) => n = x,
            None => return false,
        }
    }
    true
}

/// Copy the path to `levels`, apply `f` at its end, prune nodes left empty.
fn modify<T: Clone>(node: &Node<T>, levels: &[&str], f: &mut dyn FnMut(&mut Node<T>)) -> Node<T> {
    let mut n = node.clone();
    match levels.split_first() {
        None => f(&mut n),
        Some((first, rest)) => {
            let slot = match *first {
                "+" => &mut n.plus,
                "#" => &mut n.hash,
                _ => {
                    let child = n.children.get(*first).cloned();
                    let new_child = match child {
                        Some(c) => modify(&c, rest, f),
                        None => modify(&Node::default(), rest, f),
                    };
                    if new_child.is_empty() {
                        n.children.remove(*first);
                    } else {
                        n.children.insert((*first).into(), Arc::new(new_child));
                    }
                    return n;
                }
            };
            let new_child = match slot {
                Some(c) => modify(c, rest, f),
                None => modify(&Node::default(), rest, f),
            };
            *slot = if new_child.is_empty() {
                None
            } else {
                Some(Arc::new(new_child))
            };
        }
    }
    n
}

fn collect<T: Clone>(
    node: &Node<T>,
    levels: &[&str],
    depth: usize,
    dollar: bool,
    online: &dyn Fn(&T) -> bool,
    out: &mut Vec<Match<T>>,
) {
    // `a/#` matches `a` too (the parent level); a leading wildcard never matches a `$` topic.
    let wild_ok = !(dollar && depth == 0);
    if wild_ok {
        if let Some(h) = &node.hash {
            emit(h, online, out);
        }
    }
    match levels.split_first() {
        None => emit(node, online, out),
        Some((first, rest)) => {
            if let Some(c) = node.children.get(*first) {
                collect(c, rest, depth + 1, dollar, online, out);
            }
            if wild_ok {
                if let Some(p) = &node.plus {
                    collect(p, rest, depth + 1, dollar, online, out);
                }
            }
        }
    }
}

fn emit<T: Clone>(node: &Node<T>, online: &dyn Fn(&T) -> bool, out: &mut Vec<Match<T>>) {
    for e in &node.subs {
        out.push(Match {
            client_id: e.client_id.clone(),
            target: e.target.clone(),
            opts: e.opts,
            shared: false,
        });
    }
    for g in &node.shared {
        let n = g.members.len();
        if n == 0 {
            continue;
        }
        let start = g.cursor.fetch_add(1, Ordering::Relaxed);
        let pick = (0..n)
            .map(|i| &g.members[(start + i) % n])
            .find(|e| online(&e.target))
            .unwrap_or(&g.members[start % n]);
        out.push(Match {
            client_id: pick.client_id.clone(),
            target: pick.target.clone(),
            opts: pick.opts,
            shared: true,
        });
    }
}

/// Topic levels without a heap allocation for the common (shallow) case.
mod smallvec_like {
    pub struct Levels<'a> {
        inline: [&'a str; 16],
        len: usize,
        heap: Vec<&'a str>,
    }

    impl<'a> Levels<'a> {
        pub fn new(topic: &'a str) -> Levels<'a> {
            let mut l = Levels {
                inline: [""; 16],
                len: 0,
                heap: Vec::new(),
            };
            for part in topic.split('/') {
                if l.len < 16 {
                    l.inline[l.len] = part;
                    l.len += 1;
                } else {
                    if l.heap.is_empty() {
                        l.heap.extend_from_slice(&l.inline);
                    }
                    l.heap.push(part);
                }
            }
            l
        }

        pub fn as_slice(&self) -> &[&'a str] {
            if self.heap.is_empty() {
                &self.inline[..self.len]
            } else {
                &self.heap
            }
        }
    }
}

/// The QoS a delivery gets: the lower of what was published and what was subscribed.
pub fn delivery_qos(published: QoS, subscribed: QoS) -> QoS {
    published.min(subscribed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(q: QoS) -> SubOpts {
        SubOpts {
            options: SubscriptionOptions {
                qos: q,
                ..Default::default()
            },
            subscription_id: None,
        }
    }

    fn sub(t: &SubscriptionTree<u32>, f: &str, who: &str, id: u32) {
        let p = parse_filter(f, 200).unwrap();
        t.subscribe(&p, &Arc::from(who), id, opts(QoS::AtLeastOnce));
    }

    fn who(t: &SubscriptionTree<u32>, topic: &str) -> Vec<u32> {
        let mut out = Vec::new();
        t.matches(topic, |_| true, &mut out);
        let mut v: Vec<u32> = out.iter().map(|m| m.target).collect();
        v.sort();
        v
    }

    #[test]
    fn wildcards_and_dollar_topics() {
        let t = SubscriptionTree::default();
        sub(&t, "a/b", "c1", 1);
        sub(&t, "a/+", "c2", 2);
        sub(&t, "a/#", "c3", 3);
        sub(&t, "#", "c4", 4);
        sub(&t, "+/b", "c5", 5);
        sub(&t, "$SYS/#", "c6", 6);
        sub(&t, "+/+/c", "c7", 7);
        assert_eq!(who(&t, "a/b"), vec![1, 2, 3, 4, 5]);
        assert_eq!(who(&t, "a"), vec![3, 4]);
        assert_eq!(who(&t, "a/b/c"), vec![3, 4, 7]);
        assert_eq!(who(&t, "$SYS/broker/uptime"), vec![6]);
        assert_eq!(who(&t, "x/y"), vec![4]);
        assert_eq!(who(&t, "/b"), vec![4, 5]);
        assert_eq!(t.len(), 7);
    }

    #[test]
    fn resubscribe_replaces_and_unsubscribe_prunes() {
        let t = SubscriptionTree::default();
        sub(&t, "a/b", "c1", 1);
        sub(&t, "a/b", "c1", 9);
        assert_eq!(who(&t, "a/b"), vec![9]);
        assert_eq!(t.len(), 1);
        let f = parse_filter("a/b", 200).unwrap();
        assert!(t.unsubscribe(&f, "c1"));
        assert!(!t.unsubscribe(&f, "c1"));
        assert!(who(&t, "a/b").is_empty());
        assert!(t.root.load().is_empty());
        assert!(!t.unsubscribe(&parse_filter("x/+/#", 200).unwrap(), "c1"));
    }

    #[test]
    fn shared_groups_round_robin_and_prefer_online() {
        let t = SubscriptionTree::default();
        sub(&t, "$share/g/s/+", "a", 1);
        sub(&t, "$share/g/s/+", "b", 2);
        sub(&t, "$share/h/s/#", "c", 3);
        sub(&t, "s/x", "a", 10);
        let mut seen = Vec::new();
        for _ in 0..4 {
            let mut out = Vec::new();
            t.matches("s/x", |_| true, &mut out);
            assert_eq!(out.len(), 3);
            seen.extend(
                out.iter()
                    .filter(|m| m.shared && m.target < 3)
                    .map(|m| m.target),
            );
        }
        seen.sort();
        assert_eq!(seen, vec![1, 1, 2, 2]);
        for _ in 0..3 {
            let mut out = Vec::new();
            t.matches("s/x", |x| *x != 1, &mut out);
            assert!(out.iter().any(|m| m.shared && m.target == 2));
        }
    }

    #[test]
    fn filter_parsing_and_matching() {
        assert_eq!(
            parse_filter("$share/g/a/#", 200).unwrap(),
            Filter {
                share_group: Some("g"),
                filter: "a/#"
            }
        );
        assert_eq!(parse_filter("$share/g", 200), Err(FilterError::Invalid));
        assert_eq!(parse_filter("$share//a", 200), Err(FilterError::Invalid));
        assert_eq!(parse_filter("$share/g+/a", 200), Err(FilterError::Invalid));
        assert_eq!(parse_filter("a/b/c", 2), Err(FilterError::TooDeep));
        assert!(topic_too_deep("a/b/c", 2));
        assert!(!topic_too_deep("a/b", 2));
        assert!(filter_matches("a/#", "a"));
        assert!(filter_matches("a/+/c", "a/b/c"));
        assert!(!filter_matches("a/+", "a/b/c"));
        assert!(!filter_matches("#", "$SYS/x"));
        assert!(!filter_matches("+/x", "$SYS/x"));
        assert!(filter_matches("$SYS/#", "$SYS/x"));
        assert!(filter_matches("a//b", "a//b"));
        assert!(is_sys_topic("$SYS/broker/uptime"));
        assert!(is_sys_topic("$SYS"));
        assert!(!is_sys_topic("$SYSTEM/x"));
        assert!(!is_sys_topic("$SYSx"));
    }

    #[test]
    fn deep_topics_match() {
        let t = SubscriptionTree::default();
        let deep: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let topic = deep.join("/");
        sub(&t, &topic, "c", 1);
        sub(&t, "0/#", "d", 2);
        assert_eq!(who(&t, &topic), vec![1, 2]);
    }
}

//! Topic semantics and the subscription tree.
//!
//! Syntax (wildcard placement, NUL, `$share/GROUP/FILTER`) and the one filter-vs-topic matcher
//! are the codec's `topic` module; this module adds the broker's level limit and the tree the
//! publish path walks (which applies the same matching rules, level by level, to many filters at
//! once).
//!
//! The tree is persistent (copy-on-write along the changed path) and published through an
//! `ArcSwap`: a publish loads the current root without any lock and never waits for a subscribe;
//! subscribes serialize on a mutex among themselves and copy only the nodes on their path. The
//! many children of a node and long subscriber lists are persistent maps (`imbl`): copying a node
//! shares them, so a subscribe beside 100k sibling filters or subscribers costs O(depth x log n),
//! not a copy of the 100k; a few are a vector (`LevelMap`, `Members`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use super::codec::{split_shared, QoS, SubscriptionOptions};
use super::level_map::LevelMap;

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

/// Up to this many subscribers a list is a plain vector, copied whole when it changes (cheap at
/// this size, and the fastest to walk); beyond it, a persistent one.
const SMALL_MEMBERS: usize = 32;

/// The subscribers of one filter, or the members of one share group: one entry per client.
#[derive(Debug, Clone)]
enum Members<T> {
    Small(Vec<Entry<T>>),
    Large(Arc<LargeMembers<T>>),
}

/// A persistent vector (copying it is O(1), changing it O(log n)) and where each client is in
/// it. Removal moves the last entry into the hole, so one position changes.
#[derive(Debug, Clone)]
struct LargeMembers<T> {
    list: imbl::Vector<Entry<T>>,
    pos: imbl::HashMap<Arc<str>, usize>,
}

impl<T> Default for Members<T> {
    fn default() -> Self {
        Members::Small(Vec::new())
    }
}

impl<T: Clone> Members<T> {
    fn len(&self) -> usize {
        match self {
            Members::Small(v) => v.len(),
            Members::Large(l) => l.list.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, i: usize) -> Option<&Entry<T>> {
        match self {
            Members::Small(v) => v.get(i),
            Members::Large(l) => l.list.get(i),
        }
    }

    fn for_each(&self, mut f: impl FnMut(&Entry<T>)) {
        match self {
            Members::Small(v) => v.iter().for_each(f),
            Members::Large(l) => {
                for chunk in l.list.leaves() {
                    chunk.iter().for_each(&mut f);
                }
            }
        }
    }

    /// Adds or replaces the entry of `e.client_id`; true if it is new.
    fn upsert(&mut self, e: Entry<T>) -> bool {
        match self {
            Members::Small(v) => {
                if let Some(old) = v.iter_mut().find(|o| o.client_id == e.client_id) {
                    *old = e;
                    return false;
                }
                v.push(e);
                if v.len() > SMALL_MEMBERS {
                    let list: imbl::Vector<Entry<T>> = v.drain(..).collect();
                    let pos = list
                        .iter()
                        .enumerate()
                        .map(|(i, e)| (e.client_id.clone(), i))
                        .collect();
                    *self = Members::Large(Arc::new(LargeMembers { list, pos }));
                }
                true
            }
            Members::Large(l) => {
                let l = Arc::make_mut(l);
                match l.pos.get(&*e.client_id) {
                    Some(&i) => {
                        l.list.set(i, e);
                        false
                    }
                    None => {
                        l.pos.insert(e.client_id.clone(), l.list.len());
                        l.list.push_back(e);
                        true
                    }
                }
            }
        }
    }

    /// Removes `client_id`'s entry; true if there was one.
    fn remove(&mut self, client_id: &str) -> bool {
        match self {
            Members::Small(v) => match v.iter().position(|e| &*e.client_id == client_id) {
                Some(i) => {
                    v.swap_remove(i);
                    true
                }
                None => false,
            },
            Members::Large(l) => {
                if !l.pos.contains_key(client_id) {
                    return false;
                }
                let l = Arc::make_mut(l);
                let Some(i) = l.pos.remove(client_id) else {
                    return false;
                };
                if let Some(last) = l.list.pop_back() {
                    if i < l.list.len() {
                        l.pos.insert(last.client_id.clone(), i);
                        l.list.set(i, last);
                    }
                }
                // Back to a vector well below the threshold, so a list that hovers around it
                // does not convert back and forth.
                if l.list.len() <= SMALL_MEMBERS / 2 {
                    let v = l.list.iter().cloned().collect();
                    *self = Members::Small(v);
                }
                true
            }
        }
    }
}

#[derive(Debug, Clone)]
struct SharedGroup<T> {
    members: Members<T>,
    /// Survives copy-on-write (shared by every version of this group) so rotation is fair.
    cursor: Arc<AtomicUsize>,
}

/// A level of the tree. Every field is cheap to copy whatever its size (persistent maps,
/// `Arc`s, a vector of at most `SMALL_MEMBERS`), so a change copies the nodes on its path and
/// O(log n) of each map on the way, never a whole map.
#[derive(Debug)]
struct Node<T> {
    children: LevelMap<Arc<Node<T>>>,
    plus: Option<Arc<Node<T>>>,
    hash: Option<Arc<Node<T>>>,
    subs: Members<T>,
    /// Boxed, and `None` without any: few filters have share groups, and an empty map inline
    /// would take every node into a larger heap size.
    shared: Option<Box<LevelMap<Arc<SharedGroup<T>>>>>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node {
            children: LevelMap::default(),
            plus: None,
            hash: None,
            subs: Members::default(),
            shared: None,
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

impl<T: Clone> Node<T> {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.plus.is_none()
            && self.hash.is_none()
            && self.subs.is_empty()
            && self.shared.is_none()
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
    /// The share group's name, for a shared subscription.
    pub group: Option<Arc<str>>,
}

pub struct SubscriptionTree<T> {
    root: ArcSwap<Node<T>>,
    writer: Mutex<()>,
    count: AtomicUsize,
    /// Shared-subscription groups held (distinct group and filter).
    groups: AtomicUsize,
}

impl<T: Clone> Default for SubscriptionTree<T> {
    fn default() -> Self {
        SubscriptionTree {
            root: ArcSwap::from_pointee(Node::default()),
            writer: Mutex::new(()),
            count: AtomicUsize::new(0),
            groups: AtomicUsize::new(0),
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
        self.subscribe_within(filter, client_id, target, opts, 0)
            .unwrap_or(false)
    }

    /// As `subscribe`, but a subscription that would start a new shared group beyond
    /// `max_groups` (0 = no maximum) is refused: `None`.
    pub fn subscribe_within(
        &self,
        filter: &Filter<'_>,
        client_id: &Arc<str>,
        target: T,
        opts: SubOpts,
        max_groups: usize,
    ) -> Option<bool> {
        let _w = self.writer.lock();
        let root = self.root.load_full();
        let levels: Vec<&str> = filter.filter.split('/').collect();
        if let Some(g) = filter.share_group {
            let full = max_groups != 0 && self.groups.load(Ordering::Relaxed) >= max_groups;
            if full && !group_exists(&root, &levels, g) {
                return None;
            }
        }
        let mut added = false;
        let mut new_group = false;
        let new_root = modify(&root, &levels, &mut |node: &mut Node<T>| {
            let entry = Entry {
                client_id: client_id.clone(),
                target: target.clone(),
                opts,
            };
            added = match filter.share_group {
                None => node.subs.upsert(entry),
                Some(g) => match node.shared.as_mut().and_then(|m| m.get_mut(g)) {
                    Some(group) => Arc::make_mut(group).members.upsert(entry),
                    None => {
                        let mut members = Members::default();
                        members.upsert(entry);
                        let group = SharedGroup {
                            members,
                            cursor: Arc::new(AtomicUsize::new(0)),
                        };
                        node.shared
                            .get_or_insert_with(Box::default)
                            .insert(Arc::from(g), Arc::new(group));
                        new_group = true;
                        true
                    }
                },
            };
        });
        self.root.store(Arc::new(new_root));
        if added {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        if new_group {
            self.groups.fetch_add(1, Ordering::Relaxed);
        }
        Some(added)
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
        let mut gone = false;
        let new_root = modify(
            &root,
            &levels,
            &mut |node: &mut Node<T>| match filter.share_group {
                None => removed = node.subs.remove(client_id),
                Some(g) => {
                    let Some(groups) = node.shared.as_mut() else {
                        return;
                    };
                    if let Some(group) = groups.get_mut(g) {
                        removed = Arc::make_mut(group).members.remove(client_id);
                        if group.members.is_empty() {
                            groups.remove(g);
                            gone = true;
                        }
                    }
                    if groups.is_empty() {
                        node.shared = None;
                    }
                }
            },
        );
        if removed {
            self.root.store(Arc::new(new_root));
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
        if gone {
            self.groups.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }

    /// Every subscription matching `topic`. Shared groups contribute one member each, chosen
    /// round-robin among those `online` accepts (any member if none does).
    pub fn matches(&self, topic: &str, online: impl Fn(&T) -> bool, out: &mut Vec<Match<T>>) {
        self.matches_with(topic, |t, _, _| online(t), out)
    }

    /// As `matches`, with the shared-group choice asked of `accept(member, its options, group
    /// name)`: the first member in round-robin order it accepts gets the message (any member if
    /// none does), so a member that is offline or may not read the topic is passed over.
    pub fn matches_with(
        &self,
        topic: &str,
        accept: impl Fn(&T, &SubOpts, &str) -> bool,
        out: &mut Vec<Match<T>>,
    ) {
        let online = &accept;
        let root = self.root.load();
        let levels: smallvec_like::Levels<'_> = smallvec_like::Levels::new(topic);
        let dollar = topic.starts_with('$');
        collect(&root, levels.as_slice(), 0, dollar, &online, out);
    }
}

/// The node at the end of the filter `levels`, if the tree has that path.
fn node_at<'a, T>(node: &'a Node<T>, levels: &[&str]) -> Option<&'a Node<T>> {
    let mut n = node;
    for l in levels {
        n = match *l {
            "+" => n.plus.as_deref(),
            "#" => n.hash.as_deref(),
            lit => n.children.get(lit).map(|a| &**a),
        }?;
    }
    Some(n)
}

fn exists<T>(node: &Node<T>, levels: &[&str]) -> bool {
    node_at(node, levels).is_some()
}

/// Whether share group `group` of the filter `levels` exists.
fn group_exists<T>(node: &Node<T>, levels: &[&str], group: &str) -> bool {
    node_at(node, levels).is_some_and(|n| n.shared.as_ref().is_some_and(|m| m.get(group).is_some()))
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
                    let new_child = match n.children.get(first) {
                        Some(c) => modify(c, rest, f),
                        None => modify(&Node::default(), rest, f),
                    };
                    if new_child.is_empty() {
                        n.children.remove(first);
                    } else {
                        n.children.insert(Arc::from(*first), Arc::new(new_child));
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
    online: &dyn Fn(&T, &SubOpts, &str) -> bool,
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
            if let Some(c) = node.children.get(first) {
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

fn emit<T: Clone>(
    node: &Node<T>,
    online: &dyn Fn(&T, &SubOpts, &str) -> bool,
    out: &mut Vec<Match<T>>,
) {
    node.subs.for_each(|e| {
        out.push(Match {
            client_id: e.client_id.clone(),
            target: e.target.clone(),
            opts: e.opts,
            shared: false,
            group: None,
        })
    });
    for (name, g) in node.shared.iter().flat_map(|m| m.iter()) {
        let n = g.members.len();
        if n == 0 {
            continue;
        }
        let start = g.cursor.fetch_add(1, Ordering::Relaxed);
        let pick = (0..n)
            .filter_map(|i| g.members.get((start + i) % n))
            .find(|e| online(&e.target, &e.opts, name))
            .or_else(|| g.members.get(start % n));
        if let Some(pick) = pick {
            out.push(Match {
                client_id: pick.client_id.clone(),
                target: pick.target.clone(),
                opts: pick.opts,
                shared: true,
                group: Some(name.clone()),
            });
        }
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

    /// Every level of every filter is one node (a device's `dev/ID/cmd` makes two): 96 bytes,
    /// 112 with its Arc counts, jemalloc's 112 size; 16 more would take 128.
    #[test]
    fn a_tree_node_fits_its_heap_size() {
        assert!(std::mem::size_of::<Node<Arc<crate::broker::session::Session>>>() <= 96);
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
    fn many_subscribers_to_one_filter() {
        let t = SubscriptionTree::default();
        let n = 3 * SMALL_MEMBERS as u32;
        for i in 0..n {
            sub(&t, "big/+", &format!("c{i}"), i);
        }
        assert_eq!(who(&t, "big/x"), (0..n).collect::<Vec<_>>());
        // Replacing keeps one entry per client.
        sub(&t, "big/+", "c5", 1005);
        assert_eq!(t.len(), n as usize);
        let f = parse_filter("big/+", 200).unwrap();
        // Remove all but a few, from the middle and the ends: every survivor still matches.
        let keep = [1, 1005, 40, n - 1];
        for i in 0..n {
            if ![1, 5, 40, n - 1].contains(&i) {
                assert!(t.unsubscribe(&f, &format!("c{i}")));
            }
        }
        let mut want = keep.to_vec();
        want.sort();
        assert_eq!(who(&t, "big/x"), want);
        assert!(matches!(
            t.root
                .load()
                .children
                .get("big")
                .unwrap()
                .plus
                .as_ref()
                .unwrap()
                .subs,
            Members::Small(_)
        ));
        for i in [1, 5, 40, n - 1] {
            assert!(t.unsubscribe(&f, &format!("c{i}")));
        }
        assert!(t.root.load().is_empty() && t.is_empty());
    }

    #[test]
    fn large_shared_group_rotates_over_every_member() {
        let t = SubscriptionTree::default();
        let n = 2 * SMALL_MEMBERS;
        for i in 0..n {
            sub(&t, "$share/g/job", &format!("w{i}"), i as u32);
        }
        let mut seen = vec![0; n];
        for _ in 0..2 * n {
            let mut out = Vec::new();
            t.matches("job", |_| true, &mut out);
            assert_eq!(out.len(), 1);
            seen[out[0].target as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c == 2), "{seen:?}");
        let f = parse_filter("$share/g/job", 200).unwrap();
        for i in 0..n {
            assert!(t.unsubscribe(&f, &format!("w{i}")));
        }
        assert!(t.root.load().is_empty());
    }

    #[test]
    fn a_loaded_root_is_a_snapshot() {
        let t = SubscriptionTree::default();
        for i in 0..100 {
            sub(&t, &format!("s/{i}"), "c", i);
            sub(&t, "s/+", &format!("c{i}"), 1000 + i);
        }
        let before = t.root.load_full();
        sub(&t, "s/7", "late", 7777);
        assert!(t.unsubscribe(&parse_filter("s/+", 200).unwrap(), "c3"));
        let mut out = Vec::new();
        collect(
            &before,
            &["s", "7"],
            0,
            false,
            &|_: &u32, _: &SubOpts, _: &str| true,
            &mut out,
        );
        let mut old: Vec<u32> = out.iter().map(|m| m.target).collect();
        old.sort();
        let mut want: Vec<u32> = (1000..1100).collect();
        want.insert(0, 7);
        assert_eq!(old, want, "the old version is unchanged");
        want.retain(|&x| x != 1003);
        want.push(7777);
        assert_eq!(who(&t, "s/7"), want);
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

    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Sub(usize, usize),
        Unsub(usize, usize),
    }

    const FILTERS: [&str; 10] = [
        "a/b",
        "a/+",
        "a/#",
        "#",
        "+/b",
        "$s/#",
        "+/+",
        "a",
        "$share/g/a/+",
        "$share/h/#",
    ];
    const TOPICS: [&str; 6] = ["a/b", "a", "a/c", "x/b", "$s/b", "a/b/c"];

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..FILTERS.len(), 0..40usize).prop_map(|(f, c)| Op::Sub(f, c)),
            (0..FILTERS.len(), 0..40usize).prop_map(|(f, c)| Op::Unsub(f, c)),
        ]
    }

    proptest! {
        /// After any sequence of subscribes and unsubscribes, the tree answers what a list of
        /// (filter, client) pairs matched with `filter_matches` answers.
        #[test]
        fn agrees_with_a_list(ops in proptest::collection::vec(op(), 0..300)) {
            let t = SubscriptionTree::default();
            let mut model: std::collections::BTreeMap<(usize, usize), u32> = Default::default();
            for (n, o) in ops.iter().enumerate() {
                match *o {
                    Op::Sub(f, c) => {
                        let p = parse_filter(FILTERS[f], 200).unwrap();
                        let new = t.subscribe(&p, &Arc::from(format!("c{c}")), n as u32, opts(QoS::AtMostOnce));
                        prop_assert_eq!(new, model.insert((f, c), n as u32).is_none());
                    }
                    Op::Unsub(f, c) => {
                        let p = parse_filter(FILTERS[f], 200).unwrap();
                        prop_assert_eq!(t.unsubscribe(&p, &format!("c{c}")), model.remove(&(f, c)).is_some());
                    }
                }
            }
            prop_assert_eq!(t.len(), model.len());
            for topic in TOPICS {
                let mut want: Vec<u32> = model
                    .iter()
                    .filter(|((f, _), _)| {
                        let p = parse_filter(FILTERS[*f], 200).unwrap();
                        p.share_group.is_none() && filter_matches(p.filter, topic)
                    })
                    .map(|(_, id)| *id)
                    .collect();
                want.sort();
                let mut out = Vec::new();
                t.matches(topic, |_| true, &mut out);
                let mut got: Vec<u32> = out.iter().filter(|m| !m.shared).map(|m| m.target).collect();
                got.sort();
                prop_assert_eq!(got, want);
                // One delivery per share group that has a member matching.
                let groups = ["g", "h"]
                    .iter()
                    .filter(|g| model.keys().any(|(f, _)| {
                        let p = parse_filter(FILTERS[*f], 200).unwrap();
                        p.share_group == Some(**g) && filter_matches(p.filter, topic)
                    }))
                    .count();
                prop_assert_eq!(out.iter().filter(|m| m.shared).count(), groups);
            }
            if model.is_empty() {
                prop_assert!(t.root.load().is_empty());
            }
        }
    }
}

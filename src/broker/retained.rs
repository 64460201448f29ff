//! Retained messages indexed by topic level, so that a lookup touches only the part of the tree
//! a filter can reach: a literal level is one hash lookup, `+` visits the children of one node,
//! `#` visits the subtree it matches. Scanning every retained message per filter let one
//! SUBSCRIBE with many wildcard filters cost (filters x retained messages).

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use super::message::Message;

#[derive(Default)]
struct Node {
    msg: Option<Arc<Message>>,
    children: HashMap<Box<str>, Node>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.msg.is_none() && self.children.is_empty()
    }
}

/// What a visit asks of the index after seeing a message.
pub type Visit<'a> = dyn FnMut(&Arc<Message>) -> ControlFlow<()> + 'a;

/// The retained messages, one per topic.
#[derive(Default)]
pub struct RetainedIndex {
    root: Node,
    count: usize,
    /// Memory the messages hold (`Message::cost`): what `max_retained_bytes` counts.
    bytes: usize,
}

impl RetainedIndex {
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Store `msg` as the retained message of `topic`; returns the one it replaces.
    pub fn insert(&mut self, topic: &str, msg: Arc<Message>) -> Option<Arc<Message>> {
        self.bytes += msg.cost;
        let old = insert(&mut self.root, &mut topic.split('/'), msg);
        match &old {
            None => self.count += 1,
            Some(o) => self.bytes = self.bytes.saturating_sub(o.cost),
        }
        old
    }

    /// Remove the retained message of `topic` (and the levels left empty).
    pub fn remove(&mut self, topic: &str) -> Option<Arc<Message>> {
        let old = remove(&mut self.root, &mut topic.split('/'));
        if let Some(o) = &old {
            self.count -= 1;
            self.bytes = self.bytes.saturating_sub(o.cost);
        }
        old
    }

    pub fn get(&self, topic: &str) -> Option<&Arc<Message>> {
        let mut n = &self.root;
        for level in topic.split('/') {
            n = n.children.get(level)?;
        }
        n.msg.as_ref()
    }

    /// Hand every message whose topic matches `filter` (wildcards allowed, no `$share/`) to
    /// `visit` until it breaks. A leading `+` or `#` does not match topics starting with `$`.
    pub fn visit(&self, filter: &str, visit: &mut Visit<'_>) {
        let levels: Vec<&str> = filter.split('/').collect();
        let _ = matching(&self.root, &levels, true, visit);
    }
}

fn insert(
    node: &mut Node,
    levels: &mut std::str::Split<'_, char>,
    msg: Arc<Message>,
) -> Option<Arc<Message>> {
    let Some(level) = levels.next() else {
        return node.msg.replace(msg);
    };
    if let Some(child) = node.children.get_mut(level) {
        return insert(child, levels, msg);
    }
    let mut child = Node::default();
    insert(&mut child, levels, msg);
    node.children.insert(level.into(), child);
    None
}

fn remove(node: &mut Node, levels: &mut std::str::Split<'_, char>) -> Option<Arc<Message>> {
    let Some(level) = levels.next() else {
        return node.msg.take();
    };
    let child = node.children.get_mut(level)?;
    let old = remove(child, levels);
    if child.is_empty() {
        node.children.remove(level);
        // A level that once held many topics must not keep its table after they are gone.
        if node.children.capacity() > 64 && node.children.len() * 4 < node.children.capacity() {
            node.children.shrink_to_fit();
        }
    }
    old
}

fn matching(node: &Node, levels: &[&str], root: bool, visit: &mut Visit<'_>) -> ControlFlow<()> {
    match levels.split_first() {
        None => {
            if let Some(m) = &node.msg {
                visit(m)?;
            }
        }
        // `#` is last (filter syntax); `a/#` matches `a` itself too.
        Some((&"#", _)) => {
            if let Some(m) = &node.msg {
                visit(m)?;
            }
            for (level, child) in &node.children {
                if !(root && level.starts_with('$')) {
                    subtree(child, visit)?;
                }
            }
        }
        Some((&"+", rest)) => {
            for (level, child) in &node.children {
                if !(root && level.starts_with('$')) {
                    matching(child, rest, false, visit)?;
                }
            }
        }
        Some((level, rest)) => {
            if let Some(child) = node.children.get(*level) {
                matching(child, rest, false, visit)?;
            }
        }
    }
    ControlFlow::Continue(())
}

fn subtree(node: &Node, visit: &mut Visit<'_>) -> ControlFlow<()> {
    if let Some(m) = &node.msg {
        visit(m)?;
    }
    for child in node.children.values() {
        subtree(child, visit)?;
    }
    ControlFlow::Continue(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::codec::QoS;
    use crate::broker::topic::filter_matches;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn msg(topic: &str) -> Arc<Message> {
        Arc::new(Message::new(
            topic.into(),
            Bytes::from_static(b"x"),
            QoS::AtMostOnce,
            true,
            Default::default(),
            None,
            None,
        ))
    }

    fn topics(ix: &RetainedIndex, filter: &str) -> Vec<String> {
        let mut out = Vec::new();
        ix.visit(filter, &mut |m| {
            out.push(m.topic.to_string());
            ControlFlow::Continue(())
        });
        out.sort();
        out
    }

    fn index(topics: &[&str]) -> RetainedIndex {
        let mut ix = RetainedIndex::default();
        for t in topics {
            ix.insert(t, msg(t));
        }
        ix
    }

    #[test]
    fn wildcards_levels_and_dollar_topics() {
        let ix = index(&[
            "a",
            "a/b",
            "a/c",
            "a/b/c",
            "a/",
            "/x",
            "$SYS/uptime",
            "$other/y",
            "b/$z",
        ]);
        assert_eq!(topics(&ix, "a/+"), ["a/", "a/b", "a/c"]);
        assert_eq!(topics(&ix, "a/#"), ["a", "a/", "a/b", "a/b/c", "a/c"]);
        assert_eq!(topics(&ix, "a/b/#"), ["a/b", "a/b/c"]);
        assert_eq!(topics(&ix, "+/+/c"), ["a/b/c"]);
        assert_eq!(topics(&ix, "+"), ["a"]);
        assert_eq!(topics(&ix, "+/x"), ["/x"]);
        assert_eq!(
            topics(&ix, "#"),
            ["/x", "a", "a/", "a/b", "a/b/c", "a/c", "b/$z"],
            "no `$` topic at the first level"
        );
        assert_eq!(topics(&ix, "+/uptime"), Vec::<String>::new());
        assert_eq!(topics(&ix, "$SYS/#"), ["$SYS/uptime"]);
        assert_eq!(topics(&ix, "$other/+"), ["$other/y"]);
        assert_eq!(
            topics(&ix, "b/+"),
            ["b/$z"],
            "`$` matters at the first level only"
        );
        assert_eq!(topics(&ix, "a/b"), ["a/b"]);
        assert_eq!(topics(&ix, "a/b/c/d"), Vec::<String>::new());
        assert_eq!(ix.len(), 9);
    }

    #[test]
    fn replace_remove_and_prune() {
        let mut ix = index(&["a/b/c", "a/b"]);
        assert!(ix.insert("a/b/c", msg("a/b/c")).is_some());
        assert_eq!(ix.len(), 2);
        assert!(ix.remove("a/b/c").is_some());
        assert!(ix.remove("a/b/c").is_none());
        assert!(ix.remove("a/x").is_none());
        assert!(
            ix.remove("a").is_none(),
            "a level without a message of its own"
        );
        assert_eq!(ix.len(), 1);
        assert!(ix.root.children["a"].children["b"].children.is_empty());
        assert!(ix.remove("a/b").is_some());
        assert!(ix.root.is_empty() && ix.is_empty());
    }

    #[test]
    fn deep_topics() {
        let deep: Vec<String> = (0..300).map(|i| i.to_string()).collect();
        let topic = deep.join("/");
        let ix = index(&[&topic, "0/1"]);
        assert_eq!(topics(&ix, &topic), vec![topic.as_str()]);
        assert_eq!(topics(&ix, "0/#").len(), 2);
        let mut plus = deep.clone();
        plus[150] = "+".into();
        assert_eq!(topics(&ix, &plus.join("/")), vec![topic.as_str()]);
        assert!(ix.get(&topic).is_some());
    }

    #[test]
    fn a_visit_stops_when_asked() {
        let ix = index(&["s/1", "s/2", "s/3", "s/4"]);
        let mut seen = 0;
        ix.visit("s/#", &mut |_| {
            seen += 1;
            if seen == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(seen, 2);
    }

    fn level() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("$s".to_string()),
            "[ab]{1,2}".prop_map(|s| s),
        ]
    }

    fn filter_level() -> impl Strategy<Value = String> {
        prop_oneof![level(), Just("+".to_string())]
    }

    proptest! {
        /// The index finds exactly what a scan with `filter_matches` finds.
        #[test]
        fn agrees_with_a_scan(
            topics in proptest::collection::vec(proptest::collection::vec(level(), 1..4), 0..40),
            filter in proptest::collection::vec(filter_level(), 1..4),
            hash in any::<bool>(),
        ) {
            let topics: Vec<String> = topics.iter().map(|t| t.join("/")).collect();
            let mut ix = RetainedIndex::default();
            for t in &topics {
                ix.insert(t, msg(t));
            }
            let mut filter = filter.join("/");
            if hash {
                filter.push_str("/#");
            }
            let mut want: Vec<String> = topics.iter().filter(|t| filter_matches(&filter, t)).cloned().collect();
            want.sort();
            want.dedup();
            prop_assert_eq!(self::topics(&ix, &filter), want);
            let mut distinct = topics.clone();
            distinct.sort();
            distinct.dedup();
            prop_assert_eq!(ix.len(), distinct.len());
        }
    }
}

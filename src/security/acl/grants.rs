//! One client's permissions, compiled from the ACL once per connection (and again after a
//! reload): the rules of its own list and roles, then the `pattern` rules with its `%u`/`%c`
//! substituted, in evaluation order. Rules that can never apply to it are left out, and long
//! lists get an index on the first topic level, so a PUBLISH or delivery decision looks at a
//! handful of candidates whatever the size of the file.
//!
//! [`Grants::decide`] answers exactly what [`Acl::decide`] answers for the same client (a
//! property test holds them together); `serve` and `acl-check` both ask through it.

use std::collections::HashMap;
use std::sync::Arc;

use super::filter::{Filter, Subst};
use super::parse::{READ, WRITE};
use super::{apply_limits, Access, Acl, AclRequest, ClaimRules, Decision, Reason, Rule};
use crate::security::identity::Identity;

/// Lists shorter than this are scanned; an index would cost more than it saves.
const INDEX_FROM: usize = 8;

/// The compiled permissions of one client.
#[derive(Debug, Clone)]
pub struct Grants {
    acl: Arc<Acl>,
    /// The client's token claims: their rules are steps numbered after the file's rules.
    claims: Option<Arc<ClaimRules>>,
    own: Steps,
    patterns: Patterns,
}

#[derive(Debug, Clone)]
enum Patterns {
    /// The file has no `pattern` lines: after the own list, default deny.
    None,
    /// Patterns exist and the client's username or client id may not meet them.
    Dangerous,
    Steps(Steps),
}

#[derive(Debug, Clone)]
struct Step {
    rule: u32,
    deny: bool,
    access: u8,
    /// The first byte every topic this filter matches starts with, when its first level is
    /// literal and not empty: most steps are ruled out by one comparison, without following the
    /// filter's pointers.
    first: Option<u8>,
    /// The rule's filter (a pattern's with this client's values substituted), kept here rather
    /// than looked up in the file's rules: the steps of one client stay close in memory.
    filter: Filter,
}

#[derive(Debug, Clone, Default)]
struct Steps {
    steps: Box<[Step]>,
    index: Option<Index>,
}

/// Step positions by the literal first level of their filter; `wild` holds the steps whose
/// first level is a wildcard. Both in evaluation order.
#[derive(Debug, Clone)]
struct Index {
    by_first: HashMap<Box<str>, Box<[u32]>>,
    wild: Box<[u32]>,
}

impl Steps {
    fn new(steps: Vec<Step>) -> Steps {
        let index = (steps.len() >= INDEX_FROM).then(|| {
            let mut by_first: HashMap<Box<str>, Vec<u32>> = HashMap::new();
            let mut wild = Vec::new();
            for (pos, s) in steps.iter().enumerate() {
                let pos = pos as u32;
                match s.filter.first_literal() {
                    Some(l) => by_first.entry(l.into()).or_default().push(pos),
                    None => wild.push(pos),
                }
            }
            Index {
                by_first: by_first
                    .into_iter()
                    .map(|(k, v)| (k, v.into_boxed_slice()))
                    .collect(),
                wild: wild.into(),
            }
        });
        Steps {
            steps: steps.into(),
            index,
        }
    }

    /// The first step that decides `topic` for access `bit`: a matching deny, or a matching
    /// rule granting `bit`.
    #[inline]
    fn find(&self, topic: &str, bit: u8) -> Option<&Step> {
        let head = topic.as_bytes().first().copied();
        let decides = |s: &&Step| {
            (s.deny || s.access & bit != 0)
                && (s.first.is_none() || s.first == head)
                && s.filter.matches(topic, &Subst::NONE)
        };
        let Some(index) = &self.index else {
            return self.steps.iter().find(decides);
        };
        let first = topic.split('/').next().unwrap_or(topic);
        let lit: &[u32] = index.by_first.get(first).map_or(&[], |v| v);
        // Merge the two ordered position lists so the first match in file order wins.
        let (mut a, mut b) = (lit.iter().peekable(), index.wild.iter().peekable());
        loop {
            let pos = match (a.peek(), b.peek()) {
                (Some(&&x), Some(&&y)) if x < y => a.next(),
                (Some(_), Some(_)) | (None, Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, None) => return None,
            };
            let s = &self.steps[*pos? as usize];
            if decides(&s) {
                return Some(s);
            }
        }
    }
}

impl Step {
    fn new(rule: u32, deny: bool, access: u8, filter: Filter) -> Step {
        let first = filter.first_literal().and_then(|l| l.bytes().next());
        Step {
            rule,
            deny,
            access,
            first,
            filter,
        }
    }
}

impl Grants {
    /// Compile `acl` for the client `id` (and the claims of its token, if it holds one).
    pub fn new(acl: Arc<Acl>, id: &Identity) -> Grants {
        let claims = id.claims();
        let mut own = Vec::new();
        let lists = acl.own_lists(id, claims.as_deref());
        for list in lists.clone() {
            own.extend(
                list.denies
                    .iter()
                    .map(|&i| Step::new(i, true, 0, acl.rules[i as usize].filter.clone())),
            );
        }
        for list in lists {
            own.extend(list.allows.iter().map(|&i| {
                let r = &acl.rules[i as usize];
                Step::new(i, false, r.access, r.filter.clone())
            }));
        }
        if let Some(c) = &claims {
            let s = Subst::of(id);
            let base = acl.rules.len();
            for (k, r) in c.rules().iter().enumerate() {
                if !ClaimRules::usable(r, id) {
                    continue;
                }
                if let (Some(f), Ok(n)) = (r.filter.substituted(&s), u32::try_from(base + k)) {
                    own.push(Step::new(n, false, r.access, f));
                }
            }
        }
        let own = Steps::new(own);
        let patterns = if acl.patterns.denies.is_empty() && acl.patterns.allows.is_empty() {
            Patterns::None
        } else if acl.dangerous(id) {
            Patterns::Dangerous
        } else {
            let s = Subst::of(id);
            let s_deny = s.for_deny();
            let mut steps = Vec::new();
            for (ids, subst) in [(&acl.patterns.denies, &s_deny), (&acl.patterns.allows, &s)] {
                for &i in ids.iter() {
                    let r = &acl.rules[i as usize];
                    if !Acl::pattern_applies(r, id) {
                        continue;
                    }
                    if let Some(f) = r.filter.substituted(subst) {
                        steps.push(Step::new(i, r.is_deny(), r.access, f));
                    }
                }
            }
            Patterns::Steps(Steps::new(steps))
        };
        Grants {
            acl,
            claims,
            own,
            patterns,
        }
    }

    /// The rule a step stands for: the file's, or one of the token's after them.
    fn rule(&self, step: &Step) -> &Rule {
        let i = step.rule as usize;
        match self.acl.rules.get(i) {
            Some(r) => r,
            None => {
                let claims = self.claims.as_deref().map(ClaimRules::rules).unwrap_or(&[]);
                // Steps past the file's rules exist only for claim rules (see `new`).
                &claims[i - self.acl.rules.len()]
            }
        }
    }

    /// The ACL these grants were compiled from.
    pub fn acl(&self) -> &Arc<Acl> {
        &self.acl
    }

    /// Decide one request. `id` must be the client these grants were compiled for (it is read
    /// only for SUBSCRIBE, which asks the ACL's filter-overlap logic directly: it is not on the
    /// per-message path). PUBLISH and delivery decisions allocate nothing.
    pub fn decide<'a>(&'a self, id: &Identity, req: &AclRequest) -> Decision<'a> {
        let bit = match req.access {
            Access::Read => READ,
            Access::Write => WRITE,
            Access::Subscribe | Access::SubscribeAll => {
                return self.acl.decide_with(id, self.claims.as_deref(), req)
            }
        };
        let topic = req.topic;
        if let Some(d) = Decision::before_rules(topic, bit) {
            return d;
        }
        let found = match self.own.find(topic, bit) {
            Some(s) => Some(s),
            None => match &self.patterns {
                Patterns::None => None,
                Patterns::Dangerous => return Decision::deny(None, Reason::DangerousIdentity),
                Patterns::Steps(p) => p.find(topic, bit),
            },
        };
        match found {
            Some(s) => {
                let r = self.rule(s);
                if s.deny {
                    Decision::deny(Some(r), Reason::DenyRule)
                } else {
                    apply_limits(r, req)
                }
            }
            None => Decision::deny(None, Reason::DefaultDeny),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn same(acl: &Arc<Acl>, id: &Identity, req: &AclRequest) -> Result<(), String> {
        let g = Grants::new(acl.clone(), id);
        let a = acl.decide(id, req);
        let b = g.decide(id, req);
        let key = |d: &Decision| (d.allowed, d.rule.map(|r| r.line()), d.reason, d.max_qos);
        if key(&a) == key(&b) {
            Ok(())
        } else {
            Err(format!(
                "{id:?} {req:?}: acl {:?} grants {:?}",
                key(&a),
                key(&b)
            ))
        }
    }

    #[test]
    fn index_keeps_file_order_across_literal_and_wildcard_rules() {
        // Long enough to be indexed: the deny on the wildcard rule comes first in file order
        // for "a/secret", the literal grant first for "a/x".
        let mut text = String::from("user u\ntopic deny +/secret\n");
        for i in 0..20 {
            text.push_str(&format!("topic read b{i}/#\n"));
        }
        text.push_str("topic read a/#\ntopic write[max_qos=1] +/#\n");
        let acl = Arc::new(Acl::parse(&text, "t.acl").unwrap());
        let id = Identity::with_username("c", "u");
        let g = Grants::new(acl.clone(), &id);
        assert!(g.own.index.is_some());
        let read = |t| g.decide(&id, &AclRequest::new(Access::Read, t));
        assert!(!read("a/secret").allowed);
        assert_eq!(read("a/secret").rule.map(|r| r.line()), Some(2));
        assert_eq!(read("a/x").rule.map(|r| r.line()), Some(23));
        assert!(read("b7/q").allowed);
        assert!(!read("c/q").allowed);
        let w = AclRequest {
            qos: 2,
            ..AclRequest::new(Access::Write, "z/q")
        };
        assert_eq!(g.decide(&id, &w).reason, Reason::QosAboveLimit);
        for t in ["a/secret", "a/x", "b7/q", "c/q", "$SYS/x", "b19", ""] {
            for access in [Access::Read, Access::Write] {
                same(&acl, &id, &AclRequest::new(access, t)).unwrap();
            }
        }
    }

    #[test]
    fn patterns_are_substituted_once() {
        let acl = Arc::new(
            Acl::parse(
                "pattern deny devices/%c/firmware\npattern readwrite devices/%c/#\npattern read users/%u\n",
                "p.acl",
            )
            .unwrap(),
        );
        let id = Identity::with_username("dev1", "alice");
        let g = Grants::new(acl.clone(), &id);
        let ask = |a, t| g.decide(&id, &AclRequest::new(a, t)).allowed;
        assert!(ask(Access::Write, "devices/dev1/x"));
        assert!(!ask(Access::Write, "devices/dev1/firmware"));
        assert!(!ask(Access::Write, "devices/dev2/x"));
        assert!(ask(Access::Read, "users/alice"));
        assert!(!ask(Access::Read, "users/bob"));
        // Anonymous: the %u pattern is not one of its steps at all.
        let anon = Identity::anonymous("dev1");
        let ga = Grants::new(acl.clone(), &anon);
        match &ga.patterns {
            Patterns::Steps(s) => assert_eq!(s.steps.len(), 2),
            p => panic!("{p:?}"),
        }
        // A dangerous client id gets nothing through patterns.
        let bad = Identity::with_username("a+b", "alice");
        let gb = Grants::new(acl, &bad);
        assert!(matches!(gb.patterns, Patterns::Dangerous));
    }

    fn arb_rule() -> impl Strategy<Value = String> {
        let access = prop_oneof![
            Just(""),
            Just("read "),
            Just("write "),
            Just("readwrite "),
            Just("deny "),
            Just("write[max_qos=1] "),
            Just("read[retain=false] "),
        ];
        let level = prop_oneof![
            Just("a"),
            Just("b"),
            Just("+"),
            Just("%u"),
            Just("%c"),
            Just("x%uy"),
            Just("$SYS"),
            Just("$s"),
            Just(""),
        ];
        let topic = (proptest::collection::vec(level, 1..4), any::<bool>()).prop_map(|(l, h)| {
            let mut t = l.join("/");
            if h {
                t.push_str("/#");
            }
            t
        });
        let kind = prop_oneof![
            Just("topic"),
            Just("pattern"),
            Just("user u"),
            Just("user v"),
            Just("role r"),
            Just("roles r"),
        ];
        (kind, access, topic).prop_map(|(k, a, t)| match k {
            "topic" | "pattern" => format!("{k} {a}{t}"),
            other => other.to_string(),
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

        #[test]
        fn grants_decide_exactly_as_the_acl(
            rules in proptest::collection::vec(arb_rule(), 0..24),
            user in prop_oneof![Just(None), Just(Some("u")), Just(Some("v")), Just(Some("")),
                                Just(Some("a/b")), Just(Some("a+")), Just(Some("$u"))],
            client in prop_oneof![Just("c"), Just(""), Just("a"), Just("c/d"), Just("#"), Just("$c")],
            roles in prop_oneof![Just(vec![]), Just(vec!["r".to_string()])],
            topic in proptest::collection::vec(
                prop_oneof![Just("a"), Just("b"), Just("u"), Just("c"), Just("xuy"), Just("$SYS"),
                            Just("$s"), Just(""), Just("$share"), Just("a/b")], 1..5),
            qos in 0u8..3,
            retain in any::<bool>(),
        ) {
            let text = rules.join("\n");
            if let Ok(acl) = Acl::parse(&text, "p.acl") {
                let acl = Arc::new(acl);
                let mut id = match user {
                    Some(u) => Identity::with_username(client, u),
                    None => Identity::anonymous(client),
                };
                id.set_roles(roles);
                let topic = topic.join("/");
                for access in [Access::Read, Access::Write] {
                    let req = AclRequest { access, topic: &topic, qos, retain };
                    if let Err(e) = same(&acl, &id, &req) {
                        prop_assert!(false, "{}\n{}", text, e);
                    }
                }
            }
        }
    }
}

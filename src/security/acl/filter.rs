//! Topic filters as the ACL compiles them, and the three questions asked of them: does a filter
//! match a topic name (every PUBLISH and delivery), what do two filters have in common, and does
//! one filter cover another (SUBSCRIBE checks and the linter).
//!
//! The `$` rule of MQTT and Mosquitto holds everywhere: a filter whose first character is not `$`
//! never matches a topic whose first character is `$`, and the other way round.

use std::borrow::Cow;

use mqsec_codec::topic::{check_topic_filter, check_topic_name};
use mqsec_codec::TopicError;

/// Longest topic or filter MQTT can carry (a two-byte length prefix).
pub use mqsec_codec::topic::MAX_TOPIC_LEN;

/// One piece of a pattern level: literal text or a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Lit(Box<str>),
    /// `%u`
    User,
    /// `%c`
    Client,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Level {
    Lit(Box<str>),
    Plus,
    Hash,
    /// A `pattern` level holding `%u` or `%c`. It matches exactly ONE topic level equal to the
    /// level with the values substituted, so a value can never spill into neighbouring levels.
    Subst(Box<[Piece]>),
}

/// A compiled ACL topic filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Filter {
    pub levels: Box<[Level]>,
    pub uses_user: bool,
    pub uses_client: bool,
}

/// The values a pattern's placeholders take for one client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subst<'a> {
    pub user: Option<&'a str>,
    pub client: &'a str,
    /// Whether a placeholder may take an empty value. Allow patterns: no (an empty value would
    /// grant a tree that belongs to nobody in particular); deny patterns: yes, as in Mosquitto, so
    /// a deny never covers less than Mosquitto's does.
    pub empty_ok: bool,
}

impl<'a> Subst<'a> {
    pub const NONE: Subst<'static> = Subst {
        user: None,
        client: "",
        empty_ok: false,
    };

    /// `%u`/`%c` of `id`, for allow rules (no empty value).
    pub fn of(id: &'a crate::security::identity::Identity) -> Subst<'a> {
        Subst {
            user: id.username.as_deref(),
            client: &id.client_id,
            empty_ok: false,
        }
    }

    /// The same values for deny rules (an empty value allowed, as in Mosquitto).
    pub fn for_deny(self) -> Subst<'a> {
        Subst {
            empty_ok: true,
            ..self
        }
    }
}

/// Check a topic filter as Mosquitto's `mosquitto_sub_topic_check` does (the codec's check, which
/// the broker applies to SUBSCRIBE): `+` and `#` occupy a whole level, `#` only as the last one.
pub fn validate_filter(topic: &str) -> Result<(), String> {
    check_topic_filter(topic).map_err(|e| match e {
        TopicError::HashPlacement | TopicError::PlusPlacement => {
            format!("invalid topic filter \"{topic}\": {e}")
        }
        TopicError::Empty => "empty topic filter".into(),
        _ => e.to_string(),
    })
}

/// Check a topic name (what PUBLISH carries and deliveries are for): no wildcards.
pub fn validate_name(topic: &str) -> Result<(), String> {
    check_topic_name(topic).map_err(|e| match e {
        TopicError::Wildcard => format!(
            "\"{topic}\" is a topic filter, not a topic name ('+' and '#' are wildcards; use --access subscribe for filters)"
        ),
        TopicError::Empty => "empty topic name".into(),
        _ => e.to_string(),
    })
}

impl Filter {
    /// Compile a filter already checked by [`validate_filter`]. With `substitute`, `%u`/`%c`
    /// become placeholders (Mosquitto does that for `pattern` lines only).
    pub fn compile(topic: &str, substitute: bool) -> Filter {
        let mut uses_user = false;
        let mut uses_client = false;
        let levels = topic
            .split('/')
            .map(|l| match l {
                "+" => Level::Plus,
                "#" => Level::Hash,
                _ if substitute && (l.contains("%u") || l.contains("%c")) => {
                    let pieces = split_pieces(l);
                    uses_user |= pieces.contains(&Piece::User);
                    uses_client |= pieces.contains(&Piece::Client);
                    Level::Subst(pieces.into_boxed_slice())
                }
                _ => Level::Lit(l.into()),
            })
            .collect();
        Filter {
            levels,
            uses_user,
            uses_client,
        }
    }

    /// Whether the filter's first character is `$`, given the placeholder values.
    fn starts_with_dollar(&self, s: &Subst) -> bool {
        match self.levels.first() {
            Some(Level::Lit(l)) => l.starts_with('$'),
            // The first character of the substituted level: an empty value (allowed for deny
            // patterns) yields it to the next piece.
            Some(Level::Subst(p)) => p
                .iter()
                .map(|piece| match piece {
                    Piece::Lit(l) => &**l,
                    Piece::User => s.user.unwrap_or(""),
                    Piece::Client => s.client,
                })
                .find(|v| !v.is_empty())
                .is_some_and(|v| v.starts_with('$')),
            _ => false,
        }
    }

    /// Does this filter match the topic NAME `topic`? The hot path: one pass over the topic's
    /// bytes, no allocation; a literal level is compared in place (no search for its end).
    #[inline]
    pub fn matches(&self, topic: &str, s: &Subst) -> bool {
        if topic.starts_with('$') != self.starts_with_dollar(s) {
            return false;
        }
        let t = topic.as_bytes();
        // Start of the current topic level; `t.len() + 1` once every level is consumed.
        let mut pos = 0;
        let done = t.len() + 1;
        for level in self.levels.iter() {
            if let Level::Hash = level {
                // `a/#` also matches `a` itself (MQTT: '#' includes the parent level).
                return true;
            }
            if pos == done {
                return false;
            }
            let end = match level {
                Level::Lit(l) => {
                    let l = l.as_bytes();
                    if !t[pos..].starts_with(l) {
                        return false;
                    }
                    pos + l.len()
                }
                Level::Plus => level_end(t, pos),
                Level::Subst(pieces) => {
                    let end = level_end(t, pos);
                    if !subst_matches(pieces, &topic[pos..end], s) {
                        return false;
                    }
                    end
                }
                Level::Hash => return true,
            };
            pos = match t.get(end) {
                None => done,
                Some(b'/') => end + 1,
                Some(_) => return false,
            };
        }
        pos == done
    }

    /// The filter with placeholders replaced, for filter-vs-filter questions. `None` when a
    /// placeholder has no usable value (anonymous `%u`, empty value).
    pub fn resolve<'a>(&'a self, s: &Subst) -> Option<Vec<Lv<'a>>> {
        self.levels
            .iter()
            .map(|l| {
                Some(match l {
                    Level::Lit(t) => Lv::Lit(Cow::Borrowed(&**t)),
                    Level::Plus => Lv::Plus,
                    Level::Hash => Lv::Hash,
                    Level::Subst(pieces) => {
                        let mut out = String::new();
                        for p in pieces.iter() {
                            match p {
                                Piece::Lit(t) => out.push_str(t),
                                Piece::User => out.push_str(usable(s.user?, s.empty_ok)?),
                                Piece::Client => out.push_str(usable(s.client, s.empty_ok)?),
                            }
                        }
                        Lv::Lit(Cow::Owned(out))
                    }
                })
            })
            .collect()
    }

    /// The filter with placeholders replaced by one client's values, as a filter of plain levels
    /// that matches exactly the topics `self.matches(_, s)` matches. `None` when it can match
    /// nothing (a placeholder without a usable value, or a value spanning levels).
    pub fn substituted(&self, s: &Subst) -> Option<Filter> {
        let levels = self
            .levels
            .iter()
            .map(|l| match l {
                Level::Subst(pieces) => {
                    let mut out = String::new();
                    for p in pieces.iter() {
                        match p {
                            Piece::Lit(t) => out.push_str(t),
                            Piece::User => out.push_str(usable(s.user?, s.empty_ok)?),
                            Piece::Client => out.push_str(usable(s.client, s.empty_ok)?),
                        }
                    }
                    // One placeholder level matches one topic level: a value holding '/' never can.
                    (!out.contains('/')).then(|| Level::Lit(out.into()))
                }
                other => Some(other.clone()),
            })
            .collect::<Option<Box<[Level]>>>()?;
        Some(Filter {
            levels,
            uses_user: false,
            uses_client: false,
        })
    }

    /// The first level when it is literal text (the key of a first-level index); `None` when it
    /// is a wildcard (or a placeholder), which any first level may meet.
    pub fn first_literal(&self) -> Option<&str> {
        match self.levels.first() {
            Some(Level::Lit(l)) => Some(l),
            _ => None,
        }
    }

    /// The filter read literally (placeholders as text): for the linter, which compares rules
    /// with each other rather than with a client.
    pub fn literal(&self) -> Vec<Lv<'_>> {
        self.levels
            .iter()
            .map(|l| match l {
                Level::Lit(t) => Lv::Lit(Cow::Borrowed(&**t)),
                Level::Plus => Lv::Plus,
                Level::Hash => Lv::Hash,
                Level::Subst(pieces) => Lv::Lit(Cow::Owned(
                    pieces
                        .iter()
                        .map(|p| match p {
                            Piece::Lit(t) => &**t,
                            Piece::User => "%u",
                            Piece::Client => "%c",
                        })
                        .collect(),
                )),
            })
            .collect()
    }

    /// True when the filter is made of wildcards only (`#`, `+/#`, ...): it grants a whole tree.
    pub fn wildcard_only(&self) -> bool {
        matches!(self.levels.last(), Some(Level::Hash))
            && self
                .levels
                .iter()
                .all(|l| matches!(l, Level::Plus | Level::Hash))
    }
}

/// Where the topic level starting at `pos` ends (the next '/' or the end).
#[inline]
fn level_end(t: &[u8], pos: usize) -> usize {
    t[pos..]
        .iter()
        .position(|&b| b == b'/')
        .map_or(t.len(), |i| pos + i)
}

fn usable(s: &str, empty_ok: bool) -> Option<&str> {
    (empty_ok || !s.is_empty()).then_some(s)
}

fn split_pieces(level: &str) -> Vec<Piece> {
    // Same scan as Mosquitto's substitution: '%' followed by 'u' or 'c' is a placeholder,
    // any other '%' is literal text.
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut chars = level.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.peek() {
                Some('u') | Some('c') => {
                    if !lit.is_empty() {
                        pieces.push(Piece::Lit(std::mem::take(&mut lit).into()));
                    }
                    let p = if chars.next() == Some('u') {
                        Piece::User
                    } else {
                        Piece::Client
                    };
                    pieces.push(p);
                    continue;
                }
                _ => {}
            }
        }
        lit.push(c);
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit.into()));
    }
    pieces
}

#[inline]
fn subst_matches(pieces: &[Piece], level: &str, s: &Subst) -> bool {
    let mut rest = level;
    for p in pieces {
        let v: &str = match p {
            Piece::Lit(l) => l,
            Piece::User => match s.user {
                Some(u) if s.empty_ok || !u.is_empty() => u,
                _ => return false,
            },
            Piece::Client => {
                if s.client.is_empty() && !s.empty_ok {
                    return false;
                }
                s.client
            }
        };
        match rest.strip_prefix(v) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

/// A level of a resolved filter (placeholders substituted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lv<'a> {
    Lit(Cow<'a, str>),
    Plus,
    Hash,
}

/// Parse a (validated) request filter into levels borrowing from it.
pub(crate) fn levels_of(filter: &str) -> Vec<Lv<'_>> {
    filter
        .split('/')
        .map(|l| match l {
            "+" => Lv::Plus,
            "#" => Lv::Hash,
            _ => Lv::Lit(Cow::Borrowed(l)),
        })
        .collect()
}

fn lit_dollar(levels: &[Lv]) -> bool {
    matches!(levels.first(), Some(Lv::Lit(l)) if l.starts_with('$'))
}

fn wild_first(levels: &[Lv]) -> bool {
    matches!(levels.first(), Some(Lv::Plus | Lv::Hash))
}

/// The filter matching exactly the topics both `a` and `b` match, or `None` when they share none.
pub(crate) fn intersect<'x>(a: &[Lv<'x>], b: &[Lv<'x>]) -> Option<Vec<Lv<'x>>> {
    // A leading wildcard never reaches `$` topics, so it shares nothing with a `$` literal.
    if (wild_first(a) && lit_dollar(b)) || (wild_first(b) && lit_dollar(a)) {
        return None;
    }
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let mut i = 0;
    loop {
        match (a.get(i), b.get(i)) {
            (Some(Lv::Hash), _) => {
                out.extend(b[i.min(b.len())..].iter().cloned());
                return Some(out);
            }
            (_, Some(Lv::Hash)) => {
                out.extend(a[i.min(a.len())..].iter().cloned());
                return Some(out);
            }
            (None, None) => return Some(out),
            (None, Some(_)) | (Some(_), None) => return None,
            (Some(Lv::Plus), Some(x)) | (Some(x), Some(Lv::Plus)) => out.push(x.clone()),
            (Some(Lv::Lit(x)), Some(Lv::Lit(y))) => {
                if x != y {
                    return None;
                }
                out.push(Lv::Lit(x.clone()));
            }
        }
        i += 1;
    }
}

/// Does `outer` match every topic `inner` matches?
pub(crate) fn covers(outer: &[Lv], inner: &[Lv]) -> bool {
    if wild_first(outer) && lit_dollar(inner) {
        return false;
    }
    for (i, o) in outer.iter().enumerate() {
        match o {
            Lv::Hash => return true,
            Lv::Plus => match inner.get(i) {
                Some(Lv::Plus | Lv::Lit(_)) => {}
                _ => return false,
            },
            Lv::Lit(a) => match inner.get(i) {
                Some(Lv::Lit(b)) if a == b => {}
                _ => return false,
            },
        }
    }
    inner.len() == outer.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(t: &str) -> Filter {
        validate_filter(t).unwrap();
        Filter::compile(t, true)
    }

    fn m(filter: &str, topic: &str) -> bool {
        f(filter).matches(topic, &Subst::NONE)
    }

    /// The obvious implementation (split both, compare level by level), to hold `matches` to.
    fn reference(filter: &Filter, topic: &str, s: &Subst) -> bool {
        if topic.starts_with('$') != filter.starts_with_dollar(s) {
            return false;
        }
        let mut parts = topic.split('/');
        for level in filter.levels.iter() {
            if let Level::Hash = level {
                return true;
            }
            let Some(t) = parts.next() else {
                return false;
            };
            let ok = match level {
                Level::Plus => true,
                Level::Lit(l) => &**l == t,
                Level::Subst(pieces) => subst_matches(pieces, t, s),
                Level::Hash => true,
            };
            if !ok {
                return false;
            }
        }
        parts.next().is_none()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 4000, ..Default::default() })]

        #[test]
        fn matches_agrees_with_the_split_reference(
            filter in "(a|ab|\\+|%u|x%cy|\\$s|)(/(a|ab|b|\\+|%u|%c|))*(/#)?|#",
            topic in "(a|ab|b|\\$s|u|xcy|)(/(a|ab|b|u|c|))*",
            user in proptest::option::of("(u|a|)"),
            client in "(c|a|)",
            empty_ok in proptest::prelude::any::<bool>(),
        ) {
            if validate_filter(&filter).is_ok() {
                let fl = Filter::compile(&filter, true);
                let s = Subst { user: user.as_deref(), client: &client, empty_ok };
                proptest::prop_assert_eq!(fl.matches(&topic, &s), reference(&fl, &topic, &s),
                    "{} vs {}", filter, topic);
            }
        }
    }

    #[test]
    fn wildcard_matching_follows_mqtt() {
        assert!(m("#", "a"));
        assert!(m("#", "a/b/c"));
        assert!(m("a/#", "a"));
        assert!(m("a/#", "a/b"));
        assert!(!m("a/#", "ab"));
        assert!(m("a/+", "a/b"));
        assert!(m("a/+", "a/"));
        assert!(!m("a/+", "a"));
        assert!(!m("a/+", "a/b/c"));
        assert!(m("+/+", "/x"));
        assert!(m("a/b", "a/b"));
        assert!(!m("a/b", "a/b/c"));
        assert!(!m("a/b/c", "a/b"));
    }

    #[test]
    fn dollar_topics_need_a_dollar_filter() {
        assert!(!m("#", "$SYS/broker/uptime"));
        assert!(!m("+/broker/uptime", "$SYS/broker/uptime"));
        assert!(m("$SYS/#", "$SYS/broker/uptime"));
        assert!(m("$SYS/+/uptime", "$SYS/broker/uptime"));
        assert!(!m("$SYS/#", "SYS/broker"));
    }

    #[test]
    fn placeholders_match_one_whole_level() {
        let p = f("sensors/%u/#");
        let s = |u| Subst {
            user: Some(u),
            client: "c1",
            empty_ok: false,
        };
        assert!(p.matches("sensors/alice/t", &s("alice")));
        assert!(!p.matches("sensors/bob/t", &s("alice")));
        // "a/b" can never be one level.
        assert!(!p.matches("sensors/a/b/t", &s("a/b")));
        assert!(!p.matches("sensors//t", &s("")));
        let q = f("dev-%c-x/in");
        assert!(q.matches("dev-c1-x/in", &s("u")));
        assert!(!q.matches("dev-c2-x/in", &s("u")));
        // Anonymous: %u never matches.
        assert!(!p.matches(
            "sensors/alice",
            &Subst {
                user: None,
                client: "alice",
                empty_ok: false,
            }
        ));
        // A literal '%' that is not a placeholder stays literal.
        assert!(f("a/%x%%c").matches("a/%x%c1", &s("u")));
    }

    #[test]
    fn validation_matches_mosquitto() {
        assert!(validate_filter("a/#/b").is_err());
        assert!(validate_filter("a+").is_err());
        assert!(validate_filter("a/b#").is_err());
        assert!(validate_filter("").is_err());
        assert!(validate_filter("a b/c").is_ok());
        assert!(validate_name("a/+").is_err());
        assert!(validate_name("a/b").is_ok());
    }

    fn lv(t: &str) -> Vec<Lv<'_>> {
        levels_of(t)
    }

    #[test]
    fn intersections() {
        assert_eq!(intersect(&lv("#"), &lv("a/b")), Some(lv("a/b")));
        assert_eq!(intersect(&lv("a/+"), &lv("+/b")), Some(lv("a/b")));
        assert_eq!(intersect(&lv("a/#"), &lv("a")), Some(lv("a")));
        assert_eq!(intersect(&lv("a/+/#"), &lv("+/b")), Some(lv("a/b")));
        assert_eq!(intersect(&lv("a/b"), &lv("a/c")), None);
        assert_eq!(intersect(&lv("a/b/c"), &lv("a/b")), None);
        assert_eq!(intersect(&lv("#"), &lv("$SYS/#")), None);
        assert_eq!(intersect(&lv("+/x"), &lv("$SYS/x")), None);
        assert_eq!(intersect(&lv("$SYS/#"), &lv("$SYS/a")), Some(lv("$SYS/a")));
    }

    #[test]
    fn coverage() {
        assert!(covers(&lv("#"), &lv("a/b")));
        assert!(covers(&lv("a/#"), &lv("a")));
        assert!(covers(&lv("a/#"), &lv("a/+/c")));
        assert!(covers(&lv("a/+"), &lv("a/b")));
        assert!(!covers(&lv("a/+"), &lv("a/#")));
        assert!(!covers(&lv("a/b"), &lv("a/+")));
        assert!(!covers(&lv("#"), &lv("$SYS/x")));
        assert!(covers(&lv("$SYS/#"), &lv("$SYS/x")));
        assert!(!covers(&lv("a"), &lv("a/b")));
    }
}

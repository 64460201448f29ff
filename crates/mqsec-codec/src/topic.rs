//! Topic names and topic filters (MQTT 5 sections 4.7 and 4.8.2; 3.1.1 section 4.7): the one
//! syntax check and the one matcher that the codec, the broker's router and the ACL share, so a
//! topic the broker accepts, a subscription it delivers to and a rule `acl-check` explains can never
//! disagree about what a topic means.
//!
//! What stays outside: the broker's level limit and subscription tree (`broker::topic`), and the
//! ACL's `%u`/`%c` placeholders, which plug into [`matches_levels`] as their own kind of level.

/// Longest topic or filter MQTT can carry (a two-byte length prefix).
pub const MAX_TOPIC_LEN: usize = 65_535;

/// Why a string is not a valid topic name or filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("empty topic")]
    Empty,
    #[error("topic longer than {MAX_TOPIC_LEN} bytes")]
    TooLong,
    #[error("topic contains a NUL character")]
    Nul,
    /// A wildcard in a topic name (PUBLISH, will, delivery).
    #[error("'+' and '#' are wildcards, not allowed in a topic name")]
    Wildcard,
    #[error("'#' must be a whole level and the last one")]
    HashPlacement,
    #[error("'+' must be a whole level")]
    PlusPlacement,
    /// `$share/` without a non-empty, wildcard-free group and a non-empty filter after it.
    #[error("expected $share/GROUP/FILTER")]
    Shared,
}

fn check_common(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        Err(TopicError::Empty)
    } else if topic.len() > MAX_TOPIC_LEN {
        Err(TopicError::TooLong)
    } else if topic.contains('\0') {
        Err(TopicError::Nul)
    } else {
        Ok(())
    }
}

/// A topic name as PUBLISH and wills carry it: non-empty, no wildcard characters, no U+0000.
pub fn check_topic_name(topic: &str) -> Result<(), TopicError> {
    check_common(topic)?;
    if topic.contains(['+', '#']) {
        return Err(TopicError::Wildcard);
    }
    Ok(())
}

/// A topic filter as SUBSCRIBE and UNSUBSCRIBE carry it: non-empty, no U+0000, `+` only as a whole
/// level, `#` only as the whole last level (Mosquitto's `mosquitto_sub_topic_check` agrees).
/// `$share/GROUP/FILTER` passes as a filter; [`split_shared`] checks the group.
pub fn check_topic_filter(filter: &str) -> Result<(), TopicError> {
    check_common(filter)?;
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return Err(TopicError::HashPlacement);
        }
        if level.contains('+') && level != "+" {
            return Err(TopicError::PlusPlacement);
        }
    }
    Ok(())
}

/// [`check_topic_name`] as a yes/no.
pub fn valid_topic_name(topic: &str) -> bool {
    check_topic_name(topic).is_ok()
}

/// [`check_topic_filter`] as a yes/no.
pub fn valid_topic_filter(filter: &str) -> bool {
    check_topic_filter(filter).is_ok()
}

/// Splits a SUBSCRIBE filter into its share group (for `$share/GROUP/FILTER`) and the filter
/// proper. The group must be non-empty and free of wildcards, the filter non-empty; the filter's
/// own syntax is [`check_topic_filter`]'s business.
pub fn split_shared(raw: &str) -> Result<(Option<&str>, &str), TopicError> {
    match raw.strip_prefix("$share/") {
        None => Ok((None, raw)),
        Some(rest) => match rest.split_once('/') {
            Some((group, filter))
                if !group.is_empty() && !group.contains(['+', '#']) && !filter.is_empty() =>
            {
                Ok((Some(group), filter))
            }
            _ => Err(TopicError::Shared),
        },
    }
}

/// One level of a topic filter as [`matches_levels`] walks it. `T` is whatever the caller's
/// filters hold for a non-wildcard level (text, or text with placeholders).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterLevel<T> {
    Exact(T),
    Plus,
    Hash,
}

impl<'a> FilterLevel<&'a str> {
    /// The level of a filter string: `+`, `#` or text.
    pub fn parse(level: &'a str) -> Self {
        match level {
            "+" => FilterLevel::Plus,
            "#" => FilterLevel::Hash,
            text => FilterLevel::Exact(text),
        }
    }
}

/// Does a filter (no `$share/` prefix), given as its levels, match the topic name `topic`?
/// `exact(level, topic_level)` decides a non-wildcard level.
///
/// MQTT's rules: `+` matches exactly one level (an empty one too), `#` the rest including the
/// parent level (`a/#` matches `a`), and a filter starting with a wildcard never matches a topic
/// starting with `$`. No allocation: this is the publish and ACL hot path.
#[inline]
pub fn matches_levels<T>(
    filter: impl IntoIterator<Item = FilterLevel<T>>,
    topic: &str,
    mut exact: impl FnMut(T, &str) -> bool,
) -> bool {
    let mut filter = filter.into_iter().peekable();
    if topic.starts_with('$')
        && matches!(filter.peek(), Some(FilterLevel::Plus | FilterLevel::Hash))
    {
        return false;
    }
    let mut parts = topic.split('/');
    for level in filter {
        match level {
            FilterLevel::Hash => return true,
            FilterLevel::Plus => {
                if parts.next().is_none() {
                    return false;
                }
            }
            FilterLevel::Exact(l) => match parts.next() {
                Some(t) if exact(l, t) => {}
                _ => return false,
            },
        }
    }
    parts.next().is_none()
}

/// Does the filter string `filter` (no `$share/` prefix) match the topic name `topic`?
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    matches_levels(filter.split('/').map(FilterLevel::parse), topic, |f, t| {
        f == t
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "a",
            "/",
            "a/b",
            "sport/tennis/player1",
            "$SYS/x",
            " ",
            "a//b",
        ] {
            assert!(valid_topic_name(ok), "{ok:?}");
        }
        for bad in ["", "a/+", "#", "a/#", "a+b", "a\0b"] {
            assert!(!valid_topic_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn filters_from_the_spec() {
        for ok in [
            "#",
            "+",
            "sport/tennis/#",
            "sport/#",
            "+/tennis/#",
            "sport/+/player1",
            "/+",
            "+/+",
            "sport/tennis/player1",
            "$share/g/a/#",
        ] {
            assert!(valid_topic_filter(ok), "{ok:?}");
        }
        for bad in [
            "",
            "sport/tennis#",
            "sport/tennis/#/ranking",
            "sport+",
            "a/b+/c",
            "#/a",
            "a\0",
        ] {
            assert!(!valid_topic_filter(bad), "{bad:?}");
        }
        assert_eq!(check_topic_filter("a/#/b"), Err(TopicError::HashPlacement));
        assert_eq!(check_topic_filter("a/b+"), Err(TopicError::PlusPlacement));
        assert_eq!(check_topic_name("a/+"), Err(TopicError::Wildcard));
        assert_eq!(check_topic_name(""), Err(TopicError::Empty));
        let long = "a".repeat(MAX_TOPIC_LEN + 1);
        assert_eq!(check_topic_name(&long), Err(TopicError::TooLong));
        assert!(valid_topic_name(&long[1..]));
    }

    #[test]
    fn shared_subscriptions() {
        assert_eq!(split_shared("a/b"), Ok((None, "a/b")));
        assert_eq!(split_shared("$share/g/a/#"), Ok((Some("g"), "a/#")));
        assert_eq!(split_shared("$share/g//"), Ok((Some("g"), "/")));
        // `$shared/...` and `$sharex` are ordinary filters.
        assert_eq!(split_shared("$shared/g/a"), Ok((None, "$shared/g/a")));
        for bad in [
            "$share/g",
            "$share/g/",
            "$share//a",
            "$share/g+/a",
            "$share/#/a",
        ] {
            assert_eq!(split_shared(bad), Err(TopicError::Shared), "{bad:?}");
        }
    }

    #[test]
    fn matching() {
        for (f, t) in [
            ("#", "a"),
            ("#", "a/b/c"),
            ("a/#", "a"),
            ("a/#", "a/b"),
            ("a/+", "a/b"),
            ("a/+", "a/"),
            ("+/+", "/x"),
            ("a/+/c", "a/b/c"),
            ("a//b", "a//b"),
            ("$SYS/#", "$SYS/x"),
            ("$SYS/+/uptime", "$SYS/broker/uptime"),
        ] {
            assert!(filter_matches(f, t), "{f} should match {t}");
        }
        for (f, t) in [
            ("a/#", "ab"),
            ("a/+", "a"),
            ("a/+", "a/b/c"),
            ("a/b", "a/b/c"),
            ("a/b/c", "a/b"),
            ("#", "$SYS/x"),
            ("+/x", "$SYS/x"),
            ("+", "$"),
            ("$SYS/#", "SYS/x"),
        ] {
            assert!(!filter_matches(f, t), "{f} should not match {t}");
        }
    }
}

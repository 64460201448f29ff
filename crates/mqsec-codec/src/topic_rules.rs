//! Syntax of topic names and topic filters (MQTT 5 section 4.7; 3.1.1 section 4.7).
//!
//! Syntax only: what a filter means (shared subscriptions, `$`-topics, matching) is the broker's
//! topic module's business. Length is bounded by the 2-byte string prefix the codec already checks.

/// A topic name as PUBLISH and wills carry it: non-empty, no wildcard characters, no U+0000.
pub fn valid_topic_name(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= usize::from(u16::MAX)
        && !topic.bytes().any(|b| b == b'+' || b == b'#' || b == 0)
}

/// A topic filter as SUBSCRIBE and UNSUBSCRIBE carry it: non-empty, no U+0000, `+` only as a whole
/// level, `#` only as the whole last level.
pub fn valid_topic_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.len() > usize::from(u16::MAX) || filter.contains('\0') {
        return false;
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return false;
        }
        if level.contains('+') && level != "+" {
            return false;
        }
    }
    true
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
    }
}

//! The ACL file grammar: Mosquitto 2.0.11's, token for token, plus the mqsec extensions.
//!
//! Mosquitto splits a line on single spaces only (tabs are not separators), treats a line as a
//! comment only when `#` is its very first character, trims trailing whitespace, and takes the
//! rest of a `topic`/`pattern` line after the access word as the topic (so topics may contain
//! spaces). mqsec reads the same way, so a file means the same thing to both.
//!
//! Extensions (each one makes Mosquitto refuse to load the file, so a file that uses them can never
//! be silently misread by Mosquitto):
//! - `topic ACCESS[OPT,...] TOPIC` / `pattern ACCESS[OPT,...] TOPIC` with options `max_qos=0|1|2`
//!   and `retain=true|false` (Mosquitto: "Invalid topic access type").
//! - `role NAME` starts a named rule set; `roles NAME[,NAME...]` in a user block (or before the
//!   first `user` line, for anonymous clients) assigns roles (Mosquitto: "Invalid line").

use super::filter::{validate_filter, Filter};

/// Access bits. A rule with no bits is a `deny` rule.
pub const READ: u8 = 1;
pub const WRITE: u8 = 2;

/// Per-rule limits (mqsec extension). Defaults are Mosquitto's behaviour: any QoS, retain allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleLimits {
    pub max_qos: u8,
    pub retain: bool,
}

impl Default for RuleLimits {
    fn default() -> Self {
        RuleLimits {
            max_qos: 2,
            retain: true,
        }
    }
}

impl RuleLimits {
    pub fn is_default(&self) -> bool {
        *self == RuleLimits::default()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct RuleStmt {
    pub pattern: bool,
    pub access: u8,
    pub topic: String,
    pub limits: RuleLimits,
    /// False for `topic X` (no access word): Mosquitto's default readwrite, and the source of the
    /// `topic read` quirk.
    pub access_word: bool,
    pub filter: Filter,
}

#[derive(Debug, Clone)]
pub(crate) enum StmtKind {
    Rule(RuleStmt),
    User(String),
    Role(String),
    Roles(Vec<String>),
}

#[derive(Debug, Clone)]
pub(crate) struct Stmt {
    pub line: u32,
    /// The line as written (trailing whitespace trimmed), for messages.
    pub text: String,
    pub kind: StmtKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: u32,
    pub message: String,
}

/// Longest line accepted: a maximal topic plus keyword, access word and options.
pub const MAX_LINE_LEN: usize = super::filter::MAX_TOPIC_LEN + 256;

/// Parse every line; errors do not stop the parse (the linter wants all of them).
pub(crate) fn parse(text: &str) -> (Vec<Stmt>, Vec<ParseError>) {
    let mut stmts = Vec::new();
    let mut errors = Vec::new();
    for (idx, raw) in text.split('\n').enumerate() {
        let line = u32::try_from(idx + 1).unwrap_or(u32::MAX);
        let trimmed = raw.trim_end_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b');
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match parse_line(trimmed) {
            Ok(Some(kind)) => stmts.push(Stmt {
                line,
                text: trimmed.trim_start_matches(' ').to_string(),
                kind,
            }),
            Ok(None) => {}
            Err(message) => errors.push(ParseError { line, message }),
        }
    }
    (stmts, errors)
}

/// Next space-separated token (leading spaces skipped, like `strtok_r(.., " ", ..)`), and the rest.
fn token(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start_matches(' ');
    if s.is_empty() {
        return None;
    }
    match s.find(' ') {
        Some(i) => Some((&s[..i], &s[i + 1..])),
        None => Some((s, "")),
    }
}

fn parse_line(line: &str) -> Result<Option<StmtKind>, String> {
    if line.len() > MAX_LINE_LEN {
        return Err(format!("line longer than {MAX_LINE_LEN} bytes"));
    }
    let Some((keyword, rest)) = token(line) else {
        return Ok(None);
    };
    match keyword {
        "topic" | "pattern" => parse_rule(keyword == "pattern", rest).map(Some),
        "user" => {
            let name = rest.trim_start_matches(' ');
            if name.is_empty() {
                return Err("expected a username after `user`".into());
            }
            Ok(Some(StmtKind::User(name.to_string())))
        }
        "role" => {
            let name = rest.trim_matches(' ');
            check_role_name(name)?;
            Ok(Some(StmtKind::Role(name.to_string())))
        }
        "roles" => {
            let list = rest.trim_matches(' ');
            if list.is_empty() {
                return Err("expected role names after `roles` (roles NAME[,NAME...])".into());
            }
            let names: Vec<String> = list.split(',').map(|n| n.trim().to_string()).collect();
            for n in &names {
                check_role_name(n)?;
            }
            Ok(Some(StmtKind::Roles(names)))
        }
        _ if keyword.starts_with('#') => Err(
            "a comment must start in the first column (Mosquitto rejects indented comments)".into(),
        ),
        _ if keyword.contains('\t') => Err(format!(
            "unknown keyword \"{}\": separate words with spaces, not tabs (Mosquitto rejects tabs too)",
            keyword.escape_default()
        )),
        _ => Err(format!(
            "unknown keyword \"{keyword}\": expected topic, pattern, user, role or roles"
        )),
    }
}

fn check_role_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("expected a role name (letters, digits, '_', '-', '.', ':')".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
    {
        return Err(format!(
            "role name \"{name}\" contains '{c}': use letters, digits, '_', '-', '.', ':'"
        ));
    }
    Ok(())
}

fn parse_rule(pattern: bool, rest: &str) -> Result<StmtKind, String> {
    let kw = if pattern { "pattern" } else { "topic" };
    let Some((first, after)) = token(rest) else {
        return Err(format!("expected a topic after `{kw}`"));
    };
    let after = after.trim_start_matches(' ');
    let (access, limits, topic, access_word) = if after.is_empty() {
        // One word only: Mosquitto takes it as the topic with readwrite access, even when it is
        // "read" (the linter flags that). Our option syntax alone is a mistake, not a topic.
        if first.contains('[') {
            return Err(format!(
                "expected a topic after the access word \"{first}\""
            ));
        }
        (READ | WRITE, RuleLimits::default(), first, false)
    } else {
        let (access, limits) = parse_access(first)?;
        (access, limits, after, true)
    };
    validate_filter(topic)?;
    if access == 0 && !limits.is_default() {
        return Err("options max_qos/retain make no sense on a deny rule".into());
    }
    Ok(StmtKind::Rule(RuleStmt {
        pattern,
        access,
        topic: topic.to_string(),
        limits,
        access_word,
        filter: Filter::compile(topic, pattern),
    }))
}

fn parse_access(word: &str) -> Result<(u8, RuleLimits), String> {
    let (base, opts) = match word.find('[') {
        Some(i) => {
            let Some(inner) = word[i + 1..].strip_suffix(']') else {
                return Err(format!(
                    "invalid access \"{word}\": options go in brackets without spaces, e.g. write[max_qos=1,retain=false]"
                ));
            };
            (&word[..i], Some(inner))
        }
        None => (word, None),
    };
    let access = match base {
        "read" => READ,
        "write" => WRITE,
        "readwrite" => READ | WRITE,
        "deny" => 0,
        _ => {
            return Err(format!(
                "invalid access \"{base}\": expected read, write, readwrite or deny"
            ))
        }
    };
    let mut limits = RuleLimits::default();
    if let Some(opts) = opts {
        if opts.is_empty() {
            return Err(format!("empty option list in \"{word}\""));
        }
        for opt in opts.split(',') {
            match opt.split_once('=') {
                Some(("max_qos", v)) => {
                    limits.max_qos = match v {
                        "0" => 0,
                        "1" => 1,
                        "2" => 2,
                        _ => return Err(format!("invalid max_qos \"{v}\": expected 0, 1 or 2")),
                    }
                }
                Some(("retain", v)) => {
                    limits.retain = match v {
                        "true" => true,
                        "false" => false,
                        _ => return Err(format!("invalid retain \"{v}\": expected true or false")),
                    }
                }
                _ => {
                    return Err(format!(
                        "unknown option \"{opt}\": expected max_qos=0|1|2 or retain=true|false"
                    ))
                }
            }
        }
    }
    Ok((access, limits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Result<StmtKind, String> {
        let (s, e) = parse(line);
        if let Some(e) = e.first() {
            return Err(e.message.clone());
        }
        Ok(s.into_iter().next().unwrap().kind)
    }

    fn rule(line: &str) -> RuleStmt {
        match one(line).unwrap() {
            StmtKind::Rule(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mosquitto_tokenizing() {
        let r = rule("topic read sensors/#");
        assert_eq!((r.access, r.topic.as_str()), (READ, "sensors/#"));
        let r = rule("   topic   write   a b/c   ");
        assert_eq!((r.access, r.topic.as_str()), (WRITE, "a b/c"));
        let r = rule("topic x/y");
        assert_eq!((r.access, r.access_word), (READ | WRITE, false));
        // The quirk: `topic read` is topic "read", readwrite.
        let r = rule("topic read");
        assert_eq!((r.access, r.topic.as_str()), (READ | WRITE, "read"));
        let r = rule("topic deny #");
        assert_eq!(r.access, 0);
        let r = rule("pattern readwrite devices/%c/#\r");
        assert!(r.pattern && r.filter.uses_client);
        assert!(
            matches!(one("user  alice smith").unwrap(), StmtKind::User(u) if u == "alice smith")
        );
    }

    #[test]
    fn mosquitto_rejections() {
        assert!(one("topic").is_err());
        assert!(one("user").is_err());
        assert!(one("user   ").is_err());
        assert!(one("\ttopic read x").is_err());
        assert!(one("topic\tread x").is_err());
        assert!(one("  # indented comment").is_err());
        assert!(one("TOPIC read x").is_err());
        assert!(one("topic read x/#/y").is_err());
        assert!(one("topic read a+").is_err());
        assert!(one("topic bogus x").is_err());
        assert!(one("topic read x  # trailing").is_err());
        let (s, e) = parse("# comment\n\n   \nuser a\n");
        assert!(e.is_empty());
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].line, 4);
    }

    #[test]
    fn extensions() {
        let r = rule("topic write[max_qos=1,retain=false] sensors/#");
        assert_eq!(r.access, WRITE);
        assert_eq!(
            r.limits,
            RuleLimits {
                max_qos: 1,
                retain: false
            }
        );
        assert!(one("topic write[max_qos=3] x").is_err());
        assert!(one("topic write[qos=1] x").is_err());
        assert!(one("topic write[max_qos=1 x").is_err());
        assert!(one("topic deny[max_qos=1] x").is_err());
        assert!(one("topic write[max_qos=1]").is_err());
        assert!(matches!(one("role viewer").unwrap(), StmtKind::Role(r) if r == "viewer"));
        assert!(
            matches!(one("roles viewer, admin").unwrap(), StmtKind::Roles(r) if r == ["viewer", "admin"])
        );
        assert!(one("roles").is_err());
        assert!(one("role a b").is_err());
        assert!(one("roles a,,b").is_err());
    }
}

//! `acl-check --lint`: mistakes that make an ACL file mean something other than what its author
//! meant. Error-level findings make the command exit 1.

use std::collections::HashMap;
use std::fmt;

use super::filter::{covers, intersect, Lv};
use super::parse::{self, StmtKind};
use super::{compile, Owner, Rule};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    pub line: u32,
    pub severity: Severity,
    /// A stable identifier for scripts: `syntax`, `shadowed`, `deny-kills-block`, ...
    pub code: &'static str,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {} [{}]: {}",
            self.file, self.line, self.severity, self.code, self.message
        )
    }
}

fn owner_name(o: &Owner) -> String {
    match o {
        Owner::Anonymous => "the anonymous list".into(),
        Owner::User(u) => format!("user \"{u}\""),
        Owner::Role(r) => format!("role \"{r}\""),
        Owner::Everyone => "the patterns".into(),
        Owner::Token => "a token's acl claim".into(),
    }
}

/// Lint ACL text. Findings come sorted by line.
pub fn lint(text: &str, file_name: &str) -> Vec<Finding> {
    let compiled = compile(text, file_name);
    let mut out: Vec<Finding> = Vec::new();
    let mut push = |line: u32, severity: Severity, code: &'static str, message: String| {
        out.push(Finding {
            file: file_name.to_string(),
            line,
            severity,
            code,
            message,
        })
    };
    for e in &compiled.errors {
        push(e.line, Severity::Error, "syntax", e.message.clone());
    }
    let acl = &compiled.acl;
    let rules = acl.rules();

    // Group rules by list, in file order, and remember where each block starts.
    let (stmts, _) = parse::parse(text);
    let mut block_start: HashMap<Owner, u32> = HashMap::new();
    let mut block_has_content: HashMap<Owner, bool> = HashMap::new();
    let mut last_rule_line = 0;
    {
        let mut owner = Owner::Anonymous;
        for st in &stmts {
            match &st.kind {
                StmtKind::User(u) => {
                    owner = Owner::User(u.clone());
                    block_start.entry(owner.clone()).or_insert(st.line);
                    block_has_content.entry(owner.clone()).or_insert(false);
                }
                StmtKind::Role(r) => {
                    owner = Owner::Role(r.clone());
                    block_start.entry(owner.clone()).or_insert(st.line);
                    block_has_content.entry(owner.clone()).or_insert(false);
                }
                StmtKind::Roles(_) => {
                    block_has_content.insert(owner.clone(), true);
                }
                StmtKind::Rule(r) => {
                    last_rule_line = st.line;
                    if !r.pattern {
                        block_has_content.insert(owner.clone(), true);
                    }
                }
            }
        }
    }
    let mut empty: Vec<(&Owner, u32)> = block_has_content
        .iter()
        .filter(|(_, has)| !**has)
        .filter_map(|(o, _)| block_start.get(o).map(|l| (o, *l)))
        .collect();
    empty.sort_by_key(|(_, l)| *l);
    for (o, line) in empty {
        let what = match o {
            Owner::Role(_) => "has no rules: assigning it grants nothing",
            _ => "has no rules and no roles: it gets only what patterns grant",
        };
        push(
            line,
            Severity::Warning,
            "no-rules",
            format!("{} {what}", owner_name(o)),
        );
    }

    let mut lists: Vec<(Owner, Vec<&Rule>)> = Vec::new();
    let mut list_index: HashMap<&Owner, usize> = HashMap::new();
    for r in rules {
        let i = *list_index.entry(r.owner()).or_insert_with(|| {
            lists.push((r.owner().clone(), Vec::new()));
            lists.len() - 1
        });
        lists[i].1.push(r);
    }

    for r in rules {
        if !r.access_word && matches!(r.topic(), "read" | "write" | "readwrite" | "deny") {
            push(
                r.line(),
                Severity::Error,
                "access-word-as-topic",
                format!(
                    "`{}` has no topic: Mosquitto reads it as topic \"{}\" with readwrite access; write `{} {} TOPIC`",
                    r.text(),
                    r.topic(),
                    if r.is_pattern() { "pattern" } else { "topic" },
                    r.topic()
                ),
            );
        }
        if !r.is_pattern() && (r.topic().contains("%u") || r.topic().contains("%c")) {
            push(
                r.line(),
                Severity::Warning,
                "placeholder-in-topic",
                "%u/%c are only substituted in `pattern` lines; in a `topic` line they are literal text"
                    .into(),
            );
        }
        let everyone = r.is_pattern() && !r.filter.uses_user && !r.filter.uses_client;
        let anon = *r.owner() == Owner::Anonymous;
        if !r.is_deny() && (everyone || anon) && r.filter.wildcard_only() {
            let who = if everyone {
                "every client"
            } else {
                "every anonymous client"
            };
            let what = match (r.grants_read(), r.grants_write()) {
                (true, true) => "read and write access",
                (true, false) => "read access",
                _ => "write access",
            };
            push(
                r.line(),
                Severity::Error,
                "wildcard-grant",
                format!("`{}` gives {who} {what} to every topic", r.text()),
            );
        } else if r.is_pattern() && r.grants_write() && everyone {
            let wild = r.topic().contains(['+', '#']);
            push(
                r.line(),
                if wild {
                    Severity::Error
                } else {
                    Severity::Warning
                },
                "unscoped-write-pattern",
                format!(
                    "`{}` lets every client write {} — without %u or %c one device can write another's topics",
                    r.text(),
                    if wild { "a whole topic tree" } else { "this topic" }
                ),
            );
        }
    }

    for (owner, list) in &lists {
        // Evaluation order: deny rules first, then the rest, each in file order.
        let order: Vec<&Rule> = list
            .iter()
            .filter(|r| r.is_deny())
            .chain(list.iter().filter(|r| !r.is_deny()))
            .copied()
            .collect();
        let lits: Vec<Vec<Lv>> = order.iter().map(|r| r.filter.literal()).collect();
        let allows: Vec<usize> = (0..order.len()).filter(|&i| !order[i].is_deny()).collect();

        // A deny in a user/role block that covers all of that block's grants.
        let mut traps: Vec<usize> = Vec::new();
        if *owner != Owner::Everyone && !allows.is_empty() {
            for (di, d) in order.iter().enumerate() {
                if d.is_deny() && allows.iter().all(|&a| covers(&lits[di], &lits[a])) {
                    traps.push(di);
                    let start = block_start.get(owner).copied();
                    let last = d.line() == last_rule_line;
                    let mut msg = format!(
                        "`{}` belongs to {}{}: deny rules are tried first, so it removes every access that list grants",
                        d.text(),
                        owner_name(owner),
                        start.map(|l| format!(" (block from line {l})")).unwrap_or_default()
                    );
                    if last {
                        msg.push_str(
                            "; as the file's last line it looks like a default for everyone, but Mosquitto attaches it to the block above, and the default is already deny: delete it",
                        );
                    }
                    push(d.line(), Severity::Error, "deny-kills-block", msg);
                }
            }
        }

        for (ri, r) in order.iter().enumerate() {
            for si in 0..ri {
                let s = order[si];
                let shadows = (s.is_deny() || (!r.is_deny() && s.access & r.access == r.access))
                    && covers(&lits[si], &lits[ri]);
                if shadows {
                    if !traps.contains(&si) {
                        push(
                            r.line(),
                            Severity::Warning,
                            "shadowed",
                            format!(
                                "`{}` never decides anything: line {} (`{}`) is tried first and matches every topic it matches",
                                r.text(),
                                s.line(),
                                s.text()
                            ),
                        );
                    }
                    break;
                }
            }
        }
    }
    // A pattern deny is tried after every user's own list, so a user's allow wins over it —
    // the opposite of what most authors expect.
    for d in rules.iter().filter(|r| r.is_pattern() && r.is_deny()) {
        let dl = d.filter.literal();
        let mut overridden: Vec<String> = Vec::new();
        for (owner, list) in &lists {
            if *owner == Owner::Everyone {
                continue;
            }
            if let Some(a) = list
                .iter()
                .find(|a| !a.is_deny() && intersect(&dl, &a.filter.literal()).is_some())
            {
                overridden.push(format!("{} (line {})", owner_name(owner), a.line()));
            }
        }
        if !overridden.is_empty() {
            let more = overridden.len().saturating_sub(3);
            overridden.truncate(3);
            let mut who = overridden.join(", ");
            if more > 0 {
                who.push_str(&format!(" and {more} more"));
            }
            push(
                d.line(),
                Severity::Warning,
                "pattern-deny-overridden",
                format!(
                    "`{}` does not restrict {who}: a user's own rules are tried before any pattern, so their allow wins; put a `topic deny` in that block instead",
                    d.text()
                ),
            );
        }
    }
    out.sort_by(|a, b| (a.line, a.code).cmp(&(b.line, b.code)));
    out
}

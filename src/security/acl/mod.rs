//! ACL files: Mosquitto's grammar compiled once into a matcher cheap enough to ask on every
//! PUBLISH, SUBSCRIBE and delivery; `acl-check` answers with it (`serve` does not read ACL files
//! yet: it refuses `acl_file`).
//!
//! Evaluation (Mosquitto 2.0.11, see `docs` in README "acl-check"):
//! 1. the client's own list — its `user` block, or the anonymous list (rules before the first
//!    `user` line) for a client without a username — with the rules of its roles appended in
//!    assignment order (file `roles` lines, then `Identity::roles`): every `deny` rule first, then
//!    the others in that order; the first match decides, and a matching rule without the requested
//!    access does not stop the search;
//! 2. if any `pattern` exists: a username or client id containing `+` or `#` is denied (Mosquitto),
//!    and so is one containing `/` when a pattern uses that placeholder (mqsec: a value with `/`
//!    would span several topic levels and reach into another client's tree);
//! 3. the patterns, deny patterns first, same way; a `%u` pattern is skipped for a client without
//!    a username, and an empty value never lets an allow pattern match (deny patterns substitute
//!    it, as Mosquitto does, so they never cover less than Mosquitto's);
//! 4. otherwise denied.
//!
//! A decision never does I/O, never scans other users' rules (users and roles are hash-indexed),
//! and for PUBLISH/delivery allocates nothing.

mod claims;
mod filter;
mod grants;
mod lint;
mod parse;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::security::identity::Identity;

pub use claims::{ClaimRules, MAX_CLAIM_FILTERS, MAX_CLAIM_ROLES};
pub use filter::{validate_filter, validate_name, MAX_TOPIC_LEN};
pub use grants::Grants;
pub use lint::{lint, Finding, Severity};
pub use parse::{ParseError, RuleLimits};

use filter::{covers, intersect, levels_of, Filter, Lv, Subst};
use mqsec_codec::split_shared;
use parse::{StmtKind, READ, WRITE};

/// Largest ACL file accepted (a 10,000-user file is about 1 MB).
pub const MAX_FILE_LEN: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AclError {
    #[error("{file}: cannot read ACL file: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: ACL file is larger than the {MAX_FILE_LEN}-byte limit")]
    TooLarge { file: String },
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: String,
        line: u32,
        message: String,
    },
}

/// What a client asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Receive a message on a topic name (each delivery, including retained ones).
    Read,
    /// Publish to a topic name (PUBLISH, and a will when it is sent).
    Write,
    /// Subscribe to a topic filter (mqsec checks this; Mosquitto's acl_file does not).
    Subscribe,
    /// Subscribe to a topic filter on a broker that asks once, at SUBSCRIBE, and never again for
    /// each delivery (RabbitMQ, EMQX and VerneMQ behind `auth-server`): allowed only when every
    /// topic the filter matches may be read, since nothing downstream filters the deliveries.
    SubscribeAll,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Subscribe => "subscribe",
            Access::SubscribeAll => "subscribe-all",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Access {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(Access::Read),
            "write" => Ok(Access::Write),
            "subscribe" => Ok(Access::Subscribe),
            "subscribe-all" => Ok(Access::SubscribeAll),
            _ => Err(format!(
                "invalid access \"{s}\": expected read, write, subscribe or subscribe-all"
            )),
        }
    }
}

/// One authorization question. `topic` is a topic name for read/write, a filter for subscribe.
#[derive(Debug, Clone, Copy)]
pub struct AclRequest<'t> {
    pub access: Access,
    pub topic: &'t str,
    pub qos: u8,
    pub retain: bool,
}

impl<'t> AclRequest<'t> {
    pub fn new(access: Access, topic: &'t str) -> Self {
        AclRequest {
            access,
            topic,
            qos: 0,
            retain: false,
        }
    }
}

/// Whose list a rule belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    Anonymous,
    User(String),
    Role(String),
    /// `pattern` lines apply to every client wherever they stand.
    Everyone,
    /// A rule from a token's `acl` claim (see [`ClaimRules`]).
    Token,
}

/// One compiled `topic`/`pattern` line.
#[derive(Debug, Clone)]
pub struct Rule {
    file: Arc<str>,
    line: u32,
    text: Box<str>,
    pattern: bool,
    access: u8,
    topic: Box<str>,
    limits: RuleLimits,
    owner: Owner,
    filter: Filter,
    /// False for `topic X` without an access word (the `topic read` quirk lives here).
    access_word: bool,
}

impl Rule {
    pub fn file(&self) -> &str {
        &self.file
    }
    pub fn line(&self) -> u32 {
        self.line
    }
    /// The line as written.
    pub fn text(&self) -> &str {
        &self.text
    }
    pub fn topic(&self) -> &str {
        &self.topic
    }
    pub fn is_pattern(&self) -> bool {
        self.pattern
    }
    pub fn is_deny(&self) -> bool {
        self.access == 0
    }
    pub fn grants_read(&self) -> bool {
        self.access & READ != 0
    }
    pub fn grants_write(&self) -> bool {
        self.access & WRITE != 0
    }
    pub fn limits(&self) -> RuleLimits {
        self.limits
    }
    pub fn owner(&self) -> &Owner {
        &self.owner
    }
    pub fn rule_ref(&self) -> RuleRef<'_> {
        RuleRef {
            file: &self.file,
            line: self.line,
        }
    }
}

/// Where a rule stands: displayed `file:line`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleRef<'a> {
    pub file: &'a str,
    pub line: u32,
}

impl fmt::Display for RuleRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// Why a decision came out as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A rule with the requested access matched.
    Granted,
    /// A `deny` rule matched.
    DenyRule,
    /// No rule decided.
    DefaultDeny,
    /// Patterns exist and the username or client id contains `+` or `#` (or `/` where a pattern
    /// uses it): such a client could otherwise reach other clients' topics.
    DangerousIdentity,
    /// Writes to `$SYS/...` are refused, whatever the ACL says.
    SysWrite,
    /// `$share/...` is a subscription syntax, never a topic one can publish to or read.
    ShareTopic,
    /// The matching rule allows at most a lower QoS for publishing (`max_qos=`).
    QosAboveLimit,
    /// The matching rule forbids retained messages (`retain=false`).
    RetainNotAllowed,
    /// SUBSCRIBE: a rule would allow reading some matching topic, but every such topic is denied.
    FilterDenied,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Granted => "granted by rule",
            Reason::DenyRule => "deny rule",
            Reason::DefaultDeny => "default deny",
            Reason::DangerousIdentity => {
                "username or client id contains '+', '#' or '/' and patterns are in use"
            }
            Reason::SysWrite => "writes to $SYS are refused",
            Reason::ShareTopic => "$share topics cannot be published to or read",
            Reason::QosAboveLimit => "QoS above the rule's max_qos",
            Reason::RetainNotAllowed => "retained messages not allowed by the rule",
            Reason::FilterDenied => "every topic this filter could grant is denied",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer to one [`AclRequest`].
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    pub allowed: bool,
    /// The deciding rule; `None` for a default deny and the built-in refusals.
    pub rule: Option<&'a Rule>,
    pub reason: Reason,
    /// When allowed: the highest QoS the deciding rule grants. The broker delivers a read at
    /// `min(qos, max_qos)` and grants `min(requested, max_qos)` in SUBACK.
    pub max_qos: u8,
}

impl<'a> Decision<'a> {
    fn allow(rule: &'a Rule) -> Self {
        Decision {
            allowed: true,
            rule: Some(rule),
            reason: Reason::Granted,
            max_qos: rule.limits.max_qos,
        }
    }
    /// What no rule can change: writes to `$SYS` and topics named `$share...` are refused.
    /// Asked first by both the matcher and the compiled per-client grants.
    pub(crate) fn before_rules(topic: &str, bit: u8) -> Option<Self> {
        if bit == WRITE && topic.starts_with("$SYS") {
            return Some(Decision::deny(None, Reason::SysWrite));
        }
        if topic.starts_with("$share") {
            return Some(Decision::deny(None, Reason::ShareTopic));
        }
        None
    }

    fn deny(rule: Option<&'a Rule>, reason: Reason) -> Self {
        Decision {
            allowed: false,
            rule,
            reason,
            max_qos: 0,
        }
    }
    pub fn rule_ref(&self) -> Option<RuleRef<'a>> {
        self.rule.map(Rule::rule_ref)
    }
}

/// `file:line` of the deciding rule, or the reason when no rule decided ("default deny").
impl fmt::Display for Decision<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rule {
            Some(r) => write!(f, "{}", r.rule_ref()),
            None => f.write_str(self.reason.as_str()),
        }
    }
}

/// Rule indices of one list, deny rules split out because they are always tried first.
#[derive(Debug, Default, Clone)]
struct List {
    denies: Box<[u32]>,
    allows: Box<[u32]>,
}

impl List {
    fn build(rules: &[Rule], ids: impl IntoIterator<Item = u32>) -> List {
        let (denies, allows): (Vec<u32>, Vec<u32>) =
            ids.into_iter().partition(|&i| rules[i as usize].is_deny());
        List {
            denies: denies.into(),
            allows: allows.into(),
        }
    }
}

/// A compiled ACL file.
#[derive(Debug, Clone)]
pub struct Acl {
    file: Arc<str>,
    rules: Vec<Rule>,
    anonymous: List,
    users: HashMap<Box<str>, List>,
    roles: HashMap<Box<str>, List>,
    patterns: List,
    patterns_use_user: bool,
    patterns_use_client: bool,
    /// Roles assigned in the file, per user (`None` key = anonymous), for `acl-check` output.
    assigned: HashMap<Option<String>, Vec<String>>,
}

/// The compile step's intermediate result, shared with the linter.
pub(crate) struct Compiled {
    pub acl: Acl,
    pub errors: Vec<ParseError>,
}

impl Acl {
    /// Read and compile an ACL file. The file name in messages and decisions is `path` as given.
    pub fn load(path: &Path) -> Result<Acl, AclError> {
        let text = read_text(path)?;
        Acl::parse(&text, &path.display().to_string())
    }

    /// Compile ACL text; `file_name` is what decisions and errors call it.
    pub fn parse(text: &str, file_name: &str) -> Result<Acl, AclError> {
        let c = compile(text, file_name);
        match c.errors.into_iter().next() {
            Some(e) => Err(AclError::Syntax {
                file: file_name.to_string(),
                line: e.line,
                message: e.message,
            }),
            None => Ok(c.acl),
        }
    }

    /// An ACL without rules (everything is denied unless a token's claims grant it).
    pub fn empty(file_name: &str) -> Acl {
        compile("", file_name).acl
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    /// Every rule in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Roles the file assigns to `username` (`None`: anonymous clients).
    pub fn roles_of(&self, username: Option<&str>) -> &[String] {
        self.assigned
            .get(&username.map(str::to_string))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Whether the file defines a role of this name.
    pub fn has_role(&self, name: &str) -> bool {
        self.roles.contains_key(name)
    }

    /// Decide one request for one client. The topic must already be valid for the access (a topic
    /// name for read/write, a filter for subscribe): the broker's codec and `acl-check` check it.
    /// This answers from the file alone; a client holding a token's claims is answered by its
    /// [`Grants`] (which evaluates the claims here, through [`Acl::decide_with`]).
    pub fn decide<'a>(&'a self, id: &Identity, req: &AclRequest) -> Decision<'a> {
        self.decide_with(id, None, req)
    }

    /// Decide for a client whose token granted `claims`: the claim's roles join its own list,
    /// and the claim's rules follow the own list's allows, before the patterns.
    pub fn decide_with<'a>(
        &'a self,
        id: &Identity,
        claims: Option<&'a ClaimRules>,
        req: &AclRequest,
    ) -> Decision<'a> {
        match req.access {
            Access::Read => self.decide_name(id, claims, req, READ),
            Access::Write => self.decide_name(id, claims, req, WRITE),
            Access::Subscribe => self.decide_filter(id, claims, req),
            Access::SubscribeAll => self.decide_filter_all(id, claims, req),
        }
    }

    fn own_lists<'a>(
        &'a self,
        id: &'a Identity,
        claims: Option<&'a ClaimRules>,
    ) -> impl Iterator<Item = &'a List> + Clone + 'a {
        let own = match &id.username {
            Some(u) => self.users.get(&**u),
            None => Some(&self.anonymous),
        };
        let claim_roles = claims.map(ClaimRules::roles).unwrap_or(&[]);
        own.into_iter().chain(
            id.roles()
                .iter()
                .chain(claim_roles.iter().filter(|r| !id.roles().contains(r)))
                .filter_map(|r| self.roles.get(r.as_str())),
        )
    }

    /// Mosquitto's gate before patterns, widened by mqsec to `/` (see module docs).
    fn dangerous(&self, id: &Identity) -> bool {
        let bad = |s: &str| s.contains(['+', '#']);
        if id.username.as_deref().is_some_and(bad) || bad(&id.client_id) {
            return true;
        }
        (self.patterns_use_user && id.username.as_deref().is_some_and(|u| u.contains('/')))
            || (self.patterns_use_client && id.client_id.contains('/'))
    }

    fn pattern_applies(rule: &Rule, id: &Identity) -> bool {
        !(rule.filter.uses_user && id.username.is_none())
    }

    fn decide_name<'a>(
        &'a self,
        id: &Identity,
        claims: Option<&'a ClaimRules>,
        req: &AclRequest,
        bit: u8,
    ) -> Decision<'a> {
        let topic = req.topic;
        if let Some(d) = Decision::before_rules(topic, bit) {
            return d;
        }
        let s = Subst::of(id);
        let s_deny = s.for_deny();
        let lists = self.own_lists(id, claims);
        for list in lists.clone() {
            for &i in list.denies.iter() {
                let r = &self.rules[i as usize];
                if r.filter.matches(topic, &Subst::NONE) {
                    return Decision::deny(Some(r), Reason::DenyRule);
                }
            }
        }
        for list in lists {
            for &i in list.allows.iter() {
                let r = &self.rules[i as usize];
                if r.access & bit != 0 && r.filter.matches(topic, &Subst::NONE) {
                    return apply_limits(r, req);
                }
            }
        }
        for r in claims.map(ClaimRules::rules).unwrap_or(&[]) {
            if r.access & bit != 0 && ClaimRules::usable(r, id) && r.filter.matches(topic, &s) {
                return apply_limits(r, req);
            }
        }
        if self.patterns.denies.is_empty() && self.patterns.allows.is_empty() {
            return Decision::deny(None, Reason::DefaultDeny);
        }
        if self.dangerous(id) {
            return Decision::deny(None, Reason::DangerousIdentity);
        }
        for &i in self.patterns.denies.iter() {
            let r = &self.rules[i as usize];
            if Self::pattern_applies(r, id) && r.filter.matches(topic, &s_deny) {
                return Decision::deny(Some(r), Reason::DenyRule);
            }
        }
        for &i in self.patterns.allows.iter() {
            let r = &self.rules[i as usize];
            if r.access & bit != 0 && Self::pattern_applies(r, id) && r.filter.matches(topic, &s) {
                return apply_limits(r, req);
            }
        }
        Decision::deny(None, Reason::DefaultDeny)
    }

    /// SUBSCRIBE. A filter F is allowed when some read-granting rule R, reached in evaluation
    /// order, shares topics with F (their intersection I is not empty) and I is not wholly covered
    /// by a single deny rule that is tried before R. It is denied when no such R exists. This is
    /// exact except when several deny rules together (but none alone) cover I; then the SUBSCRIBE
    /// is allowed and each delivery is still checked with `read`, so nothing leaks.
    fn decide_filter<'a>(
        &'a self,
        id: &Identity,
        claims: Option<&'a ClaimRules>,
        req: &AclRequest,
    ) -> Decision<'a> {
        let filter = strip_share(req.topic);
        let f = levels_of(filter);
        let s = Subst::of(id);
        let s_deny = s.for_deny();
        let lists = self.own_lists(id, claims);
        let mut denies: Vec<(&Rule, Vec<Lv>)> = Vec::new();
        for list in lists.clone() {
            for &i in list.denies.iter() {
                let r = &self.rules[i as usize];
                let d = r.filter.literal();
                if covers(&d, &f) {
                    return Decision::deny(Some(r), Reason::DenyRule);
                }
                denies.push((r, d));
            }
        }
        let mut covered_by: Option<&Rule> = None;
        for list in lists {
            for &i in list.allows.iter() {
                let r = &self.rules[i as usize];
                if r.grants_read() && uncovered(&f, &r.filter.literal(), &denies, &mut covered_by) {
                    return Decision::allow(r);
                }
            }
        }
        for r in claims.map(ClaimRules::rules).unwrap_or(&[]) {
            if !r.grants_read() || !ClaimRules::usable(r, id) {
                continue;
            }
            if let Some(a) = r.filter.resolve(&s) {
                if uncovered(&f, &a, &denies, &mut covered_by) {
                    return Decision::allow(r);
                }
            }
        }
        let has_patterns = !(self.patterns.denies.is_empty() && self.patterns.allows.is_empty());
        if has_patterns {
            if self.dangerous(id) {
                return Decision::deny(None, Reason::DangerousIdentity);
            }
            for &i in self.patterns.denies.iter() {
                let r = &self.rules[i as usize];
                if !Self::pattern_applies(r, id) {
                    continue;
                }
                if let Some(d) = r.filter.resolve(&s_deny) {
                    if covers(&d, &f) {
                        return Decision::deny(Some(r), Reason::DenyRule);
                    }
                    denies.push((r, d));
                }
            }
            for &i in self.patterns.allows.iter() {
                let r = &self.rules[i as usize];
                if !r.grants_read() || !Self::pattern_applies(r, id) {
                    continue;
                }
                if let Some(a) = r.filter.resolve(&s) {
                    if uncovered(&f, &a, &denies, &mut covered_by) {
                        return Decision::allow(r);
                    }
                }
            }
        }
        match covered_by {
            Some(d) => Decision::deny(Some(d), Reason::FilterDenied),
            None => Decision::deny(None, Reason::DefaultDeny),
        }
    }
}

impl Acl {
    /// SUBSCRIBE where no delivery is checked afterwards ([`Access::SubscribeAll`]). Allowed when
    /// a single read-granting rule R covers the whole filter F and no deny rule that could be
    /// tried for a topic of F shares a topic with it: then every topic of F is decided by R or by
    /// an allow rule tried before R. `max_qos` is the lowest of those rules' limits, and with
    /// `req.retain` (retained messages may be delivered) a rule among them with `retain=false`
    /// denies. Conservative: a filter only the union of several rules covers is denied.
    fn decide_filter_all<'a>(
        &'a self,
        id: &Identity,
        claims: Option<&'a ClaimRules>,
        req: &AclRequest,
    ) -> Decision<'a> {
        let f = levels_of(strip_share(req.topic));
        let mut limits = RuleLimits::default();
        let s = Subst::of(id);
        let lists = self.own_lists(id, claims);
        for list in lists.clone() {
            for &i in list.denies.iter() {
                let r = &self.rules[i as usize];
                if intersect(&r.filter.literal(), &f).is_some() {
                    return Decision::deny(Some(r), Reason::DenyRule);
                }
            }
        }
        for list in lists {
            for &i in list.allows.iter() {
                let r = &self.rules[i as usize];
                if let Some(d) = whole_grant(r, &r.filter.literal(), &f, &mut limits, req) {
                    return d;
                }
            }
        }
        // A token's claim rules come after the own list's allows, as in `decide_filter`.
        for r in claims.map(ClaimRules::rules).unwrap_or(&[]) {
            if !ClaimRules::usable(r, id) {
                continue;
            }
            if let Some(a) = r.filter.resolve(&s) {
                if let Some(d) = whole_grant(r, &a, &f, &mut limits, req) {
                    return d;
                }
            }
        }
        if self.patterns.denies.is_empty() && self.patterns.allows.is_empty() {
            return Decision::deny(None, Reason::DefaultDeny);
        }
        if self.dangerous(id) {
            return Decision::deny(None, Reason::DangerousIdentity);
        }
        let s_deny = s.for_deny();
        for &i in self.patterns.denies.iter() {
            let r = &self.rules[i as usize];
            if !Self::pattern_applies(r, id) {
                continue;
            }
            if let Some(d) = r.filter.resolve(&s_deny) {
                if intersect(&d, &f).is_some() {
                    return Decision::deny(Some(r), Reason::DenyRule);
                }
            }
        }
        for &i in self.patterns.allows.iter() {
            let r = &self.rules[i as usize];
            if !Self::pattern_applies(r, id) {
                continue;
            }
            if let Some(a) = r.filter.resolve(&s) {
                if let Some(d) = whole_grant(r, &a, &f, &mut limits, req) {
                    return d;
                }
            }
        }
        Decision::deny(None, Reason::DefaultDeny)
    }
}

/// One allow rule (filter `a`) met by [`Acl::decide_filter_all`] for the filter `f`: a rule that
/// shares topics with `f` decides those topics, so its limits join `limits`; a rule that covers
/// `f` ends the search.
fn whole_grant<'a>(
    r: &'a Rule,
    a: &[Lv],
    f: &[Lv],
    limits: &mut RuleLimits,
    req: &AclRequest,
) -> Option<Decision<'a>> {
    if !r.grants_read() || intersect(a, f).is_none() {
        return None;
    }
    limits.max_qos = limits.max_qos.min(r.limits.max_qos);
    limits.retain &= r.limits.retain;
    if !covers(a, f) {
        return None;
    }
    if req.retain && !limits.retain {
        return Some(Decision::deny(Some(r), Reason::RetainNotAllowed));
    }
    Some(Decision {
        allowed: true,
        rule: Some(r),
        reason: Reason::Granted,
        max_qos: limits.max_qos,
    })
}

/// Does `f` share topics with the allow filter `a` that no single deny filter covers? Remembers
/// the first covering deny for the message.
fn uncovered<'r>(
    f: &[Lv],
    a: &[Lv],
    denies: &[(&'r Rule, Vec<Lv>)],
    covered_by: &mut Option<&'r Rule>,
) -> bool {
    let Some(i) = intersect(f, a) else {
        return false;
    };
    match denies.iter().find(|(_, d)| covers(d, &i)) {
        Some((d, _)) => {
            covered_by.get_or_insert(d);
            false
        }
        None => true,
    }
}

/// `$share/GROUP/FILTER` subscribes to FILTER.
fn strip_share(filter: &str) -> &str {
    match split_shared(filter) {
        Ok((_, f)) => f,
        Err(_) => filter,
    }
}

/// Validate a SUBSCRIBE filter, including the `$share/GROUP/FILTER` form.
pub fn validate_subscription(filter: &str) -> Result<(), String> {
    validate_filter(filter)?;
    match split_shared(filter) {
        Ok((_, f)) => validate_filter(f),
        Err(_) => Err(format!(
            "invalid shared subscription \"{filter}\": expected $share/GROUP/FILTER"
        )),
    }
}

fn apply_limits<'a>(r: &'a Rule, req: &AclRequest) -> Decision<'a> {
    if req.retain && !r.limits.retain {
        return Decision::deny(Some(r), Reason::RetainNotAllowed);
    }
    if req.access == Access::Write && req.qos > r.limits.max_qos {
        return Decision::deny(Some(r), Reason::QosAboveLimit);
    }
    Decision::allow(r)
}

pub(crate) fn read_text(path: &Path) -> Result<String, AclError> {
    let file = path.display().to_string();
    let io = |source| AclError::Io {
        file: file.clone(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    if !crate::fsutil::read_capped(f, MAX_FILE_LEN, &mut bytes).map_err(io)? {
        return Err(AclError::TooLarge { file });
    }
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        AclError::Syntax {
            file: file.clone(),
            line: u32::try_from(line).unwrap_or(u32::MAX),
            message: "the line is not valid UTF-8".into(),
        }
    })
}

/// Parse and compile, collecting every error.
pub(crate) fn compile(text: &str, file_name: &str) -> Compiled {
    let file: Arc<str> = file_name.into();
    let (stmts, mut errors) = parse::parse(text);
    let mut rules: Vec<Rule> = Vec::new();
    let mut owner = Owner::Anonymous;
    // Rule ids per owner, in file order (repeated `user X` blocks merge, as in Mosquitto).
    let mut anon_ids: Vec<u32> = Vec::new();
    let mut user_ids: HashMap<String, Vec<u32>> = HashMap::new();
    let mut role_ids: HashMap<String, Vec<u32>> = HashMap::new();
    let mut pattern_ids: Vec<u32> = Vec::new();
    let mut assigned: HashMap<Option<String>, Vec<String>> = HashMap::new();
    let mut role_refs: Vec<(u32, String)> = Vec::new();
    for st in stmts {
        match st.kind {
            StmtKind::User(u) => {
                user_ids.entry(u.clone()).or_default();
                owner = Owner::User(u);
            }
            StmtKind::Role(r) => {
                role_ids.entry(r.clone()).or_default();
                owner = Owner::Role(r);
            }
            StmtKind::Roles(names) => {
                let key = match &owner {
                    Owner::Anonymous => None,
                    Owner::User(u) => Some(u.clone()),
                    Owner::Role(r) => {
                        errors.push(ParseError {
                            line: st.line,
                            message: format!(
                                "`roles` inside role \"{r}\": roles cannot include other roles; assign them in a user block"
                            ),
                        });
                        continue;
                    }
                    Owner::Everyone | Owner::Token => None,
                };
                let list = assigned.entry(key).or_default();
                for n in names {
                    role_refs.push((st.line, n.clone()));
                    if !list.contains(&n) {
                        list.push(n);
                    }
                }
            }
            StmtKind::Rule(r) => {
                let Ok(id) = u32::try_from(rules.len()) else {
                    errors.push(ParseError {
                        line: st.line,
                        message: "too many rules".into(),
                    });
                    break;
                };
                let rule_owner = if r.pattern {
                    pattern_ids.push(id);
                    Owner::Everyone
                } else {
                    match &owner {
                        Owner::Anonymous => anon_ids.push(id),
                        Owner::User(u) => user_ids.entry(u.clone()).or_default().push(id),
                        Owner::Role(n) => role_ids.entry(n.clone()).or_default().push(id),
                        Owner::Everyone | Owner::Token => {}
                    }
                    owner.clone()
                };
                rules.push(Rule {
                    file: file.clone(),
                    line: st.line,
                    text: st.text.into(),
                    pattern: r.pattern,
                    access: r.access,
                    topic: r.topic.into(),
                    limits: r.limits,
                    owner: rule_owner,
                    filter: r.filter,
                    access_word: r.access_word,
                });
            }
        }
    }
    for (line, name) in role_refs {
        if !role_ids.contains_key(&name) {
            errors.push(ParseError {
                line,
                message: format!("unknown role \"{name}\": define it with a `role {name}` block"),
            });
        }
    }
    errors.sort_by_key(|e| e.line);
    // A user's list: own rules, then each assigned role's rules in assignment order.
    let with_roles = |own: &[u32], key: Option<&String>| -> Vec<u32> {
        let mut ids = own.to_vec();
        if let Some(names) = assigned.get(&key.cloned()) {
            for n in names {
                if let Some(r) = role_ids.get(n) {
                    ids.extend(r.iter().copied());
                }
            }
        }
        ids
    };
    let anonymous = List::build(&rules, with_roles(&anon_ids, None));
    let mut users: HashMap<Box<str>, List> = user_ids
        .iter()
        .map(|(u, ids)| {
            (
                u.as_str().into(),
                List::build(&rules, with_roles(ids, Some(u))),
            )
        })
        .collect();
    users.shrink_to_fit();
    let roles = role_ids
        .iter()
        .map(|(n, ids)| (n.as_str().into(), List::build(&rules, ids.iter().copied())))
        .collect();
    let patterns = List::build(&rules, pattern_ids.iter().copied());
    let patterns_use_user = pattern_ids
        .iter()
        .any(|&i| rules[i as usize].filter.uses_user);
    let patterns_use_client = pattern_ids
        .iter()
        .any(|&i| rules[i as usize].filter.uses_client);
    Compiled {
        acl: Acl {
            file,
            rules,
            anonymous,
            users,
            roles,
            patterns,
            patterns_use_user,
            patterns_use_client,
            assigned,
        },
        errors,
    }
}

#[cfg(test)]
mod tests;

//! Permissions a verified access token carries: its `acl` claim (`{"pub": [filters], "sub":
//! [filters]}`, `%u`/`%c` substituted per client) and its `roles` claim (roles of the ACL file).
//!
//! They are compiled into the ACL's own [`Rule`] type and evaluated by the same matcher as the
//! file: the claim's rules join the client's own list after its user block and roles (so every
//! `deny` of the file is still tried first), before the file's patterns. `pub` grants write,
//! `sub` grants read (SUBSCRIBE and each delivery).

use std::sync::Arc;

use super::filter::{validate_filter, Filter};
use super::parse::{RuleLimits, READ, WRITE};
use super::{Owner, Rule};
use crate::security::identity::Identity;

/// Most filters one claim may hold (a token is a credential, not a policy store).
pub const MAX_CLAIM_FILTERS: usize = 256;
/// Most roles one claim may name.
pub const MAX_CLAIM_ROLES: usize = 64;

/// The rules and roles of one token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClaimRules {
    pub(super) rules: Vec<Rule>,
    roles: Vec<String>,
}

impl PartialEq for Rule {
    fn eq(&self, other: &Self) -> bool {
        self.file == other.file && self.line == other.line && self.text == other.text
    }
}

impl Eq for Rule {}

impl ClaimRules {
    /// Compile a token's `acl.pub`, `acl.sub` and `roles`. A filter that is not a valid MQTT
    /// topic filter refuses the whole token (the error names it).
    pub fn new(
        publish: &[String],
        subscribe: &[String],
        roles: Vec<String>,
    ) -> Result<ClaimRules, String> {
        if publish.len() + subscribe.len() > MAX_CLAIM_FILTERS {
            return Err(format!("acl claim: more than {MAX_CLAIM_FILTERS} filters"));
        }
        if roles.len() > MAX_CLAIM_ROLES {
            return Err(format!("roles claim: more than {MAX_CLAIM_ROLES} roles"));
        }
        if let Some(r) = roles
            .iter()
            .find(|r| r.is_empty() || r.contains(char::is_whitespace))
        {
            return Err(format!("roles claim: invalid role name {r:?}"));
        }
        let file: Arc<str> = "token".into();
        let mut rules = Vec::with_capacity(publish.len() + subscribe.len());
        for (key, list, access) in [("pub", publish, WRITE), ("sub", subscribe, READ)] {
            for (i, f) in list.iter().enumerate() {
                validate_filter(f).map_err(|e| format!("acl claim {key}[{i}]: {e}"))?;
                rules.push(Rule {
                    file: file.clone(),
                    line: u32::try_from(rules.len() + 1).unwrap_or(u32::MAX),
                    text: format!("acl.{key}[{i}] {f}").into(),
                    pattern: true,
                    access,
                    topic: f.as_str().into(),
                    limits: RuleLimits::default(),
                    owner: Owner::Token,
                    filter: Filter::compile(f, true),
                    access_word: true,
                });
            }
        }
        Ok(ClaimRules { rules, roles })
    }

    /// Roles of the ACL file the token names.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    /// The compiled rules, `pub` then `sub`, in claim order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether `rule` (one of these) can apply to `id`: a `%u` rule needs a username, and a
    /// substituted value may not hold `+`, `#` or `/` (it would reach other clients' topics, the
    /// same gate the file's patterns have).
    pub(super) fn usable(rule: &Rule, id: &Identity) -> bool {
        let bad = |s: &str| s.contains(['+', '#', '/']);
        if rule.filter.uses_user && id.username.as_deref().is_none_or(bad) {
            return false;
        }
        !(rule.filter.uses_client && bad(&id.client_id))
    }
}

//! `mqsec acl-check`: ask the broker's own ACL matcher what it would decide, or lint an ACL file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use serde::Deserialize;
use serde_json::json;

use crate::exit::{CliError, CmdResult, Outcome};
use crate::security::acl::{
    self, validate_name, validate_subscription, Access, Acl, AclRequest, Decision, Grants, Severity,
};
use crate::security::identity::{AuthMethod, Identity};
use crate::security::tokens::{self, TokenGrant, TokenSession};

const LONG_ABOUT: &str = "\
Answer \"may this client do this?\" from an ACL file, or lint it. Reads Mosquitto acl_file files \
unchanged.

GRAMMAR (Mosquitto 2.0.11)
  # comment                      only when '#' is the first character of the line
  topic [ACCESS] TOPIC           ACCESS: read, write, readwrite (default) or deny
  user USERNAME                  following topic lines belong to USERNAME
  pattern [ACCESS] TOPIC         applies to every client; %u = username, %c = client id
Words are separated by spaces (not tabs); the rest of a line after the access word is the topic, \
spaces included. TOPIC may use + and #. `topic read` alone means topic \"read\" with readwrite \
access (--lint flags it). topic lines before the first user line form the anonymous list: only \
clients without a username get them.

EVALUATION
  1. The client's own list (its user block, or the anonymous list) plus its roles' rules: every \
deny rule first, then the others in file order. The first matching rule decides: deny denies, a \
rule with the requested access allows, a matching rule without it (read rule, publish) does not \
stop the search.
  2. If any pattern exists: a username or client id containing + or # is denied; so is one \
containing / when a pattern uses %u (or %c), because the value would span several levels and \
reach another client's tree (Mosquitto 2.0.11 substitutes it; mqsec refuses).
  3. The patterns, deny patterns first, same way. A %u pattern is skipped for a client without \
a username; %u/%c each match exactly one whole topic level; an empty value never lets an allow \
pattern match (deny patterns still apply).
  4. Otherwise: default deny.
A user deny beats any pattern allow, but a pattern deny does not beat a user allow. A filter \
starting with + or # never matches a $ topic (`#` does not grant $SYS/...). Writes to $SYS/... \
and reads/writes of $share/... topics are always refused.

ACCESS
  read       a delivery to the client (including retained messages)
  write      a PUBLISH (and a will when sent)
  subscribe  a SUBSCRIBE filter (mqsec checks these; Mosquitto does not): allowed when some \
rule granting read shares at least one topic with the filter and that shared part is not wholly \
inside one deny rule tried before it; $share/GROUP/F is judged by F. Deliveries are still checked \
one by one with read.
  subscribe-all  a SUBSCRIBE on a broker that never checks deliveries (RabbitMQ, EMQX, VerneMQ \
through `mqsec auth-server`): allowed only when one rule granting read covers the whole filter and \
no deny rule shares a topic with it. --retain asks whether retained messages may be delivered \
too (a rule with retain=false then denies); the granted QoS is the lowest max_qos of the rules \
that decide its topics.

MQSEC EXTENSIONS (Mosquitto refuses to load a file that uses them, so it can never misread one)
  topic ACCESS[max_qos=N,retain=BOOL] TOPIC   (also for pattern; no spaces inside [])
      max_qos=0|1|2: a write above it is denied; reads and subscriptions are capped at it.
      retain=false: retained publishes and retained deliveries are denied.
  role NAME                    starts a named rule set: following topic lines belong to the role
  roles NAME[,NAME...]         in a user block: the user gets these roles; before the first user \
or role line: anonymous clients get them
A user's roles' rules join the user's own list after the user's own rules, in assignment order \
(file roles lines, then roles from the client's token or --role); deny rules of roles are denies \
of that list, tried before any allow.

LINT (--lint)
  error: malformed lines; a deny rule that wipes out its own block (the trailing `topic deny #` \
trap); # granted to every client or to anonymous clients; a wildcard write pattern without \
%u/%c; `topic read` with no topic.
  warning: rules shadowed by earlier ones; a pattern deny that a user's own allow overrides; a literal write pattern without %u/%c; users or roles \
without rules; %u/%c in a topic line (literal there).";

fn after_help() -> String {
    format!(
        "\
Examples:
  # acl.conf: the admin gets everything, a sensor writes its own tree.
  #   user admin
  #   topic readwrite #
  #   user sensor_001
  #   topic write sensors/001/#
  #   topic read commands/001
  $ mqsec acl-check acl.conf --username sensor_001 --access write sensors/001/temp sensors/002/temp
  ALLOW write sensors/001/temp  acl.conf:4  topic write sensors/001/#
  DENY  write sensors/002/temp  default deny
  (exit 1: one query was denied)

  $ mqsec acl-check acl.conf --username admin --access subscribe '$SYS/#' --json
  {{\"access\":\"subscribe\",\"allowed\":false,\"client_id\":\"\",\"max_qos\":null,\"qos\":0,
   \"reason\":\"default deny\",\"retain\":false,\"roles\":[],\"rule\":null,\"rule_text\":null,
   \"topic\":\"$SYS/#\",\"username\":\"admin\"}}
  (one line; `#` does not reach $SYS topics)

  # CI batch: one JSON object per line (username and client_id optional; qos, retain, roles too)
  #   {{\"username\":\"sensor_001\",\"client_id\":\"s1\",\"access\":\"write\",\"topic\":\"sensors/001/t\"}}
  $ mqsec acl-check acl.conf --queries queries.jsonl

  $ mqsec acl-check acl.conf --lint

{}",
        crate::cli::EXIT_CODES_HELP
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccessArg {
    Read,
    Write,
    Subscribe,
    SubscribeAll,
}

impl From<AccessArg> for Access {
    fn from(a: AccessArg) -> Access {
        match a {
            AccessArg::Read => Access::Read,
            AccessArg::Write => Access::Write,
            AccessArg::Subscribe => Access::Subscribe,
            AccessArg::SubscribeAll => Access::SubscribeAll,
        }
    }
}

/// Check topics against an ACL file, or lint it.
#[derive(Debug, Args)]
#[command(long_about = LONG_ABOUT, after_help = after_help())]
pub struct AclCheckArgs {
    /// The ACL file (Mosquitto acl_file format, mqsec extensions allowed)
    #[arg(value_name = "ACL_FILE")]
    pub acl_file: PathBuf,

    /// Topic names (read, write) or filters (subscribe) to check
    #[arg(value_name = "TOPIC", required_unless_present_any = ["queries", "lint"], conflicts_with_all = ["queries", "lint"])]
    pub topics: Vec<String>,

    /// The client's username; omit it for an anonymous client
    #[arg(long, short = 'u', value_name = "USERNAME", conflicts_with_all = ["queries", "lint", "token"])]
    pub username: Option<String>,

    /// Answer for the client a token (JWT) names, with its acl and roles claims. The signature
    /// and times are not checked: the answer is what the token may do if the broker accepts it.
    /// Use /dev/null as ACL_FILE for a listener without acl_file
    #[arg(long, value_name = "FILE", conflicts_with_all = ["queries", "lint", "roles"])]
    pub token: Option<PathBuf>,

    /// With --token: the claim that names the client (the broker's token_username_claim)
    #[arg(long, value_name = "CLAIM", default_value = "sub", requires = "token")]
    pub username_claim: String,

    /// The client id (%c in patterns); empty by default, and then %c patterns never match
    #[arg(long, short = 'i', value_name = "CLIENT_ID", conflicts_with_all = ["queries", "lint"])]
    pub client_id: Option<String>,

    /// What the client wants to do
    #[arg(long, short = 'a', value_enum, required_unless_present_any = ["queries", "lint"], conflicts_with_all = ["queries", "lint"])]
    pub access: Option<AccessArg>,

    /// QoS of the publish or delivery (checked against max_qos=)
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2), conflicts_with_all = ["queries", "lint"])]
    pub qos: u8,

    /// The message is retained (checked against retain=false)
    #[arg(long, conflicts_with_all = ["queries", "lint"])]
    pub retain: bool,

    /// Extra role for the client, as a token would grant it (repeatable)
    #[arg(long = "role", value_name = "ROLE", conflicts_with_all = ["queries", "lint"])]
    pub roles: Vec<String>,

    /// JSON lines of queries: {"username", "client_id", "access", "topic", "qos", "retain", "roles"}
    #[arg(long, value_name = "FILE", conflicts_with = "lint")]
    pub queries: Option<PathBuf>,

    /// Lint the file instead of answering queries (exit 1 on error-level findings)
    #[arg(long)]
    pub lint: bool,

    /// One JSON object per line instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryLine {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    access: String,
    topic: String,
    #[serde(default)]
    qos: Option<u8>,
    #[serde(default)]
    retain: Option<bool>,
    #[serde(default)]
    roles: Vec<String>,
}

struct Query {
    id: Identity,
    access: Access,
    topic: String,
    qos: u8,
    retain: bool,
}

pub fn run(args: AclCheckArgs) -> CmdResult {
    if args.lint {
        return run_lint(&args);
    }
    let acl = Arc::new(Acl::load(&args.acl_file).map_err(|e| CliError::input(e.to_string()))?);
    let queries = match &args.queries {
        Some(path) => read_queries(path, &acl)?,
        None => {
            let access: Access = args
                .access
                .ok_or_else(|| CliError::input("--access is required with topics"))?
                .into();
            let client = args.client_id.clone().unwrap_or_default();
            let mut id = match (&args.token, &args.username) {
                (Some(t), _) => token_identity(t, &args.username_claim, client, &acl)?,
                (None, Some(u)) => Identity::with_username(client, u.as_str()),
                (None, None) => Identity::anonymous(client),
            };
            check_roles(&acl, &args.roles).map_err(CliError::input)?;
            if args.token.is_none() {
                id.set_roles(args.roles.clone());
            }
            args.topics
                .iter()
                .map(|t| {
                    check_topic(access, t)
                        .map_err(|e| CliError::input(format!("topic \"{t}\": {e}")))?;
                    Ok(Query {
                        id: id.clone(),
                        access,
                        topic: t.clone(),
                        qos: args.qos,
                        retain: args.retain,
                    })
                })
                .collect::<Result<Vec<_>, CliError>>()?
        }
    };
    let show_who = args.queries.is_some();
    let mut all_allowed = true;
    let mut out = String::new();
    for q in &queries {
        // Compiled per client exactly as `serve` compiles each connection's permissions.
        let grants = Grants::new(acl.clone(), &q.id);
        let d = grants.decide(
            &q.id,
            &AclRequest {
                access: q.access,
                topic: &q.topic,
                qos: q.qos,
                retain: q.retain,
            },
        );
        all_allowed &= d.allowed;
        if args.json {
            out.push_str(&json_line(q, &d));
        } else {
            text_line(&mut out, q, &d, show_who);
        }
        out.push('\n');
    }
    emit(&out);
    Ok(if all_allowed {
        Outcome::Success
    } else {
        Outcome::Negative
    })
}

/// Write the whole report; a closed pipe (`| head`) is not an error worth a panic.
fn emit(out: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
}

fn check_topic(access: Access, topic: &str) -> Result<(), String> {
    match access {
        Access::Read | Access::Write => validate_name(topic),
        Access::Subscribe | Access::SubscribeAll => validate_subscription(topic),
    }
}

/// The identity the broker would give the client of this token: its username claim, and its
/// `acl`/`roles` claims as a scope. The token is read, not verified (see `--token`).
fn token_identity(
    path: &Path,
    username_claim: &str,
    client_id: String,
    acl: &Acl,
) -> Result<Identity, CliError> {
    let name = path.display();
    let text = std::fs::read(path).map_err(|e| CliError::input(format!("{name}: {e}")))?;
    let claims = tokens::unverified_claims(text.trim_ascii())
        .map_err(|e| CliError::input(format!("{name}: {e}")))?;
    let user = match claims.get(username_claim) {
        Some(serde_json::Value::String(u)) if !u.is_empty() => u.clone(),
        _ => {
            return Err(CliError::input(format!(
                "{name}: no {username_claim} claim naming the client"
            )))
        }
    };
    let scope = tokens::scope_of(&claims).map_err(|e| CliError::input(format!("{name}: {e}")))?;
    if let Some(s) = &scope {
        if let Some(r) = s.roles().iter().find(|r| !acl.has_role(r)) {
            eprintln!(
                "warning: {name}: role \"{r}\" is not defined in {}; it grants nothing",
                acl.file()
            );
        }
    }
    eprintln!(
        "note: {name}: signature and times not checked; answering for user \"{user}\"{}",
        if scope.is_some() {
            " with the token's acl/roles claims"
        } else {
            " (the token has no acl or roles claim)"
        }
    );
    let mut id = Identity::with_username(client_id, user.clone());
    id.auth = AuthMethod::Token;
    id.set_token(Some(Arc::new(TokenSession::new(TokenGrant {
        username: user,
        valid_until: claims.get("exp").and_then(|v| v.as_u64()).unwrap_or(0),
        scope: scope.map(Arc::new),
        key_id: "acl-check".into(),
    }))));
    Ok(id)
}

fn check_roles(acl: &Acl, roles: &[String]) -> Result<(), String> {
    match roles.iter().find(|r| !acl.has_role(r)) {
        Some(r) => Err(format!(
            "role \"{r}\": {} has no `role {r}` block",
            acl.file()
        )),
        None => Ok(()),
    }
}

fn read_queries(path: &Path, acl: &Acl) -> Result<Vec<Query>, CliError> {
    let name = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::input(format!("{name}: cannot read queries: {e}")))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let q: QueryLine = serde_json::from_str(line).map_err(|e| {
            CliError::input(format!(
                "{name}:{n}: expected a JSON object with access and topic (and optional username, client_id, qos, retain, roles): {e}"
            ))
        })?;
        let access: Access = q
            .access
            .parse()
            .map_err(|e| CliError::input(format!("{name}:{n}: field access: {e}")))?;
        check_topic(access, &q.topic)
            .map_err(|e| CliError::input(format!("{name}:{n}: field topic: {e}")))?;
        let qos = q.qos.unwrap_or(0);
        if qos > 2 {
            return Err(CliError::input(format!(
                "{name}:{n}: field qos: {qos} is not 0, 1 or 2"
            )));
        }
        check_roles(acl, &q.roles)
            .map_err(|e| CliError::input(format!("{name}:{n}: field roles: {e}")))?;
        let client = q.client_id.unwrap_or_default();
        let mut id = match q.username {
            Some(u) => Identity::with_username(client, u),
            None => Identity::anonymous(client),
        };
        id.set_roles(q.roles);
        out.push(Query {
            id,
            access,
            topic: q.topic,
            qos,
            retain: q.retain.unwrap_or(false),
        });
    }
    Ok(out)
}

fn text_line(out: &mut String, q: &Query, d: &Decision, show_who: bool) {
    let verdict = if d.allowed { "ALLOW" } else { "DENY " };
    let _ = write!(out, "{verdict} ");
    if show_who {
        match &q.id.username {
            Some(u) => {
                let _ = write!(out, "user={u} ");
            }
            None => out.push_str("anonymous "),
        }
        if !q.id.client_id.is_empty() {
            let _ = write!(out, "client={} ", q.id.client_id);
        }
    }
    let _ = write!(out, "{} {}  {d}", q.access, q.topic);
    if let Some(r) = d.rule {
        let _ = write!(out, "  {}", r.text());
    }
    if d.rule.is_some() && d.reason != acl::Reason::Granted {
        let _ = write!(out, "  ({})", d.reason);
    }
    if d.allowed && d.max_qos < 2 {
        match q.access {
            Access::Read => {
                let _ = write!(out, "  (delivered at QoS <= {})", d.max_qos);
            }
            Access::Subscribe | Access::SubscribeAll => {
                let _ = write!(out, "  (granted QoS <= {})", d.max_qos);
            }
            Access::Write => {}
        }
    }
}

fn json_line(q: &Query, d: &Decision) -> String {
    json!({
        "topic": q.topic,
        "access": q.access.as_str(),
        "allowed": d.allowed,
        "rule": d.rule_ref().map(|r| r.to_string()),
        "rule_text": d.rule.map(|r| r.text()),
        "reason": d.reason.as_str(),
        "username": q.id.username,
        "client_id": &*q.id.client_id,
        "roles": q.id.claims().map_or_else(|| q.id.roles().to_vec(), |c| c.roles().to_vec()),
        "qos": q.qos,
        "retain": q.retain,
        "max_qos": if d.allowed { Some(d.max_qos) } else { None },
    })
    .to_string()
}

fn run_lint(args: &AclCheckArgs) -> CmdResult {
    let file = args.acl_file.display().to_string();
    let text = acl::read_text(&args.acl_file).map_err(|e| CliError::input(e.to_string()))?;
    let findings = acl::lint(&text, &file);
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let mut out = String::new();
    for f in &findings {
        if args.json {
            out.push_str(
                &json!({
                    "file": f.file,
                    "line": f.line,
                    "severity": f.severity.as_str(),
                    "code": f.code,
                    "message": f.message,
                })
                .to_string(),
            );
        } else {
            let _ = write!(out, "{f}");
        }
        out.push('\n');
    }
    if !args.json {
        let _ = writeln!(
            out,
            "{file}: {errors} error(s), {} warning(s)",
            findings.len() - errors
        );
    }
    emit(&out);
    Ok(if errors > 0 {
        Outcome::Negative
    } else {
        Outcome::Success
    })
}

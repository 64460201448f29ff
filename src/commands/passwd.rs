//! `mqsec passwd`: manage password files (Mosquitto's `password_file` format, argon2id hashes).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::cli::EXIT_CODES_HELP;
use crate::exit::{CliError, CmdResult, Outcome};
use crate::fsutil::{self, FileLock, MODE_SECRET};
use crate::prompt;
use crate::security::passwd::{
    self as pw, acl_unsafe_chars, hash_password, validate_username, Argon2Params, HashError,
    LineKind, PasswdError, PasswordFile, Scheme, Severity, Verifier,
};

fn help(examples: &str) -> String {
    format!("Examples:\n{examples}\n\n{EXIT_CODES_HELP}")
}

fn passwd_help() -> String {
    help(
        "  # create a file and add a user (prompts twice on a terminal)
  mqsec passwd add /etc/mqsec/passwd alice
  # in CI: the password is one line of stdin, never an argument
  printf '%s\\n' \"$PW\" | mqsec passwd add /etc/mqsec/passwd alice
  mqsec passwd list /etc/mqsec/passwd
  mqsec passwd check /etc/mqsec/passwd

Reads Mosquitto password files unchanged ($7$ and $6$ lines verify) and writes argon2id. Mosquitto
2.0 cannot read argon2id lines: keep its own file for Mosquitto, or serve it with mqsec.",
    )
}

/// Manage password files: add, delete, list, verify, check, import.
#[derive(Debug, Args)]
#[command(
    long_about = "Manage MQTT password files in Mosquitto's `USER:HASH` format. New passwords are \
                  hashed with argon2id (at least OWASP's minimum cost); Mosquitto's $7$ \
                  (PBKDF2-SHA512) and $6$ (SHA-512) lines are verified as they are, so an existing \
                  Mosquitto password file works unchanged. Files are rewritten atomically with \
                  mode 0600 under a lock, keeping comments and every other line.",
    after_help = passwd_help()
)]
pub struct PasswdArgs {
    #[command(subcommand)]
    pub command: PasswdCommand,
}

#[derive(Debug, Subcommand)]
pub enum PasswdCommand {
    Add(AddArgs),
    Delete(DeleteArgs),
    List(ListArgs),
    Verify(VerifyArgs),
    Check(CheckArgs),
    Import(ImportArgs),
}

/// argon2id cost for new hashes.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Hashing")]
pub struct HashArgs {
    /// argon2id memory cost in KiB (OWASP minimum: 19456 with 2 iterations).
    #[arg(long, value_name = "KIB", default_value_t = Argon2Params::DEFAULT.memory_kib)]
    pub memory_kib: u32,
    /// argon2id iterations (time cost).
    #[arg(long, value_name = "N", default_value_t = Argon2Params::DEFAULT.iterations)]
    pub iterations: u32,
    /// argon2id parallelism (lanes).
    #[arg(long, value_name = "N", default_value_t = Argon2Params::DEFAULT.parallelism)]
    pub parallelism: u32,
    /// Accept parameters below the OWASP minimum. For tests only: such hashes are cheap to crack.
    #[arg(long)]
    pub allow_weak_params: bool,
}

impl HashArgs {
    fn params(&self) -> Result<Argon2Params, CliError> {
        let p = Argon2Params {
            memory_kib: self.memory_kib,
            iterations: self.iterations,
            parallelism: self.parallelism,
        };
        p.check(self.allow_weak_params).map_err(|e| {
            CliError::input(format!(
                "--memory-kib/--iterations/--parallelism: {e}{}",
                if matches!(e, pw::ParamsError::BelowOwasp(_)) {
                    " (--allow-weak-params overrides, for tests)"
                } else {
                    ""
                }
            ))
        })?;
        Ok(p)
    }
}

/// Add a user, or replace their password. Creates FILE (mode 0600) if missing.
#[derive(Debug, Args)]
#[command(after_help = help(
    "  mqsec passwd add passwd.txt alice            # prompts twice on a terminal
  printf '%s\\n' \"$PW\" | mqsec passwd add passwd.txt alice

The password is read from a no-echo prompt, or from the first line of stdin when stdin is not a
terminal. It is never taken from the command line (argv is visible to every local user)."
))]
pub struct AddArgs {
    /// The password file.
    pub file: PathBuf,
    /// The username (no ':', no control characters, not starting with '#').
    pub user: String,
    #[command(flatten)]
    pub hash: HashArgs,
}

/// Remove a user. Exit 1 (file unchanged) when the user is not in the file.
#[derive(Debug, Args)]
#[command(after_help = help(
    "  mqsec passwd delete passwd.txt alice
  mqsec passwd delete passwd.txt alice || [ $? -eq 1 ]   # idempotent: 1 = was not there"
))]
pub struct DeleteArgs {
    /// The password file.
    pub file: PathBuf,
    /// The username to remove (every line for it).
    pub user: String,
}

/// List users with their hash scheme and a warning for weak or legacy hashes.
#[derive(Debug, Args)]
#[command(after_help = help(
    "  mqsec passwd list passwd.txt
  mqsec passwd list passwd.txt --json | jq -r '.[] | select(.warning) | .user'

Schemes: argon2id, pbkdf2-sha512($7$), sha512($6$), plaintext, unknown. In --json they are
argon2id, pbkdf2-sha512, sha512, plaintext, unknown."
))]
pub struct ListArgs {
    /// The password file.
    pub file: PathBuf,
    /// One JSON array of {line, user, scheme, params, warning}.
    #[arg(long)]
    pub json: bool,
}

/// Check a user's password. Exit 0 on a match, 1 on a mismatch or an unknown user.
#[derive(Debug, Args)]
#[command(after_help = help(
    "  mqsec passwd verify passwd.txt alice
  printf '%s\\n' \"$PW\" | mqsec passwd verify passwd.txt alice && echo ok
  printf '%s\\n' \"$PW\" | mqsec passwd verify --upgrade passwd.txt alice

A mismatch and an unknown user give the same answer and cost the same time (the broker uses the
same verifier). With --upgrade, a matching $6$/$7$ or weaker argon2id entry is rewritten as argon2id
with the --memory-kib/--iterations/--parallelism cost."
))]
pub struct VerifyArgs {
    /// The password file.
    pub file: PathBuf,
    /// The username.
    pub user: String,
    /// On a match, rewrite a legacy or weaker hash as argon2id (the file is locked and updated).
    #[arg(long)]
    pub upgrade: bool,
    #[command(flatten)]
    pub hash: HashArgs,
}

/// Lint a password file. Exit 1 when it finds a problem at or above --fail-on.
#[derive(Debug, Args)]
#[command(after_help = help(
    "  mqsec passwd check passwd.txt
  mqsec passwd check --fail-on error passwd.txt    # legacy hashes warn but do not fail
  mqsec passwd check --json passwd.txt

Errors: malformed lines, duplicate users, clear-text passwords, undecodable hashes, usernames with
control characters. Warnings: legacy $6$/$7$ hashes, argon2id below the OWASP minimum, usernames
with '+', '#' or '/' (Mosquitto ACL patterns never match them), a file readable by group or others.
Each finding is printed as FILE:LINE: SEVERITY: MESSAGE."
))]
pub struct CheckArgs {
    /// The password file.
    pub file: PathBuf,
    /// Lowest severity that makes the exit code 1.
    #[arg(long, value_enum, default_value_t = FailOn::Warning)]
    pub fail_on: FailOn,
    /// One JSON object {file, users, findings: [{line, severity, message}]}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Warning,
    Error,
}

/// Hash a clear-text `USER:PASSWORD` file into a new password file.
#[derive(Debug, Args)]
#[command(after_help = help(
    "  mqsec passwd import users.txt passwd.txt
  mqsec passwd import --force users.txt users.txt   # hash in place, like mosquitto_passwd -U

Blank lines and '#' comments in the input are skipped; a password may contain ':' (the first one
separates the user). OUT is written atomically with mode 0600; an existing OUT is refused unless
--force. Errors name the input line but never echo a password."
))]
pub struct ImportArgs {
    /// Clear-text input, one USER:PASSWORD per line.
    pub plaintext_file: PathBuf,
    /// The password file to write.
    pub out: PathBuf,
    /// Replace OUT if it exists.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub hash: HashArgs,
}

pub fn run(args: PasswdArgs) -> CmdResult {
    match args.command {
        PasswdCommand::Add(a) => add(a),
        PasswdCommand::Delete(a) => delete(a),
        PasswdCommand::List(a) => list(a),
        PasswdCommand::Verify(a) => verify(a),
        PasswdCommand::Check(a) => check(a),
        PasswdCommand::Import(a) => import(a),
    }
}

fn file_err(e: PasswdError) -> CliError {
    CliError::input(e.to_string())
}

fn check_user(user: &str) -> Result<(), CliError> {
    validate_username(user).map_err(|e| CliError::input(format!("USER {user:?}: {e}")))?;
    warn_acl_unsafe(user);
    Ok(())
}

fn warn_acl_unsafe(user: &str) {
    let bad = acl_unsafe_chars(user);
    if !bad.is_empty() {
        let list: Vec<String> = bad.iter().map(|c| format!("'{c}'")).collect();
        eprintln!(
            "mqsec: warning: username {user:?} contains {}: Mosquitto-style ACL patterns (%u) \
             never match it",
            list.join(", ")
        );
    }
}

fn read_password(user: &str, confirm: bool) -> Result<Zeroizing<String>, CliError> {
    prompt::read_secret(&format!("Password for {user}"), confirm)
        .map_err(|e| CliError::input(format!("password for {user:?}: {e}")))
}

fn add(a: AddArgs) -> CmdResult {
    check_user(&a.user)?;
    let params = a.hash.params()?;
    let password = read_password(&a.user, true)?;
    // Hash before taking the lock: concurrent `add`s then wait only for each other's write.
    let field = hash_password(password.as_bytes(), &params)
        .map_err(|e| CliError::input(format!("--memory-kib/--iterations/--parallelism: {e}")))?;
    let replaced = pw::update_file(&a.file, true, |f| f.set(&a.user, &field)).map_err(file_err)?;
    println!(
        "{} {} {} {} (argon2id {params})",
        if replaced { "updated" } else { "added" },
        a.user,
        if replaced { "in" } else { "to" },
        a.file.display()
    );
    Ok(Outcome::Success)
}

fn delete(a: DeleteArgs) -> CmdResult {
    let removed = pw::update_file(&a.file, false, |f| f.remove(&a.user)).map_err(file_err)?;
    if removed == 0 {
        return Err(CliError::with_code(
            format!(
                "{}: no user {:?}; nothing deleted",
                a.file.display(),
                a.user
            ),
            Outcome::Negative.code(),
        ));
    }
    println!("deleted {} from {}", a.user, a.file.display());
    Ok(Outcome::Success)
}

#[derive(Serialize)]
struct ListRow<'a> {
    line: usize,
    user: &'a str,
    scheme: Scheme,
    /// argon2id `m=..,t=..,p=..` or `$7$` iterations.
    params: Option<String>,
    warning: Option<String>,
}

fn list(a: ListArgs) -> CmdResult {
    let file = PasswordFile::load(&a.file).map_err(file_err)?;
    let mut rows = Vec::new();
    for (line, e) in file.entries() {
        let (params, warning) = match &e.hash {
            Ok(h) => {
                let params = match h {
                    pw::StoredHash::Argon2id { params, .. } => Some(params.to_string()),
                    pw::StoredHash::Pbkdf2Sha512 { iterations, .. } => {
                        Some(format!("iterations={iterations}"))
                    }
                    pw::StoredHash::Sha512 { .. } => None,
                };
                (params, h.weakness())
            }
            Err(HashError::Plaintext) => (
                None,
                Some("clear-text password: never accepted; rehash it".to_string()),
            ),
            Err(err) => (None, Some(format!("cannot be verified: {err}"))),
        };
        rows.push(ListRow {
            line: line.number,
            user: &e.user,
            scheme: e.scheme,
            params,
            warning,
        });
    }
    if a.json {
        let out = serde_json::to_string_pretty(&rows)
            .map_err(|e| CliError::input(format!("JSON output: {e}")))?;
        println!("{out}");
    } else {
        let mut table = comfy_table::Table::new();
        table.load_preset(if std::io::stdout().is_terminal() {
            comfy_table::presets::UTF8_FULL_CONDENSED
        } else {
            comfy_table::presets::ASCII_MARKDOWN
        });
        table.set_header(["LINE", "USER", "SCHEME", "PARAMS", "WARNING"]);
        for r in &rows {
            table.add_row([
                r.line.to_string(),
                r.user.escape_debug().to_string(),
                r.scheme.label().to_string(),
                r.params.clone().unwrap_or_default(),
                r.warning.clone().unwrap_or_default(),
            ]);
        }
        println!("{table}");
    }
    let malformed = file
        .lines()
        .iter()
        .filter(|l| matches!(l.kind, LineKind::Malformed(_)))
        .count();
    if malformed > 0 {
        eprintln!(
            "mqsec: warning: {}: {malformed} malformed line(s) not listed; run `mqsec passwd check`",
            a.file.display()
        );
    }
    Ok(Outcome::Success)
}

fn verify(a: VerifyArgs) -> CmdResult {
    // Validate the upgrade cost before asking for a password, so a typo fails fast.
    let target = if a.upgrade {
        Some(a.hash.params()?)
    } else {
        None
    };
    let verifier = Verifier::load(&a.file).map_err(file_err)?;
    let password = read_password(&a.user, false)?;
    if !verifier.verify(&a.user, password.as_bytes()) {
        println!("FAIL: wrong password or unknown user");
        return Ok(Outcome::Negative);
    }
    println!("OK: password matches for {}", a.user);
    let Some(target) = target else {
        return Ok(Outcome::Success);
    };
    let Some(old) = verifier.stored(&a.user).cloned() else {
        return Ok(Outcome::Success);
    };
    if !old.needs_upgrade(&target) {
        println!("{}: already argon2id at least {target}", a.user);
        return Ok(Outcome::Success);
    }
    let field = hash_password(password.as_bytes(), &target)
        .map_err(|e| CliError::input(format!("--memory-kib/--iterations/--parallelism: {e}")))?;
    // Replace only the hash we verified: another writer may have changed it meanwhile.
    let upgraded = pw::update_file(&a.file, false, |f| {
        let same = f.find(&a.user).is_some_and(|e| e.hash.as_ref() == Ok(&old));
        if same {
            f.set(&a.user, &field);
        }
        same
    })
    .map_err(file_err)?;
    if upgraded {
        println!(
            "upgraded {} from {} to argon2id {target} in {}",
            a.user,
            old.scheme().label(),
            a.file.display()
        );
    } else {
        eprintln!(
            "mqsec: warning: {}: {}'s entry changed while verifying; not upgraded",
            a.file.display(),
            a.user
        );
    }
    Ok(Outcome::Success)
}

#[derive(Serialize)]
struct CheckReport<'a> {
    file: String,
    users: usize,
    findings: &'a [pw::Finding],
}

fn check(a: CheckArgs) -> CmdResult {
    let file = PasswordFile::load(&a.file).map_err(file_err)?;
    let mut findings = file.lint();
    if let Some(mode) = fsutil::mode_of(&a.file) {
        if fsutil::is_loose_secret_mode(mode) {
            findings.insert(
                0,
                pw::Finding {
                    line: 0,
                    severity: Severity::Warning,
                    message: format!(
                        "file mode {mode:04o}: readable by others (expected 0600; chmod 600)"
                    ),
                },
            );
        }
    }
    let users = Verifier::new(&file).user_count();
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    if a.json {
        let report = CheckReport {
            file: a.file.display().to_string(),
            users,
            findings: &findings,
        };
        let out = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::input(format!("JSON output: {e}")))?;
        println!("{out}");
    } else {
        let name = a.file.display();
        for f in &findings {
            if f.line == 0 {
                println!("{name}: {}: {}", f.severity, f.message);
            } else {
                println!("{name}:{}: {}: {}", f.line, f.severity, f.message);
            }
        }
        println!("{name}: {users} user(s), {errors} error(s), {warnings} warning(s)");
    }
    let failing = match a.fail_on {
        FailOn::Warning => findings.len(),
        FailOn::Error => errors,
    };
    Ok(if failing > 0 {
        Outcome::Negative
    } else {
        Outcome::Success
    })
}

/// One `USER:PASSWORD` line of an import file.
struct Plain {
    user: String,
    password: Zeroizing<String>,
}

fn parse_plaintext(path: &Path, bytes: &[u8]) -> Result<Vec<Plain>, CliError> {
    let name = path.display();
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        CliError::input(format!("{name}:{line}: not valid UTF-8"))
    })?;
    let mut out: Vec<Plain> = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((user, password)) = line.split_once(':') else {
            return Err(CliError::input(format!(
                "{name}:{n}: expected USER:PASSWORD, found no ':'"
            )));
        };
        validate_username(user)
            .map_err(|e| CliError::input(format!("{name}:{n}: USER {user:?}: {e}")))?;
        if password.is_empty() {
            return Err(CliError::input(format!(
                "{name}:{n}: expected USER:PASSWORD, found an empty password for {user:?}"
            )));
        }
        if let Some(first) = seen.insert(user.to_string(), n) {
            return Err(CliError::input(format!(
                "{name}:{n}: duplicate user {user:?} (first at line {first})"
            )));
        }
        out.push(Plain {
            user: user.to_string(),
            password: Zeroizing::new(password.to_string()),
        });
    }
    Ok(out)
}

fn import(a: ImportArgs) -> CmdResult {
    let params = a.hash.params()?;
    let bytes = pw::read_limited(&a.plaintext_file).map_err(file_err)?;
    let users = parse_plaintext(&a.plaintext_file, &bytes)?;
    if users.is_empty() {
        return Err(CliError::input(format!(
            "{}: expected USER:PASSWORD lines, found none",
            a.plaintext_file.display()
        )));
    }
    if let Err(p) = fsutil::refuse_existing(&[&a.out], a.force) {
        return Err(CliError::input(format!(
            "{}: already exists (use --force to replace it)",
            p.display()
        )));
    }
    for u in &users {
        warn_acl_unsafe(&u.user);
    }
    let hashes = hash_all(&users, &params)
        .map_err(|e| CliError::input(format!("--memory-kib/--iterations/--parallelism: {e}")))?;
    let mut file = PasswordFile::default();
    for (u, h) in users.iter().zip(&hashes) {
        file.set(&u.user, h);
    }
    let _lock = FileLock::acquire(&a.out).map_err(|source| {
        file_err(PasswdError::Lock {
            path: a.out.clone(),
            source,
        })
    })?;
    // Checked again under the lock: another writer may have created OUT while we hashed.
    if let Err(p) = fsutil::refuse_existing(&[&a.out], a.force) {
        return Err(CliError::input(format!(
            "{}: already exists (use --force to replace it)",
            p.display()
        )));
    }
    fsutil::atomic_write(&a.out, &file.to_bytes(), MODE_SECRET).map_err(|source| {
        file_err(PasswdError::Write {
            path: a.out.clone(),
            source,
        })
    })?;
    println!(
        "imported {} user(s) from {} into {} (argon2id {params})",
        users.len(),
        a.plaintext_file.display(),
        a.out.display()
    );
    Ok(Outcome::Success)
}

/// Hash every password, one thread per core: at the default cost a thousand users take about a
/// minute on one core.
fn hash_all(users: &[Plain], params: &Argon2Params) -> Result<Vec<String>, pw::ParamsError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, users.len().max(1));
    let chunk = users.len().div_ceil(threads).max(1);
    let progress = if std::io::stderr().is_terminal() && users.len() > 1 {
        indicatif::ProgressBar::new(users.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let results: Vec<Result<Vec<String>, pw::ParamsError>> = std::thread::scope(|s| {
        let handles: Vec<_> = users
            .chunks(chunk)
            .map(|part| {
                let progress = progress.clone();
                s.spawn(move || {
                    part.iter()
                        .map(|u| {
                            let h = hash_password(u.password.as_bytes(), params);
                            progress.inc(1);
                            h
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or(Err(pw::ParamsError::Invalid {
                    params: *params,
                    reason: "a hashing thread failed",
                }))
            })
            .collect()
    });
    progress.finish_and_clear();
    let mut out = Vec::with_capacity(users.len());
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}

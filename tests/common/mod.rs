//! Plumbing shared by the integration tests that drive real peers: free loopback ports, child
//! processes killed when a test ends however it ends, bounded waits, and a real Mosquitto.
//! Each test binary compiles its own copy and uses only part of it.
#![allow(dead_code)]

pub mod auth_http;
pub mod raw;
pub mod serve;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a peer gets to start listening before the test fails.
pub const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The `mqsec` binary under test.
pub fn mqsec_bin() -> &'static str {
    env!("CARGO_BIN_EXE_mqsec")
}

/// Run `mqsec ARGS` to completion with no stdin, capturing its output.
pub fn mqsec(args: &[&str]) -> Output {
    Command::new(mqsec_bin())
        .args(args)
        .output()
        .expect("run mqsec")
}

/// The Python interpreter for the tests that drive Python clients: `MQSEC_PYTHON` (scripts/test
/// points it at the virtual environment holding scripts/requirements-test.txt), else `python3`.
pub fn python() -> std::ffi::OsString {
    std::env::var_os("MQSEC_PYTHON").unwrap_or_else(|| "python3".into())
}

/// The crate's root directory (fixtures, docs).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A port nobody listens on right now (the OS picks it; the listener is closed again).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether the tests run as root: Mosquitto then drops to user `mosquitto` unless told otherwise.
pub fn running_as_root() -> bool {
    // /proc/self belongs to the effective user of this process.
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

/// A child process killed and reaped when the test ends, however it ends. Derefs to the `Child`.
pub struct ChildGuard {
    child: Child,
    /// Where the child's stderr goes, quoted when it dies early.
    log: Option<PathBuf>,
}

impl ChildGuard {
    pub fn new(child: Child) -> Self {
        ChildGuard { child, log: None }
    }

    /// Same, naming the file the child logs to so a failed wait can show it.
    pub fn with_log(child: Child, log: impl Into<PathBuf>) -> Self {
        ChildGuard {
            child,
            log: Some(log.into()),
        }
    }

    /// Wait for the child to exit; panics after `limit`.
    pub fn wait_timeout(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "child did not exit in {limit:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Wait (bounded) for the child to exit, then collect whatever it wrote to piped
    /// stdout/stderr (empty where not piped).
    pub fn wait_output(mut self, limit: Duration) -> Output {
        let status = self.wait_timeout(limit);
        let mut stdout = Vec::new();
        if let Some(mut s) = self.child.stdout.take() {
            s.read_to_end(&mut stdout).unwrap();
        }
        let mut stderr = Vec::new();
        if let Some(mut s) = self.child.stderr.take() {
            s.read_to_end(&mut stderr).unwrap();
        }
        Output {
            status,
            stdout,
            stderr,
        }
    }

    /// Wait until `host:port` accepts connections for every port; panics on timeout or if the
    /// child exits first (quoting its log).
    pub fn wait_listening(&mut self, host: &str, ports: &[u16], limit: Duration) {
        let deadline = Instant::now() + limit;
        for &port in ports {
            while TcpStream::connect((host, port)).is_err() {
                if let Ok(Some(status)) = self.child.try_wait() {
                    let log = self
                        .log
                        .as_ref()
                        .and_then(|l| std::fs::read_to_string(l).ok())
                        .unwrap_or_default();
                    panic!("peer exited ({status}) before listening on {host} port {port}: {log}");
                }
                assert!(
                    Instant::now() < deadline,
                    "nothing listened on {host} port {port} within {limit:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Deref for ChildGuard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.child
    }
}

impl DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

/// Wait (bounded) for `child` and collect its output; the child is killed if the wait fails.
pub fn wait_output(child: Child, limit: Duration) -> Output {
    ChildGuard::new(child).wait_output(limit)
}

/// Run `cmd` to its end (at most a minute) and return its stdout; panics naming `what`, with
/// everything it printed, when it fails.
pub fn stdout_of(cmd: &mut Command, what: &str) -> String {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let out = wait_output(child, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Wait until 127.0.0.1:`port` accepts connections; panics with the port after `timeout`.
pub fn wait_for_port(port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listened on 127.0.0.1 port {port} within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `mosquitto_passwd <args>` (batch mode expected), which must succeed.
pub fn mosquitto_passwd(args: &[&str]) {
    let status = Command::new("mosquitto_passwd")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("mosquitto_passwd is installed (apt install mosquitto)");
    assert!(status.success(), "mosquitto_passwd {args:?}");
}

/// `mqsec passwd add FILE USER` with the password on stdin (never argv), argon2id at the
/// cheapest cost the tool allows (tests must not spend seconds hashing); must succeed.
pub fn mqsec_passwd_add(file: &Path, user: &str, password: &str) {
    use std::io::Write;
    let mut child = Command::new(mqsec_bin())
        .args(["passwd", "add", "--allow-weak-params", "--memory-kib", "64"])
        .args(["--iterations", "1"])
        .arg(file)
        .arg(user)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mqsec passwd add");
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{password}").expect("write the password");
    }
    let out = wait_output(child, Duration::from_secs(60));
    assert!(out.status.success(), "mqsec passwd add: {out:?}");
}

/// A real Mosquitto, killed when dropped. Its config is `<dir>/<name>.conf`, its log
/// (`log_dest stderr`) `<dir>/<name>.log`.
pub struct Mosquitto {
    /// The first (for `start`: the only) port it listens on.
    pub port: u16,
    pub guard: ChildGuard,
    pub log: PathBuf,
}

impl Mosquitto {
    /// One plain listener on 127.0.0.1 at a free port, followed by `extra_conf` (which therefore
    /// configures that listener: TLS options, `protocol websockets`, ...). Waits until it listens.
    pub fn start(dir: &Path, extra_conf: &str) -> Mosquitto {
        let port = free_port();
        let conf = format!("listener {port} 127.0.0.1\n{extra_conf}");
        Self::start_full(dir, "mosquitto", &conf, "127.0.0.1", &[port])
    }

    /// `conf` as given (listener blocks included), waited for on `host` at every one of `ports`.
    pub fn start_full(dir: &Path, name: &str, conf: &str, host: &str, ports: &[u16]) -> Mosquitto {
        let mut m = Self::spawn(dir, name, conf, ports.first().copied().unwrap_or(0));
        m.guard.wait_listening(host, ports, LISTEN_TIMEOUT);
        m
    }

    /// Started, not waited for. As root, Mosquitto would switch to user `mosquitto`, which cannot
    /// read a 0700 temporary directory, so `user root` is added unless `conf` names a user.
    pub fn spawn(dir: &Path, name: &str, conf: &str, port: u16) -> Mosquitto {
        let path = dir.join(format!("{name}.conf"));
        let names_user = conf.lines().any(|l| l.trim_start().starts_with("user "));
        let user = if running_as_root() && !names_user {
            "user root\n"
        } else {
            ""
        };
        std::fs::write(&path, format!("{user}log_dest stderr\n{conf}")).unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("mosquitto is installed");
        Mosquitto {
            port,
            guard: ChildGuard::with_log(child, &log),
            log,
        }
    }

    /// Everything Mosquitto has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

//! A `mqsec serve` with its security log, for the tests that read what it logs (password/ACL
//! enforcement, tokens): started on a free loopback port, killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, mqsec_bin, ChildGuard};

/// How long an expected event may take on a loaded CI machine.
const WAIT: Duration = Duration::from_secs(30);

pub struct Serve {
    pub child: ChildGuard,
    pub port: u16,
    dir: PathBuf,
    /// Kept alive as long as the broker when the test handed its directory over.
    _owned: Option<tempfile::TempDir>,
}

impl Serve {
    /// `conf` follows a `listener PORT 127.0.0.1` line and `security_log security.jsonl`; the
    /// config, the log (`serve.log`) and the security log live in `dir`, and files the test
    /// wrote there are named relative to it.
    pub fn start(dir: &Path, conf: &str) -> Serve {
        let port = free_port();
        let path = dir.join("mqsec.conf");
        std::fs::write(
            &path,
            format!("listener {port} 127.0.0.1\nsecurity_log security.jsonl\n{conf}\n"),
        )
        .unwrap();
        let log = dir.join("serve.log");
        let child = Command::new(mqsec_bin())
            .args(["serve", "-c"])
            .arg(&path)
            .env("MQSEC_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut child = ChildGuard::with_log(child, &log);
        child.wait_listening("127.0.0.1", &[port], WAIT);
        Serve {
            child,
            port,
            dir: dir.to_path_buf(),
            _owned: None,
        }
    }

    /// As [`Serve::start`], keeping `dir` until the broker is dropped.
    pub fn start_in(dir: tempfile::TempDir, conf: &str) -> Serve {
        let mut s = Serve::start(dir.path(), conf);
        s._owned = Some(dir);
        s
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Every complete line of the security log, each of which must be JSON.
    pub fn events(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.path("security.jsonl")).unwrap_or_default();
        let complete = text.rsplit_once('\n').map_or("", |(done, _)| done);
        complete
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// Wait until the security log holds an event matching `f`; returns it.
    pub fn wait_event(
        &self,
        what: &str,
        f: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(e) = self.events().into_iter().find(|e| f(e)) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} event within {WAIT:?}; log: {:#?}",
                self.events()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn count(&self, event: &str) -> usize {
        self.events().iter().filter(|e| e["event"] == event).count()
    }

    /// SIGHUP, then wait for the reload to finish (its `reload` event).
    pub fn reload(&self) {
        let before = self.count("reload");
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success());
        self.wait_event("reload", |_| self.count("reload") > before);
    }

    /// What the broker wrote on stderr.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.path("serve.log")).unwrap_or_default()
    }
}

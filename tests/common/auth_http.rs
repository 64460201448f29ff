//! `mqsec auth-server` as a child process, and a minimal HTTP/1.1 client for asking it things
//! the way the engines do (one request per connection, `Connection: close`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, mqsec_bin, ChildGuard, LISTEN_TIMEOUT};

pub struct AuthServerProc {
    pub port: u16,
    pub child: ChildGuard,
    pub log: PathBuf,
}

impl AuthServerProc {
    /// Start on a free loopback port with `passwd` and `acl` (and `extra` arguments); stderr
    /// (logs and, with `--security-log stderr`, the events) goes to `dir/auth-server.log`.
    pub fn start(dir: &Path, passwd: &Path, acl: &Path, extra: &[&str]) -> AuthServerProc {
        let port = free_port();
        let log = dir.join(format!("auth-server-{port}.log"));
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec![
            "auth-server".to_string(),
            "--password-file".into(),
            passwd.display().to_string(),
            "--acl-file".into(),
            acl.display().to_string(),
            "--listen".into(),
            listen,
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(mqsec_bin())
            .args(&args)
            .env("MQSEC_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start mqsec auth-server");
        let mut child = ChildGuard::with_log(child, &log);
        child.wait_listening("127.0.0.1", &[port], LISTEN_TIMEOUT);
        AuthServerProc { port, child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Send SIGHUP and wait until the log shows one more completed reload than before.
    pub fn reload(&self) {
        let before = self
            .log_text()
            .matches("reloaded the password and ACL files")
            .count();
        let ok = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        while self
            .log_text()
            .matches("reloaded the password and ACL files")
            .count()
            <= before
        {
            assert!(
                Instant::now() < deadline,
                "no reload logged: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn get(&self, path_and_query: &str) -> (u16, String) {
        http(self.port, "GET", path_and_query, None, "")
    }

    pub fn form(&self, path: &str, body: &str) -> (u16, String) {
        http(
            self.port,
            "POST",
            path,
            Some("application/x-www-form-urlencoded"),
            body,
        )
    }

    pub fn json(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let (status, text) = http(
            self.port,
            "POST",
            path,
            Some("application/json"),
            &body.to_string(),
        );
        let v = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path}: answer is not JSON ({e}): {text:?}"));
        (status, v)
    }
}

/// One HTTP/1.1 request; returns the status and the body.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to auth-server");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(ct) = content_type {
        req.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete HTTP answer");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, body.to_string())
}

//! A RabbitMQ cluster of real nodes (Debian's rabbitmq-server, started as the current user, one
//! machine, loopback only), for the auth-server tests and its performance harness.
//!
//! Each node gets its own name, ports, data and log directories and config; the nodes share a
//! HOME (the Erlang cookie) and a private epmd port, all in one temporary directory. The system
//! service the package may have started is neither used nor touched. On drop, every node's
//! process group is killed and the private epmd stopped, whether the test passed or not.
//!
//! Test and bench tooling: a failure panics with the nodes' logs (that is the report wanted).

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A loopback port nobody listens on right now, below Linux's ephemeral range (32768-60999):
/// a node boots for seconds after its ports are chosen, and meanwhile its own outgoing
/// connections (epmd, the CLI, the HTTP backend) take ephemeral ports, which could be the very
/// one picked for a listener. Never the same port twice in one process.
fn free_port() -> u16 {
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;
    use std::sync::Mutex;
    static TAKEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let seed = RandomState::new();
    for attempt in 0u32..10_000 {
        let port = 20_000 + (seed.hash_one(attempt) % 12_000) as u16;
        let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
        if taken.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            taken.push(port);
            return port;
        }
    }
    panic!("no free loopback port between 20000 and 32000");
}

/// Where Debian puts the server scripts (the /usr/sbin wrappers switch to the `rabbitmq` user).
const BIN: &str = "/usr/lib/rabbitmq/bin";
/// A node boots in about 20 s on an idle 2-core machine; CI machines are slower and loaded.
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

/// Why RabbitMQ cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    let server = Path::new(BIN).join("rabbitmq-server");
    if !server.exists() {
        return Some(format!(
            "{} not found: install Debian's rabbitmq-server (scripts/test does)",
            server.display()
        ));
    }
    None
}

/// How the nodes authenticate.
pub enum Auth {
    /// `auth_backends.1 = http`, pointed at an auth-server on this port.
    Http { port: u16 },
    /// RabbitMQ's own user database (`rabbitmqctl add_user`), for comparisons.
    Internal,
    /// Both on one node: `internal` first, then `http` (a user RabbitMQ does not know is asked
    /// of the auth-server), so the two backends can be compared on the same node.
    InternalThenHttp { port: u16 },
}

pub struct Node {
    pub name: String,
    pub mqtt_port: u16,
    pub amqp_port: u16,
    dist_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

pub struct Cluster {
    pub dir: PathBuf,
    home: PathBuf,
    epmd_port: u16,
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// Start `count` nodes at once and wait until each serves MQTT. Nodes are standalone until
    /// [`Cluster::join`].
    pub fn start(dir: &Path, count: usize, auth: Auth) -> Cluster {
        let home = dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let cookie = home.join(".erlang.cookie");
        std::fs::write(&cookie, format!("MQSECTEST{}", std::process::id())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o400)).unwrap();
        let mut cluster = Cluster {
            dir: dir.to_path_buf(),
            home,
            epmd_port: free_port(),
            nodes: Vec::new(),
        };
        for i in 0..count {
            let nd = dir.join(format!("node{}", i + 1));
            std::fs::create_dir_all(nd.join("mnesia")).unwrap();
            std::fs::create_dir_all(nd.join("log")).unwrap();
            let node = Node {
                name: format!("mqsec{}n{}@localhost", std::process::id(), i + 1),
                mqtt_port: free_port(),
                amqp_port: free_port(),
                dist_port: free_port(),
                dir: nd,
                child: None,
            };
            let mut conf = format!(
                "listeners.tcp.default = 127.0.0.1:{amqp}\n\
                 mqtt.listeners.tcp.default = 127.0.0.1:{mqtt}\n\
                 mqtt.allow_anonymous = false\n\
                 loopback_users = none\n\
                 log.file.level = info\n\
                 log.console = false\n",
                amqp = node.amqp_port,
                mqtt = node.mqtt_port
            );
            let http = |port: u16| {
                format!(
                    "auth_http.http_method = post\n\
                     auth_http.user_path = http://127.0.0.1:{port}/rabbitmq/user\n\
                     auth_http.vhost_path = http://127.0.0.1:{port}/rabbitmq/vhost\n\
                     auth_http.resource_path = http://127.0.0.1:{port}/rabbitmq/resource\n\
                     auth_http.topic_path = http://127.0.0.1:{port}/rabbitmq/topic\n"
                )
            };
            let plugins = match auth {
                Auth::Http { port } => {
                    conf.push_str("auth_backends.1 = http\n");
                    conf.push_str(&http(port));
                    "[rabbitmq_mqtt,rabbitmq_auth_backend_http]."
                }
                Auth::InternalThenHttp { port } => {
                    conf.push_str("auth_backends.1 = internal\nauth_backends.2 = http\n");
                    conf.push_str(&http(port));
                    "[rabbitmq_mqtt,rabbitmq_auth_backend_http]."
                }
                Auth::Internal => "[rabbitmq_mqtt].",
            };
            std::fs::write(node.dir.join("rabbitmq.conf"), conf).unwrap();
            std::fs::write(node.dir.join("enabled_plugins"), plugins).unwrap();
            cluster.nodes.push(node);
        }
        for i in 0..count {
            let log = std::fs::File::create(cluster.nodes[i].dir.join("stdout.log")).unwrap();
            let mut cmd = Command::new(Path::new(BIN).join("rabbitmq-server"));
            cluster.env(&mut cmd, i);
            // Its own process group: the drop kills erl and every helper it started.
            cmd.process_group(0)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            cluster.nodes[i].child = Some(cmd.spawn().expect("start rabbitmq-server"));
        }
        for i in 0..count {
            cluster.wait_mqtt(i);
        }
        cluster
    }

    fn env(&self, cmd: &mut Command, i: usize) {
        let n = &self.nodes[i];
        cmd.env("HOME", &self.home)
            .env("RABBITMQ_NODENAME", &n.name)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", n.amqp_port.to_string())
            .env("RABBITMQ_DIST_PORT", n.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", n.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", n.dir.join("log"))
            .env("RABBITMQ_CONFIG_FILE", n.dir.join("rabbitmq.conf"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                n.dir.join("enabled_plugins"),
            )
            .env("RABBITMQ_PID_FILE", n.dir.join("pid"))
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("ERL_EPMD_PORT", self.epmd_port.to_string());
    }

    /// Wait until node `i` accepts MQTT connections (the MQTT listener opens once the broker and
    /// its plugins have booted); panics with the node logs if it dies or takes too long.
    pub fn wait_mqtt(&mut self, i: usize) {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        loop {
            if TcpStream::connect(("127.0.0.1", self.nodes[i].mqtt_port)).is_ok() {
                return;
            }
            if let Some(c) = self.nodes[i].child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!(
                        "RabbitMQ node {} exited ({status}):\n{}",
                        i + 1,
                        self.logs()
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "RabbitMQ node {} did not serve MQTT within {BOOT_TIMEOUT:?}:\n{}",
                i + 1,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `rabbitmqctl -n NODE ARGS` against node `i`.
    pub fn ctl(&self, i: usize, args: &[&str]) -> Output {
        let mut cmd = Command::new(Path::new(BIN).join("rabbitmqctl"));
        self.env(&mut cmd, i);
        cmd.arg("-n").arg(&self.nodes[i].name).args(args);
        cmd.stdin(Stdio::null()).output().expect("run rabbitmqctl")
    }

    /// `rabbitmqctl` with `input` on its stdin (a password, kept off the command line).
    pub fn ctl_input(&self, i: usize, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut cmd = Command::new(Path::new(BIN).join("rabbitmqctl"));
        self.env(&mut cmd, i);
        cmd.arg("-n").arg(&self.nodes[i].name).args(args);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run rabbitmqctl");
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input.as_bytes());
        }
        child.wait_with_output().expect("wait for rabbitmqctl")
    }

    fn ctl_ok(&self, i: usize, args: &[&str]) {
        let out = self.ctl(i, args);
        assert!(
            out.status.success(),
            "rabbitmqctl {args:?} on node {} failed: {}{}\n{}",
            i + 1,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
    }

    /// Make node `i` a member of node `to`'s cluster, and wait until it serves MQTT again.
    pub fn join(&mut self, i: usize, to: usize) {
        let target = self.nodes[to].name.clone();
        self.ctl_ok(i, &["stop_app"]);
        self.ctl_ok(i, &["join_cluster", &target]);
        self.ctl_ok(i, &["start_app"]);
        self.wait_mqtt(i);
    }

    /// The names of the running members, as node `i` sees them.
    pub fn running_nodes(&self, i: usize) -> Vec<String> {
        let out = self.ctl(i, &["cluster_status", "--formatter", "json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "cluster_status is not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        v["running_nodes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every node's log files and console output, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            let mut files = vec![n.dir.join("stdout.log")];
            if let Ok(rd) = std::fs::read_dir(n.dir.join("log")) {
                files.extend(rd.filter_map(|e| e.ok()).map(|e| e.path()));
            }
            for f in files {
                let text = std::fs::read_to_string(&f).unwrap_or_default();
                // The tail is what explains a failure.
                let tail: Vec<&str> = text.lines().rev().take(60).collect();
                out.push_str(&format!("==> {} <==\n", f.display()));
                for l in tail.into_iter().rev() {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                // The whole group: erl, beam and their helper processes.
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", c.id())])
                    .status();
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        // The private epmd daemonized itself out of the groups; stop it by its port. It refuses
        // while it still lists the killed nodes (it notices their deaths a moment later).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = Command::new("epmd")
                .arg("-kill")
                .env("ERL_EPMD_PORT", self.epmd_port.to_string())
                .env("ERL_EPMD_ADDRESS", "127.0.0.1")
                .stdin(Stdio::null())
                .output();
            let done = match out {
                Ok(o) => {
                    let text = String::from_utf8_lossy(&o.stdout);
                    // "Killed", or nothing listens there (it was never started, or has gone).
                    text.contains("Killed") || !text.contains("living nodes")
                }
                Err(_) => true,
            };
            if done || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

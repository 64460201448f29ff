//! Broker processes for the comparison harness: start `mqsec serve` or `mosquitto` from the same
//! Mosquitto-style config on a free loopback port, read its resident memory, kill it on drop.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::LoadError;

/// How long a broker may take to open its port.
const START_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerKind {
    /// `BINARY serve -c CONF`.
    Mqsec { binary: PathBuf },
    /// `mosquitto -c CONF` from PATH.
    Mosquitto,
}

impl BrokerKind {
    pub fn name(&self) -> &'static str {
        match self {
            BrokerKind::Mqsec { .. } => "mqsec",
            BrokerKind::Mosquitto => "mosquitto",
        }
    }
}

/// A running broker; killed (SIGKILL) and reaped when dropped.
pub struct BrokerProcess {
    kind: BrokerKind,
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl BrokerProcess {
    /// Starts `kind` with `listener PORT 127.0.0.1`, `allow_anonymous true` and the `extra` lines.
    pub fn start(kind: &BrokerKind, extra_conf: &str) -> Result<BrokerProcess, LoadError> {
        BrokerProcess::start_with_listener(kind, &format!("allow_anonymous true\n{extra_conf}"))
    }

    /// Starts `kind` with `listener PORT 127.0.0.1` followed by `lines` (its security settings).
    pub fn start_with_listener(kind: &BrokerKind, lines: &str) -> Result<BrokerProcess, LoadError> {
        let mut last = None;
        // The probed free port can be taken by someone else before the broker binds it.
        for _ in 0..3 {
            match BrokerProcess::try_start(kind, lines) {
                Ok(b) => return Ok(b),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(LoadError::Timeout("broker start")))
    }

    fn try_start(kind: &BrokerKind, lines: &str) -> Result<BrokerProcess, LoadError> {
        let dir = tempfile::tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let conf = dir.path().join("broker.conf");
        fs::write(&conf, format!("listener {port} 127.0.0.1\n{lines}"))?;
        let log = dir.path().join("broker.log");
        let logf = fs::File::create(&log)?;
        let mut cmd = match kind {
            BrokerKind::Mqsec { binary } => {
                let mut c = Command::new(binary);
                c.arg("serve");
                c
            }
            BrokerKind::Mosquitto => Command::new("mosquitto"),
        };
        cmd.arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(logf.try_clone()?)
            .stderr(logf);
        let child = cmd.spawn().map_err(|e| LoadError::Spawn {
            what: kind.name().to_string(),
            source: e,
        })?;
        let mut b = BrokerProcess {
            kind: kind.clone(),
            child,
            port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = b.child.try_wait()? {
                return Err(LoadError::BrokerDied {
                    broker: b.kind.name(),
                    detail: format!("exited with {status}: {}", b.log_tail()),
                });
            }
            if TcpStream::connect_timeout(&b.addr(), Duration::from_millis(100)).is_ok() {
                return Ok(b);
            }
            if Instant::now() > deadline {
                return Err(LoadError::Timeout("broker port to open"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kind(&self) -> &BrokerKind {
        &self.kind
    }

    pub fn addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the broker has exited (a crash under load must not pass as a slow result).
    pub fn check_alive(&mut self) -> Result<(), LoadError> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => Err(LoadError::BrokerDied {
                broker: self.kind.name(),
                detail: format!("exited with {status}: {}", self.log_tail()),
            }),
        }
    }

    pub fn rss_kib(&self) -> Result<u64, LoadError> {
        rss_kib(self.pid())
    }

    /// The last lines of the broker's output, for error messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident set size of `pid` from `/proc/PID/status` (`VmRSS: N kB`).
pub fn rss_kib(pid: u32) -> Result<u64, LoadError> {
    let path = format!("/proc/{pid}/status");
    let text = fs::read_to_string(&path)?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| LoadError::Protocol(format!("{path}: no VmRSS line")))
}

/// CPU time (user + system, seconds) used so far by `pid` (`/proc/PID/stat` fields 14 and 15).
#[allow(unsafe_code)]
pub fn cpu_seconds(pid: u32) -> Result<f64, LoadError> {
    let path = format!("/proc/{pid}/stat");
    let text = fs::read_to_string(&path)?;
    // The command name (field 2) may contain spaces; fields are counted after its ')'.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| LoadError::Protocol(format!("{path}: no ')'")))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    // After ')', field 3 (state) is index 0, so utime (14) is index 11 and stime (15) index 12.
    let (Some(u), Some(s)) = (ticks(11), ticks(12)) else {
        return Err(LoadError::Protocol(format!("{path}: no utime/stime")));
    };
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Ok((u + s) as f64 / if hz > 0 { hz as f64 } else { 100.0 })
}

/// Raises this process's soft RLIMIT_NOFILE towards `want` (never above the hard limit) and
/// returns the new soft limit. Children started afterwards (the brokers) inherit it.
#[allow(unsafe_code)]
pub fn raise_nofile(want: u64) -> Result<u64, LoadError> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass by pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    let target = want.min(lim.rlim_max);
    if lim.rlim_cur < target {
        lim.rlim_cur = target;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
    }
    Ok(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_memory_and_cpu() {
        let me = std::process::id();
        assert!(rss_kib(me).unwrap() > 0);
        // Burn a little CPU so the counter cannot stay at zero by luck of the tick.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(30) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0 && cpu_seconds(me).unwrap() > 0.0);
        assert!(rss_kib(u32::MAX).is_err(), "no such process");
    }

    #[test]
    fn nofile_never_goes_down_or_above_the_hard_limit() {
        let before = raise_nofile(0).unwrap();
        let raised = raise_nofile(before + 16).unwrap();
        assert!(raised >= before);
        assert_eq!(raise_nofile(0).unwrap(), raised);
    }
}

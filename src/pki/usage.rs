//! What to paste after issuing a certificate: for a server certificate the TLS listener a broker
//! needs, for a client certificate the `mosquitto_pub`/`mosquitto_sub` command lines and the
//! paho-mqtt `tls_set(...)` call. Every path is absolute, so the lines work from any directory,
//! and every value is quoted for where it goes (POSIX shell, Python), so a name with spaces or
//! quotes cannot break them.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;

use serde::Serialize;

use super::issue::validate_dns;
use super::PkiError;

/// The IANA port of MQTT over TLS.
pub const MQTTS_PORT: u16 = 8883;

/// A TLS listener for a server certificate, in mosquitto.conf syntax.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Listener {
    pub port: u16,
    pub certfile: String,
    pub keyfile: String,
    /// The trust anchor that client certificates must chain to.
    pub cafile: String,
    /// The CA's CRL; `None` until `gen-crl` has written it (Mosquitto refuses to start on a
    /// `crlfile` that does not exist, so the line is left commented out until then).
    pub crlfile: Option<String>,
    pub require_certificate: bool,
    pub use_identity_as_username: bool,
    pub allow_anonymous: bool,
    /// The listener block for `mqsec serve -c FILE` (which reads mosquitto.conf syntax).
    pub mqsec_serve: String,
    /// The listener block for Mosquitto 2.0. The same lines today: both brokers read these
    /// options with the same meaning; the field is separate so that a difference has a place.
    pub mosquitto: String,
    /// What else to know before pasting (file ownership for Mosquitto, the CRL).
    pub notes: Vec<String>,
}

/// Where a client connects: `HOST`, `HOST:PORT`, `[IPV6]:PORT` or a bare IPv6 address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddr {
    pub host: String,
    pub port: u16,
}

impl Default for BrokerAddr {
    fn default() -> Self {
        BrokerAddr {
            host: "localhost".to_string(),
            port: MQTTS_PORT,
        }
    }
}

impl fmt::Display for BrokerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for BrokerAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<BrokerAddr, String> {
        let bad_port = || format!("{s:?}: the port must be a number from 1 to 65535");
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("{s:?}: missing ']' after the IPv6 address"))?;
            let port = match after {
                "" => MQTTS_PORT,
                p => p
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(bad_port)?,
            };
            if !h.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6()) {
                return Err(format!("{s:?}: not an IPv6 address in brackets"));
            }
            (h.to_string(), port)
        } else if s.parse::<IpAddr>().is_ok() {
            // A bare IPv6 address has colons of its own: no port can follow it.
            (s.to_string(), MQTTS_PORT)
        } else {
            let (h, port) = match s.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().map_err(|_| bad_port())?),
                None => (s, MQTTS_PORT),
            };
            if h.parse::<IpAddr>().is_err() {
                if h.starts_with("*.") {
                    return Err(format!("{s:?}: a wildcard is not a host to connect to"));
                }
                validate_dns(h).map_err(|_| format!("{s:?}: not a host name or IP address"))?;
            }
            (h.to_ascii_lowercase(), port)
        };
        if port == 0 {
            return Err(bad_port());
        }
        Ok(BrokerAddr { host, port })
    }
}

/// Command lines that connect with a client certificate.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ClientCommands {
    pub host: String,
    pub port: u16,
    /// The trust anchor the client checks the broker's certificate against.
    pub cafile: String,
    pub certfile: String,
    pub keyfile: String,
    /// What a broker with `use_identity_as_username` takes as the username: the CN.
    pub username: String,
    /// The topic the commands use: the device's own subtree.
    pub topic: String,
    pub mosquitto_pub: String,
    pub mosquitto_sub: String,
    /// Python, for a `paho.mqtt.client.Client` named `client`.
    pub paho_tls_set: String,
    pub paho_connect: String,
}

/// The absolute, UTF-8 form of a path for a config file or a command line. A path that is not
/// UTF-8 or holds a control character (a newline would end a config line) cannot be printed
/// faithfully: the caller says so instead of printing something that does not work.
fn printable(path: &Path) -> Result<String, PkiError> {
    let abs = std::path::absolute(path).map_err(|e| PkiError::io(path, e))?;
    match abs.to_str() {
        Some(s) if !s.chars().any(char::is_control) => Ok(s.to_string()),
        _ => Err(PkiError::file(
            path,
            "the path is not UTF-8 or holds a control character: no ready-made lines printed",
        )),
    }
}

/// The listener for the server certificate at `cert`/`key`, trusting client certificates that
/// chain to `anchor`, with the CRL of the issuing CA in `ca_dir` once `gen-crl` has made one.
pub fn listener(
    port: u16,
    cert: &Path,
    key: &Path,
    anchor: &Path,
    ca_dir: &Path,
) -> Result<Listener, PkiError> {
    let crl_path = ca_dir.join(super::ca::CRL);
    let crlfile = if crl_path.is_file() {
        Some(printable(&crl_path)?)
    } else {
        None
    };
    let certfile = printable(cert)?;
    let keyfile = printable(key)?;
    let cafile = printable(anchor)?;
    let mut lines = vec![
        format!("listener {port}"),
        format!("certfile {certfile}"),
        format!("keyfile {keyfile}"),
        format!("cafile {cafile}"),
        "require_certificate true".to_string(),
        "use_identity_as_username true".to_string(),
    ];
    let mut notes = vec![
        "cafile and crlfile assume the client certificates come from the same CA as this \
         certificate"
            .to_string(),
    ];
    match &crlfile {
        Some(c) => lines.push(format!("crlfile {c}")),
        None => {
            let crl = printable(&crl_path)?;
            lines.push(format!("#crlfile {crl}"));
            notes.push(format!(
                "crlfile is commented out: {crl} does not exist yet; write it with \
                 `mqsec gen-crl --ca {}`, then uncomment the line",
                shell_quote(&printable(ca_dir)?)
            ));
        }
    }
    lines.push("allow_anonymous false".to_string());
    let mut config = lines.join("\n");
    config.push('\n');
    notes.push(
        "Mosquitto started as root reads these files as user mosquitto: give it copies it can \
         read (`install -o mosquitto -m 0600` for the keyfile) and point the lines at them"
            .to_string(),
    );
    Ok(Listener {
        port,
        certfile,
        keyfile,
        cafile,
        crlfile,
        require_certificate: true,
        use_identity_as_username: true,
        allow_anonymous: false,
        mqsec_serve: config.clone(),
        mosquitto: config,
        notes,
    })
}

/// Commands that connect to `broker` as the client `cn` with its certificate and key.
pub fn client_commands(
    broker: &BrokerAddr,
    cn: &str,
    cert: &Path,
    key: &Path,
    anchor: &Path,
) -> Result<ClientCommands, PkiError> {
    let cafile = printable(anchor)?;
    let certfile = printable(cert)?;
    let keyfile = printable(key)?;
    // validate_cn keeps `+`, `#` and `/` out of a CN, so this is one topic level per device.
    let topic = format!("devices/{cn}/test");
    let filter = format!("devices/{cn}/#");
    let common = [
        "-h",
        &broker.host,
        "-p",
        &broker.port.to_string(),
        "--cafile",
        &cafile,
        "--cert",
        &certfile,
        "--key",
        &keyfile,
    ]
    .map(shell_quote)
    .join(" ");
    let mosquitto_pub = format!(
        "mosquitto_pub {common} -t {} -m {} -q 1",
        shell_quote(&topic),
        shell_quote(&format!("hello from {cn}"))
    );
    let mosquitto_sub = format!("mosquitto_sub {common} -t {} -v", shell_quote(&filter));
    let paho_tls_set = format!(
        "client.tls_set(ca_certs={}, certfile={}, keyfile={})",
        py_str(&cafile),
        py_str(&certfile),
        py_str(&keyfile)
    );
    let paho_connect = format!("client.connect({}, {})", py_str(&broker.host), broker.port);
    Ok(ClientCommands {
        host: broker.host.clone(),
        port: broker.port,
        cafile,
        certfile,
        keyfile,
        username: cn.to_string(),
        topic,
        mosquitto_pub,
        mosquitto_sub,
        paho_tls_set,
        paho_connect,
    })
}

/// One POSIX shell word: as is when it holds only characters no shell treats specially, else in
/// single quotes (a `'` inside becomes `'\''`).
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A Python string literal. JSON's string syntax is a subset of Python's (the escapes `\"`,
/// `\\`, `\n`, `\uXXXX`... mean the same), and serde_json writes nothing else.
fn py_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_addresses() {
        let ok = |s: &str| s.parse::<BrokerAddr>().unwrap();
        assert_eq!(ok("localhost"), BrokerAddr::default());
        assert_eq!(
            ok("Broker.Example.com:1884"),
            BrokerAddr {
                host: "broker.example.com".into(),
                port: 1884
            }
        );
        assert_eq!(ok("127.0.0.1:8884").host, "127.0.0.1");
        assert_eq!(ok("::1").host, "::1");
        assert_eq!(ok("::1").port, 8883);
        assert_eq!(ok("[::1]:9000").port, 9000);
        assert_eq!(ok("[::1]:9000").to_string(), "[::1]:9000");
        assert_eq!(ok("h:1").to_string(), "h:1");
        for bad in [
            "",
            "a b",
            "host:0",
            "host:65536",
            "host:x",
            "[::1",
            "[::1]x",
            "[127.0.0.1]:1",
            "*.example.com",
            "-bad",
        ] {
            assert!(bad.parse::<BrokerAddr>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn shell_words_survive_a_shell() {
        for s in [
            "plain/path-1.crt",
            "with space",
            "it's",
            "",
            "$HOME",
            "a\"b",
            "x;y",
        ] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quote(s)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), s);
        }
        assert_eq!(shell_quote("/tmp/ca/ca.crt"), "/tmp/ca/ca.crt");
    }

    #[test]
    fn python_strings_are_literals() {
        assert_eq!(py_str("/a/b"), "\"/a/b\"");
        assert_eq!(py_str("a\"b\\c"), r#""a\"b\\c""#);
    }

    #[test]
    fn listener_comments_out_a_missing_crl() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let l = listener(
            8883,
            &d.join("b.crt"),
            &d.join("b.key"),
            &d.join("ca.crt"),
            d,
        )
        .unwrap();
        assert_eq!(l.crlfile, None);
        assert!(l
            .mqsec_serve
            .contains(&format!("\n#crlfile {}/crl.pem\n", d.display())));
        assert!(l.notes.iter().any(|n| n.contains("gen-crl")));
        std::fs::write(d.join("crl.pem"), "x").unwrap();
        let l = listener(
            1,
            Path::new("b.crt"),
            &d.join("b.key"),
            &d.join("ca.crt"),
            d,
        )
        .unwrap();
        assert!(l.mqsec_serve.starts_with("listener 1\ncertfile /"));
        assert!(l
            .mqsec_serve
            .contains(&format!("\ncrlfile {}/crl.pem\n", d.display())));
        assert_eq!(l.mqsec_serve, l.mosquitto);
        let bad = listener(1, Path::new("new\nline"), &d.join("k"), &d.join("c"), d);
        assert!(bad.unwrap_err().to_string().contains("control character"));
    }
}

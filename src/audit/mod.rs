//! `mqsec audit`: probes (TLS, MQTT), checks (each a small unit with id/severity), report renderers.
//!
//! Layout: `target` parses HOST:PORT; `probe` talks to the broker (raw ClientHello, rustls, MQTT over
//! TCP/TLS/WebSocket), always under a timeout; `certs` judges the presented chain; `checks` is the
//! catalogue of check ids; `engine` runs one target; `report` renders table, JSON and SARIF.

pub mod certs;
pub mod checks;
pub mod engine;
pub mod probe;
pub mod report;
pub mod target;

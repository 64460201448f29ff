//! `mqsec audit`: probes (TLS, MQTT), checks (each a small unit with id/severity), report renderers.

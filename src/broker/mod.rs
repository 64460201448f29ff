//! The MQTT broker engine behind `mqsec serve`.

//! The MQTT broker engine behind `mqsec serve`.

pub mod codec;

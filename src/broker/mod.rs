//! The MQTT broker engine behind `mqsec serve`.

pub mod auth;
pub mod codec;
pub mod router;
pub mod session;
pub mod store;
pub mod sys;
pub mod topic;

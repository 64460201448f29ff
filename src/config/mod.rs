//! The configuration model (one struct tree) and its readers (Mosquitto-style conf; defaults).

pub mod defaults;
pub mod model;
pub mod mosquitto;

pub use model::Config;
pub use mosquitto::ConfigError;

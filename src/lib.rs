//! mqsec: a secure MQTT broker and the tools that manage its security artefacts.
//!
//! The binary (`src/main.rs`) only parses the command line; everything else lives here so that
//! integration tests, benchmarks and fuzz targets exercise the same code the binary runs.

pub mod audit;
pub mod broker;
pub mod cli;
pub mod commands;
pub mod config;
pub mod docs_gen;
pub mod exit;
pub mod fsutil;
pub mod loadgen;
pub mod payload;
pub mod pki;
pub mod prompt;
pub mod security;

//! mqsec: a secure MQTT broker and the tools that manage its security artefacts.
//!
//! The binary (`src/main.rs`) only parses the command line; everything else lives here so that
//! integration tests and benchmarks exercise the same code the binary runs. The MQTT codec is a
//! crate of its own (`crates/mqsec-codec`, here as `broker::codec`) so the fuzz target can build it
//! alone; the load generator is a tool crate (`crates/mqsec-loadgen`) the binary does not link.
#![forbid(unsafe_code)]

pub mod audit;
pub mod auth_server;
pub mod broker;
pub mod cli;
pub mod commands;
pub mod config;
pub mod docs_gen;
pub mod duration;
pub mod exit;
pub mod fsutil;
pub mod payload;
pub mod pki;
pub mod prompt;
pub mod security;

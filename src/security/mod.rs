//! The security model shared by `serve`, `passwd`, `acl-check` and `audit`.

pub mod acl;
pub mod cache;
pub mod events;
pub mod identity;
pub mod passwd;
pub mod password_gate;
pub mod policy;
pub mod throttle;
pub mod tokens;
pub mod verify_pool;

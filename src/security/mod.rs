//! The security model shared by `serve`, `passwd`, `acl-check` and `audit`.

pub mod acl;
pub mod identity;
pub mod passwd;

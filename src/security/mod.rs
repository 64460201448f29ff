//! The security model shared by `serve`, `passwd`, `acl-check` and `audit`.

pub mod identity;
// -- issue 2: passwd --
pub mod passwd;
// -- issue 2: acl-check --
pub mod acl;

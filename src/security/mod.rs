//! The security model shared by `serve`, `passwd`, `acl-check` and `audit`.

pub mod identity;
// -- issue 2: passwd --
// -- issue 2: acl-check --
pub mod acl;

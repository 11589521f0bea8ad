//! One file per command: each turns its arguments into an engine call and
//! prints the report, as text or JSON.

pub(crate) mod check;
pub(crate) mod config;
pub(crate) mod create;
pub(crate) mod forget;
pub(crate) mod init;
pub(crate) mod inspect;
pub(crate) mod key;
pub(crate) mod prune;
pub(crate) mod repair;
pub(crate) mod restore;
pub(crate) mod snapshots;

#[allow(unused_imports)]
pub(crate) use check::*;
#[allow(unused_imports)]
pub(crate) use config::*;
#[allow(unused_imports)]
pub(crate) use create::*;
#[allow(unused_imports)]
pub(crate) use forget::*;
#[allow(unused_imports)]
pub(crate) use init::*;
#[allow(unused_imports)]
pub(crate) use inspect::*;
#[allow(unused_imports)]
pub(crate) use key::*;
#[allow(unused_imports)]
pub(crate) use prune::*;
#[allow(unused_imports)]
pub(crate) use repair::*;
#[allow(unused_imports)]
pub(crate) use restore::*;
#[allow(unused_imports)]
pub(crate) use snapshots::*;

//! S3 Object Lock retention: how long each object snap writes stays
//! undeletable, and by whom. Chosen at `init` and kept in the config
//! (format-spec.md section 4), so every device that writes to the
//! repository locks what it writes for the same time.

use serde::{Deserialize, Serialize};

/// The retention every object gets when it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Days from the write (or the last extension) until the object may
    /// be deleted or overwritten.
    pub days: u32,
    pub mode: LockMode,
}

/// S3's two retention modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockMode {
    /// A user with `s3:BypassGovernanceRetention` can still delete early.
    Governance,
    /// No one, not even the account's root user, can delete early.
    Compliance,
}

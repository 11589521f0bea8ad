//! One error type for the whole engine, so the CLI can map every failure to
//! a message and to the exit codes that users' scripts already know from
//! restic.

use std::path::PathBuf;

/// Convenient result alias used throughout the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No repository at the location: exit code 10. The caller says how to
    /// make one: the command differs between a profile, a flag and the UI.
    #[error("no repository at {0}")]
    RepositoryNotFound(String),

    #[error("a repository already exists at {0}")]
    RepositoryExists(String),

    /// Passphrase unlocked no key: exit code 12.
    #[error("wrong password: no key in the repository could be unlocked with it")]
    WrongPassword,

    /// No key that was tried opened, and some were not tried: exit code 12.
    /// Storage can plant key files, so the headline says that first.
    #[error(
        "no key file that was tried opens with this password, and some were not tried: {0}. \
         Storage may have planted key files to crowd out yours; if the password is right, try \
         your own key alone with --key ID (one of those listed)"
    )]
    WrongPasswordSkipped(String),

    /// No source gave a password and the caller may not ask for one (the
    /// page, a scheduled backup): the page then asks for it itself.
    /// A write-only key was asked to read what only full keys open.
    #[error(
        "this repository was unlocked with a write-only key, which can add backups but cannot {0}: \
         run it on a device with a full key (the password made by `snap init`, or one added \
         with `snap key add` without --write-only)"
    )]
    WriteOnlyKey(String),
    /// A config opened with the key but fails its checks (format-spec.md
    /// section 4): rewritten by a write-only key's holder or the storage.
    #[error(
        "the repository's config was rewritten: {0}. Nothing was read or written; restore the \
         config from a copy, or ask whoever manages the storage"
    )]
    ConfigForged(String),
    #[error("no password given")]
    PasswordRequired,

    /// A plain config where the repository is known, or believed, to be
    /// encrypted: storage removed the encryption.
    #[error("{0}")]
    EncryptionRemoved(String),

    #[error(
        "the repository at {0} is not encrypted: whoever can read or change the storage can read \
         and change your backups, and restore will not apply owners, set-id bits or device \
         files from it. Pass --insecure-no-encryption to use it anyway"
    )]
    Unencrypted(String),

    /// Bytes read from storage failed a check. Storage is untrusted, so this
    /// is an expected condition that must be reported, never a panic.
    #[error("corrupt {what}: {detail}")]
    Corrupt { what: String, detail: String },

    #[error("{what} {id} is missing from the repository")]
    Missing { what: &'static str, id: String },

    /// Packs the index names are not in storage, even asked for by name:
    /// a prune stops before deleting anything.
    #[error("{0}")]
    PacksGone(String),

    /// `latest` would be an older snapshot than one this device saw, which
    /// storage hid without a forget record: exit code 13.
    #[error("{0}")]
    RolledBack(String),

    #[error("no snapshot matches {0:?}")]
    SnapshotNotFound(String),

    /// Another device holds a lock that excludes this command: exit code 11.
    #[error("{0}")]
    Locked(String),

    #[error("{0:?} matches more than one snapshot; give more digits")]
    AmbiguousSnapshot(String),

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    #[error("storage backend: {0}")]
    Backend(String),

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The store refused to delete an object (S3's 403 AccessDenied: a
    /// key without DeleteObject, or an object under Object Lock). Callers
    /// that can go on without the delete recognise it by this type.
    #[error("{location}: the storage refused to delete {name}: {answer}")]
    DeleteDenied {
        location: String,
        name: String,
        answer: String,
    },

    /// A write to a repository opened read-only (`--as-of`).
    #[error("{0}")]
    ReadOnly(String),

    /// The repository asks for Object Lock retention and the bucket cannot
    /// give it (no Object Lock, or not an S3 bucket): nothing was written.
    #[error("{0}")]
    ObjectLockUnavailable(String),

    /// The provider refused an Object Lock or versions request; the
    /// message names its answer.
    #[error("{0}")]
    ProviderRefused(String),

    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn corrupt(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Error::Corrupt {
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The process exit code restic would use for the same condition.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::RepositoryNotFound(_) => 10,
            Error::WrongPassword | Error::WrongPasswordSkipped(_) => 12,
            Error::Locked(_) => 11,
            Error::RolledBack(_) => 13,
            _ => 1,
        }
    }
}

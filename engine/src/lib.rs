//! The snap backup engine.
//!
//! Data flows one way: source files → [`chunker`] → [`blob`] encoder →
//! packer → [`backend`], and back on restore through one fetch path.
//! [`Repository`] is an opened repository: storage, keys, config,
//! snapshots and locks. [`Indexed`], which only [`Repository::indexed`]
//! gives, adds the [`index`] and alone reads blobs and trees and packs new
//! data. [`commands`] holds one plain function per CLI command, each with a
//! typed result, and [`report`] the serializable reports that `--json`
//! prints and the UI reads. The on-storage format is specified in
//! `format-spec.md` at the repository root.
//!
//! The public modules are what the CLI, the tests, the benches and the
//! fuzz targets use; the rest (cache, fetch, known, object, packer,
//! pattern, scan, sys, walk) are the engine's own. No unsafe code: what
//! needs the C library (mallopt) lives in the CLI.

// Unsafe code is forbidden, but for the Windows calls that std lacks,
// which `sys/windows.rs` alone may make.
#![cfg_attr(not(windows), forbid(unsafe_code))]
#![cfg_attr(windows, deny(unsafe_code))]

mod archiver;
pub mod backend;
pub mod blob;
mod cache;
pub mod chunker;
pub mod codec;
pub mod commands;
pub mod crypto;
mod damage;
mod error;
mod fetch;
pub mod forgotten;
pub mod id;
pub mod index;
pub mod indexed;
pub mod keys;
mod known;
pub mod lock;
mod object;
pub mod pack;
mod packer;
mod pattern;
pub mod progress;
pub mod pruner;
pub mod repo;
pub mod report;
pub mod retention;
mod scan;
pub mod snapshot;
mod sources;
mod sys;
pub mod trash;
pub mod tree;
mod walk;

pub use error::{Error, Result};
pub use id::Id;
pub use indexed::Indexed;
pub use repo::{InitOptions, OpenOptions, Repository};

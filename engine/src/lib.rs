//! The snap backup engine.
//!
//! Data flows one way: source files → [`chunker`] → [`blob`] encoder →
//! [`packer`] → [`backend`], and back on restore. [`repo::Repository`] ties
//! storage, keys and the [`index`] together; [`commands`] holds one plain
//! function per CLI command, each with a typed result, and [`report`] the
//! serializable reports that `--json` prints and the UI reads. The
//! on-storage format is specified in `format-spec.md` at the repository
//! root. No unsafe code: what needs the C library (mallopt) lives in the
//! CLI.

#![forbid(unsafe_code)]

pub mod backend;
pub mod blob;
mod cache;
pub mod chunker;
pub mod codec;
pub mod commands;
pub mod crypto;
mod error;
mod fetch;
pub mod forgotten;
pub mod id;
pub mod index;
mod known;
pub mod lock;
mod object;
pub mod pack;
mod packer;
mod pattern;
pub mod progress;
pub mod repo;
pub mod report;
mod scan;
pub mod snapshot;
mod sys;
pub mod trash;
pub mod tree;
mod walk;

pub use error::{Error, Result};
pub use id::Id;
pub use repo::{InitOptions, OpenOptions, Repository};

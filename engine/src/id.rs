//! 32-byte identifiers: blob ids (keyed BLAKE3 of plaintext) and object ids
//! (plain BLAKE3 of stored bytes).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Id(pub [u8; 32]);

/// On storage (bincode, not human-readable) the 32 bytes, as a newtype,
/// exactly as a derived impl writes them (the test vectors hold that);
/// in reports (JSON) the 64 hex digits people and scripts use.
impl Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            s.serialize_newtype_struct("Id", &self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Id, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            return Id::from_hex(&s).map_err(serde::de::Error::custom);
        }
        #[derive(Deserialize)]
        #[serde(rename = "Id")]
        struct Raw([u8; 32]);
        Raw::deserialize(d).map(|r| Id(r.0))
    }
}

impl Id {
    /// Id of stored bytes: lets anyone verify an object against its name
    /// without holding a key.
    pub fn of_bytes(bytes: &[u8]) -> Id {
        Id(*blake3::hash(bytes).as_bytes())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Whether `prefix` (hex digits, either case) begins this id: how a
    /// snapshot, a key or a pack is named on the command line. An empty
    /// prefix names nothing.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        !prefix.is_empty() && self.to_hex().starts_with(&prefix.to_ascii_lowercase())
    }

    /// First 8 hex digits, as shown in listings.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    pub(crate) fn from_hex(s: &str) -> Result<Id> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)
            .map_err(|_| Error::InvalidArgument(format!("{s:?} is not a 64-digit hex id")))?;
        Ok(Id(out))
    }

    /// A fresh random id (a repository's, a lock's). Drawn here rather
    /// than through `crypto`, which depends on this module: ids stay a leaf.
    pub fn random() -> Id {
        let mut out = [0u8; 32];
        getrandom::fill(&mut out).expect("the operating system random number generator failed");
        Id(out)
    }
}

/// A full id in hex, as ids are shown and sent (the UI's forms).
impl std::str::FromStr for Id {
    type Err = Error;
    fn from_str(s: &str) -> Result<Id> {
        Id::from_hex(s)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_names_an_id_in_either_case_and_an_empty_one_names_none() {
        let id = Id::from_hex(&format!("a4b8312e{}", "0".repeat(56))).unwrap();
        assert!(id.has_prefix("a4b8"));
        assert!(id.has_prefix("A4B8312E"));
        assert!(id.has_prefix(&id.to_hex()));
        assert!(!id.has_prefix(""));
        assert!(!id.has_prefix("a4b9"));
    }
}

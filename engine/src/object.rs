//! The kinds of object a repository stores, in one place (format-spec.md
//! sections 2 and 12): each one's folder, its name for an id, the most
//! bytes a reader accepts, and whether its name is the hash of its bytes,
//! which every reader checks before trusting what it read. Names were once
//! built by hand in five modules and the name check written in four.

use bytes::Bytes;

use crate::backend::Backend;
use crate::codec;
use crate::error::{Error, Result};
use crate::id::Id;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Object {
    Key,
    Index,
    Snapshot,
    Lock,
    Trash,
    Forgotten,
    Pack,
}

impl Object {
    /// Its folder below the repository root.
    pub const fn folder(self) -> &'static str {
        match self {
            Object::Key => "keys",
            Object::Index => "index",
            Object::Snapshot => "snapshots",
            Object::Lock => "locks",
            Object::Trash => "trash",
            Object::Forgotten => "forgotten",
            Object::Pack => "data",
        }
    }

    /// What people call one, in messages.
    pub const fn what(self) -> &'static str {
        match self {
            Object::Key => "key file",
            Object::Index => "index file",
            Object::Snapshot => "snapshot",
            Object::Lock => "lock",
            Object::Trash => "trash record",
            Object::Forgotten => "forget record",
            Object::Pack => "pack",
        }
    }

    /// The most bytes a reader accepts (section 12).
    pub const fn limit(self) -> usize {
        match self {
            Object::Key => codec::MAX_KEY_OBJECT,
            Object::Index | Object::Trash => codec::MAX_INDEX_OBJECT,
            Object::Snapshot | Object::Lock | Object::Forgotten => codec::MAX_SMALL_OBJECT,
            Object::Pack => codec::MAX_PACK,
        }
    }

    /// Every object but a lock is named by the hash of its bytes; a lock by
    /// a random id, as it is rewritten in place.
    pub const fn named_by_content(self) -> bool {
        !matches!(self, Object::Lock)
    }

    /// The object's name: `folder/hex`, and for packs `data/ab/hex`, so
    /// that no folder holds more than a 256th of them.
    pub fn name(self, id: &Id) -> String {
        let hex = id.to_hex();
        match self {
            Object::Pack => format!("data/{}/{hex}", &hex[..2]),
            _ => format!("{}/{hex}", self.folder()),
        }
    }

    /// The prefix that lists every object of the kind.
    pub fn prefix(self) -> String {
        format!("{}/", self.folder())
    }

    /// Checks stored bytes against their name; storage may have swapped
    /// them.
    pub fn verify(self, id: &Id, bytes: &[u8]) -> Result<()> {
        if self.named_by_content() && Id::of_bytes(bytes) != *id {
            return Err(Error::corrupt(
                format!("{} {}", self.what(), id.short()),
                "content does not match its name",
            ));
        }
        Ok(())
    }

    /// Ids and sizes of the objects of this kind, sorted; other names
    /// (temporary files of an interrupted upload) are ignored.
    pub fn list(self, backend: &dyn Backend) -> Result<Vec<(Id, u64)>> {
        let mut out: Vec<(Id, u64)> = backend
            .list(&self.prefix())?
            .into_iter()
            .filter_map(|o| {
                let name = o.name.rsplit('/').next()?;
                (name.len() == 64).then(|| Id::from_hex(name).ok().map(|id| (id, o.size)))?
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Reads one object within the kind's limit and checks it against its
    /// name.
    pub fn read(self, backend: &dyn Backend, id: &Id) -> Result<Bytes> {
        let bytes = backend.read(&self.name(id), self.limit() as u64)?;
        self.verify(id, &bytes)?;
        Ok(bytes)
    }

    /// Writes `bytes` under the hash of its bytes; returns that id.
    pub fn write(self, backend: &dyn Backend, bytes: Vec<u8>) -> Result<Id> {
        debug_assert!(self.named_by_content());
        let id = Id::of_bytes(&bytes);
        backend.write(&self.name(&id), Bytes::from(bytes))?;
        Ok(id)
    }

    pub fn delete(self, backend: &dyn Backend, id: &Id) -> Result<()> {
        backend.delete(&self.name(id))
    }

    /// Deletes many objects of this kind, in the backend's batches.
    pub fn delete_many(self, backend: &dyn Backend, ids: &[Id]) -> Result<()> {
        let names: Vec<String> = ids.iter().map(|id| self.name(id)).collect();
        backend.delete_many(&names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_the_spec_gives_them() {
        let id = Id([0xab; 32]);
        let hex = id.to_hex();
        assert_eq!(Object::Pack.name(&id), format!("data/ab/{hex}"));
        assert_eq!(Object::Snapshot.name(&id), format!("snapshots/{hex}"));
        assert_eq!(Object::Forgotten.prefix(), "forgotten/");
        assert!(Object::Index.verify(&Id::of_bytes(b"x"), b"x").is_ok());
        assert!(Object::Index.verify(&Id::of_bytes(b"x"), b"y").is_err());
        assert!(Object::Lock.verify(&Id::random(), b"y").is_ok());
    }
}

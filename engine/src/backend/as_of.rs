//! A repository as it stood at a moment (`--as-of`), read from a
//! versioned bucket: for each name, the newest version written at or
//! before that moment, by the store's clock, unless that version is a
//! delete marker (format-spec.md section 11). Read-only: every write and
//! delete is refused, so reading the past can never change the present.
//! Open it with no cache and no device state: both describe the present,
//! and snapshots seen since would read as hidden.
//!
//! A thief with a full key can delete or overwrite every object, but in a
//! versioned bucket that only adds versions; those before the theft are
//! what this reads.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::{Backend, ObjectInfo, ObjectVersion};
use crate::error::{Error, Result};

pub struct AsOf {
    inner: Arc<dyn Backend>,
    /// The moment, in Unix nanoseconds.
    at_ns: i64,
    location: String,
    /// Each name's version as of the moment, from the listings so far
    /// (`None`: it did not exist then).
    chosen: Mutex<HashMap<String, Option<(String, u64)>>>,
}

impl AsOf {
    pub fn new(inner: Arc<dyn Backend>, at_ns: i64) -> AsOf {
        let when = chrono::DateTime::from_timestamp_nanos(at_ns).to_rfc3339();
        AsOf {
            location: format!("{} as of {when}", inner.location()),
            inner,
            at_ns,
            chosen: Mutex::new(HashMap::new()),
        }
    }

    /// Per name, the version that stood at the moment, from a listing of
    /// versions: the newest not after it, the current one first among
    /// equals; a delete marker there means the name did not exist.
    fn choose(&self, listed: Vec<ObjectVersion>) -> HashMap<String, Option<(String, u64)>> {
        let mut best: HashMap<String, ObjectVersion> = HashMap::new();
        for v in listed.into_iter().filter(|v| v.modified_ns <= self.at_ns) {
            let newer = match best.get(&v.key) {
                None => true,
                Some(b) => (v.modified_ns, v.latest) > (b.modified_ns, b.latest),
            };
            if newer {
                best.insert(v.key.clone(), v);
            }
        }
        best.into_iter()
            .map(|(k, v)| (k, (!v.deleted).then_some((v.version, v.size))))
            .collect()
    }

    /// The version of `name` at the moment.
    fn version_of(&self, name: &str) -> Result<Option<(String, u64)>> {
        if let Some(v) = self.chosen.lock().unwrap().get(name) {
            return Ok(v.clone());
        }
        let listed = self
            .inner
            .list_versions(name)?
            .into_iter()
            .filter(|v| v.key == name)
            .collect();
        let v = self.choose(listed).remove(name).flatten();
        self.chosen
            .lock()
            .unwrap()
            .insert(name.to_string(), v.clone());
        Ok(v)
    }

    fn missing(name: &str) -> Error {
        Error::Missing {
            what: "object",
            id: name.to_string(),
        }
    }

    fn refuse(&self, what: &str) -> Error {
        Error::ReadOnly(format!(
            "{}: the repository as it was is read only; {what} was refused",
            self.location
        ))
    }
}

impl Backend for AsOf {
    fn location(&self) -> &str {
        &self.location
    }

    fn read(&self, name: &str, max: u64) -> Result<Bytes> {
        let (version, _) = self.version_of(name)?.ok_or_else(|| Self::missing(name))?;
        self.inner.read_version(name, &version, max)
    }

    fn read_range(&self, name: &str, range: Range<u64>) -> Result<Bytes> {
        let (version, _) = self.version_of(name)?.ok_or_else(|| Self::missing(name))?;
        self.inner.read_version_range(name, &version, range)
    }

    fn write(&self, name: &str, _: Bytes) -> Result<()> {
        Err(self.refuse(&format!("writing {name}")))
    }

    fn create(&self, name: &str, _: Bytes) -> Result<bool> {
        Err(self.refuse(&format!("writing {name}")))
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let chosen = self.choose(self.inner.list_versions(prefix)?);
        let mut out: Vec<ObjectInfo> = chosen
            .iter()
            .filter_map(|(name, v)| {
                let (_, size) = v.as_ref()?;
                Some(ObjectInfo {
                    name: name.clone(),
                    size: *size,
                    modified_ns: self.at_ns,
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        self.chosen.lock().unwrap().extend(chosen);
        Ok(out)
    }

    fn delete(&self, name: &str) -> Result<()> {
        Err(self.refuse(&format!("deleting {name}")))
    }

    fn head(&self, name: &str) -> Result<Option<u64>> {
        Ok(self.version_of(name)?.map(|(_, size)| size))
    }

    fn connections(&self) -> usize {
        self.inner.connections()
    }

    fn enable_retention(&self, _: crate::retention::Retention) -> Result<()> {
        // Reading writes nothing: there is nothing to retain.
        Ok(())
    }

    fn purge(&self, names: &[String]) -> Result<Vec<String>> {
        Err(self.refuse(&format!("deleting {} object(s)", names.len())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(key: &str, version: &str, at: i64, deleted: bool, latest: bool) -> ObjectVersion {
        ObjectVersion {
            key: key.into(),
            version: version.into(),
            modified_ns: at,
            size: 10,
            deleted,
            latest,
        }
    }

    /// The newest version not after the moment wins; a delete marker then
    /// hides the name, and versions after the moment do not count.
    #[test]
    fn the_version_that_stood_at_the_moment() {
        let dir = tempfile::tempdir().unwrap();
        let inner = Arc::new(super::super::StoreBackend::local(dir.path(), true).unwrap());
        let at = AsOf::new(inner, 100);
        let chosen = at.choose(vec![
            v("a", "a1", 10, false, false),
            v("a", "a2", 50, false, false),
            v("a", "a3", 150, false, true),
            v("b", "b1", 10, false, false),
            v("b", "b2", 90, true, true),
            v("c", "c1", 200, false, true),
            v("d", "d1", 60, true, false),
            v("d", "d2", 70, false, true),
        ]);
        assert_eq!(chosen["a"], Some(("a2".into(), 10)));
        assert_eq!(chosen["b"], None);
        assert!(!chosen.contains_key("c"));
        assert_eq!(chosen["d"], Some(("d2".into(), 10)));
        assert!(matches!(
            at.write("x", Bytes::new()),
            Err(Error::ReadOnly(_))
        ));
        assert!(matches!(at.delete("x"), Err(Error::ReadOnly(_))));
    }
}

//! Snapshots (format-spec.md section 9) and the retention policy that
//! decides which ones `prune` keeps.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Local, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::id::Id;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    pub dirs: u64,
    pub files: u64,
    pub bytes_total: u64,
    pub bytes_read: u64,
    pub bytes_added: u64,
    pub blobs_added: u64,
    pub duration_ns: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub time_ns: i64,
    pub host: String,
    pub username: String,
    pub uid: u32,
    pub gid: u32,
    pub paths: Vec<Vec<u8>>,
    pub tags: Vec<String>,
    pub tree: Id,
    pub parent: Option<Id>,
    pub program_version: String,
    pub summary: Summary,
}

/// The tag of an undo snapshot: what a folder held before a restore. It
/// lives here, beside the snapshot, because retention and `latest` treat
/// such snapshots apart, and the repository below the commands reads it.
pub(crate) const UNDO_TAG: &str = "pre-restore";

pub(crate) fn snapshot_path(id: &Id) -> String {
    crate::object::Object::Snapshot.name(id)
}

impl Snapshot {
    pub fn time(&self) -> DateTime<Utc> {
        Utc.timestamp_nanos(self.time_ns)
    }

    /// Paths as text for display; not-UTF-8 bytes are shown replaced.
    /// Paths as create writes them: absolute, clean (no empty, `.` or `..`
    /// component, no NUL). A snapshot of an unencrypted repository whose
    /// paths said `//etc` once made a restore's undo snapshot back up
    /// `/etc` (joined to the target, an absolute path replaces it).
    pub(crate) fn check_paths(&self) -> crate::error::Result<()> {
        for p in &self.paths {
            let clean = p.as_slice() == b"/"
                || (p.starts_with(b"/")
                    && p[1..]
                        .split(|&b| b == b'/')
                        .all(|c| !c.is_empty() && c != b"." && c != b".." && !c.contains(&0)));
            if !clean {
                return Err(crate::error::Error::corrupt(
                    "snapshot",
                    format!(
                        "path {:?} is not a clean absolute path",
                        String::from_utf8_lossy(p)
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn paths_lossy(&self) -> Vec<String> {
        self.paths
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect()
    }

    /// The group this snapshot belongs to for retention: snapshots that
    /// agree on what `by` names form one history.
    /// The retention group of this snapshot. Undo snapshots (a restore's
    /// copy of what it changed) are a group apart even when tags do not
    /// group: restored in place, one has the backups' host and folder, and
    /// "keep the last 1" once kept it and removed the only real backup.
    pub(crate) fn group_key(&self, by: &GroupBy) -> GroupKey {
        let undo = UNDO_TAG;
        let tags = if by.tags {
            Some(self.tags.clone())
        } else if self.tags.iter().any(|t| t == undo) {
            Some(vec![undo.to_string()])
        } else {
            None
        };
        GroupKey {
            host: by.host.then(|| self.host.clone()),
            paths: by.paths.then(|| self.paths.clone()),
            tags,
        }
    }
}

/// What retention groups snapshots by (restic's `--group-by`). The default,
/// host and paths, makes each device's backups of each folder a history of
/// its own; none at all makes the whole repository one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupBy {
    pub host: bool,
    pub paths: bool,
    pub tags: bool,
}

impl Default for GroupBy {
    fn default() -> Self {
        GroupBy {
            host: true,
            paths: true,
            tags: false,
        }
    }
}

impl std::str::FromStr for GroupBy {
    type Err = String;

    /// A comma-separated list of `host`, `paths` and `tags`; "" for none.
    fn from_str(s: &str) -> std::result::Result<GroupBy, String> {
        let mut by = GroupBy {
            host: false,
            paths: false,
            tags: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "host" => by.host = true,
                "paths" | "path" => by.paths = true,
                "tags" | "tag" => by.tags = true,
                other => return Err(format!("{other:?} is not host, paths or tags")),
            }
        }
        Ok(by)
    }
}

/// A retention group: the values of what it is grouped by.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    pub host: Option<String>,
    pub paths: Option<Vec<Vec<u8>>>,
    pub tags: Option<Vec<String>>,
}

/// Which snapshots a command looks at.
#[derive(Clone, Debug, Default)]
pub struct SnapshotFilter {
    pub hosts: Vec<String>,
    pub tags: Vec<String>,
    pub paths: Vec<Vec<u8>>,
    /// Paths each of which must be at or below one of the snapshot's
    /// (`restore latest:PATH` takes the newest snapshot that has PATH).
    pub containing: Vec<Vec<u8>>,
}

impl SnapshotFilter {
    pub fn matches(&self, s: &Snapshot) -> bool {
        let has = |want: &[u8]| {
            s.paths.iter().any(|p| {
                p.as_slice() == b"/"
                    || want == p.as_slice()
                    || (want.starts_with(p) && want.get(p.len()) == Some(&b'/'))
            })
        };
        (self.hosts.is_empty() || self.hosts.contains(&s.host))
            && self.tags.iter().all(|t| s.tags.contains(t))
            && self.paths.iter().all(|p| s.paths.contains(p))
            && self.containing.iter().all(|c| has(c))
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
            && self.tags.is_empty()
            && self.paths.is_empty()
            && self.containing.is_empty()
    }

    /// The filter as the options that give it: `--host a --tag t`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        parts.extend(self.hosts.iter().map(|h| format!("--host {h}")));
        parts.extend(self.tags.iter().map(|t| format!("--tag {t}")));
        parts.extend(
            self.paths
                .iter()
                .map(|p| format!("--path {}", String::from_utf8_lossy(p))),
        );
        parts.extend(
            self.containing
                .iter()
                .map(|p| format!("a snapshot containing {}", String::from_utf8_lossy(p))),
        );
        parts.join(" ")
    }
}

/// `prune --keep-*`. Every rule is applied to each group (see [`GroupBy`])
/// separately; a snapshot kept by any rule is kept.
#[derive(Clone, Debug, Default)]
pub struct KeepPolicy {
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
    pub within: Option<std::time::Duration>,
    pub tags: Vec<String>,
}

impl KeepPolicy {
    pub fn is_empty(&self) -> bool {
        self.last == 0
            && self.hourly == 0
            && self.daily == 0
            && self.weekly == 0
            && self.monthly == 0
            && self.yearly == 0
            && self.within.is_none()
            && self.tags.is_empty()
    }

    /// For one group, the reasons each snapshot is kept (empty: forget it).
    /// `group` may be in any order.
    pub fn apply(&self, group: &[(Id, Snapshot)]) -> Vec<(Id, Vec<String>)> {
        let mut order: Vec<usize> = (0..group.len()).collect();
        // Newest first; ties broken by id so the outcome is deterministic.
        order.sort_by(|&a, &b| {
            group[b]
                .1
                .time_ns
                .cmp(&group[a].1.time_ns)
                .then(group[b].0.cmp(&group[a].0))
        });
        let mut reasons: Vec<Vec<String>> = vec![Vec::new(); group.len()];
        if self.is_empty() {
            for r in reasons.iter_mut() {
                r.push("no policy".into());
            }
        }
        for (rank, &i) in order.iter().enumerate() {
            if (rank as u32) < self.last {
                reasons[i].push("last".into());
            }
        }
        type Bucket = fn(&DateTime<Local>) -> i64;
        let buckets: [(&str, u32, Bucket); 5] = [
            ("hourly", self.hourly, |t| {
                (t.year() as i64 * 400 + t.ordinal() as i64) * 24 + t.hour() as i64
            }),
            ("daily", self.daily, |t| {
                t.year() as i64 * 400 + t.ordinal() as i64
            }),
            ("weekly", self.weekly, |t| {
                let w = t.iso_week();
                w.year() as i64 * 100 + w.week() as i64
            }),
            ("monthly", self.monthly, |t| {
                t.year() as i64 * 100 + t.month() as i64
            }),
            ("yearly", self.yearly, |t| t.year() as i64),
        ];
        for (name, count, bucket) in buckets {
            if count == 0 {
                continue;
            }
            let mut seen = HashSet::new();
            for &i in &order {
                if seen.len() as u32 >= count {
                    break;
                }
                let t = group[i].1.time().with_timezone(&Local);
                if seen.insert(bucket(&t)) {
                    reasons[i].push(name.into());
                }
            }
        }
        if let (Some(within), Some(&newest)) = (self.within, order.first()) {
            let limit = group[newest]
                .1
                .time_ns
                .saturating_sub(within.as_nanos().min(i64::MAX as u128) as i64);
            for &i in &order {
                if group[i].1.time_ns >= limit {
                    reasons[i].push("within".into());
                }
            }
        }
        for (i, (_, s)) in group.iter().enumerate() {
            if self.tags.iter().any(|t| s.tags.contains(t)) {
                reasons[i].push("tag".into());
            }
        }
        group.iter().map(|(id, _)| *id).zip(reasons).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(hours_ago: i64, tag: &str) -> (Id, Snapshot) {
        let t = 1_700_000_000_000_000_000i64 - hours_ago * 3_600_000_000_000;
        (
            Id::random(),
            Snapshot {
                time_ns: t,
                host: "h".into(),
                username: "u".into(),
                uid: 0,
                gid: 0,
                paths: vec![b"/x".to_vec()],
                tags: if tag.is_empty() {
                    vec![]
                } else {
                    vec![tag.into()]
                },
                tree: Id::default(),
                parent: None,
                program_version: String::new(),
                summary: Summary::default(),
            },
        )
    }

    #[test]
    fn undo_snapshots_are_a_retention_group_apart() {
        let (_, backup) = snap(2, "");
        let (_, undo) = snap(1, UNDO_TAG);
        let by = GroupBy::default();
        assert_ne!(backup.group_key(&by), undo.group_key(&by));
        let (_, other_backup) = snap(0, "");
        assert_eq!(backup.group_key(&by), other_backup.group_key(&by));
        let with_tags = GroupBy { tags: true, ..by };
        assert_eq!(undo.group_key(&with_tags).tags, Some(undo.tags.clone()));
    }

    #[test]
    fn only_clean_absolute_paths_pass() {
        let (_, mut s) = snap(0, "");
        for good in [&b"/"[..], b"/x", b"/home/a b/c"] {
            s.paths = vec![good.to_vec()];
            assert!(s.check_paths().is_ok(), "{good:?}");
        }
        for bad in [
            &b""[..],
            b"x",
            b"//etc",
            b"/a//b",
            b"/a/../b",
            b"/a/.",
            b"/a/",
            b"/a\0",
        ] {
            s.paths = vec![bad.to_vec()];
            assert!(s.check_paths().is_err(), "{bad:?}");
        }
        // `latest:PATH` wants a snapshot with PATH at or below its paths.
        s.paths = vec![b"/home/a".to_vec()];
        let f = |p: &[u8]| SnapshotFilter {
            containing: vec![p.to_vec()],
            ..Default::default()
        };
        assert!(f(b"/home/a").matches(&s));
        assert!(f(b"/home/a/x").matches(&s));
        assert!(!f(b"/home/ab").matches(&s));
        assert!(!f(b"/home").matches(&s));
    }

    #[test]
    fn keep_last_and_tag() {
        let group: Vec<_> = (0..10)
            .map(|h| snap(h, if h == 7 { "keep" } else { "" }))
            .collect();
        let p = KeepPolicy {
            last: 3,
            tags: vec!["keep".into()],
            ..Default::default()
        };
        let kept: Vec<bool> = p
            .apply(&group)
            .into_iter()
            .map(|(_, r)| !r.is_empty())
            .collect();
        let expect: Vec<bool> = (0..10).map(|h| h < 3 || h == 7).collect();
        assert_eq!(kept, expect);
    }

    #[test]
    fn keep_daily_takes_newest_of_each_day() {
        let group: Vec<_> = (0..100).map(|h| snap(h, "")).collect();
        let p = KeepPolicy {
            daily: 2,
            ..Default::default()
        };
        let kept: Vec<usize> = p
            .apply(&group)
            .into_iter()
            .enumerate()
            .filter(|(_, (_, r))| !r.is_empty())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0], 0, "the newest snapshot is the newest of its day");
        let day = |i: usize| group[i].1.time().with_timezone(&Local).ordinal();
        assert_ne!(day(kept[0]), day(kept[1]));
        assert_eq!(
            day(kept[1] - 1),
            day(kept[0]),
            "second kept is the newest of the previous day"
        );
    }

    #[test]
    fn empty_policy_keeps_everything() {
        let group: Vec<_> = (0..4).map(|h| snap(h, "")).collect();
        assert!(
            KeepPolicy::default()
                .apply(&group)
                .iter()
                .all(|(_, r)| !r.is_empty())
        );
    }
}

//! Directory listings as blobs (format-spec.md section 8). Encoded
//! deterministically and sorted by raw name bytes, so an unchanged directory
//! has an unchanged id and is stored once across all snapshots.

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::{Error, Result};
use crate::id::Id;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum NodeKind {
    File,
    Dir,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
}

impl From<NodeKind> for u8 {
    fn from(k: NodeKind) -> u8 {
        match k {
            NodeKind::File => 0,
            NodeKind::Dir => 1,
            NodeKind::Symlink => 2,
            NodeKind::Fifo => 3,
            NodeKind::CharDevice => 4,
            NodeKind::BlockDevice => 5,
        }
    }
}

impl TryFrom<u8> for NodeKind {
    type Error = String;
    fn try_from(b: u8) -> std::result::Result<Self, String> {
        Ok(match b {
            0 => NodeKind::File,
            1 => NodeKind::Dir,
            2 => NodeKind::Symlink,
            3 => NodeKind::Fifo,
            4 => NodeKind::CharDevice,
            5 => NodeKind::BlockDevice,
            _ => return Err(format!("unknown node kind {b}")),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    #[serde(with = "serde_bytes_compat")]
    pub name: Vec<u8>,
    pub kind: NodeKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub user: String,
    pub group: String,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: u64,
    pub device: u64,
    pub links: u64,
    pub size: u64,
    /// The device number of a character or block device: the major number
    /// in the high 32 bits, the minor in the low 32 ([`device_number`]),
    /// whatever the platform's own `dev_t` looks like.
    pub rdev: u64,
    #[serde(with = "serde_bytes_compat")]
    pub link_target: Vec<u8>,
    pub content: Vec<Id>,
    pub subtree: Option<Id>,
    /// Extended attributes, sorted by name. Not part of a version-1 node:
    /// a tree with any is written as version 2 (see [`Tree::encode`]).
    #[serde(skip)]
    pub xattrs: Vec<Xattr>,
}

/// One extended attribute: `user.*`, or `security.*`, `system.*` (POSIX
/// ACLs) and `trusted.*`, which only root reads and writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xattr {
    #[serde(with = "serde_bytes_compat")]
    pub name: Vec<u8>,
    #[serde(with = "serde_bytes_compat")]
    pub value: Vec<u8>,
}

/// Linux's limits: XATTR_NAME_MAX and XATTR_SIZE_MAX.
/// In a symbolic link's mode: the link points at a directory. Windows
/// makes a link one kind or the other; Unix ignores the bit.
pub const LINK_TO_DIR: u32 = 0o040000;
pub(crate) const MAX_XATTR_NAME: usize = 255;
pub(crate) const MAX_XATTR_VALUE: usize = 64 * 1024;

/// The first field of a version-2 tree, where a version-1 tree has its node
/// count: no count can be this large, so a version-1 reader rejects the
/// tree instead of misreading it, and a tree without attributes keeps its
/// version-1 bytes and id.
const TREE_V2_MARK: u64 = u64::MAX;

/// Container versions after the mark: 2 has attributes, 3 also has device
/// numbers in the portable form of [`device_number`]. Versions 1 and 2
/// hold the `dev_t` of the system that wrote them.
const TREE_XATTRS: u64 = 2;
const TREE_DEVICES: u64 = 3;

/// A device number as trees of version 3 record it: the same on every
/// platform, so a device file restored elsewhere is the same device.
pub fn device_number(major: u32, minor: u32) -> u64 {
    (major as u64) << 32 | minor as u64
}

/// The major and minor numbers of a recorded device number.
pub fn device_numbers(rdev: u64) -> (u32, u32) {
    ((rdev >> 32) as u32, rdev as u32)
}

/// A device number of a tree of version 1 or 2, read as Linux glibc's
/// `dev_t` (what older snap wrote on Linux): the major number in bits 8-19
/// and 44-63, the minor in bits 0-7 and 20-43.
fn from_linux_dev_t(dev: u64) -> u64 {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & 0xffff_f000);
    let minor = (dev & 0xff) | ((dev >> 12) & 0xffff_ff00);
    device_number(major as u32, minor as u32)
}

/// A tree whose nodes carry extended attributes or device numbers.
#[derive(Serialize, Deserialize)]
struct TreeV2 {
    mark: u64,
    version: u64,
    nodes: Vec<NodeV2>,
}

/// A node's version-1 fields, then its attributes.
#[derive(Serialize, Deserialize)]
struct NodeV2 {
    node: Node,
    xattrs: Vec<Xattr>,
}

/// Byte strings as one length and the raw bytes. bincode writes a `Vec<u8>`
/// the same way element by element; this path is just faster.
mod serde_bytes_compat {
    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

impl Node {
    /// A node with every field empty, for the given name and kind.
    pub fn new(name: Vec<u8>, kind: NodeKind) -> Node {
        Node {
            name,
            kind,
            mode: 0,
            uid: 0,
            gid: 0,
            user: String::new(),
            group: String::new(),
            mtime_ns: 0,
            ctime_ns: 0,
            inode: 0,
            device: 0,
            links: 0,
            size: 0,
            rdev: 0,
            link_target: Vec::new(),
            content: Vec::new(),
            subtree: None,
            xattrs: Vec::new(),
        }
    }

    fn is_device(&self) -> bool {
        matches!(self.kind, NodeKind::CharDevice | NodeKind::BlockDevice)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    /// Sorts nodes by raw name bytes, the order the format requires.
    pub fn sort(&mut self) {
        self.nodes.sort_by(|a, b| a.name.cmp(&b.name));
    }

    /// The oldest version that holds the tree: 1 without attributes or
    /// devices (so such a tree keeps the id it always had), 3 with a
    /// device, 2 otherwise.
    pub fn encode(&self) -> Vec<u8> {
        let devices = self.nodes.iter().any(Node::is_device);
        if !devices && self.nodes.iter().all(|n| n.xattrs.is_empty()) {
            return codec::encode(self);
        }
        codec::encode(&TreeV2 {
            mark: TREE_V2_MARK,
            version: if devices { TREE_DEVICES } else { TREE_XATTRS },
            nodes: self
                .nodes
                .iter()
                .map(|n| NodeV2 {
                    node: n.clone(),
                    xattrs: n.xattrs.clone(),
                })
                .collect(),
        })
    }

    /// Decodes and validates a tree. Names are checked because they become
    /// paths on restore: a hostile tree must not write outside the target.
    /// Device numbers come out in the form of [`device_number`], from
    /// every version.
    pub fn decode(bytes: &[u8]) -> Result<Tree> {
        let (mut tree, version) = if bytes.get(..8) == Some(&TREE_V2_MARK.to_le_bytes()[..]) {
            let v2: TreeV2 = codec::decode::<TreeV2, { codec::MAX_BLOB }>("tree", bytes)?;
            if !(TREE_XATTRS..=TREE_DEVICES).contains(&v2.version) {
                return Err(Error::corrupt(
                    "tree",
                    format!("unknown tree version {}", v2.version),
                ));
            }
            let mut nodes = Vec::with_capacity(v2.nodes.len());
            for NodeV2 { mut node, xattrs } in v2.nodes {
                check_xattrs(&node.name, &xattrs)?;
                node.xattrs = xattrs;
                nodes.push(node);
            }
            (Tree { nodes }, v2.version)
        } else {
            (
                codec::decode::<Tree, { codec::MAX_BLOB }>("tree", bytes)?,
                1,
            )
        };
        if version < TREE_DEVICES {
            for n in tree.nodes.iter_mut().filter(|n| n.is_device()) {
                n.rdev = from_linux_dev_t(n.rdev);
            }
        }
        let mut prev: Option<&[u8]> = None;
        for n in &tree.nodes {
            let name = &n.name[..];
            if name.is_empty()
                || name == b"."
                || name == b".."
                || name.contains(&b'/')
                || name.contains(&0)
            {
                return Err(Error::corrupt(
                    "tree",
                    format!("invalid entry name {:?}", String::from_utf8_lossy(name)),
                ));
            }
            if prev.is_some_and(|p| p >= name) {
                return Err(Error::corrupt("tree", "entries not sorted or not unique"));
            }
            if (n.kind == NodeKind::Dir) != n.subtree.is_some() {
                return Err(Error::corrupt(
                    "tree",
                    "subtree present on a non-directory or missing on a directory",
                ));
            }
            prev = Some(name);
        }
        Ok(tree)
    }
}

/// Attribute names as the kernel takes them (a namespace, a dot, a name; no
/// NUL; at most 255 bytes), values within its size limit, sorted and
/// unique, so that a tree has one encoding.
fn check_xattrs(node: &[u8], xattrs: &[Xattr]) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::corrupt(
            "tree",
            format!(
                "{}: extended attribute {why}",
                String::from_utf8_lossy(node)
            ),
        ))
    };
    let mut prev: Option<&[u8]> = None;
    for x in xattrs {
        let known = [&b"user."[..], b"security.", b"system.", b"trusted."]
            .iter()
            .any(|ns| x.name.starts_with(ns) && x.name.len() > ns.len());
        if !known || x.name.len() > MAX_XATTR_NAME || x.name.contains(&0) {
            return bad("with an invalid name");
        }
        if x.value.len() > MAX_XATTR_VALUE {
            return bad("larger than 64 KiB");
        }
        if prev.is_some_and(|p| p >= x.name.as_slice()) {
            return bad("names not sorted or not unique");
        }
        prev = Some(&x.name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(name: &[u8], rdev: u64) -> Node {
        let mut n = Node::new(name.to_vec(), NodeKind::CharDevice);
        n.mode = 0o666;
        n.rdev = rdev;
        n
    }

    #[test]
    fn a_device_node_round_trips_in_a_version_3_tree() {
        // A major and minor that glibc's dev_t spreads over both halves.
        let rdev = device_number(0x1_2345, 0x6789_abcd);
        let tree = Tree {
            nodes: vec![device(b"dev", rdev)],
        };
        let bytes = tree.encode();
        assert_eq!(bytes[..8], TREE_V2_MARK.to_le_bytes());
        assert_eq!(bytes[8..16], TREE_DEVICES.to_le_bytes());
        let back = Tree::decode(&bytes).unwrap();
        assert_eq!(back, tree);
        assert_eq!(device_numbers(back.nodes[0].rdev), (0x1_2345, 0x6789_abcd));
    }

    #[test]
    fn a_legacy_tree_holds_a_linux_dev_t() {
        // glibc's makedev(0x1_2345, 0x6789_abcd) and makedev(1, 3), in
        // trees of versions 1 and 2, as snap wrote them on Linux.
        let legacy = [
            (0x0001_2678_9ab3_45cd_u64, (0x1_2345, 0x6789_abcd)),
            (0x103, (1, 3)),
        ];
        for (dev_t, numbers) in legacy {
            let v1 = codec::encode(&Tree {
                nodes: vec![device(b"dev", dev_t)],
            });
            let n = &Tree::decode(&v1).unwrap().nodes[0];
            assert_eq!(device_numbers(n.rdev), numbers, "version 1, {dev_t:#x}");
            let v2 = codec::encode(&TreeV2 {
                mark: TREE_V2_MARK,
                version: TREE_XATTRS,
                nodes: vec![NodeV2 {
                    node: device(b"dev", dev_t),
                    xattrs: vec![],
                }],
            });
            let n = &Tree::decode(&v2).unwrap().nodes[0];
            assert_eq!(device_numbers(n.rdev), numbers, "version 2, {dev_t:#x}");
        }
        #[cfg(target_os = "linux")]
        assert_eq!(nix::sys::stat::makedev(0x1_2345, 0x6789_abcd), legacy[0].0);
    }

    #[test]
    fn trees_without_devices_keep_version_1_and_2() {
        let mut fifo = Node::new(b"fifo".to_vec(), NodeKind::Fifo);
        fifo.rdev = 5;
        let plain = Tree { nodes: vec![fifo] };
        assert_eq!(plain.encode(), codec::encode(&plain));
        let mut attr = plain.clone();
        attr.nodes[0].xattrs = vec![Xattr {
            name: b"user.a".to_vec(),
            value: vec![],
        }];
        assert_eq!(attr.encode()[8..16], TREE_XATTRS.to_le_bytes());
        // Not a device: its number is left as it is.
        assert_eq!(Tree::decode(&plain.encode()).unwrap(), plain);
        let mut v4 = Tree {
            nodes: vec![device(b"d", 0)],
        }
        .encode();
        v4[8] = 4;
        assert!(Tree::decode(&v4).is_err());
    }
}

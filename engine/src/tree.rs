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

/// A tree whose nodes carry extended attributes.
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

    pub fn encode(&self) -> Vec<u8> {
        if self.nodes.iter().all(|n| n.xattrs.is_empty()) {
            return codec::encode(self);
        }
        codec::encode(&TreeV2 {
            mark: TREE_V2_MARK,
            version: 2,
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
    pub fn decode(bytes: &[u8]) -> Result<Tree> {
        let tree: Tree = if bytes.get(..8) == Some(&TREE_V2_MARK.to_le_bytes()[..]) {
            let v2: TreeV2 = codec::decode::<TreeV2, { codec::MAX_BLOB }>("tree", bytes)?;
            if v2.version != 2 {
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
            Tree { nodes }
        } else {
            codec::decode::<Tree, { codec::MAX_BLOB }>("tree", bytes)?
        };
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

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
}

/// Byte strings as one length and the raw bytes. bincode writes a `Vec<u8>`
/// the same way element by element; this path is just faster.
mod serde_bytes_compat {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
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
        codec::encode(self)
    }

    /// Decodes and validates a tree. Names are checked because they become
    /// paths on restore: a hostile tree must not write outside the target.
    pub fn decode(bytes: &[u8]) -> Result<Tree> {
        let tree: Tree = codec::decode::<Tree, { codec::MAX_BLOB }>("tree", bytes)?;
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

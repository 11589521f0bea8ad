//! The Unix side of [`crate::sys`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;

use super::FileId;
use super::Trust;
use crate::tree::{Node, NodeKind};

pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into())
}

pub fn username() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| uid.to_string())
}

/// Where this process runs, as far as telling a dead lock holder apart
/// goes: the boot, and the PID namespace within it ("" where unknown).
pub struct ProcessPlace {
    pub boot_id: String,
    pub pid_namespace: String,
}

impl ProcessPlace {
    pub fn current() -> ProcessPlace {
        ProcessPlace {
            boot_id: std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            pid_namespace: std::fs::read_link("/proc/self/ns/pid")
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }
}

/// Whether a process with this pid runs in our PID namespace; true when
/// that cannot be told.
pub fn process_exists(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return true;
    };
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

pub fn uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

pub fn gid() -> u32 {
    nix::unistd::getgid().as_raw()
}

/// User and group names by id, looked up once each: a home directory has
/// a million files and one owner.
#[derive(Default)]
pub struct NameCache {
    users: Mutex<HashMap<u32, String>>,
    groups: Mutex<HashMap<u32, String>>,
}

impl NameCache {
    pub fn user(&self, uid: u32) -> String {
        let mut m = self.users.lock().unwrap();
        m.entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(uid.into())
                    .ok()
                    .flatten()
                    .map(|u| u.name)
                    .unwrap_or_default()
            })
            .clone()
    }

    pub fn group(&self, gid: u32) -> String {
        let mut m = self.groups.lock().unwrap();
        m.entry(gid)
            .or_insert_with(|| {
                nix::unistd::Group::from_gid(gid.into())
                    .ok()
                    .flatten()
                    .map(|g| g.name)
                    .unwrap_or_default()
            })
            .clone()
    }
}

fn ns(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}

/// The node kind of `meta`, or `None` for sockets, which are not recorded.
pub fn node_kind(meta: &Metadata) -> Option<NodeKind> {
    use std::os::unix::fs::FileTypeExt;
    let ft = meta.file_type();
    Some(if ft.is_file() {
        NodeKind::File
    } else if ft.is_dir() {
        NodeKind::Dir
    } else if ft.is_symlink() {
        NodeKind::Symlink
    } else if ft.is_fifo() {
        NodeKind::Fifo
    } else if ft.is_char_device() {
        NodeKind::CharDevice
    } else if ft.is_block_device() {
        NodeKind::BlockDevice
    } else {
        return None;
    })
}

/// A node with `meta`'s metadata; content, subtree and link target are
/// filled in by the caller.
pub fn node_from_metadata(
    path: &Path,
    name: &OsStr,
    kind: NodeKind,
    meta: &Metadata,
    names: &NameCache,
) -> Node {
    let mut n = Node::new(name.as_bytes().to_vec(), kind);
    n.mode = meta.mode() & 0o7777;
    n.uid = meta.uid();
    n.gid = meta.gid();
    n.user = names.user(n.uid);
    n.group = names.group(n.gid);
    n.mtime_ns = ns(meta.mtime(), meta.mtime_nsec());
    n.ctime_ns = ns(meta.ctime(), meta.ctime_nsec());
    n.inode = meta.ino();
    n.device = meta.dev();
    n.links = meta.nlink();
    if kind == NodeKind::Symlink && std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        n.mode |= crate::tree::LINK_TO_DIR;
    }
    if kind == NodeKind::File {
        n.size = meta.size();
    }
    if matches!(kind, NodeKind::CharDevice | NodeKind::BlockDevice) {
        n.rdev = rdev(meta);
    }
    n
}

/// A path's extended attributes, sorted by name, without following a
/// symbolic link: `user.*` always, the others (`security.*` with file
/// capabilities and SELinux labels, `system.*` with POSIX ACLs,
/// `trusted.*`) only as root, who alone may restore them. Links get none:
/// Linux refuses `user.*` on them. A file system without attributes gives
/// none; an attribute that vanishes meanwhile is skipped.
/// macOS has no attribute namespaces: its attribute `N` is recorded as
/// `user.N` (any user may set it there), and `user.N` restored there as
/// `N`, so that attributes cross between macOS and Linux.
const NAMESPACES: bool = !cfg!(target_vendor = "apple");

/// The name snap records for an attribute this system lists.
fn recorded_xattr_name(name: &[u8]) -> Vec<u8> {
    if NAMESPACES {
        name.to_vec()
    } else {
        [&b"user."[..], name].concat()
    }
}

/// The name this system uses for a recorded attribute; `None` when it
/// cannot have it (on macOS, the other namespaces).
fn system_xattr_name(recorded: &[u8]) -> Option<&OsStr> {
    let name = if NAMESPACES {
        recorded
    } else {
        recorded.strip_prefix(b"user.")?
    };
    Some(OsStr::from_bytes(name))
}

pub fn read_xattrs(path: &Path, kind: NodeKind) -> std::io::Result<Vec<crate::tree::Xattr>> {
    use crate::tree::{MAX_XATTR_NAME, MAX_XATTR_VALUE, Xattr};
    if kind == NodeKind::Symlink || !xattr::SUPPORTED_PLATFORM {
        return Ok(Vec::new());
    }
    let names = match xattr::list(path) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let root = is_root();
    let mut out = Vec::new();
    for name in names {
        let n = recorded_xattr_name(name.as_bytes());
        if !(n.starts_with(b"user.") || root) || n.len() > MAX_XATTR_NAME {
            continue;
        }
        match xattr::get(path, &name)? {
            Some(value) if value.len() <= MAX_XATTR_VALUE => out.push(Xattr { name: n, value }),
            _ => {}
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Sets a node's extended attributes on `path` (links not followed), and
/// removes `user.*` ones the node lacks. `security.*`, `system.*` and
/// `trusted.*` need root, and an authenticated tree: a file capability is
/// a privilege, like a set-uid bit. Returns a message per attribute the
/// file system refused, for the restore's warnings.
pub fn restore_xattrs(path: &Path, node: &Node, trust: Trust) -> Vec<String> {
    let mut refused = Vec::new();
    if node.kind == NodeKind::Symlink || !xattr::SUPPORTED_PLATFORM {
        return refused;
    }
    let privileged = trust == Trust::Authenticated && is_root();
    for x in &node.xattrs {
        if !x.name.starts_with(b"user.") && !privileged {
            continue;
        }
        let Some(name) = system_xattr_name(&x.name) else {
            continue;
        };
        if xattr::get(path, name).ok().flatten().as_deref() == Some(&x.value[..]) {
            continue;
        }
        if let Err(e) = xattr::set(path, name, &x.value) {
            refused.push(format!(
                "{}: extended attribute {} not restored: {e}",
                path.display(),
                String::from_utf8_lossy(&x.name)
            ));
        }
    }
    if let Ok(present) = xattr::list(path) {
        for name in present {
            let n = recorded_xattr_name(name.as_bytes());
            if n.starts_with(b"user.") && !node.xattrs.iter().any(|x| x.name == n) {
                let _ = xattr::remove(path, &name);
            }
        }
    }
    refused
}

/// Whether `path` already has the node's attributes, as far as
/// [`restore_xattrs`] would set them.
pub fn xattrs_match(path: &Path, node: &Node, trust: Trust) -> bool {
    let privileged = trust == Trust::Authenticated && is_root();
    let wanted = |name: &[u8]| privileged || name.starts_with(b"user.");
    let Ok(present) = read_xattrs(path, node.kind) else {
        return false;
    };
    let a = present.iter().filter(|x| wanted(&x.name));
    let b = node.xattrs.iter().filter(|x| wanted(&x.name));
    a.eq(b)
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Applies ownership (as root only, as restic does), permissions and
/// modification time. Ownership first: chown clears set-id bits.
pub fn restore_metadata(path: &Path, node: &Node, trust: Trust) -> std::io::Result<()> {
    if trust.owners() {
        std::os::unix::fs::lchown(path, Some(node.uid), Some(node.gid))?;
    }
    if node.kind != NodeKind::Symlink {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(trust.mode(node)))?;
    }
    let mtime = filetime::FileTime::from_unix_time(
        node.mtime_ns.div_euclid(1_000_000_000),
        node.mtime_ns.rem_euclid(1_000_000_000) as u32,
    );
    filetime::set_symlink_file_times(path, mtime, mtime)
}

/// [`restore_metadata`] through an open file: no path lookups, which a
/// restore of many small files would otherwise spend most of its time on.
pub fn restore_file_metadata(
    file: &std::fs::File,
    node: &Node,
    trust: Trust,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if trust.owners() {
        nix::unistd::fchown(file, Some(node.uid.into()), Some(node.gid.into()))
            .map_err(std::io::Error::from)?;
    }
    file.set_permissions(std::fs::Permissions::from_mode(trust.mode(node)))?;
    let mtime = filetime::FileTime::from_unix_time(
        node.mtime_ns.div_euclid(1_000_000_000),
        node.mtime_ns.rem_euclid(1_000_000_000) as u32,
    );
    filetime::set_file_handle_times(file, Some(mtime), Some(mtime))
}

/// Creates a fifo or device node; device nodes only from an authenticated
/// tree.
pub fn make_special(path: &Path, node: &Node, trust: Trust) -> std::io::Result<()> {
    use nix::sys::stat::{Mode, SFlag, mknod};
    if trust == Trust::Unauthenticated && node.kind != NodeKind::Fifo {
        return Err(std::io::Error::other(
            "device file not created: the repository is not encrypted, so its trees are not authenticated",
        ));
    }
    let mode = Mode::from_bits_truncate(trust.mode(node) as nix::libc::mode_t);
    let kind = match node.kind {
        NodeKind::Fifo => SFlag::S_IFIFO,
        NodeKind::CharDevice => SFlag::S_IFCHR,
        NodeKind::BlockDevice => SFlag::S_IFBLK,
        _ => return Err(std::io::Error::other("not a special file")),
    };
    let dev = match node.kind {
        NodeKind::Fifo => 0,
        _ => platform_dev(node.rdev)?,
    };
    mknod(path, kind, mode, dev).map_err(std::io::Error::from)
}

/// A file name as the bytes snap records.
pub fn name_bytes(name: &OsStr) -> &[u8] {
    name.as_bytes()
}

/// [`name_bytes`], owned.
pub fn into_name_bytes(name: std::ffi::OsString) -> Vec<u8> {
    use std::os::unix::ffi::OsStringExt;
    name.into_vec()
}

/// Recorded bytes as a file name or path of this system: always borrowed
/// (a Unix name is any bytes but `/` and NUL, so none is escaped; an
/// owned name is one escaped for Windows).
pub fn os_name(bytes: &[u8]) -> Cow<'_, OsStr> {
    Cow::Borrowed(OsStr::from_bytes(bytes))
}

/// A path as the bytes snap records (absolute paths start with `/`).
pub fn path_bytes(path: &Path) -> Cow<'_, [u8]> {
    Cow::Borrowed(path.as_os_str().as_bytes())
}

/// Recorded path bytes as a path of this system.
pub fn bytes_path(bytes: &[u8]) -> Cow<'_, Path> {
    Cow::Borrowed(Path::new(OsStr::from_bytes(bytes)))
}

/// Modification time in nanoseconds since the epoch.
pub fn mtime_ns(meta: &Metadata) -> i64 {
    ns(meta.mtime(), meta.mtime_nsec())
}

fn id_of(meta: &Metadata) -> FileId {
    FileId {
        device: meta.dev(),
        inode: meta.ino(),
        links: meta.nlink(),
    }
}

/// What tells an open file from another, and whether others share it.
pub fn file_id(file: &std::fs::File) -> std::io::Result<FileId> {
    Ok(id_of(&file.metadata()?))
}

/// How many names the file at `path`, whose `lstat` is `meta`, has.
pub fn links(meta: &Metadata, _path: &Path) -> u64 {
    meta.nlink()
}

/// Whether two paths name the same file (links not followed).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::symlink_metadata(a), std::fs::symlink_metadata(b)) {
        (Ok(x), Ok(y)) => {
            let (x, y) = (id_of(&x), id_of(&y));
            x.device == y.device && x.inode == y.inode
        }
        _ => false,
    }
}

/// Permission bits and owners, as a restore compares them.
pub fn mode_and_owners(meta: &Metadata) -> (u32, u32, u32) {
    (meta.mode() & 0o7777, meta.uid(), meta.gid())
}

/// The device number of a device file, as trees record it
/// ([`crate::tree::device_number`]).
pub fn rdev(meta: &Metadata) -> u64 {
    let (major, minor) = dev_t_numbers(meta.rdev());
    crate::tree::device_number(major, minor)
}

/// Major and minor numbers of a `dev_t`: Darwin packs them as 8 and 24 bits.
#[cfg(target_vendor = "apple")]
fn dev_t_numbers(dev: u64) -> (u32, u32) {
    (((dev >> 24) & 0xff) as u32, (dev & 0xff_ffff) as u32)
}

#[cfg(not(target_vendor = "apple"))]
fn dev_t_numbers(dev: u64) -> (u32, u32) {
    let dev = dev as nix::libc::dev_t;
    (
        nix::sys::stat::major(dev) as u32,
        nix::sys::stat::minor(dev) as u32,
    )
}

/// The `dev_t` of a recorded device number, for `mknod`.
#[cfg(target_vendor = "apple")]
fn platform_dev(rdev: u64) -> std::io::Result<nix::libc::dev_t> {
    let (major, minor) = crate::tree::device_numbers(rdev);
    if major > 0xff || minor > 0xff_ffff {
        return Err(std::io::Error::other(format!(
            "device {major}:{minor} has no device number on this system"
        )));
    }
    Ok((major << 24 | minor) as nix::libc::dev_t)
}

#[cfg(not(target_vendor = "apple"))]
fn platform_dev(rdev: u64) -> std::io::Result<nix::libc::dev_t> {
    let (major, minor) = crate::tree::device_numbers(rdev);
    Ok(nix::sys::stat::makedev(major.into(), minor.into()))
}

/// Sockets are not recorded: they are made by the program that listens.
pub fn is_socket(kind: &std::fs::FileType) -> bool {
    std::os::unix::fs::FileTypeExt::is_socket(kind)
}

/// Writes all of `data` at `offset` without moving a shared file position,
/// so that several threads write one file.
pub fn write_at(file: &std::fs::File, data: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, data, offset)
}

/// Opens for writing without following a link at the last component; a
/// new file is created readable by its owner only.
pub fn open_no_follow(create: bool) -> std::fs::OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).custom_flags(nix::libc::O_NOFOLLOW);
    if create {
        o.create_new(true).mode(0o600);
    }
    o
}

/// Whether a rename failed because a directory holds the name.
pub fn directory_in_the_way(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(nix::libc::EISDIR) | Some(nix::libc::ENOTEMPTY) | Some(nix::libc::EEXIST)
    )
}

/// Removes a file or a link (to a file or a directory) at `path`.
pub fn remove_link(path: &Path) -> std::io::Result<()> {
    std::fs::remove_file(path)
}

/// Creates a symbolic link at `path` to the recorded `target` (Unix links
/// have no kind: `_to_dir` is for Windows).
pub fn symlink(target: &[u8], path: &Path, _to_dir: bool) -> std::io::Result<()> {
    std::os::unix::fs::symlink(OsStr::from_bytes(target), path)
}

/// An exclusive advisory lock on a directory, held until dropped.
pub struct DirLock(#[allow(dead_code)] nix::fcntl::Flock<std::fs::File>);

/// Locks `dir` exclusively; `Ok(None)` when another process holds it.
pub fn lock_dir(dir: &Path) -> std::io::Result<Option<DirLock>> {
    let file = std::fs::File::open(dir)?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(l) => Ok(Some(DirLock(l))),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(std::io::Error::from(e)),
    }
}

//! The Windows side of [`crate::sys`]: the same names as `unix.rs`.
//!
//! What Windows lacks is absent, not faked: no owners (uid and gid are 0,
//! names empty), no fifos or device files (restoring one is an error
//! naming it), no extended attributes, and sparse regions are written as
//! zeros (the file is restored dense). The mode carries the read-only
//! attribute: a file without any write bit is read-only. Hidden and system
//! attributes are not recorded: format version 2 has no field for them.
//!
//! The calls that std does not offer on stable Rust (the file index and
//! change time for change detection, process liveness, the restore lock)
//! go through `windows-sys`. They are the only unsafe code in the engine,
//! each with what makes it sound.
#![allow(unsafe_code)]

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::fs::Metadata;
use std::os::windows::ffi::OsStrExt as _;
use std::os::windows::fs::{FileExt as _, FileTypeExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::os::windows::io::AsRawHandle as _;
use std::path::Path;

use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_ACCESS_DENIED, ERROR_ALREADY_EXISTS, ERROR_DIR_NOT_EMPTY, GetLastError,
    HANDLE, STILL_ACTIVE,
};
use windows_sys::Win32::Storage::FileSystem::{
    BY_HANDLE_FILE_INFORMATION, FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_READONLY, FILE_BASIC_INFO,
    FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT, FILE_READ_ATTRIBUTES, FileBasicInfo,
    GetFileInformationByHandle, GetFileInformationByHandleEx,
};
use windows_sys::Win32::System::SystemInformation::GetTickCount64;
use windows_sys::Win32::System::Threading::{
    CreateMutexW, GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
};

use super::windows_names;
use super::{FileId, Trust};
use crate::tree::{LINK_TO_DIR, Node, NodeKind};

/// Seconds between 1601-01-01 (Windows file times) and 1970-01-01.
const EPOCH_DIFF_SECS: i64 = 11_644_473_600;

pub fn hostname() -> String {
    std::env::var("COMPUTERNAME").unwrap_or_else(|_| "unknown".into())
}

pub fn username() -> String {
    std::env::var("USERNAME").unwrap_or_else(|_| "unknown".into())
}

/// Where this process runs, as far as telling a dead lock holder apart
/// goes. The boot is told by its start time, to the minute: two processes
/// that round it differently see different boots, and a lock then waits
/// for its expiry, the safe side. Windows has one process table per boot;
/// a container has its own host name, which the lock records too.
pub struct ProcessPlace {
    pub boot_id: String,
    pub pid_namespace: String,
}

impl ProcessPlace {
    pub fn current() -> ProcessPlace {
        // SAFETY: GetTickCount64 takes nothing and cannot fail.
        let up_ms = unsafe { GetTickCount64() };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let booted = now.saturating_sub(up_ms / 1000) / 60;
        ProcessPlace {
            boot_id: format!("windows-boot-{booted}"),
            pid_namespace: "windows".into(),
        }
    }
}

/// Whether a process with this pid runs; true when that cannot be told
/// (a process of another user may refuse to be opened).
pub fn process_exists(pid: u32) -> bool {
    // SAFETY: OpenProcess takes plain values and returns a handle or null;
    // a handle it returns is ours to query and close, once.
    unsafe {
        let h: HANDLE = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
        if h.is_null() {
            return GetLastError() == ERROR_ACCESS_DENIED;
        }
        let mut code = 0u32;
        let ok = GetExitCodeProcess(h, &mut code) != 0;
        CloseHandle(h);
        !ok || code == STILL_ACTIVE as u32
    }
}

pub fn uid() -> u32 {
    0
}

pub fn gid() -> u32 {
    0
}

pub fn is_root() -> bool {
    false
}

/// Owner names: Windows files have owners by SID, which snap does not
/// record, so there is nothing to look up.
#[derive(Default)]
pub struct NameCache;

/// A Windows file time (100 ns since 1601) as nanoseconds since 1970.
fn file_time_ns(t: i64) -> i64 {
    t.saturating_sub(EPOCH_DIFF_SECS * 10_000_000)
        .saturating_mul(100)
}

/// The node kind of `meta`; Windows has no fifos, sockets or devices.
pub fn node_kind(meta: &Metadata) -> Option<NodeKind> {
    let ft = meta.file_type();
    Some(if ft.is_symlink() {
        NodeKind::Symlink
    } else if ft.is_dir() {
        NodeKind::Dir
    } else if ft.is_file() {
        NodeKind::File
    } else {
        return None;
    })
}

/// Opens `path` itself (a link, not its target; a directory too) to ask
/// about it.
fn open_to_query(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .access_mode(FILE_READ_ATTRIBUTES)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)
}

/// Volume, file index and link count, and the change time, of an open
/// file.
fn query(file: &std::fs::File) -> std::io::Result<(FileId, i64)> {
    let h = file.as_raw_handle() as HANDLE;
    // SAFETY: `h` is an open handle that `file` keeps alive for the calls;
    // both structures are plain data, written whole by a call that
    // succeeds and read only then.
    unsafe {
        let mut info: BY_HANDLE_FILE_INFORMATION = std::mem::zeroed();
        if GetFileInformationByHandle(h, &mut info) == 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut basic: FILE_BASIC_INFO = std::mem::zeroed();
        if GetFileInformationByHandleEx(
            h,
            FileBasicInfo,
            (&mut basic as *mut FILE_BASIC_INFO).cast(),
            std::mem::size_of::<FILE_BASIC_INFO>() as u32,
        ) == 0
        {
            return Err(std::io::Error::last_os_error());
        }
        let id = FileId {
            device: info.dwVolumeSerialNumber as u64,
            inode: (info.nFileIndexHigh as u64) << 32 | info.nFileIndexLow as u64,
            links: info.nNumberOfLinks as u64,
        };
        Ok((id, file_time_ns(basic.ChangeTime)))
    }
}

/// The mode snap records for Windows attributes: the read-only attribute
/// clears the write bits.
fn mode_of(meta: &Metadata, kind: NodeKind) -> u32 {
    let base = match kind {
        NodeKind::Dir => 0o755,
        NodeKind::Symlink => 0o777,
        _ => 0o644,
    };
    if meta.file_attributes() & FILE_ATTRIBUTE_READONLY != 0 {
        base & !0o222
    } else {
        base
    }
}

/// A node with the metadata of `path`, whose `lstat` is `meta`. The file
/// index and change time, which tell an unchanged file, need the file
/// opened; a file that cannot be opened gets zeros and is read again by
/// the next backup.
pub fn node_from_metadata(
    path: &Path,
    name: &OsStr,
    kind: NodeKind,
    meta: &Metadata,
    _names: &NameCache,
) -> Node {
    let mut n = Node::new(name_bytes(name).to_vec(), kind);
    n.mode = mode_of(meta, kind);
    if kind == NodeKind::Symlink && meta.file_type().is_symlink_dir() {
        n.mode |= LINK_TO_DIR;
    }
    n.mtime_ns = mtime_ns(meta);
    if let Ok((id, ctime)) = open_to_query(path).and_then(|f| query(&f)) {
        n.inode = id.inode;
        n.device = id.device;
        n.links = id.links;
        n.ctime_ns = ctime;
    }
    if kind == NodeKind::File {
        n.size = meta.file_size();
    }
    n
}

pub fn read_xattrs(_path: &Path, _kind: NodeKind) -> std::io::Result<Vec<crate::tree::Xattr>> {
    Ok(Vec::new())
}

/// Extended attributes are not restored on Windows.
pub fn restore_xattrs(_path: &Path, _node: &Node, _trust: Trust) -> Vec<String> {
    Vec::new()
}

pub fn xattrs_match(_path: &Path, _node: &Node, _trust: Trust) -> bool {
    true
}

fn file_time(ns: i64) -> filetime::FileTime {
    filetime::FileTime::from_unix_time(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
}

/// The modification time (kept to 100 ns) and the read-only attribute.
pub fn restore_metadata(path: &Path, node: &Node, trust: Trust) -> std::io::Result<()> {
    let mtime = file_time(node.mtime_ns);
    filetime::set_symlink_file_times(path, mtime, mtime)?;
    if node.kind != NodeKind::Symlink {
        let mut p = std::fs::symlink_metadata(path)?.permissions();
        p.set_readonly(trust.mode(node) & 0o222 == 0);
        std::fs::set_permissions(path, p)?;
    }
    Ok(())
}

/// [`restore_metadata`] through an open file. The time first: a read-only
/// file still takes it through this handle, opened for writing.
pub fn restore_file_metadata(
    file: &std::fs::File,
    node: &Node,
    trust: Trust,
) -> std::io::Result<()> {
    let mtime = file_time(node.mtime_ns);
    filetime::set_file_handle_times(file, Some(mtime), Some(mtime))?;
    let mut p = file.metadata()?.permissions();
    p.set_readonly(trust.mode(node) & 0o222 == 0);
    file.set_permissions(p)
}

/// Fifos and device files do not exist on Windows.
pub fn make_special(_path: &Path, node: &Node, _trust: Trust) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        format!(
            "{} not made: Windows has no fifos or device files",
            match node.kind {
                NodeKind::Fifo => "fifo",
                _ => "device file",
            }
        ),
    ))
}

/// A file name as the bytes snap records: WTF-8, which is UTF-8 for every
/// name without an unpaired surrogate.
pub fn name_bytes(name: &OsStr) -> &[u8] {
    name.as_encoded_bytes()
}

pub fn into_name_bytes(name: OsString) -> Vec<u8> {
    name.into_encoded_bytes()
}

/// Recorded bytes as a Windows name: borrowed as they are when they are
/// UTF-8 that Windows accepts, owned and escaped otherwise (see
/// [`windows_names`]); restore reports an owned one as escaped. Never
/// `from_encoded_bytes_unchecked`: bytes from storage are not trusted to
/// be WTF-8.
pub fn os_name(bytes: &[u8]) -> Cow<'_, OsStr> {
    match windows_names::escape_name(bytes) {
        Some(escaped) => Cow::Owned(OsString::from(escaped)),
        None => Cow::Borrowed(OsStr::new(
            std::str::from_utf8(bytes).expect("escape_name passes only UTF-8"),
        )),
    }
}

/// A path as the bytes snap records: `C:\Users\me` is `/C/Users/me`.
pub fn path_bytes(path: &Path) -> Cow<'_, [u8]> {
    Cow::Owned(windows_names::recorded_path(
        path.as_os_str().as_encoded_bytes(),
    ))
}

/// Recorded path bytes as a Windows path, each component a name Windows
/// accepts (see [`windows_names::windows_path`]).
pub fn bytes_path(bytes: &[u8]) -> Cow<'_, Path> {
    Cow::Owned(windows_names::windows_path(bytes).into())
}

/// Modification time in nanoseconds since the epoch, to Windows' 100 ns.
pub fn mtime_ns(meta: &Metadata) -> i64 {
    file_time_ns(meta.last_write_time() as i64)
}

pub fn file_id(file: &std::fs::File) -> std::io::Result<FileId> {
    Ok(query(file)?.0)
}

/// How many names the file at `path` has; 1 when that cannot be told.
pub fn links(_meta: &Metadata, path: &Path) -> u64 {
    open_to_query(path)
        .and_then(|f| query(&f))
        .map_or(1, |(id, _)| id.links)
}

/// Whether two paths name the same file (links not followed).
pub fn same_file(a: &Path, b: &Path) -> bool {
    let id = |p: &Path| open_to_query(p).and_then(|f| query(&f)).ok();
    match (id(a), id(b)) {
        (Some((x, _)), Some((y, _))) => x.device == y.device && x.inode == y.inode,
        _ => false,
    }
}

pub fn mode_and_owners(meta: &Metadata) -> (u32, u32, u32) {
    let kind = node_kind(meta).unwrap_or(NodeKind::File);
    (mode_of(meta, kind), 0, 0)
}

pub fn rdev(_meta: &Metadata) -> u64 {
    0
}

pub fn is_socket(_kind: &std::fs::FileType) -> bool {
    false
}

/// Writes all of `data` at `offset` (`seek_write` moves the file position,
/// which no one else uses: every write says where it goes).
pub fn write_at(file: &std::fs::File, mut data: &[u8], mut offset: u64) -> std::io::Result<()> {
    while !data.is_empty() {
        let n = file.seek_write(data, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        data = &data[n..];
        offset += n as u64;
    }
    Ok(())
}

/// Opens for writing without following a link at the last component.
pub fn open_no_follow(create: bool) -> std::fs::OpenOptions {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).custom_flags(FILE_FLAG_OPEN_REPARSE_POINT);
    if create {
        o.create_new(true);
    }
    o
}

/// Whether a rename failed because a directory holds the name.
pub fn directory_in_the_way(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error().map(|c| c as u32),
        Some(ERROR_ACCESS_DENIED) | Some(ERROR_DIR_NOT_EMPTY) | Some(ERROR_ALREADY_EXISTS)
    )
}

/// Creates a symbolic link at `path` to the recorded `target`, a directory
/// link when the node says it points at one. Without the privilege (not
/// an administrator, no developer mode) the error says so.
pub fn symlink(target: &[u8], path: &Path, to_dir: bool) -> std::io::Result<()> {
    let target = bytes_path(target);
    let made = if to_dir {
        std::os::windows::fs::symlink_dir(&target, path)
    } else {
        std::os::windows::fs::symlink_file(&target, path)
    };
    made.map_err(|e| {
        if e.raw_os_error() == Some(1314) {
            std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "symbolic link not made: it needs administrator rights or Windows developer mode",
            )
        } else {
            e
        }
    })
}

/// Removes a file or a link at `path`. A link to a directory, or a
/// junction, is a directory to Windows: `DeleteFileW` refuses it, and
/// `RemoveDirectoryW` removes the link, never what it points at.
pub fn remove_link(path: &Path) -> std::io::Result<()> {
    let m = std::fs::symlink_metadata(path)?;
    if m.file_attributes() & FILE_ATTRIBUTE_DIRECTORY != 0 {
        std::fs::remove_dir(path)
    } else {
        std::fs::remove_file(path)
    }
}

/// A named mutex held for a restore into one folder, released when
/// dropped (or when the process ends).
pub struct DirLock(HANDLE);

// SAFETY: a mutex handle may be used and closed from any thread.
unsafe impl Send for DirLock {}
unsafe impl Sync for DirLock {}

impl Drop for DirLock {
    fn drop(&mut self) {
        // SAFETY: the handle came from CreateMutexW and is closed once.
        unsafe {
            CloseHandle(self.0);
        }
    }
}

/// Locks `dir` for this process: a named mutex per folder, since Windows
/// cannot lock a directory itself. `Ok(None)` when another process holds
/// it.
pub fn lock_dir(dir: &Path) -> std::io::Result<Option<DirLock>> {
    let canonical = std::fs::canonicalize(dir)?;
    let key = blake3::hash(canonical.as_os_str().as_encoded_bytes()).to_hex();
    let name: Vec<u16> = OsStr::new(&format!("Local\\snap-restore-{}", &key[..32]))
        .encode_wide()
        .chain(Some(0))
        .collect();
    // SAFETY: `name` is a NUL-terminated UTF-16 string that outlives the
    // call; null attributes are allowed; the handle returned is ours.
    unsafe {
        let h = CreateMutexW(std::ptr::null(), 1, name.as_ptr());
        if h.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        if GetLastError() == ERROR_ALREADY_EXISTS {
            CloseHandle(h);
            return Ok(None);
        }
        Ok(Some(DirLock(h)))
    }
}

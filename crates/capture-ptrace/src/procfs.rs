//! Resolving what a tracee's descriptors and paths refer to, through
//! `/proc/PID/…` and `stat`. Identity facts only (device, inode, kind, name);
//! the graph ingest turns them into UUIDs.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use tomo_event::{Cred, ObjKind, ObjRef};

pub fn kind_of(mode: u32) -> ObjKind {
    match mode & libc::S_IFMT {
        libc::S_IFREG => ObjKind::File,
        libc::S_IFDIR => ObjKind::Dir,
        libc::S_IFLNK => ObjKind::Symlink,
        libc::S_IFIFO => ObjKind::Pipe,
        libc::S_IFSOCK => ObjKind::Socket,
        libc::S_IFCHR => ObjKind::CharDev,
        libc::S_IFBLK => ObjKind::BlockDev,
        _ => ObjKind::Unknown,
    }
}

/// What `/proc/PID/fd/N` points at. Pipes and sockets have no path; anonymous
/// inodes (eventfd, epoll, …) are reported as [`ObjKind::Anon`].
pub fn fd_obj(pid: i32, fd: i32) -> Option<ObjRef> {
    let link = format!("/proc/{pid}/fd/{fd}");
    let target = fs::read_link(&link).ok()?;
    let target = target.to_string_lossy();
    if let Some(rest) = target.strip_prefix("anon_inode:") {
        return Some(ObjRef {
            kind: ObjKind::Anon,
            dev: 0,
            ino: 0,
            path: Some(format!("anon_inode:{rest}")),
        });
    }
    let md = fs::metadata(&link).ok()?;
    let kind = kind_of(md.mode());
    let path = match kind {
        ObjKind::Pipe | ObjKind::Socket if !target.starts_with('/') => None,
        _ => Some(clean_link_target(&target)),
    };
    Some(ObjRef {
        kind,
        dev: md.dev(),
        ino: md.ino(),
        path,
    })
}

/// `readlink` of a /proc link, without the " (deleted)" the kernel appends.
fn clean_link_target(t: &str) -> String {
    t.strip_suffix(" (deleted)").unwrap_or(t).to_string()
}

/// The object named by an absolute path, now. `follow` chooses stat vs lstat.
pub fn path_obj(path: &str, follow: bool) -> Option<ObjRef> {
    let md = if follow {
        fs::metadata(path)
    } else {
        fs::symlink_metadata(path)
    }
    .ok()?;
    Some(ObjRef {
        kind: kind_of(md.mode()),
        dev: md.dev(),
        ino: md.ino(),
        path: Some(path.to_string()),
    })
}

/// A failed or vanished object: we still say which path was asked for.
pub fn named_unknown(path: &str) -> ObjRef {
    ObjRef {
        kind: ObjKind::Unknown,
        dev: 0,
        ino: 0,
        path: Some(path.to_string()),
    }
}

pub fn readlink(p: &str) -> Option<String> {
    fs::read_link(p)
        .ok()
        .map(|t| clean_link_target(&t.to_string_lossy()))
}

pub fn cwd(pid: i32) -> Option<String> {
    readlink(&format!("/proc/{pid}/cwd"))
}

/// The directory an open directory descriptor refers to.
pub fn dir_of_fd(pid: i32, dirfd: i32) -> Option<String> {
    readlink(&format!("/proc/{pid}/fd/{dirfd}"))
}

/// The absolute, lexically normalized form of `path`, relative paths taken
/// from `base` (the directory the tracee resolves them against). Symlinks
/// are not resolved: this is the *name* the process used.
pub fn join_path(base: Option<String>, path: &str) -> String {
    if path.starts_with('/') {
        return normalize(Path::new(path));
    }
    let base = base.unwrap_or_else(|| "/".into());
    if path.is_empty() {
        return normalize(Path::new(&base));
    }
    normalize(&Path::new(&base).join(path))
}

fn normalize(p: &Path) -> String {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(s) => out.push(s),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out.to_string_lossy().into_owned()
}

/// `(ppid, start_ticks)` from `/proc/PID/stat` (fields 4 and 22). The command
/// name (field 2) may contain spaces and parentheses, so parse after the last `)`.
pub fn stat_ids(pid: i32) -> Option<(u32, u64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): field N is f[N - 3].
    let ppid = f.get(1)?.parse().ok()?;
    let start = f.get(19)?.parse().ok()?;
    Some((ppid, start))
}

/// Real and effective ids from `/proc/PID/status`.
pub fn cred(pid: i32) -> Option<Cred> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let ids = |key: &str| -> Option<(u32, u32)> {
        let line = s.lines().find(|l| l.starts_with(key))?;
        let mut it = line[key.len()..]
            .split_whitespace()
            .map(|v| v.parse::<u32>().ok());
        Some((it.next()??, it.next()??))
    };
    let (uid, euid) = ids("Uid:")?;
    let (gid, egid) = ids("Gid:")?;
    Some(Cred {
        uid,
        gid,
        euid,
        egid,
    })
}

/// Current position and open flags of a descriptor, from `/proc/PID/fdinfo/N`.
pub fn fd_pos_flags(pid: i32, fd: i32) -> Option<(u64, u32)> {
    let s = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let mut pos = None;
    let mut flags = None;
    for l in s.lines() {
        if let Some(v) = l.strip_prefix("pos:") {
            pos = v.trim().parse().ok();
        } else if let Some(v) = l.strip_prefix("flags:") {
            flags = u32::from_str_radix(v.trim(), 8).ok();
        }
    }
    Some((pos?, flags.unwrap_or(0)))
}

/// Size of the file behind a descriptor (for O_APPEND writes).
pub fn fd_size(pid: i32, fd: i32) -> Option<u64> {
    fs::metadata(format!("/proc/{pid}/fd/{fd}"))
        .ok()
        .map(|m| m.size())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_lexically() {
        assert_eq!(normalize(Path::new("/a/./b/../c//d")), "/a/c/d");
        assert_eq!(normalize(Path::new("/../x")), "/x");
    }

    #[test]
    fn reads_own_ids() {
        let me = std::process::id() as i32;
        let (ppid, start) = stat_ids(me).unwrap();
        assert!(ppid > 0 && start > 0);
        assert!(cred(me).is_some());
        assert_eq!(kind_of(libc::S_IFREG | 0o644), ObjKind::File);
    }
}

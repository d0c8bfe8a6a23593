//! `tomo agent --netns PATH`: the network namespace one agent records, as
//! the inode number the program compares with each task's
//! `nsproxy->net_ns->ns.inum`.

use crate::AgentError;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// `statfs.f_type` of the namespace filesystem (`NSFS_MAGIC`).
const NSFS_MAGIC: i64 = 0x6e73_6673;
/// `ioctl(fd, NS_GET_NSTYPE)`: the `CLONE_NEW*` type of a namespace file.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

fn err(path: &Path, what: impl std::fmt::Display) -> AgentError {
    AgentError::NetNs(format!("{}: {what}", path.display()))
}

/// The inode number of the network namespace `path` names
/// (`/run/netns/NAME`, as `ip netns add` makes, or `/proc/PID/ns/net`).
/// An error says why when `path` is not a network namespace.
pub fn netns_inode(path: &Path) -> Result<u32, AgentError> {
    let md = std::fs::metadata(path).map_err(|e| err(path, e))?;
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|e| err(path, e))?;
    // SAFETY: statfs is plain data, zero is a valid value of every field.
    let mut sfs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a valid, writable statfs.
    if unsafe { libc::statfs(c.as_ptr(), &mut sfs) } != 0 {
        return Err(err(path, std::io::Error::last_os_error()));
    }
    if sfs.f_type as i64 != NSFS_MAGIC {
        return Err(err(
            path,
            "not a namespace (not a file of nsfs; a /run/netns/NAME whose namespace is gone is an empty file): give /run/netns/NAME or /proc/PID/ns/net",
        ));
    }
    let f = File::open(path).map_err(|e| err(path, e))?;
    // SAFETY: NS_GET_NSTYPE takes no argument; the descriptor is owned by `f`.
    let ty = unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_NSTYPE) };
    if ty < 0 {
        return Err(err(path, std::io::Error::last_os_error()));
    }
    if ty != libc::CLONE_NEWNET {
        return Err(err(
            path,
            "a namespace, but not a network namespace (e.g. /proc/PID/ns/mnt): give /run/netns/NAME or /proc/PID/ns/net",
        ));
    }
    u32::try_from(md.ino())
        .ok()
        .filter(|&i| i != 0)
        .ok_or_else(|| {
            err(
                path,
                format_args!("namespace inode {} out of range", md.ino()),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_netns_is_its_inode() {
        // Any process may stat its own namespace files.
        let p = Path::new("/proc/self/ns/net");
        let ino = std::fs::metadata(p).unwrap().ino();
        assert_eq!(netns_inode(p).unwrap() as u64, ino);
    }

    #[test]
    fn other_files_are_refused() {
        let e = netns_inode(Path::new("/proc/self/ns/mnt")).unwrap_err();
        assert!(e.to_string().contains("not a network namespace"), "{e}");
        let e = netns_inode(Path::new("/proc/self/status")).unwrap_err();
        assert!(e.to_string().contains("not a namespace"), "{e}");
        let e = netns_inode(Path::new("/nonexistent/tomo-netns")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/tomo-netns"), "{e}");
    }
}

//! System call by system call: what to copy out of the tracee at entry, and
//! which normalized [`Op`] a finished call becomes. Descriptor-based calls
//! are resolved through the tracer's model of open file descriptions, so a
//! `read` costs no `/proc` lookup once its descriptor is known.

use crate::procfs::{self, named_unknown, path_obj};
use crate::sys;
use crate::tracer::Tracer;
use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::rc::Rc;
use tomo_event::{Call, Dir, ObjKind, ObjRef, Op, SockAddr, SockInfo};

/// An open file description as the recorder models it: what it refers to
/// and where its offsets are. Shared (`Rc`) by every descriptor that refers
/// to it (dup, fork), exactly as in the kernel.
#[derive(Clone, Debug)]
pub struct Ofd {
    pub obj: ObjRef,
    /// File position (seekable objects).
    pub pos: u64,
    pub append: bool,
    /// Opened for writing (O_WRONLY/O_RDWR), when known; a write on a
    /// read-only descriptor fails and must be seen failing.
    pub writable: bool,
    /// Opened for reading (O_RDONLY/O_RDWR), when known.
    pub readable: bool,
    /// The tracer's own descriptor for this open file description
    /// (pidfd_getfd), taken at its first deferred write: it shares the file
    /// position, so one `lseek` reads the outcome of a write.
    pub mirror: Option<Rc<std::os::fd::OwnedFd>>,
    /// Stream offsets (pipes, sockets): bytes read and written so far.
    pub rd: u64,
    pub wr: u64,
    pub sock: Option<SockInfo>,
}

impl Ofd {
    fn new(obj: ObjRef) -> Ofd {
        Ofd {
            obj,
            pos: 0,
            append: false,
            writable: false,
            readable: false,
            mirror: None,
            rd: 0,
            wr: 0,
            sock: None,
        }
    }
}

/// What was copied at a call's entry, finished at its exit.
pub struct Pending {
    pub call: Call,
    pub args: [u64; 6],
    pub clone_flags: u64,
    path: Option<String>,
    path2: Option<String>,
    raw: Option<String>,
    obj: Option<ObjRef>,
    obj2: Option<ObjRef>,
    existed: bool,
    known_inode: Option<(u64, u64)>,
    open_flags: u32,
    open_mode: u32,
    argv: Vec<String>,
    env: Option<Vec<String>>,
    cwd: Option<String>,
    off_in: Option<u64>,
    off_out: Option<u64>,
    addr: Option<SockAddr>,
    closing: Option<ObjRef>,
}

const O_CREAT: u32 = 0o100;
const O_EXCL: u32 = 0o200;
const O_TRUNC: u32 = 0o1000;
const O_APPEND: u32 = 0o2000;
const O_TMPFILE: u32 = 0o20200000;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_REMOVEDIR: u64 = 0x200;
const AT_EMPTY_PATH: u64 = 0x1000;
const EINPROGRESS: i64 = 115;
const MAX_STR: usize = 64 << 10;
const MAX_ARGS: usize = 64 << 10;

/// `path` as an absolute name, resolved against `dirfd` like the kernel does
/// (the working directory comes from the tracer's cache).
fn abs_path(t: &Tracer, tid: i32, dirfd: i32, path: &str) -> String {
    if path.starts_with('/') {
        return procfs::join_path(None, path);
    }
    let base = if dirfd == libc::AT_FDCWD {
        t.cwd(tid)
    } else {
        procfs::dir_of_fd(tid, dirfd)
    };
    procfs::join_path(base, path)
}

fn fd_arg(v: u64) -> i32 {
    v as u32 as i32
}

/// Read a NUL-terminated string from the tracee, page by page.
fn read_str(pid: i32, addr: u64) -> Option<String> {
    if addr == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < MAX_STR {
        // Never cross a page boundary in one read: the next page may be unmapped.
        let chunk = (4096 - (at as usize % 4096)).min(MAX_STR - out.len());
        let mut buf = vec![0u8; chunk];
        let n = sys::read_mem(pid, at, &mut buf);
        if n == 0 {
            break;
        }
        if let Some(z) = buf[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..z]);
            return Some(String::from_utf8_lossy(&out).into_owned());
        }
        out.extend_from_slice(&buf[..n]);
        at += n as u64;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn read_u64(pid: i32, addr: u64) -> Option<u64> {
    let mut b = [0u8; 8];
    (sys::read_mem(pid, addr, &mut b) == 8).then(|| u64::from_ne_bytes(b))
}

fn read_u32(pid: i32, addr: u64) -> Option<u32> {
    let mut b = [0u8; 4];
    (sys::read_mem(pid, addr, &mut b) == 4).then(|| u32::from_ne_bytes(b))
}

/// A NULL-terminated array of string pointers (argv, envp).
fn read_str_array(pid: i32, addr: u64) -> Vec<String> {
    let mut out = Vec::new();
    let mut total = 0;
    let mut at = addr;
    while addr != 0 && out.len() < 4096 && total < MAX_ARGS {
        let Some(p) = read_u64(pid, at) else { break };
        if p == 0 {
            break;
        }
        let s = read_str(pid, p).unwrap_or_default();
        total += s.len();
        out.push(s);
        at += 8;
    }
    out
}

fn read_sockaddr(pid: i32, addr: u64, len: u32) -> Option<SockAddr> {
    if addr == 0 || len < 2 {
        return None;
    }
    let mut buf = vec![0u8; (len as usize).min(128)];
    let n = sys::read_mem(pid, addr, &mut buf);
    parse_sockaddr(&buf[..n])
}

/// Decode a `struct sockaddr_*` as the kernel lays it out.
pub fn parse_sockaddr(b: &[u8]) -> Option<SockAddr> {
    if b.len() < 2 {
        return None;
    }
    let family = u16::from_ne_bytes([b[0], b[1]]);
    Some(match family as i32 {
        libc::AF_INET if b.len() >= 8 => SockAddr::Inet {
            ip: IpAddr::V4(Ipv4Addr::new(b[4], b[5], b[6], b[7])),
            port: u16::from_be_bytes([b[2], b[3]]),
        },
        libc::AF_INET6 if b.len() >= 24 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[8..24]);
            SockAddr::Inet {
                ip: IpAddr::V6(Ipv6Addr::from(a)),
                port: u16::from_be_bytes([b[2], b[3]]),
            }
        }
        libc::AF_UNIX => {
            let p = &b[2..];
            if p.is_empty() {
                SockAddr::Unnamed
            } else if p[0] == 0 {
                SockAddr::Unix {
                    path: String::from_utf8_lossy(&p[1..]).into_owned(),
                    abstract_ns: true,
                }
            } else {
                let end = p.iter().position(|&c| c == 0).unwrap_or(p.len());
                SockAddr::Unix {
                    path: String::from_utf8_lossy(&p[..end]).into_owned(),
                    abstract_ns: false,
                }
            }
        }
        _ => SockAddr::Other { family },
    })
}

/// The socket's own view of itself, through a borrowed descriptor.
fn sock_facts(tid: i32, fd: i32) -> Option<SockInfo> {
    let dup = sys::dup_from(tid, fd).ok()?;
    let f = sys::sock_facts(&dup);
    Some(SockInfo {
        domain: f.domain.max(0) as u16,
        sock_type: f.sock_type.max(0) as u16,
        protocol: f.protocol.max(0) as u16,
        local: f.local.as_deref().and_then(parse_sockaddr),
        peer: f.peer.as_deref().and_then(parse_sockaddr),
    })
}

/// The description behind `fd`, resolving (and remembering) descriptors the
/// recorder has not seen opened: inherited ones, or ones received over a
/// UNIX socket.
fn ofd(t: &Tracer, tid: i32, fd: i32) -> Option<Rc<RefCell<Ofd>>> {
    let table = t.fds(tid)?;
    if let Some(o) = table.borrow().get(&fd) {
        return Some(Rc::clone(o));
    }
    let obj = procfs::fd_obj(tid, fd)?;
    let mut o = Ofd::new(obj);
    if let Some((pos, flags)) = procfs::fd_pos_flags(tid, fd) {
        o.pos = pos;
        o.append = flags & O_APPEND != 0;
        o.writable = flags & 3 != 0;
        o.readable = flags & 3 != 1;
    }
    if o.obj.kind == ObjKind::Socket {
        o.sock = sock_facts(tid, fd);
    }
    let rc = Rc::new(RefCell::new(o));
    table.borrow_mut().insert(fd, Rc::clone(&rc));
    Some(rc)
}

fn obj_of(t: &Tracer, tid: i32, fd: i32) -> ObjRef {
    ofd(t, tid, fd)
        .map(|o| o.borrow().obj.clone())
        .unwrap_or_else(ObjRef::unknown)
}

fn install(t: &Tracer, tid: i32, fd: i32, o: Ofd) -> Rc<RefCell<Ofd>> {
    let rc = Rc::new(RefCell::new(o));
    if let Some(table) = t.fds(tid) {
        table.borrow_mut().insert(fd, Rc::clone(&rc));
    }
    rc
}

fn seekable(k: ObjKind) -> bool {
    matches!(k, ObjKind::File | ObjKind::BlockDev)
}

fn stream(k: ObjKind) -> bool {
    matches!(k, ObjKind::Pipe | ObjKind::Socket)
}

pub fn capture_entry(t: &Tracer, tid: i32, call: Call, a: [u64; 6]) -> Pending {
    let mut p = Pending {
        call,
        args: a,
        clone_flags: 0,
        path: None,
        path2: None,
        raw: None,
        obj: None,
        obj2: None,
        existed: false,
        known_inode: None,
        open_flags: 0,
        open_mode: 0,
        argv: Vec::new(),
        env: None,
        cwd: None,
        off_in: None,
        off_out: None,
        addr: None,
        closing: None,
    };
    let s = |addr: u64| read_str(tid, addr).unwrap_or_default();
    let at = |dirfd: u64, addr: u64| abs_path(t, tid, fd_arg(dirfd), &s(addr));
    let cwd_rel = |addr: u64| abs_path(t, tid, libc::AT_FDCWD, &s(addr));
    match call {
        Call::fork => p.clone_flags = libc::SIGCHLD as u64,
        Call::vfork => p.clone_flags = (libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD) as u64,
        Call::clone => p.clone_flags = a[0],
        Call::clone3 => p.clone_flags = read_u64(tid, a[0]).unwrap_or(0),
        Call::open | Call::creat | Call::openat | Call::openat2 => {
            let (path, flags, mode) = match call {
                Call::open => (cwd_rel(a[0]), a[1] as u32, a[2] as u32),
                Call::creat => (cwd_rel(a[0]), O_CREAT | O_TRUNC | 1, a[1] as u32),
                Call::openat => (at(a[0], a[1]), a[2] as u32, a[3] as u32),
                _ => {
                    let how_flags = read_u64(tid, a[2]).unwrap_or(0);
                    let how_mode = read_u64(tid, a[2] + 8).unwrap_or(0);
                    (at(a[0], a[1]), how_flags as u32, how_mode as u32)
                }
            };
            if flags & O_CREAT != 0 && flags & O_EXCL == 0 {
                // Did the open create the file? A path this recording has
                // seen open before is checked at exit against the inode it
                // had (a different inode means it was replaced); only new
                // paths need a stat now.
                match t.known_inode(&path) {
                    Some(k) => p.known_inode = Some(k),
                    None => p.existed = std::fs::metadata(&path).is_ok(),
                }
            }
            p.path = Some(path);
            p.open_flags = flags;
            p.open_mode = mode;
        }
        Call::execve | Call::execveat => {
            let (path, argv, envp) = match call {
                Call::execve => (cwd_rel(a[0]), a[1], a[2]),
                _ => {
                    let raw = s(a[1]);
                    let path = if raw.is_empty() && a[4] & AT_EMPTY_PATH != 0 {
                        procfs::readlink(&format!("/proc/{tid}/fd/{}", fd_arg(a[0])))
                            .unwrap_or_default()
                    } else {
                        abs_path(t, tid, fd_arg(a[0]), &raw)
                    };
                    (path, a[2], a[3])
                }
            };
            p.path = Some(path);
            p.argv = read_str_array(tid, argv);
            if t.keep_env() {
                p.env = Some(read_str_array(tid, envp));
            }
            p.cwd = t.cwd(tid);
        }
        Call::close => {
            p.closing = ofd(t, tid, fd_arg(a[0])).map(|o| o.borrow().obj.clone());
        }
        Call::rename | Call::renameat | Call::renameat2 => {
            let (old, new) = match call {
                Call::rename => (cwd_rel(a[0]), cwd_rel(a[1])),
                _ => (at(a[0], a[1]), at(a[2], a[3])),
            };
            p.obj = path_obj(&old, false);
            p.obj2 = path_obj(&new, false);
            p.path = Some(old);
            p.path2 = Some(new);
        }
        Call::link | Call::linkat => {
            let (old, new) = match call {
                Call::link => (cwd_rel(a[0]), cwd_rel(a[1])),
                _ => (at(a[0], a[1]), at(a[2], a[3])),
            };
            p.path = Some(old);
            p.path2 = Some(new);
        }
        Call::symlink => {
            p.raw = Some(s(a[0]));
            p.path2 = Some(cwd_rel(a[1]));
        }
        Call::symlinkat => {
            p.raw = Some(s(a[0]));
            p.path2 = Some(at(a[1], a[2]));
        }
        Call::unlink | Call::rmdir | Call::unlinkat => {
            let path = match call {
                Call::unlinkat => at(a[0], a[1]),
                _ => cwd_rel(a[0]),
            };
            p.obj = path_obj(&path, false);
            p.path = Some(path);
        }
        Call::mkdir
        | Call::mknod
        | Call::truncate
        | Call::chmod
        | Call::chown
        | Call::lchown
        | Call::chdir => {
            p.path = Some(cwd_rel(a[0]));
        }
        Call::mkdirat | Call::mknodat | Call::fchmodat | Call::fchownat => {
            let flags = if call == Call::fchownat { a[4] } else { 0 };
            let raw = s(a[1]);
            p.path = Some(if raw.is_empty() && flags & AT_EMPTY_PATH != 0 {
                procfs::readlink(&format!("/proc/{tid}/fd/{}", fd_arg(a[0]))).unwrap_or_default()
            } else {
                abs_path(t, tid, fd_arg(a[0]), &raw)
            });
        }
        Call::sendfile => p.off_in = if a[2] != 0 { read_u64(tid, a[2]) } else { None },
        Call::splice | Call::copy_file_range => {
            p.off_in = if a[1] != 0 { read_u64(tid, a[1]) } else { None };
            p.off_out = if a[3] != 0 { read_u64(tid, a[3]) } else { None };
        }
        Call::sendto => p.addr = read_sockaddr(tid, a[4], a[5] as u32),
        Call::sendmsg => {
            let name = read_u64(tid, a[1]).unwrap_or(0);
            let len = read_u32(tid, a[1] + 8).unwrap_or(0);
            p.addr = read_sockaddr(tid, name, len);
        }
        Call::connect | Call::bind => p.addr = read_sockaddr(tid, a[1], a[2] as u32),
        _ => {}
    }
    p
}

/// Which pipe or socket an IPC transfer touches: pipes by inode; sockets
/// all alike, since the recorder does not pair socket ends itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpcKey {
    Pipe(u64, u64),
    Socket,
}

impl IpcKey {
    /// Could a write to `self` be what a read from `src` returns?
    pub fn feeds(&self, src: &IpcKey) -> bool {
        self == src
    }
}

fn ipc_key(t: &Tracer, tid: i32, fd: i32) -> Option<IpcKey> {
    let table = t.fds(tid)?;
    let tb = table.borrow();
    let o = tb.get(&fd)?.borrow();
    match o.obj.kind {
        ObjKind::Pipe => Some(IpcKey::Pipe(o.obj.dev, o.obj.ino)),
        ObjKind::Socket => Some(IpcKey::Socket),
        _ => None,
    }
}

/// The pipe or socket a write-family call is about to put data into.
pub fn ipc_target(t: &Tracer, tid: i32, p: &Pending) -> Option<IpcKey> {
    let a = p.args;
    let fd = match p.call {
        Call::write | Call::writev | Call::sendto | Call::sendmsg | Call::sendmmsg | Call::tee => {
            fd_arg(if p.call == Call::tee { a[1] } else { a[0] })
        }
        Call::sendfile => fd_arg(a[0]),
        Call::splice | Call::copy_file_range => fd_arg(a[2]),
        _ => return None,
    };
    ipc_key(t, tid, fd)
}

/// The pipe or socket a read-family call took data from.
pub fn ipc_source(t: &Tracer, tid: i32, p: &Pending) -> Option<IpcKey> {
    let a = p.args;
    let fd = match p.call {
        Call::read
        | Call::readv
        | Call::recvfrom
        | Call::recvmsg
        | Call::recvmmsg
        | Call::splice
        | Call::tee => fd_arg(a[0]),
        Call::sendfile => fd_arg(a[1]),
        _ => return None,
    };
    ipc_key(t, tid, fd)
}

/// A `write` to a regular file resumed without its exit stop. Its outcome is
/// read back from the file position (`/proc/PID/fdinfo`) at the thread's
/// next stop: the descriptor is the only one that can move that position
/// (no dup, no fork copy, no other thread), so `pos_after - pos_before` is
/// exactly the number of bytes written. One `lseek` on the tracer's mirror
/// of the description costs far less than an exit stop.
pub struct Deferred {
    fd: i32,
    ofd: Rc<RefCell<Ofd>>,
    p0: u64,
    n: u64,
    dir: Dir,
}

impl Deferred {
    pub fn inode(&self) -> (u64, u64) {
        let o = self.ofd.borrow();
        (o.obj.dev, o.obj.ino)
    }
}

pub fn deferrable(t: &Tracer, tid: i32, p: &Pending) -> Option<Deferred> {
    if t.capturing_content() {
        // The bytes are read from the tracee's buffer at the exit stop.
        return None;
    }
    let n = p.args[2];
    let dir = match p.call {
        Call::write => Dir::Write,
        Call::read => Dir::Read,
        _ => return None,
    };
    if n == 0 || !t.alone_in_process(tid) {
        return None;
    }
    let fd = fd_arg(p.args[0]);
    let table = t.fds(tid)?;
    let tb = table.borrow();
    let o = tb.get(&fd)?;
    // One Rc in this table and nowhere else: no dup and no forked copy.
    if Rc::strong_count(o) != 1 {
        return None;
    }
    let (kind, append, allowed, p0) = {
        let ob = o.borrow();
        let allowed = if dir == Dir::Write {
            ob.writable
        } else {
            ob.readable
        };
        (ob.obj.kind, ob.append, allowed, ob.pos)
    };
    // A descriptor not open for this direction fails (EBADF): keep the
    // exit stop so that the failure is seen with its errno.
    if kind != ObjKind::File || (append && dir == Dir::Write) || !allowed {
        return None;
    }
    if o.borrow().mirror.is_none() {
        // No mirror (descriptor limit reached, or no pidfd_getfd): keep
        // the exit stop.
        let m = sys::getfd(&*t.pidfd(tid)?, fd).ok()?;
        o.borrow_mut().mirror = Some(Rc::new(m));
    }
    Some(Deferred {
        fd,
        ofd: Rc::clone(o),
        p0,
        n,
        dir,
    })
}

/// The current position of a deferred write's file, through the mirror.
pub fn deferred_pos(d: &Deferred) -> Option<u64> {
    let m = d.ofd.borrow().mirror.clone()?;
    sys::tell(&m)
}

/// Log a deferred read or write from the position now (`None`: the
/// position cannot be read, so the outcome is unknown).
pub fn finish_deferred(t: &mut Tracer, tid: i32, d: Deferred, pos_now: Option<u64>) {
    let moved = pos_now
        .and_then(|p1| p1.checked_sub(d.p0))
        .filter(|&c| c <= d.n);
    let done = match (moved, d.dir) {
        (Some(c), _) if c > 0 => Some(c),
        // A read that moved nothing is end-of-file only if the position is
        // at or past the end; otherwise it failed.
        (Some(0), Dir::Read) => {
            let m = d.ofd.borrow().mirror.clone();
            m.and_then(|m| sys::size(&m))
                .filter(|&size| size <= d.p0)
                .map(|_| 0)
        }
        _ => None,
    };
    let (count, ret) = match done {
        Some(c) => (c, c as i64),
        None => (0, tomo_event::RET_UNKNOWN),
    };
    if let Some(c) = done {
        d.ofd.borrow_mut().pos = d.p0 + c;
    }
    let obj = d.ofd.borrow().obj.clone();
    let call = if d.dir == Dir::Write {
        Call::write
    } else {
        Call::read
    };
    let op = Op::Io {
        call,
        dir: d.dir,
        fd: d.fd,
        obj,
        offset: Some(d.p0),
        count,
        sock: None,
    };
    t.emit(tid, op, ret);
}

/// Whether the deferred write is complete now (its position moved by all
/// it asked for): a check that needs no stop of its thread.
pub fn deferred_complete(d: &Deferred) -> bool {
    deferred_pos(d).is_some_and(|p1| p1 == d.p0 + d.n)
}

/// The regular file a write-family call puts data into.
pub fn file_target(t: &Tracer, tid: i32, p: &Pending) -> Option<(u64, u64)> {
    let fd = match p.call {
        Call::write | Call::writev | Call::pwrite64 | Call::pwritev | Call::pwritev2 => {
            fd_arg(p.args[0])
        }
        Call::sendfile => fd_arg(p.args[0]),
        Call::splice | Call::copy_file_range => fd_arg(p.args[2]),
        _ => return None,
    };
    let table = t.fds(tid)?;
    let tb = table.borrow();
    let o = tb.get(&fd)?.borrow();
    (o.obj.kind == ObjKind::File).then_some((o.obj.dev, o.obj.ino))
}

/// The regular file a read-family call or a mapping takes data from.
pub fn file_source(t: &Tracer, tid: i32, p: &Pending) -> Option<(u64, u64)> {
    let fd = match p.call {
        Call::read
        | Call::readv
        | Call::pread64
        | Call::preadv
        | Call::preadv2
        | Call::splice
        | Call::copy_file_range => fd_arg(p.args[0]),
        Call::sendfile => fd_arg(p.args[1]),
        Call::mmap => fd_arg(p.args[4]),
        _ => return None,
    };
    let table = t.fds(tid)?;
    let tb = table.borrow();
    let o = tb.get(&fd)?.borrow();
    (o.obj.kind == ObjKind::File).then_some((o.obj.dev, o.obj.ino))
}

/// Whether [`finish_at_entry`] will finish this call (decided from the
/// model alone, so the tracee can be resumed before the event is logged).
pub fn finishes_at_entry(t: &Tracer, tid: i32, p: &Pending) -> bool {
    let a = p.args;
    match p.call {
        Call::exit | Call::exit_group => true,
        Call::close => t
            .fds(tid)
            .is_some_and(|tb| tb.borrow().contains_key(&fd_arg(a[0]))),
        Call::lseek => {
            let Some(table) = t.fds(tid) else {
                return false;
            };
            let tb = table.borrow();
            let Some(o) = tb.get(&fd_arg(a[0])) else {
                return false;
            };
            seekable(o.borrow().obj.kind) && matches!((a[2], a[1] as i64), (0, 0..) | (1, 0))
        }
        _ => false,
    }
}

/// Whether finishing this call needs the tracee still stopped: to read its
/// memory (addresses), or `/proc` facts of a descriptor it could close as
/// soon as it runs. Plain reads and writes on descriptors the model knows
/// need neither.
pub fn needs_tracee_at_exit(t: &Tracer, tid: i32, p: &Pending) -> bool {
    let plain = matches!(
        p.call,
        Call::read
            | Call::readv
            | Call::pread64
            | Call::preadv
            | Call::preadv2
            | Call::write
            | Call::writev
            | Call::pwrite64
            | Call::pwritev
            | Call::pwritev2
    );
    if !plain || t.capturing_content() {
        return true;
    }
    let Some(table) = t.fds(tid) else { return true };
    let tb = table.borrow();
    let Some(o) = tb.get(&fd_arg(p.args[0])) else {
        return true;
    };
    let o = o.borrow();
    match o.obj.kind {
        // O_APPEND writes ask the file's size; sockets may need addresses.
        ObjKind::File | ObjKind::BlockDev => o.append,
        ObjKind::Socket => o.sock.as_ref().is_none_or(unbound),
        _ => false,
    }
}

/// Calls whose outcome is certain at entry are finished there, saving the
/// exit stop: `close` of a descriptor the model knows (Linux releases the
/// descriptor even when close reports EIO or EINTR, and EBADF cannot happen
/// for a known one), and `lseek` to an absolute or unchanged position.
pub fn finish_at_entry(t: &mut Tracer, tid: i32, p: &Pending) -> bool {
    let a = p.args;
    match p.call {
        // Traced only so that a deferred write is settled while the
        // process still exists; its end is logged when wait reports it.
        Call::exit_group => true,
        Call::exit => {
            // exit(2) of one thread never returns; the process's end is
            // reported when its last thread is gone.
            let op = Op::Exit {
                call: Call::exit,
                code: a[0] as i32,
                signal: None,
            };
            t.emit(tid, op, 0);
            true
        }
        Call::close => {
            let fd = fd_arg(a[0]);
            let Some(table) = t.fds(tid) else {
                return false;
            };
            let Some(o) = table.borrow_mut().remove(&fd) else {
                return false;
            };
            let obj = o.borrow().obj.clone();
            t.emit(
                tid,
                Op::Close {
                    call: Call::close,
                    fd,
                    obj,
                },
                0,
            );
            true
        }
        Call::lseek => {
            const SEEK_SET: u64 = 0;
            const SEEK_CUR: u64 = 1;
            let Some(table) = t.fds(tid) else {
                return false;
            };
            let Some(o) = table.borrow().get(&fd_arg(a[0])).cloned() else {
                return false;
            };
            let mut o = o.borrow_mut();
            if !seekable(o.obj.kind) {
                return false;
            }
            match (a[2], a[1] as i64) {
                (SEEK_SET, off) if off >= 0 => {
                    o.pos = off as u64;
                    true
                }
                (SEEK_CUR, 0) => true,
                _ => false,
            }
        }
        _ => false,
    }
}

/// Turn a finished call into its event.
pub fn finish(t: &mut Tracer, tid: i32, p: Pending, ret: i64) {
    if matches!(
        p.call,
        Call::rename
            | Call::renameat
            | Call::renameat2
            | Call::unlink
            | Call::unlinkat
            | Call::rmdir
    ) {
        for path in [&p.path, &p.path2].into_iter().flatten() {
            t.forget_inode(path);
        }
    }
    let a = p.args;
    let ok = ret >= 0;
    let call = p.call;
    let mut content = None;
    let op = match call {
        // Only failures reach here: success is handled at the fork event.
        Call::fork | Call::vfork | Call::clone | Call::clone3 => Op::Spawn {
            call,
            kind: if p.clone_flags & libc::CLONE_THREAD as u64 != 0 {
                tomo_event::SpawnKind::Thread
            } else {
                tomo_event::SpawnKind::Process
            },
            child: Default::default(),
            flags: p.clone_flags,
        },
        Call::execve | Call::execveat => {
            // Success is reported at the exec event; this is a failed exec.
            let path = p.path.clone().unwrap_or_default();
            Op::Exec {
                call,
                exe: named_unknown(&path),
                argv: p.argv,
                env: p.env,
                cwd: p.cwd,
            }
        }
        Call::kill | Call::tkill | Call::tgkill => {
            let (target_tid, sig) = match call {
                Call::tgkill => (a[1] as u32 as i32, a[2] as i32),
                _ => (a[0] as u32 as i32, a[1] as i32),
            };
            if target_tid <= 0 {
                // Process-group and broadcast signals name no single process.
                return;
            }
            let pid = match call {
                Call::tgkill => a[0] as u32 as i32,
                Call::tkill => t.tgid_of(target_tid),
                _ => target_tid,
            };
            let (ppid, start_ticks) = t
                .known_start_ticks(pid)
                .or_else(|| procfs::stat_ids(pid))
                .unwrap_or((0, 0));
            let target = tomo_event::ProcRef {
                pid: pid as u32,
                tid: target_tid as u32,
                ppid,
                start_ticks,
            };
            Op::Kill {
                call,
                target,
                signal: sig,
            }
        }
        Call::open | Call::creat | Call::openat | Call::openat2 => {
            let path = p.path.clone().unwrap_or_default();
            let fd = if ok { ret as i32 } else { -1 };
            let flags = p.open_flags;
            let tmpfile = flags & O_TMPFILE == O_TMPFILE;
            // Named by the kernel's path of the descriptor, not the name
            // used: a symlink's name must not become a name of its target.
            let obj = if ok {
                procfs::fd_obj(tid, fd).unwrap_or_else(|| named_unknown(&path))
            } else {
                named_unknown(&path)
            };
            let existed = match p.known_inode {
                Some(k) => k == (obj.dev, obj.ino),
                None => p.existed,
            };
            let created = ok
                && obj.kind == ObjKind::File
                && (tmpfile || (flags & O_CREAT != 0 && (flags & O_EXCL != 0 || !existed)));
            if ok && obj.kind == ObjKind::File && !tmpfile {
                t.remember_inode(&path, (obj.dev, obj.ino));
            }
            if ok {
                let mut o = Ofd::new(obj.clone());
                o.append = flags & O_APPEND != 0;
                o.writable = flags & 3 != 0;
                o.readable = flags & 3 != 1;
                o.readable = flags & 3 != 1;
                if obj.kind == ObjKind::Socket {
                    o.sock = sock_facts(tid, fd);
                }
                install(t, tid, fd, o);
            }
            Op::Open {
                call,
                fd,
                obj,
                flags,
                mode: p.open_mode,
                created,
            }
        }
        Call::close => {
            let fd = fd_arg(a[0]);
            if ret != -(libc::EBADF as i64) {
                if let Some(table) = t.fds(tid) {
                    table.borrow_mut().remove(&fd);
                }
            }
            Op::Close {
                call,
                fd,
                obj: p.closing.unwrap_or_else(ObjRef::unknown),
            }
        }
        Call::close_range => {
            if ok && a[2] & 4 == 0 {
                let (lo, hi) = (a[0] as u32, a[1] as u32);
                let closed: Vec<(i32, ObjRef)> = match t.fds(tid) {
                    Some(table) => {
                        let mut tb = table.borrow_mut();
                        let fds: Vec<i32> = tb
                            .keys()
                            .copied()
                            .filter(|&f| f as u32 >= lo && f as u32 <= hi)
                            .collect();
                        fds.into_iter()
                            .filter_map(|f| tb.remove(&f).map(|o| (f, o.borrow().obj.clone())))
                            .collect()
                    }
                    None => Vec::new(),
                };
                for (fd, obj) in closed {
                    t.emit(tid, Op::Close { call, fd, obj }, 0);
                }
            }
            return;
        }
        Call::read
        | Call::readv
        | Call::pread64
        | Call::preadv
        | Call::preadv2
        | Call::write
        | Call::writev
        | Call::pwrite64
        | Call::pwritev
        | Call::pwritev2
        | Call::recvfrom
        | Call::recvmsg
        | Call::sendto
        | Call::sendmsg => {
            let fd = fd_arg(a[0]);
            let dir = match call {
                Call::read
                | Call::readv
                | Call::pread64
                | Call::preadv
                | Call::preadv2
                | Call::recvfrom
                | Call::recvmsg => Dir::Read,
                _ => Dir::Write,
            };
            let explicit = match call {
                Call::pread64 | Call::pwrite64 | Call::preadv | Call::pwritev => Some(a[3]),
                Call::preadv2 | Call::pwritev2 if a[3] as i64 != -1 => Some(a[3]),
                _ => None,
            };
            let addr = match call {
                Call::recvfrom if ok && a[4] != 0 => {
                    let len = read_u32(tid, a[5]).unwrap_or(0);
                    read_sockaddr(tid, a[4], len)
                }
                Call::recvmsg if ok => {
                    let name = read_u64(tid, a[1]).unwrap_or(0);
                    let len = read_u32(tid, a[1] + 8).unwrap_or(0);
                    read_sockaddr(tid, name, len)
                }
                _ => p.addr.clone(),
            };
            let count = if ok { ret as u64 } else { 0 };
            match io_op(t, tid, call, dir, fd, explicit, count, addr) {
                Some(op) => {
                    if count > 0 && t.capturing_content() {
                        content = content_op(t, tid, &p, &op, count);
                    }
                    op
                }
                None => return,
            }
        }
        Call::sendmmsg | Call::recvmmsg => {
            let fd = fd_arg(a[0]);
            let dir = if call == Call::recvmmsg {
                Dir::Read
            } else {
                Dir::Write
            };
            if !ok {
                if let Some(op) = io_op(t, tid, call, dir, fd, None, 0, None) {
                    t.emit(tid, op, ret);
                }
                return;
            }
            // One event per message: each may have its own peer (UDP).
            let n = (ret as u64).min(1024);
            for i in 0..n {
                let base = a[1] + i * 64;
                let len = read_u32(tid, base + 56).unwrap_or(0) as u64;
                let name = read_u64(tid, base).unwrap_or(0);
                let namelen = read_u32(tid, base + 8).unwrap_or(0);
                let addr = read_sockaddr(tid, name, namelen);
                if let Some(op) = io_op(t, tid, call, dir, fd, None, len, addr) {
                    t.emit(tid, op, len as i64);
                }
            }
            return;
        }
        Call::sendfile | Call::splice | Call::tee | Call::copy_file_range => {
            let (src_fd, dst_fd) = match call {
                Call::sendfile => (fd_arg(a[1]), fd_arg(a[0])),
                Call::tee => (fd_arg(a[0]), fd_arg(a[1])),
                _ => (fd_arg(a[0]), fd_arg(a[2])),
            };
            let count = if ok { ret as u64 } else { 0 };
            let src = ofd(t, tid, src_fd);
            let dst = ofd(t, tid, dst_fd);
            // tee copies without consuming its input.
            let consume = call != Call::tee;
            let src_offset = offset_and_advance(
                src.as_ref(),
                p.off_in,
                Dir::Read,
                count,
                consume,
                tid,
                src_fd,
            );
            let dst_offset = offset_and_advance(
                dst.as_ref(),
                p.off_out,
                Dir::Write,
                count,
                true,
                tid,
                dst_fd,
            );
            let src = src
                .map(|o| o.borrow().obj.clone())
                .unwrap_or_else(ObjRef::unknown);
            let dst = dst
                .map(|o| o.borrow().obj.clone())
                .unwrap_or_else(ObjRef::unknown);
            if src.kind == ObjKind::Anon || dst.kind == ObjKind::Anon {
                return;
            }
            Op::Transfer {
                call,
                src_fd,
                src,
                src_offset,
                dst_fd,
                dst,
                dst_offset,
                count,
            }
        }
        Call::mmap => {
            let fd = fd_arg(a[4]);
            let obj = obj_of(t, tid, fd);
            Op::Mmap {
                call,
                fd,
                obj,
                offset: a[5],
                len: a[1],
                prot: a[2] as u32,
                flags: a[3] as u32,
            }
        }
        Call::lseek => {
            if ok {
                if let Some(o) = ofd(t, tid, fd_arg(a[0])) {
                    o.borrow_mut().pos = ret as u64;
                }
            }
            return;
        }
        Call::dup | Call::dup2 | Call::dup3 | Call::fcntl => {
            let old_fd = fd_arg(a[0]);
            let new_fd = if ok { ret as i32 } else { -1 };
            let src = ofd(t, tid, old_fd);
            if ok && new_fd != old_fd {
                if let (Some(src), Some(table)) = (&src, t.fds(tid)) {
                    table.borrow_mut().insert(new_fd, Rc::clone(src));
                }
            }
            let obj = src
                .map(|o| o.borrow().obj.clone())
                .unwrap_or_else(ObjRef::unknown);
            Op::Dup {
                call,
                old_fd,
                new_fd,
                obj,
            }
        }
        Call::pipe | Call::pipe2 => {
            let mut fds = [-1i32, -1];
            if ok {
                let mut b = [0u8; 8];
                if sys::read_mem(tid, a[0], &mut b) == 8 {
                    fds = [
                        i32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
                        i32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
                    ];
                }
            }
            let obj = if ok {
                procfs::fd_obj(tid, fds[0]).unwrap_or_else(ObjRef::unknown)
            } else {
                ObjRef::unknown()
            };
            if ok {
                install(t, tid, fds[0], Ofd::new(obj.clone()));
                install(t, tid, fds[1], Ofd::new(obj.clone()));
            }
            Op::Pipe {
                call,
                read_fd: fds[0],
                write_fd: fds[1],
                obj,
            }
        }
        Call::rename | Call::renameat | Call::renameat2 => Op::Rename {
            call,
            old_path: p.path.clone().unwrap_or_default(),
            new_path: p.path2.clone().unwrap_or_default(),
            obj: p
                .obj
                .clone()
                .unwrap_or_else(|| named_unknown(p.path.as_deref().unwrap_or_default())),
            replaced: p
                .obj2
                .clone()
                .filter(|r| Some((r.dev, r.ino)) != p.obj.as_ref().map(|o| (o.dev, o.ino))),
        },
        Call::link | Call::linkat | Call::symlink | Call::symlinkat => {
            let new_path = p.path2.clone().unwrap_or_default();
            let symbolic = matches!(call, Call::symlink | Call::symlinkat);
            let obj = if ok { path_obj(&new_path, false) } else { None }
                .unwrap_or_else(|| named_unknown(&new_path));
            let target = if symbolic {
                p.raw.clone()
            } else {
                p.path.clone()
            }
            .unwrap_or_default();
            Op::Link {
                call,
                target,
                new_path,
                obj,
                symbolic,
            }
        }
        Call::unlink | Call::rmdir | Call::unlinkat => {
            let path = p.path.clone().unwrap_or_default();
            let dir = call == Call::rmdir || (call == Call::unlinkat && a[2] & AT_REMOVEDIR != 0);
            let obj = p.obj.clone().unwrap_or_else(|| named_unknown(&path));
            Op::Unlink {
                call,
                path,
                obj,
                dir,
            }
        }
        Call::mkdir | Call::mkdirat => {
            let path = p.path.clone().unwrap_or_default();
            let mode = if call == Call::mkdir { a[1] } else { a[2] } as u32;
            let obj = if ok { path_obj(&path, false) } else { None }
                .unwrap_or_else(|| named_unknown(&path));
            Op::Mkdir {
                call,
                path,
                obj,
                mode,
            }
        }
        Call::mknod | Call::mknodat => {
            let path = p.path.clone().unwrap_or_default();
            let (mode, rdev) = if call == Call::mknod {
                (a[1], a[2])
            } else {
                (a[2], a[3])
            };
            let obj = if ok { path_obj(&path, false) } else { None }
                .unwrap_or_else(|| named_unknown(&path));
            Op::Mknod {
                call,
                path,
                obj,
                mode: mode as u32,
                rdev,
            }
        }
        Call::truncate => {
            let path = p.path.clone().unwrap_or_default();
            let obj = path_obj(&path, true).unwrap_or_else(|| named_unknown(&path));
            Op::Truncate {
                call,
                fd: None,
                obj,
                length: a[1],
            }
        }
        Call::ftruncate => Op::Truncate {
            call,
            fd: Some(fd_arg(a[0])),
            obj: obj_of(t, tid, fd_arg(a[0])),
            length: a[1],
        },
        Call::chmod | Call::fchmodat => {
            let path = p.path.clone().unwrap_or_default();
            let mode = if call == Call::chmod { a[1] } else { a[2] } as u32;
            let follow = !(call == Call::fchmodat && a[3] & AT_SYMLINK_NOFOLLOW != 0);
            let obj = path_obj(&path, follow).unwrap_or_else(|| named_unknown(&path));
            Op::Chmod {
                call,
                fd: None,
                obj,
                mode,
            }
        }
        Call::fchmod => Op::Chmod {
            call,
            fd: Some(fd_arg(a[0])),
            obj: obj_of(t, tid, fd_arg(a[0])),
            mode: a[1] as u32,
        },
        Call::chown | Call::lchown | Call::fchownat => {
            let path = p.path.clone().unwrap_or_default();
            let (uid, gid, follow) = match call {
                Call::chown => (a[1], a[2], true),
                Call::lchown => (a[1], a[2], false),
                _ => (a[2], a[3], a[4] & AT_SYMLINK_NOFOLLOW == 0),
            };
            let obj = path_obj(&path, follow).unwrap_or_else(|| named_unknown(&path));
            Op::Chown {
                call,
                fd: None,
                obj,
                uid: uid as u32,
                gid: gid as u32,
            }
        }
        Call::fchown => Op::Chown {
            call,
            fd: Some(fd_arg(a[0])),
            obj: obj_of(t, tid, fd_arg(a[0])),
            uid: a[1] as u32,
            gid: a[2] as u32,
        },
        Call::setuid | Call::setgid => Op::SetId {
            call,
            ids: [a[0] as u32, u32::MAX, u32::MAX],
        },
        Call::setreuid | Call::setregid => Op::SetId {
            call,
            ids: [a[0] as u32, a[1] as u32, u32::MAX],
        },
        Call::setresuid | Call::setresgid => Op::SetId {
            call,
            ids: [a[0] as u32, a[1] as u32, a[2] as u32],
        },
        Call::chdir | Call::fchdir => {
            t.forget_cwd(tid);
            let now = t.cwd(tid);
            let path = if ok { now.clone() } else { p.path.clone() }.unwrap_or_default();
            let obj = path_obj(&path, true).unwrap_or_else(|| named_unknown(&path));
            Op::Chdir { call, path, obj }
        }
        Call::socket => {
            let fd = if ok { ret as i32 } else { -1 };
            let sock = SockInfo {
                domain: a[0] as u16,
                sock_type: (a[1] & 0xf) as u16,
                protocol: a[2] as u16,
                local: None,
                peer: None,
            };
            let obj = if ok {
                procfs::fd_obj(tid, fd).unwrap_or_else(ObjRef::unknown)
            } else {
                ObjRef::unknown()
            };
            if ok {
                let mut o = Ofd::new(obj.clone());
                o.sock = Some(sock.clone());
                install(t, tid, fd, o);
            }
            Op::Socket {
                call,
                fd,
                obj,
                sock,
            }
        }
        Call::socketpair => {
            let mut fds = [-1i32, -1];
            if ok {
                let mut b = [0u8; 8];
                if sys::read_mem(tid, a[3], &mut b) == 8 {
                    fds = [
                        i32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
                        i32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
                    ];
                }
            }
            let sock = SockInfo {
                domain: a[0] as u16,
                sock_type: (a[1] & 0xf) as u16,
                protocol: a[2] as u16,
                local: Some(SockAddr::Unnamed),
                peer: Some(SockAddr::Unnamed),
            };
            let objs = if ok {
                [
                    procfs::fd_obj(tid, fds[0]).unwrap_or_else(ObjRef::unknown),
                    procfs::fd_obj(tid, fds[1]).unwrap_or_else(ObjRef::unknown),
                ]
            } else {
                [ObjRef::unknown(), ObjRef::unknown()]
            };
            if ok {
                for i in 0..2 {
                    let mut o = Ofd::new(objs[i].clone());
                    o.sock = Some(sock.clone());
                    install(t, tid, fds[i], o);
                }
            }
            Op::SocketPair {
                call,
                fds,
                objs,
                sock,
            }
        }
        Call::bind => {
            let fd = fd_arg(a[0]);
            let o = ofd(t, tid, fd);
            if ok {
                refresh_sock(o.as_ref(), tid, fd);
            }
            // The kernel's choice for port 0 (or an unspecified address) is
            // what peers will see, so log the bound address, not the request.
            let bound = o
                .as_ref()
                .filter(|_| ok)
                .and_then(|o| o.borrow().sock.as_ref().and_then(|s| s.local.clone()));
            let obj = o
                .map(|o| o.borrow().obj.clone())
                .unwrap_or_else(ObjRef::unknown);
            Op::Bind {
                call,
                fd,
                obj,
                addr: bound.or(p.addr).unwrap_or(SockAddr::Unnamed),
            }
        }
        Call::listen => {
            let fd = fd_arg(a[0]);
            Op::Listen {
                call,
                fd,
                obj: obj_of(t, tid, fd),
                backlog: a[1] as i32,
            }
        }
        Call::connect => {
            let fd = fd_arg(a[0]);
            let o = ofd(t, tid, fd);
            // A non-blocking connect that is under way has its addresses already.
            if ok || ret == -EINPROGRESS {
                refresh_sock(o.as_ref(), tid, fd);
                if let (Some(o), Some(addr)) = (&o, &p.addr) {
                    if let Some(s) = o.borrow_mut().sock.as_mut() {
                        s.peer = Some(addr.clone());
                    }
                }
            }
            let (obj, mut sock) = match &o {
                Some(o) => (o.borrow().obj.clone(), o.borrow().sock.clone()),
                None => (ObjRef::unknown(), None),
            };
            let sock = sock.take().unwrap_or(SockInfo {
                domain: 0,
                sock_type: 0,
                protocol: 0,
                local: None,
                peer: p.addr.clone(),
            });
            Op::Connect {
                call,
                fd,
                obj,
                sock,
            }
        }
        Call::accept | Call::accept4 => {
            let fd = fd_arg(a[0]);
            let new_fd = if ok { ret as i32 } else { -1 };
            let listen_obj = obj_of(t, tid, fd);
            let (obj, sock) = if ok {
                let obj = procfs::fd_obj(tid, new_fd).unwrap_or_else(ObjRef::unknown);
                let sock = sock_facts(tid, new_fd);
                let mut o = Ofd::new(obj.clone());
                o.sock = sock.clone();
                install(t, tid, new_fd, o);
                (obj, sock)
            } else {
                (ObjRef::unknown(), None)
            };
            let sock = sock.unwrap_or(SockInfo {
                domain: 0,
                sock_type: 0,
                protocol: 0,
                local: None,
                peer: None,
            });
            Op::Accept {
                call,
                fd,
                new_fd,
                listen_obj,
                obj,
                sock,
            }
        }
        _ => return,
    };
    if ok
        && matches!(
            call,
            Call::setuid
                | Call::setgid
                | Call::setreuid
                | Call::setregid
                | Call::setresuid
                | Call::setresgid
        )
    {
        t.refresh_cred(tid);
    }
    t.emit(tid, op, ret);
    if let Some(c) = content {
        t.emit(tid, c, ret);
    }
}

/// The user buffers of a read/write-family call, as (address, length).
fn io_buffers(tid: i32, p: &Pending) -> Vec<(u64, u64)> {
    let a = p.args;
    let iovecs = |at: u64, n: u64| -> Vec<(u64, u64)> {
        (0..n.min(1024))
            .filter_map(|i| {
                let base = read_u64(tid, at + i * 16)?;
                let len = read_u64(tid, at + i * 16 + 8)?;
                Some((base, len))
            })
            .collect()
    };
    match p.call {
        Call::read
        | Call::pread64
        | Call::write
        | Call::pwrite64
        | Call::recvfrom
        | Call::sendto => {
            vec![(a[1], a[2])]
        }
        Call::readv
        | Call::preadv
        | Call::preadv2
        | Call::writev
        | Call::pwritev
        | Call::pwritev2 => iovecs(a[1], a[2]),
        Call::recvmsg | Call::sendmsg => {
            let iov = read_u64(tid, a[1] + 16).unwrap_or(0);
            let n = read_u64(tid, a[1] + 24).unwrap_or(0);
            iovecs(iov, n)
        }
        _ => Vec::new(),
    }
}

/// The bytes the call moved (its first ones, within the allowance), copied
/// from the tracee: a read's buffer holds them at the exit stop, and a
/// write's buffer still does, since the tracee has not run since.
fn content_op(t: &mut Tracer, tid: i32, p: &Pending, io: &Op, count: u64) -> Option<Op> {
    let Op::Io {
        call,
        dir,
        fd,
        obj,
        offset,
        ..
    } = io
    else {
        return None;
    };
    let want = (count as usize).min(t.content_allowance());
    if want == 0 {
        return None;
    }
    let mut data = Vec::with_capacity(want);
    for (base, len) in io_buffers(tid, p) {
        if data.len() >= want {
            break;
        }
        let take = (len as usize).min(want - data.len());
        let start = data.len();
        data.resize(start + take, 0);
        let got = sys::read_mem(tid, base, &mut data[start..]);
        data.truncate(start + got);
        if got < take {
            // Unreadable memory: keep what came, contiguous from the start.
            break;
        }
    }
    if data.is_empty() {
        return None;
    }
    t.content_spent(data.len());
    Some(Op::Content {
        call: *call,
        dir: *dir,
        fd: *fd,
        obj: obj.clone(),
        offset: *offset,
        total: count,
        data,
    })
}

/// Re-ask a socket for its addresses (after bind/connect, or while a UDP
/// socket's local port is still unknown).
fn refresh_sock(o: Option<&Rc<RefCell<Ofd>>>, tid: i32, fd: i32) {
    let Some(o) = o else { return };
    if let Some(f) = sock_facts(tid, fd) {
        let mut ob = o.borrow_mut();
        match ob.sock.as_mut() {
            Some(s) => {
                if f.local.is_some() {
                    s.local = f.local;
                }
                if f.peer.is_some() {
                    s.peer = f.peer;
                }
                if s.domain == 0 {
                    s.domain = f.domain;
                    s.sock_type = f.sock_type;
                    s.protocol = f.protocol;
                }
            }
            None => ob.sock = Some(f),
        }
    }
}

fn unbound(s: &SockInfo) -> bool {
    match &s.local {
        None => true,
        Some(SockAddr::Inet { port, .. }) => *port == 0,
        _ => false,
    }
}

/// The offset a transfer started at, and the model's offsets moved past it.
fn offset_and_advance(
    o: Option<&Rc<RefCell<Ofd>>>,
    explicit: Option<u64>,
    dir: Dir,
    count: u64,
    consume: bool,
    tid: i32,
    fd: i32,
) -> Option<u64> {
    let o = o?;
    let mut ob = o.borrow_mut();
    let kind = ob.obj.kind;
    if let Some(off) = explicit {
        return Some(off);
    }
    if seekable(kind) {
        let start = if dir == Dir::Write && ob.append {
            // O_APPEND writes land at the end, wherever the offset was.
            procfs::fd_size(tid, fd)
                .map(|s| s.saturating_sub(count))
                .unwrap_or(ob.pos)
        } else {
            ob.pos
        };
        if consume {
            ob.pos = start + count;
        }
        Some(start)
    } else if stream(kind) {
        let cur = if dir == Dir::Read {
            &mut ob.rd
        } else {
            &mut ob.wr
        };
        let start = *cur;
        if consume {
            *cur += count;
        }
        Some(start)
    } else {
        None
    }
}

#[allow(clippy::too_many_arguments)]
fn io_op(
    t: &Tracer,
    tid: i32,
    call: Call,
    dir: Dir,
    fd: i32,
    explicit: Option<u64>,
    count: u64,
    addr: Option<SockAddr>,
) -> Option<Op> {
    let o = ofd(t, tid, fd);
    if let Some(o) = &o {
        let needs = {
            let ob = o.borrow();
            ob.obj.kind == ObjKind::Socket && ob.sock.as_ref().is_none_or(unbound)
        };
        if needs {
            refresh_sock(Some(o), tid, fd);
        }
    }
    let offset = offset_and_advance(o.as_ref(), explicit, dir, count, true, tid, fd);
    let (obj, sock) = match &o {
        Some(o) => {
            let ob = o.borrow();
            (ob.obj.clone(), ob.sock.clone())
        }
        None => (ObjRef::unknown(), None),
    };
    if obj.kind == ObjKind::Anon {
        // eventfd, timerfd, epoll…: no data of another process behind them.
        return None;
    }
    let sock = sock.map(|mut s| {
        if let Some(a) = addr {
            s.peer = Some(a);
        }
        s
    });
    Some(Op::Io {
        call,
        dir,
        fd,
        obj,
        offset,
        count,
        sock,
    })
}

/// The end of a successful exec (at `PTRACE_EVENT_EXEC`).
pub fn finish_exec(t: &mut Tracer, tid: i32, p: Option<Pending>) {
    let exe_path = procfs::readlink(&format!("/proc/{tid}/exe"));
    let exe = match &exe_path {
        Some(path) => path_obj(path, true).unwrap_or_else(|| named_unknown(path)),
        None => ObjRef::unknown(),
    };
    let (call, argv, env, cwd) = match p {
        Some(p) if matches!(p.call, Call::execve | Call::execveat) => {
            (p.call, p.argv, p.env, p.cwd)
        }
        _ => (Call::execve, cmdline(tid), None, t.cwd(tid)),
    };
    t.emit(
        tid,
        Op::Exec {
            call,
            exe,
            argv,
            env,
            cwd,
        },
        0,
    );
}

fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

//! Ring-buffer records → normalized events, the same [`Op`]s the ptrace
//! recorder produces for the same calls (see crates/capture-ptrace/src/calls.rs).
//! User-space state is bounded: strings waiting for their call (per thread,
//! dropped at the thread's exit), process identities (dropped at the
//! process's exit), and a capped cache of open-file names and stream offsets.

use crate::record::*;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use tomo_event::{
    Call, Cred, Dir, Event, Id128, ObjKind, ObjRef, Op, ProcRef, SockAddr, SockInfo, SpawnKind,
};

const O_CREAT: u32 = 0o100;
const O_TRUNC: u32 = 0o1000;
const O_APPEND: u32 = 0o2000;
const O_TMPFILE: u32 = 0o20200000;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_REMOVEDIR: u64 = 0x200;
const CLONE_THREAD: u64 = 0x10000;
const SYS_EXIT: u64 = 60;
/// Bound on the open-file cache; past it the cache starts over (names are
/// then looked up again through /proc).
const MAX_FILES: usize = 1 << 18;
const MAX_PIECE_THREADS: usize = 1 << 16;
const MAX_PROCS: usize = 1 << 20;
const MAX_NAMES: usize = 1 << 18;

/// What the agent knows about an open file description (by `struct file *`).
#[derive(Clone, Debug, Default)]
struct FileInfo {
    dev: u32,
    ino: u64,
    path: Option<String>,
    rd: u64,
    wr: u64,
    local: Option<SockAddr>,
    peer: Option<SockAddr>,
}

#[derive(Clone, Copy, Debug)]
struct ProcInfo {
    ppid: u32,
    start_ticks: u64,
}

pub struct Converter {
    host: Id128,
    boot: Id128,
    wall_offset: i128,
    pieces: HashMap<u32, Vec<(u32, Vec<u8>)>>,
    files: HashMap<u64, FileInfo>,
    procs: HashMap<u32, ProcInfo>,
    /// Objects by the absolute names they were last opened or created by:
    /// identifies what a rename or unlink acts on when the fentry hooks
    /// that report it are not available (the name is gone after the call).
    names: HashMap<String, ObjRef>,
    /// Records that did not parse (program/loader mismatch): reported.
    pub bad_records: u64,
}

/// One converted event and, for a new process, the pid whose events must
/// wait for its Spawn.
pub struct Out {
    pub events: Vec<Event>,
    pub born: Option<u32>,
}

pub fn kind_of(mode: u32) -> ObjKind {
    match mode & 0o170000 {
        0o100000 => ObjKind::File,
        0o040000 => ObjKind::Dir,
        0o120000 => ObjKind::Symlink,
        0o010000 => ObjKind::Pipe,
        0o140000 => ObjKind::Socket,
        0o020000 => ObjKind::CharDev,
        0o060000 => ObjKind::BlockDev,
        _ => ObjKind::Unknown,
    }
}

/// The kernel's internal dev_t as `stat` reports it (new_encode_dev).
pub fn user_dev(kdev: u32) -> u64 {
    let major = (kdev >> 20) as u64;
    let minor = (kdev & 0xfffff) as u64;
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

fn named_unknown(path: &str) -> ObjRef {
    ObjRef {
        kind: ObjKind::Unknown,
        dev: 0,
        ino: 0,
        path: Some(path.to_string()),
    }
}

fn path_obj(path: &str, follow: bool) -> Option<ObjRef> {
    let md = if follow {
        std::fs::metadata(path)
    } else {
        std::fs::symlink_metadata(path)
    }
    .ok()?;
    Some(ObjRef {
        kind: kind_of(md.mode()),
        dev: md.dev(),
        ino: md.ino(),
        path: Some(path.to_string()),
    })
}

fn normalize(p: &Path) -> String {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(s) => out.push(s),
            _ => {}
        }
    }
    out.to_string_lossy().into_owned()
}

/// `path` made absolute against `base`, lexically (like the ptrace recorder).
fn join(base: Option<&str>, path: &str) -> String {
    if path.starts_with('/') {
        return normalize(Path::new(path));
    }
    let base = base.unwrap_or("/");
    if path.is_empty() {
        return normalize(Path::new(base));
    }
    normalize(&Path::new(base).join(path))
}

/// A path walked in the kernel: component names, leaf first.
fn walked(data: &[u8]) -> String {
    let parts: Vec<&[u8]> = data.split(|&b| b == 0).filter(|s| !s.is_empty()).collect();
    let mut s = String::new();
    for p in parts.iter().rev() {
        s.push('/');
        s.push_str(&String::from_utf8_lossy(p));
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

fn cstr(data: &[u8]) -> String {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).into_owned()
}

struct Pieces(Vec<(u32, Vec<u8>)>);

impl Pieces {
    fn get(&self, kind: u32) -> Option<&[u8]> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| *k == kind)
            .map(|(_, d)| d.as_slice())
    }
    fn walked(&self, kind: u32) -> Option<String> {
        self.get(kind).map(walked)
    }
    /// User path argument `i` (0/1), made absolute with its base directory.
    fn path(&self, i: usize) -> Option<String> {
        let (s, b) = if i == 0 {
            (PIECE_STR0, PIECE_BASE0)
        } else {
            (PIECE_STR1, PIECE_BASE1)
        };
        let raw = cstr(self.get(s)?);
        let base = self.walked(b);
        Some(join(base.as_deref(), &raw))
    }
    fn raw(&self, i: usize) -> Option<String> {
        self.get(if i == 0 { PIECE_STR0 } else { PIECE_STR1 })
            .map(cstr)
    }
    fn sockaddr(&self) -> Option<SockAddr> {
        self.get(PIECE_SOCKADDR)
            .and_then(tomo_capture_ptrace::parse_sockaddr)
    }
}

fn seekable(k: ObjKind) -> bool {
    matches!(k, ObjKind::File | ObjKind::BlockDev)
}

fn inet(family: u16, addr: &[u8; 16], port: u16) -> Option<SockAddr> {
    let ip = match family {
        2 => IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])),
        10 => IpAddr::V6(Ipv6Addr::from(*addr)),
        _ => return None,
    };
    Some(SockAddr::Inet { ip, port })
}

impl Converter {
    pub fn new(host: Id128, boot: Id128, wall_offset: i128) -> Converter {
        Converter {
            host,
            boot,
            wall_offset,
            pieces: HashMap::new(),
            files: HashMap::new(),
            procs: HashMap::new(),
            names: HashMap::new(),
            bad_records: 0,
        }
    }

    /// Threads with strings waiting for their call, processes known: for
    /// the bounded-memory check.
    pub fn state_sizes(&self) -> (usize, usize, usize) {
        (
            self.pieces.len(),
            self.procs.len(),
            self.files.len() + self.names.len(),
        )
    }

    fn event(&self, h: &Hdr, tid: u32, op: Op, ret: i64) -> Event {
        Event {
            host: self.host,
            boot: self.boot,
            seq: 0,
            ts_ns: (h.ts as i128 + self.wall_offset).max(0) as u64,
            proc: ProcRef {
                pid: h.tgid,
                tid,
                ppid: h.ppid,
                start_ticks: h.start_ns / 10_000_000,
            },
            cred: Cred {
                uid: h.uid,
                gid: h.gid,
                euid: h.euid,
                egid: h.egid,
            },
            op,
            ret,
        }
    }

    /// The resolved object behind a kernel file, with the name the agent
    /// knows for it (from its open, or from /proc while the process lives).
    fn obj(&mut self, pid: u32, fd: i32, k: &KObj) -> ObjRef {
        if k.file == 0 {
            return ObjRef::unknown();
        }
        if k.magic == ANON_INODE_FS_MAGIC {
            return ObjRef {
                kind: ObjKind::Anon,
                dev: 0,
                ino: 0,
                path: Some("anon_inode:".into()),
            };
        }
        let kind = kind_of(k.mode);
        let path = if matches!(kind, ObjKind::Pipe | ObjKind::Socket) {
            None
        } else {
            match self.files.get(&k.file) {
                Some(f) if f.dev == k.dev && f.ino == k.ino && f.path.is_some() => f.path.clone(),
                _ => {
                    let p = std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                        .ok()
                        .map(|t| t.to_string_lossy().into_owned())
                        .filter(|t| t.starts_with('/'))
                        .map(|t| t.strip_suffix(" (deleted)").unwrap_or(&t).to_string());
                    let fi = self.file_mut(k);
                    if p.is_some() {
                        fi.path = p.clone();
                    }
                    p
                }
            }
        };
        ObjRef {
            kind,
            dev: user_dev(k.dev),
            ino: k.ino,
            path,
        }
    }

    /// The cache entry of a kernel file, started over if the pointer now
    /// names another object (a freed and reused `struct file`).
    fn file_mut(&mut self, k: &KObj) -> &mut FileInfo {
        if self.files.len() >= MAX_FILES && !self.files.contains_key(&k.file) {
            self.files.clear();
        }
        let e = self.files.entry(k.file).or_default();
        if e.dev != k.dev || e.ino != k.ino {
            *e = FileInfo {
                dev: k.dev,
                ino: k.ino,
                ..Default::default()
            };
        }
        e
    }

    /// A freshly created open file (open, pipe, socket, accept).
    fn install(&mut self, k: &KObj, path: Option<String>) {
        if k.file == 0 {
            return;
        }
        let fi = self.file_mut(k);
        *fi = FileInfo {
            dev: k.dev,
            ino: k.ino,
            path,
            ..Default::default()
        };
    }

    fn sock_info(&mut self, k: &KObj) -> SockInfo {
        let s = &k.sk;
        let (mut local, mut peer) = (
            inet(s.family, &s.laddr, s.lport),
            if s.rport != 0 {
                inet(s.family, &s.raddr, s.rport)
            } else {
                None
            },
        );
        if s.family == 1 {
            // AF_UNIX names are not read in the kernel: use what bind and
            // connect asked for.
            let fi = self.file_mut(k);
            local = Some(fi.local.clone().unwrap_or(SockAddr::Unnamed));
            peer = fi.peer.clone();
        }
        SockInfo {
            domain: s.family,
            sock_type: s.typ,
            protocol: s.proto,
            local,
            peer,
        }
    }

    /// The offset an I/O started at; advances stream offsets.
    #[allow(clippy::too_many_arguments)]
    fn offset(
        &mut self,
        k: &KObj,
        kind: ObjKind,
        explicit: Option<u64>,
        dir: Dir,
        pos_after: u64,
        count: u64,
        consume: bool,
        at_exit: bool,
    ) -> Option<u64> {
        if let Some(o) = explicit {
            return Some(o);
        }
        if seekable(kind) {
            if at_exit || (dir == Dir::Write && k.flags & O_APPEND != 0) {
                // `pos_after` (or, read at exit, `k.pos`) is past the bytes moved.
                let after = if at_exit { k.pos } else { pos_after };
                return Some(after.saturating_sub(count));
            }
            return Some(k.pos);
        }
        if matches!(kind, ObjKind::Pipe | ObjKind::Socket) && k.file != 0 {
            let fi = self.file_mut(k);
            let c = if dir == Dir::Read {
                &mut fi.rd
            } else {
                &mut fi.wr
            };
            let start = *c;
            if consume {
                *c += count;
            }
            return Some(start);
        }
        None
    }

    fn remember_name(&mut self, path: &str, o: &ObjRef) {
        if o.ino == 0 || matches!(o.kind, ObjKind::Pipe | ObjKind::Socket | ObjKind::Anon) {
            return;
        }
        if self.names.len() >= MAX_NAMES && !self.names.contains_key(path) {
            self.names.clear();
        }
        self.names.insert(path.to_string(), o.clone());
    }

    /// The object last known by `path`, named `path`.
    fn by_name(&self, path: &str) -> Option<ObjRef> {
        self.names.get(path).map(|o| ObjRef {
            path: Some(path.to_string()),
            ..o.clone()
        })
    }

    /// Process identity and, for one seen for the first time, an Observed event.
    fn note_proc(&mut self, h: &Hdr, out: &mut Vec<Event>) {
        let start_ticks = h.start_ns / 10_000_000;
        match self.procs.get(&h.tgid) {
            Some(p) if p.start_ticks == start_ticks => {}
            _ => {
                if self.procs.len() >= MAX_PROCS {
                    // Exits that were lost leave entries behind: start over.
                    self.procs.clear();
                }
                self.procs.insert(
                    h.tgid,
                    ProcInfo {
                        ppid: h.ppid,
                        start_ticks,
                    },
                );
                // Running before the agent started: say what it is.
                let pid = h.tgid;
                let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
                    .ok()
                    .map(|p| p.to_string_lossy().into_owned());
                let argv = std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|b| {
                        b.split(|&c| c == 0)
                            .filter(|s| !s.is_empty())
                            .map(|s| String::from_utf8_lossy(s).into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"))
                    .ok()
                    .map(|p| p.to_string_lossy().into_owned());
                out.push(self.event(h, h.tgid, Op::Observed { exe, argv, cwd }, 0));
            }
        }
    }

    /// Convert one ring-buffer record.
    pub fn record(&mut self, raw: &[u8]) -> Out {
        let mut out = Out {
            events: Vec::new(),
            born: None,
        };
        let Some((h, body)) = parse(raw) else {
            self.bad_records += 1;
            return out;
        };
        match body {
            Body::Piece { kind, data } => {
                if self.pieces.len() >= MAX_PIECE_THREADS && !self.pieces.contains_key(&h.tid) {
                    self.pieces.clear();
                }
                self.pieces.entry(h.tid).or_default().push((kind, data));
            }
            Body::Fork(f) => {
                self.note_proc(&h, &mut out.events);
                let pieces = self.pieces.remove(&h.tid);
                drop(pieces);
                let call = tomo_capture_ptrace::call_of(f.nr as i64).unwrap_or(Call::clone);
                let flags = match call {
                    Call::fork => libc::SIGCHLD as u64,
                    Call::vfork => (libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD) as u64,
                    _ => f.flags,
                };
                let thread = f.child_tgid == h.tgid;
                let kind = if thread {
                    SpawnKind::Thread
                } else if f.vfork || call == Call::vfork {
                    SpawnKind::Vfork
                } else {
                    SpawnKind::Process
                };
                let child = if thread {
                    ProcRef {
                        pid: h.tgid,
                        tid: f.child_tid,
                        ppid: h.ppid,
                        start_ticks: h.start_ns / 10_000_000,
                    }
                } else {
                    let start_ticks = f.child_start_ns / 10_000_000;
                    self.procs.insert(
                        f.child_tgid,
                        ProcInfo {
                            ppid: f.child_ppid,
                            start_ticks,
                        },
                    );
                    out.born = Some(f.child_tgid);
                    ProcRef {
                        pid: f.child_tgid,
                        tid: f.child_tid,
                        ppid: f.child_ppid,
                        start_ticks,
                    }
                };
                let op = Op::Spawn {
                    call,
                    kind,
                    child,
                    flags,
                };
                out.events
                    .push(self.event(&h, h.tid, op, f.child_tid as i64));
            }
            Body::Exec(x) => {
                self.note_proc(&h, &mut out.events);
                let p = Pieces(self.pieces.remove(&h.tid).unwrap_or_default());
                self.pieces.remove(&x.old_tid);
                let exe_path = p.walked(PIECE_EXE);
                let mut exe = self.obj(h.tgid, -1, &x.exe);
                if exe_path.is_some() {
                    exe.path = exe_path;
                }
                let argv = p
                    .get(PIECE_ARGS)
                    .map(|b| {
                        b.split(|&c| c == 0)
                            .filter(|s| !s.is_empty())
                            .map(|s| String::from_utf8_lossy(s).into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                let call = match tomo_capture_ptrace::call_of(h.nr as i64) {
                    Some(c @ (Call::execve | Call::execveat)) => c,
                    _ => Call::execve,
                };
                let op = Op::Exec {
                    call,
                    exe,
                    argv,
                    env: None,
                    cwd: p.walked(PIECE_CWD),
                };
                out.events.push(self.event(&h, h.tid, op, 0));
            }
            Body::Exit(x) => {
                self.pieces.remove(&h.tid);
                if x.nr == SYS_EXIT {
                    self.note_proc(&h, &mut out.events);
                    let op = Op::Exit {
                        call: Call::exit,
                        code: x.arg0 as i32,
                        signal: None,
                    };
                    out.events.push(self.event(&h, h.tid, op, 0));
                }
                if x.group_dead {
                    self.note_proc(&h, &mut out.events);
                    let sig = x.status & 0x7f;
                    let (code, signal) = if sig != 0 {
                        (0, Some(sig))
                    } else {
                        ((x.status >> 8) & 0xff, None)
                    };
                    let op = Op::Exit {
                        call: Call::exit_group,
                        code,
                        signal,
                    };
                    out.events.push(self.event(&h, h.tgid, op, 0));
                    self.procs.remove(&h.tgid);
                }
            }
            Body::Sys(r) => {
                let p = Pieces(self.pieces.remove(&h.tid).unwrap_or_default());
                let Some(call) = tomo_capture_ptrace::call_of(h.nr as i64) else {
                    return out;
                };
                if r.ret >= 0
                    && matches!(call, Call::fork | Call::vfork | Call::clone | Call::clone3)
                {
                    // Reported by the sched_process_fork record.
                    return out;
                }
                self.note_proc(&h, &mut out.events);
                for (op, ret) in self.sys_op(&h, call, &r, &p).unwrap_or_default() {
                    let ev = self.event(&h, h.tid, op, ret);
                    out.events.push(ev);
                }
            }
        }
        out
    }

    fn sys_op(&mut self, h: &Hdr, call: Call, r: &SysRec, p: &Pieces) -> Option<Vec<(Op, i64)>> {
        let a = r.args;
        let ret = r.ret;
        let ok = ret >= 0;
        let pid = h.tgid;
        let fd_arg = |i: usize| a[i] as u32 as i32;
        let path0 = || p.path(0).unwrap_or_default();
        let op = match call {
            Call::fork | Call::vfork | Call::clone | Call::clone3 => {
                let flags = match call {
                    Call::clone => a[0],
                    Call::clone3 => r.u64v[0],
                    _ => 0,
                };
                Op::Spawn {
                    call,
                    kind: if flags & CLONE_THREAD != 0 {
                        SpawnKind::Thread
                    } else {
                        SpawnKind::Process
                    },
                    child: Default::default(),
                    flags,
                }
            }
            Call::execve | Call::execveat => Op::Exec {
                call,
                exe: named_unknown(&path0()),
                argv: Vec::new(),
                env: None,
                cwd: None,
            },
            Call::kill | Call::tkill | Call::tgkill => {
                let (target_tid, sig) = match call {
                    Call::tgkill => (a[1] as u32 as i32, a[2] as i32),
                    _ => (a[0] as u32 as i32, a[1] as i32),
                };
                if target_tid <= 0 {
                    return None;
                }
                let tpid = match call {
                    Call::tgkill => a[0] as u32,
                    Call::tkill => tgid_of(target_tid as u32),
                    _ => target_tid as u32,
                };
                let (ppid, start_ticks) = match self.procs.get(&tpid) {
                    Some(i) => (i.ppid, i.start_ticks),
                    None => stat_ids(tpid).unwrap_or((0, 0)),
                };
                Op::Kill {
                    call,
                    target: ProcRef {
                        pid: tpid,
                        tid: target_tid as u32,
                        ppid,
                        start_ticks,
                    },
                    signal: sig,
                }
            }
            Call::open | Call::creat | Call::openat | Call::openat2 => {
                let path = path0();
                let fd = if ok { ret as i32 } else { -1 };
                let (flags, mode) = match call {
                    Call::open => (a[1] as u32, a[2] as u32),
                    Call::creat => (O_CREAT | O_TRUNC | 1, a[1] as u32),
                    Call::openat => (a[2] as u32, a[3] as u32),
                    _ => (r.u64v[0] as u32, 0),
                };
                let obj = if ok && r.rfd[0].file != 0 {
                    let kpath = p.walked(PIECE_RFD);
                    self.install(&r.rfd[0], kpath.clone());
                    let mut o = self.obj(pid, fd, &r.rfd[0]);
                    if o.path.is_none() && !matches!(o.kind, ObjKind::Pipe | ObjKind::Socket) {
                        o.path = Some(path.clone());
                    }
                    o
                } else {
                    named_unknown(&path)
                };
                if ok {
                    self.remember_name(&path, &obj);
                    if let Some(k) = obj.path.clone() {
                        self.remember_name(&k, &obj);
                    }
                }
                let created = ok
                    && obj.kind == ObjKind::File
                    && (r.rfd[0].fmode & FMODE_CREATED != 0 || flags & O_TMPFILE == O_TMPFILE);
                Op::Open {
                    call,
                    fd,
                    obj,
                    flags,
                    mode,
                    created,
                }
            }
            Call::close => {
                let obj = self.obj(pid, fd_arg(0), &r.fd[0]);
                // The last reference is gone: forget the description (its
                // `struct file` may be reused for another).
                if ok && r.fd[0].file != 0 && r.u64v[0] == 1 {
                    self.files.remove(&r.fd[0].file);
                }
                Op::Close {
                    call,
                    fd: fd_arg(0),
                    obj,
                }
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
                let fd = fd_arg(0);
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
                let count = if ok { ret as u64 } else { 0 };
                let k = r.fd[0];
                let obj = self.obj(pid, fd, &k);
                if obj.kind == ObjKind::Anon {
                    return None;
                }
                let offset = self.offset(
                    &k,
                    obj.kind,
                    explicit,
                    dir,
                    r.pos_after[0],
                    count,
                    true,
                    r.at_exit,
                );
                let sock = (obj.kind == ObjKind::Socket).then(|| {
                    let mut s = self.sock_info(&k);
                    let addr = match call {
                        Call::recvfrom | Call::recvmsg if ok => p.sockaddr(),
                        Call::sendto | Call::sendmsg => p.sockaddr(),
                        _ => None,
                    };
                    if let Some(addr) = addr {
                        s.peer = Some(addr);
                    }
                    s
                });
                Op::Io {
                    call,
                    dir,
                    fd,
                    obj,
                    offset,
                    count,
                    sock,
                }
            }
            Call::sendmmsg | Call::recvmmsg => {
                let fd = fd_arg(0);
                let dir = if call == Call::recvmmsg {
                    Dir::Read
                } else {
                    Dir::Write
                };
                let k = r.fd[0];
                let obj = self.obj(pid, fd, &k);
                if obj.kind == ObjKind::Anon {
                    return None;
                }
                // One event per message: each may have its own peer (UDP).
                let msgs: Vec<(u64, Option<SockAddr>)> = if ok {
                    p.get(PIECE_MMSG)
                        .unwrap_or_default()
                        .chunks_exact(8 + MMSG_SA)
                        .map(|m| {
                            let len = u32::from_ne_bytes([m[0], m[1], m[2], m[3]]) as u64;
                            let nl = (u32::from_ne_bytes([m[4], m[5], m[6], m[7]]) as usize)
                                .min(MMSG_SA);
                            (len, tomo_capture_ptrace::parse_sockaddr(&m[8..8 + nl]))
                        })
                        .collect()
                } else {
                    vec![(0, None)]
                };
                let mut ops = Vec::new();
                for (len, addr) in msgs {
                    let offset = self.offset(&k, obj.kind, None, dir, 0, len, true, false);
                    let sock = (obj.kind == ObjKind::Socket).then(|| {
                        let mut s = self.sock_info(&k);
                        if addr.is_some() {
                            s.peer = addr;
                        }
                        s
                    });
                    ops.push((
                        Op::Io {
                            call,
                            dir,
                            fd,
                            obj: obj.clone(),
                            offset,
                            count: len,
                            sock,
                        },
                        if ok { len as i64 } else { ret },
                    ));
                }
                return Some(ops);
            }
            Call::sendfile | Call::splice | Call::tee | Call::copy_file_range => {
                let (src_fd, dst_fd) = match call {
                    Call::sendfile => (fd_arg(1), fd_arg(0)),
                    Call::tee => (fd_arg(0), fd_arg(1)),
                    _ => (fd_arg(0), fd_arg(2)),
                };
                let (off_in, off_out) = match call {
                    Call::sendfile => ((a[2] != 0).then_some(r.u64v[0]), None),
                    Call::splice | Call::copy_file_range => (
                        (a[1] != 0).then_some(r.u64v[0]),
                        (a[3] != 0).then_some(r.u64v[1]),
                    ),
                    _ => (None, None),
                };
                let count = if ok { ret as u64 } else { 0 };
                let (ks, kd) = (r.fd[0], r.fd[1]);
                let src = self.obj(pid, src_fd, &ks);
                let dst = self.obj(pid, dst_fd, &kd);
                if src.kind == ObjKind::Anon || dst.kind == ObjKind::Anon {
                    return None;
                }
                let consume = call != Call::tee;
                let src_offset = self.offset(
                    &ks,
                    src.kind,
                    off_in,
                    Dir::Read,
                    r.pos_after[0],
                    count,
                    consume,
                    r.at_exit,
                );
                let dst_offset = self.offset(
                    &kd,
                    dst.kind,
                    off_out,
                    Dir::Write,
                    r.pos_after[1],
                    count,
                    true,
                    r.at_exit,
                );
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
            Call::mmap => Op::Mmap {
                call,
                fd: fd_arg(4),
                obj: self.obj(pid, fd_arg(4), &r.fd[0]),
                offset: a[5],
                len: a[1],
                prot: a[2] as u32,
                flags: a[3] as u32,
            },
            Call::dup | Call::dup2 | Call::dup3 | Call::fcntl => Op::Dup {
                call,
                old_fd: fd_arg(0),
                new_fd: if ok { ret as i32 } else { -1 },
                obj: self.obj(pid, fd_arg(0), &r.fd[0]),
            },
            Call::pipe | Call::pipe2 => {
                let fds = if ok { r.pair } else { [-1, -1] };
                let obj = if ok {
                    self.install(&r.rfd[0], None);
                    self.install(&r.rfd[1], None);
                    self.obj(pid, fds[0], &r.rfd[0])
                } else {
                    ObjRef::unknown()
                };
                Op::Pipe {
                    call,
                    read_fd: fds[0],
                    write_fd: fds[1],
                    obj,
                }
            }
            Call::rename | Call::renameat | Call::renameat2 => {
                let old_path = path0();
                let new_path = p.path(1).unwrap_or_default();
                // The inodes come from fentry/vfs_rename (when attached).
                let obj = inode_obj(&r.fd[0], &old_path)
                    .or_else(|| self.by_name(&old_path))
                    .or_else(|| path_obj(&old_path, false))
                    .or_else(|| {
                        // Renamed already: what now has the new name.
                        path_obj(&new_path, false).filter(|_| ok).map(|o| ObjRef {
                            path: Some(old_path.clone()),
                            ..o
                        })
                    })
                    .unwrap_or_else(|| named_unknown(&old_path));
                let replaced = inode_obj(&r.fd[1], &new_path)
                    .or_else(|| self.by_name(&new_path))
                    .filter(|n| (n.dev, n.ino) != (obj.dev, obj.ino));
                if ok {
                    self.names.remove(&old_path);
                    self.remember_name(&new_path, &obj);
                }
                Op::Rename {
                    call,
                    old_path,
                    new_path,
                    obj,
                    replaced,
                }
            }
            Call::link | Call::linkat | Call::symlink | Call::symlinkat => {
                let new_path = p.path(1).unwrap_or_default();
                let symbolic = matches!(call, Call::symlink | Call::symlinkat);
                let obj = if ok { path_obj(&new_path, false) } else { None }
                    .unwrap_or_else(|| named_unknown(&new_path));
                let target = if symbolic { p.raw(0) } else { p.path(0) }.unwrap_or_default();
                self.remember_name(&new_path, &obj);
                Op::Link {
                    call,
                    target,
                    new_path,
                    obj,
                    symbolic,
                }
            }
            Call::unlink | Call::rmdir | Call::unlinkat => {
                let path = path0();
                let dir =
                    call == Call::rmdir || (call == Call::unlinkat && a[2] & AT_REMOVEDIR != 0);
                let obj = inode_obj(&r.fd[0], &path)
                    .or_else(|| self.by_name(&path))
                    .unwrap_or_else(|| named_unknown(&path));
                if ok {
                    self.names.remove(&path);
                }
                Op::Unlink {
                    call,
                    obj,
                    path,
                    dir,
                }
            }
            Call::mkdir | Call::mkdirat => {
                let path = path0();
                let mode = if call == Call::mkdir { a[1] } else { a[2] } as u32;
                let obj = if ok { path_obj(&path, false) } else { None }
                    .unwrap_or_else(|| named_unknown(&path));
                self.remember_name(&path, &obj);
                Op::Mkdir {
                    call,
                    path,
                    obj,
                    mode,
                }
            }
            Call::mknod | Call::mknodat => {
                let path = path0();
                let (mode, rdev) = if call == Call::mknod {
                    (a[1], a[2])
                } else {
                    (a[2], a[3])
                };
                let obj = if ok { path_obj(&path, false) } else { None }
                    .unwrap_or_else(|| named_unknown(&path));
                self.remember_name(&path, &obj);
                Op::Mknod {
                    call,
                    path,
                    obj,
                    mode: mode as u32,
                    rdev,
                }
            }
            Call::truncate => {
                let path = path0();
                Op::Truncate {
                    call,
                    fd: None,
                    obj: path_obj(&path, true).unwrap_or_else(|| named_unknown(&path)),
                    length: a[1],
                }
            }
            Call::ftruncate => Op::Truncate {
                call,
                fd: Some(fd_arg(0)),
                obj: self.obj(pid, fd_arg(0), &r.fd[0]),
                length: a[1],
            },
            Call::chmod | Call::fchmodat => {
                let path = path0();
                let mode = if call == Call::chmod { a[1] } else { a[2] } as u32;
                let follow = !(call == Call::fchmodat && a[3] & AT_SYMLINK_NOFOLLOW != 0);
                Op::Chmod {
                    call,
                    fd: None,
                    obj: path_obj(&path, follow).unwrap_or_else(|| named_unknown(&path)),
                    mode,
                }
            }
            Call::fchmod => Op::Chmod {
                call,
                fd: Some(fd_arg(0)),
                obj: self.obj(pid, fd_arg(0), &r.fd[0]),
                mode: a[1] as u32,
            },
            Call::chown | Call::lchown | Call::fchownat => {
                let path = path0();
                let (uid, gid, follow) = match call {
                    Call::chown => (a[1], a[2], true),
                    Call::lchown => (a[1], a[2], false),
                    _ => (a[2], a[3], a[4] & AT_SYMLINK_NOFOLLOW == 0),
                };
                Op::Chown {
                    call,
                    fd: None,
                    obj: path_obj(&path, follow).unwrap_or_else(|| named_unknown(&path)),
                    uid: uid as u32,
                    gid: gid as u32,
                }
            }
            Call::fchown => Op::Chown {
                call,
                fd: Some(fd_arg(0)),
                obj: self.obj(pid, fd_arg(0), &r.fd[0]),
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
                let asked = if call == Call::chdir {
                    p.path(0)
                } else {
                    p.walked(PIECE_FD0)
                };
                let path = if ok { p.walked(PIECE_CWD) } else { asked }.unwrap_or_default();
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
                    self.install(&r.rfd[0], None);
                    self.obj(pid, fd, &r.rfd[0])
                } else {
                    ObjRef::unknown()
                };
                Op::Socket {
                    call,
                    fd,
                    obj,
                    sock,
                }
            }
            Call::socketpair => {
                let fds = if ok { r.pair } else { [-1, -1] };
                let objs = if ok {
                    self.install(&r.rfd[0], None);
                    self.install(&r.rfd[1], None);
                    [
                        self.obj(pid, fds[0], &r.rfd[0]),
                        self.obj(pid, fds[1], &r.rfd[1]),
                    ]
                } else {
                    [ObjRef::unknown(), ObjRef::unknown()]
                };
                Op::SocketPair {
                    call,
                    fds,
                    objs,
                    sock: SockInfo {
                        domain: a[0] as u16,
                        sock_type: (a[1] & 0xf) as u16,
                        protocol: a[2] as u16,
                        local: Some(SockAddr::Unnamed),
                        peer: Some(SockAddr::Unnamed),
                    },
                }
            }
            Call::bind => {
                let fd = fd_arg(0);
                let k = r.fd[0];
                let asked = p.sockaddr();
                if ok && k.sk.family == 1 && k.file != 0 {
                    self.file_mut(&k).local = asked.clone();
                }
                let obj = self.obj(pid, fd, &k);
                let bound = if ok { self.sock_info(&k).local } else { None };
                Op::Bind {
                    call,
                    fd,
                    obj,
                    addr: bound.or(asked).unwrap_or(SockAddr::Unnamed),
                }
            }
            Call::listen => Op::Listen {
                call,
                fd: fd_arg(0),
                obj: self.obj(pid, fd_arg(0), &r.fd[0]),
                backlog: a[1] as i32,
            },
            Call::connect => {
                let fd = fd_arg(0);
                let k = r.fd[0];
                let asked = p.sockaddr();
                if k.sk.family == 1 && k.file != 0 && (ok || ret == -115) {
                    self.file_mut(&k).peer = asked.clone();
                }
                let obj = self.obj(pid, fd, &k);
                let mut sock = if k.file != 0 {
                    self.sock_info(&k)
                } else {
                    SockInfo {
                        domain: 0,
                        sock_type: 0,
                        protocol: 0,
                        local: None,
                        peer: None,
                    }
                };
                if asked.is_some() {
                    sock.peer = asked;
                }
                Op::Connect {
                    call,
                    fd,
                    obj,
                    sock,
                }
            }
            Call::accept | Call::accept4 => {
                let fd = fd_arg(0);
                let new_fd = if ok { ret as i32 } else { -1 };
                let listen_obj = self.obj(pid, fd, &r.fd[0]);
                let (obj, sock) = if ok {
                    self.install(&r.rfd[0], None);
                    let mut sock = self.sock_info(&r.rfd[0]);
                    if r.rfd[0].sk.family == 1 {
                        // An accepted UNIX socket has the listener's name.
                        let l = self.sock_info(&r.fd[0]).local;
                        self.file_mut(&r.rfd[0]).local = l.clone();
                        sock.local = l;
                        sock.peer = Some(SockAddr::Unnamed);
                    }
                    (self.obj(pid, new_fd, &r.rfd[0]), sock)
                } else {
                    (
                        ObjRef::unknown(),
                        SockInfo {
                            domain: 0,
                            sock_type: 0,
                            protocol: 0,
                            local: None,
                            peer: None,
                        },
                    )
                };
                Op::Accept {
                    call,
                    fd,
                    new_fd,
                    listen_obj,
                    obj,
                    sock,
                }
            }
            _ => return None,
        };
        Some(vec![(op, ret)])
    }
}

/// An object known by its inode only (from an fentry hook), with its name.
fn inode_obj(k: &KObj, path: &str) -> Option<ObjRef> {
    (k.ino != 0).then(|| ObjRef {
        kind: kind_of(k.mode),
        dev: user_dev(k.dev),
        ino: k.ino,
        path: Some(path.to_string()),
    })
}

fn tgid_of(tid: u32) -> u32 {
    std::fs::read_to_string(format!("/proc/{tid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Tgid:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(tid)
}

fn stat_ids(pid: u32) -> Option<(u32, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((f.get(1)?.parse().ok()?, f.get(19)?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_devs() {
        assert_eq!(walked(b"c\0b\0a\0"), "/a/b/c");
        assert_eq!(walked(b""), "/");
        assert_eq!(join(Some("/a/b"), "../c/./d"), "/a/c/d");
        assert_eq!(join(Some("/x"), "/abs"), "/abs");
        // 8:1 (sda1): kernel (8 << 20 | 1) is 0x801 for stat.
        assert_eq!(user_dev(8 << 20 | 1), 0x801);
        assert_eq!(kind_of(0o100644), ObjKind::File);
    }
}

//! The process and descriptor model behind the strace importer, and the
//! mapping of each traced call onto the operation the ptrace recorder
//! reports for it.
//!
//! `-yy` names the object behind every descriptor a call mentions, but not
//! its identity: strace prints no device or inode numbers for files (and
//! none for connected INET sockets). So:
//! * files get a synthetic inode per *path* (device 0): allocated when a
//!   path is first seen, moved by rename (with everything under a renamed
//!   directory), forgotten by unlink — a file created later at that path
//!   is a new entity;
//! * pipes and UNIX sockets keep the kernel inode strace prints
//!   (`pipe:[123]`); INET sockets keep the inode printed at `socket()` (in
//!   the descriptor model) or, for descriptors never seen created, a
//!   hash of the addresses;
//! * processes get `start_ticks` from the time they were first seen
//!   (spawn, or first line), in 10 ms ticks since the epoch, never 0, so
//!   a pid reused within one trace is a new process.
//!
//! Offsets come from the descriptor model (positions follow reads, writes,
//! lseek; shared by dup and fork like the kernel's open file descriptions),
//! and are unknown (`None`) for descriptors inherited from before the trace
//! until an lseek sets them.

use crate::line::{self, Deco, Syscall};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use tomo_event::{
    Call, Cred, Dir, Event, Id128, ObjKind, ObjRef, Op, ProcRef, SockAddr, SockInfo, SpawnKind,
};

#[derive(Clone, Debug)]
struct Ofd {
    obj: ObjRef,
    pos: Option<u64>,
    append: bool,
    rd: u64,
    wr: u64,
    sock: Option<SockInfo>,
}

impl Ofd {
    fn new(obj: ObjRef, sock: Option<SockInfo>, pos: Option<u64>) -> Ofd {
        Ofd {
            obj,
            pos,
            append: false,
            rd: 0,
            wr: 0,
            sock,
        }
    }
}

#[derive(Clone)]
struct FdEntry {
    ofd: Rc<RefCell<Ofd>>,
    cloexec: bool,
}

type FdTable = HashMap<i32, FdEntry>;

struct Proc {
    ppid: u32,
    start_ticks: u64,
    fds: Rc<RefCell<FdTable>>,
    cwd: Option<String>,
}

/// Counters of the call mapping.
#[derive(Default, Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MapStats {
    /// Calls turned into events.
    pub mapped: u64,
    /// Calls of names Tomo does not map (stat, mprotect, futex, …).
    pub unmapped: u64,
    /// Calls on a descriptor strace did not decorate and the model never
    /// saw (run strace with -yy): skipped.
    pub unknown_fd: u64,
    /// Processes that appeared without a spawn in the trace (attached with
    /// -p, or whose fork line is missing).
    pub roots: u64,
    pub processes: u64,
    pub threads: u64,
}

const O_CREAT: u64 = 0o100;
const O_EXCL: u64 = 0o200;
const O_TRUNC: u64 = 0o1000;
const O_APPEND: u64 = 0o2000;
const O_DIRECTORY: u64 = 0o200000;
const O_CLOEXEC: u64 = 0o2000000;
const O_TMPFILE: u64 = 0o20000000 | O_DIRECTORY;

const OPEN_FLAGS: &[(&str, u64)] = &[
    ("O_RDONLY", 0),
    ("O_WRONLY", 1),
    ("O_RDWR", 2),
    ("O_CREAT", O_CREAT),
    ("O_EXCL", O_EXCL),
    ("O_NOCTTY", 0o400),
    ("O_TRUNC", O_TRUNC),
    ("O_APPEND", O_APPEND),
    ("O_NONBLOCK", 0o4000),
    ("O_DSYNC", 0o10000),
    ("O_SYNC", 0o4010000),
    ("O_DIRECT", 0o40000),
    ("O_LARGEFILE", 0),
    ("O_DIRECTORY", O_DIRECTORY),
    ("O_NOFOLLOW", 0o400000),
    ("O_NOATIME", 0o1000000),
    ("O_CLOEXEC", O_CLOEXEC),
    ("O_PATH", 0o10000000),
    ("O_TMPFILE", O_TMPFILE),
];

const CLONE_FLAGS: &[(&str, u64)] = &[
    ("CLONE_VM", 0x100),
    ("CLONE_FS", 0x200),
    ("CLONE_FILES", 0x400),
    ("CLONE_SIGHAND", 0x800),
    ("CLONE_PIDFD", 0x1000),
    ("CLONE_PTRACE", 0x2000),
    ("CLONE_VFORK", 0x4000),
    ("CLONE_PARENT", 0x8000),
    ("CLONE_THREAD", 0x10000),
    ("CLONE_NEWNS", 0x20000),
    ("CLONE_SYSVSEM", 0x40000),
    ("CLONE_SETTLS", 0x80000),
    ("CLONE_PARENT_SETTID", 0x100000),
    ("CLONE_CHILD_CLEARTID", 0x200000),
    ("CLONE_DETACHED", 0x400000),
    ("CLONE_UNTRACED", 0x800000),
    ("CLONE_CHILD_SETTID", 0x1000000),
    ("SIGCHLD", 17),
];
const CLONE_FILES: u64 = 0x400;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_THREAD: u64 = 0x10000;

const PROT: &[(&str, u64)] = &[
    ("PROT_NONE", 0),
    ("PROT_READ", 1),
    ("PROT_WRITE", 2),
    ("PROT_EXEC", 4),
];
const MAP: &[(&str, u64)] = &[
    ("MAP_SHARED", 1),
    ("MAP_PRIVATE", 2),
    ("MAP_SHARED_VALIDATE", 3),
    ("MAP_FIXED", 0x10),
    ("MAP_ANONYMOUS", 0x20),
    ("MAP_DENYWRITE", 0x800),
];
const SOCK_TYPES: &[(&str, u64)] = &[
    ("SOCK_STREAM", 1),
    ("SOCK_DGRAM", 2),
    ("SOCK_RAW", 3),
    ("SOCK_SEQPACKET", 5),
    ("SOCK_NONBLOCK", 0o4000),
    ("SOCK_CLOEXEC", 0o2000000),
];
const DOMAINS: &[(&str, u64)] = &[
    ("AF_UNIX", 1),
    ("AF_LOCAL", 1),
    ("AF_INET", 2),
    ("AF_INET6", 10),
    ("AF_NETLINK", 16),
    ("AF_PACKET", 17),
];
const PROTOS: &[(&str, u64)] = &[
    ("IPPROTO_IP", 0),
    ("IPPROTO_TCP", 6),
    ("IPPROTO_UDP", 17),
    ("IPPROTO_ICMP", 1),
    ("IPPROTO_ICMPV6", 58),
];

fn fnv(s: &[u8]) -> u64 {
    s.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// `path` made absolute against `base` and cleaned of `.` and `..`.
pub fn join(base: Option<&str>, path: &str) -> String {
    let full = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{}", base.unwrap_or(""), path)
    };
    let mut parts: Vec<&str> = Vec::new();
    for seg in full.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

fn sock_facts(proto: &str) -> (u16, u16, u16) {
    let domain = if proto.starts_with("UNIX") {
        1
    } else if proto.ends_with("v6") {
        10
    } else if proto.starts_with("NETLINK") {
        16
    } else if proto == "socket" {
        0
    } else {
        2
    };
    let (ty, p) = match proto {
        "TCP" | "TCPv6" => (1, 6),
        "UDP" | "UDPv6" | "UDPLITE" | "UDPLITEv6" => (2, 17),
        "UNIX-STREAM" => (1, 0),
        "UNIX-DGRAM" => (2, 0),
        "UNIX-SEQPACKET" => (5, 0),
        "RAW" | "RAWv6" => (3, 0),
        _ => (0, 0),
    };
    (domain, ty, p)
}

/// Events of the trace, in the order strace saw the calls finish.
pub struct Model {
    host: Id128,
    boot: Id128,
    procs: HashMap<u32, Proc>,
    threads: HashMap<u32, u32>,
    paths: HashMap<String, (u64, ObjKind)>,
    /// Paths this trace knows do not exist (unlinked, renamed away, or a
    /// failed open said ENOENT): an O_CREAT open of one creates it.
    absent: HashSet<String>,
    next_ino: u64,
    seq: u64,
    pub stats: MapStats,
}

impl Model {
    pub fn new(host: Id128, boot: Id128) -> Model {
        Model {
            host,
            boot,
            procs: HashMap::new(),
            threads: HashMap::new(),
            paths: HashMap::new(),
            absent: HashSet::new(),
            next_ino: 1,
            seq: 0,
            stats: MapStats::default(),
        }
    }

    /// Whether `tid` belongs to a process the model knows.
    pub fn knows(&self, tid: u32) -> bool {
        self.threads.contains_key(&tid)
    }

    fn tgid(&self, tid: u32) -> u32 {
        self.threads.get(&tid).copied().unwrap_or(tid)
    }

    fn proc_ref(&self, tid: u32) -> ProcRef {
        let pid = self.tgid(tid);
        let p = self.procs.get(&pid);
        ProcRef {
            pid,
            tid,
            ppid: p.map(|p| p.ppid).unwrap_or(0),
            start_ticks: p.map(|p| p.start_ticks).unwrap_or(1),
        }
    }

    fn emit(&mut self, tid: u32, ts: u64, op: Op, ret: i64, out: &mut Vec<Event>) {
        self.seq += 1;
        out.push(Event {
            host: self.host,
            boot: self.boot,
            seq: self.seq,
            ts_ns: ts,
            proc: self.proc_ref(tid),
            // strace shows no credentials.
            cred: Cred {
                uid: u32::MAX,
                gid: u32::MAX,
                euid: u32::MAX,
                egid: u32::MAX,
            },
            op,
            ret,
        });
    }

    fn ticks(ts: u64) -> u64 {
        (ts / 10_000_000).max(1)
    }

    /// A process that appears without a spawn (the traced command, or one
    /// attached with -p).
    pub fn root(&mut self, pid: u32, ts: u64, out: &mut Vec<Event>) {
        self.procs.insert(
            pid,
            Proc {
                ppid: 0,
                start_ticks: Self::ticks(ts),
                fds: Rc::new(RefCell::new(HashMap::new())),
                cwd: None,
            },
        );
        self.threads.insert(pid, pid);
        self.stats.roots += 1;
        self.stats.processes += 1;
        let op = Op::Observed {
            exe: None,
            argv: Vec::new(),
            cwd: None,
        };
        self.emit(pid, ts, op, 0, out);
    }

    /// `+++ exited with N +++` / `+++ killed by SIG +++`.
    pub fn exit(
        &mut self,
        tid: u32,
        ts: u64,
        code: i32,
        signal: Option<i32>,
        out: &mut Vec<Event>,
    ) {
        if !self.threads.contains_key(&tid) {
            return;
        }
        let pid = self.tgid(tid);
        let call = if tid == pid {
            Call::exit_group
        } else {
            Call::exit
        };
        self.emit(tid, ts, Op::Exit { call, code, signal }, 0, out);
        self.threads.remove(&tid);
        if tid == pid {
            self.threads.retain(|_, g| *g != pid);
            self.procs.remove(&pid);
        }
    }

    fn new_ino(&mut self) -> u64 {
        let i = self.next_ino;
        self.next_ino += 1;
        i
    }

    fn path_obj(&mut self, path: &str, hint: Option<ObjKind>) -> ObjRef {
        let (ino, kind) = match self.paths.get_mut(path) {
            Some(e) => {
                if let Some(h) = hint {
                    if e.1 == ObjKind::File || e.1 == ObjKind::Unknown {
                        e.1 = h;
                    }
                }
                *e
            }
            None => {
                let e = (self.new_ino(), hint.unwrap_or(ObjKind::File));
                self.paths.insert(path.to_string(), e);
                e
            }
        };
        ObjRef {
            kind,
            dev: 0,
            ino,
            path: Some(path.to_string()),
        }
    }

    fn deco_obj(&mut self, d: &Deco, hint: Option<ObjKind>) -> (ObjRef, Option<SockInfo>) {
        match d {
            Deco::Path { path, device, .. } => {
                let hint = match device {
                    Some((true, ..)) => Some(ObjKind::BlockDev),
                    Some((false, ..)) => Some(ObjKind::CharDev),
                    None => hint,
                };
                (self.path_obj(path, hint), None)
            }
            Deco::Pipe(n) => (
                ObjRef {
                    kind: ObjKind::Pipe,
                    dev: 0,
                    ino: *n,
                    path: None,
                },
                None,
            ),
            Deco::Socket {
                proto,
                ino,
                local,
                peer,
                key,
            } => {
                let (domain, sock_type, protocol) = sock_facts(proto);
                let ino = ino.unwrap_or_else(|| fnv(format!("{proto}:{key}").as_bytes()) | 1 << 63);
                (
                    ObjRef {
                        kind: ObjKind::Socket,
                        dev: 0,
                        ino,
                        path: None,
                    },
                    Some(SockInfo {
                        domain,
                        sock_type,
                        protocol,
                        local: local.clone(),
                        peer: peer.clone(),
                    }),
                )
            }
            Deco::Anon => (
                ObjRef {
                    kind: ObjKind::Anon,
                    dev: 0,
                    ino: 0,
                    path: None,
                },
                None,
            ),
        }
    }

    fn table(&self, tid: u32) -> Option<Rc<RefCell<FdTable>>> {
        self.procs.get(&self.tgid(tid)).map(|p| Rc::clone(&p.fds))
    }

    fn install(&self, tid: u32, fd: i32, ofd: Ofd, cloexec: bool) -> Rc<RefCell<Ofd>> {
        let rc = Rc::new(RefCell::new(ofd));
        if let Some(t) = self.table(tid) {
            t.borrow_mut().insert(
                fd,
                FdEntry {
                    ofd: Rc::clone(&rc),
                    cloexec,
                },
            );
        }
        rc
    }

    /// The open file description behind a descriptor argument: the
    /// model's, unless the decoration says it is something else now (a
    /// descriptor inherited from before the trace, or a missed call).
    fn fd(&mut self, tid: u32, arg: &str) -> Option<(i32, Rc<RefCell<Ofd>>)> {
        let (fd, d) = line::fd_arg(arg)?;
        if fd < 0 {
            return None;
        }
        let table = self.table(tid)?;
        let cur = table.borrow().get(&fd).map(|e| Rc::clone(&e.ofd));
        let Some(d) = d else {
            return cur.map(|o| (fd, o));
        };
        if let Some(o) = &cur {
            let same = {
                let ob = o.borrow();
                match &d {
                    Deco::Path { path, .. } => {
                        ob.obj.path.as_deref() == Some(path.as_str())
                            || (ob.obj.kind != ObjKind::Pipe
                                && ob.obj.kind != ObjKind::Socket
                                && self.paths.get(path).map(|e| e.0) == Some(ob.obj.ino))
                    }
                    Deco::Pipe(n) => ob.obj.kind == ObjKind::Pipe && ob.obj.ino == *n,
                    Deco::Socket { ino, .. } => {
                        ob.obj.kind == ObjKind::Socket && ino.is_none_or(|i| i == ob.obj.ino)
                    }
                    Deco::Anon => ob.obj.kind == ObjKind::Anon,
                }
            };
            if same {
                let mut ob = o.borrow_mut();
                match &d {
                    // Renamed since it was opened: the entity keeps its
                    // identity, the decoration gives its current name.
                    Deco::Path { path, .. } if ob.obj.path.as_deref() != Some(path) => {
                        ob.obj.path = Some(path.clone());
                    }
                    Deco::Socket { local, peer, .. } => {
                        if let Some(s) = ob.sock.as_mut() {
                            if local.is_some() {
                                s.local = local.clone();
                            }
                            if peer.is_some() {
                                s.peer = peer.clone();
                            }
                        }
                    }
                    _ => {}
                }
                drop(ob);
                return Some((fd, Rc::clone(o)));
            }
        }
        let (obj, sock) = self.deco_obj(&d, None);
        let pos = if matches!(obj.kind, ObjKind::File | ObjKind::BlockDev) {
            None
        } else {
            Some(0)
        };
        let cloexec = table.borrow().get(&fd).is_some_and(|e| e.cloexec);
        Some((fd, self.install(tid, fd, Ofd::new(obj, sock, pos), cloexec)))
    }

    fn cwd(&self, tid: u32) -> Option<String> {
        self.procs.get(&self.tgid(tid)).and_then(|p| p.cwd.clone())
    }

    /// Learn the working directory from an `AT_FDCWD</cwd>` decoration.
    fn note_cwd(&mut self, tid: u32, args: &[String]) {
        for a in args {
            if let Some(rest) = a.strip_prefix("AT_FDCWD<") {
                if let Some(Deco::Path { path, .. }) = rest.strip_suffix('>').map(line::deco) {
                    let pid = self.tgid(tid);
                    if let Some(p) = self.procs.get_mut(&pid) {
                        p.cwd = Some(path);
                    }
                }
            }
        }
    }

    /// A path argument (`"name"`), relative to `dirfd` (an `AT_FDCWD</x>`
    /// or `3</x>` argument) or to the working directory.
    fn path_at(&self, tid: u32, dirfd: Option<&str>, arg: &str) -> Option<String> {
        let p = line::unquote(arg)?;
        if p.starts_with('/') {
            return Some(join(None, &p));
        }
        let base = match dirfd.and_then(line::fd_arg) {
            Some((_, Some(Deco::Path { path, .. }))) => Some(path),
            Some((fd, None)) if fd >= 0 => self.table(tid).and_then(|t| {
                t.borrow()
                    .get(&fd)
                    .and_then(|e| e.ofd.borrow().obj.path.clone())
            }),
            _ => self.cwd(tid),
        };
        Some(join(base.as_deref(), &p))
    }

    fn offset_and_advance(
        o: &Rc<RefCell<Ofd>>,
        explicit: Option<u64>,
        dir: Dir,
        n: u64,
        consume: bool,
    ) -> Option<u64> {
        let mut ob = o.borrow_mut();
        if explicit.is_some() {
            return explicit;
        }
        match ob.obj.kind {
            ObjKind::File | ObjKind::BlockDev => {
                if dir == Dir::Write && ob.append {
                    // Lands at the end, which strace does not show.
                    ob.pos = None;
                    return None;
                }
                let start = ob.pos?;
                if consume {
                    ob.pos = Some(start + n);
                }
                Some(start)
            }
            ObjKind::Pipe | ObjKind::Socket => {
                let cur = if dir == Dir::Read {
                    &mut ob.rd
                } else {
                    &mut ob.wr
                };
                let start = *cur;
                if consume {
                    *cur += n;
                }
                Some(start)
            }
            _ => None,
        }
    }

    fn spawn(&mut self, tid: u32, ts: u64, sc: &Syscall, out: &mut Vec<Event>) {
        let call = Call::from_name(sc.name.as_str()).unwrap_or(Call::clone);
        let flags = match call {
            Call::fork => 17,
            Call::vfork => 0x4000 | 0x100 | 17,
            _ => sc
                .args
                .iter()
                .find_map(|a| {
                    let a = a.trim_start_matches('{');
                    a.strip_prefix("flags=")
                        .map(|f| line::flags(f, CLONE_FLAGS))
                })
                .unwrap_or(0),
        };
        let Some(child) = sc.ret.value.filter(|&v| v > 0).map(|v| v as u32) else {
            // A failed fork: logged as failed, like the recorder does.
            let op = Op::Spawn {
                call,
                kind: if flags & CLONE_THREAD != 0 {
                    SpawnKind::Thread
                } else {
                    SpawnKind::Process
                },
                child: ProcRef::default(),
                flags,
            };
            self.emit(
                tid,
                ts,
                op,
                sc.ret.value.unwrap_or(tomo_event::RET_UNKNOWN),
                out,
            );
            return;
        };
        let kind = if flags & CLONE_THREAD != 0 {
            SpawnKind::Thread
        } else if call == Call::vfork || flags & CLONE_VFORK != 0 {
            SpawnKind::Vfork
        } else {
            SpawnKind::Process
        };
        let parent = self.tgid(tid);
        let cref = if kind == SpawnKind::Thread {
            self.threads.insert(child, parent);
            self.stats.threads += 1;
            ProcRef {
                tid: child,
                ..self.proc_ref(tid)
            }
        } else {
            let (fds, cwd) = match self.procs.get(&parent) {
                Some(p) => (
                    if flags & CLONE_FILES != 0 {
                        Rc::clone(&p.fds)
                    } else {
                        // fork: a copy of the table sharing the descriptions.
                        Rc::new(RefCell::new(p.fds.borrow().clone()))
                    },
                    p.cwd.clone(),
                ),
                None => (Rc::new(RefCell::new(HashMap::new())), None),
            };
            self.procs.insert(
                child,
                Proc {
                    ppid: parent,
                    start_ticks: Self::ticks(ts),
                    fds,
                    cwd,
                },
            );
            self.threads.retain(|_, g| *g != child);
            self.threads.insert(child, child);
            self.stats.processes += 1;
            self.proc_ref(child)
        };
        self.emit(
            tid,
            ts,
            Op::Spawn {
                call,
                kind,
                child: cref,
                flags,
            },
            child as i64,
            out,
        );
    }

    /// One finished call of thread `tid` (known to the model).
    pub fn call(&mut self, tid: u32, ts: u64, sc: &Syscall, out: &mut Vec<Event>) {
        self.note_cwd(tid, &sc.args);
        let before = out.len();
        self.map_call(tid, ts, sc, out);
        if out.len() > before {
            self.stats.mapped += 1;
        }
    }

    fn map_call(&mut self, tid: u32, ts: u64, sc: &Syscall, out: &mut Vec<Event>) {
        let a = &sc.args;
        let arg = |i: usize| a.get(i).map(String::as_str).unwrap_or("");
        let ok = sc.ret.ok();
        let ret = sc.ret.value.unwrap_or(tomo_event::RET_UNKNOWN);
        let num = |s: &str| -> Option<u64> {
            let s = s.trim().trim_start_matches('[').trim_end_matches(']');
            let s = s.split(" => ").last().unwrap_or(s);
            s.strip_prefix("0x")
                .map(|h| u64::from_str_radix(h, 16).ok())
                .unwrap_or_else(|| s.parse().ok())
        };
        let name = sc.name.as_str();
        let op = match name {
            "fork" | "vfork" | "clone" | "clone3" => return self.spawn(tid, ts, sc, out),
            "execve" | "execveat" => {
                let (dirfd, pi, ai) = if name == "execve" {
                    (None, 0, 1)
                } else {
                    (Some(arg(0)), 1, 2)
                };
                let path = self.path_at(tid, dirfd, arg(pi)).unwrap_or_default();
                let argv = line::str_array(arg(ai));
                let cwd = self.cwd(tid);
                let exe = self.path_obj(&path, None);
                if ok {
                    // A successful exec drops O_CLOEXEC descriptors and
                    // unshares the table.
                    let pid = self.tgid(tid);
                    if let Some(p) = self.procs.get_mut(&pid) {
                        let kept: FdTable = p
                            .fds
                            .borrow()
                            .iter()
                            .filter(|(_, e)| !e.cloexec)
                            .map(|(k, e)| (*k, e.clone()))
                            .collect();
                        p.fds = Rc::new(RefCell::new(kept));
                    }
                }
                Op::Exec {
                    call: if name == "execve" {
                        Call::execve
                    } else {
                        Call::execveat
                    },
                    exe,
                    argv,
                    env: None,
                    cwd,
                }
            }
            "open" | "openat" | "openat2" | "creat" => {
                let (dirfd, pi) = match name {
                    "open" | "creat" => (None, 0),
                    _ => (Some(arg(0)), 1),
                };
                let Some(path) = self.path_at(tid, dirfd, arg(pi)) else {
                    return;
                };
                let flags = match name {
                    "creat" => O_CREAT | O_TRUNC | 1,
                    "openat2" => a
                        .iter()
                        .find_map(|x| {
                            x.trim_start_matches('{')
                                .strip_prefix("flags=")
                                .map(|f| line::flags(f, OPEN_FLAGS))
                        })
                        .unwrap_or(0),
                    _ => line::flags(arg(pi + 1), OPEN_FLAGS),
                };
                let mode = if name == "creat" { arg(1) } else { arg(pi + 2) };
                let mode = line::flags(mode, &[]) as u32;
                let fd = if ok { ret as i32 } else { -1 };
                let dir_hint = (flags & O_DIRECTORY != 0 && flags & O_TMPFILE != O_TMPFILE)
                    .then_some(ObjKind::Dir);
                let was_absent = self.absent.contains(&path);
                let created = ok && flags & O_CREAT != 0 && (flags & O_EXCL != 0 || was_absent);
                if created || (ok && was_absent) {
                    // A new file at this path: a new identity.
                    self.paths.remove(&path);
                }
                let (obj, sock) = match (&sc.ret.deco, ok) {
                    (Some(d), true) => {
                        let d = line::deco(d);
                        self.deco_obj(&d, dir_hint)
                    }
                    _ => (self.path_obj(&path, dir_hint), None),
                };
                if ok {
                    self.absent.remove(&path);
                    if let Some(p) = &obj.path {
                        self.absent.remove(p);
                    }
                    let mut o = Ofd::new(obj.clone(), sock, Some(0));
                    o.append = flags & O_APPEND != 0;
                    self.install(tid, fd, o, flags & O_CLOEXEC != 0);
                } else if ret == -2 {
                    self.absent.insert(path.clone());
                }
                Op::Open {
                    call: Call::from_name(name).unwrap_or(Call::creat),
                    fd,
                    obj,
                    flags: flags as u32,
                    mode,
                    created,
                }
            }
            "close" => {
                let Some((fd, o)) = self.fd(tid, arg(0)) else {
                    self.stats.unknown_fd += 1;
                    return;
                };
                if ret != -9 {
                    if let Some(t) = self.table(tid) {
                        t.borrow_mut().remove(&fd);
                    }
                }
                let obj = o.borrow().obj.clone();
                Op::Close {
                    call: Call::close,
                    fd,
                    obj,
                }
            }
            "read" | "pread64" | "readv" | "preadv" | "preadv2" | "write" | "pwrite64"
            | "writev" | "pwritev" | "pwritev2" | "recvfrom" | "recvmsg" | "sendto" | "sendmsg"
            | "recvmmsg" | "sendmmsg" => {
                let Some((fd, o)) = self.fd(tid, arg(0)) else {
                    self.stats.unknown_fd += 1;
                    return;
                };
                let dir = if name.starts_with("read")
                    || name.starts_with("pread")
                    || name.starts_with("recv")
                {
                    Dir::Read
                } else {
                    Dir::Write
                };
                let call = Call::from_name(name).unwrap_or(Call::sendmmsg);
                let explicit = match name {
                    "pread64" | "pwrite64" | "preadv" | "pwritev" => num(arg(3)),
                    "preadv2" | "pwritev2" => num(arg(3)).filter(|&v| v as i64 != -1),
                    _ => None,
                };
                let count = if !ok {
                    0
                } else if name.ends_with("mmsg") {
                    // Bytes per message are in the msg_len fields.
                    let text = a.join(",");
                    text.match_indices("msg_len=")
                        .filter_map(|(i, _)| {
                            let r = &text[i + 8..];
                            let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
                            r[..end].parse::<u64>().ok()
                        })
                        .sum()
                } else {
                    ret as u64
                };
                let peer = match name {
                    "sendto" | "recvfrom" => line::sockaddr(arg(4)),
                    "sendmsg" | "recvmsg" => a
                        .get(1)
                        .and_then(|m| m.find("msg_name=").map(|i| &m[i + 9..]))
                        .and_then(line::sockaddr),
                    _ => None,
                };
                let offset = Self::offset_and_advance(&o, explicit, dir, count, true);
                let (obj, sock) = {
                    let ob = o.borrow();
                    (ob.obj.clone(), ob.sock.clone())
                };
                if obj.kind == ObjKind::Anon {
                    return;
                }
                let sock = sock.map(|mut s| {
                    if peer.is_some() {
                        s.peer = peer;
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
            "sendfile" | "splice" | "tee" | "copy_file_range" => {
                let (si, di, so, dof) = match name {
                    "sendfile" => (1, 0, Some(2), None),
                    "tee" => (0, 1, None, None),
                    _ => (0, 2, Some(1), Some(3)),
                };
                let src = self.fd(tid, arg(si));
                let dst = self.fd(tid, arg(di));
                let (Some((src_fd, s)), Some((dst_fd, d))) = (src, dst) else {
                    self.stats.unknown_fd += 1;
                    return;
                };
                let count = if ok { ret as u64 } else { 0 };
                // `[100 => 200]`: strace shows the offset before and after.
                let before_off = |i: Option<usize>| -> Option<u64> {
                    let t = arg(i?).trim();
                    let t = t.trim_start_matches('[').trim_end_matches(']');
                    t.split(" => ").next()?.trim().parse().ok()
                };
                let src_offset =
                    Self::offset_and_advance(&s, before_off(so), Dir::Read, count, name != "tee");
                let dst_offset =
                    Self::offset_and_advance(&d, before_off(dof), Dir::Write, count, true);
                let src = s.borrow().obj.clone();
                let dst = d.borrow().obj.clone();
                if src.kind == ObjKind::Anon || dst.kind == ObjKind::Anon {
                    return;
                }
                let call = Call::from_name(name).unwrap_or(Call::copy_file_range);
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
            "mmap" => {
                let Some((fd, o)) = self.fd(tid, arg(4)) else {
                    return;
                };
                let obj = o.borrow().obj.clone();
                Op::Mmap {
                    call: Call::mmap,
                    fd,
                    obj,
                    offset: num(arg(5)).unwrap_or(0),
                    len: num(arg(1)).unwrap_or(0),
                    prot: line::flags(arg(2), PROT) as u32,
                    flags: line::flags(arg(3), MAP) as u32,
                }
            }
            "lseek" => {
                if let (true, Some((_, o))) = (ok, self.fd(tid, arg(0))) {
                    o.borrow_mut().pos = Some(ret as u64);
                }
                return;
            }
            "dup" | "dup2" | "dup3" | "fcntl" | "fcntl64" => {
                if name.starts_with("fcntl") && !arg(1).starts_with("F_DUPFD") {
                    return;
                }
                let Some((old_fd, o)) = self.fd(tid, arg(0)) else {
                    self.stats.unknown_fd += 1;
                    return;
                };
                let new_fd = if ok { ret as i32 } else { -1 };
                if ok && new_fd != old_fd {
                    let cloexec = arg(1) == "F_DUPFD_CLOEXEC"
                        || (name == "dup3" && arg(2).contains("O_CLOEXEC"));
                    if let Some(t) = self.table(tid) {
                        t.borrow_mut().insert(
                            new_fd,
                            FdEntry {
                                ofd: Rc::clone(&o),
                                cloexec,
                            },
                        );
                    }
                }
                let obj = o.borrow().obj.clone();
                let call = Call::from_name(name).unwrap_or(Call::fcntl);
                Op::Dup {
                    call,
                    old_fd,
                    new_fd,
                    obj,
                }
            }
            "pipe" | "pipe2" => {
                let ends: Vec<(i32, Option<Deco>)> = parse_pair(arg(0));
                let cloexec = arg(1).contains("O_CLOEXEC");
                let (fds, obj) = match (ok, ends.as_slice()) {
                    (true, [(r, rd), (w, _)]) => {
                        let obj = match rd {
                            Some(d) => self.deco_obj(d, None).0,
                            None => ObjRef {
                                kind: ObjKind::Pipe,
                                dev: 0,
                                ino: self.new_ino() | 1 << 62,
                                path: None,
                            },
                        };
                        self.install(tid, *r, Ofd::new(obj.clone(), None, Some(0)), cloexec);
                        self.install(tid, *w, Ofd::new(obj.clone(), None, Some(0)), cloexec);
                        ([*r, *w], obj)
                    }
                    _ => ([-1, -1], ObjRef::unknown()),
                };
                Op::Pipe {
                    call: if name == "pipe" {
                        Call::pipe
                    } else {
                        Call::pipe2
                    },
                    read_fd: fds[0],
                    write_fd: fds[1],
                    obj,
                }
            }
            "socket" => {
                let ty = line::flags(arg(1), SOCK_TYPES);
                let sock = SockInfo {
                    domain: line::flags(arg(0), DOMAINS) as u16,
                    sock_type: (ty & 0xf) as u16,
                    protocol: line::flags(arg(2), PROTOS) as u16,
                    local: None,
                    peer: None,
                };
                let fd = if ok { ret as i32 } else { -1 };
                let obj = match (&sc.ret.deco, ok) {
                    (Some(d), true) => self.deco_obj(&line::deco(d), None).0,
                    (None, true) => ObjRef {
                        kind: ObjKind::Socket,
                        dev: 0,
                        ino: self.new_ino() | 1 << 62,
                        path: None,
                    },
                    _ => ObjRef::unknown(),
                };
                if ok {
                    self.install(
                        tid,
                        fd,
                        Ofd::new(obj.clone(), Some(sock.clone()), Some(0)),
                        ty & 0o2000000 != 0,
                    );
                }
                Op::Socket {
                    call: Call::socket,
                    fd,
                    obj,
                    sock,
                }
            }
            "socketpair" => {
                let ty = line::flags(arg(1), SOCK_TYPES);
                let sock = SockInfo {
                    domain: line::flags(arg(0), DOMAINS) as u16,
                    sock_type: (ty & 0xf) as u16,
                    protocol: line::flags(arg(2), PROTOS) as u16,
                    local: Some(SockAddr::Unnamed),
                    peer: Some(SockAddr::Unnamed),
                };
                let ends = parse_pair(arg(3));
                let (fds, objs) = match (ok, ends.as_slice()) {
                    (true, [(x, dx), (y, dy)]) => {
                        let obj = |d: &Option<Deco>, m: &mut Model| match d {
                            Some(d) => m.deco_obj(d, None).0,
                            None => ObjRef {
                                kind: ObjKind::Socket,
                                dev: 0,
                                ino: m.new_ino() | 1 << 62,
                                path: None,
                            },
                        };
                        let ox = obj(dx, self);
                        let oy = obj(dy, self);
                        let cloexec = ty & 0o2000000 != 0;
                        self.install(
                            tid,
                            *x,
                            Ofd::new(ox.clone(), Some(sock.clone()), Some(0)),
                            cloexec,
                        );
                        self.install(
                            tid,
                            *y,
                            Ofd::new(oy.clone(), Some(sock.clone()), Some(0)),
                            cloexec,
                        );
                        ([*x, *y], [ox, oy])
                    }
                    _ => ([-1, -1], [ObjRef::unknown(), ObjRef::unknown()]),
                };
                Op::SocketPair {
                    call: Call::socketpair,
                    fds,
                    objs,
                    sock,
                }
            }
            "bind" | "connect" => {
                let Some((fd, o)) = self.fd(tid, arg(0)) else {
                    self.stats.unknown_fd += 1;
                    return;
                };
                let addr = line::sockaddr(arg(1));
                let connecting = name == "connect";
                if ok || (connecting && ret == -115) {
                    let mut ob = o.borrow_mut();
                    let s = ob.sock.get_or_insert(SockInfo {
                        domain: 0,
                        sock_type: 0,
                        protocol: 0,
                        local: None,
                        peer: None,
                    });
                    if connecting {
                        s.peer = addr.clone();
                    } else if !matches!(addr, Some(SockAddr::Inet { port: 0, .. })) {
                        s.local = addr.clone();
                    }
                }
                let (obj, sock) = {
                    let ob = o.borrow();
                    (ob.obj.clone(), ob.sock.clone())
                };
                if connecting {
                    let mut sock = sock.unwrap_or(SockInfo {
                        domain: 0,
                        sock_type: 0,
                        protocol: 0,
                        local: None,
                        peer: None,
                    });
                    if sock.peer.is_none() {
                        sock.peer = addr;
                    }
                    Op::Connect {
                        call: Call::connect,
                        fd,
                        obj,
                        sock,
                    }
                } else {
                    Op::Bind {
                        call: Call::bind,
                        fd,
                        obj,
                        addr: addr.unwrap_or(SockAddr::Unnamed),
                    }
                }
            }
            "listen" => {
                let Some((fd, o)) = self.fd(tid, arg(0)) else {
                    return;
                };
                let obj = o.borrow().obj.clone();
                Op::Listen {
                    call: Call::listen,
                    fd,
                    obj,
                    backlog: num(arg(1)).unwrap_or(0) as i32,
                }
            }
            "accept" | "accept4" => {
                let Some((fd, l)) = self.fd(tid, arg(0)) else {
                    self.stats.unknown_fd += 1;
                    return;
                };
                let listen_obj = l.borrow().obj.clone();
                let listen_sock = l.borrow().sock.clone();
                let new_fd = if ok { ret as i32 } else { -1 };
                let (obj, sock) = match (&sc.ret.deco, ok) {
                    (Some(d), true) => self.deco_obj(&line::deco(d), None),
                    (None, true) => (
                        ObjRef {
                            kind: ObjKind::Socket,
                            dev: 0,
                            ino: self.new_ino() | 1 << 62,
                            path: None,
                        },
                        None,
                    ),
                    _ => (ObjRef::unknown(), None),
                };
                let mut sock = sock.or(listen_sock).unwrap_or(SockInfo {
                    domain: 0,
                    sock_type: 0,
                    protocol: 0,
                    local: None,
                    peer: None,
                });
                if sock.peer.is_none() || matches!(sock.peer, Some(SockAddr::Unnamed)) {
                    if let Some(p) =
                        line::sockaddr(arg(1)).filter(|p| !matches!(p, SockAddr::Unnamed))
                    {
                        sock.peer = Some(p);
                    }
                }
                if ok {
                    let cloexec = arg(3).contains("SOCK_CLOEXEC");
                    self.install(
                        tid,
                        new_fd,
                        Ofd::new(obj.clone(), Some(sock.clone()), Some(0)),
                        cloexec,
                    );
                }
                Op::Accept {
                    call: if name == "accept" {
                        Call::accept
                    } else {
                        Call::accept4
                    },
                    fd,
                    new_fd,
                    listen_obj,
                    obj,
                    sock,
                }
            }
            "rename" | "renameat" | "renameat2" => {
                let (old, new) = if name == "rename" {
                    (
                        self.path_at(tid, None, arg(0)),
                        self.path_at(tid, None, arg(1)),
                    )
                } else {
                    (
                        self.path_at(tid, Some(arg(0)), arg(1)),
                        self.path_at(tid, Some(arg(2)), arg(3)),
                    )
                };
                let (Some(old), Some(new)) = (old, new) else {
                    return;
                };
                let obj = self.path_obj(&old, None);
                let replaced = if ok {
                    self.paths.get(&new).map(|&(ino, kind)| ObjRef {
                        kind,
                        dev: 0,
                        ino,
                        path: Some(new.clone()),
                    })
                } else {
                    None
                };
                if ok {
                    self.move_path(&old, &new);
                }
                let obj = ObjRef {
                    path: Some(if ok { new.clone() } else { old.clone() }),
                    ..obj
                };
                Op::Rename {
                    call: Call::from_name(name).unwrap_or(Call::renameat2),
                    old_path: old,
                    new_path: new,
                    obj,
                    replaced,
                }
            }
            "link" | "linkat" | "symlink" | "symlinkat" => {
                let symbolic = name.starts_with("sym");
                let (target, new) = match name {
                    "link" => (
                        self.path_at(tid, None, arg(0)),
                        self.path_at(tid, None, arg(1)),
                    ),
                    "linkat" => (
                        self.path_at(tid, Some(arg(0)), arg(1)),
                        self.path_at(tid, Some(arg(2)), arg(3)),
                    ),
                    "symlink" => (line::unquote(arg(0)), self.path_at(tid, None, arg(1))),
                    _ => (
                        line::unquote(arg(0)),
                        self.path_at(tid, Some(arg(1)), arg(2)),
                    ),
                };
                let (Some(target), Some(new)) = (target, new) else {
                    return;
                };
                let obj = if symbolic {
                    if ok {
                        self.paths.remove(&new);
                        self.absent.remove(&new);
                    }
                    self.path_obj(&new, Some(ObjKind::Symlink))
                } else {
                    let o = self.path_obj(&target, None);
                    if ok {
                        self.paths.insert(new.clone(), (o.ino, o.kind));
                        self.absent.remove(&new);
                    }
                    o
                };
                let obj = ObjRef {
                    path: Some(new.clone()),
                    ..obj
                };
                Op::Link {
                    call: Call::from_name(name).unwrap_or(Call::symlinkat),
                    target,
                    new_path: new,
                    obj,
                    symbolic,
                }
            }
            "unlink" | "unlinkat" | "rmdir" => {
                let path = if name == "unlinkat" {
                    self.path_at(tid, Some(arg(0)), arg(1))
                } else {
                    self.path_at(tid, None, arg(0))
                };
                let Some(path) = path else { return };
                let dir =
                    name == "rmdir" || (name == "unlinkat" && arg(2).contains("AT_REMOVEDIR"));
                let obj = self.path_obj(&path, dir.then_some(ObjKind::Dir));
                if ok {
                    self.paths.remove(&path);
                    self.absent.insert(path.clone());
                }
                Op::Unlink {
                    call: Call::from_name(name).unwrap_or(Call::rmdir),
                    path,
                    obj,
                    dir,
                }
            }
            "mkdir" | "mkdirat" | "mknod" | "mknodat" => {
                let at = name.ends_with("at");
                let path = if at {
                    self.path_at(tid, Some(arg(0)), arg(1))
                } else {
                    self.path_at(tid, None, arg(0))
                };
                let Some(path) = path else { return };
                let mode = line::flags(
                    arg(if at { 2 } else { 1 }),
                    &[
                        ("S_IFREG", 0o100000),
                        ("S_IFCHR", 0o20000),
                        ("S_IFBLK", 0o60000),
                        ("S_IFIFO", 0o10000),
                        ("S_IFSOCK", 0o140000),
                    ],
                ) as u32;
                if ok {
                    self.paths.remove(&path);
                    self.absent.remove(&path);
                }
                if name.starts_with("mkdir") {
                    let obj = self.path_obj(&path, Some(ObjKind::Dir));
                    Op::Mkdir {
                        call: if at { Call::mkdirat } else { Call::mkdir },
                        path,
                        obj,
                        mode,
                    }
                } else {
                    let kind = match mode & 0o170000 {
                        0o20000 => ObjKind::CharDev,
                        0o60000 => ObjKind::BlockDev,
                        0o10000 => ObjKind::Pipe,
                        0o140000 => ObjKind::Socket,
                        _ => ObjKind::File,
                    };
                    let obj = self.path_obj(&path, Some(kind));
                    Op::Mknod {
                        call: if at { Call::mknodat } else { Call::mknod },
                        path,
                        obj,
                        mode,
                        rdev: 0,
                    }
                }
            }
            "truncate" | "ftruncate" => {
                let (fd, obj) = if name == "truncate" {
                    let Some(p) = self.path_at(tid, None, arg(0)) else {
                        return;
                    };
                    (None, self.path_obj(&p, None))
                } else {
                    let Some((fd, o)) = self.fd(tid, arg(0)) else {
                        self.stats.unknown_fd += 1;
                        return;
                    };
                    let obj = o.borrow().obj.clone();
                    (Some(fd), obj)
                };
                Op::Truncate {
                    call: if name == "truncate" {
                        Call::truncate
                    } else {
                        Call::ftruncate
                    },
                    fd,
                    obj,
                    length: num(arg(1)).unwrap_or(0),
                }
            }
            "chmod" | "fchmod" | "fchmodat" | "chown" | "fchown" | "lchown" | "fchownat" => {
                let by_fd = name == "fchmod" || name == "fchown";
                let (fd, obj, rest) = if by_fd {
                    let Some((fd, o)) = self.fd(tid, arg(0)) else {
                        return;
                    };
                    let obj = o.borrow().obj.clone();
                    (Some(fd), obj, 1)
                } else {
                    let at = name.ends_with("at");
                    let p = if at {
                        self.path_at(tid, Some(arg(0)), arg(1))
                    } else {
                        self.path_at(tid, None, arg(0))
                    };
                    let Some(p) = p else { return };
                    (None, self.path_obj(&p, None), if at { 2 } else { 1 })
                };
                if name.contains("chmod") {
                    Op::Chmod {
                        call: Call::from_name(name).unwrap_or(Call::fchmodat),
                        fd,
                        obj,
                        mode: line::flags(arg(rest), &[]) as u32,
                    }
                } else {
                    let id = |s: &str| {
                        s.trim()
                            .parse::<i64>()
                            .map(|v| v as u32)
                            .unwrap_or(u32::MAX)
                    };
                    Op::Chown {
                        call: Call::from_name(name).unwrap_or(Call::fchownat),
                        fd,
                        obj,
                        uid: id(arg(rest)),
                        gid: id(arg(rest + 1)),
                    }
                }
            }
            "setuid" | "setgid" | "setreuid" | "setregid" | "setresuid" | "setresgid" => {
                let id = |s: &str| {
                    s.trim()
                        .parse::<i64>()
                        .map(|v| v as u32)
                        .unwrap_or(u32::MAX)
                };
                let ids = [
                    id(arg(0)),
                    if a.len() > 1 { id(arg(1)) } else { u32::MAX },
                    if a.len() > 2 { id(arg(2)) } else { u32::MAX },
                ];
                let call = Call::from_name(name).unwrap_or(Call::setresgid);
                Op::SetId { call, ids }
            }
            "chdir" | "fchdir" => {
                let path = if name == "chdir" {
                    self.path_at(tid, None, arg(0))
                } else {
                    match line::fd_arg(arg(0)) {
                        Some((_, Some(Deco::Path { path, .. }))) => Some(path),
                        _ => None,
                    }
                };
                let Some(path) = path else { return };
                if ok {
                    let pid = self.tgid(tid);
                    if let Some(p) = self.procs.get_mut(&pid) {
                        p.cwd = Some(path.clone());
                    }
                }
                let obj = self.path_obj(&path, Some(ObjKind::Dir));
                Op::Chdir {
                    call: if name == "chdir" {
                        Call::chdir
                    } else {
                        Call::fchdir
                    },
                    path,
                    obj,
                }
            }
            "kill" | "tkill" | "tgkill" => {
                let (target, sig) = match name {
                    "tgkill" => (num(arg(1)), arg(2)),
                    _ => (num(arg(0)), arg(1)),
                };
                let Some(target) = target
                    .map(|t| t as i64)
                    .filter(|&t| t > 0 && t <= u32::MAX as i64)
                else {
                    return;
                };
                let target = target as u32;
                let mut t = self.proc_ref(target);
                if name == "kill" {
                    t.tid = target;
                }
                Op::Kill {
                    call: Call::from_name(name).unwrap_or(Call::tgkill),
                    target: t,
                    signal: line::signal_number(sig.trim()).unwrap_or(0),
                }
            }
            _ => {
                self.stats.unmapped += 1;
                return;
            }
        };
        if ok && name.starts_with("set") {
            // Credentials are unknown to strace; nothing to refresh.
        }
        self.emit(tid, ts, op, ret, out);
    }

    fn move_path(&mut self, old: &str, new: &str) {
        let prefix = format!("{old}/");
        let moved: Vec<(String, (u64, ObjKind))> = self
            .paths
            .iter()
            .filter(|(k, _)| k.as_str() == old || k.starts_with(&prefix))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        for (k, v) in moved {
            self.paths.remove(&k);
            self.absent.insert(k.clone());
            let nk = format!("{new}{}", &k[old.len()..]);
            self.absent.remove(&nk);
            self.paths.insert(nk, v);
        }
        self.absent.remove(new);
    }
}

/// `[3<pipe:[1]>, 4<pipe:[1]>]` → the two descriptors.
fn parse_pair(s: &str) -> Vec<(i32, Option<Deco>)> {
    let s = s.trim();
    let Some(inner) = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')) else {
        return Vec::new();
    };
    match line::parse_call(&format!("x({inner}) = 0")) {
        Some(c) => c.args.iter().filter_map(|a| line::fd_arg(a)).collect(),
        None => Vec::new(),
    }
}

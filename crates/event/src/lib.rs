//! The normalized event schema shared by every capture source.
//!
//! Every source (ptrace recorder, eBPF agent, Linux audit, CDM and strace
//! importers, application logs) produces [`Event`]s and nothing else. Sources
//! never build graph nodes: they only say *what happened* to *which kernel
//! object*, with enough identity information ([`ObjRef`], [`ProcRef`]) that the
//! graph ingest can assign stable UUIDs without looking at the live system.
//!
//! Each event is self-contained: it carries the resolved object of every file
//! descriptor it mentions, so a time-window cut of a recording can still be
//! ingested without the events that opened those descriptors.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Version of this schema; written in every recording header. Bump on any
/// change to the serialized shape of [`Event`].
///
/// 2: [`Op::Content`] appended (postcard numbers enum variants in order, so
/// every older event still decodes the same way).
pub const SCHEMA_VERSION: u32 = 2;

/// The oldest schema this build still reads: versions only ever append
/// variants, so a version-1 recording is a valid version-2 one.
pub const MIN_SCHEMA_VERSION: u32 = 1;

/// A 128-bit identifier (host id, boot id), stored as raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct Id128(pub [u8; 16]);

impl Id128 {
    /// Parse a UUID-like string ("8-4-4-4-12" hex, dashes optional), as found
    /// in `/proc/sys/kernel/random/boot_id` and `/etc/machine-id`.
    pub fn parse(s: &str) -> Option<Id128> {
        let hex: String = s.trim().chars().filter(|c| *c != '-').collect();
        if hex.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Id128(out))
    }
}

impl fmt::Display for Id128 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
        )
    }
}

impl fmt::Debug for Id128 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One thing a process did, as observed by a capture source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Stable identifier of the machine (e.g. from `/etc/machine-id`).
    pub host: Id128,
    /// Identifier of the boot (`/proc/sys/kernel/random/boot_id`); pids and
    /// inode generations are only unique within one boot.
    pub boot: Id128,
    /// Strictly increasing per (host, boot, source) sequence number; gaps mean loss.
    pub seq: u64,
    /// Wall-clock time of the event, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// The process (and thread) that performed the operation.
    pub proc: ProcRef,
    /// Credentials at the time of the event.
    pub cred: Cred,
    /// What happened.
    pub op: Op,
    /// Raw return value: `>= 0` success, `-errno` on failure. A failed
    /// operation is recorded but never produces a data flow.
    /// [`RET_UNKNOWN`] means the source saw the call fail (or could not see
    /// its outcome) without seeing the errno.
    pub ret: i64,
}

/// `ret` of a call whose outcome the source could not observe exactly: it
/// counts as failed (no data flow). `-4095` is the kernel's `-MAX_ERRNO`, never
/// a real errno a call returns.
pub const RET_UNKNOWN: i64 = -4095;

impl Event {
    pub fn ok(&self) -> bool {
        self.ret >= 0
    }
}

/// Identity of a process as far as a source can see it. Pids are reused;
/// `start_ticks` (field 22 of `/proc/PID/stat`, clock ticks since boot) is
/// not, so `(boot, pid, start_ticks)` names one process forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct ProcRef {
    /// Thread-group id (what users call the pid).
    pub pid: u32,
    /// Thread id of the thread that performed the operation.
    pub tid: u32,
    /// Parent's thread-group id at the time of the event.
    pub ppid: u32,
    /// Process start time in clock ticks since boot; 0 when unknown.
    pub start_ticks: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Cred {
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
}

/// The kind of a kernel object, from its `st_mode` or from how it was created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ObjKind {
    File,
    Dir,
    Symlink,
    Pipe,
    Socket,
    CharDev,
    BlockDev,
    /// eventfd, epoll, timerfd, signalfd, inotify, memfd, pidfd, …
    Anon,
    Unknown,
}

/// A kernel object resolved by the source at the time of the event.
///
/// `(dev, ino)` is what the kernel says; it is *not* an identity on its own
/// because inodes are reused. The ingest turns it into a UUID together with
/// the host, the boot (for pipes and sockets, whose inodes live in
/// pseudo-filesystems) and a generation counter that advances whenever an
/// event says the inode was newly created (`created`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjRef {
    pub kind: ObjKind,
    pub dev: u64,
    pub ino: u64,
    /// Absolute path the object was reached by, when it has one. For pipes
    /// and sockets this is `None`; names are attributes, not identities.
    pub path: Option<String>,
}

impl ObjRef {
    pub fn unknown() -> ObjRef {
        ObjRef {
            kind: ObjKind::Unknown,
            dev: 0,
            ino: 0,
            path: None,
        }
    }
}

/// A socket address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SockAddr {
    Inet {
        ip: std::net::IpAddr,
        port: u16,
    },
    Unix {
        path: String,
        abstract_ns: bool,
    },
    /// Unnamed (e.g. socketpair, or an unbound UNIX socket).
    Unnamed,
    /// Another family, with its number.
    Other {
        family: u16,
    },
}

/// The socket of a socket operation, with what is known about its ends.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SockInfo {
    /// AF_INET, AF_INET6, AF_UNIX, …
    pub domain: u16,
    /// SOCK_STREAM, SOCK_DGRAM, … (without flags).
    pub sock_type: u16,
    pub protocol: u16,
    pub local: Option<SockAddr>,
    pub peer: Option<SockAddr>,
}

/// Defines [`Call`] from the list of kernel call names, with the two
/// conversions every source and the ingest need, so that the names are
/// written once.
macro_rules! calls {
    ($($v:ident),* $(,)?) => {
        /// Which system call (or equivalent source operation) produced an event.
        /// Kept as a name so that audit, eBPF and imported records share it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[allow(non_camel_case_types)]
        pub enum Call {
            $($v,)*
            /// Synthesized by a source (process seen for the first time, recorder start).
            observed,
            /// Anything else, by the source's syscall number.
            other(u32),
        }

        impl Call {
            /// The kernel's name of the call; "observed" and "other" for the
            /// two that are not kernel calls.
            pub fn name(self) -> &'static str {
                match self {
                    $(Call::$v => stringify!($v),)*
                    Call::observed => "observed",
                    Call::other(_) => "other",
                }
            }

            /// The call with this kernel name (never `observed` or `other`).
            pub fn from_name(name: &str) -> Option<Call> {
                match name {
                    $(stringify!($v) => Some(Call::$v),)*
                    _ => None,
                }
            }
        }
    };
}

calls!(
    fork,
    vfork,
    clone,
    clone3,
    execve,
    execveat,
    exit,
    exit_group,
    kill,
    tkill,
    tgkill,
    open,
    openat,
    openat2,
    creat,
    close,
    close_range,
    read,
    pread64,
    readv,
    preadv,
    preadv2,
    write,
    pwrite64,
    writev,
    pwritev,
    pwritev2,
    sendfile,
    splice,
    tee,
    copy_file_range,
    mmap,
    lseek,
    dup,
    dup2,
    dup3,
    fcntl,
    pipe,
    pipe2,
    rename,
    renameat,
    renameat2,
    link,
    linkat,
    symlink,
    symlinkat,
    unlink,
    unlinkat,
    rmdir,
    mkdir,
    mkdirat,
    mknod,
    mknodat,
    truncate,
    ftruncate,
    chmod,
    fchmod,
    fchmodat,
    chown,
    fchown,
    lchown,
    fchownat,
    setuid,
    setreuid,
    setresuid,
    setgid,
    setregid,
    setresgid,
    chdir,
    fchdir,
    socket,
    socketpair,
    bind,
    listen,
    connect,
    accept,
    accept4,
    sendto,
    recvfrom,
    sendmsg,
    recvmsg,
    sendmmsg,
    recvmmsg,
);

/// How a new task relates to its parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SpawnKind {
    /// A new process (fork, or clone without CLONE_THREAD).
    Process,
    /// vfork: the parent is suspended until the child execs or exits.
    Vfork,
    /// A new thread in the same process (CLONE_THREAD).
    Thread,
}

/// Direction of a data transfer, seen from the acting process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dir {
    /// Data flowed from the object into the process.
    Read,
    /// Data flowed from the process into the object.
    Write,
}

/// What happened. Every variant that names a descriptor also carries the
/// resolved object, so that no event needs another to be understood.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// The source saw this process for the first time (e.g. it existed before
    /// capture started, or it is the recorder that launches the command).
    Observed {
        exe: Option<String>,
        argv: Vec<String>,
        cwd: Option<String>,
    },
    /// A new task was created by `proc`. `child` is the new process (for
    /// threads: same pid, new tid).
    Spawn {
        call: Call,
        kind: SpawnKind,
        child: ProcRef,
        flags: u64,
    },
    /// `proc` replaced its program image.
    Exec {
        call: Call,
        /// The binary actually executed (after `#!` resolution the kernel
        /// reports the interpreter separately as a load).
        exe: ObjRef,
        argv: Vec<String>,
        /// Environment, only when the source was asked to keep it.
        env: Option<Vec<String>>,
        cwd: Option<String>,
    },
    /// The whole process ended (or, for `exit`, one thread).
    Exit {
        call: Call,
        code: i32,
        signal: Option<i32>,
    },
    /// Signal sent to another process.
    Kill {
        call: Call,
        target: ProcRef,
        signal: i32,
    },
    /// A descriptor was opened (open/openat/openat2/creat).
    Open {
        call: Call,
        fd: i32,
        obj: ObjRef,
        flags: u32,
        mode: u32,
        /// The call created the inode (O_CREAT on a name that did not exist,
        /// O_TMPFILE). Advances the object's generation in the ingest.
        created: bool,
    },
    Close {
        call: Call,
        fd: i32,
        obj: ObjRef,
    },
    /// Data moved between `proc` and `obj`. `offset` is the file offset for
    /// seekable objects and the stream offset (bytes so far through this
    /// open file description in this direction) for pipes and sockets.
    /// `count` is the number of bytes actually transferred (the return value).
    Io {
        call: Call,
        dir: Dir,
        fd: i32,
        obj: ObjRef,
        offset: Option<u64>,
        count: u64,
        /// For sockets: the addresses involved (sendto/recvfrom peer, or the
        /// connected ends).
        sock: Option<SockInfo>,
    },
    /// In-kernel copy between two descriptors (sendfile, splice, tee,
    /// copy_file_range): data flows from `src` to `dst` through `proc`.
    Transfer {
        call: Call,
        src_fd: i32,
        src: ObjRef,
        src_offset: Option<u64>,
        dst_fd: i32,
        dst: ObjRef,
        dst_offset: Option<u64>,
        count: u64,
    },
    /// A file mapped into memory. `exec` (PROT_EXEC) is a load of code;
    /// `shared_write` (MAP_SHARED + PROT_WRITE) means the process may write it.
    Mmap {
        call: Call,
        fd: i32,
        obj: ObjRef,
        offset: u64,
        len: u64,
        prot: u32,
        flags: u32,
    },
    /// A descriptor was duplicated: `new_fd` now refers to the same open file.
    Dup {
        call: Call,
        old_fd: i32,
        new_fd: i32,
        obj: ObjRef,
    },
    /// A pipe was created; both ends share the pipe inode.
    Pipe {
        call: Call,
        read_fd: i32,
        write_fd: i32,
        obj: ObjRef,
    },
    Rename {
        call: Call,
        old_path: String,
        new_path: String,
        obj: ObjRef,
        replaced: Option<ObjRef>,
    },
    Link {
        call: Call,
        target: String,
        new_path: String,
        obj: ObjRef,
        symbolic: bool,
    },
    Unlink {
        call: Call,
        path: String,
        obj: ObjRef,
        dir: bool,
    },
    Mkdir {
        call: Call,
        path: String,
        obj: ObjRef,
        mode: u32,
    },
    Mknod {
        call: Call,
        path: String,
        obj: ObjRef,
        mode: u32,
        rdev: u64,
    },
    Truncate {
        call: Call,
        fd: Option<i32>,
        obj: ObjRef,
        length: u64,
    },
    Chmod {
        call: Call,
        fd: Option<i32>,
        obj: ObjRef,
        mode: u32,
    },
    Chown {
        call: Call,
        fd: Option<i32>,
        obj: ObjRef,
        uid: u32,
        gid: u32,
    },
    /// Credentials changed. `-1` (as u32::MAX) means unchanged, as in the syscall.
    SetId {
        call: Call,
        ids: [u32; 3],
    },
    Chdir {
        call: Call,
        path: String,
        obj: ObjRef,
    },
    Socket {
        call: Call,
        fd: i32,
        obj: ObjRef,
        sock: SockInfo,
    },
    SocketPair {
        call: Call,
        fds: [i32; 2],
        objs: [ObjRef; 2],
        sock: SockInfo,
    },
    Bind {
        call: Call,
        fd: i32,
        obj: ObjRef,
        addr: SockAddr,
    },
    Listen {
        call: Call,
        fd: i32,
        obj: ObjRef,
        backlog: i32,
    },
    Connect {
        call: Call,
        fd: i32,
        obj: ObjRef,
        sock: SockInfo,
    },
    /// A connection was accepted on `listen_obj`; `obj` is the new socket.
    Accept {
        call: Call,
        fd: i32,
        new_fd: i32,
        listen_obj: ObjRef,
        obj: ObjRef,
        sock: SockInfo,
    },
    /// The bytes of a successful read or write (opt-in content capture),
    /// logged right after the [`Op::Io`] event of the same call. It repeats
    /// the object and offset so that it stands alone (a cut may separate
    /// the two). Adds nothing to the graph: searched by `tomo grep`.
    /// Appended last: postcard numbers variants by position.
    Content {
        call: Call,
        dir: Dir,
        fd: i32,
        obj: ObjRef,
        /// Where `data` starts: the `Io` event's offset (file position, or
        /// stream offset for pipes and sockets).
        offset: Option<u64>,
        /// Bytes the call moved (its return value).
        total: u64,
        /// The first `data.len()` of those bytes (capped per call and by a
        /// budget per recording; shorter than `total` when capped).
        data: Vec<u8>,
    },
}

impl Op {
    /// The call that produced this operation.
    pub fn call(&self) -> Call {
        match self {
            Op::Observed { .. } => Call::observed,
            Op::Spawn { call, .. }
            | Op::Exec { call, .. }
            | Op::Exit { call, .. }
            | Op::Kill { call, .. }
            | Op::Open { call, .. }
            | Op::Close { call, .. }
            | Op::Io { call, .. }
            | Op::Transfer { call, .. }
            | Op::Mmap { call, .. }
            | Op::Dup { call, .. }
            | Op::Pipe { call, .. }
            | Op::Rename { call, .. }
            | Op::Link { call, .. }
            | Op::Unlink { call, .. }
            | Op::Mkdir { call, .. }
            | Op::Mknod { call, .. }
            | Op::Truncate { call, .. }
            | Op::Chmod { call, .. }
            | Op::Chown { call, .. }
            | Op::SetId { call, .. }
            | Op::Chdir { call, .. }
            | Op::Socket { call, .. }
            | Op::SocketPair { call, .. }
            | Op::Bind { call, .. }
            | Op::Listen { call, .. }
            | Op::Connect { call, .. }
            | Op::Accept { call, .. }
            | Op::Content { call, .. } => *call,
        }
    }
}

/// `PROT_EXEC` and friends, so that consumers need not depend on libc.
pub mod mm {
    pub const PROT_READ: u32 = 0x1;
    pub const PROT_WRITE: u32 = 0x2;
    pub const PROT_EXEC: u32 = 0x4;
    pub const MAP_SHARED: u32 = 0x01;
    pub const MAP_PRIVATE: u32 = 0x02;
}

/// Errors of the compact binary encoding.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("event encoding failed: {0}")]
    Encode(postcard::Error),
    #[error("event decoding failed: {0}")]
    Decode(postcard::Error),
}

/// Append the compact binary encoding of `ev` to `out` (postcard, whose wire
/// format is specified and stable across versions).
pub fn encode_into(ev: &Event, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let bytes = postcard::to_allocvec(ev).map_err(CodecError::Encode)?;
    out.extend_from_slice(&bytes);
    Ok(())
}

/// Decode one event from the front of `buf`; returns it and the rest.
pub fn decode(buf: &[u8]) -> Result<(Event, &[u8]), CodecError> {
    postcard::take_from_bytes(buf).map_err(CodecError::Decode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_id_parse() {
        let boot = Id128::parse("0c8f1f36-4a7e-4a0b-9d8e-1b2c3d4e5f60").unwrap();
        assert_eq!(boot.to_string(), "0c8f1f36-4a7e-4a0b-9d8e-1b2c3d4e5f60");
        assert!(Id128::parse("xyz").is_none());
        let ev = Event {
            host: Id128([1; 16]),
            boot,
            seq: 7,
            ts_ns: 1_700_000_000_000_000_000,
            proc: ProcRef {
                pid: 10,
                tid: 11,
                ppid: 1,
                start_ticks: 99,
            },
            cred: Cred::default(),
            op: Op::Io {
                call: Call::pread64,
                dir: Dir::Read,
                fd: 3,
                obj: ObjRef {
                    kind: ObjKind::File,
                    dev: 2049,
                    ino: 42,
                    path: Some("/etc/passwd".into()),
                },
                offset: Some(100),
                count: 12,
                sock: None,
            },
            ret: 12,
        };
        let mut buf = Vec::new();
        encode_into(&ev, &mut buf).unwrap();
        encode_into(&ev, &mut buf).unwrap();
        let (a, rest) = decode(&buf).unwrap();
        let (b, rest) = decode(rest).unwrap();
        assert!(rest.is_empty());
        assert_eq!(a, ev);
        assert_eq!(b, ev);
        assert!(decode(&buf[..5]).is_err());
    }
}

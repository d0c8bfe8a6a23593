//! CDM definitions (subjects, objects, principals, hosts) and the mapping of
//! CDM events onto Tomo operations.
//!
//! Identities: a CDM UUID names one subject or object forever, so it is
//! carried into the event schema whole and losslessly:
//! * an object's `ObjRef` gets `dev` = the UUID's high 64 bits and `ino` =
//!   its low 64 bits (low bits 0 become `u64::MAX`: `ino` 0 means "no
//!   inode" to the ingest). The ingest keys objects by `(host, dev, ino)`,
//!   so every CDM object becomes exactly one entity, and two objects never
//!   share one.
//! * a process's `ProcRef` gets `pid` = the Subject's `cid` and
//!   `start_ticks` = a 64-bit digest of the Subject UUID (never 0), so a
//!   reused pid is a new process, as with a real start time.
//! * the host is the CDM `hostId` itself (a UUID is 16 bytes, like
//!   `Id128`); the boot is derived from the host and the CDM session number.

use crate::record::{self, ObjectType, Props, Uuid};

/// Looked up several times per event: hashed with foldhash, several times
/// faster than SipHash on 128-bit keys.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
use std::net::IpAddr;
use tomo_event::{
    Call, Cred, Dir, Event, Id128, ObjKind, ObjRef, Op, ProcRef, SockAddr, SockInfo, SpawnKind,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjKind {
    Process,
    Thread,
    /// SUBJECT_UNIT / SUBJECT_BASIC_BLOCK: a part of a process's execution.
    Part,
}

#[derive(Debug)]
pub struct SubjectDef {
    pub kind: SubjKind,
    pub cid: i64,
    pub parent: Option<Uuid>,
    pub host: Option<Uuid>,
    pub principal: Option<Uuid>,
    pub start_ns: Option<u64>,
    pub cmdline: Option<String>,
    /// `properties.name` (the command name, comm).
    pub name: Option<String>,
    /// `properties.path` / `exe`: the executable.
    pub exe: Option<String>,
    pub cwd: Option<String>,
    pub ppid: Option<u32>,
}

#[derive(Debug)]
pub struct ObjectDef {
    pub otype: ObjectType,
    pub kind: ObjKind,
    pub path: Option<String>,
    pub sock: Option<SockInfo>,
}

#[derive(Debug, Clone, Copy)]
pub struct PrincipalDef {
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
}

#[derive(Debug)]
pub enum Def {
    Subject(Box<SubjectDef>),
    Object(Box<ObjectDef>),
    Principal(PrincipalDef),
    Host,
}

/// What a CDM event type becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Io(Call, Dir),
    Open,
    Create,
    Close,
    Execute,
    Spawn(Call),
    Exit,
    Signal,
    Connect,
    Accept,
    Bind,
    Unlink,
    Rename,
    Link,
    Mmap,
    LoadLibrary,
    ModifyAttributes,
    Truncate,
    ChangePrincipal,
    Dup,
    Skip,
}

fn class(t: &str) -> Class {
    match t {
        "EVENT_READ" => Class::Io(Call::read, Dir::Read),
        "EVENT_RECVFROM" => Class::Io(Call::recvfrom, Dir::Read),
        "EVENT_RECVMSG" => Class::Io(Call::recvmsg, Dir::Read),
        "EVENT_WRITE" => Class::Io(Call::write, Dir::Write),
        "EVENT_SENDTO" => Class::Io(Call::sendto, Dir::Write),
        "EVENT_SENDMSG" => Class::Io(Call::sendmsg, Dir::Write),
        "EVENT_OPEN" => Class::Open,
        "EVENT_CREATE_OBJECT" => Class::Create,
        "EVENT_CLOSE" => Class::Close,
        "EVENT_EXECUTE" => Class::Execute,
        "EVENT_FORK" => Class::Spawn(Call::fork),
        "EVENT_CLONE" | "EVENT_CREATE_THREAD" => Class::Spawn(Call::clone),
        "EVENT_EXIT" => Class::Exit,
        "EVENT_SIGNAL" => Class::Signal,
        "EVENT_CONNECT" => Class::Connect,
        "EVENT_ACCEPT" => Class::Accept,
        "EVENT_BIND" => Class::Bind,
        "EVENT_UNLINK" => Class::Unlink,
        "EVENT_RENAME" => Class::Rename,
        "EVENT_LINK" => Class::Link,
        "EVENT_MMAP" => Class::Mmap,
        "EVENT_LOADLIBRARY" => Class::LoadLibrary,
        "EVENT_MODIFY_FILE_ATTRIBUTES" => Class::ModifyAttributes,
        "EVENT_TRUNCATE" => Class::Truncate,
        "EVENT_CHANGE_PRINCIPAL" => Class::ChangePrincipal,
        "EVENT_DUP" => Class::Dup,
        _ => Class::Skip,
    }
}

/// The CDM event types this importer maps (the others are counted as skipped).
pub const MAPPED_EVENT_TYPES: &[&str] = &[
    "EVENT_READ",
    "EVENT_RECVFROM",
    "EVENT_RECVMSG",
    "EVENT_WRITE",
    "EVENT_SENDTO",
    "EVENT_SENDMSG",
    "EVENT_OPEN",
    "EVENT_CREATE_OBJECT",
    "EVENT_CLOSE",
    "EVENT_EXECUTE",
    "EVENT_FORK",
    "EVENT_CLONE",
    "EVENT_CREATE_THREAD",
    "EVENT_EXIT",
    "EVENT_SIGNAL",
    "EVENT_CONNECT",
    "EVENT_ACCEPT",
    "EVENT_BIND",
    "EVENT_UNLINK",
    "EVENT_RENAME",
    "EVENT_LINK",
    "EVENT_MMAP",
    "EVENT_LOADLIBRARY",
    "EVENT_MODIFY_FILE_ATTRIBUTES",
    "EVENT_TRUNCATE",
    "EVENT_CHANGE_PRINCIPAL",
    "EVENT_DUP",
];

fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `start_ticks` of the process a Subject UUID names: never 0 (0 means
/// "unknown" to the ingest, which would merge reused pids).
pub fn subject_ticks(u: Uuid) -> u64 {
    let d = mix64((u >> 64) as u64) ^ mix64((u as u64) ^ 0x9e37_79b9_7f4a_7c15);
    d.max(1)
}

/// The `(dev, ino)` an object UUID is carried in.
pub fn object_dev_ino(u: Uuid) -> (u64, u64) {
    let lo = u as u64;
    ((u >> 64) as u64, if lo == 0 { u64::MAX } else { lo })
}

fn id128(u: Uuid) -> Id128 {
    Id128(u.to_be_bytes())
}

fn flag_bits(s: &str, table: &[(&str, u32)]) -> u32 {
    if let Ok(n) = s.trim().parse::<u32>() {
        return n;
    }
    if let Some(h) = s.trim().strip_prefix("0x") {
        return u32::from_str_radix(h, 16).unwrap_or(0);
    }
    s.split(['|', ',', ' '])
        .filter_map(|w| table.iter().find(|(n, _)| *n == w.trim()).map(|(_, b)| *b))
        .fold(0, |a, b| a | b)
}

const OPEN_FLAGS: &[(&str, u32)] = &[
    ("O_RDONLY", 0),
    ("O_WRONLY", 1),
    ("O_RDWR", 2),
    ("O_CREAT", 0o100),
    ("O_EXCL", 0o200),
    ("O_TRUNC", 0o1000),
    ("O_APPEND", 0o2000),
    ("O_DIRECTORY", 0o200000),
    ("O_CLOEXEC", 0o2000000),
];

const PROT_FLAGS: &[(&str, u32)] = &[
    ("PROT_NONE", 0),
    ("PROT_READ", 1),
    ("PROT_WRITE", 2),
    ("PROT_EXEC", 4),
];

const MAP_FLAGS: &[(&str, u32)] = &[("MAP_SHARED", 1), ("MAP_PRIVATE", 2)];

fn parse_i64(s: &str) -> Option<i64> {
    let s = s.trim();
    s.parse()
        .ok()
        .or_else(|| i64::from_str_radix(s.strip_prefix("0x")?, 16).ok())
}

fn ip_of(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_start_matches('[').trim_end_matches(']');
    s.parse().ok()
}

/// A NetFlowObject's ends as the event schema's socket facts.
fn netflow_sock(o: &record::Object) -> SockInfo {
    let addr = |a: &record::Opt<String>, p: &record::Opt<i64>| -> Option<SockAddr> {
        let ip = ip_of(a.get()?)?;
        let port = p.get().copied().unwrap_or(0).clamp(0, 65535) as u16;
        Some(SockAddr::Inet { ip, port })
    };
    let local = addr(&o.local_address, &o.local_port);
    let peer = addr(&o.remote_address, &o.remote_port);
    let domain = match local.as_ref().or(peer.as_ref()) {
        Some(SockAddr::Inet {
            ip: IpAddr::V6(_), ..
        }) => 10,
        _ => 2,
    };
    let protocol = o.ip_protocol.get().copied().unwrap_or(0).clamp(0, 255) as u16;
    let sock_type = match protocol {
        6 => 1,
        17 => 2,
        _ => 0,
    };
    SockInfo {
        domain,
        sock_type,
        protocol,
        local,
        peer,
    }
}

fn base_path(o: &record::Object) -> Option<String> {
    let p = &o.base_object.as_ref()?.properties.0;
    p.any(&["path", "filename", "name"]).map(str::to_string)
}

/// A definition from a non-event record (`None`: nothing Tomo keeps).
pub fn object_def(t: ObjectType, o: &record::Object) -> Option<ObjectDef> {
    let kind_s = o.kind.get().map(String::as_str).unwrap_or("");
    let (kind, sock) = match t {
        ObjectType::File => (
            match kind_s {
                "FILE_OBJECT_DIR" => ObjKind::Dir,
                "FILE_OBJECT_LINK" => ObjKind::Symlink,
                "FILE_OBJECT_CHAR" => ObjKind::CharDev,
                "FILE_OBJECT_BLOCK" => ObjKind::BlockDev,
                "FILE_OBJECT_NAMED_PIPE" => ObjKind::Pipe,
                "FILE_OBJECT_UNIX_SOCKET" => ObjKind::Socket,
                _ => ObjKind::File,
            },
            None,
        ),
        ObjectType::UnnamedPipe => (ObjKind::Pipe, None),
        ObjectType::Ipc => (
            if kind_s.starts_with("IPC_OBJECT_SOCKET") {
                ObjKind::Socket
            } else {
                ObjKind::Pipe
            },
            None,
        ),
        ObjectType::NetFlow => (ObjKind::Socket, Some(netflow_sock(o))),
        ObjectType::SrcSink => (ObjKind::Anon, None),
        ObjectType::PacketSocket => (ObjKind::Socket, None),
        ObjectType::Memory | ObjectType::RegistryKey => return None,
    };
    let path = match kind {
        ObjKind::File
        | ObjKind::Dir
        | ObjKind::Symlink
        | ObjKind::CharDev
        | ObjKind::BlockDev
        | ObjKind::Pipe
        | ObjKind::Socket
            if t == ObjectType::File =>
        {
            base_path(o)
        }
        _ => None,
    };
    Some(ObjectDef {
        otype: t,
        kind,
        path,
        sock,
    })
}

pub fn subject_def(s: &record::Subject) -> SubjectDef {
    let kind = match s.kind.get().map(String::as_str) {
        Some("SUBJECT_THREAD") => SubjKind::Thread,
        Some("SUBJECT_UNIT") | Some("SUBJECT_BASIC_BLOCK") => SubjKind::Part,
        _ => SubjKind::Process,
    };
    let p = &s.properties.0;
    SubjectDef {
        kind,
        cid: s.cid.get().copied().unwrap_or(0),
        parent: s.parent_subject.get().map(|u| u.0),
        host: s.host_id.get().map(|u| u.0),
        principal: s.local_principal.get().map(|u| u.0),
        start_ns: s
            .start_timestamp_nanos
            .get()
            .and_then(|&t| u64::try_from(t).ok())
            .filter(|&t| t > 0),
        cmdline: s.cmd_line.get().cloned().filter(|c| !c.is_empty()),
        name: p.any(&["name", "exec", "comm"]).map(str::to_string),
        exe: p.any(&["path", "exe"]).map(str::to_string),
        cwd: p.get("cwd").map(str::to_string),
        ppid: p.get("ppid").and_then(|v| v.trim().parse().ok()),
    }
}

pub fn principal_def(p: &record::Principal) -> PrincipalDef {
    let id = |s: Option<&String>| -> u32 {
        s.and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(u32::MAX)
    };
    let uid = id(p.user_id.get());
    let gid = id(p.group_ids.get().and_then(|g| g.first()));
    let euid = p
        .properties
        .0
        .get("euid")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(uid);
    PrincipalDef { uid, gid, euid }
}

/// Counters of the event mapping (part of the import's stats).
#[derive(Default, Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MapStats {
    /// Events whose subject is never defined in the input (skipped: its
    /// process cannot be named).
    pub undefined_subjects: u64,
    /// Object references never defined (kept, as objects of unknown kind).
    pub undefined_objects: u64,
    /// Events of a mapped type that did not fit (a read of a subject, a
    /// fork without a child, an exec of a non-file…): skipped.
    pub unfit: u64,
    /// Spawns made from a Subject's `parentSubject` because the process
    /// acted before (or without) an EVENT_FORK/CLONE naming it.
    pub synthesized_spawns: u64,
    /// EVENT_FORK/CLONE of a child already introduced that way: skipped.
    pub late_spawns: u64,
    /// Process Subjects that never acted, introduced at the end.
    pub idle_subjects: u64,
}

/// Per-import conversion state.
pub struct Converter {
    pub defs: HashMap<Uuid, Def>,
    introduced: HashSet<Uuid>,
    /// Objects that have appeared in an emitted event: their first
    /// appearance may say "created", later ones must not (the ingest would
    /// start a new generation, i.e. a second entity for one UUID).
    seen: HashSet<Uuid>,
    /// Principal changes (EVENT_CHANGE_PRINCIPAL), by process subject.
    principal_now: HashMap<Uuid, Uuid>,
    pub seq: u64,
    pub stats: MapStats,
    default_host: Id128,
    host_override: Option<Id128>,
    /// The last (host, boot, time) an event was emitted with, for the
    /// processes introduced at the end.
    last: Option<(Id128, Id128, u64)>,
    /// Boot ids by (host, session): a UUIDv5 is too dear to make per event.
    boots: HashMap<(Id128, i64), Id128>,
}

const NS: uuid::Uuid = uuid::Uuid::from_u128(0x1c6f_3a52_8e0d_4b7a_a5c2_7f19_d3e8_6b40);

pub fn boot_id(host: Id128, session: i64) -> Id128 {
    let mut name = b"cdm-boot".to_vec();
    name.extend_from_slice(&host.0);
    name.extend_from_slice(&session.to_le_bytes());
    Id128(*uuid::Uuid::new_v5(&NS, &name).as_bytes())
}

/// Where an event came from, to name it in warnings.
pub struct Ctx {
    pub host: Option<Uuid>,
    pub session: i64,
}

impl Converter {
    pub fn new(default_host: Id128, host_override: Option<Id128>) -> Converter {
        Converter {
            defs: HashMap::default(),
            introduced: HashSet::default(),
            seen: HashSet::default(),
            principal_now: HashMap::default(),
            seq: 0,
            stats: MapStats::default(),
            default_host,
            host_override,
            last: None,
            boots: HashMap::default(),
        }
    }

    fn boot(&mut self, host: Id128, session: i64) -> Id128 {
        *self
            .boots
            .entry((host, session))
            .or_insert_with(|| boot_id(host, session))
    }

    pub fn host_of(&self, h: Option<Uuid>) -> Id128 {
        self.host_override
            .unwrap_or_else(|| h.map(id128).unwrap_or(self.default_host))
    }

    fn subject(&self, u: Uuid) -> Option<&SubjectDef> {
        match self.defs.get(&u) {
            Some(Def::Subject(s)) => Some(s),
            _ => None,
        }
    }

    /// The process subject a subject belongs to (threads and units name
    /// their process as parent).
    fn process_of(&self, u: Uuid) -> Uuid {
        let mut cur = u;
        for _ in 0..8 {
            match self.subject(cur) {
                Some(s) if s.kind != SubjKind::Process => match s.parent {
                    Some(p) if self.subject(p).is_some() && p != cur => cur = p,
                    _ => return cur,
                },
                _ => return cur,
            }
        }
        cur
    }

    fn proc_ref(&self, process: Uuid, actor: Uuid, thread_id: Option<i64>) -> ProcRef {
        let s = self.subject(process);
        let pid = s.map(|s| s.cid).unwrap_or(0) as u32;
        let tid = if actor != process {
            self.subject(actor).map(|s| s.cid as u32).unwrap_or(pid)
        } else {
            thread_id.map(|t| t as u32).unwrap_or(pid)
        };
        let ppid = s
            .and_then(|s| {
                s.parent
                    .map(|p| self.process_of(p))
                    .filter(|&p| p != process)
                    .and_then(|p| self.subject(p))
                    .map(|p| p.cid as u32)
                    .or(s.ppid)
            })
            .unwrap_or(0);
        ProcRef {
            pid,
            tid,
            ppid,
            start_ticks: subject_ticks(process),
        }
    }

    fn cred(&self, process: Uuid) -> Cred {
        let pu = self
            .principal_now
            .get(&process)
            .copied()
            .or_else(|| self.subject(process).and_then(|s| s.principal));
        match pu.and_then(|u| self.defs.get(&u)) {
            Some(Def::Principal(p)) => Cred {
                uid: p.uid,
                gid: p.gid,
                euid: p.euid,
                egid: p.gid,
            },
            _ => Cred::default(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        host: Id128,
        boot: Id128,
        ts: u64,
        proc: ProcRef,
        cred: Cred,
        op: Op,
        ret: i64,
        out: &mut Vec<Event>,
    ) {
        self.seq += 1;
        self.last = Some((host, boot, ts));
        out.push(Event {
            host,
            boot,
            seq: self.seq,
            ts_ns: ts,
            proc,
            cred,
            op,
            ret,
        });
    }

    fn observed_op(&self, p: Uuid) -> Option<Op> {
        let s = self.subject(p)?;
        let argv: Vec<String> = match (&s.cmdline, &s.name) {
            (Some(c), _) => c.split_whitespace().map(str::to_string).collect(),
            (None, Some(n)) => vec![n.clone()],
            _ => Vec::new(),
        };
        let exe = s.exe.clone().or_else(|| argv.first().cloned());
        if exe.is_none() && argv.is_empty() && s.cwd.is_none() {
            return None;
        }
        Some(Op::Observed {
            exe,
            argv,
            cwd: s.cwd.clone(),
        })
    }

    /// Make process `p` known before its first event: spawned from its
    /// `parentSubject` (introduced first) when that is defined, and
    /// described by an `Observed` with its command line.
    fn introduce(&mut self, p: Uuid, host: Id128, boot: Id128, ts: u64, out: &mut Vec<Event>) {
        let mut chain = Vec::new();
        let mut cur = p;
        // Ancestors first; bounded, and a cycle of parents ends the walk.
        while !self.introduced.contains(&cur) && chain.len() < 64 && !chain.contains(&cur) {
            chain.push(cur);
            match self.subject(cur).and_then(|s| s.parent) {
                Some(par) if self.subject(par).is_some() => {
                    let pp = self.process_of(par);
                    if pp == cur {
                        break;
                    }
                    cur = pp;
                }
                _ => break,
            }
        }
        for &c in chain.iter().rev() {
            if !self.introduced.insert(c) {
                continue;
            }
            let parent = self
                .subject(c)
                .and_then(|s| s.parent)
                .filter(|&par| self.subject(par).is_some())
                .map(|par| self.process_of(par))
                .filter(|&par| par != c && self.introduced.contains(&par));
            let start = self
                .subject(c)
                .and_then(|s| s.start_ns)
                .filter(|&s| s <= ts)
                .unwrap_or(ts);
            if let Some(par) = parent {
                let child = self.proc_ref(c, c, None);
                let op = Op::Spawn {
                    call: Call::observed,
                    kind: SpawnKind::Process,
                    child,
                    flags: 0,
                };
                let pr = self.proc_ref(par, par, None);
                let cred = self.cred(par);
                self.push(host, boot, start, pr, cred, op, child.pid as i64, out);
                self.stats.synthesized_spawns += 1;
            }
            if let Some(op) = self.observed_op(c) {
                let pr = self.proc_ref(c, c, None);
                let cred = self.cred(c);
                self.push(host, boot, start, pr, cred, op, 0, out);
            }
        }
    }

    /// The event schema's view of an object UUID; `path` (the event's own
    /// `predicateObjectPath`) wins over the definition's.
    fn obj(&mut self, u: Uuid, path: Option<&String>) -> (ObjRef, Option<SockInfo>) {
        let (dev, ino) = object_dev_ino(u);
        match self.defs.get(&u) {
            Some(Def::Object(d)) => {
                let named = !(matches!(d.kind, ObjKind::Anon)
                    || (d.kind == ObjKind::Socket && d.otype == ObjectType::NetFlow)
                    || d.otype == ObjectType::UnnamedPipe
                    || d.otype == ObjectType::Ipc);
                let path = if named {
                    path.filter(|p| !p.is_empty()).cloned().or(d.path.clone())
                } else {
                    None
                };
                (
                    ObjRef {
                        kind: d.kind,
                        dev,
                        ino,
                        path,
                    },
                    d.sock.clone(),
                )
            }
            _ => {
                self.stats.undefined_objects += 1;
                (
                    ObjRef {
                        kind: ObjKind::Unknown,
                        dev,
                        ino,
                        path: path.filter(|p| !p.is_empty()).cloned(),
                    },
                    None,
                )
            }
        }
    }

    fn is_subject(&self, u: Uuid) -> bool {
        matches!(self.defs.get(&u), Some(Def::Subject(_)))
    }

    /// Convert one Event record. `Err` is a message for a warning (the event
    /// is then skipped); `Ok(false)` means the type is not mapped.
    pub fn event(
        &mut self,
        e: &record::Event,
        ctx: &Ctx,
        out: &mut Vec<Event>,
    ) -> Result<bool, String> {
        let t = e.kind.as_deref().ok_or("event without a type")?;
        let class = class(t);
        if class == Class::Skip {
            return Ok(false);
        }
        let subject = e
            .subject
            .get()
            .map(|u| u.0)
            .ok_or_else(|| format!("{t} without a subject"))?;
        if !self.is_subject(subject) {
            self.stats.undefined_subjects += 1;
            return Err(format!(
                "{t}: subject {} is not defined anywhere in the input: skipped",
                fmt_uuid(subject)
            ));
        }
        let process = self.process_of(subject);
        let host_u = ctx
            .host
            .or(e.host_id.get().map(|u| u.0))
            .or_else(|| self.subject(process).and_then(|s| s.host));
        let host = self.host_of(host_u);
        let boot = self.boot(host, ctx.session);
        let ts = e
            .timestamp_nanos
            .get()
            .and_then(|&t| u64::try_from(t).ok())
            .unwrap_or(0);
        let props: &Props = &e.properties.0;
        let ret_prop = props
            .any(&["return_value", "retval", "ret"])
            .and_then(parse_i64);
        let fd = props
            .any(&["fd", "fileDescriptor"])
            .and_then(parse_i64)
            .map(|v| v as i32)
            .unwrap_or(-1);
        let pred = e.predicate_object.get().map(|u| u.0);
        let pred2 = e.predicate_object2.get().map(|u| u.0);
        let path1 = e.predicate_object_path.get();
        let path2 = e.predicate_object2_path.get();
        let size = e.size.get().copied().unwrap_or(0).max(0) as u64;
        let location = e.location.get().and_then(|&l| u64::try_from(l).ok());

        // Spawns introduce the child themselves; everything else needs the
        // actor introduced first.
        if let Class::Spawn(call) = class {
            let Some(child) = pred.filter(|&c| self.is_subject(c)) else {
                self.stats.unfit += 1;
                return Err(format!("{t} without a child subject: skipped"));
            };
            self.introduce(process, host, boot, ts, out);
            let actor = self.proc_ref(process, subject, e.thread_id.get().copied());
            let cred = self.cred(process);
            let child_kind = self.subject(child).map(|s| s.kind);
            if child_kind != Some(SubjKind::Process) {
                let op = Op::Spawn {
                    call,
                    kind: SpawnKind::Thread,
                    child: ProcRef {
                        tid: self.subject(child).map(|s| s.cid as u32).unwrap_or(0),
                        ..actor
                    },
                    flags: 0x10000,
                };
                let ret = self.subject(child).map(|s| s.cid).unwrap_or(0);
                self.push(host, boot, ts, actor, cred, op, ret, out);
                return Ok(true);
            }
            if !self.introduced.insert(child) {
                self.stats.late_spawns += 1;
                return Ok(true);
            }
            let cref = self.proc_ref(child, child, None);
            let op = Op::Spawn {
                call,
                kind: SpawnKind::Process,
                child: cref,
                flags: 0,
            };
            self.push(host, boot, ts, actor, cred, op, cref.pid as i64, out);
            if let Some(op) = self.observed_op(child) {
                let c = self.cred(child);
                self.push(host, boot, ts, cref, c, op, 0, out);
            }
            return Ok(true);
        }

        self.introduce(process, host, boot, ts, out);
        let actor = self.proc_ref(process, subject, e.thread_id.get().copied());
        let mut ret = 0i64;
        let need = |p: Option<Uuid>| p.ok_or_else(|| format!("{t} without a predicate object"));
        let op = match class {
            Class::Io(call, dir) => {
                let o = need(pred)?;
                if self.is_subject(o) {
                    self.stats.unfit += 1;
                    return Err(format!("{t} of a subject: skipped"));
                }
                let (obj, sock) = self.obj(o, path1);
                self.seen.insert(o);
                ret = size as i64;
                Op::Io {
                    call,
                    dir,
                    fd,
                    obj,
                    offset: location,
                    count: size,
                    sock,
                }
            }
            Class::Open | Class::Create => {
                let o = need(pred)?;
                let first = self.seen.insert(o);
                let (obj, sock) = self.obj(o, path1);
                let create = class == Class::Create;
                let mode = props
                    .get("mode")
                    .and_then(|m| u32::from_str_radix(m.trim().trim_start_matches("0o"), 8).ok())
                    .unwrap_or(0);
                match obj.kind {
                    ObjKind::Dir if create => Op::Mkdir {
                        call: Call::mkdir,
                        path: obj.path.clone().unwrap_or_default(),
                        obj,
                        mode,
                    },
                    ObjKind::Pipe if create && first => Op::Pipe {
                        call: Call::pipe,
                        read_fd: -1,
                        write_fd: -1,
                        obj,
                    },
                    ObjKind::Socket if create && first => Op::Socket {
                        call: Call::socket,
                        fd,
                        obj,
                        sock: sock.unwrap_or(SockInfo {
                            domain: 0,
                            sock_type: 0,
                            protocol: 0,
                            local: None,
                            peer: None,
                        }),
                    },
                    ObjKind::Pipe | ObjKind::Socket if create => {
                        // Already in the graph: creating it again would
                        // make a second entity.
                        return Ok(true);
                    }
                    _ => {
                        let mut flags = props
                            .get("flags")
                            .map(|f| flag_bits(f, OPEN_FLAGS))
                            .unwrap_or(0);
                        if create {
                            flags |= 0o100 | 1;
                        }
                        if fd >= 0 {
                            ret = fd as i64;
                        }
                        Op::Open {
                            call: if create { Call::creat } else { Call::open },
                            fd,
                            obj,
                            flags,
                            mode,
                            created: create && first,
                        }
                    }
                }
            }
            Class::Close => {
                let o = need(pred)?;
                let (obj, _) = self.obj(o, path1);
                self.seen.insert(o);
                Op::Close {
                    call: Call::close,
                    fd,
                    obj,
                }
            }
            Class::Execute => {
                let o = need(pred)?;
                if self.is_subject(o) {
                    self.stats.unfit += 1;
                    return Err(format!("{t} of a subject (not a file): skipped"));
                }
                self.seen.insert(o);
                let (exe, _) = self.obj(o, path1);
                let cmd = props
                    .any(&["cmdLine", "cmdline", "args", "argv"])
                    .map(str::to_string)
                    .or_else(|| self.subject(process).and_then(|s| s.cmdline.clone()));
                let argv = cmd
                    .map(|c| c.split_whitespace().map(str::to_string).collect())
                    .unwrap_or_else(|| exe.path.iter().cloned().collect());
                Op::Exec {
                    call: Call::execve,
                    exe,
                    argv,
                    env: None,
                    cwd: props.get("cwd").map(str::to_string),
                }
            }
            Class::Exit => {
                let code = props
                    .any(&["exit_code", "exit_status", "status"])
                    .and_then(parse_i64)
                    .unwrap_or(0) as i32;
                Op::Exit {
                    call: Call::exit_group,
                    code,
                    signal: None,
                }
            }
            Class::Signal => {
                let o = need(pred)?;
                if !self.is_subject(o) {
                    self.stats.unfit += 1;
                    return Err(format!("{t} to something that is not a subject: skipped"));
                }
                let tp = self.process_of(o);
                self.introduce(tp, host, boot, ts, out);
                let target = self.proc_ref(tp, o, None);
                // -1: the record does not say which signal.
                let signal = props
                    .any(&["signal", "sig", "signum"])
                    .and_then(parse_i64)
                    .unwrap_or(-1) as i32;
                Op::Kill {
                    call: Call::kill,
                    target,
                    signal,
                }
            }
            Class::Connect | Class::Bind | Class::Accept => {
                let o = need(pred)?;
                let first = self.seen.insert(o);
                let (obj, sock) = self.obj(o, path1);
                let sock = sock.unwrap_or(SockInfo {
                    domain: 0,
                    sock_type: 0,
                    protocol: 0,
                    local: None,
                    peer: None,
                });
                match class {
                    Class::Connect => Op::Connect {
                        call: Call::connect,
                        fd,
                        obj,
                        sock,
                    },
                    Class::Bind => Op::Bind {
                        call: Call::bind,
                        fd,
                        obj,
                        addr: sock.local.clone().unwrap_or(SockAddr::Unnamed),
                    },
                    _ => {
                        if !first {
                            // The accepted flow is in the graph already;
                            // accepting it again would make a second entity.
                            self.stats.unfit += 1;
                            return Ok(true);
                        }
                        // CDM names only the accepted flow: the listening
                        // socket is one per (host, local address).
                        let key = format!("listen {:?} {:?}", host, sock.local);
                        let lu = uuid::Uuid::new_v5(&NS, key.as_bytes()).as_u128();
                        let (ldev, lino) = object_dev_ino(lu);
                        Op::Accept {
                            call: Call::accept,
                            fd,
                            new_fd: fd,
                            listen_obj: ObjRef {
                                kind: ObjKind::Socket,
                                dev: ldev,
                                ino: lino,
                                path: None,
                            },
                            obj,
                            sock,
                        }
                    }
                }
            }
            Class::Unlink => {
                let o = need(pred)?;
                self.seen.insert(o);
                let (obj, _) = self.obj(o, path1);
                Op::Unlink {
                    call: Call::unlink,
                    path: obj.path.clone().unwrap_or_default(),
                    dir: obj.kind == ObjKind::Dir,
                    obj,
                }
            }
            Class::Rename | Class::Link => {
                let o = need(pred)?;
                self.seen.insert(o);
                let (obj, _) = self.obj(o, path1);
                let new_path = path2
                    .cloned()
                    .or_else(|| match pred2.and_then(|u| self.defs.get(&u)) {
                        Some(Def::Object(d)) => d.path.clone(),
                        _ => None,
                    })
                    .ok_or_else(|| format!("{t} without the new name"))?;
                let old_path = obj.path.clone().unwrap_or_default();
                // The new name belongs to the object renamed, not to the
                // event's second object.
                let obj = ObjRef {
                    path: Some(new_path.clone()),
                    ..obj
                };
                if class == Class::Rename {
                    Op::Rename {
                        call: Call::rename,
                        old_path,
                        new_path,
                        obj,
                        replaced: None,
                    }
                } else {
                    Op::Link {
                        call: Call::link,
                        target: old_path,
                        new_path,
                        obj,
                        symbolic: false,
                    }
                }
            }
            Class::Mmap | Class::LoadLibrary => {
                let o = need(pred)?;
                let (obj, _) = self.obj(o, path1);
                if !matches!(obj.kind, ObjKind::File | ObjKind::Unknown) {
                    self.stats.unfit += 1;
                    return Err(format!("{t} of a {:?} object: skipped", obj.kind));
                }
                self.seen.insert(o);
                let prot = if class == Class::LoadLibrary {
                    tomo_event::mm::PROT_READ | tomo_event::mm::PROT_EXEC
                } else {
                    props
                        .any(&["prot", "protection"])
                        .map(|p| flag_bits(p, PROT_FLAGS))
                        .unwrap_or(tomo_event::mm::PROT_READ)
                };
                let flags = props
                    .get("flags")
                    .map(|f| flag_bits(f, MAP_FLAGS))
                    .unwrap_or(tomo_event::mm::MAP_PRIVATE);
                Op::Mmap {
                    call: Call::mmap,
                    fd,
                    obj,
                    offset: location.unwrap_or(0),
                    len: size,
                    prot,
                    flags,
                }
            }
            Class::ModifyAttributes => {
                let o = need(pred)?;
                self.seen.insert(o);
                let (obj, _) = self.obj(o, path1);
                let mode = props
                    .get("mode")
                    .and_then(|m| u32::from_str_radix(m.trim().trim_start_matches("0o"), 8).ok())
                    .unwrap_or(0);
                Op::Chmod {
                    call: Call::chmod,
                    fd: (fd >= 0).then_some(fd),
                    obj,
                    mode,
                }
            }
            Class::Truncate => {
                let o = need(pred)?;
                self.seen.insert(o);
                let (obj, _) = self.obj(o, path1);
                Op::Truncate {
                    call: Call::truncate,
                    fd: (fd >= 0).then_some(fd),
                    obj,
                    length: size,
                }
            }
            Class::ChangePrincipal => {
                let new = pred.filter(|u| matches!(self.defs.get(u), Some(Def::Principal(_))));
                let uid = match new.and_then(|u| self.defs.get(&u)) {
                    Some(Def::Principal(p)) => p.uid,
                    _ => props
                        .any(&["uid", "userId"])
                        .and_then(|v| v.trim().parse().ok())
                        .ok_or_else(|| format!("{t} without the new principal"))?,
                };
                if let Some(n) = new {
                    self.principal_now.insert(process, n);
                }
                Op::SetId {
                    call: Call::setuid,
                    ids: [uid, u32::MAX, u32::MAX],
                }
            }
            Class::Dup => {
                let o = need(pred)?;
                self.seen.insert(o);
                let (obj, _) = self.obj(o, path1);
                Op::Dup {
                    call: Call::dup,
                    old_fd: fd,
                    new_fd: -1,
                    obj,
                }
            }
            Class::Spawn(_) | Class::Skip => unreachable!("handled above"),
        };
        if let Some(r) = ret_prop {
            // A failure, or the value itself when the op has no count.
            if r < 0 || ret == 0 {
                ret = r;
            }
        }
        let cred = self.cred(process);
        self.push(host, boot, ts, actor, cred, op, ret, out);
        Ok(true)
    }

    /// Process Subjects that did nothing: introduced last, in start order,
    /// so that `ps` lists every process the input defines.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        let mut idle: Vec<(u64, Uuid)> = self
            .defs
            .iter()
            .filter_map(|(&u, d)| match d {
                Def::Subject(s) if s.kind == SubjKind::Process && !self.introduced.contains(&u) => {
                    Some((s.start_ns.unwrap_or(0), u))
                }
                _ => None,
            })
            .collect();
        idle.sort_unstable();
        for (start, u) in idle {
            if self.introduced.contains(&u) {
                continue;
            }
            let host_u = self.subject(u).and_then(|s| s.host);
            let (host, boot, last_ts) = match (host_u, self.last) {
                (None, Some(l)) => l,
                _ => {
                    let h = self.host_of(host_u);
                    (h, boot_id(h, 0), 0)
                }
            };
            let ts = if start > 0 { start } else { last_ts };
            let before = out.len();
            self.introduce(u, host, boot, ts, out);
            if out.len() == before {
                // Nothing to say about it (no parent, no command line):
                // still list it.
                let pr = self.proc_ref(u, u, None);
                let cred = self.cred(u);
                let op = Op::Observed {
                    exe: None,
                    argv: Vec::new(),
                    cwd: None,
                };
                self.push(host, boot, ts, pr, cred, op, 0, out);
            }
            self.stats.idle_subjects += 1;
        }
    }
}

pub fn fmt_uuid(u: Uuid) -> String {
    uuid::Uuid::from_u128(u)
        .hyphenated()
        .to_string()
        .to_uppercase()
}

//! Graph ingest: turns normalized events into provenance-graph mutations.
//!
//! This is the only place where identities are decided:
//! - process: UUIDv5(host, boot, pid, start_ticks). Pids are reused, the
//!   start time within one boot is not.
//! - file, dir, symlink, device: UUIDv5(host, dev, ino, generation). The
//!   generation starts at 0 the first time `(dev, ino)` is seen and advances
//!   whenever an event says the inode was newly created (O_CREAT that
//!   created it, mkdir, mknod, symlink), so a reused inode is a new entity.
//! - pipe, socket, anon: as files but also keyed by boot, since their inodes
//!   live in pseudo-filesystems that restart at every boot.
//!
//! Paths are names attached to entities, never identities.
//!
//! The mapping from events to edges follows the PVM verbs (declare, source,
//! sink, connect, name); see ARCHITECTURE.md for the table.

pub mod collection;
pub mod index;

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Hash maps of the ingest: keyed per event, so hashed with foldhash
/// (randomly seeded, several times faster than SipHash on these keys).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::net::IpAddr;
use tomo_event::{
    Call, Dir, Event, Id128, ObjKind, ObjRef, Op, ProcRef, SockAddr, SockInfo, SpawnKind,
};
use tomo_store::{EdgeKind, EntityId, EntityKind, ExecInfo, Flow, Graph};

/// Tomo's UUIDv5 identities (`tomo_store::ident`: the store recomputes
/// them instead of storing them).
use tomo_store::ident;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct ObjKey {
    host: Id128,
    boot: Option<Id128>,
    dev: u64,
    ino: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct ProcKey {
    host: Id128,
    boot: Id128,
    pid: u32,
}

/// Incremental ingest state: feed events in recording order with
/// [`Ingest::apply`], then take the graph.
#[derive(Default)]
pub struct Ingest {
    pub graph: Graph,
    /// Current generation and entity of each inode.
    objs: HashMap<ObjKey, ObjSlot>,
    /// The live process entity of each pid (start_ticks disambiguates reuse).
    procs: HashMap<ProcKey, (u64, EntityId)>,
    /// Socket peering: the connected other end of each socket entity.
    peer: HashMap<EntityId, EntityId>,
    /// TCP/UDP ends by (local, peer) address, to pair the two ends of a local connection.
    inet_ends: HashMap<(SockAddr, SockAddr), EntityId>,
    /// UNIX stream clients waiting for an accept, by server path.
    unix_pending: HashMap<String, VecDeque<EntityId>>,
    /// UNIX stream sockets accepted before their client's connect was seen,
    /// by server path. A source that observes the two processes separately
    /// (ptrace) may report the accept first: both calls complete together.
    unix_accepted: HashMap<String, VecDeque<EntityId>>,
    /// Bound datagram sockets by local address, to find a sender.
    dgram_bound: HashMap<SockAddr, EntityId>,
    /// Host of the event being applied: loopback addresses are scoped by it.
    cur_host: Id128,
}

/// An inode's current generation and entity, and a fingerprint of the last
/// path it was reached by. Most events name an object by the path it
/// already has: comparing that path with the entity's names chased three
/// pointers per event (an eighth of the ingest at 10 M events); a matching
/// fingerprint says the name is attached already (names are never removed).
/// Not persisted: a resumed ingest starts with none and compares once.
#[derive(Clone, Copy)]
struct ObjSlot {
    gen: u32,
    e: EntityId,
    name_fp: u64,
}

/// The ingest's working state besides the graph, as persisted next to a
/// stored graph so that ingest can continue where it stopped.
#[derive(Serialize, Deserialize)]
struct SavedState {
    objs: Vec<(ObjKey, (u32, EntityId))>,
    procs: Vec<(ProcKey, (u64, EntityId))>,
    peer: Vec<(EntityId, EntityId)>,
    inet_ends: Vec<((SockAddr, SockAddr), EntityId)>,
    unix_pending: Vec<(String, VecDeque<EntityId>)>,
    unix_accepted: Vec<(String, VecDeque<EntityId>)>,
    dgram_bound: Vec<(SockAddr, EntityId)>,
}

/// A saved ingest state that does not fit the graph it was saved with.
#[derive(Debug, thiserror::Error)]
#[error("saved ingest state is invalid: {0}")]
pub struct StateError(String);

impl Ingest {
    pub fn new() -> Ingest {
        Ingest::default()
    }

    /// The working state (identity tables, socket pairing) in a compact
    /// binary form; [`Ingest::resume`] continues from it.
    pub fn save_state(&self) -> Vec<u8> {
        fn v<K: Clone, V: Clone>(m: &HashMap<K, V>) -> Vec<(K, V)> {
            m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        }
        let st = SavedState {
            objs: self.objs.iter().map(|(k, o)| (*k, (o.gen, o.e))).collect(),
            procs: v(&self.procs),
            peer: v(&self.peer),
            inet_ends: v(&self.inet_ends),
            unix_pending: v(&self.unix_pending),
            unix_accepted: v(&self.unix_accepted),
            dgram_bound: v(&self.dgram_bound),
        };
        postcard::to_stdvec(&st).expect("in-memory serialization cannot fail")
    }

    /// Continue ingesting into `graph` (loaded from a store) with the state
    /// saved by [`Ingest::save_state`] when that graph was stored.
    pub fn resume(graph: Graph, state: &[u8]) -> Result<Ingest, StateError> {
        let st: SavedState = match postcard::from_bytes(state) {
            Ok(s) => s,
            Err(e) => return Err(StateError(e.to_string())),
        };
        let n = graph.entities.len() as EntityId;
        let ents = st
            .objs
            .iter()
            .map(|(_, (_, e))| *e)
            .chain(st.procs.iter().map(|(_, (_, e))| *e))
            .chain(st.peer.iter().flat_map(|(a, b)| [*a, *b]))
            .chain(st.inet_ends.iter().map(|(_, e)| *e))
            .chain(st.unix_pending.iter().flat_map(|(_, q)| q.iter().copied()))
            .chain(st.unix_accepted.iter().flat_map(|(_, q)| q.iter().copied()))
            .chain(st.dgram_bound.iter().map(|(_, e)| *e));
        for e in ents {
            if e >= n {
                return Err(StateError(format!(
                    "entity {e} does not exist (the graph has {n})"
                )));
            }
        }
        if st
            .procs
            .iter()
            .any(|(_, (_, e))| graph.entities[*e as usize].process.is_none())
        {
            return Err(StateError("a process entry names a non-process".into()));
        }
        Ok(Ingest {
            graph,
            objs: st
                .objs
                .into_iter()
                .map(|(k, (gen, e))| (k, ObjSlot { gen, e, name_fp: 0 }))
                .collect(),
            procs: st.procs.into_iter().collect(),
            peer: st.peer.into_iter().collect(),
            inet_ends: st.inet_ends.into_iter().collect(),
            unix_pending: st.unix_pending.into_iter().collect(),
            unix_accepted: st.unix_accepted.into_iter().collect(),
            dgram_bound: st.dgram_bound.into_iter().collect(),
            cur_host: Id128::default(),
        })
    }

    /// The (host, boot) pairs of the processes seen, most common first (at
    /// most 64): every UUID the ingest made derives from one of them, which
    /// lets the store recompute UUIDs instead of storing them.
    pub fn uuid_roots(&self) -> Vec<([u8; 16], [u8; 16])> {
        let mut n: HashMap<([u8; 16], [u8; 16]), usize> = HashMap::default();
        for k in self.procs.keys() {
            *n.entry((k.host.0, k.boot.0)).or_default() += 1;
        }
        let mut v: Vec<_> = n.into_iter().collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.into_iter().take(64).map(|(r, _)| r).collect()
    }

    pub fn into_graph(self) -> Graph {
        self.graph
    }

    /// Apply one event. Failed operations (ret < 0) change nothing but the
    /// process's existence and credentials: they are not flows.
    pub fn apply(&mut self, ev: &Event) {
        self.graph.events_applied += 1;
        self.cur_host = ev.host;
        if let Op::Content { .. } = ev.op {
            // The bytes of an `Io` event already applied: searched by
            // `tomo grep`, never structure (not even a process sighting).
            return;
        }
        let p = self.process(ev, ev.proc);
        {
            let info = self.graph.process_mut(p).expect("process entity");
            info.uid = ev.cred.uid;
            info.euid = ev.cred.euid;
        }
        let ts = ev.ts_ns;
        let call = call_name(ev.op.call());
        match &ev.op {
            Op::Observed { exe, argv, cwd } => {
                let info = self.graph.process_mut(p).expect("process entity");
                if exe.is_some() {
                    info.exe = exe.clone();
                }
                if !argv.is_empty() {
                    info.argv = argv.clone();
                }
                if cwd.is_some() {
                    info.cwd = cwd.clone();
                }
                if let Some(exe) = exe {
                    let label = basename(exe).to_string();
                    let n = self.graph.entities[p as usize].current();
                    self.graph.nodes[n as usize].label = label.into();
                }
            }
            _ if !ev.ok() => {}
            Op::Spawn { kind, child, .. } => {
                if *kind == SpawnKind::Thread {
                    return;
                }
                let c = self.process(ev, *child);
                let (exe, argv, cwd, label) = {
                    let parent = &self.graph.entities[p as usize];
                    let info = parent.process.as_deref().expect("process");
                    let exe = info
                        .execs
                        .last()
                        .map(|x| x.exe.clone())
                        .or_else(|| info.exe.clone());
                    let argv = info
                        .execs
                        .last()
                        .map(|x| x.argv.clone())
                        .unwrap_or_else(|| info.argv.clone());
                    (
                        exe,
                        argv,
                        info.cwd.clone(),
                        self.graph.nodes[parent.current() as usize].label.clone(),
                    )
                };
                {
                    let info = self.graph.process_mut(c).expect("process");
                    info.parent = Some(p);
                    info.ppid = ev.proc.pid;
                    info.exe = exe;
                    info.argv = argv;
                    info.cwd = cwd;
                }
                let cn = self.graph.entities[c as usize].current();
                self.graph.nodes[cn as usize].label = label;
                self.graph
                    .flow(p, c, flow(EdgeKind::Spawn, ts, 0, None, call));
            }
            Op::Exec { exe, argv, cwd, .. } => {
                let path = exe
                    .path
                    .clone()
                    .unwrap_or_else(|| argv.first().cloned().unwrap_or_default());
                let label = basename(&path).to_string();
                {
                    let info = self.graph.process_mut(p).expect("process");
                    info.execs.push(ExecInfo {
                        exe: path.clone(),
                        argv: argv.clone(),
                        ts_ns: ts,
                    });
                    if cwd.is_some() {
                        info.cwd = cwd.clone();
                    }
                }
                // A process that has done nothing yet (fresh from fork) keeps
                // its version; otherwise exec starts a new one.
                let cur = self.graph.entities[p as usize].current();
                let untouched = self.graph.out_edges(cur).is_empty()
                    && self
                        .graph
                        .in_edges(cur)
                        .iter()
                        .all(|&e| self.graph.edges[e as usize].kind == EdgeKind::Spawn);
                if untouched {
                    self.graph.nodes[cur as usize].label = label.into();
                } else {
                    self.graph
                        .new_version(p, ts, Some(label), EdgeKind::Exec, call);
                }
                if exe.kind != ObjKind::Unknown {
                    let f = self.object(ev, exe, false);
                    self.graph
                        .flow(f, p, flow(EdgeKind::Load, ts, 0, None, call));
                }
            }
            Op::Exit { code, signal, call } => {
                // `exit` ends one thread; only the group's end ends the process.
                if *call == Call::exit && ev.proc.tid != ev.proc.pid {
                    return;
                }
                let info = self.graph.process_mut(p).expect("process");
                info.end_ns = Some(ts);
                info.exit_code = if signal.is_some() { None } else { Some(*code) };
                info.exit_signal = *signal;
            }
            Op::Kill { target, signal, .. } => {
                if *signal != 0 {
                    let t = self.process(ev, *target);
                    self.graph
                        .flow(p, t, flow(EdgeKind::Signal, ts, 0, None, call));
                }
            }
            Op::Open {
                obj,
                flags,
                created,
                ..
            } => {
                let o = self.object(ev, obj, *created);
                const O_TRUNC: u32 = 0o1000;
                const O_ACCMODE: u32 = 0o3;
                let writable = flags & O_ACCMODE != 0;
                if *created || (flags & O_TRUNC != 0 && writable && obj.kind == ObjKind::File) {
                    self.graph
                        .flow(p, o, flow(EdgeKind::Write, ts, 0, Some(0), call));
                }
            }
            Op::Close { .. } | Op::Dup { .. } | Op::Listen { .. } | Op::SetId { .. } => {}
            Op::Io {
                dir,
                obj,
                offset,
                count,
                sock,
                ..
            } => {
                let o = self.object(ev, obj, false);
                if let Some(s) = sock {
                    self.note_socket(o, s);
                }
                match dir {
                    Dir::Write => {
                        self.graph
                            .flow(p, o, flow(EdgeKind::Write, ts, *count, *offset, call));
                    }
                    Dir::Read => {
                        self.pull_from_peer(o, sock.as_ref(), ts, *count, *offset, call);
                        self.graph
                            .flow(o, p, flow(EdgeKind::Read, ts, *count, *offset, call));
                    }
                }
            }
            Op::Transfer {
                src,
                src_offset,
                dst,
                dst_offset,
                count,
                ..
            } => {
                let s = self.object(ev, src, false);
                let d = self.object(ev, dst, false);
                self.pull_from_peer(s, None, ts, *count, *src_offset, call);
                self.graph
                    .flow(s, p, flow(EdgeKind::Read, ts, *count, *src_offset, call));
                self.graph
                    .flow(p, d, flow(EdgeKind::Write, ts, *count, *dst_offset, call));
            }
            Op::Mmap {
                obj,
                offset,
                len,
                prot,
                flags,
                ..
            } => {
                use tomo_event::mm::*;
                let o = self.object(ev, obj, false);
                if prot & PROT_EXEC != 0 {
                    self.graph
                        .flow(o, p, flow(EdgeKind::Load, ts, *len, Some(*offset), call));
                } else if prot & PROT_READ != 0 {
                    self.graph
                        .flow(o, p, flow(EdgeKind::Read, ts, *len, Some(*offset), call));
                }
                if prot & PROT_WRITE != 0 && flags & MAP_SHARED != 0 {
                    self.graph
                        .flow(p, o, flow(EdgeKind::Write, ts, *len, Some(*offset), call));
                }
            }
            Op::Pipe { obj, .. } => {
                self.object(ev, obj, true);
            }
            Op::Rename {
                new_path,
                obj,
                replaced,
                ..
            } => {
                if let Some(r) = replaced {
                    let r = self.object(ev, r, false);
                    self.graph
                        .flow(p, r, flow(EdgeKind::Unlink, ts, 0, None, call));
                }
                let o = self.object(ev, obj, false);
                self.graph.name(o, new_path);
                self.graph
                    .flow(p, o, flow(EdgeKind::Rename, ts, 0, None, call));
            }
            Op::Link {
                new_path,
                obj,
                symbolic,
                ..
            } => {
                // A symlink is a new inode; a hard link is a new name of the old one.
                let o = self.object(ev, obj, *symbolic);
                self.graph.name(o, new_path);
                let k = if *symbolic {
                    EdgeKind::Symlink
                } else {
                    EdgeKind::Link
                };
                self.graph.flow(p, o, flow(k, ts, 0, None, call));
            }
            Op::Unlink { obj, .. } => {
                let o = self.object(ev, obj, false);
                self.graph
                    .flow(p, o, flow(EdgeKind::Unlink, ts, 0, None, call));
            }
            Op::Mkdir { obj, .. } => {
                let o = self.object(ev, obj, true);
                self.graph
                    .flow(p, o, flow(EdgeKind::Mkdir, ts, 0, None, call));
            }
            Op::Mknod { obj, .. } => {
                let o = self.object(ev, obj, true);
                self.graph
                    .flow(p, o, flow(EdgeKind::Mknod, ts, 0, None, call));
            }
            Op::Truncate { obj, length, .. } => {
                let o = self.object(ev, obj, false);
                self.graph
                    .flow(p, o, flow(EdgeKind::Write, ts, 0, Some(*length), call));
            }
            Op::Chmod { obj, .. } => {
                let o = self.object(ev, obj, false);
                self.graph
                    .flow(p, o, flow(EdgeKind::Chmod, ts, 0, None, call));
            }
            Op::Chown { obj, .. } => {
                let o = self.object(ev, obj, false);
                self.graph
                    .flow(p, o, flow(EdgeKind::Chown, ts, 0, None, call));
            }
            Op::Chdir { path, .. } => {
                if let Some(info) = self.graph.process_mut(p) {
                    info.cwd = Some(path.clone());
                }
            }
            Op::Socket { obj, sock, .. } => {
                let o = self.object(ev, obj, true);
                self.note_socket(o, sock);
            }
            Op::SocketPair { objs, .. } => {
                let a = self.object(ev, &objs[0], true);
                let b = self.object(ev, &objs[1], true);
                self.peer.insert(a, b);
                self.peer.insert(b, a);
            }
            Op::Bind { obj, addr, .. } => {
                let o = self.object(ev, obj, false);
                self.graph.name(o, &addr_name(addr));
                self.dgram_bound.insert(normalize(ev.host, addr), o);
            }
            Op::Connect { obj, sock, .. } => {
                let o = self.object(ev, obj, false);
                self.note_socket(o, sock);
                if let (Some(SockAddr::Unix { path, .. }), true) =
                    (&sock.peer, sock.sock_type != SOCK_DGRAM)
                {
                    match self.unix_accepted.get_mut(path).and_then(|q| q.pop_front()) {
                        Some(server) => {
                            self.peer.insert(o, server);
                            self.peer.insert(server, o);
                        }
                        None => self
                            .unix_pending
                            .entry(path.clone())
                            .or_default()
                            .push_back(o),
                    }
                }
            }
            Op::Accept {
                listen_obj,
                obj,
                sock,
                ..
            } => {
                let l = self.object(ev, listen_obj, false);
                let o = self.object(ev, obj, true);
                self.note_socket(o, sock);
                if let Some(SockAddr::Unix { path, .. }) = &sock.local {
                    match self.unix_pending.get_mut(path).and_then(|q| q.pop_front()) {
                        Some(client) => {
                            self.peer.insert(o, client);
                            self.peer.insert(client, o);
                        }
                        None => self
                            .unix_accepted
                            .entry(path.clone())
                            .or_default()
                            .push_back(o),
                    }
                }
                // The listening socket's name helps a reader find the server side.
                let _ = l;
            }
            Op::Content { .. } => {}
        }
    }

    /// The process entity for `pr`, declared on first sight.
    fn process(&mut self, ev: &Event, pr: ProcRef) -> EntityId {
        let key = ProcKey {
            host: ev.host,
            boot: ev.boot,
            pid: pr.pid,
        };
        if let Some(&(start, e)) = self.procs.get(&key) {
            // start_ticks 0 means "unknown"; trust the pid then.
            if start == pr.start_ticks || pr.start_ticks == 0 || start == 0 {
                if start == 0 && pr.start_ticks != 0 {
                    self.procs.insert(key, (pr.start_ticks, e));
                }
                return e;
            }
        }
        // Unknown start time: disambiguated by first sighting so a reused
        // pid is still a new entity.
        let uuid = ident::process_uuid(&ev.host.0, &ev.boot.0, pr.pid, pr.start_ticks, ev.ts_ns);
        if let Some(e) = self.graph.by_uuid(&uuid) {
            // A process seen before under this pid, after another one with
            // the same pid (sources that know start times can interleave
            // two of them): it is still that process, with its facts.
            self.procs.insert(key, (pr.start_ticks, e));
            return e;
        }
        let e = self.graph.declare(uuid, EntityKind::Process, ev.ts_ns, "?");
        self.graph.index_pid(e, pr.pid);
        let info = self.graph.process_mut(e).expect("process");
        info.pid = pr.pid;
        info.ppid = pr.ppid;
        info.start_ticks = pr.start_ticks;
        info.start_ns = ev.ts_ns;
        self.procs.insert(key, (pr.start_ticks, e));
        e
    }

    /// The entity of a kernel object; `created` starts a new generation.
    fn object(&mut self, ev: &Event, obj: &ObjRef, created: bool) -> EntityId {
        let kind = entity_kind(obj.kind);
        let per_boot = matches!(
            kind,
            EntityKind::Pipe | EntityKind::Socket | EntityKind::Anon
        );
        let unknown = obj.kind == ObjKind::Unknown && obj.ino == 0;
        let key = ObjKey {
            host: ev.host,
            boot: if per_boot || unknown {
                Some(ev.boot)
            } else {
                None
            },
            dev: obj.dev,
            // Unresolved objects are distinguished by name only.
            ino: if unknown {
                fnv(obj.path.as_deref().unwrap_or(""))
            } else {
                obj.ino
            },
        };
        let gen = match self.objs.get_mut(&key) {
            Some(slot) if !created => {
                if let Some(p) = &obj.path {
                    let fp = name_fingerprint(p);
                    if slot.name_fp != fp {
                        slot.name_fp = fp;
                        self.graph.name(slot.e, p);
                    }
                }
                return slot.e;
            }
            Some(slot) => slot.gen + 1,
            None => 0,
        };
        let boot = key.boot.map(|b| b.0);
        let uuid = ident::object_uuid(&key.host.0, boot.as_ref(), key.dev, key.ino, gen);
        let label = match (&obj.path, kind) {
            (Some(p), _) => p.clone(),
            (None, EntityKind::Pipe) => format!("pipe:[{}]", obj.ino),
            (None, EntityKind::Socket) => format!("socket:[{}]", obj.ino),
            (None, k) => format!("{}:[{}]", k.as_str(), obj.ino),
        };
        let e = self.graph.declare(uuid, kind, ev.ts_ns, &label);
        self.graph.entities[e as usize].dev_ino = Some((obj.dev, obj.ino));
        if let Some(p) = &obj.path {
            self.graph.name(e, p);
        } else {
            self.graph.name(e, &label);
        }
        let name_fp = obj.path.as_deref().map_or(0, name_fingerprint);
        self.objs.insert(key, ObjSlot { gen, e, name_fp });
        e
    }

    /// Remember a socket's addresses and pair it with its other end when
    /// both ends of a connection are in the recording.
    fn note_socket(&mut self, o: EntityId, s: &SockInfo) {
        if let (Some(l), Some(r)) = (&s.local, &s.peer) {
            if matches!(l, SockAddr::Inet { .. })
                && matches!(r, SockAddr::Inet { .. })
                && !self.peer.contains_key(&o)
            {
                let (l, r) = (normalize(self.cur_host, l), normalize(self.cur_host, r));
                if let Some(&other) = self.inet_ends.get(&(r.clone(), l.clone())) {
                    if other != o && s.sock_type != SOCK_DGRAM {
                        self.peer.insert(o, other);
                        self.peer.insert(other, o);
                    }
                }
                self.inet_ends.insert((l, r), o);
            }
        }
        if let Some(l) = &s.local {
            if s.sock_type == SOCK_DGRAM {
                self.dgram_bound
                    .entry(normalize(self.cur_host, l))
                    .or_insert(o);
            }
        }
    }

    /// Before a read from socket `o`, carry the data over from the connected
    /// end (or, for datagrams, from the sender identified by its address).
    /// `offset` is the reader's stream offset: a stream delivers bytes in
    /// order, so the bytes read at offset X are those the other end (on this
    /// host or another) wrote at its offset X; the flow edge keeps the range.
    #[allow(clippy::too_many_arguments)]
    fn pull_from_peer(
        &mut self,
        o: EntityId,
        s: Option<&SockInfo>,
        ts: u64,
        count: u64,
        offset: Option<u64>,
        call: &'static str,
    ) {
        let from = match self.peer.get(&o) {
            Some(&p) => Some(p),
            None => s
                .filter(|s| s.sock_type == SOCK_DGRAM)
                .and_then(|s| s.peer.as_ref())
                .and_then(|a| self.dgram_sender(a)),
        };
        if let Some(from) = from {
            if from != o {
                self.graph
                    .flow(from, o, flow(EdgeKind::Flow, ts, count, offset, call));
            }
        }
    }
}

const SOCK_DGRAM: u16 = 2;

impl Ingest {
    /// The datagram socket that sends from address `a`: bound to exactly
    /// `a`, or to the wildcard address with the same port (an unbound UDP
    /// socket is bound to 0.0.0.0:PORT by its first send, and its datagrams
    /// arrive from 127.0.0.1:PORT).
    fn dgram_sender(&self, a: &SockAddr) -> Option<EntityId> {
        let a = normalize(self.cur_host, a);
        if let Some(&o) = self.dgram_bound.get(&a) {
            return Some(o);
        }
        match a {
            SockAddr::Inet { port, .. } => [
                IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            ]
            .into_iter()
            .find_map(|ip| self.dgram_bound.get(&SockAddr::Inet { ip, port }).copied()),
            _ => None,
        }
    }
}

/// The key of an address for pairing the ends of a flow: IPv4-mapped IPv6
/// is IPv4, so that both ends match; and a loopback address only pairs
/// sockets of the same host (every host has its own 127.0.0.1), so it is
/// scoped by the host: mapped into the discard-only prefix 100::/64 (RFC
/// 6666, never a socket address) with 32 bits of the host id.
fn normalize(host: Id128, a: &SockAddr) -> SockAddr {
    let a = match a {
        SockAddr::Inet {
            ip: IpAddr::V6(v6),
            port,
        } => match v6.to_ipv4_mapped() {
            Some(v4) => SockAddr::Inet {
                ip: IpAddr::V4(v4),
                port: *port,
            },
            None => a.clone(),
        },
        _ => a.clone(),
    };
    match a {
        SockAddr::Inet { ip, port } if ip.is_loopback() => {
            // FNV-1a of the whole host id.
            let hk = host.0.iter().fold(0x811c_9dc5u32, |h, b| {
                (h ^ *b as u32).wrapping_mul(0x0100_0193)
            });
            let low = match ip {
                IpAddr::V4(v4) => u32::from(v4),
                IpAddr::V6(_) => 1,
            };
            let v6 = std::net::Ipv6Addr::new(
                0x100,
                0,
                0,
                0,
                (hk >> 16) as u16,
                hk as u16,
                (low >> 16) as u16,
                low as u16,
            );
            SockAddr::Inet {
                ip: IpAddr::V6(v6),
                port,
            }
        }
        a => a,
    }
}

pub fn addr_name(a: &SockAddr) -> String {
    match a {
        SockAddr::Inet {
            ip: IpAddr::V4(ip),
            port,
        } => format!("{ip}:{port}"),
        SockAddr::Inet {
            ip: IpAddr::V6(ip),
            port,
        } => format!("[{ip}]:{port}"),
        SockAddr::Unix {
            path,
            abstract_ns: true,
        } => format!("unix:@{path}"),
        SockAddr::Unix { path, .. } => format!("unix:{path}"),
        SockAddr::Unnamed => "unnamed".into(),
        SockAddr::Other { family } => format!("af{family}"),
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

fn flow(kind: EdgeKind, ts_ns: u64, bytes: u64, offset: Option<u64>, call: &'static str) -> Flow {
    Flow {
        kind,
        ts_ns,
        bytes,
        offset,
        call,
    }
}

fn entity_kind(k: ObjKind) -> EntityKind {
    match k {
        ObjKind::File => EntityKind::File,
        ObjKind::Dir => EntityKind::Dir,
        ObjKind::Symlink => EntityKind::Symlink,
        ObjKind::Pipe => EntityKind::Pipe,
        ObjKind::Socket => EntityKind::Socket,
        ObjKind::CharDev | ObjKind::BlockDev => EntityKind::Device,
        ObjKind::Anon => EntityKind::Anon,
        ObjKind::Unknown => EntityKind::Unknown,
    }
}

pub fn basename(p: &str) -> &str {
    p.rsplit('/').find(|s| !s.is_empty()).unwrap_or(p)
}

/// The name of a call, interned as a static string for edges.
/// A path's fingerprint for [`ObjSlot`], never 0 ("none"). Fixed-seeded:
/// the map it lives in is rebuilt on resume, so it need not be stable
/// across runs, only within one.
fn name_fingerprint(p: &str) -> u64 {
    use std::hash::BuildHasher;
    static SEED: std::sync::OnceLock<foldhash::quality::RandomState> = std::sync::OnceLock::new();
    SEED.get_or_init(Default::default).hash_one(p) | 1
}

pub fn call_name(c: Call) -> &'static str {
    c.name()
}

/// [`build`] without the reduction: one edge per flow event. Lineage
/// answers must not differ (tested); the edge counts give the ratio.
pub fn build_unreduced<'a>(events: impl IntoIterator<Item = &'a Event>) -> Graph {
    let mut ing = Ingest::new();
    ing.graph.set_reduction(false);
    for ev in events {
        ing.apply(ev);
    }
    ing.into_graph()
}

/// Build a graph from events in recording order.
pub fn build<'a>(events: impl IntoIterator<Item = &'a Event>) -> Graph {
    let mut ing = Ingest::new();
    for ev in events {
        ing.apply(ev);
    }
    ing.into_graph()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inet(ip: &str, port: u16) -> SockAddr {
        SockAddr::Inet {
            ip: ip.parse().unwrap(),
            port,
        }
    }

    #[test]
    fn loopback_pairs_only_within_a_host_and_other_addresses_across_hosts() {
        let (a, b) = (Id128([1; 16]), Id128([2; 16]));
        let lo = inet("127.0.0.1", 80);
        assert_eq!(normalize(a, &lo), normalize(a, &lo));
        assert_ne!(normalize(a, &lo), normalize(b, &lo));
        assert_eq!(
            normalize(a, &inet("::1", 80)),
            normalize(a, &inet("::1", 80))
        );
        assert_ne!(
            normalize(a, &inet("::1", 80)),
            normalize(b, &inet("::1", 80))
        );
        // Routable addresses are the same on every host: that is how the
        // two ends of a connection between hosts meet.
        let pub4 = inet("10.1.2.3", 80);
        assert_eq!(normalize(a, &pub4), normalize(b, &pub4));
        assert_eq!(normalize(a, &inet("::ffff:10.1.2.3", 80)), pub4);
    }
}

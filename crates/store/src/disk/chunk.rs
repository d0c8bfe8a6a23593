//! Encoding and decoding of one chunk of the STRS, ENTS, NODE and NAME
//! sections. Each chunk decodes on its own (deltas restart at every chunk),
//! so a reader can decode only the chunks a query needs. The decoders
//! check every id against the counts and never panic.
//!
//! Columns (each a varint stream; "zz" is a zigzag delta):
//! - STRS: shared prefix with the previous string, suffix length, suffix
//!   bytes (strings sorted, so a string's id is its rank).
//! - ENTS: UUID recipe (0: stored, k: recomputed from root k-1), stored
//!   UUIDs, kind, first time (zz), names (count, string ids), (dev, ino)
//!   (flag, dev, ino zz), generation (objects with a recomputed UUID),
//!   process facts (process entities), versions (count, first node zz,
//!   gaps).
//! - NODE: header (entity of the chunk's next first version, edge base),
//!   tag (0: first version of the next entity; 1: entity given; 2+s: a
//!   later version whose creating edge has symbol s and is implied), entity
//!   (zz, tags 1+), created time (zz), label (0: as the entity's first
//!   version, else string id + 1), base (edges created before the node,
//!   delta), number of stored incoming edges, then per incoming edge: id
//!   gap, source (zz against the node), symbol (kind and call), time (zz,
//!   the first against the node's creation), duration, bytes, offset,
//!   merged events.
//! - NAME: string id (gap), count, entities (first, then zz).

use super::codec::{self, columns, put, put_delta, put_opt, zigzag, Cur, R};
use super::{MetaRec, UuidRoot};
use crate::{EdgeKind, Entity, EntityKind, ExecInfo, Graph, ProcessInfo};
use std::ops::Range;
use std::path::Path;
use uuid::Uuid;

// ---------------------------------------------------------------------------
// Decoded forms

/// An entity as stored: strings are ids into STRS.
#[derive(Clone, Debug)]
pub(super) struct LEnt {
    /// 0: `uuid` is stored; k: recomputed from root k - 1.
    pub urec: u32,
    pub uuid: [u8; 16],
    pub kind: EntityKind,
    pub first_ns: u64,
    pub names: Vec<u32>,
    pub dev_ino: Option<(u64, u64)>,
    pub gen: u32,
    pub process: Option<LProc>,
    pub versions: Vec<u32>,
}

impl LEnt {
    /// The entity as a graph holds it, its strings looked up with `s` and
    /// its UUID and version list given (a loader moves the list, a reader in
    /// place copies it out of its cached chunk).
    pub fn to_entity(&self, uuid: Uuid, versions: Vec<u32>, s: impl Fn(u32) -> String) -> Entity {
        Entity {
            uuid,
            kind: self.kind,
            names: self.names.iter().map(|&i| s(i)).collect(),
            versions,
            dev_ino: self.dev_ino,
            process: self.process.as_ref().map(|p| {
                Box::new(ProcessInfo {
                    pid: p.pid,
                    ppid: p.ppid,
                    start_ticks: p.start_ticks,
                    parent: p.parent,
                    start_ns: p.start_ns,
                    end_ns: p.end_ns,
                    exit_code: p.exit_code,
                    exit_signal: p.exit_signal,
                    uid: p.uid,
                    euid: p.euid,
                    execs: p
                        .execs
                        .iter()
                        .map(|x| ExecInfo {
                            exe: s(x.exe),
                            argv: x.argv.iter().map(|&a| s(a)).collect(),
                            ts_ns: x.ts_ns,
                        })
                        .collect(),
                    exe: p.exe.map(&s),
                    argv: p.argv.iter().map(|&a| s(a)).collect(),
                    cwd: p.cwd.map(&s),
                })
            }),
            first_ns: self.first_ns,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(super) struct LProc {
    pub pid: u32,
    pub ppid: u32,
    pub start_ticks: u64,
    pub parent: Option<u32>,
    pub start_ns: u64,
    pub end_ns: Option<u64>,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
    pub uid: u32,
    pub euid: u32,
    pub execs: Vec<LExec>,
    pub exe: Option<u32>,
    pub argv: Vec<u32>,
    pub cwd: Option<u32>,
}

#[derive(Clone, Debug)]
pub(super) struct LExec {
    pub exe: u32,
    pub argv: Vec<u32>,
    pub ts_ns: u64,
}

pub(super) struct EntChunk {
    pub ents: Vec<LEnt>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Label {
    Id(u32),
    /// The label of the entity's first version.
    SameAsFirst,
}

#[derive(Clone, Debug)]
pub(super) struct LNode {
    pub entity: u32,
    pub created_ns: u64,
    pub label: Label,
    /// Symbol of the implied edge that created this version.
    pub creating: Option<u32>,
    /// Edges created before this node; the id of its creating edge.
    pub base: u64,
    /// Its stored incoming edges in [`NodeChunk::edges`].
    pub edges: Range<usize>,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct LEdge {
    pub id: u32,
    pub src: u32,
    pub sym: u32,
    pub ts_ns: u64,
    pub last_ns: u64,
    pub bytes: u64,
    pub offset: Option<u64>,
    pub events: u32,
}

pub(super) struct NodeChunk {
    pub nodes: Vec<LNode>,
    pub edges: Vec<LEdge>,
}

// ---------------------------------------------------------------------------
// STRS

/// The directory key of a STRS chunk: the first 8 bytes of its first string.
pub(super) fn str_key(s: &str) -> u64 {
    let mut k = [0u8; 8];
    let b = s.as_bytes();
    let n = b.len().min(8);
    k[..n].copy_from_slice(&b[..n]);
    u64::from_be_bytes(k)
}

pub(super) fn encode_strs(strs: &[&str], out: &mut Vec<u8>) {
    let mut cols: [Vec<u8>; 3] = Default::default();
    let mut prev: &[u8] = &[];
    for s in strs {
        let b = s.as_bytes();
        let common = prev.iter().zip(b).take_while(|(a, b)| a == b).count();
        put(&mut cols[0], common as u64);
        put(&mut cols[1], (b.len() - common) as u64);
        cols[2].extend_from_slice(&b[common..]);
        prev = b;
    }
    columns(out, &cols);
}

/// The strings of a chunk; they must be sorted, and follow `prev` (the last
/// string of the previous chunk) when given.
pub(super) fn decode_strs(raw: &[u8], items: u32, prev: Option<&str>) -> R<Vec<String>> {
    let [mut cp, mut cl, mut cb] = Cur::columns(raw, ["STRS.prefix", "STRS.len", "STRS.bytes"])?;
    if items as usize > cp.remaining() {
        return cp.err(format!("{items} strings announced"));
    }
    let mut out: Vec<String> = Vec::with_capacity(items as usize);
    let mut buf: Vec<u8> = Vec::new();
    for i in 0..items as usize {
        let common = cp.u64()? as usize;
        if common > buf.len() || (i == 0 && common > 0) {
            return cp.err("shared prefix longer than the previous string");
        }
        buf.truncate(common);
        let n = cl.u64()?;
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        buf.extend_from_slice(cb.bytes(n)?);
        let Ok(s) = std::str::from_utf8(&buf) else {
            return cb.err("string is not UTF-8");
        };
        let after = match out.last() {
            Some(p) => p.as_str() < s,
            None => prev.is_none_or(|p| p < s),
        };
        if !after {
            return cb.err("strings are not sorted");
        }
        out.push(s.to_string());
    }
    if !(cp.at_end() && cl.at_end() && cb.at_end()) {
        return cb.err("bytes left over");
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// NAME

pub(super) fn encode_names(entries: &[(u32, &Vec<u32>)], out: &mut Vec<u8>) {
    let mut cols: [Vec<u8>; 3] = Default::default();
    let mut prev: Option<u32> = None;
    for (id, ents) in entries {
        match prev {
            None => put(&mut cols[0], *id as u64),
            Some(p) => put(&mut cols[0], (id - p - 1) as u64),
        }
        prev = Some(*id);
        put(&mut cols[1], ents.len() as u64);
        let mut pe = 0u64;
        for &e in ents.iter() {
            put_delta(&mut cols[2], e as u64, pe);
            pe = e as u64;
        }
    }
    columns(out, &cols);
}

// ---------------------------------------------------------------------------
// Writing ENTS and NODE

/// What the chunk encoders need from the whole graph.
pub(super) struct WriteCtx<'a> {
    pub g: &'a Graph,
    pub ids: &'a crate::HashMap<&'a str, u32>,
    pub sym_of: &'a crate::HashMap<super::SymKey, u32>,
    pub roots: &'a [UuidRoot],
}

/// Generations of object identities seen so far (for recomputing UUIDs).
#[derive(Default)]
pub(super) struct Gens {
    seen: crate::HashMap<(u64, u64, bool), u32>,
    /// The root that matched last (tried first).
    last_root: usize,
}

fn per_boot(k: EntityKind) -> bool {
    matches!(k, EntityKind::Pipe | EntityKind::Socket | EntityKind::Anon)
}

/// The UUID of an entity recomputed from root `r` (see [`crate::ident`]).
fn derive(
    r: &UuidRoot,
    kind: EntityKind,
    first_ns: u64,
    dev_ino: Option<(u64, u64)>,
    gen: u32,
    pid_ticks: Option<(u32, u64)>,
) -> Option<Uuid> {
    match (kind, pid_ticks, dev_ino) {
        (EntityKind::Process, Some((pid, ticks)), _) => {
            Some(crate::ident::process_uuid(&r.0, &r.1, pid, ticks, first_ns))
        }
        (EntityKind::Process, None, _) => None,
        (k, _, Some((d, i))) => Some(crate::ident::object_uuid(
            &r.0,
            per_boot(k).then_some(&r.1),
            d,
            i,
            gen,
        )),
        _ => None,
    }
}

/// State of the NODE encoder carried from chunk to chunk.
#[derive(Default)]
pub(super) struct NodeWriteState {
    /// The entity whose first version comes next (in node order).
    next_first: u64,
    /// Edges created before the last node encoded.
    base: u64,
}

impl WriteCtx<'_> {
    fn sid(&self, s: &str) -> u64 {
        self.ids[s] as u64
    }

    pub fn encode_ents(&self, lo: usize, hi: usize, gens: &mut Gens, out: &mut Vec<u8>) {
        let g = self.g;
        let mut cols: [Vec<u8>; 9] = Default::default();
        let (mut prev_first, mut prev_ino, mut prev_v) = (0u64, 0u64, 0u64);
        for e in &g.entities[lo..hi] {
            // UUID: recomputed when one of the roots gives it back.
            let gen = match (e.kind, e.dev_ino) {
                (EntityKind::Process, _) | (_, None) => 0,
                (k, Some((d, i))) => {
                    let c = gens.seen.entry((d, i, per_boot(k))).or_default();
                    *c += 1;
                    *c - 1
                }
            };
            let pt = e.process.as_deref().map(|p| (p.pid, p.start_ticks));
            let n = self.roots.len();
            let urec = (0..n).map(|k| (gens.last_root + k) % n).find(|&r| {
                derive(&self.roots[r], e.kind, e.first_ns, e.dev_ino, gen, pt) == Some(e.uuid)
            });
            match urec {
                Some(r) => {
                    gens.last_root = r;
                    put(&mut cols[0], r as u64 + 1);
                    if e.kind != EntityKind::Process {
                        put(&mut cols[6], gen as u64);
                    }
                }
                None => {
                    put(&mut cols[0], 0);
                    cols[1].extend_from_slice(e.uuid.as_bytes());
                }
            }
            cols[2].push(e.kind as u8);
            put_delta(&mut cols[3], e.first_ns, prev_first);
            prev_first = e.first_ns;
            put(&mut cols[4], e.names.len() as u64);
            for n in &e.names {
                put(&mut cols[4], self.sid(n));
            }
            match e.dev_ino {
                None => cols[5].push(0),
                Some((d, i)) => {
                    cols[5].push(1);
                    put(&mut cols[5], d);
                    put_delta(&mut cols[5], i, prev_ino);
                    prev_ino = i;
                }
            }
            if e.kind == EntityKind::Process {
                let p = e.process.as_deref().cloned().unwrap_or_default();
                let c = &mut cols[7];
                put(c, p.pid as u64);
                put(c, p.ppid as u64);
                put(c, p.start_ticks);
                put_opt(c, p.parent.map(|x| x as u64));
                put_delta(c, p.start_ns, e.first_ns);
                put_opt(c, p.end_ns.map(|x| x.wrapping_sub(p.start_ns)));
                put_opt(c, p.exit_code.map(|x| zigzag(x as i64)));
                put_opt(c, p.exit_signal.map(|x| zigzag(x as i64)));
                put(c, p.uid as u64);
                put(c, p.euid as u64);
                put(c, p.execs.len() as u64);
                for x in &p.execs {
                    put(c, self.sid(&x.exe));
                    put(c, x.argv.len() as u64);
                    for a in &x.argv {
                        put(c, self.sid(a));
                    }
                    put_delta(c, x.ts_ns, e.first_ns);
                }
                put_opt(c, p.exe.as_deref().map(|s| self.sid(s)));
                put(c, p.argv.len() as u64);
                for a in &p.argv {
                    put(c, self.sid(a));
                }
                put_opt(c, p.cwd.as_deref().map(|s| self.sid(s)));
            }
            let c = &mut cols[8];
            put(c, e.versions.len() as u64);
            let mut pv = None;
            for &v in &e.versions {
                match pv {
                    None => {
                        put_delta(c, v as u64, prev_v);
                        prev_v = v as u64;
                    }
                    Some(p) => put(c, (v as u64).wrapping_sub(p).wrapping_sub(1)),
                }
                pv = Some(v as u64);
            }
        }
        columns(out, &cols);
    }

    /// Nodes `lo..hi` with their incoming edges. Fails only if the graph
    /// breaks its own invariants (edge ids grow with time; a version's
    /// edges come after it).
    pub fn encode_nodes(
        &self,
        lo: usize,
        hi: usize,
        st: &mut NodeWriteState,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let g = self.g;
        let mut cols: [Vec<u8>; 15] = Default::default();
        put(&mut cols[0], st.next_first);
        put(&mut cols[0], st.base);
        let (mut prev_created, mut prev_ent) = (0u64, 0u64);
        for n in lo..hi {
            let node = &g.nodes[n];
            let ent = &g.entities[node.entity as usize];
            let rank = node.version as usize;
            if ent.versions.get(rank) != Some(&(n as u32)) {
                return Err(format!("node {n} is not version {rank} of its entity"));
            }
            let ins = g.in_edges(n as u32);
            let mut implied = None;
            if rank > 0 {
                if let Some(&e0) = ins.first() {
                    let x = &g.edges[e0 as usize];
                    let want = super::creating_edge(
                        ent.versions[rank - 1],
                        n as u32,
                        x.kind,
                        x.call,
                        node.created_ns,
                    );
                    let sym = self.sym_of[&super::sym_key(x.kind, x.call.as_str())];
                    if *x == want && sym < 254 && e0 as u64 >= st.base {
                        implied = Some((e0, sym));
                    }
                }
            }
            let tag = match implied {
                Some((e0, sym)) => {
                    // The base only moves at implied edges.
                    put(&mut cols[5], e0 as u64 - st.base);
                    st.base = e0 as u64;
                    2 + sym as u8
                }
                None if rank == 0 && node.entity as u64 == st.next_first => {
                    st.next_first += 1;
                    0
                }
                None => 1,
            };
            cols[1].push(tag);
            if tag != 0 {
                put_delta(&mut cols[2], node.entity as u64, prev_ent);
                prev_ent = node.entity as u64;
            }
            put_delta(&mut cols[3], node.created_ns, prev_created);
            prev_created = node.created_ns;
            if rank > 0 && node.label == g.nodes[ent.versions[0] as usize].label {
                put(&mut cols[4], 0);
            } else {
                put(&mut cols[4], self.sid(&node.label) + 1);
            }
            let explicit = if implied.is_some() { &ins[1..] } else { ins };
            put(&mut cols[6], explicit.len() as u64);
            let mut expect = st.base + implied.is_some() as u64;
            let mut prev_ts = node.created_ns;
            for &e in explicit {
                let x = &g.edges[e as usize];
                if (e as u64) < expect || x.dst as usize != n {
                    return Err(format!("edge {e} into node {n} is out of order"));
                }
                put(&mut cols[7], e as u64 - expect);
                expect = e as u64 + 1;
                put_delta(&mut cols[8], x.src as u64, n as u64);
                put(
                    &mut cols[9],
                    self.sym_of[&super::sym_key(x.kind, x.call.as_str())] as u64,
                );
                put_delta(&mut cols[10], x.ts_ns, prev_ts);
                prev_ts = x.ts_ns;
                put(&mut cols[11], x.last_ns.wrapping_sub(x.ts_ns));
                put(&mut cols[12], x.bytes);
                put_opt(&mut cols[13], x.offset);
                put(&mut cols[14], x.events as u64);
            }
        }
        columns(out, &cols);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Decoding

/// What the chunk decoders check ids against.
pub(super) struct Ctx {
    pub n_ent: u64,
    pub n_node: u64,
    pub n_edges: u64,
    pub n_strs: u64,
    pub syms: Vec<(EdgeKind, u32)>,
    /// The call name of each symbol, once known ([`Ctx::with_calls`]).
    pub calls: Vec<crate::CallName>,
    pub roots: Vec<UuidRoot>,
}

impl Ctx {
    pub fn new(_path: &Path, m: &MetaRec) -> Result<Ctx, super::StoreError> {
        Ok(Ctx {
            n_ent: m.counts.entities,
            n_node: m.counts.nodes,
            n_edges: m.counts.edges,
            n_strs: m.strings,
            syms: m.syms.clone(),
            calls: Vec::new(),
            roots: m.roots.clone(),
        })
    }

    /// Resolves the call names of the symbols with `string`.
    pub fn with_calls_from(
        mut self,
        path: &Path,
        off: u64,
        mut string: impl FnMut(u32) -> Result<String, super::StoreError>,
    ) -> Result<Ctx, super::StoreError> {
        let mut calls = Vec::with_capacity(self.syms.len());
        for &(_, c) in &self.syms {
            let s = string(c)?;
            match crate::CallName::intern(&s) {
                Some(x) => calls.push(x),
                None => return Err(super::corrupt(path, off, "too many distinct call names")),
            }
        }
        self.calls = calls;
        Ok(self)
    }

    pub fn with_calls(
        self,
        path: &Path,
        off: u64,
        strings: &[String],
    ) -> Result<Ctx, super::StoreError> {
        self.with_calls_from(path, off, |c| {
            strings
                .get(c as usize)
                .cloned()
                .ok_or_else(|| super::corrupt(path, off, format!("call string {c} missing")))
        })
    }

    pub fn sym(&self, s: u32) -> (EdgeKind, crate::CallName) {
        (self.syms[s as usize].0, self.calls[s as usize])
    }

    /// The UUID of a decoded entity (stored or recomputed).
    pub fn uuid(&self, e: &LEnt) -> Uuid {
        if e.urec == 0 {
            return Uuid::from_bytes(e.uuid);
        }
        let pt = e.process.as_ref().map(|p| (p.pid, p.start_ticks));
        derive(
            &self.roots[e.urec as usize - 1],
            e.kind,
            e.first_ns,
            e.dev_ino,
            e.gen,
            pt,
        )
        .unwrap_or_default()
    }

    fn str_id(&self, c: &Cur, id: u64) -> R<u32> {
        if id >= self.n_strs {
            return c.err(format!("string id {id} out of range ({})", self.n_strs));
        }
        Ok(id as u32)
    }

    fn str_ids(&self, c: &mut Cur) -> R<Vec<u32>> {
        let n = c.count()?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let id = c.u64()?;
            v.push(self.str_id(c, id)?);
        }
        Ok(v)
    }

    fn opt_str(&self, c: &mut Cur) -> R<Option<u32>> {
        match c.opt()? {
            None => Ok(None),
            Some(id) => Ok(Some(self.str_id(c, id)?)),
        }
    }

    /// Entities `first..first + items`.
    pub fn decode_ents(&self, raw: &[u8], first: u64, items: u32) -> R<EntChunk> {
        let [mut cu, mut craw, mut ck, mut cf, mut cn, mut cd, mut cg, mut cp, mut cv] =
            Cur::columns(
                raw,
                [
                    "ENTS.uuid_recipe",
                    "ENTS.uuid",
                    "ENTS.kind",
                    "ENTS.first",
                    "ENTS.names",
                    "ENTS.dev_ino",
                    "ENTS.generation",
                    "ENTS.process",
                    "ENTS.versions",
                ],
            )?;
        if items as usize > ck.remaining() {
            return ck.err(format!("{items} entities announced"));
        }
        let mut ents = Vec::with_capacity(items as usize);
        let (mut prev_first, mut prev_ino, mut prev_v) = (0u64, 0u64, 0u64);
        for i in 0..items as u64 {
            let urec = cu.u64()?;
            if urec > self.roots.len() as u64 {
                return cu.err(format!("UUID root {urec} out of range"));
            }
            let mut uuid = [0u8; 16];
            if urec == 0 {
                uuid.copy_from_slice(craw.bytes(16)?);
            }
            let kc = ck.u8()?;
            let Some(kind) = super::kind_of(kc) else {
                return ck.err(format!("bad entity kind {kc}"));
            };
            let first_ns = cf.delta(prev_first)?;
            prev_first = first_ns;
            let names = self.str_ids(&mut cn)?;
            let dev_ino = match cd.u8()? {
                0 => None,
                1 => {
                    let d = cd.u64()?;
                    let ino = cd.delta(prev_ino)?;
                    prev_ino = ino;
                    Some((d, ino))
                }
                x => return cd.err(format!("bad dev/ino flag {x}")),
            };
            let gen = if urec > 0 && kind != EntityKind::Process {
                if dev_ino.is_none() {
                    return cg.err("recomputed UUID without (dev, ino)");
                }
                cg.u32()?
            } else {
                0
            };
            let process = if kind == EntityKind::Process {
                Some(self.decode_proc(&mut cp, first_ns)?)
            } else {
                None
            };
            let nv = cv.count()?;
            if nv == 0 {
                return cv.err(format!("entity {} has no version", first + i));
            }
            let mut versions = Vec::with_capacity(nv);
            let v0 = cv.delta(prev_v)?;
            prev_v = v0;
            let mut v = v0;
            versions.push(v0);
            for _ in 1..nv {
                v = v.saturating_add(cv.u64()?).saturating_add(1);
                versions.push(v);
            }
            if v >= self.n_node {
                return cv.err(format!("version {v} out of range ({} nodes)", self.n_node));
            }
            ents.push(LEnt {
                urec: urec as u32,
                uuid,
                kind,
                first_ns,
                names,
                dev_ino,
                gen,
                process,
                versions: versions.into_iter().map(|v| v as u32).collect(),
            });
        }
        for c in [&cu, &craw, &ck, &cf, &cn, &cd, &cg, &cp, &cv] {
            if !c.at_end() {
                return c.err("bytes left over");
            }
        }
        Ok(EntChunk { ents })
    }

    fn decode_proc(&self, c: &mut Cur, first_ns: u64) -> R<LProc> {
        let pid = c.u32()?;
        let ppid = c.u32()?;
        let start_ticks = c.u64()?;
        let parent = match c.opt()? {
            None => None,
            Some(p) if p < self.n_ent => Some(p as u32),
            Some(p) => return c.err(format!("parent {p} out of range")),
        };
        let start_ns = c.delta(first_ns)?;
        let end_ns = c.opt()?.map(|d| start_ns.wrapping_add(d));
        let exit_code = c.opt()?.map(|z| codec::unzigzag(z) as i32);
        let exit_signal = c.opt()?.map(|z| codec::unzigzag(z) as i32);
        let uid = c.u32()?;
        let euid = c.u32()?;
        let nx = c.count()?;
        let mut execs = Vec::with_capacity(nx);
        for _ in 0..nx {
            let id = c.u64()?;
            let exe = self.str_id(c, id)?;
            let argv = self.str_ids(c)?;
            let ts_ns = c.delta(first_ns)?;
            execs.push(LExec { exe, argv, ts_ns });
        }
        let exe = self.opt_str(c)?;
        let argv = self.str_ids(c)?;
        let cwd = self.opt_str(c)?;
        Ok(LProc {
            pid,
            ppid,
            start_ticks,
            parent,
            start_ns,
            end_ns,
            exit_code,
            exit_signal,
            uid,
            euid,
            execs,
            exe,
            argv,
            cwd,
        })
    }

    /// Nodes `first..first + items` and their incoming edges.
    pub fn decode_nodes(&self, raw: &[u8], first: u64, items: u32) -> R<NodeChunk> {
        let [mut ch, mut ct, mut ce, mut cc, mut cl, mut cb, mut cn, mut cgap, mut csrc, mut csym, mut cts, mut cdur, mut cbytes, mut coff, mut cev] =
            Cur::columns(
                raw,
                [
                    "NODE.header",
                    "NODE.tag",
                    "NODE.entity",
                    "NODE.created",
                    "NODE.label",
                    "NODE.base",
                    "NODE.in_edges",
                    "NODE.edge_id",
                    "NODE.edge_src",
                    "NODE.edge_symbol",
                    "NODE.edge_ts",
                    "NODE.edge_duration",
                    "NODE.edge_bytes",
                    "NODE.edge_offset",
                    "NODE.edge_events",
                ],
            )?;
        if items as usize > ct.remaining() {
            return ct.err(format!("{items} nodes announced"));
        }
        let mut next_first = ch.u64()?;
        let mut base = ch.u64()?;
        if !ch.at_end() {
            return ch.err("bytes left over");
        }
        let mut nodes = Vec::with_capacity(items as usize);
        let mut edges: Vec<LEdge> = Vec::new();
        let (mut prev_created, mut prev_ent) = (0u64, 0u64);
        let nsyms = self.syms.len() as u64;
        for j in 0..items as u64 {
            let n = first + j;
            let tag = ct.u8()?;
            let (entity, creating) = match tag {
                0 => {
                    next_first += 1;
                    (next_first - 1, None)
                }
                t => {
                    let e = ce.delta(prev_ent)?;
                    prev_ent = e;
                    let creating = match t {
                        1 => None,
                        t if ((t - 2) as u64) < nsyms => Some((t - 2) as u32),
                        t => return ct.err(format!("bad node tag {t}")),
                    };
                    (e, creating)
                }
            };
            if entity >= self.n_ent {
                return ce.err(format!("entity {entity} out of range"));
            }
            let created_ns = cc.delta(prev_created)?;
            prev_created = created_ns;
            let label = match cl.u64()? {
                0 if tag == 0 => return cl.err("a first version has no label of its own"),
                0 => Label::SameAsFirst,
                id => Label::Id(self.str_id(&cl, id - 1)?),
            };
            if creating.is_some() {
                let jump = cb.u64()?;
                base = base.saturating_add(jump);
                if base >= self.n_edges {
                    return cb.err(format!("edge {base} out of range"));
                }
            }
            let ne = cn.u64()?;
            if ne > cgap.remaining() as u64 {
                return cn.err(format!("{ne} edges announced"));
            }
            let start = edges.len();
            let mut expect = base + creating.is_some() as u64;
            let mut prev_ts = created_ns;
            for _ in 0..ne {
                let id = expect.saturating_add(cgap.u64()?);
                if id >= self.n_edges {
                    return cgap.err(format!("edge {id} out of range"));
                }
                expect = id + 1;
                let src = csrc.delta(n)?;
                if src >= self.n_node {
                    return csrc.err(format!("source {src} out of range"));
                }
                let sym = csym.u64()?;
                if sym >= nsyms {
                    return csym.err(format!("symbol {sym} out of range"));
                }
                let ts_ns = cts.delta(prev_ts)?;
                prev_ts = ts_ns;
                let last_ns = ts_ns.wrapping_add(cdur.u64()?);
                let bytes = cbytes.u64()?;
                let offset = coff.opt()?;
                let events = cev.u32()?;
                edges.push(LEdge {
                    id: id as u32,
                    src: src as u32,
                    sym: sym as u32,
                    ts_ns,
                    last_ns,
                    bytes,
                    offset,
                    events,
                });
            }
            nodes.push(LNode {
                entity: entity as u32,
                created_ns,
                label,
                creating,
                base,
                edges: start..edges.len(),
            });
        }
        for c in [
            &ct, &ce, &cc, &cl, &cb, &cn, &cgap, &csrc, &csym, &cts, &cdur, &cbytes, &coff, &cev,
        ] {
            if !c.at_end() {
                return c.err("bytes left over");
            }
        }
        Ok(NodeChunk { nodes, edges })
    }

    /// The names of a NAME chunk: (string id, entities).
    pub fn decode_names(&self, raw: &[u8], items: u32, key: u64) -> R<Vec<(u32, Vec<u32>)>> {
        let [mut ci, mut cn, mut ce] =
            Cur::columns(raw, ["NAME.id", "NAME.count", "NAME.entities"])?;
        if items as usize > ci.remaining() {
            return ci.err(format!("{items} names announced"));
        }
        let mut out = Vec::with_capacity(items as usize);
        let mut prev: Option<u64> = None;
        for _ in 0..items {
            let id = match prev {
                None => ci.u64()?,
                Some(p) => p.saturating_add(ci.u64()?).saturating_add(1),
            };
            if prev.is_none() && id != key {
                return ci.err(format!(
                    "first name {id} differs from the directory ({key})"
                ));
            }
            prev = Some(id);
            let id = self.str_id(&ci, id)?;
            let n = cn.u64()?;
            if n > ce.remaining() as u64 {
                return cn.err(format!("{n} entities announced"));
            }
            let mut v = Vec::with_capacity(n as usize);
            let mut pe = 0u64;
            for _ in 0..n {
                let e = ce.delta(pe)?;
                pe = e;
                if e >= self.n_ent {
                    return ce.err(format!("entity {e} out of range"));
                }
                v.push(e as u32);
            }
            out.push((id, v));
        }
        for c in [&ci, &cn, &ce] {
            if !c.at_end() {
                return c.err("bytes left over");
            }
        }
        Ok(out)
    }
}

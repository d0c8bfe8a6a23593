//! The persistent store: the provenance graph on disk, an index over the
//! durable log (`*.tomo.idx` next to a recording).
//!
//! It holds exactly what the ingest produced (entities, versions, edges,
//! names), the ingest's working state and the log position reached, so a
//! query opens it without replaying raw events and an update ingests only
//! the blocks appended since. Layout (all integers little-endian; details in
//! ARCHITECTURE.md, "The store on disk"):
//!
//! ```text
//! header (32 B): magic "\x89TIDX\r\n\x1a" | version u16 | flags u16 | sections u32
//!                | file_len u64 | reserved u32 | crc32c(header[0..28]) u32
//! section (32 B header + payload), in this order:
//!   META  counts, event count, time span
//!   STRS  string table: every label, name, path, argv word and call name once
//!   ENTS  entities: uuid, kind, names, (dev, ino), process facts
//!   NODE  versions (columns: entity delta, created_ns delta, label or
//!         "same as the previous version")
//!   EDGE  edges in creation order (columns: dst delta, src relative to dst,
//!         kind, ts delta, duration, bytes, offset, call, merged events)
//!   NAME  the name index (name -> entities, in the order they got it)
//!   STAT  the ingest's working state (opaque, from tomo-ingest)
//!   LPOS  the log position reached (opaque, from tomo-log)
//! section header: tag [4] | codec u8 (1 = zstd) | reserved [3]
//!                 | stored_len u64 | raw_len u64 | crc32c(stored payload) u32 | reserved u32
//! ```
//!
//! Versions are `(entity, version#)`: a node's version number is its rank
//! among its entity's nodes and an entity's version list is the nodes that
//! name it, so neither is stored. Adjacency lists (by source and by
//! destination, each in edge-creation, i.e. time, order) are derived from
//! the edge column in one pass on open.

mod codec;

use crate::{Edge, EdgeKind, Entity, EntityKind, ExecInfo, Graph, Node, ProcessInfo};
use codec::{put, put_bytes, put_delta, Cur};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use uuid::Uuid;

pub const MAGIC: [u8; 8] = *b"\x89TIDX\r\n\x1a";
pub const VERSION: u16 = 2;
const HEADER_LEN: usize = 32;
const SECTION_HEADER_LEN: usize = 32;
const CODEC_ZSTD: u8 = 1;
const TAGS: [&[u8; 4]; 8] = [
    b"META", b"STRS", b"ENTS", b"NODE", b"EDGE", b"NAME", b"STAT", b"LPOS",
];
/// Refuse sections that claim to inflate beyond this (corruption guard).
const MAX_RAW: u64 = 1 << 36;
/// Under `cargo fuzz` (`--cfg fuzzing`) checksums are not compared, so that
/// mutated inputs reach the decoders, which must hold without them.
const ENFORCE_CHECKSUMS: bool = !cfg!(fuzzing);

/// Errors of the store. Every message names the file; corruption also
/// names the byte offset of the damaged structure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a Tomo store: {reason}", path.display())]
    NotAStore { path: PathBuf, reason: String },
    #[error("{}: unsupported store version {found} (this build reads version {VERSION})", path.display())]
    Unsupported { path: PathBuf, found: u16 },
    #[error("{}: corrupt store at byte offset {offset}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

/// Summary figures kept in the META section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Events applied by the ingest (all of the log up to the position).
    pub events: u64,
    /// Smallest and largest event time seen, if any event.
    pub first_ns: Option<u64>,
    pub last_ns: Option<u64>,
}

/// What a store holds besides the graph.
#[derive(Clone, Debug, Default)]
pub struct Extra {
    pub meta: Meta,
    /// Opaque ingest state (`tomo_ingest::Ingest::save_state`).
    pub ingest_state: Vec<u8>,
    /// Opaque log position (`tomo_log::Position`, encoded by the caller).
    pub log_pos: Vec<u8>,
}

/// Byte sizes of the sections as written, for `tomo stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sizes {
    pub total: u64,
    /// (tag, stored bytes, raw bytes)
    pub sections: Vec<(String, u64, u64)>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn kind_code(k: EntityKind) -> u8 {
    k as u8
}

fn kind_of(c: u8) -> Option<EntityKind> {
    use EntityKind::*;
    [
        Process, File, Dir, Symlink, Pipe, Socket, Device, Anon, Unknown,
    ]
    .get(c as usize)
    .copied()
}

const EDGE_KINDS: [EdgeKind; 16] = [
    EdgeKind::Read,
    EdgeKind::Write,
    EdgeKind::Load,
    EdgeKind::Spawn,
    EdgeKind::Exec,
    EdgeKind::Version,
    EdgeKind::Flow,
    EdgeKind::Rename,
    EdgeKind::Link,
    EdgeKind::Symlink,
    EdgeKind::Unlink,
    EdgeKind::Mkdir,
    EdgeKind::Mknod,
    EdgeKind::Chmod,
    EdgeKind::Chown,
    EdgeKind::Signal,
];

/// Interns a call name read from a store as a `&'static str` (edges keep
/// their call as a static string). Call names are a small closed set; the
/// table is capped so that a hostile store cannot leak memory.
fn intern(s: &str) -> Option<&'static str> {
    use std::sync::{Mutex, OnceLock};
    static TABLE: OnceLock<Mutex<HashMap<String, &'static str>>> = OnceLock::new();
    let mut t = TABLE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(&v) = t.get(s) {
        return Some(v);
    }
    if t.len() >= 4096 || s.len() > 64 {
        return None;
    }
    let v: &'static str = Box::leak(s.to_string().into_boxed_str());
    t.insert(s.to_string(), v);
    Some(v)
}

/// String table under construction.
#[derive(Default)]
struct Strings<'g> {
    ids: crate::HashMap<&'g str, u32>,
    list: Vec<&'g str>,
}

impl<'g> Strings<'g> {
    fn id(&mut self, s: &'g str) -> u64 {
        if let Some(&i) = self.ids.get(s) {
            return i as u64;
        }
        let i = self.list.len() as u32;
        self.ids.insert(s, i);
        self.list.push(s);
        i as u64
    }
}

fn put_opt(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        None => put(out, 0),
        Some(v) => put(out, v.wrapping_add(1)),
    }
}

/// Writes the store for `g` to `path` atomically (a temporary file renamed
/// over it). Returns the section sizes.
pub fn write(path: &Path, g: &Graph, extra: &Extra) -> Result<Sizes, StoreError> {
    let mut strs = Strings::default();

    // ENTS
    let mut ents = Vec::with_capacity(g.entities.len() * 24);
    let mut prev_first = 0u64;
    for e in &g.entities {
        ents.extend_from_slice(e.uuid.as_bytes());
        ents.push(kind_code(e.kind));
        put_delta(&mut ents, e.first_ns, prev_first);
        prev_first = e.first_ns;
        put(&mut ents, e.names.len() as u64);
        for n in &e.names {
            put(&mut ents, strs.id(n));
        }
        match e.dev_ino {
            None => ents.push(0),
            Some((d, i)) => {
                ents.push(1);
                put(&mut ents, d);
                put(&mut ents, i);
            }
        }
        if let Some(p) = &e.process {
            put(&mut ents, p.pid as u64);
            put(&mut ents, p.ppid as u64);
            put(&mut ents, p.start_ticks);
            put_opt(&mut ents, p.parent.map(|x| x as u64));
            put_delta(&mut ents, p.start_ns, e.first_ns);
            put_opt(&mut ents, p.end_ns.map(|x| x.wrapping_sub(p.start_ns)));
            put_opt(&mut ents, p.exit_code.map(|c| codec::zigzag(c as i64)));
            put_opt(&mut ents, p.exit_signal.map(|c| codec::zigzag(c as i64)));
            put(&mut ents, p.uid as u64);
            put(&mut ents, p.euid as u64);
            put(&mut ents, p.execs.len() as u64);
            for x in &p.execs {
                put(&mut ents, strs.id(&x.exe));
                put(&mut ents, x.argv.len() as u64);
                for a in &x.argv {
                    put(&mut ents, strs.id(a));
                }
                put_delta(&mut ents, x.ts_ns, e.first_ns);
            }
            put_opt(&mut ents, p.exe.as_deref().map(|s| strs.id(s)));
            put(&mut ents, p.argv.len() as u64);
            for a in &p.argv {
                put(&mut ents, strs.id(a));
            }
            put_opt(&mut ents, p.cwd.as_deref().map(|s| strs.id(s)));
        }
    }

    // NODE: three columns.
    let (mut c_ent, mut c_ts, mut c_label) = (Vec::new(), Vec::new(), Vec::new());
    let mut prev_ts = 0u64;
    let mut prev_ent = 0u64;
    // Label of each entity's latest version so far.
    let mut last_label: Vec<Option<&str>> = vec![None; g.entities.len()];
    for n in &g.nodes {
        put_delta(&mut c_ent, n.entity as u64, prev_ent);
        prev_ent = n.entity as u64;
        put_delta(&mut c_ts, n.created_ns, prev_ts);
        prev_ts = n.created_ns;
        // 0: same label as the entity's previous version; else id + 1.
        let ll = last_label.get_mut(n.entity as usize);
        match ll {
            Some(Some(l)) if *l == n.label => put(&mut c_label, 0),
            _ => put(&mut c_label, strs.id(&n.label) + 1),
        }
        if let Some(l) = last_label.get_mut(n.entity as usize) {
            *l = Some(&n.label);
        }
    }
    let node = columns(&[&c_ent, &c_ts, &c_label]);

    // EDGE: nine columns.
    let mut cols: [Vec<u8>; 9] = Default::default();
    let (mut prev_dst, mut prev_ts) = (0u64, 0u64);
    for e in &g.edges {
        put_delta(&mut cols[0], e.dst as u64, prev_dst);
        prev_dst = e.dst as u64;
        put_delta(&mut cols[1], e.src as u64, e.dst as u64);
        cols[2].push(e.kind as u8);
        put_delta(&mut cols[3], e.ts_ns, prev_ts);
        prev_ts = e.ts_ns;
        put(&mut cols[4], e.last_ns.wrapping_sub(e.ts_ns));
        put(&mut cols[5], e.bytes);
        put_opt(&mut cols[6], e.offset);
        put(&mut cols[7], strs.id(e.call));
        put(&mut cols[8], e.events as u64);
    }
    let edge = columns(&cols.iter().map(|c| c.as_slice()).collect::<Vec<_>>());

    // NAME
    let mut name = Vec::new();
    let mut keys: Vec<(&String, &Vec<u32>)> = g.by_name.iter().collect();
    keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
    put(&mut name, keys.len() as u64);
    for (k, v) in keys {
        put(&mut name, strs.id(k));
        put(&mut name, v.len() as u64);
        for &e in v {
            put(&mut name, e as u64);
        }
    }

    // STRS
    let mut st = Vec::new();
    put(&mut st, strs.list.len() as u64);
    for s in &strs.list {
        put_bytes(&mut st, s.as_bytes());
    }

    // META
    let mut meta = Vec::new();
    put(&mut meta, g.entities.len() as u64);
    put(&mut meta, g.nodes.len() as u64);
    put(&mut meta, g.edges.len() as u64);
    put(&mut meta, g.events_applied);
    put(&mut meta, extra.meta.events);
    put_opt(&mut meta, extra.meta.first_ns);
    put_opt(&mut meta, extra.meta.last_ns);

    let payloads: [&[u8]; 8] = [
        &meta,
        &st,
        &ents,
        &node,
        &edge,
        &name,
        &extra.ingest_state,
        &extra.log_pos,
    ];
    write_sections(path, payloads)
}

/// Compresses and checksums the section payloads and writes the file.
fn write_sections(path: &Path, payloads: [&[u8]; 8]) -> Result<Sizes, StoreError> {
    let mut body = Vec::new();
    let mut sizes = Sizes::default();
    for (tag, raw) in TAGS.iter().zip(payloads) {
        // Level 3: level 9 was measured ~2.5% smaller but ~45% slower to
        // write, and an update rewrites the file.
        let comp = zstd::bulk::compress(raw, 3).map_err(io(path))?;
        let mut h = [0u8; SECTION_HEADER_LEN];
        h[..4].copy_from_slice(*tag);
        h[4] = CODEC_ZSTD;
        h[8..16].copy_from_slice(&(comp.len() as u64).to_le_bytes());
        h[16..24].copy_from_slice(&(raw.len() as u64).to_le_bytes());
        h[24..28].copy_from_slice(&crc32c::crc32c(&comp).to_le_bytes());
        // The header checks itself: a flipped length or padding byte must
        // be caught before it is trusted to slice the file.
        let hcrc = crc32c::crc32c(&h[..28]);
        h[28..32].copy_from_slice(&hcrc.to_le_bytes());
        body.extend_from_slice(&h);
        body.extend_from_slice(&comp);
        sizes.sections.push((
            String::from_utf8_lossy(*tag).into_owned(),
            (SECTION_HEADER_LEN + comp.len()) as u64,
            raw.len() as u64,
        ));
    }
    let total = (HEADER_LEN + body.len()) as u64;
    let mut hdr = [0u8; HEADER_LEN];
    hdr[..8].copy_from_slice(&MAGIC);
    hdr[8..10].copy_from_slice(&VERSION.to_le_bytes());
    hdr[12..16].copy_from_slice(&(TAGS.len() as u32).to_le_bytes());
    hdr[16..24].copy_from_slice(&total.to_le_bytes());
    let crc = crc32c::crc32c(&hdr[..28]);
    hdr[28..32].copy_from_slice(&crc.to_le_bytes());

    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&hdr)?;
        f.write_all(&body)?;
        f.sync_data()
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&tmp)(e));
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    sizes.total = total;
    Ok(sizes)
}

/// Concatenates columns, each prefixed by its length.
fn columns(cols: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(cols.iter().map(|c| c.len() + 5).sum());
    for c in cols {
        put_bytes(&mut out, c);
    }
    out
}

/// A store read back: the graph and what was kept with it.
pub struct Opened {
    pub graph: Graph,
    pub extra: Extra,
    pub sizes: Sizes,
}

/// Reads only the header and the small sections (META, LPOS) of a store:
/// enough to tell whether it is up to date and to print its counts.
pub fn peek(path: &Path) -> Result<(Meta, Vec<u8>, Counts, Sizes), StoreError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let secs = sections(path, &bytes)?;
    let meta_raw = inflate(path, &bytes, &secs[0])?;
    let (meta, counts) = parse_meta(path, secs[0].offset, &meta_raw)?;
    let lpos = inflate(path, &bytes, &secs[7])?;
    Ok((meta, lpos, counts, sizes_of(&bytes, &secs)))
}

/// Entity, node, edge counts from META.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub entities: u64,
    pub nodes: u64,
    pub edges: u64,
}

fn sizes_of(bytes: &[u8], secs: &[Section]) -> Sizes {
    Sizes {
        total: bytes.len() as u64,
        sections: secs
            .iter()
            .map(|s| {
                (
                    String::from_utf8_lossy(&s.tag).into_owned(),
                    (SECTION_HEADER_LEN + s.len) as u64,
                    s.raw_len,
                )
            })
            .collect(),
    }
}

struct Section {
    tag: [u8; 4],
    /// File offset of the section header.
    offset: u64,
    /// Payload start and length in the file.
    start: usize,
    len: usize,
    raw_len: u64,
    crc: u32,
}

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

/// Checks the header and locates the sections.
fn sections(path: &Path, b: &[u8]) -> Result<Vec<Section>, StoreError> {
    if b.len() < 8 || b[..8] != MAGIC {
        return Err(StoreError::NotAStore {
            path: path.to_path_buf(),
            reason: "bad magic at offset 0".into(),
        });
    }
    if b.len() < HEADER_LEN {
        return Err(corrupt(path, 0, "truncated header"));
    }
    let version = u16::from_le_bytes([b[8], b[9]]);
    if version != VERSION {
        return Err(StoreError::Unsupported {
            path: path.to_path_buf(),
            found: version,
        });
    }
    let crc = u32::from_le_bytes(b[28..32].try_into().unwrap_or_default());
    if ENFORCE_CHECKSUMS && crc != crc32c::crc32c(&b[..28]) {
        return Err(corrupt(path, 0, "header checksum mismatch"));
    }
    let n = u32::from_le_bytes(b[12..16].try_into().unwrap_or_default()) as usize;
    let total = u64::from_le_bytes(b[16..24].try_into().unwrap_or_default());
    if total != b.len() as u64 {
        return Err(corrupt(
            path,
            0,
            format!("header says {total} bytes, the file has {}", b.len()),
        ));
    }
    if n != TAGS.len() || b[10..12] != [0, 0] {
        return Err(corrupt(
            path,
            0,
            format!("unexpected header fields ({n} sections)"),
        ));
    }
    let mut pos = HEADER_LEN;
    let mut out = Vec::with_capacity(n);
    for tag in TAGS {
        let off = pos as u64;
        if b.len() - pos < SECTION_HEADER_LEN {
            return Err(corrupt(path, off, "truncated section header"));
        }
        let h = &b[pos..pos + SECTION_HEADER_LEN];
        if &h[..4] != tag {
            return Err(corrupt(
                path,
                off,
                format!(
                    "expected section {}, found {:02x?}",
                    String::from_utf8_lossy(tag),
                    &h[..4]
                ),
            ));
        }
        let hcrc = u32::from_le_bytes(h[28..32].try_into().unwrap_or_default());
        if ENFORCE_CHECKSUMS && hcrc != crc32c::crc32c(&h[..28]) {
            return Err(corrupt(path, off, "section header checksum mismatch"));
        }
        if h[5..8] != [0, 0, 0] {
            return Err(corrupt(path, off, "section header padding is not zero"));
        }
        let le64 =
            |r: std::ops::Range<usize>| u64::from_le_bytes(h[r].try_into().unwrap_or_default());
        let len = le64(8..16);
        let raw_len = le64(16..24);
        let crc = u32::from_le_bytes(h[24..28].try_into().unwrap_or_default());
        if h[4] != CODEC_ZSTD {
            return Err(corrupt(path, off, format!("unknown codec {}", h[4])));
        }
        let start = pos + SECTION_HEADER_LEN;
        if len > (b.len() - start) as u64 {
            return Err(corrupt(
                path,
                off,
                format!(
                    "section claims {len} bytes, {} left in the file",
                    b.len() - start
                ),
            ));
        }
        if raw_len > MAX_RAW {
            return Err(corrupt(path, off, format!("absurd raw length {raw_len}")));
        }
        out.push(Section {
            tag: *tag,
            offset: off,
            start,
            len: len as usize,
            raw_len,
            crc,
        });
        pos = start + len as usize;
    }
    if pos != b.len() {
        return Err(corrupt(path, pos as u64, "data after the last section"));
    }
    Ok(out)
}

fn inflate(path: &Path, b: &[u8], s: &Section) -> Result<Vec<u8>, StoreError> {
    let comp = &b[s.start..s.start + s.len];
    if ENFORCE_CHECKSUMS && crc32c::crc32c(comp) != s.crc {
        return Err(corrupt(
            path,
            s.offset,
            format!(
                "section {} checksum mismatch",
                String::from_utf8_lossy(&s.tag)
            ),
        ));
    }
    let raw = zstd::bulk::decompress(comp, s.raw_len as usize).map_err(|e| {
        corrupt(
            path,
            s.offset,
            format!(
                "section {} does not decompress: {e}",
                String::from_utf8_lossy(&s.tag)
            ),
        )
    })?;
    if raw.len() as u64 != s.raw_len {
        return Err(corrupt(
            path,
            s.offset,
            "section size differs from its header",
        ));
    }
    Ok(raw)
}

fn get_opt(c: &mut Cur) -> codec::R<Option<u64>> {
    Ok(match c.u64()? {
        0 => None,
        v => Some(v - 1),
    })
}

fn parse_meta(path: &Path, off: u64, raw: &[u8]) -> Result<(Meta, Counts), StoreError> {
    let mut c = Cur::new(raw, "META");
    let r = (|| -> codec::R<(Meta, Counts)> {
        let counts = Counts {
            entities: c.u64()?,
            nodes: c.u64()?,
            edges: c.u64()?,
        };
        let _applied = c.u64()?;
        let meta = Meta {
            events: c.u64()?,
            first_ns: get_opt(&mut c)?,
            last_ns: get_opt(&mut c)?,
        };
        Ok((meta, counts))
    })();
    r.map_err(|e| corrupt(path, off, e))
}

/// Opens a store: checks every checksum, decodes every section, rebuilds the
/// in-memory indexes. Never panics on a damaged file.
pub fn open(path: &Path) -> Result<Opened, StoreError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    open_bytes(path, &bytes)
}

/// [`open`] on bytes already in memory; `path` names them in errors.
pub fn open_bytes(path: &Path, bytes: &[u8]) -> Result<Opened, StoreError> {
    let secs = sections(path, bytes)?;
    let raws: Vec<Vec<u8>> = secs
        .iter()
        .map(|s| inflate(path, bytes, s))
        .collect::<Result<_, _>>()?;
    let (meta, counts) = parse_meta(path, secs[0].offset, &raws[0])?;
    let mut c = Cur::new(&raws[0], "META");
    let applied = (|| {
        for _ in 0..3 {
            c.u64()?;
        }
        c.u64()
    })()
    .map_err(|e| corrupt(path, secs[0].offset, e))?;

    // STRS
    let strings: Vec<String> = (|| {
        let mut c = Cur::new(&raws[1], "STRS");
        let n = c.count()?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let b = c.len_bytes()?;
            match std::str::from_utf8(b) {
                Ok(s) => v.push(s.to_string()),
                Err(_) => return c.err("string is not UTF-8"),
            }
        }
        Ok(v)
    })()
    .map_err(|e: String| corrupt(path, secs[1].offset, e))?;
    let s = |c: &mut Cur, id: u64| -> codec::R<String> {
        match strings.get(id as usize) {
            Some(s) => Ok(s.clone()),
            None => c.err(format!("string id {id} out of range ({})", strings.len())),
        }
    };

    let n_ent = counts.entities;
    let n_node = counts.nodes;
    // Every entity, node and edge takes at least one byte of its section.
    if n_ent > raws[2].len() as u64
        || n_node > raws[3].len() as u64
        || counts.edges > raws[4].len() as u64
    {
        return Err(corrupt(
            path,
            secs[0].offset,
            "counts exceed the section sizes",
        ));
    }

    // ENTS
    let mut entities: Vec<Entity> = (|| {
        let mut c = Cur::new(&raws[2], "ENTS");
        let mut v = Vec::with_capacity(n_ent as usize);
        let mut prev_first = 0u64;
        for _ in 0..n_ent {
            let uuid = Uuid::from_bytes(c.bytes(16)?.try_into().unwrap_or_default());
            let kc = c.u8()?;
            let Some(kind) = kind_of(kc) else {
                return c.err(format!("bad entity kind {kc}"));
            };
            let first_ns = c.delta(prev_first)?;
            prev_first = first_ns;
            let nn = c.count()?;
            let mut names = Vec::with_capacity(nn);
            for _ in 0..nn {
                let id = c.u64()?;
                names.push(s(&mut c, id)?);
            }
            let dev_ino = match c.u8()? {
                0 => None,
                1 => Some((c.u64()?, c.u64()?)),
                x => return c.err(format!("bad dev/ino flag {x}")),
            };
            let process = if kind == EntityKind::Process {
                let pid = c.u32()?;
                let ppid = c.u32()?;
                let start_ticks = c.u64()?;
                let parent = match get_opt(&mut c)? {
                    None => None,
                    Some(p) if p < n_ent => Some(p as u32),
                    Some(p) => return c.err(format!("parent {p} out of range")),
                };
                let start_ns = c.delta(first_ns)?;
                let end_ns = get_opt(&mut c)?.map(|d| start_ns.wrapping_add(d));
                let exit_code = get_opt(&mut c)?.map(|z| codec::unzigzag(z) as i32);
                let exit_signal = get_opt(&mut c)?.map(|z| codec::unzigzag(z) as i32);
                let uid = c.u32()?;
                let euid = c.u32()?;
                let nx = c.count()?;
                let mut execs = Vec::with_capacity(nx);
                for _ in 0..nx {
                    let id = c.u64()?;
                    let exe = s(&mut c, id)?;
                    let na = c.count()?;
                    let mut argv = Vec::with_capacity(na);
                    for _ in 0..na {
                        let id = c.u64()?;
                        argv.push(s(&mut c, id)?);
                    }
                    let ts_ns = c.delta(first_ns)?;
                    execs.push(ExecInfo { exe, argv, ts_ns });
                }
                let exe = match get_opt(&mut c)? {
                    Some(id) => Some(s(&mut c, id)?),
                    None => None,
                };
                let na = c.count()?;
                let mut argv = Vec::with_capacity(na);
                for _ in 0..na {
                    let id = c.u64()?;
                    argv.push(s(&mut c, id)?);
                }
                let cwd = match get_opt(&mut c)? {
                    Some(id) => Some(s(&mut c, id)?),
                    None => None,
                };
                Some(Box::new(ProcessInfo {
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
                }))
            } else {
                None
            };
            v.push(Entity {
                uuid,
                kind,
                names,
                versions: Vec::new(),
                dev_ino,
                process,
                first_ns,
            });
        }
        if !c.at_end() {
            return c.err("bytes left over");
        }
        Ok(v)
    })()
    .map_err(|e: String| corrupt(path, secs[2].offset, e))?;

    // NODE
    let nodes: Vec<Node> = (|| {
        let mut top = Cur::new(&raws[3], "NODE");
        let mut ce = Cur::new(top.len_bytes()?, "NODE.entity");
        let mut ct = Cur::new(top.len_bytes()?, "NODE.created");
        let mut cl = Cur::new(top.len_bytes()?, "NODE.label");
        let mut v: Vec<Node> = Vec::with_capacity(n_node as usize);
        let mut prev_ts = 0;
        let mut prev_ent = 0;
        for i in 0..n_node {
            let ent = ce.delta(prev_ent)?;
            prev_ent = ent;
            if ent >= n_ent {
                return ce.err(format!("entity {ent} out of range"));
            }
            let created_ns = ct.delta(prev_ts)?;
            prev_ts = created_ns;
            let label = match cl.u64()? {
                0 => match entities[ent as usize].versions.last() {
                    Some(&p) => v[p as usize].label.clone(),
                    None => return cl.err("label refers to a missing previous version"),
                },
                lid => s(&mut cl, lid - 1)?,
            };
            let e = &mut entities[ent as usize];
            let version = e.versions.len() as u32;
            e.versions.push(i as u32);
            v.push(Node {
                entity: ent as u32,
                version,
                created_ns,
                label,
            });
        }
        Ok(v)
    })()
    .map_err(|e: String| corrupt(path, secs[3].offset, e))?;
    if let Some(i) = entities.iter().position(|e| e.versions.is_empty()) {
        return Err(corrupt(
            path,
            secs[3].offset,
            format!("entity {i} has no version"),
        ));
    }

    // EDGE
    let mut call_ids: HashMap<u64, &'static str> = HashMap::new();
    let edges: Vec<Edge> = (|| {
        let mut top = Cur::new(&raws[4], "EDGE");
        let names = [
            "EDGE.dst",
            "EDGE.src",
            "EDGE.kind",
            "EDGE.ts",
            "EDGE.dur",
            "EDGE.bytes",
            "EDGE.offset",
            "EDGE.call",
            "EDGE.events",
        ];
        let mut cs: Vec<Cur> = Vec::with_capacity(9);
        for n in names {
            cs.push(Cur::new(top.len_bytes()?, n));
        }
        let mut v = Vec::with_capacity(counts.edges as usize);
        let (mut prev_dst, mut prev_ts) = (0u64, 0u64);
        for _ in 0..counts.edges {
            let dst = cs[0].delta(prev_dst)?;
            prev_dst = dst;
            let src = cs[1].delta(dst)?;
            if dst >= n_node || src >= n_node {
                return cs[1].err(format!("edge {src} -> {dst} out of range ({n_node} nodes)"));
            }
            let kc = cs[2].u8()?;
            let Some(&kind) = EDGE_KINDS.get(kc as usize) else {
                return cs[2].err(format!("bad edge kind {kc}"));
            };
            let ts_ns = cs[3].delta(prev_ts)?;
            prev_ts = ts_ns;
            let last_ns = ts_ns.wrapping_add(cs[4].u64()?);
            let bytes = cs[5].u64()?;
            let offset = get_opt(&mut cs[6])?;
            let cid = cs[7].u64()?;
            let call = match call_ids.get(&cid) {
                Some(c) => *c,
                None => {
                    let name = s(&mut cs[7], cid)?;
                    let Some(c) = intern(&name) else {
                        return cs[7].err("too many distinct call names");
                    };
                    call_ids.insert(cid, c);
                    c
                }
            };
            let events = cs[8].u32()?;
            v.push(Edge {
                src: src as u32,
                dst: dst as u32,
                kind,
                ts_ns,
                last_ns,
                bytes,
                offset,
                call,
                events,
            });
        }
        Ok(v)
    })()
    .map_err(|e: String| corrupt(path, secs[4].offset, e))?;

    // NAME
    let by_name: crate::HashMap<String, Vec<u32>> = (|| {
        let mut c = Cur::new(&raws[5], "NAME");
        let n = c.count()?;
        let mut m = crate::HashMap::with_capacity_and_hasher(n, Default::default());
        for _ in 0..n {
            let id = c.u64()?;
            let k = s(&mut c, id)?;
            let ne = c.count()?;
            let mut v = Vec::with_capacity(ne);
            for _ in 0..ne {
                let e = c.u64()?;
                if e >= n_ent {
                    return c.err(format!("entity {e} out of range"));
                }
                v.push(e as u32);
            }
            m.insert(k, v);
        }
        Ok(m)
    })()
    .map_err(|e: String| corrupt(path, secs[5].offset, e))?;

    let mut g = Graph {
        entities,
        nodes,
        edges: Vec::new(),
        by_name,
        events_applied: applied,
        ..Graph::default()
    };
    g.out_adj = vec![Vec::new(); g.nodes.len()];
    g.in_adj = vec![Vec::new(); g.nodes.len()];
    for e in edges {
        g.push_edge(e);
    }
    for (i, e) in g.entities.iter().enumerate() {
        g.by_uuid.insert(e.uuid, i as u32);
        if let Some(p) = &e.process {
            g.by_pid.entry(p.pid).or_default().push(i as u32);
        }
    }
    let sizes = sizes_of(bytes, &secs);
    let mut raws = raws;
    let log_pos = std::mem::take(&mut raws[7]);
    let ingest_state = std::mem::take(&mut raws[6]);
    Ok(Opened {
        graph: g,
        extra: Extra {
            meta,
            ingest_state,
            log_pos,
        },
        sizes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Flow;

    fn sample() -> Graph {
        let mut g = Graph::new();
        let p = g.declare(Uuid::from_u128(1), EntityKind::Process, 5, "sh");
        g.process_mut(p).unwrap().execs.push(ExecInfo {
            exe: "/bin/sh".into(),
            argv: vec!["sh".into(), "-c".into()],
            ts_ns: 6,
        });
        g.index_pid(p, 42);
        g.process_mut(p).unwrap().pid = 42;
        for i in 0..20u128 {
            let f = g.declare(Uuid::from_u128(100 + i), EntityKind::File, 7, "/f");
            g.name(f, &format!("/f/{i}"));
            let fl = |kind, ts| Flow {
                kind,
                ts_ns: ts,
                bytes: 3,
                offset: Some(1),
                call: "read",
            };
            g.flow(f, p, fl(EdgeKind::Read, 10 + i as u64));
            g.flow(p, f, fl(EdgeKind::Write, 11 + i as u64));
        }
        g
    }

    /// Raw section payloads of a valid store, and garbage written into
    /// them with valid checksums: the decoder must reject or accept, never
    /// panic or allocate wildly.
    #[test]
    fn garbage_inside_checksummed_sections_never_panics() {
        let dir = std::env::temp_dir().join(format!("tomo-disk-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("s.idx");
        let g = sample();
        write(&p, &g, &Extra::default()).unwrap();
        let o = open(&p).unwrap();
        assert_eq!(o.graph.edges.len(), g.edges.len());
        assert_eq!(o.graph.by_pid(42), g.by_pid(42));
        let bytes = std::fs::read(&p).unwrap();
        let secs = sections(&p, &bytes).unwrap();
        let raws: Vec<Vec<u8>> = secs
            .iter()
            .map(|s| inflate(&p, &bytes, s).unwrap())
            .collect();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..3000 {
            let mut r = raws.clone();
            let s = (rnd() % 6) as usize;
            if r[s].is_empty() {
                continue;
            }
            for _ in 0..1 + round % 4 {
                let i = (rnd() as usize) % r[s].len();
                match rnd() % 3 {
                    0 => r[s][i] = rnd() as u8,
                    1 => r[s][i] = 0xff,
                    _ => r[s].truncate(i),
                }
                if r[s].is_empty() {
                    break;
                }
            }
            let refs: Vec<&[u8]> = r.iter().map(|v| v.as_slice()).collect();
            write_sections(&p, refs.try_into().unwrap()).unwrap();
            if let Err(e) = open(&p) {
                assert!(e.to_string().contains("s.idx"), "{e}");
            }
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}

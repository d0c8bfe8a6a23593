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
//! section (32 B header, chunk directory, chunks), in this order:
//!   META  counts, event count, time span, origin, UUID roots, edge symbols
//!   STRS  every label, name, path, argv word and call name once, sorted
//!         (a string's id is its rank), front-coded; 4096 per chunk
//!   ENTS  entities: how to recompute the UUID (or the UUID), kind, names,
//!         (dev, ino), process facts, versions; 4096 per chunk
//!   NODE  versions with their incoming edges, 4096 versions per chunk
//!   NAME  the name index (name -> entities), in string order
//!   STAT  the ingest's working state (opaque, from tomo-ingest)
//!   LPOS  the log position reached (opaque, from tomo-log)
//! section header: tag [4] | codec u8 (1 = zstd) | reserved [3]
//!                 | payload_len u64 | chunks u64 | crc32c(directory) u32
//!                 | crc32c(header[0..28]) u32
//! directory: per chunk (32 B): stored_len u64 | raw_len u64 | crc32c u32
//!                 | items u32 | key u64
//! ```
//!
//! Every chunk is compressed on its own (zstd) and checksummed in the
//! directory, so a reader can decode only the chunks it needs
//! ([`Lazy`]) while [`open`] decodes them all into a [`Graph`]. Edges are
//! stored with their destination version (its incoming edges, in creation
//! order, with their creation ids), so the edges into a version are one
//! lookup; the edge that created a version (`version`, `exec`) is implied
//! by the version and not stored. A node's version number is its rank
//! among its entity's nodes.

mod chunk;
mod codec;
mod lazy;

pub use lazy::{memory_limit, Lazy, LazyOptions};

use crate::{Edge, EdgeKind, Entity, EntityKind, Graph, Node};
use chunk::{Ctx, EntChunk, NodeChunk};
use codec::{put, put_opt, Cur};
use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const MAGIC: [u8; 8] = *b"\x89TIDX\r\n\x1a";
pub const VERSION: u16 = 3;
const HEADER_LEN: usize = 32;
const SECTION_HEADER_LEN: usize = 32;
const DIR_ENTRY_LEN: usize = 32;
const CODEC_ZSTD: u8 = 1;
const TAGS: [&[u8; 4]; 7] = [
    b"META", b"STRS", b"ENTS", b"NODE", b"NAME", b"STAT", b"LPOS",
];
const META: usize = 0;
const STRS: usize = 1;
const ENTS: usize = 2;
const NODE: usize = 3;
const NAME: usize = 4;
const STAT: usize = 5;
const LPOS: usize = 6;
/// Items per chunk of the chunked sections.
const PER_CHUNK: usize = 4096;
/// Opaque sections are cut into chunks of this many bytes.
const OPAQUE_CHUNK: usize = 4 << 20;
/// Average incoming edges per version a NODE chunk may hold before it is
/// cut (so 16,384 edges for 4096 versions).
const EDGES_PER_VERSION_IN_CHUNK: usize = 4;
/// Refuse chunks that claim to inflate beyond this (corruption guard). A
/// chunk holds at least one version with all its incoming edges, which can
/// be millions; chunks above [`BULK_INFLATE_MAX`] are inflated as a stream,
/// so a claimed size costs no memory before the bytes are really there.
const MAX_CHUNK_RAW: u64 = 4 << 30;
const BULK_INFLATE_MAX: u64 = 64 << 20;
/// At most this many UUID roots (host, boot) are tried per entity.
const MAX_ROOTS: usize = 64;
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

/// An edge symbol as the writer looks it up: kind, and the call's address
/// and length (calls are static strings).
type SymKey = (u8, usize, usize);

fn sym_key(k: EdgeKind, call: &'static str) -> SymKey {
    (k as u8, call.as_ptr() as usize, call.len())
}

/// A host id and a boot id, from which the ingest derives UUIDs
/// ([`crate::ident`]).
pub type UuidRoot = ([u8; 16], [u8; 16]);

/// What a store holds besides the graph.
#[derive(Clone, Debug, Default)]
pub struct Extra {
    pub meta: Meta,
    /// Opaque ingest state (`tomo_ingest::Ingest::save_state`).
    pub ingest_state: Vec<u8>,
    /// Opaque log position (`tomo_log::Position`, encoded by the caller).
    pub log_pos: Vec<u8>,
    /// The (host, boot) pairs of the events: the writer tries them to
    /// recompute UUIDs instead of storing them (at most 64 are kept).
    pub uuid_roots: Vec<UuidRoot>,
}

/// Byte sizes of the sections as written, for `tomo stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sizes {
    pub total: u64,
    /// (tag, stored bytes including the section header, raw bytes)
    pub sections: Vec<(String, u64, u64)>,
}

/// Entity, node, edge counts from META.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub entities: u64,
    pub nodes: u64,
    pub edges: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
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

// ---------------------------------------------------------------------------
// The file: header, sections, chunk directories.

/// One chunk of a section, as located by the directory.
#[derive(Clone, Copy, Debug)]
struct ChunkLoc {
    /// File offset of the compressed bytes.
    off: u64,
    stored: u64,
    raw: u64,
    crc: u32,
    /// Items (entities, nodes, strings, names) in the chunk.
    items: u32,
    /// First item id, or (STRS) the first 8 bytes of the first string, or
    /// (NAME) the string id of the first name.
    key: u64,
}

#[derive(Clone, Debug)]
struct Section {
    tag: [u8; 4],
    /// File offset of the section header.
    offset: u64,
    /// Payload length (directory and chunks).
    len: u64,
    chunks: Vec<ChunkLoc>,
    /// Id of each chunk's first item (running sum of `items`), and the total.
    first: Vec<u64>,
}

impl Section {
    fn items(&self) -> u64 {
        self.first.last().copied().unwrap_or(0)
    }
    fn raw(&self) -> u64 {
        self.chunks.iter().map(|c| c.raw).sum()
    }
    /// The chunk holding item `id`, if any.
    fn chunk_of(&self, id: u64) -> Option<usize> {
        if id >= self.items() {
            return None;
        }
        Some(self.first.partition_point(|&f| f <= id) - 1)
    }
}

/// Where the store's bytes come from: all in memory ([`open`]) or read as
/// needed ([`Lazy`]).
trait Src {
    fn size(&self) -> u64;
    fn read(&self, off: u64, len: usize) -> std::io::Result<Cow<'_, [u8]>>;
}

impl Src for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read(&self, off: u64, len: usize) -> std::io::Result<Cow<'_, [u8]>> {
        let end = (off as usize).checked_add(len);
        match end {
            Some(end) if end <= self.len() => Ok(Cow::Borrowed(&self[off as usize..end])),
            _ => Err(std::io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

impl Src for std::fs::File {
    fn size(&self) -> u64 {
        self.metadata().map(|m| m.len()).unwrap_or(0)
    }
    fn read(&self, off: u64, len: usize) -> std::io::Result<Cow<'_, [u8]>> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; len];
        self.read_exact_at(&mut buf, off)?;
        Ok(Cow::Owned(buf))
    }
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default())
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap_or_default())
}

/// Checks the header, the section headers and the chunk directories, and
/// locates every chunk. Reads only those (a few bytes per chunk).
fn sections<S: Src + ?Sized>(path: &Path, src: &S) -> Result<Vec<Section>, StoreError> {
    let size = src.size();
    let rd = |off: u64, len: usize, what: &str| {
        src.read(off, len).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => corrupt(path, off, format!("truncated {what}")),
            _ => io(path)(e),
        })
    };
    if size < 8 {
        return Err(StoreError::NotAStore {
            path: path.to_path_buf(),
            reason: "bad magic at offset 0".into(),
        });
    }
    let magic = rd(0, 8, "header")?;
    if magic[..] != MAGIC {
        return Err(StoreError::NotAStore {
            path: path.to_path_buf(),
            reason: "bad magic at offset 0".into(),
        });
    }
    if size < HEADER_LEN as u64 {
        return Err(corrupt(path, 0, "truncated header"));
    }
    let b = rd(0, HEADER_LEN, "header")?;
    let version = u16::from_le_bytes([b[8], b[9]]);
    if version != VERSION {
        return Err(StoreError::Unsupported {
            path: path.to_path_buf(),
            found: version,
        });
    }
    if ENFORCE_CHECKSUMS && le32(&b, 28) != crc32c::crc32c(&b[..28]) {
        return Err(corrupt(path, 0, "header checksum mismatch"));
    }
    let n = le32(&b, 12) as usize;
    let total = le64(&b, 16);
    if total != size {
        return Err(corrupt(
            path,
            0,
            format!("header says {total} bytes, the file has {size}"),
        ));
    }
    if n != TAGS.len() || b[10..12] != [0, 0] || b[24..28] != [0, 0, 0, 0] {
        return Err(corrupt(
            path,
            0,
            format!("unexpected header fields ({n} sections)"),
        ));
    }
    let mut pos = HEADER_LEN as u64;
    let mut out = Vec::with_capacity(n);
    for tag in TAGS {
        let off = pos;
        if size - pos < SECTION_HEADER_LEN as u64 {
            return Err(corrupt(path, off, "truncated section header"));
        }
        let h = rd(pos, SECTION_HEADER_LEN, "section header")?;
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
        if ENFORCE_CHECKSUMS && le32(&h, 28) != crc32c::crc32c(&h[..28]) {
            return Err(corrupt(path, off, "section header checksum mismatch"));
        }
        if h[5..8] != [0, 0, 0] {
            return Err(corrupt(path, off, "section header padding is not zero"));
        }
        if h[4] != CODEC_ZSTD {
            return Err(corrupt(path, off, format!("unknown codec {}", h[4])));
        }
        let len = le64(&h, 8);
        let nchunks = le64(&h, 16);
        let start = pos + SECTION_HEADER_LEN as u64;
        if len > size - start {
            return Err(corrupt(
                path,
                off,
                format!(
                    "section claims {len} bytes, {} left in the file",
                    size - start
                ),
            ));
        }
        if nchunks.saturating_mul(DIR_ENTRY_LEN as u64) > len {
            return Err(corrupt(
                path,
                off,
                format!("{nchunks} chunks do not fit {len} bytes"),
            ));
        }
        let dlen = nchunks as usize * DIR_ENTRY_LEN;
        let dir = rd(start, dlen, "chunk directory")?;
        if ENFORCE_CHECKSUMS && le32(&h, 24) != crc32c::crc32c(&dir) {
            return Err(corrupt(
                path,
                off,
                format!(
                    "section {} directory checksum mismatch",
                    String::from_utf8_lossy(tag)
                ),
            ));
        }
        let mut coff = start + dlen as u64;
        let mut chunks = Vec::with_capacity(nchunks as usize);
        let mut first = Vec::with_capacity(nchunks as usize + 1);
        let mut items = 0u64;
        for i in 0..nchunks as usize {
            let d = &dir[i * DIR_ENTRY_LEN..(i + 1) * DIR_ENTRY_LEN];
            let c = ChunkLoc {
                off: coff,
                stored: le64(d, 0),
                raw: le64(d, 8),
                crc: le32(d, 16),
                items: le32(d, 20),
                key: le64(d, 24),
            };
            if c.stored > start + len - coff || c.raw > MAX_CHUNK_RAW {
                return Err(corrupt(
                    path,
                    off,
                    format!(
                        "chunk {i} of {} has bad sizes",
                        String::from_utf8_lossy(tag)
                    ),
                ));
            }
            coff += c.stored;
            first.push(items);
            items += c.items as u64;
            chunks.push(c);
        }
        first.push(items);
        if coff != start + len {
            return Err(corrupt(
                path,
                off,
                "chunk sizes do not add up to the section",
            ));
        }
        out.push(Section {
            tag: *tag,
            offset: off,
            len,
            chunks,
            first,
        });
        pos = start + len;
    }
    if pos != size {
        return Err(corrupt(path, pos, "data after the last section"));
    }
    Ok(out)
}

/// The raw bytes of one chunk, checked against its checksum and sizes.
/// Inflate a large chunk, growing the buffer as bytes come (at most
/// `limit + 1`, so a chunk longer than its directory entry says is seen).
fn inflate_stream(comp: &[u8], limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    zstd::stream::read::Decoder::new(comp)?
        .take(limit + 1)
        .read_to_end(&mut out)?;
    Ok(out)
}

fn inflate<S: Src + ?Sized>(
    path: &Path,
    src: &S,
    sec: &Section,
    i: usize,
) -> Result<Vec<u8>, StoreError> {
    let c = &sec.chunks[i];
    let tag = String::from_utf8_lossy(&sec.tag);
    let comp = src.read(c.off, c.stored as usize).map_err(io(path))?;
    if ENFORCE_CHECKSUMS && crc32c::crc32c(&comp) != c.crc {
        return Err(corrupt(
            path,
            c.off,
            format!("section {tag} chunk {i} checksum mismatch"),
        ));
    }
    let raw = if c.raw <= BULK_INFLATE_MAX {
        zstd::bulk::decompress(&comp, c.raw as usize)
    } else {
        inflate_stream(&comp, c.raw)
    }
    .map_err(|e| {
        corrupt(
            path,
            c.off,
            format!("section {tag} chunk {i} does not decompress: {e}"),
        )
    })?;
    if raw.len() as u64 != c.raw {
        return Err(corrupt(
            path,
            c.off,
            format!("section {tag} chunk {i}: size differs from the directory"),
        ));
    }
    Ok(raw)
}

/// All chunks of an opaque section, concatenated.
fn inflate_all<S: Src + ?Sized>(
    path: &Path,
    src: &S,
    sec: &Section,
) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    for i in 0..sec.chunks.len() {
        out.extend_from_slice(&inflate(path, src, sec, i)?);
    }
    Ok(out)
}

fn sizes_of(total: u64, secs: &[Section]) -> Sizes {
    Sizes {
        total,
        sections: secs
            .iter()
            .map(|s| {
                (
                    String::from_utf8_lossy(&s.tag).into_owned(),
                    SECTION_HEADER_LEN as u64 + s.len,
                    s.raw(),
                )
            })
            .collect(),
    }
}

/// A section under construction: its compressed chunks.
struct SecOut {
    tag: &'static [u8; 4],
    /// (compressed bytes, raw length, items, key)
    chunks: Vec<(Vec<u8>, u64, u32, u64)>,
}

impl SecOut {
    fn new(tag: &'static [u8; 4]) -> SecOut {
        SecOut {
            tag,
            chunks: Vec::new(),
        }
    }

    fn push(&mut self, raw: &[u8], items: u32, key: u64) -> std::io::Result<()> {
        // Level 3: higher levels were measured a few percent smaller and
        // much slower to write.
        let comp = zstd::bulk::compress(raw, 3)?;
        self.chunks.push((comp, raw.len() as u64, items, key));
        Ok(())
    }

    fn opaque(tag: &'static [u8; 4], raw: &[u8]) -> std::io::Result<SecOut> {
        let mut s = SecOut::new(tag);
        for c in raw.chunks(OPAQUE_CHUNK) {
            s.push(c, 0, 0)?;
        }
        Ok(s)
    }

    /// Section header, directory, and the payload length.
    fn head(&self) -> ([u8; SECTION_HEADER_LEN], Vec<u8>, u64) {
        let mut dir = Vec::with_capacity(self.chunks.len() * DIR_ENTRY_LEN);
        for (comp, raw, items, key) in &self.chunks {
            dir.extend_from_slice(&(comp.len() as u64).to_le_bytes());
            dir.extend_from_slice(&raw.to_le_bytes());
            dir.extend_from_slice(&crc32c::crc32c(comp).to_le_bytes());
            dir.extend_from_slice(&items.to_le_bytes());
            dir.extend_from_slice(&key.to_le_bytes());
        }
        let len = dir.len() as u64 + self.chunks.iter().map(|c| c.0.len() as u64).sum::<u64>();
        let mut h = [0u8; SECTION_HEADER_LEN];
        h[..4].copy_from_slice(self.tag);
        h[4] = CODEC_ZSTD;
        h[8..16].copy_from_slice(&len.to_le_bytes());
        h[16..24].copy_from_slice(&(self.chunks.len() as u64).to_le_bytes());
        h[24..28].copy_from_slice(&crc32c::crc32c(&dir).to_le_bytes());
        // The header checks itself: a flipped length or padding byte must
        // be caught before it is trusted to slice the file.
        let hcrc = crc32c::crc32c(&h[..28]);
        h[28..32].copy_from_slice(&hcrc.to_le_bytes());
        (h, dir, len)
    }
}

/// Writes the sections to `path` atomically (a temporary file renamed over
/// it; synced first unless `sync` is false, for tests). Returns the section
/// sizes.
fn write_file(path: &Path, secs: &[SecOut], sync: bool) -> Result<Sizes, StoreError> {
    let heads: Vec<_> = secs.iter().map(|s| s.head()).collect();
    let total = HEADER_LEN as u64
        + heads
            .iter()
            .map(|(_, _, len)| SECTION_HEADER_LEN as u64 + len)
            .sum::<u64>();
    let mut hdr = [0u8; HEADER_LEN];
    hdr[..8].copy_from_slice(&MAGIC);
    hdr[8..10].copy_from_slice(&VERSION.to_le_bytes());
    hdr[12..16].copy_from_slice(&(secs.len() as u32).to_le_bytes());
    hdr[16..24].copy_from_slice(&total.to_le_bytes());
    let crc = crc32c::crc32c(&hdr[..28]);
    hdr[28..32].copy_from_slice(&crc.to_le_bytes());

    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let res = (|| {
        let f = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        w.write_all(&hdr)?;
        for (s, (h, dir, _)) in secs.iter().zip(&heads) {
            w.write_all(h)?;
            w.write_all(dir)?;
            for c in &s.chunks {
                w.write_all(&c.0)?;
            }
        }
        let f = w.into_inner().map_err(|e| e.into_error())?;
        if sync {
            f.sync_data()?;
        }
        Ok(())
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&tmp)(e));
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    Ok(Sizes {
        total,
        sections: secs
            .iter()
            .zip(&heads)
            .map(|(s, (_, _, len))| {
                (
                    String::from_utf8_lossy(s.tag).into_owned(),
                    SECTION_HEADER_LEN as u64 + len,
                    s.chunks.iter().map(|c| c.1).sum(),
                )
            })
            .collect(),
    })
}

// ---------------------------------------------------------------------------
// META

/// The META section decoded.
#[derive(Clone, Debug, Default)]
struct MetaRec {
    counts: Counts,
    applied: u64,
    meta: Meta,
    origin_ns: u64,
    strings: u64,
    roots: Vec<UuidRoot>,
    /// Edge symbols: (kind, call string id).
    syms: Vec<(EdgeKind, u32)>,
}

fn encode_meta(m: &MetaRec) -> Vec<u8> {
    let mut b = Vec::new();
    put(&mut b, m.counts.entities);
    put(&mut b, m.counts.nodes);
    put(&mut b, m.counts.edges);
    put(&mut b, m.applied);
    put(&mut b, m.meta.events);
    put_opt(&mut b, m.meta.first_ns);
    put_opt(&mut b, m.meta.last_ns);
    put(&mut b, m.origin_ns);
    put(&mut b, m.strings);
    put(&mut b, m.roots.len() as u64);
    for (h, bt) in &m.roots {
        b.extend_from_slice(h);
        b.extend_from_slice(bt);
    }
    put(&mut b, m.syms.len() as u64);
    for (k, c) in &m.syms {
        b.push(*k as u8);
        put(&mut b, *c as u64);
    }
    b
}

fn decode_meta(path: &Path, off: u64, raw: &[u8]) -> Result<MetaRec, StoreError> {
    let mut c = Cur::new(raw, "META");
    let r = (|| -> codec::R<MetaRec> {
        let counts = Counts {
            entities: c.u64()?,
            nodes: c.u64()?,
            edges: c.u64()?,
        };
        let applied = c.u64()?;
        let meta = Meta {
            events: c.u64()?,
            first_ns: c.opt()?,
            last_ns: c.opt()?,
        };
        let origin_ns = c.u64()?;
        let strings = c.u64()?;
        let nr = c.count()?;
        if nr > MAX_ROOTS {
            return c.err(format!("{nr} UUID roots"));
        }
        let mut roots = Vec::with_capacity(nr);
        for _ in 0..nr {
            let h: [u8; 16] = c.bytes(16)?.try_into().unwrap_or_default();
            let b: [u8; 16] = c.bytes(16)?.try_into().unwrap_or_default();
            roots.push((h, b));
        }
        let ns = c.count()?;
        let mut syms = Vec::with_capacity(ns);
        for _ in 0..ns {
            let k = c.u8()?;
            let Some(&kind) = EDGE_KINDS.get(k as usize) else {
                return c.err(format!("bad edge kind {k}"));
            };
            let call = c.u64()?;
            if call >= strings {
                return c.err(format!("call string {call} out of range"));
            }
            syms.push((kind, call as u32));
        }
        if !c.at_end() {
            return c.err("bytes left over");
        }
        Ok(MetaRec {
            counts,
            applied,
            meta,
            origin_ns,
            strings,
            roots,
            syms,
        })
    })();
    r.map_err(|e| corrupt(path, off, e))
}

/// Reads META from the located sections.
fn read_meta<S: Src + ?Sized>(
    path: &Path,
    src: &S,
    secs: &[Section],
) -> Result<MetaRec, StoreError> {
    let raw = inflate_all(path, src, &secs[META])?;
    let m = decode_meta(path, secs[META].offset, &raw)?;
    let bad = |what: &str| {
        corrupt(
            path,
            secs[META].offset,
            format!("{what} differ from the sections"),
        )
    };
    if secs[STRS].items() != m.strings {
        return Err(bad("string counts"));
    }
    if secs[ENTS].items() != m.counts.entities {
        return Err(bad("entity counts"));
    }
    if secs[NODE].items() != m.counts.nodes {
        return Err(bad("node counts"));
    }
    if m.counts.edges > m.counts.nodes.saturating_add(secs[NODE].raw()) {
        return Err(bad("edge counts"));
    }
    Ok(m)
}

// ---------------------------------------------------------------------------
// Writing

/// Writes the store for `g` to `path` atomically (a temporary file renamed
/// over it). Returns the section sizes.
pub fn write(path: &Path, g: &Graph, extra: &Extra) -> Result<Sizes, StoreError> {
    write_with(path, g, extra, PER_CHUNK)
}

/// [`write`] with `per_chunk` items (strings, entities, nodes, names) per
/// chunk instead of 4096: smaller chunks make a reader in place decode less
/// per access, and compress less well. Readers take any chunk size.
pub fn write_with(
    path: &Path,
    g: &Graph,
    extra: &Extra,
    per_chunk: usize,
) -> Result<Sizes, StoreError> {
    let per_chunk = per_chunk.clamp(1, u32::MAX as usize);
    let bad = |why: String| io(path)(std::io::Error::new(std::io::ErrorKind::InvalidData, why));
    // Edge symbols: (kind, call), most frequent first. Calls are static
    // strings: counted by address, then merged by value.
    let mut byaddr: crate::HashMap<SymKey, (EdgeKind, &'static str, u64)> = Default::default();
    for e in &g.edges {
        byaddr
            .entry(sym_key(e.kind, e.call.as_str()))
            .or_insert((e.kind, e.call.as_str(), 0))
            .2 += 1;
    }
    let mut symc: std::collections::BTreeMap<(u8, &'static str), u64> = Default::default();
    for (k, c, n) in byaddr.values() {
        *symc.entry((*k as u8, *c)).or_default() += n;
    }
    let mut syms: Vec<((u8, &'static str), u64)> = symc.into_iter().collect();
    syms.sort_by_key(|s| std::cmp::Reverse(s.1));
    let sym_rank: std::collections::BTreeMap<(u8, &'static str), u32> = syms
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (*k, i as u32))
        .collect();
    let sym_of: crate::HashMap<SymKey, u32> = byaddr
        .iter()
        .map(|(a, (k, c, _))| (*a, sym_rank[&(*k as u8, *c)]))
        .collect();

    // Strings, sorted: a string's id is its rank.
    let mut ids: crate::HashMap<&str, u32> = Default::default();
    for e in &g.entities {
        for n in &e.names {
            ids.entry(n).or_insert(0);
        }
        if let Some(p) = &e.process {
            for x in &p.execs {
                ids.entry(&x.exe).or_insert(0);
                for a in &x.argv {
                    ids.entry(a).or_insert(0);
                }
            }
            for a in p.exe.iter().chain(&p.argv).chain(&p.cwd) {
                ids.entry(a).or_insert(0);
            }
        }
    }
    for n in &g.nodes {
        ids.entry(&n.label).or_insert(0);
    }
    for k in g.by_name.keys() {
        ids.entry(k).or_insert(0);
    }
    for ((_, c), _) in &syms {
        ids.entry(c).or_insert(0);
    }
    let mut all: Vec<&str> = ids.keys().copied().collect();
    all.sort_unstable();
    for (i, s) in all.iter().enumerate() {
        if let Some(v) = ids.get_mut(s) {
            *v = i as u32;
        }
    }
    let syms: Vec<((EdgeKind, &'static str), u64)> = syms
        .into_iter()
        .map(|((k, c), n)| ((EDGE_KINDS[k as usize], c), n))
        .collect();

    let mut roots: Vec<UuidRoot> = extra.uuid_roots.clone();
    roots.truncate(MAX_ROOTS);
    let ctx = chunk::WriteCtx {
        g,
        ids: &ids,
        sym_of: &sym_of,
        roots: &roots,
    };
    let mut secs: Vec<SecOut> = Vec::with_capacity(TAGS.len());

    let meta = MetaRec {
        counts: Counts {
            entities: g.entities.len() as u64,
            nodes: g.nodes.len() as u64,
            edges: g.edges.len() as u64,
        },
        applied: g.events_applied,
        meta: extra.meta.clone(),
        origin_ns: crate::GraphRead::origin_ns(g),
        strings: all.len() as u64,
        roots: roots.clone(),
        syms: syms.iter().map(|((k, c), _)| (*k, ids[c])).collect(),
    };
    let io_err = io(path);
    let r = (|| -> std::io::Result<()> {
        secs.push(SecOut::opaque(b"META", &encode_meta(&meta))?);
        let mut s = SecOut::new(b"STRS");
        let mut buf = Vec::new();
        for (i, c) in all.chunks(per_chunk).enumerate() {
            let _ = i;
            chunk::encode_strs(c, &mut buf);
            s.push(&buf, c.len() as u32, chunk::str_key(c[0]))?;
        }
        secs.push(s);
        let mut s = SecOut::new(b"ENTS");
        let mut gens = chunk::Gens::default();
        for lo in (0..g.entities.len()).step_by(per_chunk) {
            let hi = (lo + per_chunk).min(g.entities.len());
            ctx.encode_ents(lo, hi, &mut gens, &mut buf);
            s.push(&buf, (hi - lo) as u32, lo as u64)?;
        }
        secs.push(s);
        Ok(())
    })();
    r.map_err(io_err)?;
    let mut s = SecOut::new(b"NODE");
    let mut state = chunk::NodeWriteState::default();
    let mut buf = Vec::new();
    // A NODE chunk ends after `per_chunk` versions or once it holds
    // `EDGES_PER_VERSION_IN_CHUNK` edges per version on average: a few
    // versions with a million incoming edges each (a daemon reading from
    // every client before it writes) made 100 M events' first chunk
    // inflate beyond what a reader accepts, and every query touching one
    // of those versions decoded all of it.
    let edge_budget = per_chunk.saturating_mul(EDGES_PER_VERSION_IN_CHUNK);
    let mut lo = 0;
    while lo < g.nodes.len() {
        let mut hi = lo;
        let mut edges = 0usize;
        while hi < g.nodes.len() && hi - lo < per_chunk && (hi == lo || edges < edge_budget) {
            edges += g.in_edges(hi as u32).len();
            hi += 1;
        }
        ctx.encode_nodes(lo, hi, &mut state, &mut buf)
            .map_err(bad)?;
        s.push(&buf, (hi - lo) as u32, lo as u64)
            .map_err(io(path))?;
        lo = hi;
    }
    secs.push(s);
    let r = (|| -> std::io::Result<()> {
        // NAME, in string order.
        let mut keys: Vec<(u32, &Vec<u32>)> = g
            .by_name
            .iter()
            .map(|(k, v)| (ids[k.as_str()], v))
            .collect();
        keys.sort_unstable_by_key(|k| k.0);
        let mut s = SecOut::new(b"NAME");
        let mut buf = Vec::new();
        for c in keys.chunks(per_chunk) {
            chunk::encode_names(c, &mut buf);
            s.push(&buf, c.len() as u32, c[0].0 as u64)?;
        }
        secs.push(s);
        secs.push(SecOut::opaque(b"STAT", &extra.ingest_state)?);
        secs.push(SecOut::opaque(b"LPOS", &extra.log_pos)?);
        Ok(())
    })();
    r.map_err(io(path))?;
    write_file(path, &secs, true)
}

// ---------------------------------------------------------------------------
// Reading everything

/// A store read back: the graph and what was kept with it.
pub struct Opened {
    pub graph: Graph,
    pub extra: Extra,
    pub sizes: Sizes,
}

/// Reads only the header, the directories and the small sections (META,
/// LPOS) of a store: enough to tell whether it is up to date and to print
/// its counts.
pub fn peek(path: &Path) -> Result<(Meta, Vec<u8>, Counts, Sizes), StoreError> {
    let f = std::fs::File::open(path).map_err(io(path))?;
    let secs = sections(path, &f)?;
    let m = read_meta(path, &f, &secs)?;
    let lpos = inflate_all(path, &f, &secs[LPOS])?;
    Ok((m.meta, lpos, m.counts, sizes_of(f.size(), &secs)))
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
    let m = read_meta(path, bytes, &secs)?;
    let ctx = Ctx::new(path, &m)?;

    // STRS
    let mut strings: Vec<String> = Vec::with_capacity(m.strings.min(bytes.len() as u64) as usize);
    let mut prev: Option<String> = None;
    for i in 0..secs[STRS].chunks.len() {
        let raw = inflate(path, bytes, &secs[STRS], i)?;
        let c = chunk::decode_strs(&raw, secs[STRS].chunks[i].items, prev.as_deref())
            .map_err(|e| corrupt(path, secs[STRS].chunks[i].off, e))?;
        prev = c.last().cloned();
        strings.extend(c);
    }
    let ctx = ctx.with_calls(path, secs[META].offset, &strings)?;
    let s = |id: u32| strings[id as usize].clone();
    // Labels as shared strings, one allocation per distinct label.
    let mut labels: Vec<Option<Arc<str>>> = vec![None; strings.len()];

    // ENTS
    let n_ent = m.counts.entities as usize;
    let mut entities: Vec<Entity> = Vec::with_capacity(n_ent.min(bytes.len()));
    for i in 0..secs[ENTS].chunks.len() {
        let raw = inflate(path, bytes, &secs[ENTS], i)?;
        let loc = &secs[ENTS].chunks[i];
        let first = secs[ENTS].first[i];
        let c: EntChunk = ctx
            .decode_ents(&raw, first, loc.items)
            .map_err(|e| corrupt(path, loc.off, e))?;
        for mut le in c.ents {
            let versions = std::mem::take(&mut le.versions);
            entities.push(le.to_entity(ctx.uuid(&le), versions, s));
        }
    }

    // NODE (with the edges into each node)
    let n_node = m.counts.nodes as usize;
    let mut nodes: Vec<Node> = Vec::with_capacity(n_node.min(bytes.len()));
    let mut edges: Vec<(u32, Edge)> = Vec::new();
    // Nodes of each entity seen so far (checked against the stored lists).
    let mut seen: Vec<u32> = vec![0; n_ent];
    for i in 0..secs[NODE].chunks.len() {
        let raw = inflate(path, bytes, &secs[NODE], i)?;
        let loc = secs[NODE].chunks[i];
        let err = |e: String| corrupt(path, loc.off, e);
        let first = secs[NODE].first[i];
        let c: NodeChunk = ctx.decode_nodes(&raw, first, loc.items).map_err(err)?;
        for (j, ln) in c.nodes.iter().enumerate() {
            let n = first as u32 + j as u32;
            let ent = &entities[ln.entity as usize];
            let rank = seen[ln.entity as usize] as usize;
            if ent.versions.get(rank) != Some(&n) {
                return Err(err(format!(
                    "node {n} is not version {rank} of entity {}",
                    ln.entity
                )));
            }
            seen[ln.entity as usize] += 1;
            let label = match ln.label {
                chunk::Label::Id(id) => labels[id as usize]
                    .get_or_insert_with(|| Arc::from(strings[id as usize].as_str()))
                    .clone(),
                chunk::Label::SameAsFirst => {
                    if rank == 0 {
                        return Err(err(format!("node {n}: label refers to itself")));
                    }
                    nodes[ent.versions[0] as usize].label.clone()
                }
            };
            if let Some(sym) = ln.creating {
                if rank == 0 {
                    return Err(err(format!("node {n}: first version with a creating edge")));
                }
                let (kind, call) = ctx.sym(sym);
                edges.push((
                    ln.base as u32,
                    creating_edge(ent.versions[rank - 1], n, kind, call, ln.created_ns),
                ));
            }
            for le in &c.edges[ln.edges.clone()] {
                let (kind, call) = ctx.sym(le.sym);
                edges.push((
                    le.id,
                    Edge {
                        src: le.src,
                        dst: n,
                        kind,
                        ts_ns: le.ts_ns,
                        last_ns: le.last_ns,
                        bytes: le.bytes,
                        offset: le.offset,
                        call,
                        events: le.events,
                    },
                ));
            }
            nodes.push(Node {
                entity: ln.entity,
                version: rank as u32,
                created_ns: ln.created_ns,
                label,
            });
        }
    }
    if let Some(e) = (0..n_ent).find(|&e| seen[e] as usize != entities[e].versions.len()) {
        return Err(corrupt(
            path,
            secs[ENTS].offset,
            format!("entity {e}: versions differ from the nodes"),
        ));
    }
    if edges.len() as u64 != m.counts.edges {
        return Err(corrupt(
            path,
            secs[NODE].offset,
            format!("{} edges stored, {} counted", edges.len(), m.counts.edges),
        ));
    }
    // Edges in id (creation) order: every id once.
    let placeholder = creating_edge(0, 0, EdgeKind::Version, crate::CallName::new("version"), 0);
    let mut placed: Vec<Edge> = vec![placeholder; edges.len()];
    let mut filled = vec![false; edges.len()];
    for (id, e) in edges {
        // Ids were checked against the edge count, which equals the length.
        let i = id as usize;
        if filled[i] {
            return Err(corrupt(
                path,
                secs[NODE].offset,
                format!("edge {id} stored twice"),
            ));
        }
        filled[i] = true;
        placed[i] = e;
    }
    drop(filled);

    // NAME
    let mut by_name: crate::HashMap<String, Vec<u32>> = Default::default();
    for i in 0..secs[NAME].chunks.len() {
        let raw = inflate(path, bytes, &secs[NAME], i)?;
        let loc = &secs[NAME].chunks[i];
        let c = ctx
            .decode_names(&raw, loc.items, loc.key)
            .map_err(|e| corrupt(path, loc.off, e))?;
        for (k, v) in c {
            if by_name.insert(s(k), v).is_some() {
                return Err(corrupt(path, loc.off, format!("name {k} twice")));
            }
        }
    }

    let mut g = Graph {
        entities,
        nodes,
        edges: Vec::new(),
        by_name,
        events_applied: m.applied,
        ..Graph::default()
    };
    g.edges = placed;
    g.rebuild_adjacency();
    for (i, e) in g.entities.iter().enumerate() {
        if g.by_uuid.insert(e.uuid, i as u32).is_some() {
            return Err(corrupt(
                path,
                secs[ENTS].offset,
                format!("entity {i}: UUID {} twice", e.uuid),
            ));
        }
        if let Some(p) = &e.process {
            g.by_pid.entry(p.pid).or_default().push(i as u32);
        }
    }
    let ingest_state = inflate_all(path, bytes, &secs[STAT])?;
    let log_pos = inflate_all(path, bytes, &secs[LPOS])?;
    Ok(Opened {
        graph: g,
        extra: Extra {
            meta: m.meta.clone(),
            ingest_state,
            log_pos,
            uuid_roots: m.roots.clone(),
        },
        sizes: sizes_of(bytes.len() as u64, &secs),
    })
}

/// The edge that created version `n` of an entity from its previous version
/// `prev` (implied by the version, not stored).
fn creating_edge(prev: u32, n: u32, kind: EdgeKind, call: crate::CallName, ts: u64) -> Edge {
    Edge {
        src: prev,
        dst: n,
        kind,
        ts_ns: ts,
        last_ns: ts,
        bytes: 0,
        offset: None,
        call,
        events: 1,
    }
}

#[cfg(test)]
mod tests;

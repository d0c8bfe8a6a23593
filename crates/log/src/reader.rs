//! Reading a recording back, verifying everything on the way.

use crate::format::{
    self, block_chain, block_crc, chain_seed, get_varint_u32, BlockHeader, EndRecord, FileHeader,
    BLOCK_CHAINED_LEN, BLOCK_CRC_AT, BLOCK_HEADER_LEN, BLOCK_MAGIC, CODEC_ZSTD, END_LEN, END_MAGIC,
    FILE_FIXED_LEN, FILE_MAGIC, FORMAT_VERSION, MAX_EVENT_LEN, MAX_META_LEN, MAX_PAYLOAD_LEN,
    MAX_RAW_LEN,
};
use crate::{Damage, LogError, RecordingMeta};
use serde::Serialize;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use tomo_event::Event;

/// Under `cargo fuzz` (which sets `--cfg fuzzing`) checksums and the chain
/// are not enforced, so that the fuzzer reaches decompression and event
/// decoding instead of stopping at the first crc. Everything after a check
/// must be robust without it anyway.
const ENFORCE_CHECKSUMS: bool = !cfg!(fuzzing);

/// The header fields of one block, as returned by [`Reader::next_block`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlockSummary {
    /// Index of the segment file holding the block (0 without rotation).
    pub segment: u32,
    /// Byte offset of the block header in that file.
    pub offset: u64,
    /// Compressed payload size (the block occupies 92 + this many bytes).
    pub payload_len: u32,
    /// Uncompressed size of the length-prefixed events.
    pub raw_len: u32,
    pub events: u32,
    /// `seq` of the first and of the last event of the block.
    pub first_seq: u64,
    pub last_seq: u64,
    /// Smallest and largest `ts_ns` of the block's events.
    pub min_ts: u64,
    pub max_ts: u64,
    /// Chain value after this block: a reader that trusts it can start
    /// verifying at the next block.
    pub chain: [u8; 32],
}

/// Where the bytes come from.
enum Input {
    Mem {
        bytes: Vec<u8>,
        pos: usize,
    },
    File {
        file: BufReader<File>,
        len: u64,
        pos: u64,
    },
}

impl Input {
    /// Reads until `buf` is full or the input ends; returns the byte count.
    fn read_full(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::Mem { bytes, pos } => {
                let n = buf.len().min(bytes.len() - *pos);
                buf[..n].copy_from_slice(&bytes[*pos..*pos + n]);
                *pos += n;
                Ok(n)
            }
            Input::File { file, pos, .. } => {
                let mut got = 0;
                while got < buf.len() {
                    match file.read(&mut buf[got..]) {
                        Ok(0) => break,
                        Ok(n) => got += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                *pos += got as u64;
                Ok(got)
            }
        }
    }

    /// Bytes left after the current position, looked up again when fewer
    /// than `needed` were there at open time (the file may be growing).
    /// Checked before any allocation sized by a length field, so garbage
    /// lengths cannot exhaust memory.
    fn remaining(&mut self, needed: u64) -> io::Result<u64> {
        match self {
            Input::Mem { bytes, pos } => Ok((bytes.len() - *pos) as u64),
            Input::File { file, len, pos } => {
                let mut rem = len.saturating_sub(*pos);
                if rem < needed {
                    *len = file.get_ref().metadata()?.len();
                    rem = len.saturating_sub(*pos);
                }
                Ok(rem)
            }
        }
    }
}

/// The block whose events are being (or about to be) returned.
struct Current {
    hdr: BlockHeader,
    offset: u64,
    /// Whether `raw` holds this block's decompressed events yet.
    decompressed: bool,
    /// Events decoded so far, and their ts range.
    decoded: u32,
    min_ts: u64,
    max_ts: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    /// Clean end; `true` when the end-of-recording trailer was seen.
    Ended,
    Failed,
}

/// Iterates the events of a recording (one file, or a directory of rotated
/// segments), verifying checksums and the hash chain. At the first damage it
/// yields one `Err(LogError::Damaged)` and then `None`.
pub struct Reader {
    /// The recording as given to `open` ("<memory>" for `from_bytes`).
    root: PathBuf,
    /// (index, path) of the segment files, sorted; empty for a single file.
    segments: Vec<(u32, PathBuf)>,
    /// Position in `segments` of the current segment.
    seg_pos: usize,
    /// Path of the current file, for error messages.
    cur_path: PathBuf,
    input: Input,
    /// Offset in the current file of the next unread byte.
    pos: u64,
    meta: RecordingMeta,
    recording_id: [u8; 16],
    chain: [u8; 32],
    /// Compressed payload of the current block (reused).
    comp: Vec<u8>,
    /// Decompressed events of the current block (reused).
    raw: Vec<u8>,
    raw_pos: usize,
    cur: Option<Current>,
    dctx: zstd::bulk::Decompressor<'static>,
    /// Events in the blocks completely behind us.
    events_passed: u64,
    events_returned: u64,
    blocks: u64,
    /// Bytes verified so far, all segments together.
    valid_bytes: u64,
    state: State,
    finished: bool,
    damage: Option<Damage>,
    /// The end of the last block whose events were all returned.
    complete: Position,
    /// The metadata JSON and event schema version of the segment headers,
    /// verbatim, so that a replica can rebuild byte-identical headers.
    meta_json: Vec<u8>,
    schema_version: u32,
}

/// A block boundary of a recording: everything before it has been read.
/// An index over the log remembers it to resume with [`Reader::resume`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
pub struct Position {
    /// The recording's random identifier.
    pub recording_id: [u8; 16],
    /// Segment holding the boundary (0 without rotation).
    pub segment: u32,
    /// Byte offset of the boundary in that segment.
    pub offset: u64,
    /// Offset in the same segment of the block that ends at the boundary
    /// (`None` before the first block), checked on resume.
    pub last_block: Option<u64>,
    /// Chain value at the boundary.
    pub chain: [u8; 32],
    /// Events and blocks of the recording before the boundary.
    pub events: u64,
    pub blocks: u64,
}

impl Reader {
    /// Opens a recording: a single file, or a directory of segment files.
    /// Errors here mean there is nothing to read at all (I/O, not a
    /// recording, unsupported version); damage further in is reported by the
    /// iterator.
    pub fn open(path: &Path) -> Result<Reader, LogError> {
        let md = std::fs::metadata(path).map_err(|e| LogError::io(path, e))?;
        let mut segments = Vec::new();
        let first = if md.is_dir() {
            segments = format::segment_files(path)?;
            match segments.first() {
                Some((0, p)) => p.clone(),
                Some(_) => {
                    return Err(LogError::NotARecording {
                        path: path.to_path_buf(),
                        reason: format!(
                            "directory has no first segment {}",
                            format::segment_file_name(0)
                        ),
                    })
                }
                None => {
                    return Err(LogError::NotARecording {
                        path: path.to_path_buf(),
                        reason: "directory holds no segment files (NNNNNNNN.tseg)".into(),
                    })
                }
            }
        } else {
            path.to_path_buf()
        };
        let input = open_file(&first)?;
        Reader::start(path.to_path_buf(), segments, first, input)
    }

    /// Reads a recording held in memory (a single-file recording).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Reader, LogError> {
        let p = PathBuf::from("<memory>");
        Reader::start(p.clone(), Vec::new(), p, Input::Mem { bytes, pos: 0 })
    }

    fn start(
        root: PathBuf,
        segments: Vec<(u32, PathBuf)>,
        first: PathBuf,
        input: Input,
    ) -> Result<Reader, LogError> {
        let mut r = Reader {
            root,
            segments,
            seg_pos: 0,
            cur_path: first,
            input,
            pos: 0,
            meta: RecordingMeta::default(),
            recording_id: [0; 16],
            chain: [0; 32],
            comp: Vec::new(),
            raw: Vec::new(),
            raw_pos: 0,
            cur: None,
            dctx: zstd::bulk::Decompressor::new().map_err(|e| LogError::io(PathBuf::new(), e))?,
            events_passed: 0,
            events_returned: 0,
            blocks: 0,
            valid_bytes: 0,
            state: State::Running,
            finished: false,
            damage: None,
            complete: Position::default(),
            meta_json: Vec::new(),
            schema_version: 0,
        };
        match r.read_segment_header(0) {
            Ok((hdr, meta)) => {
                if hdr.segment_index != 0 {
                    return Err(LogError::NotARecording {
                        path: r.cur_path.clone(),
                        reason: format!(
                            "this is segment {} of a rotated recording; open its directory instead",
                            hdr.segment_index
                        ),
                    });
                }
                if ENFORCE_CHECKSUMS && hdr.chain_in != chain_seed(&hdr.recording_id) {
                    return Err(LogError::NotARecording {
                        path: r.cur_path.clone(),
                        reason: "header chain seed does not match the recording id".into(),
                    });
                }
                r.meta = meta;
                r.recording_id = hdr.recording_id;
                r.complete = Position {
                    recording_id: hdr.recording_id,
                    segment: 0,
                    offset: r.pos,
                    last_block: None,
                    chain: r.chain,
                    events: 0,
                    blocks: 0,
                };
                Ok(r)
            }
            Err(HeaderError::Io(e)) => Err(LogError::io(&r.cur_path, e)),
            Err(HeaderError::NotRecording(reason)) => Err(LogError::NotARecording {
                path: r.cur_path,
                reason,
            }),
            Err(HeaderError::Unsupported(reason)) => Err(LogError::Unsupported {
                path: r.cur_path,
                reason,
            }),
        }
    }

    /// Metadata of the recording (from the first segment).
    pub fn meta(&self) -> &RecordingMeta {
        &self.meta
    }

    /// The recording's random identifier.
    pub fn recording_id(&self) -> [u8; 16] {
        self.recording_id
    }

    /// Chain value after everything verified so far. After a complete read
    /// this is the chain head that [`crate::verify`] reports.
    pub fn chain_head(&self) -> [u8; 32] {
        self.chain
    }

    /// The damage that stopped the reader, if it has stopped on damage.
    pub fn damage(&self) -> Option<&Damage> {
        self.damage.as_ref()
    }

    /// Whether the end-of-recording trailer was reached: the writer called
    /// `finish`. `false` before the end, and after a crash of the writer.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Events returned by the iterator so far.
    pub fn events_read(&self) -> u64 {
        self.events_returned
    }

    /// Blocks verified so far.
    pub fn blocks_read(&self) -> u64 {
        self.blocks
    }

    /// Segment files opened so far.
    pub fn segments_read(&self) -> u32 {
        self.seg_pos as u32 + 1
    }

    /// Bytes verified so far (headers, blocks, trailer), all segments.
    pub fn valid_bytes(&self) -> u64 {
        self.valid_bytes
    }

    /// The recording path this reader was opened on.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Reads and verifies (crc and chain) the next block without decompressing
    /// it, skipping whatever events of the current block were not returned.
    /// Calling the event iterator afterwards returns this block's events; the
    /// compressed bytes are available from [`Reader::block_payload`].
    pub fn next_block(&mut self) -> Option<Result<BlockSummary, LogError>> {
        if self.state != State::Running {
            return None;
        }
        self.leave_block();
        match self.advance() {
            Ok(true) => {
                let c = self.cur.as_ref().expect("advance set it");
                Some(Ok(BlockSummary {
                    segment: self.segments.get(self.seg_pos).map_or(0, |s| s.0),
                    offset: c.offset,
                    payload_len: c.hdr.payload_len,
                    raw_len: c.hdr.raw_len,
                    events: c.hdr.events,
                    first_seq: c.hdr.first_seq,
                    last_seq: c.hdr.last_seq,
                    min_ts: c.hdr.min_ts,
                    max_ts: c.hdr.max_ts,
                    chain: c.hdr.chain,
                }))
            }
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// Iterator over the remaining block summaries (see [`Reader::next_block`]).
    pub fn blocks(&mut self) -> impl Iterator<Item = Result<BlockSummary, LogError>> + '_ {
        std::iter::from_fn(move || self.next_block())
    }

    /// Compressed payload of the current block (the one last returned by
    /// [`Reader::next_block`], or whose events are being returned).
    pub fn block_payload(&self) -> Option<&[u8]> {
        self.cur.as_ref().map(|_| &self.comp[..])
    }

    /// The metadata of the recording's segment headers as stored (JSON).
    pub fn meta_json(&self) -> &[u8] {
        &self.meta_json
    }

    /// The event schema version of the recording's segment headers.
    pub fn schema_version(&self) -> u32 {
        self.schema_version
    }

    /// The block boundary right after the current block (the one last
    /// returned by [`Reader::next_block`]), whether or not its events were
    /// read: where a reader that ships whole blocks resumes.
    pub fn block_end_position(&self) -> Option<Position> {
        self.cur.as_ref().map(|c| Position {
            recording_id: self.recording_id,
            segment: self.segments.get(self.seg_pos).map_or(0, |s| s.0),
            offset: c.offset + (BLOCK_HEADER_LEN as u64) + c.hdr.payload_len as u64,
            last_block: Some(c.offset),
            chain: c.hdr.chain,
            events: self.events_passed + c.hdr.events as u64,
            blocks: self.blocks,
        })
    }

    /// The last block boundary up to which every event has been returned.
    pub fn position(&self) -> Position {
        self.complete
    }

    /// Opens `path` to continue reading after `pos` (from
    /// [`Reader::position`] of an earlier reader of the same recording),
    /// without reading what lies before it. Fails with
    /// [`LogError::Invalid`] when the recording no longer matches `pos`
    /// (another recording, truncated or rewritten): the caller should then
    /// read from the start.
    pub fn resume(path: &Path, pos: &Position) -> Result<Reader, LogError> {
        let mut r = Reader::open(path)?;
        let invalid = |p: &Path, why: &str| LogError::Invalid {
            path: p.to_path_buf(),
            reason: format!("cannot resume reading: {why}"),
        };
        if r.recording_id != pos.recording_id {
            return Err(invalid(path, "it is another recording"));
        }
        if pos.segment != 0 {
            let Some(i) = r.segments.iter().position(|(idx, _)| *idx == pos.segment) else {
                return Err(invalid(
                    path,
                    &format!("segment {} is missing", pos.segment),
                ));
            };
            let seg = r.segments[i].1.clone();
            r.input = open_file(&seg)?;
            r.seg_pos = i;
            r.cur_path = seg;
        }
        let cur = r.cur_path.clone();
        let len = match &r.input {
            Input::Mem { bytes, .. } => bytes.len() as u64,
            Input::File { file, .. } => file
                .get_ref()
                .metadata()
                .map_err(|e| LogError::io(&cur, e))?
                .len(),
        };
        if len < pos.offset {
            return Err(invalid(&cur, "the file is shorter than the position"));
        }
        // The block ending at the position must still be there, with the
        // same chain value.
        if let Some(lb) = pos.last_block {
            let mut hb = [0u8; BLOCK_HEADER_LEN];
            r.seek(lb).map_err(|e| LogError::io(&cur, e))?;
            let n = r
                .input
                .read_full(&mut hb)
                .map_err(|e| LogError::io(&cur, e))?;
            let ok = n == BLOCK_HEADER_LEN && hb[..4] == BLOCK_MAGIC && {
                let h = BlockHeader::parse(&hb);
                h.chain == pos.chain
                    && lb + (BLOCK_HEADER_LEN as u64) + h.payload_len as u64 == pos.offset
            };
            if !ok {
                return Err(invalid(
                    &cur,
                    &format!("the block at byte offset {lb} is not the one read before"),
                ));
            }
        }
        r.seek(pos.offset).map_err(|e| LogError::io(&cur, e))?;
        r.chain = pos.chain;
        r.events_passed = pos.events;
        r.events_returned = pos.events;
        r.blocks = pos.blocks;
        r.valid_bytes = pos.offset;
        r.complete = *pos;
        Ok(r)
    }

    fn seek(&mut self, offset: u64) -> io::Result<()> {
        match &mut self.input {
            Input::Mem { bytes, pos } => {
                *pos = (offset as usize).min(bytes.len());
            }
            Input::File { file, pos, .. } => {
                use std::io::Seek;
                file.seek(io::SeekFrom::Start(offset))?;
                *pos = offset;
            }
        }
        self.pos = offset;
        Ok(())
    }

    /// After an event: if it was the last of its block, the block is complete.
    fn note_complete(&mut self) {
        if let Some(c) = &self.cur {
            if c.decoded == c.hdr.events {
                self.complete = Position {
                    recording_id: self.recording_id,
                    segment: self.segments.get(self.seg_pos).map_or(0, |s| s.0),
                    offset: c.offset + (BLOCK_HEADER_LEN as u64) + c.hdr.payload_len as u64,
                    last_block: Some(c.offset),
                    chain: c.hdr.chain,
                    events: self.events_passed + c.hdr.events as u64,
                    blocks: self.blocks,
                };
            }
        }
    }

    fn leave_block(&mut self) {
        if let Some(c) = self.cur.take() {
            self.events_passed += c.hdr.events as u64;
        }
    }

    /// Records damage at `offset` of the current file and returns the error.
    fn fail(&mut self, offset: u64, reason: String) -> LogError {
        let events_before = self.events_passed + self.cur.as_ref().map_or(0, |c| c.decoded as u64);
        let d = Damage {
            path: self.cur_path.clone(),
            offset,
            reason,
            events_before,
        };
        self.state = State::Failed;
        self.cur = None;
        self.damage = Some(d.clone());
        d.into()
    }

    fn fail_io(&mut self, e: io::Error) -> LogError {
        self.state = State::Failed;
        self.cur = None;
        LogError::io(&self.cur_path, e)
    }

    /// Reads the segment header at the start of the current input; on
    /// success, continues the chain with it.
    fn read_segment_header(
        &mut self,
        expect_index: u32,
    ) -> Result<(FileHeader, RecordingMeta), HeaderError> {
        let mut fixed = [0u8; FILE_FIXED_LEN];
        let n = self.input.read_full(&mut fixed).map_err(HeaderError::Io)?;
        if n == 0 {
            return Err(HeaderError::NotRecording(
                "the file is empty (the writer may have died before writing its header)".into(),
            ));
        }
        if n < FILE_MAGIC.len() || fixed[..FILE_MAGIC.len()] != FILE_MAGIC {
            return Err(HeaderError::NotRecording(format!(
                "bad magic at offset 0: expected {:02x?}, found {:02x?}",
                FILE_MAGIC,
                &fixed[..n.min(FILE_MAGIC.len())]
            )));
        }
        if n < FILE_FIXED_LEN {
            return Err(HeaderError::NotRecording(format!(
                "truncated header: {n} of {FILE_FIXED_LEN} fixed bytes"
            )));
        }
        let (hdr, meta_len) = FileHeader::parse_fixed(&fixed);
        // The version field sits right after the magic in every version, so
        // a newer file gets this message rather than a confusing crc error.
        if hdr.format_version != FORMAT_VERSION {
            return Err(HeaderError::Unsupported(format!(
                "format version {} (this build reads version {FORMAT_VERSION})",
                hdr.format_version
            )));
        }
        let meta_len = meta_len as usize;
        if meta_len > MAX_META_LEN {
            return Err(HeaderError::NotRecording(format!(
                "header claims {meta_len} bytes of metadata (at most {MAX_META_LEN}): corrupted header"
            )));
        }
        let rem = self
            .input
            .remaining(meta_len as u64 + 4)
            .map_err(HeaderError::Io)?;
        if rem < meta_len as u64 + 4 {
            return Err(HeaderError::NotRecording(format!(
                "truncated header: {} metadata+checksum bytes expected, {rem} present",
                meta_len + 4
            )));
        }
        let mut whole = Vec::with_capacity(FILE_FIXED_LEN + meta_len + 4);
        whole.extend_from_slice(&fixed);
        whole.resize(FILE_FIXED_LEN + meta_len + 4, 0);
        let got = self
            .input
            .read_full(&mut whole[FILE_FIXED_LEN..])
            .map_err(HeaderError::Io)?;
        if got < meta_len + 4 {
            return Err(HeaderError::NotRecording("truncated header".into()));
        }
        let crc_at = FILE_FIXED_LEN + meta_len;
        let stored = format::u32_at(&whole, crc_at);
        let computed = crc32c::crc32c(&whole[..crc_at]);
        if ENFORCE_CHECKSUMS && stored != computed {
            return Err(HeaderError::NotRecording(format!(
                "header checksum mismatch (stored {stored:08x}, computed {computed:08x}): corrupted header"
            )));
        }
        if hdr.flags != 0 {
            return Err(HeaderError::Unsupported(format!(
                "unknown header flags {:#06x}",
                hdr.flags
            )));
        }
        if !(tomo_event::MIN_SCHEMA_VERSION..=tomo_event::SCHEMA_VERSION)
            .contains(&hdr.schema_version)
        {
            return Err(HeaderError::Unsupported(format!(
                "event schema version {} (this build reads versions {} to {})",
                hdr.schema_version,
                tomo_event::MIN_SCHEMA_VERSION,
                tomo_event::SCHEMA_VERSION
            )));
        }
        let meta: RecordingMeta = serde_json::from_slice(&whole[FILE_FIXED_LEN..crc_at])
            .map_err(|e| HeaderError::NotRecording(format!("metadata is not valid: {e}")))?;
        if hdr.segment_index != expect_index && expect_index != 0 {
            return Err(HeaderError::NotRecording(format!(
                "segment header says index {}, expected {expect_index}",
                hdr.segment_index
            )));
        }
        self.chain = *blake3::hash(&whole).as_bytes();
        self.meta_json = whole[FILE_FIXED_LEN..crc_at].to_vec();
        self.schema_version = hdr.schema_version;
        self.pos = whole.len() as u64;
        self.valid_bytes += whole.len() as u64;
        Ok((hdr, meta))
    }

    /// Moves to the next block (possibly in the next segment), verifying it.
    /// `Ok(false)` at the clean end of the recording.
    fn advance(&mut self) -> Result<bool, LogError> {
        loop {
            let offset = self.pos;
            let mut hb = [0u8; BLOCK_HEADER_LEN];
            let n = match self.input.read_full(&mut hb[..4]) {
                Ok(n) => n,
                Err(e) => return Err(self.fail_io(e)),
            };
            self.pos += n as u64;
            if n == 0 {
                // Clean end of this file, at a block boundary.
                if self.seg_pos + 1 < self.segments.len() {
                    self.next_segment()?;
                    continue;
                }
                self.state = State::Ended;
                return Ok(false);
            }
            if n < 4 {
                return Err(self.fail(
                    offset,
                    format!("truncated block: only {n} bytes after the last block"),
                ));
            }
            let magic: [u8; 4] = hb[..4].try_into().expect("4 bytes");
            if magic == END_MAGIC {
                return self.read_trailer(offset).map(|_| false);
            }
            if magic != BLOCK_MAGIC {
                return Err(self.fail(
                    offset,
                    format!("bad block magic {magic:02x?} (expected \"TBLK\")"),
                ));
            }
            let n = match self.input.read_full(&mut hb[4..]) {
                Ok(n) => n,
                Err(e) => return Err(self.fail_io(e)),
            };
            self.pos += n as u64;
            if n < BLOCK_HEADER_LEN - 4 {
                return Err(self.fail(
                    offset,
                    format!(
                        "truncated block header: {} of {BLOCK_HEADER_LEN} bytes",
                        n + 4
                    ),
                ));
            }
            let hdr = BlockHeader::parse(&hb);
            let plen = hdr.payload_len as usize;
            if plen > MAX_PAYLOAD_LEN || hdr.raw_len as usize > MAX_RAW_LEN {
                return Err(self.fail(
                    offset,
                    format!(
                        "absurd block lengths (payload {plen}, raw {}): corrupted header",
                        hdr.raw_len
                    ),
                ));
            }
            let rem = match self.input.remaining(plen as u64) {
                Ok(r) => r,
                Err(e) => return Err(self.fail_io(e)),
            };
            if (plen as u64) > rem {
                return Err(self.fail(
                    offset,
                    format!(
                        "truncated block: header announces {plen} payload bytes, {rem} present"
                    ),
                ));
            }
            self.comp.clear();
            self.comp.resize(plen, 0);
            let got = match self.input.read_full(&mut self.comp) {
                Ok(n) => n,
                Err(e) => return Err(self.fail_io(e)),
            };
            self.pos += got as u64;
            if got < plen {
                return Err(self.fail(
                    offset,
                    format!("truncated block: {got} of {plen} payload bytes"),
                ));
            }
            let crc = block_crc(&hb[..BLOCK_CRC_AT], &self.comp);
            if ENFORCE_CHECKSUMS && crc != hdr.crc {
                return Err(self.fail(
                    offset,
                    format!(
                        "block checksum mismatch (stored {:08x}, computed {crc:08x})",
                        hdr.crc
                    ),
                ));
            }
            let chain = block_chain(&self.chain, &hb[..BLOCK_CHAINED_LEN], &self.comp);
            if ENFORCE_CHECKSUMS && chain != hdr.chain {
                return Err(self.fail(
                    offset,
                    "hash chain mismatch: the block was modified (with a recomputed checksum), \
                     reordered, or comes from another recording"
                        .into(),
                ));
            }
            // Structural checks: the crc makes these failures unlikely, but
            // the reader must not rely on it (and fuzzing disables it).
            let reason = if hdr.codec != CODEC_ZSTD {
                Some(format!("unknown codec {}", hdr.codec))
            } else if hb[5..8] != [0; 3] || hb[20..24] != [0; 4] {
                Some("non-zero reserved header bytes".to_string())
            } else if hdr.events == 0 {
                Some("block with no events".to_string())
            } else if (hdr.events as u64) * 2 > hdr.raw_len as u64 {
                Some(format!(
                    "{} events cannot fit in {} bytes",
                    hdr.events, hdr.raw_len
                ))
            } else if hdr.min_ts > hdr.max_ts {
                Some("min_ts > max_ts".to_string())
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(self.fail(offset, reason));
            }
            self.chain = chain;
            self.blocks += 1;
            self.valid_bytes += (BLOCK_HEADER_LEN + plen) as u64;
            self.cur = Some(Current {
                hdr,
                offset,
                decompressed: false,
                decoded: 0,
                min_ts: u64::MAX,
                max_ts: 0,
            });
            return Ok(true);
        }
    }

    /// Reads and checks the end-of-recording trailer, which must end the
    /// last segment.
    fn read_trailer(&mut self, offset: u64) -> Result<(), LogError> {
        let mut b = [0u8; END_LEN];
        b[..4].copy_from_slice(&END_MAGIC);
        let n = match self.input.read_full(&mut b[4..]) {
            Ok(n) => n,
            Err(e) => return Err(self.fail_io(e)),
        };
        self.pos += n as u64;
        if n < END_LEN - 4 {
            return Err(self.fail(
                offset,
                format!("truncated trailer: {} of {END_LEN} bytes", n + 4),
            ));
        }
        let Some(end) = EndRecord::parse(&b, ENFORCE_CHECKSUMS) else {
            return Err(self.fail(offset, "trailer checksum mismatch".into()));
        };
        let total_events = self.events_passed;
        if ENFORCE_CHECKSUMS
            && (end.events != total_events
                || end.blocks != self.blocks
                || end.chain_head != self.chain)
        {
            return Err(self.fail(
                offset,
                format!(
                    "trailer disagrees with the recording (it counts {} events in {} blocks, found {total_events} in {})",
                    end.events, end.blocks, self.blocks
                ),
            ));
        }
        let mut extra = [0u8; 1];
        match self.input.read_full(&mut extra) {
            Ok(0) => {}
            Ok(_) => {
                return Err(self.fail(
                    offset + END_LEN as u64,
                    "data after the end-of-recording trailer".into(),
                ))
            }
            Err(e) => return Err(self.fail_io(e)),
        }
        if self.seg_pos + 1 < self.segments.len() {
            let (_, next) = self.segments[self.seg_pos + 1].clone();
            self.cur_path = next;
            return Err(self.fail(0, "segment after the end of the recording".into()));
        }
        self.valid_bytes += END_LEN as u64;
        self.finished = true;
        self.state = State::Ended;
        Ok(())
    }

    /// Opens the next segment file and checks that it continues the chain.
    fn next_segment(&mut self) -> Result<(), LogError> {
        self.seg_pos += 1;
        let expect = self.seg_pos as u32;
        let (idx, path) = self.segments[self.seg_pos].clone();
        if idx != expect {
            self.cur_path = path.with_file_name(format::segment_file_name(expect));
            return Err(self.fail(0, "segment file missing".into()));
        }
        self.cur_path = path.clone();
        self.input = match open_file(&path) {
            Ok(i) => i,
            Err(e) => {
                self.state = State::Failed;
                return Err(e);
            }
        };
        self.pos = 0;
        let chain_before = self.chain;
        match self.read_segment_header(expect) {
            Ok((hdr, _meta)) => {
                let reason = if hdr.recording_id != self.recording_id {
                    Some("segment belongs to another recording (recording id differs)")
                } else if ENFORCE_CHECKSUMS && hdr.chain_in != chain_before {
                    Some("segment does not continue the hash chain of the previous one (segment lost, truncated or replaced)")
                } else {
                    None
                };
                match reason {
                    Some(r) => Err(self.fail(0, r.into())),
                    None => Ok(()),
                }
            }
            Err(HeaderError::Io(e)) => Err(self.fail_io(e)),
            Err(HeaderError::NotRecording(r) | HeaderError::Unsupported(r)) => {
                Err(self.fail(0, format!("bad segment header: {r}")))
            }
        }
    }

    /// Decompresses the current block into `raw`.
    fn decompress(&mut self) -> Result<(), LogError> {
        let c = self.cur.as_ref().expect("current block");
        let (offset, raw_len) = (c.offset, c.hdr.raw_len as usize);
        self.raw.clear();
        // The capacity bounds the output, so a payload that inflates beyond
        // what the header announced fails instead of growing the buffer.
        self.raw.reserve(raw_len);
        let res = self
            .dctx
            .decompress_to_buffer(&self.comp[..], &mut self.raw);
        match res {
            Ok(n) if n == raw_len && self.raw.len() == raw_len => {}
            Ok(n) => {
                return Err(self.fail(
                    offset,
                    format!("payload decompresses to {n} bytes, header says {raw_len}"),
                ))
            }
            Err(e) => return Err(self.fail(offset, format!("payload does not decompress: {e}"))),
        }
        self.raw_pos = 0;
        self.cur.as_mut().expect("current block").decompressed = true;
        Ok(())
    }

    /// Decodes the next event of the current (decompressed) block.
    fn decode_next(&mut self) -> Result<Event, LogError> {
        let c = self.cur.as_ref().expect("current block");
        let (offset, k, hdr) = (c.offset, c.decoded, c.hdr);
        let rest = &self.raw[self.raw_pos..];
        let (len, n) = match get_varint_u32(rest) {
            Some(v) => v,
            None => {
                return Err(self.fail(offset, format!("event {k} of the block: bad length prefix")))
            }
        };
        let len = len as usize;
        if len == 0 || len > MAX_EVENT_LEN || len > rest.len() - n {
            return Err(self.fail(offset, format!("event {k} of the block: bad length {len}")));
        }
        let body = &rest[n..n + len];
        let ev = match tomo_event::decode(body) {
            Ok((ev, [])) => ev,
            Ok((_, tail)) => {
                let t = tail.len();
                return Err(self.fail(
                    offset,
                    format!("event {k} of the block: {t} bytes left over after decoding"),
                ));
            }
            Err(e) => return Err(self.fail(offset, format!("event {k} of the block: {e}"))),
        };
        self.raw_pos += n + len;
        let last = k + 1 == hdr.events;
        let c = self.cur.as_mut().expect("current block");
        c.decoded += 1;
        c.min_ts = c.min_ts.min(ev.ts_ns);
        c.max_ts = c.max_ts.max(ev.ts_ns);
        let (min_ts, max_ts) = (c.min_ts, c.max_ts);
        // The header's summary fields are what cut and indexes rely on to
        // skip blocks, so they must match the events exactly.
        let inconsistent = if k == 0 && ev.seq != hdr.first_seq {
            Some("first event's seq differs from the block header")
        } else if ev.ts_ns < hdr.min_ts || ev.ts_ns > hdr.max_ts {
            Some("event timestamp outside the block header's range")
        } else if last && ev.seq != hdr.last_seq {
            Some("last event's seq differs from the block header")
        } else if last && (min_ts != hdr.min_ts || max_ts != hdr.max_ts) {
            Some("block header's timestamp range differs from its events")
        } else if last && self.raw_pos != self.raw.len() {
            Some("bytes left over after the block's last event")
        } else if !last && self.raw_pos == self.raw.len() {
            Some("block has fewer events than its header says")
        } else {
            None
        };
        if let Some(r) = inconsistent {
            // Do not count the event we are rejecting.
            self.cur.as_mut().expect("current block").decoded -= 1;
            return Err(self.fail(offset, format!("event {k} of the block: {r}")));
        }
        Ok(ev)
    }
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("path", &self.root)
            .field("file", &self.cur_path)
            .field("offset", &self.pos)
            .field("blocks", &self.blocks)
            .field("events_read", &self.events_returned)
            .field("finished", &self.finished)
            .field("damage", &self.damage)
            .finish_non_exhaustive()
    }
}

impl Iterator for Reader {
    type Item = Result<Event, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.state == State::Failed {
                return None;
            }
            if let Some(c) = &self.cur {
                if c.decoded < c.hdr.events {
                    if !c.decompressed {
                        if let Err(e) = self.decompress() {
                            return Some(Err(e));
                        }
                    }
                    let r = self.decode_next();
                    if r.is_ok() {
                        self.events_returned += 1;
                        self.note_complete();
                    }
                    return Some(r);
                }
                self.leave_block();
            }
            if self.state != State::Running {
                return None;
            }
            match self.advance() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

enum HeaderError {
    Io(io::Error),
    NotRecording(String),
    Unsupported(String),
}

fn open_file(path: &Path) -> Result<Input, LogError> {
    let file = File::open(path).map_err(|e| LogError::io(path, e))?;
    let len = file.metadata().map_err(|e| LogError::io(path, e))?.len();
    // Most blocks are a few tens of KiB compressed; a larger buffer saves
    // syscalls for the 92-byte headers without costing much memory.
    Ok(Input::File {
        file: BufReader::with_capacity(128 << 10, file),
        len,
        pos: 0,
    })
}

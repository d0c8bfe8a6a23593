//! Appending events to a recording.

use crate::format::{
    self, chain_seed, put_varint_u32, BlockHeader, EndRecord, FileHeader, BLOCK_HEADER_LEN,
    CODEC_ZSTD, FORMAT_VERSION, MAX_EVENT_LEN, MAX_META_LEN, MAX_RAW_LEN,
};
use crate::reader::BlockSummary;
use crate::{LogError, RecordingMeta, WriterOptions};
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tomo_event::Event;

/// What a [`Writer`] has written so far (or in total, from [`Writer::finish`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WriteSummary {
    /// The recording (file, or directory of segments).
    pub path: PathBuf,
    /// Random identifier of the recording, hex.
    pub recording_id: String,
    /// Segment files (1 without rotation).
    pub segments: u32,
    /// Sealed blocks.
    pub blocks: u64,
    /// Events in sealed blocks.
    pub events: u64,
    /// Events appended but not yet sealed (0 after `finish`).
    pub pending_events: u64,
    /// Bytes written to disk, headers included.
    pub bytes: u64,
    /// Uncompressed size of the sealed event payloads.
    pub raw_bytes: u64,
    /// Smallest and largest event timestamp in sealed blocks.
    pub min_ts: Option<u64>,
    pub max_ts: Option<u64>,
    /// Hash-chain value after the last sealed block, hex. Keep it elsewhere to
    /// detect later truncation of whole trailing blocks.
    pub chain_head: String,
}

/// The block being filled.
struct OpenBlock {
    events: u32,
    first_seq: u64,
    last_seq: u64,
    min_ts: u64,
    max_ts: u64,
    started: Instant,
}

/// Appends events to a new recording. See the crate docs for durability.
pub struct Writer {
    /// The path given to `create` (file, or directory when rotating).
    path: PathBuf,
    rotate_bytes: Option<u64>,
    opts: WriterOptions,
    seg_path: PathBuf,
    file: File,
    seg_index: u32,
    seg_bytes: u64,
    rotate_pending: bool,
    meta_json: Vec<u8>,
    recording_id: [u8; 16],
    chain: [u8; 32],
    /// Length-prefixed encoded events of the open block.
    raw: Vec<u8>,
    /// One encoded event, before it gets its length prefix.
    scratch: Vec<u8>,
    /// Compressed payload of the block being sealed.
    comp: Vec<u8>,
    /// Header + payload, so the block goes out in one `write_all`.
    out: Vec<u8>,
    cctx: zstd::bulk::Compressor<'static>,
    open: Option<OpenBlock>,
    last_sync: Instant,
    unsynced: bool,
    blocks: u64,
    events: u64,
    bytes: u64,
    raw_bytes: u64,
    min_ts: Option<u64>,
    max_ts: Option<u64>,
    failed: bool,
    done: bool,
}

impl Writer {
    /// Creates a new recording at `path`: a file (replaced if it exists), or,
    /// with `opts.rotate_bytes`, a directory of segments (created if needed;
    /// refused if it already holds segments, so no recording is overwritten).
    pub fn create(
        path: &Path,
        meta: RecordingMeta,
        opts: WriterOptions,
    ) -> Result<Writer, LogError> {
        let invalid = |reason: String| LogError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        if opts.block_bytes == 0 || opts.block_bytes > MAX_RAW_LEN / 2 {
            return Err(invalid(format!(
                "block_bytes must be between 1 and {}",
                MAX_RAW_LEN / 2
            )));
        }
        let levels = zstd::compression_level_range();
        if !levels.contains(&opts.zstd_level) {
            return Err(invalid(format!(
                "zstd level {} out of range {}..={}",
                opts.zstd_level,
                levels.start(),
                levels.end()
            )));
        }
        let rotate_bytes = opts.rotate_bytes.map(|n| n.max(1));
        let meta_json = serde_json::to_vec(&meta)
            .map_err(|e| invalid(format!("cannot serialize metadata: {e}")))?;
        if meta_json.len() > MAX_META_LEN {
            return Err(invalid(format!(
                "metadata is {} bytes (at most {MAX_META_LEN})",
                meta_json.len()
            )));
        }

        let (seg_path, file) = if rotate_bytes.is_some() {
            std::fs::create_dir_all(path).map_err(|e| LogError::io(path, e))?;
            let existing = std::fs::read_dir(path)
                .map_err(|e| LogError::io(path, e))?
                .filter_map(|e| e.ok())
                .any(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(format::parse_segment_file_name)
                        .is_some()
                });
            if existing {
                return Err(invalid(
                    "directory already holds a recording (segment files)".into(),
                ));
            }
            let seg_path = path.join(format::segment_file_name(0));
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&seg_path)
                .map_err(|e| LogError::io(&seg_path, e))?;
            (seg_path, file)
        } else {
            if path.is_dir() {
                return Err(invalid(
                    "is a directory (use rotate_bytes for a segmented recording)".into(),
                ));
            }
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)
                .map_err(|e| LogError::io(path, e))?;
            (path.to_path_buf(), file)
        };

        let cctx =
            zstd::bulk::Compressor::new(opts.zstd_level).map_err(|e| LogError::io(path, e))?;
        let recording_id = random_id();
        let mut w = Writer {
            path: path.to_path_buf(),
            rotate_bytes,
            seg_path,
            file,
            seg_index: 0,
            seg_bytes: 0,
            rotate_pending: false,
            meta_json,
            recording_id,
            chain: chain_seed(&recording_id),
            raw: Vec::with_capacity(opts.block_bytes + 1024),
            scratch: Vec::with_capacity(512),
            comp: Vec::new(),
            out: Vec::new(),
            cctx,
            open: None,
            last_sync: Instant::now(),
            unsynced: false,
            blocks: 0,
            events: 0,
            bytes: 0,
            raw_bytes: 0,
            min_ts: None,
            max_ts: None,
            failed: false,
            done: false,
            opts,
        };
        w.write_segment_header()?;
        // Make the new file's directory entry durable, so that a crash right
        // after creation cannot leave blocks in an unreachable inode.
        sync_dir(&w.seg_path).map_err(|e| LogError::io(&w.seg_path, e))?;
        Ok(w)
    }

    /// Appends one event. Seals (compresses and writes) the open block when it
    /// reaches `block_bytes` or its first event is older than `flush_interval`.
    pub fn append(&mut self, ev: &Event) -> Result<(), LogError> {
        self.check_usable()?;
        self.scratch.clear();
        tomo_event::encode_into(ev, &mut self.scratch)?;
        let len = self.scratch.len();
        if len > MAX_EVENT_LEN {
            return Err(LogError::EventTooLarge {
                len,
                max: MAX_EVENT_LEN,
            });
        }
        // Unreachable with block_bytes <= MAX_RAW_LEN / 2, but the format's
        // cap must hold whatever the options say.
        if self.raw.len() + len + 5 > MAX_RAW_LEN {
            self.seal()?;
        }
        put_varint_u32(&mut self.raw, len as u32);
        self.raw.extend_from_slice(&self.scratch);
        match &mut self.open {
            None => {
                self.open = Some(OpenBlock {
                    events: 1,
                    first_seq: ev.seq,
                    last_seq: ev.seq,
                    min_ts: ev.ts_ns,
                    max_ts: ev.ts_ns,
                    started: Instant::now(),
                })
            }
            Some(b) => {
                b.events += 1;
                b.last_seq = ev.seq;
                b.min_ts = b.min_ts.min(ev.ts_ns);
                b.max_ts = b.max_ts.max(ev.ts_ns);
            }
        }
        let open = self.open.as_ref().expect("just set");
        if self.raw.len() >= self.opts.block_bytes
            || open.events == u32::MAX
            || open.started.elapsed() >= self.opts.flush_interval
        {
            self.seal()?;
        }
        Ok(())
    }

    /// Seals the open block, if any, and hands it to the OS (it is synced to
    /// disk per `sync_interval`).
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.check_usable()?;
        self.seal()
    }

    /// Seals the open block, writes the end-of-recording trailer and syncs.
    pub fn finish(mut self) -> Result<WriteSummary, LogError> {
        self.check_usable()?;
        self.seal()?;
        let end = EndRecord {
            events: self.events,
            blocks: self.blocks,
            chain_head: self.chain,
        }
        .encode();
        self.write_out_bytes(&end)?;
        self.sync()?;
        self.done = true;
        Ok(self.summary())
    }

    /// Blocks sealed and written so far (cheap; see [`Writer::summary`]).
    pub fn blocks_written(&self) -> u64 {
        self.blocks
    }

    /// Events in the blocks sealed so far: what a crash would not lose.
    pub fn events_written(&self) -> u64 {
        self.events
    }

    /// What has been sealed so far.
    pub fn summary(&self) -> WriteSummary {
        WriteSummary {
            path: self.path.clone(),
            recording_id: format::hex(&self.recording_id),
            segments: self.seg_index + 1,
            blocks: self.blocks,
            events: self.events,
            pending_events: self.open.as_ref().map_or(0, |b| b.events as u64),
            bytes: self.bytes,
            raw_bytes: self.raw_bytes,
            min_ts: self.min_ts,
            max_ts: self.max_ts,
            chain_head: format::hex(&self.chain),
        }
    }

    /// Writes an already compressed, already verified block (from another
    /// recording) as the next block, after sealing the open one. Used by
    /// [`crate::cut`] to copy blocks that lie wholly inside the window
    /// without recompressing them; the header is rebuilt for this chain.
    pub(crate) fn append_block_verbatim(
        &mut self,
        b: &BlockSummary,
        payload: &[u8],
    ) -> Result<(), LogError> {
        self.check_usable()?;
        self.seal()?;
        let hdr = BlockHeader {
            codec: CODEC_ZSTD,
            payload_len: payload.len() as u32,
            raw_len: b.raw_len,
            events: b.events,
            first_seq: b.first_seq,
            last_seq: b.last_seq,
            min_ts: b.min_ts,
            max_ts: b.max_ts,
            chain: [0; 32],
            crc: 0,
        };
        self.out.clear();
        self.out.resize(BLOCK_HEADER_LEN, 0);
        self.out.extend_from_slice(payload);
        self.emit_block(hdr)
    }

    fn check_usable(&self) -> Result<(), LogError> {
        if self.failed {
            return Err(LogError::WriterFailed {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// Compresses and writes the open block.
    fn seal(&mut self) -> Result<(), LogError> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        self.comp.clear();
        self.comp
            .reserve(zstd::zstd_safe::compress_bound(self.raw.len()));
        let n = self.cctx.compress_to_buffer(&self.raw, &mut self.comp);
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                self.failed = true;
                return Err(LogError::io(&self.seg_path, e));
            }
        };
        let hdr = BlockHeader {
            codec: CODEC_ZSTD,
            payload_len: n as u32,
            raw_len: self.raw.len() as u32,
            events: open.events,
            first_seq: open.first_seq,
            last_seq: open.last_seq,
            min_ts: open.min_ts,
            max_ts: open.max_ts,
            chain: [0; 32],
            crc: 0,
        };
        self.out.clear();
        self.out.resize(BLOCK_HEADER_LEN, 0);
        self.out.extend_from_slice(&self.comp[..n]);
        self.raw.clear();
        self.emit_block(hdr)
    }

    /// Writes `self.out` (header space + payload) as the next block.
    fn emit_block(&mut self, mut hdr: BlockHeader) -> Result<(), LogError> {
        if self.rotate_pending {
            self.rotate()?;
        }
        let (head, payload) = self.out.split_at_mut(BLOCK_HEADER_LEN);
        let chain = hdr.seal(&self.chain, payload, head);
        // One write per block: a crash leaves either the whole block or a
        // torn tail that the reader reports as damage after the last good one.
        let out = std::mem::take(&mut self.out);
        let res = self.write_out_bytes(&out);
        self.out = out;
        res?;
        self.chain = chain;
        self.blocks += 1;
        self.events += hdr.events as u64;
        self.raw_bytes += hdr.raw_len as u64;
        self.min_ts = Some(self.min_ts.map_or(hdr.min_ts, |m| m.min(hdr.min_ts)));
        self.max_ts = Some(self.max_ts.map_or(hdr.max_ts, |m| m.max(hdr.max_ts)));
        if let Some(limit) = self.rotate_bytes {
            if self.seg_bytes >= limit {
                // Rotate lazily, before the next block, so that finishing
                // right after a full segment does not leave an empty one.
                self.rotate_pending = true;
            }
        }
        if let Some(iv) = self.opts.sync_interval {
            if self.last_sync.elapsed() >= iv {
                self.sync()?;
            }
        }
        Ok(())
    }

    fn write_out_bytes(&mut self, bytes: &[u8]) -> Result<(), LogError> {
        if let Err(e) = self.file.write_all(bytes) {
            // A partial block may be on disk now; anything written after it
            // would be unreachable for a reader, so refuse to go on.
            self.failed = true;
            return Err(LogError::io(&self.seg_path, e));
        }
        self.seg_bytes += bytes.len() as u64;
        self.bytes += bytes.len() as u64;
        self.unsynced = true;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), LogError> {
        if self.unsynced {
            if let Err(e) = self.file.sync_data() {
                self.failed = true;
                return Err(LogError::io(&self.seg_path, e));
            }
            self.unsynced = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    fn write_segment_header(&mut self) -> Result<(), LogError> {
        let hdr = FileHeader {
            format_version: FORMAT_VERSION,
            flags: 0,
            schema_version: tomo_event::SCHEMA_VERSION,
            recording_id: self.recording_id,
            segment_index: self.seg_index,
            chain_in: self.chain,
        }
        .encode(&self.meta_json);
        self.write_out_bytes(&hdr)?;
        // The header (which contains chain_in) is itself a link of the chain,
        // so the metadata and the segment order are tamper-evident too.
        self.chain = *blake3::hash(&hdr).as_bytes();
        Ok(())
    }

    /// Closes the current segment (synced, so segments become durable in
    /// order) and starts the next one.
    fn rotate(&mut self) -> Result<(), LogError> {
        self.sync()?;
        let next = self.seg_index + 1;
        let seg_path = self.path.join(format::segment_file_name(next));
        let file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&seg_path)
        {
            Ok(f) => f,
            Err(e) => {
                self.failed = true;
                return Err(LogError::io(&seg_path, e));
            }
        };
        self.file = file;
        self.seg_path = seg_path;
        self.seg_index = next;
        self.seg_bytes = 0;
        self.rotate_pending = false;
        self.write_segment_header()?;
        sync_dir(&self.seg_path).map_err(|e| LogError::io(&self.seg_path, e))?;
        Ok(())
    }
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("path", &self.path)
            .field("segment", &self.seg_path)
            .field("blocks", &self.blocks)
            .field("events", &self.events)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Drop for Writer {
    /// A writer dropped without `finish` (early return, panic) still writes
    /// its open block, best effort; the recording is left without trailer,
    /// exactly as after a crash between two blocks.
    fn drop(&mut self) {
        if !self.done && !self.failed {
            let _ = self.seal();
        }
    }
}

/// fsync the directory containing `file`, making its entry durable.
fn sync_dir(file: &Path) -> std::io::Result<()> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// 16 random bytes for the recording id. The id only has to be unique, not
/// secret, so if the kernel's generator is unavailable a hash of the time,
/// the pid and a counter is good enough.
fn random_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    if let Ok(mut f) = File::open("/dev/urandom") {
        if f.read_exact(&mut id).is_ok() {
            return id;
        }
    }
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = blake3::Hasher::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.update(&now.as_nanos().to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    h.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    id.copy_from_slice(&h.finalize().as_bytes()[..16]);
    id
}

//! A byte-identical copy of a recording, rebuilt block by block from
//! another machine.
//!
//! An agent ships each sealed block of its log (compressed payload, header
//! fields, chain value, position); a collector feeds them to a [`Replica`],
//! which writes the same segment headers and blocks, so the copy has the
//! same recording id, the same hash chain and the same chain head as the
//! original (`tomo verify` prints the same value on both machines).
//!
//! Blocks are identified by their index in the recording: one the replica
//! already holds is a duplicate (shipping is at-least-once; the replica
//! makes it exactly-once), one beyond the next is a gap and refused. Each
//! block's chain value is recomputed and compared with the agent's, which
//! catches corruption, reordering and mixing of recordings on the way.

use crate::format::{
    self, chain_seed, segment_files, BlockHeader, EndRecord, FileHeader, BLOCK_HEADER_LEN,
    CODEC_ZSTD, FORMAT_VERSION, MAX_META_LEN, MAX_RAW_LEN,
};
use crate::{LogError, Reader};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Who the replicated recording is: what its segment headers hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaOrigin {
    pub recording_id: [u8; 16],
    /// The metadata JSON of the original's headers, verbatim.
    pub meta_json: Vec<u8>,
    pub schema_version: u32,
}

/// A block as shipped: its place in the recording, its header fields and
/// its payload (`&[u8]` to append it, `Vec<u8>` as a wire frame carries
/// it: `tomo_kafka::frame::Block`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShippedBlock<P> {
    pub segment: u32,
    /// Index of the block in the whole recording (0-based).
    pub index: u64,
    pub raw_len: u32,
    pub events: u32,
    pub first_seq: u64,
    pub last_seq: u64,
    pub min_ts: u64,
    pub max_ts: u64,
    /// The chain value the original has after this block.
    pub chain: [u8; 32],
    pub payload: P,
}

impl<P: AsRef<[u8]>> ShippedBlock<P> {
    /// The same block with its payload borrowed.
    pub fn borrowed(&self) -> ShippedBlock<&[u8]> {
        ShippedBlock {
            segment: self.segment,
            index: self.index,
            raw_len: self.raw_len,
            events: self.events,
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            min_ts: self.min_ts,
            max_ts: self.max_ts,
            chain: self.chain,
            payload: self.payload.as_ref(),
        }
    }
}

/// What [`Replica::append`] did with a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Appended {
    Added,
    /// The replica already holds this block.
    Duplicate,
}

/// A replica being written (see the module docs). Always a directory of
/// segment files, mirroring the original's segments.
#[derive(Debug)]
pub struct Replica {
    dir: PathBuf,
    origin: ReplicaOrigin,
    file: File,
    seg_path: PathBuf,
    seg_index: u32,
    chain: [u8; 32],
    blocks: u64,
    events: u64,
    finished: bool,
    unsynced: bool,
    /// Blocks dropped from a damaged tail when the replica was reopened.
    pub repaired: Option<String>,
}

impl Replica {
    /// Opens the replica in `dir`, creating it when `dir` holds no segment.
    /// An existing replica is read through (verifying it); a torn tail left
    /// by a crash is cut off, since the agent will ship those blocks again.
    pub fn open(dir: &Path, origin: ReplicaOrigin) -> Result<Replica, LogError> {
        let invalid = |reason: String| LogError::Invalid {
            path: dir.to_path_buf(),
            reason,
        };
        if origin.meta_json.len() > MAX_META_LEN {
            return Err(invalid("metadata too large".into()));
        }
        std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
        let mut segs = segment_files(dir)?;
        if segs.is_empty() {
            let seg_path = dir.join(format::segment_file_name(0));
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&seg_path)
                .map_err(|e| LogError::io(&seg_path, e))?;
            let mut r = Replica {
                dir: dir.to_path_buf(),
                chain: chain_seed(&origin.recording_id),
                origin,
                file,
                seg_path,
                seg_index: 0,
                blocks: 0,
                events: 0,
                finished: false,
                unsynced: false,
                repaired: None,
            };
            r.write_segment_header()?;
            r.sync()?;
            sync_dir(dir)?;
            return Ok(r);
        }
        // A crash while starting a segment can leave a header-less file
        // after the last good one: the reader would call that damage at
        // offset 0 of it, so drop such files first.
        let mut repaired = None;
        let mut reader = Reader::open(dir)?;
        if reader.recording_id() != origin.recording_id {
            return Err(invalid(format!(
                "holds recording {}, not {}",
                format::hex(&reader.recording_id()),
                format::hex(&origin.recording_id)
            )));
        }
        let mut chain = reader.position().chain;
        let mut blocks = 0u64;
        let mut events = 0u64;
        // (segment, byte offset) where the intact part ends.
        let mut end = (0u32, reader.position().offset);
        let mut damage = None;
        while let Some(b) = reader.next_block() {
            match b {
                Ok(_) => {
                    let p = reader
                        .block_end_position()
                        .expect("a block was just returned");
                    chain = p.chain;
                    blocks = p.blocks;
                    events = p.events;
                    end = (p.segment, p.offset);
                }
                Err(e) => {
                    damage = Some(e);
                    break;
                }
            }
        }
        let finished = reader.finished();
        drop(reader);
        if let Some(e) = damage {
            let d = e.damage();
            // Damage at the very start of a later segment: that segment's
            // header is torn; everything from it on goes.
            let (seg, off) = match &d {
                Some(d) if d.offset == 0 && d.path != segs[0].1 => {
                    let idx = segs
                        .iter()
                        .find(|(_, p)| *p == d.path)
                        .map_or(end.0 + 1, |s| s.0);
                    (idx, 0)
                }
                Some(d) => {
                    let idx = segs
                        .iter()
                        .find(|(_, p)| *p == d.path)
                        .map_or(end.0, |s| s.0);
                    (idx, d.offset)
                }
                None => return Err(e),
            };
            for (idx, p) in &segs {
                if *idx > seg || (*idx == seg && off == 0) {
                    std::fs::remove_file(p).map_err(|e| LogError::io(p, e))?;
                } else if *idx == seg {
                    let f = OpenOptions::new()
                        .write(true)
                        .open(p)
                        .map_err(|e| LogError::io(p, e))?;
                    f.set_len(off).map_err(|e| LogError::io(p, e))?;
                    f.sync_all().map_err(|e| LogError::io(p, e))?;
                }
            }
            repaired = Some(format!("cut a damaged tail: {e}"));
            segs = segment_files(dir)?;
        }
        let (seg_index, seg_path) = segs.last().cloned().expect("segment 0 is intact");
        // After the chain of the last intact block, the chain through a later
        // segment's header is already in `chain` only if that segment has
        // blocks; a segment with a header and no block re-derives it here.
        let mut file = OpenOptions::new()
            .write(true)
            .open(&seg_path)
            .map_err(|e| LogError::io(&seg_path, e))?;
        file.seek(SeekFrom::End(0))
            .map_err(|e| LogError::io(&seg_path, e))?;
        let mut r = Replica {
            dir: dir.to_path_buf(),
            origin,
            file,
            seg_path,
            seg_index,
            chain,
            blocks,
            events,
            finished,
            unsynced: false,
            repaired,
        };
        if seg_index > end.0 {
            // The last segment has a header but no block yet.
            r.chain = blake3::hash(&r.segment_header(seg_index, chain))
                .as_bytes()
                .to_owned();
        }
        Ok(r)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// Blocks held (the index the next block must have).
    pub fn blocks(&self) -> u64 {
        self.blocks
    }
    pub fn events(&self) -> u64 {
        self.events
    }
    /// The original was finished and so is the replica (trailer written).
    pub fn finished(&self) -> bool {
        self.finished
    }
    pub fn chain_head(&self) -> [u8; 32] {
        self.chain
    }
    pub fn origin(&self) -> &ReplicaOrigin {
        &self.origin
    }

    /// Appends a shipped block (see the module docs for duplicates, gaps and
    /// chain checks). The block reaches the disk with [`Replica::sync`].
    pub fn append(&mut self, b: &ShippedBlock<&[u8]>) -> Result<Appended, LogError> {
        let invalid = |reason: String| LogError::Invalid {
            path: self.dir.clone(),
            reason,
        };
        if b.index < self.blocks {
            return Ok(Appended::Duplicate);
        }
        if self.finished {
            return Err(invalid(format!(
                "block {} arrives after the end of the recording ({} blocks)",
                b.index, self.blocks
            )));
        }
        if b.index > self.blocks {
            return Err(invalid(format!(
                "gap: block {} arrives but the replica holds {} blocks",
                b.index, self.blocks
            )));
        }
        if b.segment < self.seg_index {
            return Err(invalid(format!(
                "block {} claims segment {}, the replica is at segment {}",
                b.index, b.segment, self.seg_index
            )));
        }
        if b.payload.len() > crate::format::MAX_PAYLOAD_LEN
            || b.raw_len as usize > MAX_RAW_LEN
            || b.events == 0
        {
            return Err(invalid(format!("block {} has absurd lengths", b.index)));
        }
        let mut hdr = BlockHeader {
            codec: CODEC_ZSTD,
            payload_len: b.payload.len() as u32,
            raw_len: b.raw_len,
            events: b.events,
            first_seq: b.first_seq,
            last_seq: b.last_seq,
            min_ts: b.min_ts,
            max_ts: b.max_ts,
            chain: [0; 32],
            crc: 0,
        };
        // The chain runs through every segment header: work out what it is
        // at the block's segment before checking the block against it.
        let mut chain = self.chain;
        let mut new_headers = Vec::new();
        for s in self.seg_index + 1..=b.segment {
            let h = self.segment_header(s, chain);
            chain = *blake3::hash(&h).as_bytes();
            new_headers.push((s, h));
        }
        let mut out = vec![0u8; BLOCK_HEADER_LEN];
        let computed = hdr.seal(&chain, b.payload, &mut out);
        if computed != b.chain {
            return Err(invalid(format!(
                "block {}: chain value mismatch: the block is not the original's (corrupted on the way, or from another recording)",
                b.index
            )));
        }
        for (s, h) in new_headers {
            self.sync()?;
            let seg_path = self.dir.join(format::segment_file_name(s));
            self.file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&seg_path)
                .map_err(|e| LogError::io(&seg_path, e))?;
            self.seg_path = seg_path;
            self.seg_index = s;
            self.write(&h)?;
            sync_dir(&self.dir)?;
        }
        out.extend_from_slice(b.payload);
        self.write(&out)?;
        self.chain = computed;
        self.blocks += 1;
        self.events += b.events as u64;
        Ok(Appended::Added)
    }

    /// Writes the trailer, once the original's end arrives; its counts and
    /// chain head must match what the replica holds.
    pub fn finish(
        &mut self,
        events: u64,
        blocks: u64,
        chain_head: [u8; 32],
    ) -> Result<(), LogError> {
        if self.finished {
            return Ok(());
        }
        if blocks != self.blocks || events != self.events || chain_head != self.chain {
            return Err(LogError::Invalid {
                path: self.dir.clone(),
                reason: format!(
                    "the original ended with {blocks} blocks and {events} events, the replica holds {} and {} (or another chain head)",
                    self.blocks, self.events
                ),
            });
        }
        let end = EndRecord {
            events,
            blocks,
            chain_head,
        }
        .encode();
        self.write(&end)?;
        self.sync()?;
        self.finished = true;
        Ok(())
    }

    /// Makes what was appended durable.
    pub fn sync(&mut self) -> Result<(), LogError> {
        if self.unsynced {
            self.file
                .sync_data()
                .map_err(|e| LogError::io(&self.seg_path, e))?;
            self.unsynced = false;
        }
        Ok(())
    }

    fn write(&mut self, b: &[u8]) -> Result<(), LogError> {
        self.file
            .write_all(b)
            .map_err(|e| LogError::io(&self.seg_path, e))?;
        self.unsynced = true;
        Ok(())
    }

    fn segment_header(&self, index: u32, chain_in: [u8; 32]) -> Vec<u8> {
        FileHeader {
            format_version: FORMAT_VERSION,
            flags: 0,
            schema_version: self.origin.schema_version,
            recording_id: self.origin.recording_id,
            segment_index: index,
            chain_in,
        }
        .encode(&self.origin.meta_json)
    }

    fn write_segment_header(&mut self) -> Result<(), LogError> {
        let h = self.segment_header(self.seg_index, self.chain);
        self.write(&h)?;
        self.chain = *blake3::hash(&h).as_bytes();
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| LogError::io(dir, e))
}

//! Byte layouts of the recording format (see `FORMAT.md` beside this crate,
//! which is the normative description; this module is its implementation).
//!
//! Everything is little-endian. Parsing never trusts a length before it has
//! been checked against a hard cap, so a damaged or hostile file cannot make
//! the reader allocate more than a few tens of MiB.

/// First 8 bytes of every segment file. The high-bit first byte and the
/// CR LF / ^Z bytes catch transfers that mangle binary files (as in PNG).
pub const FILE_MAGIC: [u8; 8] = *b"\x89TOMO\r\n\x1a";
/// Version of the container format described here.
pub const FORMAT_VERSION: u16 = 1;
/// Fixed part of the segment header, before the metadata.
pub const FILE_FIXED_LEN: usize = 72;
/// Largest metadata we write or accept. Command lines can be long (ARG_MAX is
/// 2 MiB on Linux), so this is generous but still bounded.
pub const MAX_META_LEN: usize = 16 << 20;

/// Magic of a data block.
pub const BLOCK_MAGIC: [u8; 4] = *b"TBLK";
/// Magic of the end-of-recording trailer.
pub const END_MAGIC: [u8; 4] = *b"TEND";
/// Size of a block header.
pub const BLOCK_HEADER_LEN: usize = 92;
/// Bytes of the block header that enter the hash chain (everything before the
/// chain value itself).
pub const BLOCK_CHAINED_LEN: usize = 56;
/// Offset of the crc32c inside the block header.
pub const BLOCK_CRC_AT: usize = 88;
/// Size of the trailer.
pub const END_LEN: usize = 60;

/// Codec byte of a zstd-compressed payload (the only codec so far).
pub const CODEC_ZSTD: u8 = 1;

/// Upper bound on the uncompressed size of one block. The writer caps
/// `block_bytes` at half of this, and single events at [`MAX_EVENT_LEN`], so
/// a block it writes can never exceed it.
pub const MAX_RAW_LEN: usize = 64 << 20;
/// Upper bound on one encoded event.
pub const MAX_EVENT_LEN: usize = 16 << 20;
/// Upper bound on a compressed payload: zstd's worst-case expansion of
/// `MAX_RAW_LEN` is well below this.
pub const MAX_PAYLOAD_LEN: usize = MAX_RAW_LEN + (1 << 20);

/// Domain separation for the chain seed.
pub const CHAIN_SEED_DOMAIN: &[u8] = b"tomo-log chain v1";

/// Seed of the hash chain: `BLAKE3("tomo-log chain v1" || recording_id)`.
pub fn chain_seed(recording_id: &[u8; 16]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(CHAIN_SEED_DOMAIN);
    h.update(recording_id);
    *h.finalize().as_bytes()
}

/// The fixed part of a segment header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileHeader {
    pub format_version: u16,
    pub flags: u16,
    pub schema_version: u32,
    pub recording_id: [u8; 16],
    pub segment_index: u32,
    pub chain_in: [u8; 32],
}

impl FileHeader {
    /// Serializes the whole header (fixed part, metadata, crc).
    pub fn encode(&self, meta_json: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(FILE_FIXED_LEN + meta_json.len() + 4);
        out.extend_from_slice(&FILE_MAGIC);
        out.extend_from_slice(&self.format_version.to_le_bytes());
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&self.schema_version.to_le_bytes());
        out.extend_from_slice(&self.recording_id);
        out.extend_from_slice(&self.segment_index.to_le_bytes());
        // The caller guarantees meta_json.len() <= MAX_META_LEN < u32::MAX.
        out.extend_from_slice(&(meta_json.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.chain_in);
        debug_assert_eq!(out.len(), FILE_FIXED_LEN);
        out.extend_from_slice(meta_json);
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses the fixed part. The magic must already have been checked.
    /// Returns the header and the metadata length (not yet validated).
    pub fn parse_fixed(b: &[u8; FILE_FIXED_LEN]) -> (FileHeader, u32) {
        let h = FileHeader {
            format_version: u16_at(b, 8),
            flags: u16_at(b, 10),
            schema_version: u32_at(b, 12),
            recording_id: b[16..32].try_into().expect("16 bytes"),
            segment_index: u32_at(b, 32),
            chain_in: b[40..72].try_into().expect("32 bytes"),
        };
        (h, u32_at(b, 36))
    }
}

/// The decoded fields of a block header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    pub codec: u8,
    pub payload_len: u32,
    pub raw_len: u32,
    pub events: u32,
    pub first_seq: u64,
    pub last_seq: u64,
    pub min_ts: u64,
    pub max_ts: u64,
    pub chain: [u8; 32],
    pub crc: u32,
}

impl BlockHeader {
    /// Writes the header into `out[..BLOCK_HEADER_LEN]`, computing the chain
    /// value from `prev_chain` and `payload` and the crc over everything.
    /// Returns the new chain value.
    pub fn seal(&mut self, prev_chain: &[u8; 32], payload: &[u8], out: &mut [u8]) -> [u8; 32] {
        let out = &mut out[..BLOCK_HEADER_LEN];
        out[0..4].copy_from_slice(&BLOCK_MAGIC);
        out[4] = self.codec;
        out[5..8].fill(0);
        out[8..12].copy_from_slice(&self.payload_len.to_le_bytes());
        out[12..16].copy_from_slice(&self.raw_len.to_le_bytes());
        out[16..20].copy_from_slice(&self.events.to_le_bytes());
        out[20..24].fill(0);
        out[24..32].copy_from_slice(&self.first_seq.to_le_bytes());
        out[32..40].copy_from_slice(&self.last_seq.to_le_bytes());
        out[40..48].copy_from_slice(&self.min_ts.to_le_bytes());
        out[48..56].copy_from_slice(&self.max_ts.to_le_bytes());
        self.chain = block_chain(prev_chain, &out[..BLOCK_CHAINED_LEN], payload);
        out[56..88].copy_from_slice(&self.chain);
        self.crc = block_crc(&out[..BLOCK_CRC_AT], payload);
        out[88..92].copy_from_slice(&self.crc.to_le_bytes());
        self.chain
    }

    /// Parses a header whose magic has already been checked. Reserved bytes
    /// are not checked here: they are covered by the crc and the chain.
    pub fn parse(b: &[u8; BLOCK_HEADER_LEN]) -> BlockHeader {
        BlockHeader {
            codec: b[4],
            payload_len: u32_at(b, 8),
            raw_len: u32_at(b, 12),
            events: u32_at(b, 16),
            first_seq: u64_at(b, 24),
            last_seq: u64_at(b, 32),
            min_ts: u64_at(b, 40),
            max_ts: u64_at(b, 48),
            chain: b[56..88].try_into().expect("32 bytes"),
            crc: u32_at(b, 88),
        }
    }
}

/// `crc32c(header[0..88] || payload)`.
pub fn block_crc(header_before_crc: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(header_before_crc), payload)
}

/// `BLAKE3(prev || header[0..56] || payload)`.
pub fn block_chain(prev: &[u8; 32], chained_header: &[u8], payload: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(prev);
    h.update(chained_header);
    h.update(payload);
    *h.finalize().as_bytes()
}

/// The end-of-recording trailer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndRecord {
    pub events: u64,
    pub blocks: u64,
    pub chain_head: [u8; 32],
}

impl EndRecord {
    pub fn encode(&self) -> [u8; END_LEN] {
        let mut out = [0u8; END_LEN];
        out[0..4].copy_from_slice(&END_MAGIC);
        out[8..16].copy_from_slice(&self.events.to_le_bytes());
        out[16..24].copy_from_slice(&self.blocks.to_le_bytes());
        out[24..56].copy_from_slice(&self.chain_head);
        let crc = crc32c::crc32c(&out[..56]);
        out[56..60].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses a trailer whose magic has been checked; `None` on crc mismatch
    /// or non-zero reserved bytes.
    pub fn parse(b: &[u8; END_LEN], check_crc: bool) -> Option<EndRecord> {
        if check_crc && crc32c::crc32c(&b[..56]) != u32_at(b, 56) {
            return None;
        }
        if b[4..8] != [0; 4] {
            return None;
        }
        Some(EndRecord {
            events: u64_at(b, 8),
            blocks: u64_at(b, 16),
            chain_head: b[24..56].try_into().expect("32 bytes"),
        })
    }
}

/// Appends `v` as an unsigned LEB128 varint (at most 5 bytes for a u32).
#[inline]
pub fn put_varint_u32(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads an unsigned LEB128 varint of at most 5 bytes that fits a u32.
/// Returns the value and the number of bytes used, or `None` if the input
/// ends early or the encoding is overlong / out of range.
#[inline]
pub fn get_varint_u32(b: &[u8]) -> Option<(u32, usize)> {
    let mut v: u32 = 0;
    for (i, &byte) in b.iter().take(5).enumerate() {
        let bits = (byte & 0x7f) as u32;
        if i == 4 && bits > 0x0f {
            return None; // would overflow u32
        }
        v |= bits << (7 * i);
        if byte & 0x80 == 0 {
            // Reject non-canonical encodings (trailing zero groups) so that
            // every length has exactly one representation.
            if i > 0 && byte == 0 {
                return None;
            }
            return Some((v, i + 1));
        }
    }
    None
}

#[inline]
pub fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

#[inline]
pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

#[inline]
pub fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Lower-case hex of a byte string (chain heads, recording ids).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Name of segment `index` inside a rotated recording's directory.
pub fn segment_file_name(index: u32) -> String {
    format!("{index:08}.tseg")
}

/// Inverse of [`segment_file_name`]: `Some(index)` for exactly eight decimal
/// digits followed by `.tseg`.
pub fn parse_segment_file_name(name: &str) -> Option<u32> {
    let stem = name.strip_suffix(".tseg")?;
    if stem.len() != 8 || !stem.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// The segment files of a segmented recording directory, by index.
pub fn segment_files(
    dir: &std::path::Path,
) -> Result<Vec<(u32, std::path::PathBuf)>, crate::LogError> {
    let mut segs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| crate::LogError::io(dir, e))? {
        let entry = entry.map_err(|e| crate::LogError::io(dir, e))?;
        if let Some(i) = entry.file_name().to_str().and_then(parse_segment_file_name) {
            segs.push((i, entry.path()));
        }
    }
    segs.sort();
    Ok(segs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_roundtrip_and_rejects() {
        for v in [0u32, 1, 127, 128, 300, 16383, 16384, u32::MAX] {
            let mut b = Vec::new();
            put_varint_u32(&mut b, v);
            assert_eq!(get_varint_u32(&b), Some((v, b.len())));
        }
        assert_eq!(get_varint_u32(&[]), None);
        assert_eq!(get_varint_u32(&[0x80]), None);
        assert_eq!(get_varint_u32(&[0x80, 0x00]), None); // overlong
        assert_eq!(get_varint_u32(&[0xff, 0xff, 0xff, 0xff, 0x1f]), None); // > u32
        assert_eq!(get_varint_u32(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), None);
    }

    #[test]
    fn segment_names() {
        assert_eq!(segment_file_name(3), "00000003.tseg");
        assert_eq!(parse_segment_file_name("00000003.tseg"), Some(3));
        assert_eq!(parse_segment_file_name("3.tseg"), None);
        assert_eq!(parse_segment_file_name("0000000a.tseg"), None);
        assert_eq!(parse_segment_file_name("00000003.tmp"), None);
    }

    #[test]
    fn block_header_roundtrip() {
        let mut h = BlockHeader {
            codec: CODEC_ZSTD,
            payload_len: 5,
            raw_len: 9,
            events: 2,
            first_seq: 10,
            last_seq: 11,
            min_ts: 100,
            max_ts: 200,
            chain: [0; 32],
            crc: 0,
        };
        let mut buf = [0u8; BLOCK_HEADER_LEN];
        h.seal(&[7; 32], b"hello", &mut buf);
        let back = BlockHeader::parse(&buf);
        assert_eq!(back, h);
        assert_eq!(block_crc(&buf[..BLOCK_CRC_AT], b"hello"), back.crc);
    }
}

//! The wire record between an agent and a collector.
//!
//! One Kafka record carries one sealed block of an agent's durable log,
//! verbatim (still zstd compressed), or the end of a recording. The block's
//! position (segment, index) and its chain value travel with it, so the
//! collector rebuilds a byte-identical replica of the agent's recording:
//! it can drop a block it already has (at-least-once shipping becomes
//! exactly-once in the replica) and the hash chain verifies the whole path.
//!
//! Layout (little-endian):
//! ```text
//! magic "TSHP" | version u8 (1) | kind u8 (1 block, 2 end) | reserved u16 (0)
//! host [16] | boot [16] | recording_id [16] | schema_version u32
//! meta_len u32 | meta JSON (the recording's header metadata, verbatim)
//! block: segment u32 | index u64 | raw_len u32 | events u32 | first_seq u64
//!        | last_seq u64 | min_ts u64 | max_ts u64 | chain [32]
//!        | payload_len u32 | payload
//! end:   events u64 | blocks u64 | chain_head [32]
//! ```
//! Every record is self-describing (host, boot and metadata included), so a
//! collector can start at any offset of the topic.

use tomo_log::MAX_META_LEN;

pub const MAGIC: [u8; 4] = *b"TSHP";
pub const VERSION: u8 = 1;
const KIND_BLOCK: u8 = 1;
const KIND_END: u8 = 2;
/// A block's compressed payload is at most 65 MiB (tomo-log's limit).
pub const MAX_PAYLOAD: usize = 65 << 20;

/// Identity of the recording a frame belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub host: [u8; 16],
    pub boot: [u8; 16],
    pub recording_id: [u8; 16],
    pub schema_version: u32,
    /// The recording's metadata JSON, byte for byte as in its segment headers.
    pub meta_json: Vec<u8>,
}

/// One sealed block, as in the agent's log: what a replica appends, with
/// the payload owned.
pub type Block = tomo_log::ShippedBlock<Vec<u8>>;

/// The recording was finished (trailer written) after `blocks` blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct End {
    pub events: u64,
    pub blocks: u64,
    pub chain_head: [u8; 32],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    Block(Block),
    End(End),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub origin: Origin,
    pub body: Body,
}

/// Why bytes are not a frame; `offset` is where in the record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a Tomo shipping frame: {reason} at byte offset {offset}")]
pub struct FrameError {
    pub offset: usize,
    pub reason: String,
}

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let o = &self.origin;
        let extra = match &self.body {
            Body::Block(b) => 96 + b.payload.len(),
            Body::End(_) => 48,
        };
        let mut out = Vec::with_capacity(64 + o.meta_json.len() + extra);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(match self.body {
            Body::Block(_) => KIND_BLOCK,
            Body::End(_) => KIND_END,
        });
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&o.host);
        out.extend_from_slice(&o.boot);
        out.extend_from_slice(&o.recording_id);
        out.extend_from_slice(&o.schema_version.to_le_bytes());
        out.extend_from_slice(&(o.meta_json.len() as u32).to_le_bytes());
        out.extend_from_slice(&o.meta_json);
        match &self.body {
            Body::Block(b) => {
                out.extend_from_slice(&b.segment.to_le_bytes());
                out.extend_from_slice(&b.index.to_le_bytes());
                out.extend_from_slice(&b.raw_len.to_le_bytes());
                out.extend_from_slice(&b.events.to_le_bytes());
                for v in [b.first_seq, b.last_seq, b.min_ts, b.max_ts] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                out.extend_from_slice(&b.chain);
                out.extend_from_slice(&(b.payload.len() as u32).to_le_bytes());
                out.extend_from_slice(&b.payload);
            }
            Body::End(e) => {
                out.extend_from_slice(&e.events.to_le_bytes());
                out.extend_from_slice(&e.blocks.to_le_bytes());
                out.extend_from_slice(&e.chain_head);
            }
        }
        out
    }

    /// Parses a frame. Never panics and never allocates more than the input
    /// holds: this is outside input (anything on the topic).
    pub fn decode(b: &[u8]) -> Result<Frame, FrameError> {
        let mut c = Cur { b, at: 0 };
        if c.take(4)? != MAGIC {
            return Err(c.err(0, "bad magic (expected TSHP)"));
        }
        let version = c.u8()?;
        if version != VERSION {
            return Err(c.err(
                4,
                &format!("unsupported version {version} (this build reads {VERSION})"),
            ));
        }
        let kind = c.u8()?;
        if c.take(2)? != [0, 0] {
            return Err(c.err(6, "reserved bytes are not zero"));
        }
        let host = c.arr16()?;
        let boot = c.arr16()?;
        let recording_id = c.arr16()?;
        let schema_version = c.u32()?;
        let meta_len = c.u32()? as usize;
        if meta_len > MAX_META_LEN {
            return Err(c.err(
                c.at - 4,
                &format!("metadata of {meta_len} bytes (at most {MAX_META_LEN})"),
            ));
        }
        let meta_json = c.take(meta_len)?.to_vec();
        let origin = Origin {
            host,
            boot,
            recording_id,
            schema_version,
            meta_json,
        };
        let body = match kind {
            KIND_BLOCK => {
                let segment = c.u32()?;
                let index = c.u64()?;
                let raw_len = c.u32()?;
                let events = c.u32()?;
                let first_seq = c.u64()?;
                let last_seq = c.u64()?;
                let min_ts = c.u64()?;
                let max_ts = c.u64()?;
                let mut chain = [0u8; 32];
                chain.copy_from_slice(c.take(32)?);
                let plen = c.u32()? as usize;
                if plen > MAX_PAYLOAD {
                    return Err(c.err(
                        c.at - 4,
                        &format!("payload of {plen} bytes (at most {MAX_PAYLOAD})"),
                    ));
                }
                let payload = c.take(plen)?.to_vec();
                Body::Block(Block {
                    segment,
                    index,
                    raw_len,
                    events,
                    first_seq,
                    last_seq,
                    min_ts,
                    max_ts,
                    chain,
                    payload,
                })
            }
            KIND_END => {
                let events = c.u64()?;
                let blocks = c.u64()?;
                let mut chain_head = [0u8; 32];
                chain_head.copy_from_slice(c.take(32)?);
                Body::End(End {
                    events,
                    blocks,
                    chain_head,
                })
            }
            k => return Err(c.err(5, &format!("unknown kind {k}"))),
        };
        if c.at != b.len() {
            return Err(c.err(
                c.at,
                &format!("{} bytes after the end of the frame", b.len() - c.at),
            ));
        }
        Ok(Frame { origin, body })
    }
}

struct Cur<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cur<'a> {
    fn err(&self, offset: usize, reason: &str) -> FrameError {
        FrameError {
            offset,
            reason: reason.to_string(),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if self.b.len() - self.at < n {
            return Err(self.err(
                self.at,
                &format!(
                    "truncated: {n} bytes needed, {} left",
                    self.b.len() - self.at
                ),
            ));
        }
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, FrameError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, FrameError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn arr16(&mut self) -> Result<[u8; 16], FrameError> {
        Ok(self.take(16)?.try_into().expect("16 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Frame> {
        let origin = Origin {
            host: [1; 16],
            boot: [2; 16],
            recording_id: [3; 16],
            schema_version: 2,
            meta_json: br#"{"source":"ebpf"}"#.to_vec(),
        };
        vec![
            Frame {
                origin: origin.clone(),
                body: Body::Block(Block {
                    segment: 1,
                    index: 7,
                    raw_len: 100,
                    events: 3,
                    first_seq: 10,
                    last_seq: 12,
                    min_ts: 5,
                    max_ts: 9,
                    chain: [4; 32],
                    payload: vec![9; 40],
                }),
            },
            Frame {
                origin,
                body: Body::End(End {
                    events: 30,
                    blocks: 8,
                    chain_head: [5; 32],
                }),
            },
        ]
    }

    #[test]
    fn round_trip() {
        for f in sample() {
            assert_eq!(Frame::decode(&f.encode()).unwrap(), f);
        }
    }

    #[test]
    fn every_truncation_and_trailing_byte_is_refused() {
        for f in sample() {
            let b = f.encode();
            for n in 0..b.len() {
                let e = Frame::decode(&b[..n]).unwrap_err();
                assert!(e.offset <= n, "{e}");
            }
            let mut longer = b.clone();
            longer.push(0);
            assert!(Frame::decode(&longer)
                .unwrap_err()
                .reason
                .contains("after the end"));
        }
    }

    #[test]
    fn bad_header_fields_name_their_offset() {
        let b = sample()[0].encode();
        let mut m = b.clone();
        m[0] = b'X';
        assert_eq!(Frame::decode(&m).unwrap_err().offset, 0);
        let mut m = b.clone();
        m[4] = 9;
        assert!(Frame::decode(&m).unwrap_err().reason.contains("version 9"));
        let mut m = b.clone();
        m[5] = 7;
        assert!(Frame::decode(&m).unwrap_err().reason.contains("kind 7"));
        let mut m = b;
        m[60..64].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Frame::decode(&m)
            .unwrap_err()
            .reason
            .contains("metadata of"));
    }
}

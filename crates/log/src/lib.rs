//! The durable recording format of Tomo.
//!
//! A recording is an append-only sequence of zstd-compressed, checksummed,
//! hash-chained blocks of [`tomo_event::Event`]s, in one file or in a
//! directory of rotated segment files. Every analysis replays it, so the
//! reader is built to return everything that is intact and to stop, with a
//! precise [`Damage`] report, at the first byte that is not. The exact byte
//! layout is in `FORMAT.md` next to this crate.
//!
//! * [`Writer`] appends events; a block is sealed and written with a single
//!   `write` when it is full or old, so a crash of the writer loses at most
//!   the block being filled.
//! * [`Reader`] iterates events (and, cheaply, [block summaries](Reader::next_block)).
//! * [`read_all`], [`cut`] and [`verify`] are the whole-recording operations
//!   the CLI uses.
//! * [`Replica`] rebuilds a recording shipped block by block from another
//!   host, byte for byte (same id, same hash chain).

mod format;
mod reader;
mod replica;
mod tools;
mod writer;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use tomo_event::Id128;

pub use format::{FORMAT_VERSION, MAX_EVENT_LEN, MAX_META_LEN, MAX_RAW_LEN};
pub use reader::{BlockSummary, Position, Reader};
pub use replica::{Appended, Replica, ReplicaOrigin, ShippedBlock};
pub use tools::{cut, read_all, verify, CutSummary, SeqGap, VerifyReport};
pub use writer::{WriteSummary, Writer};

/// Who recorded what: stored (as JSON) in the header of every segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RecordingMeta {
    /// Machine the events come from: its machine id, or for a simulated
    /// host (`--host-name`) the UUIDv5 of [`RecordingMeta::host_name`].
    pub host: Id128,
    /// Boot of that machine during the recording.
    pub boot: Id128,
    /// Capture source, e.g. `"ptrace"`.
    pub source: String,
    /// The recorded command line, when the recorder launched one.
    pub command: Vec<String>,
    /// For a recording made by [`cut`]: the `[from, to)` window in ns.
    #[serde(default)]
    pub cut_from: Option<(u64, u64)>,
    /// The name `host` was derived from (`--host-name`), when it was given;
    /// absent in older recordings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_name: Option<String>,
}

/// Tuning of a [`Writer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriterOptions {
    /// Seal the open block once its uncompressed size reaches this many bytes.
    /// Must be between 1 and `MAX_RAW_LEN / 2`.
    pub block_bytes: usize,
    /// Seal the open block (on the next append) once its first event is older
    /// than this, so a slow trickle of events still reaches the disk.
    pub flush_interval: Duration,
    /// `fdatasync` after writing a block if the last sync is older than this;
    /// `None` syncs only on [`Writer::finish`].
    pub sync_interval: Option<Duration>,
    /// zstd compression level.
    pub zstd_level: i32,
    /// With `Some(n)`, the recording path is a directory of segment files and
    /// a new segment is started once the current one holds at least `n` bytes.
    pub rotate_bytes: Option<u64>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            block_bytes: 256 << 10,
            flush_interval: Duration::from_millis(200),
            sync_interval: Some(Duration::from_secs(1)),
            zstd_level: 3,
            rotate_bytes: None,
        }
    }
}

/// Where and why a recording stops being readable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Damage {
    /// The file (segment) that is damaged.
    pub path: PathBuf,
    /// Byte offset, in that file, of the damaged block (or header/trailer).
    pub offset: u64,
    /// What is wrong, for humans.
    pub reason: String,
    /// Number of events of the recording that precede the damage, i.e. that
    /// were (or, when blocks were skipped, could have been) read intact.
    pub events_before: u64,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: damaged at byte offset {}: {} ({} events before it are intact)",
            self.path.display(),
            self.offset,
            self.reason,
            self.events_before
        )
    }
}

/// Errors of this crate. Messages always name the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a Tomo recording: {reason}", path.display())]
    NotARecording { path: PathBuf, reason: String },
    #[error("{}: unsupported recording: {reason}", path.display())]
    Unsupported { path: PathBuf, reason: String },
    #[error("{}: damaged at byte offset {offset}: {reason} ({events_before} events before it are intact)", path.display())]
    Damaged {
        path: PathBuf,
        offset: u64,
        reason: String,
        events_before: u64,
    },
    #[error("cannot encode event: {0}")]
    Encode(#[from] tomo_event::CodecError),
    #[error("event too large: {len} bytes encoded (at most {max})")]
    EventTooLarge { len: usize, max: usize },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("{}: the writer failed earlier and cannot continue", path.display())]
    WriterFailed { path: PathBuf },
}

impl From<Damage> for LogError {
    fn from(d: Damage) -> LogError {
        LogError::Damaged {
            path: d.path,
            offset: d.offset,
            reason: d.reason,
            events_before: d.events_before,
        }
    }
}

impl LogError {
    /// The damage report, for [`LogError::Damaged`].
    pub fn damage(&self) -> Option<Damage> {
        match self {
            LogError::Damaged {
                path,
                offset,
                reason,
                events_before,
            } => Some(Damage {
                path: path.clone(),
                offset: *offset,
                reason: reason.clone(),
                events_before: *events_before,
            }),
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> LogError {
        LogError::Io {
            path: path.into(),
            source,
        }
    }
}

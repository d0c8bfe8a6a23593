//! Whole-recording operations: read everything, cut a time window, verify.

use crate::format::{self, FORMAT_VERSION};
use crate::{Damage, LogError, Reader, RecordingMeta, WriteSummary, Writer, WriterOptions};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tomo_event::Event;

/// Reads every intact event of a recording. Damage is not an error: the
/// events before it are returned together with the [`Damage`] report.
pub fn read_all(path: &Path) -> Result<(RecordingMeta, Vec<Event>, Option<Damage>), LogError> {
    let mut r = Reader::open(path)?;
    let mut events = Vec::new();
    for ev in r.by_ref() {
        match ev {
            Ok(ev) => events.push(ev),
            Err(e) => match e.damage() {
                Some(d) => return Ok((r.meta().clone(), events, Some(d))),
                None => return Err(e),
            },
        }
    }
    Ok((r.meta().clone(), events, None))
}

/// What [`cut`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CutSummary {
    /// The window, `from_ns <= ts_ns < to_ns`.
    pub from_ns: u64,
    pub to_ns: u64,
    /// Blocks of the input that were read.
    pub blocks_in: u64,
    /// Input blocks wholly outside the window, skipped undecoded.
    pub blocks_skipped: u64,
    /// Input blocks wholly inside the window, copied without recompressing.
    pub blocks_copied: u64,
    /// Input blocks straddling a window edge, decoded and filtered.
    pub blocks_filtered: u64,
    /// Events in the input blocks read (inside the window or not).
    pub events_in: u64,
    /// Events written to the output.
    pub events_out: u64,
    /// Damage of the input that ended the cut early (the output then holds
    /// the window's events up to the damage, and is a complete recording).
    pub damage: Option<Damage>,
    /// The output recording.
    pub output: WriteSummary,
}

/// Writes the events of `input` with `from_ns <= ts_ns < to_ns` to a new
/// single-file recording `output`, in their original order and with their
/// original `seq`. Blocks wholly outside the window are skipped by their
/// header's ts range; blocks wholly inside are copied verbatim. The output's
/// `meta.cut_from` is `Some((from_ns, to_ns))`.
pub fn cut(input: &Path, output: &Path, from_ns: u64, to_ns: u64) -> Result<CutSummary, LogError> {
    if from_ns > to_ns {
        return Err(LogError::Invalid {
            path: output.to_path_buf(),
            reason: format!("empty window: from {from_ns} > to {to_ns}"),
        });
    }
    if same_file(input, output) {
        return Err(LogError::Invalid {
            path: output.to_path_buf(),
            reason: "output is the input recording".into(),
        });
    }
    let mut r = Reader::open(input)?;
    let mut meta = r.meta().clone();
    meta.cut_from = Some((from_ns, to_ns));
    let opts = WriterOptions {
        // A batch job: no time-based sealing, one sync at the end.
        flush_interval: Duration::MAX,
        sync_interval: None,
        ..WriterOptions::default()
    };
    let mut w = Writer::create(output, meta, opts)?;
    let mut s = CutSummary {
        from_ns,
        to_ns,
        blocks_in: 0,
        blocks_skipped: 0,
        blocks_copied: 0,
        blocks_filtered: 0,
        events_in: 0,
        events_out: 0,
        damage: None,
        output: w.summary(),
    };
    'blocks: while let Some(b) = r.next_block() {
        let b = match b {
            Ok(b) => b,
            Err(e) => match e.damage() {
                Some(d) => {
                    s.damage = Some(d);
                    break;
                }
                None => return Err(e),
            },
        };
        s.blocks_in += 1;
        s.events_in += b.events as u64;
        if b.max_ts < from_ns || b.min_ts >= to_ns {
            s.blocks_skipped += 1;
        } else if from_ns <= b.min_ts && b.max_ts < to_ns {
            let payload = r.block_payload().expect("current block");
            w.append_block_verbatim(&b, payload)?;
            s.blocks_copied += 1;
            s.events_out += b.events as u64;
        } else {
            s.blocks_filtered += 1;
            for _ in 0..b.events {
                match r.next() {
                    Some(Ok(ev)) => {
                        if from_ns <= ev.ts_ns && ev.ts_ns < to_ns {
                            w.append(&ev)?;
                            s.events_out += 1;
                        }
                    }
                    Some(Err(e)) => match e.damage() {
                        Some(d) => {
                            s.damage = Some(d);
                            break 'blocks;
                        }
                        None => return Err(e),
                    },
                    None => break,
                }
            }
        }
    }
    s.output = w.finish()?;
    Ok(s)
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// A jump in `seq` between two consecutive events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SeqGap {
    /// `seq` of the event before the gap.
    pub after: u64,
    /// `seq` of the event after it (smaller than `after` for a regression).
    pub next: u64,
}

/// Result of [`verify`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub path: PathBuf,
    pub recording_id: String,
    pub format_version: u16,
    pub schema_version: u32,
    pub meta: RecordingMeta,
    /// Segment files read.
    pub segments: u32,
    /// Intact blocks and the events in them.
    pub blocks: u64,
    pub events: u64,
    /// Size on disk of all segment files.
    pub bytes: u64,
    /// Bytes up to the end of the last intact block (or the trailer).
    pub valid_bytes: u64,
    /// `ts_ns` of the first and of the last event, in recording order.
    pub first_ts: Option<u64>,
    pub last_ts: Option<u64>,
    /// Smallest and largest `ts_ns`.
    pub min_ts: Option<u64>,
    pub max_ts: Option<u64>,
    /// Number of places where `seq` does not go up by exactly one.
    pub seq_gaps: u64,
    /// Sum of the missing `seq` numbers over the forward gaps.
    pub seq_missing: u64,
    /// Number of places where `seq` does not increase at all.
    pub seq_regressions: u64,
    /// The first few gaps (at most [`VerifyReport::MAX_GAP_SAMPLES`]).
    pub gap_samples: Vec<SeqGap>,
    /// Hash-chain value after the last intact block, hex. Compare with a copy
    /// kept elsewhere to detect truncation of whole trailing blocks.
    pub chain_head: String,
    /// Whether the writer finished the recording (trailer present).
    pub finished: bool,
    /// The first damage, if any.
    pub damage: Option<Damage>,
}

impl VerifyReport {
    pub const MAX_GAP_SAMPLES: usize = 32;

    /// Intact and finished.
    pub fn ok(&self) -> bool {
        self.damage.is_none() && self.finished
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
        writeln!(f, "recording   {}", self.path.display())?;
        writeln!(f, "id          {}", self.recording_id)?;
        writeln!(
            f,
            "format      v{} (event schema v{})",
            self.format_version, self.schema_version
        )?;
        writeln!(
            f,
            "source      {} {:?}",
            self.meta.source, self.meta.command
        )?;
        match &self.meta.host_name {
            Some(name) => writeln!(f, "host        {} ({name})", self.meta.host)?,
            None => writeln!(f, "host        {}", self.meta.host)?,
        }
        if let Some((a, b)) = self.meta.cut_from {
            writeln!(f, "cut from    [{a}, {b})")?;
        }
        writeln!(f, "segments    {}", self.segments)?;
        writeln!(f, "blocks      {}", self.blocks)?;
        writeln!(f, "events      {}", self.events)?;
        writeln!(
            f,
            "bytes       {} ({} verified)",
            self.bytes, self.valid_bytes
        )?;
        writeln!(f, "first ts    {}", opt(self.first_ts))?;
        writeln!(f, "last ts     {}", opt(self.last_ts))?;
        writeln!(
            f,
            "seq gaps    {} ({} missing, {} regressions)",
            self.seq_gaps, self.seq_missing, self.seq_regressions
        )?;
        writeln!(f, "chain head  {}", self.chain_head)?;
        writeln!(
            f,
            "finished    {}",
            if self.finished {
                "yes"
            } else {
                "no (writer did not finish)"
            }
        )?;
        // No newline at the end, as usual for Display.
        match &self.damage {
            Some(d) => write!(f, "damage      {d}"),
            None => write!(f, "damage      none"),
        }
    }
}

/// Reads the whole recording, checking every checksum, the hash chain and
/// every event, and reports what it found. Damage is reported, not returned
/// as an error; errors mean the recording could not be opened at all.
pub fn verify(path: &Path) -> Result<VerifyReport, LogError> {
    let mut r = Reader::open(path)?;
    let mut rep = VerifyReport {
        path: path.to_path_buf(),
        recording_id: format::hex(&r.recording_id()),
        format_version: FORMAT_VERSION,
        schema_version: tomo_event::SCHEMA_VERSION,
        meta: r.meta().clone(),
        segments: 0,
        blocks: 0,
        events: 0,
        bytes: 0,
        valid_bytes: 0,
        first_ts: None,
        last_ts: None,
        min_ts: None,
        max_ts: None,
        seq_gaps: 0,
        seq_missing: 0,
        seq_regressions: 0,
        gap_samples: Vec::new(),
        chain_head: String::new(),
        finished: false,
        damage: None,
    };
    let mut prev_seq: Option<u64> = None;
    for ev in r.by_ref() {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => match e.damage() {
                Some(d) => {
                    rep.damage = Some(d);
                    break;
                }
                None => return Err(e),
            },
        };
        rep.events += 1;
        rep.first_ts.get_or_insert(ev.ts_ns);
        rep.last_ts = Some(ev.ts_ns);
        rep.min_ts = Some(rep.min_ts.map_or(ev.ts_ns, |m| m.min(ev.ts_ns)));
        rep.max_ts = Some(rep.max_ts.map_or(ev.ts_ns, |m| m.max(ev.ts_ns)));
        if let Some(p) = prev_seq {
            if ev.seq != p.wrapping_add(1) {
                rep.seq_gaps += 1;
                if ev.seq > p {
                    rep.seq_missing += ev.seq - p - 1;
                } else {
                    rep.seq_regressions += 1;
                }
                if rep.gap_samples.len() < VerifyReport::MAX_GAP_SAMPLES {
                    rep.gap_samples.push(SeqGap {
                        after: p,
                        next: ev.seq,
                    });
                }
            }
        }
        prev_seq = Some(ev.seq);
    }
    rep.segments = r.segments_read();
    rep.blocks = r.blocks_read();
    rep.valid_bytes = r.valid_bytes();
    rep.chain_head = format::hex(&r.chain_head());
    rep.finished = r.finished();
    rep.bytes = disk_size(path);
    Ok(rep)
}

/// Size of a recording file, or of the segment files of a directory.
fn disk_size(path: &Path) -> u64 {
    let Ok(md) = std::fs::metadata(path) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(path)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(format::parse_segment_file_name)
                        .is_some()
                })
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

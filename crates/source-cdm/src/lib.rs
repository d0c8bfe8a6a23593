//! DARPA Transparent Computing CDM records as normalized Tomo events.
//!
//! Reads the JSON encoding of the Common Data Model (one `TCCDMDatum` per
//! line, CDM 18, 19 and 20: `com.bbn.tc.schema.avro.cdm18` … `cdm20`) and
//! turns every CDM Event it can map into the [`tomo_event::Event`] the
//! ptrace recorder would have produced for the same system call, so every
//! query works unchanged.
//!
//! **Two passes.** A CDM Event names its subject and objects by UUID, and
//! the records defining them (Subject, FileObject, NetFlowObject,
//! UnnamedPipeObject/IpcObject, SrcSinkObject, Principal, Host) may come
//! anywhere in the stream, also after the events that use them (a file's
//! first read can precede its FileObject). So the import reads its input
//! twice: pass 1 decodes only the definition records and keeps them (one
//! small entry per UUID: the memory an import needs grows with the number
//! of subjects and objects, not of events), pass 2 decodes only the Event
//! records and converts them in stream order. Each line is decoded once;
//! the other pass recognizes and skips it from its first bytes. No event
//! is held back, and a reference resolves wherever its definition is.
//!
//! Malformed lines (not JSON, not a datum, a field of the wrong type, an
//! event without type or subject) are reported as `file:line: reason` and
//! skipped; the import carries on. Counts per record type and per event
//! type (mapped and skipped) are in [`Stats`].

pub mod convert;
pub mod record;

use convert::{Converter, Ctx, Def, MapStats};
use record::{Datum, Kind};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use tomo_event::{Event, Id128};

pub use convert::{object_dev_ino, subject_ticks, MAPPED_EVENT_TYPES};

/// Longer lines are not CDM records (a record with its parameters is a few KB).
pub const MAX_LINE: usize = 16 << 20;
const MAX_WARNINGS: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum CdmError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: compressed file; decompress it first (e.g. gunzip -k)", path.display())]
    Compressed { path: PathBuf },
    #[error("{}: binary Avro, not the JSON encoding; convert it first (e.g. avro-tools tojson)", path.display())]
    BinaryAvro { path: PathBuf },
    #[error("writing the events failed: {0}")]
    Sink(#[source] std::io::Error),
}

/// A line that could not be used, and where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub file: String,
    pub line: u64,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Counters of one import.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub lines: u64,
    /// Lines that are not CDM records or are malformed (see the warnings).
    pub bad_lines: u64,
    /// Records read, by record type (`Subject`, `FileObject`, `Event`, …).
    pub records: BTreeMap<String, u64>,
    /// Definitions of a UUID defined before (the first one is kept).
    pub redefinitions: u64,
    /// CDM Events by type, and how many of each became Tomo events…
    pub events: BTreeMap<String, u64>,
    pub mapped: BTreeMap<String, u64>,
    /// …and how many were skipped: a type Tomo does not map, or a record
    /// that did not fit (see `mapping`).
    pub skipped: BTreeMap<String, u64>,
    pub mapping: MapStats,
    /// CDM versions seen (`18`, `19`, `20`).
    pub versions: BTreeMap<String, u64>,
    /// Normalized events produced.
    pub events_out: u64,
    /// Warnings in total (only the first 1000 are kept).
    pub warnings: u64,
}

/// How to name the machine(s) the records come from.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Host of records that name none (no `hostId` anywhere).
    pub default_host: Id128,
    /// Use this host for every record, whatever the records say.
    pub host_override: Option<Id128>,
}

/// The importer. Feed every line to [`Importer::define_line`] (pass 1),
/// then every line again, in the same order, to [`Importer::event_line`]
/// (pass 2), then call [`Importer::finish`]. [`read_files`] does all that.
pub struct Importer {
    stats: Stats,
    warnings: Vec<Warning>,
    files: Vec<String>,
    conv: Converter,
    first_host: Option<record::Uuid>,
}

impl Importer {
    pub fn new(opts: Options) -> Importer {
        Importer {
            stats: Stats::default(),
            warnings: Vec::new(),
            files: Vec::new(),
            conv: Converter::new(opts.default_host, opts.host_override),
            first_host: None,
        }
    }

    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.mapping = self.conv.stats.clone();
        s
    }

    /// The first warnings (at most 1000; [`Stats::warnings`] counts all).
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Host and boot for the recording's header: the first host the
    /// definitions name (after pass 1).
    pub fn header_ids(&self) -> (Id128, Id128) {
        let h = self.conv.host_of(self.first_host);
        (h, convert::boot_id(h, 0))
    }

    /// Register an input name; returns its index for the `*_line` calls.
    pub fn add_file(&mut self, name: &str) -> usize {
        self.files.push(name.to_string());
        self.files.len() - 1
    }

    fn warn(&mut self, file: usize, line: u64, message: String) {
        self.stats.warnings += 1;
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(Warning {
                file: self.files.get(file).cloned().unwrap_or_default(),
                line,
                message,
            });
        }
    }

    /// A line that could not even be read as text of sane length (pass 1).
    pub fn bad_line(&mut self, file: usize, line: u64, message: String) {
        self.stats.lines += 1;
        self.stats.bad_lines += 1;
        self.warn(file, line, message);
    }

    fn count(map: &mut BTreeMap<String, u64>, k: &str) {
        match map.get_mut(k) {
            Some(n) => *n += 1,
            None => {
                map.insert(k.to_string(), 1);
            }
        }
    }

    fn decode(&mut self, file: usize, line_no: u64, line: &str) -> Option<record::Line> {
        match record::parse_line(line) {
            Ok(l) => {
                if let Some(v) = l.cdm_version.get() {
                    Self::count(&mut self.stats.versions, v);
                }
                Some(l)
            }
            Err(m) => {
                self.stats.bad_lines += 1;
                self.warn(file, line_no, m);
                None
            }
        }
    }

    /// Pass 1: keep the definition a line holds (events are skipped).
    pub fn define_line(&mut self, file: usize, line_no: u64, line: &str) {
        self.stats.lines += 1;
        if line.trim().is_empty() {
            return;
        }
        if record::sniff_kind(line) == Some(Kind::Event) {
            Self::count(&mut self.stats.records, "Event");
            return;
        }
        let Some(l) = self.decode(file, line_no, line) else {
            return;
        };
        let (uuid, def) = match &l.datum {
            Datum::Event(_) => {
                // An event the sniffer did not recognize: pass 2 decodes it.
                Self::count(&mut self.stats.records, "Event");
                return;
            }
            Datum::Other(name) => {
                let name = name.clone();
                Self::count(&mut self.stats.records, &name);
                return;
            }
            Datum::Host(h) => {
                Self::count(&mut self.stats.records, "Host");
                (h.uuid.map(|u| u.0), Some(Def::Host))
            }
            Datum::Principal(p) => {
                Self::count(&mut self.stats.records, "Principal");
                (
                    p.uuid.map(|u| u.0),
                    Some(Def::Principal(convert::principal_def(p))),
                )
            }
            Datum::Subject(s) => {
                Self::count(&mut self.stats.records, "Subject");
                let mut d = convert::subject_def(s);
                if d.host.is_none() {
                    d.host = l.host_id.get().map(|u| u.0);
                }
                (s.uuid.map(|u| u.0), Some(Def::Subject(Box::new(d))))
            }
            Datum::Object(t, o) => {
                Self::count(&mut self.stats.records, t.name());
                (
                    o.uuid.map(|u| u.0),
                    convert::object_def(*t, o).map(|d| Def::Object(Box::new(d))),
                )
            }
        };
        let Some(uuid) = uuid else {
            self.stats.bad_lines += 1;
            self.warn(file, line_no, "record without a uuid: skipped".into());
            return;
        };
        if self.first_host.is_none() {
            self.first_host = match &l.datum {
                Datum::Host(_) => Some(uuid),
                Datum::Subject(s) => s.host_id.get().map(|u| u.0),
                _ => None,
            }
            .or(l.host_id.get().map(|u| u.0));
        }
        let Some(def) = def else { return };
        if self.conv.defs.contains_key(&uuid) {
            self.stats.redefinitions += 1;
            return;
        }
        self.conv.defs.insert(uuid, def);
    }

    /// Pass 2: convert the event a line holds (definitions are skipped).
    pub fn event_line(&mut self, file: usize, line_no: u64, line: &str, out: &mut Vec<Event>) {
        match record::sniff_kind(line) {
            Some(Kind::Event) => {}
            Some(_) => return,
            // Unrecognized start: decode it again (pass 1 already warned
            // if it is malformed, so stay quiet here).
            None => {
                if line.trim().is_empty() {
                    return;
                }
                if let Ok(record::Line {
                    datum: Datum::Event(e),
                    host_id,
                    session_number,
                    ..
                }) = record::parse_line(line)
                {
                    self.convert(file, line_no, &e, host_id, session_number, out);
                }
                return;
            }
        }
        let Some(l) = self.decode(file, line_no, line) else {
            return;
        };
        if let Datum::Event(e) = l.datum {
            self.convert(file, line_no, &e, l.host_id, l.session_number, out);
        }
    }

    fn convert(
        &mut self,
        file: usize,
        line_no: u64,
        e: &record::Event,
        host_id: record::Opt<record::UuidV>,
        session: record::Opt<i64>,
        out: &mut Vec<Event>,
    ) {
        let t = e.kind.clone().unwrap_or_else(|| "(none)".into());
        Self::count(&mut self.stats.events, &t);
        let ctx = Ctx {
            host: host_id.get().map(|u| u.0),
            session: session.get().copied().unwrap_or(0),
        };
        let before = out.len();
        match self.conv.event(e, &ctx, out) {
            Ok(true) => Self::count(&mut self.stats.mapped, &t),
            Ok(false) => Self::count(&mut self.stats.skipped, &t),
            Err(m) => {
                Self::count(&mut self.stats.skipped, &t);
                self.warn(file, line_no, m);
            }
        }
        self.stats.events_out += (out.len() - before) as u64;
    }

    /// End of pass 2: processes that never acted are listed too.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        let before = out.len();
        self.conv.finish(out);
        self.stats.events_out += (out.len() - before) as u64;
        // Each pass warns about the lines it decodes: put them back in
        // input order.
        let order: std::collections::HashMap<&str, usize> = self
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.as_str(), i))
            .collect();
        let mut w = std::mem::take(&mut self.warnings);
        w.sort_by_key(|w| (order.get(w.file.as_str()).copied(), w.line));
        self.warnings = w;
    }
}

/// Read lines of `input`, handing each (with its 1-based number) to `f`.
fn for_lines(
    imp: &mut Importer,
    file: usize,
    path: &Path,
    input: impl Read,
    progress: &mut dyn FnMut(u64),
    f: &mut dyn FnMut(&mut Importer, u64, &str) -> Result<(), CdmError>,
    report_bad: bool,
) -> Result<(), CdmError> {
    let io = |source| CdmError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut r = BufReader::with_capacity(1 << 20, input);
    let head = r.fill_buf().map_err(io)?;
    if head.starts_with(&[0x1f, 0x8b]) || head.starts_with(b"\x28\xb5\x2f\xfd") {
        return Err(CdmError::Compressed {
            path: path.to_path_buf(),
        });
    }
    if head.starts_with(b"Obj\x01") {
        return Err(CdmError::BinaryAvro {
            path: path.to_path_buf(),
        });
    }
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = (&mut r)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(io)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        progress(n as u64);
        if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') {
            loop {
                buf.clear();
                let m = (&mut r)
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut buf)
                    .map_err(io)?;
                progress(m as u64);
                if m == 0 || buf.last() == Some(&b'\n') {
                    break;
                }
            }
            if report_bad {
                imp.bad_line(file, line_no, format!("line longer than {MAX_LINE} bytes"));
            }
            continue;
        }
        match std::str::from_utf8(&buf) {
            Ok(s) => f(imp, line_no, s.trim_end_matches(['\n', '\r']))?,
            Err(e) => {
                if report_bad {
                    imp.bad_line(file, line_no, format!("not UTF-8 text ({e})"));
                }
            }
        }
    }
    Ok(())
}

/// Pass 1 over one input.
pub fn define_input(
    imp: &mut Importer,
    file: usize,
    path: &Path,
    input: impl Read,
    progress: &mut dyn FnMut(u64),
) -> Result<(), CdmError> {
    for_lines(
        imp,
        file,
        path,
        input,
        progress,
        &mut |imp, n, s| {
            imp.define_line(file, n, s);
            Ok(())
        },
        true,
    )
}

/// Pass 2 over one input.
pub fn events_input(
    imp: &mut Importer,
    file: usize,
    path: &Path,
    input: impl Read,
    progress: &mut dyn FnMut(u64),
    sink: &mut dyn FnMut(Event) -> std::io::Result<()>,
) -> Result<(), CdmError> {
    let mut out = Vec::new();
    for_lines(
        imp,
        file,
        path,
        input,
        progress,
        &mut |imp, n, s| {
            imp.event_line(file, n, s, &mut out);
            for ev in out.drain(..) {
                sink(ev).map_err(CdmError::Sink)?;
            }
            Ok(())
        },
        false,
    )
}

/// Pass 1 over whole files, in the order given. After it,
/// [`Importer::header_ids`] names the recording's host.
pub fn define_files(
    imp: &mut Importer,
    paths: &[PathBuf],
    progress: &mut dyn FnMut(u64),
) -> Result<(), CdmError> {
    for p in paths {
        let file = imp.add_file(&p.display().to_string());
        let f = std::fs::File::open(p).map_err(|source| CdmError::Io {
            path: p.clone(),
            source,
        })?;
        define_input(imp, file, p, f, progress)?;
    }
    Ok(())
}

/// Pass 2 over the same files, then [`Importer::finish`].
pub fn event_files(
    imp: &mut Importer,
    paths: &[PathBuf],
    progress: &mut dyn FnMut(u64),
    sink: &mut dyn FnMut(Event) -> std::io::Result<()>,
) -> Result<(), CdmError> {
    for (file, p) in paths.iter().enumerate() {
        let f = std::fs::File::open(p).map_err(|source| CdmError::Io {
            path: p.clone(),
            source,
        })?;
        events_input(imp, file, p, f, progress, sink)?;
    }
    let mut out = Vec::new();
    imp.finish(&mut out);
    for ev in out {
        sink(ev).map_err(CdmError::Sink)?;
    }
    Ok(())
}

/// Import a whole input held in memory (tests, fuzzing): the events and
/// the importer (for its stats and warnings).
pub fn parse_text(name: &str, text: &[u8], opts: Options) -> (Vec<Event>, Importer) {
    let mut imp = Importer::new(opts);
    let file = imp.add_file(name);
    let path = PathBuf::from(name);
    let mut events = Vec::new();
    let res = define_input(&mut imp, file, &path, text, &mut |_| {}).and_then(|_| {
        events_input(&mut imp, file, &path, text, &mut |_| {}, &mut |e| {
            events.push(e);
            Ok(())
        })
    });
    if let Err(e) = res {
        imp.bad_line(file, 0, e.to_string());
    }
    let mut out = Vec::new();
    imp.finish(&mut out);
    events.extend(out);
    (events, imp)
}

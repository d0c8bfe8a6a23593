//! Keeping a persistent store (`tomo_store::disk`) up to date with its
//! durable log: open the store, resume the ingest where it stopped, read
//! only the log blocks appended since, write the store back.
//!
//! The store only ever holds whole log blocks: events of a block are
//! applied once the reader has returned all of them, so the log position
//! saved with the store is exact and no event is applied twice.

use crate::{Ingest, StateError};
use std::path::{Path, PathBuf};
use tomo_event::Event;
use tomo_log::{Damage, LogError, Position, Reader};
use tomo_store::disk::{self, Extra, Meta, Sizes, StoreError};
use tomo_store::Graph;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}: {source}", path.display())]
    State {
        path: PathBuf,
        #[source]
        source: StateError,
    },
}

/// What to do with a store that cannot be read (corrupt, other version).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadStore {
    /// Rebuild it from the log (`tomo index`).
    Rebuild,
    /// Return the error (queries: they fall back to replaying the log).
    Fail,
}

/// What [`update`] did.
#[derive(Debug, Default)]
pub struct Report {
    /// Events the store held before.
    pub events_before: u64,
    /// Events ingested now.
    pub events_added: u64,
    /// Why the store was built from scratch, when it existed but could not
    /// be used (corrupt, or the log no longer matches it).
    pub rebuilt: Option<String>,
    /// Damage of the log that stopped the reading.
    pub damage: Option<Damage>,
    /// Events of a damaged block's intact prefix: in the returned graph (as
    /// a replay would have them), not in the store.
    pub unstored_events: u64,
    /// Sizes of the store, when it was (re)written.
    pub written: Option<Sizes>,
    /// The store could not be written (the graph is still returned).
    pub write_error: Option<StoreError>,
    /// Summary kept in the store.
    pub meta: Meta,
}

/// The conventional store path of a recording: `RUN.tomo` → `RUN.tomo.idx`
/// (for a segment directory `RUN/` → `RUN.idx`).
pub fn default_path(log: &Path) -> PathBuf {
    let mut s = log.as_os_str().to_owned();
    let trimmed = s.to_string_lossy().trim_end_matches('/').to_string();
    if !trimmed.is_empty() && trimmed.len() < s.len() {
        s = trimmed.into();
    }
    s.push(".idx");
    PathBuf::from(s)
}

fn encode_pos(p: &Position) -> Vec<u8> {
    postcard::to_stdvec(p).expect("in-memory serialization cannot fail")
}

/// Whether the store at `store` holds every whole block of the log at `log`,
/// so that it can be read in place (`tomo_store::disk::Lazy`) with nothing
/// to ingest. Reads only the store's headers, META and log position, and
/// the log from that position on (a block header when nothing follows).
/// `false` when the log grew, was replaced or is damaged after the position
/// ([`update`] deals with those).
pub fn is_current(log: &Path, store: &Path) -> Result<bool, IndexError> {
    let (_, lpos, _, _) = disk::peek(store)?;
    let Ok(pos) = postcard::from_bytes::<Position>(&lpos) else {
        return Ok(false);
    };
    match Reader::resume(log, &pos) {
        Ok(mut r) => Ok(r.next().is_none()),
        Err(LogError::Invalid { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Opens the store at `store` (if any), brings it up to date with the log at
/// `log`, writes it back if anything changed, and returns the graph.
/// `progress` is called with the number of events ingested so far.
pub fn update(
    log: &Path,
    store: &Path,
    bad: BadStore,
    progress: &mut dyn FnMut(u64),
) -> Result<(Graph, Report), IndexError> {
    let mut report = Report::default();
    let mut resumed: Option<(Ingest, Reader, Meta)> = None;
    if store.exists() {
        match disk::open(store) {
            Ok(o) => {
                let pos: Result<Position, _> = postcard::from_bytes(&o.extra.log_pos);
                match pos {
                    Err(e) => {
                        report.rebuilt = Some(format!("{}: bad log position: {e}", store.display()))
                    }
                    Ok(pos) => match Reader::resume(log, &pos) {
                        Err(e @ LogError::Invalid { .. }) => report.rebuilt = Some(e.to_string()),
                        Err(e) => return Err(e.into()),
                        Ok(r) => {
                            let ing =
                                Ingest::resume(o.graph, &o.extra.ingest_state).map_err(|source| {
                                    IndexError::State {
                                        path: store.to_path_buf(),
                                        source,
                                    }
                                });
                            match ing {
                                Ok(ing) => resumed = Some((ing, r, o.extra.meta)),
                                Err(e) if bad == BadStore::Rebuild => {
                                    report.rebuilt = Some(e.to_string())
                                }
                                Err(e) => return Err(e),
                            }
                        }
                    },
                }
            }
            Err(e) if bad == BadStore::Rebuild => report.rebuilt = Some(e.to_string()),
            Err(e) => return Err(e.into()),
        }
    }
    let fresh = resumed.is_none();
    let (mut ing, mut reader, mut meta) = match resumed {
        Some(x) => x,
        None => (Ingest::new(), Reader::open(log)?, Meta::default()),
    };
    report.events_before = meta.events;
    let mut pending: Vec<Event> = Vec::new();
    let mut stored_to = reader.position().events;
    let mut added = 0u64;
    let apply = |ing: &mut Ingest, meta: &mut Meta, evs: &mut Vec<Event>| {
        for ev in evs.drain(..) {
            meta.first_ns = Some(meta.first_ns.map_or(ev.ts_ns, |t| t.min(ev.ts_ns)));
            meta.last_ns = Some(meta.last_ns.map_or(ev.ts_ns, |t| t.max(ev.ts_ns)));
            ing.apply(&ev);
        }
    };
    loop {
        match reader.next() {
            None => break,
            Some(Ok(ev)) => {
                pending.push(ev);
                let p = reader.position().events;
                if p > stored_to {
                    added += pending.len() as u64;
                    apply(&mut ing, &mut meta, &mut pending);
                    stored_to = p;
                    progress(added);
                }
            }
            Some(Err(e)) => match e.damage() {
                Some(d) => {
                    report.damage = Some(d);
                    break;
                }
                None => return Err(e.into()),
            },
        }
    }
    report.events_added = added;
    meta.events = reader.position().events;
    report.meta = meta.clone();
    if fresh || added > 0 {
        let extra = extra_for(&ing, meta, encode_pos(&reader.position()));
        match disk::write(store, &ing.graph, &extra) {
            Ok(s) => report.written = Some(s),
            Err(e) => report.write_error = Some(e),
        }
    }
    // A damaged block's intact events: used, like a replay would, but not
    // stored (the store only holds whole blocks).
    if !pending.is_empty() {
        report.unstored_events = pending.len() as u64;
        let mut m = report.meta.clone();
        apply(&mut ing, &mut m, &mut pending);
    }
    Ok((ing.into_graph(), report))
}

/// What a store keeps besides the graph, for an ingest at `log_pos`
/// (opaque to the store: a log position, or a collection's positions).
pub(crate) fn extra_for(ing: &Ingest, meta: Meta, log_pos: Vec<u8>) -> Extra {
    Extra {
        meta,
        ingest_state: ing.save_state(),
        log_pos,
        uuid_roots: ing.uuid_roots(),
    }
}

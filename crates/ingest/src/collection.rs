//! The store of a *collection*: the recordings of many hosts gathered by a
//! collector (`tomo collect`), indexed together into one graph.
//!
//! A collection is a directory with a `collection.json` marker and one
//! replica per shipped recording under `hosts/HOST/RECORDING/`. Events of
//! all recordings are applied in time order (ties broken by recording
//! order, and within a recording by its own order), which is what lets the
//! ingest match the two ends of a connection between hosts: the writing end
//! is applied before the reading end.
//!
//! Updates are incremental when new blocks only hold events later than
//! everything already applied. A host whose blocks arrive late (its agent
//! was cut off for a while) would break time order, so then the graph is
//! rebuilt from all replicas, and the report says why.

use crate::index::{BadStore, IndexError, Report};
use crate::Ingest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tomo_event::Event;
use tomo_log::{LogError, Position, Reader};
use tomo_store::disk::{self, Meta};
use tomo_store::Graph;

/// The marker file of a collection directory.
pub const MARKER: &str = "collection.json";
/// The graph index of a collection.
pub const STORE: &str = "store.idx";

/// Is `dir` a collection?
pub fn is_collection(dir: &Path) -> bool {
    dir.join(MARKER).is_file()
}

/// Creates the collection layout in `dir` (idempotent).
pub fn create(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("hosts"))?;
    let m = dir.join(MARKER);
    if !m.exists() {
        std::fs::write(&m, b"{\"tomo\":\"collection\",\"version\":1}\n")?;
    }
    Ok(())
}

/// Replica directory of a recording of a host.
pub fn replica_dir(dir: &Path, host: &[u8; 16], recording: &[u8; 16]) -> PathBuf {
    dir.join("hosts").join(hex(host)).join(hex(recording))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The replicas of a collection, as paths relative to it, sorted.
pub fn recordings(dir: &Path) -> Result<Vec<String>, IndexError> {
    let io = |p: &Path, e| {
        IndexError::Log(LogError::Io {
            path: p.to_path_buf(),
            source: e,
        })
    };
    let hosts = dir.join("hosts");
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(&hosts) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(&hosts, e)),
    };
    for h in rd {
        let h = h.map_err(|e| io(&hosts, e))?;
        if !h.path().is_dir() {
            continue;
        }
        for r in std::fs::read_dir(h.path()).map_err(|e| io(&h.path(), e))? {
            let r = r.map_err(|e| io(&h.path(), e))?;
            if r.path().join("00000000.tseg").is_file() {
                out.push(format!(
                    "hosts/{}/{}",
                    h.file_name().to_string_lossy(),
                    r.file_name().to_string_lossy()
                ));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Where the store stands in each replica.
#[derive(Default, Serialize, Deserialize)]
struct CollectionPos {
    /// Tells this apart from a single recording's position.
    kind: String,
    recordings: BTreeMap<String, Position>,
    /// Largest event time applied.
    max_ts: Option<u64>,
}

const POS_KIND: &str = "tomo-collection-v1";

/// New events per replica (its index and its events in its order), the
/// positions reached, and notes on damage at replica ends.
type NewEvents = (
    Vec<(usize, Vec<Event>)>,
    BTreeMap<String, Position>,
    Vec<String>,
);

/// New whole blocks of every replica after `from`, with the positions
/// reached. Events keep their replica's order.
fn read_new(dir: &Path, from: &BTreeMap<String, Position>) -> Result<NewEvents, IndexError> {
    let mut out = Vec::new();
    let mut pos = BTreeMap::new();
    let mut notes = Vec::new();
    for (i, rel) in recordings(dir)?.into_iter().enumerate() {
        let path = dir.join(&rel);
        let mut reader = match from.get(&rel) {
            Some(p) => Reader::resume(&path, p)?,
            None => Reader::open(&path)?,
        };
        let mut evs = Vec::new();
        let mut whole = 0usize;
        let mut stored_to = reader.position().events;
        loop {
            match reader.next() {
                None => break,
                Some(Ok(ev)) => {
                    evs.push(ev);
                    let p = reader.position().events;
                    if p > stored_to {
                        whole = evs.len();
                        stored_to = p;
                    }
                }
                Some(Err(e)) => {
                    match e.damage() {
                        // A replica being appended to can end in a block
                        // not yet complete on disk: stop before it.
                        Some(d) => notes.push(d.to_string()),
                        None => return Err(e.into()),
                    }
                    break;
                }
            }
        }
        evs.truncate(whole);
        pos.insert(rel, reader.position());
        if !evs.is_empty() {
            out.push((i, evs));
        }
    }
    Ok((out, pos, notes))
}

/// Merges per-replica event lists into time order (stable: ties keep
/// replica order, and each replica's own order).
fn merge(lists: Vec<(usize, Vec<Event>)>) -> Vec<Event> {
    let mut all: Vec<(u64, usize, usize, Event)> = Vec::new();
    for (r, evs) in lists {
        for (k, ev) in evs.into_iter().enumerate() {
            all.push((ev.ts_ns, r, k, ev));
        }
    }
    // A replica's events are not always in time order (sources reorder
    // slightly); sort by time, keeping each replica's order among equal
    // times.
    all.sort_by_key(|x| (x.0, x.1, x.2));
    all.into_iter().map(|x| x.3).collect()
}

/// Brings the collection's store up to date and returns its graph.
pub fn update(
    dir: &Path,
    bad: BadStore,
    progress: &mut dyn FnMut(u64),
) -> Result<(Graph, Report), IndexError> {
    let store = dir.join(STORE);
    let mut report = Report::default();
    let mut resumed: Option<(Ingest, Meta, CollectionPos)> = None;
    if store.exists() {
        match disk::open(&store) {
            Ok(o) => match postcard::from_bytes::<CollectionPos>(&o.extra.log_pos) {
                Ok(p) if p.kind == POS_KIND => {
                    match Ingest::resume(o.graph, &o.extra.ingest_state) {
                        Ok(ing) => resumed = Some((ing, o.extra.meta, p)),
                        Err(e) => report.rebuilt = Some(e.to_string()),
                    }
                }
                _ => report.rebuilt = Some(format!("{}: not a collection store", store.display())),
            },
            Err(e) if bad == BadStore::Rebuild => report.rebuilt = Some(e.to_string()),
            Err(e) => return Err(e.into()),
        }
    }
    let (mut ing, mut meta, mut cpos) = match resumed {
        Some(x) => x,
        None => (Ingest::new(), Meta::default(), CollectionPos::default()),
    };
    report.events_before = meta.events;
    let (mut lists, mut newpos, notes) = match read_new(dir, &cpos.recordings) {
        Ok(x) => x,
        // A replica no longer matches (rewritten): start over.
        Err(IndexError::Log(e @ LogError::Invalid { .. })) => {
            report.rebuilt = Some(e.to_string());
            ing = Ingest::new();
            meta = Meta::default();
            cpos = CollectionPos::default();
            read_new(dir, &BTreeMap::new())?
        }
        Err(e) => return Err(e),
    };
    // Damage at a replica's end is a block still being appended by the
    // collector: the next update reads it.
    let _ = notes;
    let new_min = lists
        .iter()
        .flat_map(|(_, e)| e.iter().map(|e| e.ts_ns))
        .min();
    if let (Some(m), Some(applied)) = (new_min, cpos.max_ts) {
        if m < applied && meta.events > 0 {
            report.rebuilt = Some(format!(
                "events arrived late (at {m} ns, before {applied} ns already applied): re-applying all hosts in time order"
            ));
            ing = Ingest::new();
            meta = Meta::default();
            cpos = CollectionPos::default();
            let (l, p, _) = read_new(dir, &BTreeMap::new())?;
            lists = l;
            newpos = p;
        }
    }
    let events = merge(lists);
    let added = events.len() as u64;
    for (k, ev) in events.iter().enumerate() {
        meta.first_ns = Some(meta.first_ns.map_or(ev.ts_ns, |t| t.min(ev.ts_ns)));
        meta.last_ns = Some(meta.last_ns.map_or(ev.ts_ns, |t| t.max(ev.ts_ns)));
        cpos.max_ts = Some(cpos.max_ts.map_or(ev.ts_ns, |t| t.max(ev.ts_ns)));
        ing.apply(ev);
        if k % 65_536 == 0 {
            progress(k as u64);
        }
    }
    meta.events += added;
    report.events_added = added;
    report.meta = meta.clone();
    let changed = added > 0 || newpos != cpos.recordings || !store.exists();
    cpos.recordings = newpos;
    cpos.kind = POS_KIND.into();
    if changed {
        let extra = crate::index::extra_for(
            &ing,
            meta,
            postcard::to_stdvec(&cpos).expect("in-memory serialization cannot fail"),
        );
        match disk::write(&store, &ing.graph, &extra) {
            Ok(s) => report.written = Some(s),
            Err(e) => report.write_error = Some(e),
        }
    }
    Ok((ing.into_graph(), report))
}

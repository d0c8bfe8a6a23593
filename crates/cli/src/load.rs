//! Loading a recording into a graph: from its persistent store when one is
//! present (brought up to date first), else by replaying the durable log
//! through the ingest.

use anyhow::{Context, Result};
use std::path::Path;
use tomo_ingest::index::{self, BadStore, IndexError};
use tomo_store::disk::{Lazy, LazyOptions};
use tomo_store::Graph;

/// The store of the recording at `path` read in place, when there is one
/// and it is up to date (nothing to ingest): a query then decodes only the
/// parts of the store it touches. `None` otherwise ([`graph`] then brings
/// the store up to date, or replays the recording, and says why).
pub fn in_place(path: &Path) -> Option<Lazy> {
    let idx = index::default_path(path);
    if !idx.is_file() || !matches!(index::is_current(path, &idx), Ok(true)) {
        return None;
    }
    Lazy::open(&idx, LazyOptions::default()).ok()
}

/// The provenance graph of the recording at `path`. Damage in the recording
/// is reported on stderr with its byte offset; everything before it is used.
pub fn graph(path: &Path) -> Result<Graph> {
    if tomo_ingest::collection::is_collection(path) {
        return collection(path);
    }
    let idx = index::default_path(path);
    if idx.is_file() {
        match index::update(path, &idx, BadStore::Fail, &mut |_| {}) {
            Ok((g, rep)) => {
                if let Some(r) = &rep.rebuilt {
                    eprintln!("tomo: note: store rebuilt: {r}");
                }
                if let Some(e) = &rep.write_error {
                    eprintln!("tomo: warning: cannot update the store: {e}");
                }
                if let Some(d) = &rep.damage {
                    eprintln!(
                        "tomo: warning: {d}; using the {} events before it",
                        rep.meta.events + rep.unstored_events
                    );
                }
                return Ok(g);
            }
            Err(IndexError::Log(_)) => {} // the replay below reports it
            Err(e) => eprintln!(
                "tomo: warning: {e}; replaying the recording instead (rebuild the store with `tomo index {}`)",
                path.display()
            ),
        }
    }
    replay(path)
}

/// Replay `path` into a provenance graph, ignoring any store.
pub fn replay(path: &Path) -> Result<Graph> {
    let (_meta, events, damage) = tomo_log::read_all(path)
        .with_context(|| format!("cannot read recording {}", path.display()))?;
    if let Some(d) = damage {
        eprintln!(
            "tomo: warning: {d}; using the {} events before it",
            events.len()
        );
    }
    Ok(tomo_ingest::build(events.iter()))
}

/// The graph of a collection (many hosts, `tomo collect`): its store,
/// brought up to date with the replicas first.
fn collection(dir: &Path) -> Result<Graph> {
    let (g, rep) = tomo_ingest::collection::update(dir, BadStore::Rebuild, &mut |_| {})
        .with_context(|| format!("cannot read the collection {}", dir.display()))?;
    if let Some(r) = &rep.rebuilt {
        eprintln!("tomo: note: store rebuilt: {r}");
    }
    if let Some(e) = &rep.write_error {
        eprintln!("tomo: warning: cannot update the store: {e}");
    }
    Ok(g)
}

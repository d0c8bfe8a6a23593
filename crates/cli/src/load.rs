//! Loading a recording into a graph: replay the durable log through the ingest.

use anyhow::{Context, Result};
use std::path::Path;
use tomo_store::Graph;

/// Replay `path` into a provenance graph. Damage in the recording is reported
/// on stderr with its byte offset; everything before it is used.
pub fn graph(path: &Path) -> Result<Graph> {
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

//! Which process versions read or wrote a string: the graph nodes behind
//! the SPARQL view's `tomo:hasText`, from the content search of
//! `content.rs` (the bytes `tomo record --content` kept, strings split
//! across two calls included).

use crate::{ContentMatch, ContentPattern, ContentScanner, QueryError};
use tomo_event::Event;
use tomo_store::{Graph, NodeId};

/// For each of `needles` (plain strings), the process versions (graph
/// nodes, sorted, without duplicates) whose captured reads or writes
/// contain it. Events other than `Op::Content` are ignored, so a recording
/// without content capture matches nothing. An empty needle is an error.
pub fn activities_with_text(
    g: &Graph,
    events: impl IntoIterator<Item = Event>,
    needles: &[&str],
) -> Result<Vec<Vec<NodeId>>, QueryError> {
    let mut scanners = needles
        .iter()
        .map(|n| ContentPattern::fixed(n).map(ContentScanner::new))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out: Vec<Vec<NodeId>> = vec![Vec::new(); needles.len()];
    let mut found: Vec<ContentMatch> = Vec::new();
    for ev in events {
        for (s, nodes) in scanners.iter_mut().zip(&mut out) {
            found.clear();
            s.scan(g, &ev, &mut found);
            nodes.extend(found.iter().filter_map(|m| m.process_node));
        }
    }
    for v in &mut out {
        v.sort_unstable();
        v.dedup();
    }
    Ok(out)
}

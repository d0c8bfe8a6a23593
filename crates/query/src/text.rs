//! Which process versions read or wrote a string: a search of the bytes
//! that content capture logged (`Op::Content`, `tomo record --content`).
//!
//! The bytes of one stream (a process reading or writing one object in one
//! direction) may arrive in several calls, so a string split across two
//! consecutive calls is found too: the tail of each call's bytes is kept
//! per stream and searched with the next call's bytes when that call
//! continues where the last one ended.

use std::collections::HashMap;
use tomo_event::{Dir, Event, Op, ProcRef};
use tomo_store::{EntityId, Graph, NodeId};

/// Per stream: where the next call should start to continue the last one,
/// and the last bytes of the last one.
struct Tail {
    next_offset: Option<u64>,
    bytes: Vec<u8>,
}

type StreamKey = (u32, u64, u64, u64, bool);

/// Does `needle` occur in `hay` ending after `min_end` (so that a match
/// lying wholly in the previous call's tail is not counted twice)?
fn find(hay: &[u8], needle: &[u8], min_end: usize) -> bool {
    !needle.is_empty()
        && hay
            .windows(needle.len())
            .enumerate()
            .any(|(i, w)| i + needle.len() > min_end && w == needle)
}

/// The process entity of `p` at `ts`: the one with its pid and start time,
/// else (sources without start times) the last one with its pid that had
/// started by then.
fn process_entity(g: &Graph, p: &ProcRef, ts: u64) -> Option<EntityId> {
    let cands = g.by_pid(p.pid);
    let info = |e: EntityId| g.entities[e as usize].process.as_deref();
    cands
        .iter()
        .copied()
        .find(|&e| info(e).is_some_and(|i| i.start_ticks == p.start_ticks && p.start_ticks != 0))
        .or_else(|| {
            cands
                .iter()
                .copied()
                .rfind(|&e| info(e).is_some_and(|i| i.start_ns <= ts))
        })
}

/// For each of `needles`, the process versions (graph nodes, sorted,
/// without duplicates) whose captured reads or writes contain it. Events
/// other than `Op::Content` are ignored; a recording without content
/// capture matches nothing.
pub fn activities_with_text(
    g: &Graph,
    events: impl IntoIterator<Item = Event>,
    needles: &[&[u8]],
) -> Vec<Vec<NodeId>> {
    let mut out: Vec<Vec<NodeId>> = vec![Vec::new(); needles.len()];
    let keep = needles
        .iter()
        .map(|n| n.len())
        .max()
        .unwrap_or(1)
        .saturating_sub(1);
    let mut tails: HashMap<StreamKey, Tail> = HashMap::new();
    let mut hay = Vec::new();
    for ev in events {
        let Op::Content {
            dir,
            obj,
            offset,
            total,
            data,
            ..
        } = &ev.op
        else {
            continue;
        };
        let key = (
            ev.proc.pid,
            ev.proc.start_ticks,
            obj.dev,
            obj.ino,
            *dir == Dir::Read,
        );
        let tail = tails.entry(key).or_insert(Tail {
            next_offset: None,
            bytes: Vec::new(),
        });
        hay.clear();
        if tail.next_offset.is_some() && tail.next_offset == *offset {
            hay.extend_from_slice(&tail.bytes);
        }
        let old = hay.len();
        hay.extend_from_slice(data);
        let hits: Vec<usize> = (0..needles.len())
            .filter(|&i| find(&hay, needles[i], old))
            .collect();
        // Only bytes that end where the call's bytes end can continue into
        // the next call: a capped capture loses the end.
        let whole = data.len() as u64 == *total;
        tail.next_offset = match (offset, whole) {
            (Some(o), true) => Some(o + total),
            _ => None,
        };
        tail.bytes.clear();
        if whole {
            tail.bytes
                .extend_from_slice(&hay[hay.len().saturating_sub(keep)..]);
        }
        if hits.is_empty() {
            continue;
        }
        let Some(e) = process_entity(g, &ev.proc, ev.ts_ns) else {
            continue;
        };
        let n = g.version_at(e, ev.ts_ns);
        for i in hits {
            out[i].push(n);
        }
    }
    for v in &mut out {
        v.sort_unstable();
        v.dedup();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_substrings() {
        assert!(find(b"Llamas are lame.", b"are lame", 0));
        assert!(!find(b"Llamas", b"", 0));
        assert!(!find(b"ab", b"abc", 0));
        assert!(find(b"xxLla", b"Lla", 3), "ends in the new bytes");
        assert!(!find(b"Llaxx", b"Lla", 3), "wholly in the old tail");
    }
}

//! Target resolution: from what the user typed to one entity.
//!
//! In order: a full UUID; a pid (all digits); an exact name (path, `pipe:[7]`,
//! `socket:[9]`, `127.0.0.1:8080`, `unix:/run/x`); a path made absolute
//! against the current directory and normalized; a UUID prefix (8+ hex
//! digits); a path suffix on `/` boundaries (`out.tgz` finds `/w/out.tgz`)
//! together with process names (`gzip`). Several distinct matches are an
//! [`QueryError::Ambiguous`] error listing them; a name that denoted several
//! objects over time (a file deleted and recreated) is resolved by time.

use crate::view::{describe, fmt_rel, origin_ns, TextOptions};
use crate::QueryError;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tomo_store::{EntityId, GraphRead};
use uuid::Uuid;

#[derive(Clone, Debug, Default)]
pub struct ResolveOptions {
    /// Directory that relative paths are resolved against.
    pub cwd: Option<PathBuf>,
    /// When a name denoted several objects over time, take the one that
    /// existed at this time.
    pub at: Option<u64>,
    /// Without `at`: take the latest such object (`why`) rather than the
    /// earliest (`impact`).
    pub prefer_latest: bool,
}

#[derive(Clone, Debug)]
pub struct Resolved {
    pub entity: EntityId,
    /// How the target matched (`uuid`, `pid`, `name`, `path`, `uuid-prefix`,
    /// `suffix`, `process-name`).
    pub matched: &'static str,
    /// Remarks for the user (e.g. which of several same-named objects was taken).
    pub notes: Vec<String>,
}

/// Resolve `target` to one entity of `g`.
pub fn resolve<G: GraphRead + ?Sized>(
    g: &G,
    target: &str,
    opts: &ResolveOptions,
) -> Result<Resolved, QueryError> {
    let t = target.trim();
    if t.is_empty() {
        return Err(QueryError::Invalid(
            "empty target: give a path, a pid, a UUID or a name like pipe:[123]".into(),
        ));
    }
    let origin = origin_ns(g);
    let found = |entity, matched| {
        Ok(Resolved {
            entity,
            matched,
            notes: Vec::new(),
        })
    };

    if let Ok(u) = Uuid::parse_str(t) {
        if let Some(e) = g.by_uuid(&u) {
            return found(e, "uuid");
        }
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(pid) = t.parse::<u32>() {
            let list = g.by_pid(pid);
            match list {
                [e] => return found(*e, "pid"),
                [] => {}
                many => {
                    let mut many = many.to_vec();
                    many.sort_by_key(|&e| g.entity(e).first_ns);
                    return Err(QueryError::Ambiguous {
                        target: t.into(),
                        hint: format!("{} processes had pid {pid}; give a UUID", many.len()),
                        candidates: many.iter().map(|&e| candidate(g, e, origin)).collect(),
                    });
                }
            }
        }
    }
    let timed =
        |list: &[EntityId], name: &str, matched| Ok(by_time(g, list, name, matched, opts, origin));
    let exact = g.by_name(t);
    if !exact.is_empty() {
        return timed(exact, t, "name");
    }
    let looks_like_path = !t.contains(":[") && !t.starts_with("unix:");
    if looks_like_path {
        let abs = if t.starts_with('/') {
            normalize(Path::new(t))
        } else {
            opts.cwd.as_deref().and_then(|cwd| normalize(&cwd.join(t)))
        };
        if let Some(abs) = abs {
            let list = g.by_name(&abs);
            if !list.is_empty() {
                return timed(list, &abs, "path");
            }
        }
    }
    let hex: String = t.chars().filter(|&c| c != '-').collect();
    if hex.len() >= 8 && hex.len() < 32 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        let lower = t.to_ascii_lowercase();
        let hits: Vec<EntityId> = g.uuid_prefix(&lower);
        match hits.as_slice() {
            [e] => return found(*e, "uuid-prefix"),
            [] => {}
            many => {
                return Err(QueryError::Ambiguous {
                    target: t.into(),
                    hint: "several UUIDs start with it".into(),
                    candidates: many
                        .iter()
                        .take(20)
                        .map(|&e| candidate(g, e, origin))
                        .collect(),
                })
            }
        }
    }

    // Suffix of a known name, on a `/` boundary, and process names.
    let rel = t.trim_start_matches("./");
    let mut names: BTreeSet<String> = BTreeSet::new();
    if looks_like_path && !rel.is_empty() {
        g.for_each_name(&mut |n| {
            if n.len() > rel.len()
                && n.ends_with(rel)
                && n.as_bytes()[n.len() - rel.len() - 1] == b'/'
            {
                names.insert(n.to_string());
            }
        });
    }
    let procs: Vec<EntityId> = if t.contains('/') {
        Vec::new()
    } else {
        g.processes_labelled(t)
    };
    match (names.len(), procs.len()) {
        (0, 0) => {}
        (1, 0) => {
            let name = names.iter().next().expect("one name");
            return timed(g.by_name(name), name, "suffix");
        }
        (0, 1) => return found(procs[0], "process-name"),
        _ => {
            let mut candidates: Vec<String> =
                names.iter().take(20).map(|n| n.to_string()).collect();
            candidates.extend(procs.iter().take(20).map(|&e| candidate(g, e, origin)));
            return Err(QueryError::Ambiguous {
                target: t.into(),
                hint: "it matches several names; give a full path, a pid or a UUID".into(),
                candidates,
            });
        }
    }
    Err(QueryError::NotFound {
        target: t.into(),
        suggestions: closest(g, t),
    })
}

/// Among the entities a name denoted over time, the one current at `at`, or
/// the latest/earliest.
fn by_time<G: GraphRead + ?Sized>(
    g: &G,
    list: &[EntityId],
    name: &str,
    matched: &'static str,
    opts: &ResolveOptions,
    origin: u64,
) -> Resolved {
    let mut list = list.to_vec();
    list.sort_by_key(|&e| (g.entity(e).first_ns, e));
    let pick = match opts.at {
        Some(at) => {
            let i = list.partition_point(|&e| g.entity(e).first_ns <= at);
            list[i.saturating_sub(1)]
        }
        None if opts.prefer_latest => *list.last().expect("non-empty"),
        None => list[0],
    };
    let mut notes = Vec::new();
    if list.len() > 1 {
        notes.push(format!(
            "{name:?} named {} different objects over time; using the one first seen at {} (choose another with --at or a UUID: {})",
            list.len(),
            fmt_rel(g.entity(pick).first_ns, origin),
            list.iter().map(|&e| g.entity(e).uuid.to_string()).collect::<Vec<_>>().join(", ")
        ));
    }
    Resolved {
        entity: pick,
        matched,
        notes,
    }
}

fn candidate<G: GraphRead + ?Sized>(g: &G, e: EntityId, origin: u64) -> String {
    let ent = &g.entity(e);
    format!(
        "{}  {}  first seen {}",
        ent.uuid,
        describe(g, ent.current(), &TextOptions::default()),
        fmt_rel(ent.first_ns, origin)
    )
}

/// Lexical normalization of an absolute path (`.`, `..`, `//`).
fn normalize(p: &Path) -> Option<String> {
    let s = p.to_str()?;
    if !s.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// Up to 5 known names (or pids) closest to `t`.
fn closest<G: GraphRead + ?Sized>(g: &G, t: &str) -> Vec<String> {
    if let Ok(pid) = t.parse::<u32>() {
        let mut pids: Vec<u32> = g.process_pids();
        pids.sort_unstable();
        pids.dedup();
        pids.sort_by_key(|&p| (p.abs_diff(pid), p));
        return pids
            .into_iter()
            .take(5)
            .map(|p| format!("pid {p}"))
            .collect();
    }
    let key = |s: &str| -> String {
        let s = if t.contains('/') {
            s
        } else {
            s.rsplit('/').next().unwrap_or(s)
        };
        s.to_lowercase()
    };
    let tk = key(t);
    let mut pool: BTreeSet<String> = BTreeSet::new();
    g.for_each_name(&mut |n| {
        pool.insert(n.to_string());
    });
    pool.extend(g.process_labels());
    let mut scored: Vec<(usize, usize, &str)> = pool
        .iter()
        .map(|n| {
            let nk = key(n);
            let d = if nk.contains(&tk) {
                0
            } else {
                levenshtein(&tk, &nk)
            };
            (d, n.len(), n.as_str())
        })
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(5)
        .map(|(_, _, n)| n.to_string())
        .collect()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(
            normalize(Path::new("/a//b/./c/../d")).as_deref(),
            Some("/a/b/d")
        );
        assert_eq!(normalize(Path::new("/../x")).as_deref(), Some("/x"));
        assert_eq!(normalize(Path::new("rel")), None);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
    }
}

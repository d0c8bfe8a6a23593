//! `content_matches` on synthetic recordings: matches within a call and
//! across two calls of one stream, continuity by offsets, capped calls,
//! regex overlap, entity resolution, and content adding no structure.

mod common;

use common::*;
use tomo_event::*;
use tomo_query::{content_matches, ContentPattern};

fn content(dir: Dir, obj: ObjRef, offset: Option<u64>, data: &[u8], total: u64) -> Op {
    Op::Content {
        call: if dir == Dir::Read {
            Call::read
        } else {
            Call::write
        },
        dir,
        fd: 3,
        obj,
        offset,
        total,
        data: data.to_vec(),
    }
}

/// An Io event and its Content, as the recorder logs them.
fn io_with(r: &mut Rec, pid: u32, dir: Dir, obj: ObjRef, off: Option<u64>, data: &[u8]) {
    let n = data.len() as u64;
    let op = Op::Io {
        call: if dir == Dir::Read {
            Call::read
        } else {
            Call::write
        },
        dir,
        fd: 3,
        obj: obj.clone(),
        offset: off,
        count: n,
        sock: None,
    };
    r.push_as(proc_ref(pid), op, n as i64);
    r.push_as(proc_ref(pid), content(dir, obj, off, data, n), n as i64);
}

#[test]
fn matches_within_and_across_calls() {
    let mut r = Rec::new();
    r.observed(10, "/bin/writer", &["writer"]);
    r.observed(11, "/bin/reader", &["reader"]);
    r.observed(12, "/bin/other", &["other"]);
    let f = file("/w/llama.txt");
    r.create(10, "/w/llama.txt");
    io_with(&mut r, 10, Dir::Write, f.clone(), Some(0), b"xxLlamas are");
    io_with(&mut r, 10, Dir::Write, f.clone(), Some(12), b" lame\n");
    // The reader reads it in one go; the other reads another file.
    io_with(
        &mut r,
        11,
        Dir::Read,
        f.clone(),
        Some(0),
        b"xxLlamas are lame\n",
    );
    io_with(
        &mut r,
        12,
        Dir::Read,
        file("/w/other.txt"),
        Some(0),
        b"Llamas are",
    );
    io_with(
        &mut r,
        12,
        Dir::Read,
        file("/w/other.txt"),
        Some(100),
        b" lame\n",
    );
    let g = r.graph();
    let p = ContentPattern::fixed("Llamas are lame").unwrap();
    let m = content_matches(&g, r.evs.iter(), &p);
    assert_eq!(m.len(), 2, "{m:#?}");
    assert_eq!(
        (m[0].dir, m[0].pid, m[0].offset, m[0].spans_calls),
        ("write", 10, Some(2), true)
    );
    assert_eq!(m[0].exe.as_deref(), Some("/bin/writer"));
    assert_eq!(m[0].object_name, "/w/llama.txt");
    assert_eq!(
        (m[1].dir, m[1].pid, m[1].offset, m[1].spans_calls),
        ("read", 11, Some(2), false)
    );
    assert_eq!(m[0].object, m[1].object);
    let fe = g.by_name("/w/llama.txt")[0];
    assert_eq!(
        m[0].object.as_deref(),
        Some(g.entities[fe as usize].uuid.to_string().as_str())
    );
    let pe = g.by_pid(10)[0];
    assert_eq!(
        m[0].process.as_deref(),
        Some(g.entities[pe as usize].uuid.to_string().as_str())
    );
    assert!(
        m[0].context.contains("Llamas are lame\\n"),
        "{}",
        m[0].context
    );
    // The process version current at the match: the node `tomo graph` shows.
    let node = m[1].process_node.unwrap();
    assert_eq!(g.nodes[node as usize].entity, g.by_pid(11)[0]);
    assert_eq!(m[1].process_version, Some(g.nodes[node as usize].version));

    // A regular expression, across the same cut.
    let m = content_matches(
        &g,
        r.evs.iter(),
        &ContentPattern::regex("L[a-z]+ are l").unwrap(),
    );
    assert_eq!(m.len(), 2);
    // The overlap bounds what a cut match can reach back to.
    let short = ContentPattern::regex("Llamas are lame")
        .unwrap()
        .with_overlap(4);
    assert_eq!(content_matches(&g, r.evs.iter(), &short).len(), 1);
    assert!(ContentPattern::regex("x*").is_err());
    assert!(ContentPattern::fixed("").is_err());
}

#[test]
fn capped_calls_and_streams_without_offsets() {
    let mut r = Rec::new();
    r.observed(10, "/bin/w", &["w"]);
    let p = pipe(7);
    // A pipe: stream offsets; the first call was capped at 6 of 10 bytes,
    // so the next call does not continue the kept bytes.
    let n = 10u64;
    r.push_as(proc_ref(10), io(Dir::Write, p.clone(), n), n as i64);
    r.push_as(
        proc_ref(10),
        content(Dir::Write, p.clone(), Some(0), b"Llamas", n),
        n as i64,
    );
    r.push_as(proc_ref(10), io(Dir::Write, p.clone(), 4), 4);
    r.push_as(
        proc_ref(10),
        content(Dir::Write, p.clone(), Some(10), b"lame", 4),
        4,
    );
    // Offsets unknown (an audit-like source): consecutive calls continue.
    r.push_as(
        proc_ref(10),
        content(Dir::Write, p.clone(), None, b"Alpa", 4),
        4,
    );
    r.push_as(
        proc_ref(10),
        content(Dir::Write, p.clone(), None, b"cas!", 4),
        4,
    );
    let g = r.graph();
    let m = content_matches(
        &g,
        r.evs.iter(),
        &ContentPattern::fixed("Llamaslame").unwrap(),
    );
    assert!(m.is_empty(), "{m:#?}");
    let m = content_matches(&g, r.evs.iter(), &ContentPattern::fixed("Alpacas").unwrap());
    assert_eq!(m.len(), 1);
    assert_eq!(
        (m[0].object_name.as_str(), m[0].object_kind, m[0].offset),
        ("pipe:[7]", "pipe", None)
    );
    assert!(m[0].spans_calls);
}

#[test]
fn content_adds_no_structure() {
    let mut with = Rec::new();
    let mut without = Rec::new();
    for r in [&mut with, &mut without] {
        r.observed(10, "/bin/w", &["w"]);
        r.create(10, "/w/a");
    }
    io_with(&mut with, 10, Dir::Write, file("/w/a"), Some(0), b"data");
    without.push_as(proc_ref(10), io(Dir::Write, file("/w/a"), 4), 4);
    // Content of a process never seen otherwise declares nothing either.
    with.push_as(
        proc_ref(99),
        content(Dir::Read, file("/w/b"), Some(0), b"x", 1),
        1,
    );
    let (a, b) = (with.graph(), without.graph());
    assert_eq!(a.entities.len(), b.entities.len());
    assert_eq!(a.nodes.len(), b.nodes.len());
    assert_eq!(a.edges.len(), b.edges.len());
    assert_eq!(a.edges[a.edges.len() - 1].bytes, 4);
}

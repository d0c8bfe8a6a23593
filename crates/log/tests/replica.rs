//! A replica rebuilt from shipped blocks is the same recording: same id,
//! events, chain head; duplicates are dropped, gaps and foreign blocks refused,
//! and a replica torn by a crash is repaired on reopen.

mod common;

use common::{meta, Gen};
use std::path::Path;
use tomo_log::{
    verify, Appended, Reader, Replica, ReplicaOrigin, ShippedBlock, Writer, WriterOptions,
};

/// A rotated recording of `n` events in small blocks and segments.
fn original(dir: &Path, n: usize, finish: bool) {
    let opts = WriterOptions {
        block_bytes: 4096,
        rotate_bytes: Some(40_000),
        ..WriterOptions::default()
    };
    let mut w = Writer::create(dir, meta(), opts).unwrap();
    let mut g = Gen::new(7);
    for _ in 0..n {
        w.append(&g.next_event()).unwrap();
    }
    if finish {
        w.finish().unwrap();
    } else {
        w.flush().unwrap();
        std::mem::forget(w);
    }
}

/// Every block of `dir` as (segment, index, header fields, payload).
struct Owned {
    segment: u32,
    index: u64,
    s: tomo_log::BlockSummary,
    payload: Vec<u8>,
}

/// The original's end: (events, blocks, chain head), when it was finished.
type End = Option<(u64, u64, [u8; 32])>;

fn blocks(dir: &Path) -> (ReplicaOrigin, Vec<Owned>, End) {
    let mut r = Reader::open(dir).unwrap();
    let mut out = Vec::new();
    let mut events = 0;
    while let Some(b) = r.next_block() {
        let s = b.unwrap();
        let p = r.block_end_position().unwrap();
        events = p.events;
        out.push(Owned {
            segment: s.segment,
            index: p.blocks - 1,
            payload: r.block_payload().unwrap().to_vec(),
            s,
        });
    }
    let origin = ReplicaOrigin {
        recording_id: r.recording_id(),
        meta_json: r.meta_json().to_vec(),
        schema_version: r.schema_version(),
    };
    let end = r
        .finished()
        .then(|| (events, out.len() as u64, r.chain_head()));
    (origin, out, end)
}

fn shipped(b: &Owned) -> ShippedBlock<&[u8]> {
    ShippedBlock {
        segment: b.segment,
        index: b.index,
        raw_len: b.s.raw_len,
        events: b.s.events,
        first_seq: b.s.first_seq,
        last_seq: b.s.last_seq,
        min_ts: b.s.min_ts,
        max_ts: b.s.max_ts,
        chain: b.s.chain,
        payload: &b.payload,
    }
}

#[test]
fn replica_is_the_same_recording_and_drops_duplicates() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    original(&src, 20_000, true);
    let (origin, bl, end) = blocks(&src);
    assert!(bl.iter().map(|b| b.segment).max().unwrap() >= 2, "rotated");
    let rep = t.path().join("rep");
    let mut r = Replica::open(&rep, origin.clone()).unwrap();
    for (i, b) in bl.iter().enumerate() {
        assert_eq!(r.append(&shipped(b)).unwrap(), Appended::Added);
        // At-least-once delivery: the block again, and an older one.
        assert_eq!(r.append(&shipped(b)).unwrap(), Appended::Duplicate);
        assert_eq!(r.append(&shipped(&bl[i / 2])).unwrap(), Appended::Duplicate);
    }
    let (ev, nb, head) = end.unwrap();
    r.finish(ev, nb, head).unwrap();
    let a = verify(&src).unwrap();
    let b = verify(&rep).unwrap();
    assert_eq!(a.chain_head, b.chain_head);
    assert_eq!(a.events, b.events);
    assert!(b.damage.is_none() && b.finished);
    let (ma, ea, _) = tomo_log::read_all(&src).unwrap();
    let (mb, eb, _) = tomo_log::read_all(&rep).unwrap();
    assert_eq!((ma, ea), (mb, eb));
}

#[test]
fn gaps_and_foreign_blocks_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    original(&a, 3_000, true);
    original(&b, 3_000, true);
    let (oa, ba, _) = blocks(&a);
    let (_, bb, _) = blocks(&b);
    let mut r = Replica::open(&t.path().join("rep"), oa.clone()).unwrap();
    let e = r.append(&shipped(&ba[1])).unwrap_err().to_string();
    assert!(e.contains("gap: block 1"), "{e}");
    let e = r.append(&shipped(&bb[0])).unwrap_err().to_string();
    assert!(e.contains("chain value mismatch"), "{e}");
    let mut tampered = shipped(&ba[0]);
    let mut p = ba[0].payload.clone();
    p[10] ^= 1;
    tampered.payload = &p;
    assert!(r.append(&tampered).is_err());
    assert_eq!(r.append(&shipped(&ba[0])).unwrap(), Appended::Added);
    // Another recording's replica directory is not reused.
    drop(r);
    let (ob, _, _) = blocks(&b);
    let e = Replica::open(&t.path().join("rep"), ob)
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds recording"), "{e}");
}

#[test]
fn reopen_continues_and_repairs_a_torn_tail() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    original(&src, 20_000, false);
    let (origin, bl, end) = blocks(&src);
    assert!(end.is_none(), "unfinished original");
    let rep = t.path().join("rep");
    let half = bl.len() / 2;
    {
        let mut r = Replica::open(&rep, origin.clone()).unwrap();
        for b in &bl[..half] {
            r.append(&shipped(b)).unwrap();
        }
        r.sync().unwrap();
    }
    // A crash in the middle of writing the next block: a torn tail.
    let last = std::fs::read_dir(&rep)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap();
    std::io::Write::write_all(&mut f, b"TBLK\x01\0\0\0garbage").unwrap();
    drop(f);
    let mut r = Replica::open(&rep, origin.clone()).unwrap();
    assert!(r.repaired.is_some());
    assert_eq!(r.blocks(), half as u64);
    for b in &bl {
        r.append(&shipped(b)).unwrap();
    }
    r.sync().unwrap();
    drop(r);
    let a = verify(&src).unwrap();
    let b = verify(&rep).unwrap();
    assert_eq!((a.chain_head, a.events), (b.chain_head, b.events));
    assert!(b.damage.is_none());
    // Reopening a complete replica is a no-op.
    let r = Replica::open(&rep, origin).unwrap();
    assert!(r.repaired.is_none());
    assert_eq!(r.blocks(), bl.len() as u64);
}

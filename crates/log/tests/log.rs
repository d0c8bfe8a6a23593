//! Round trips, rotation, time-based sealing, cut, verify, header errors.

mod common;

use common::{meta, Gen};
use std::path::Path;
use std::time::Duration;
use tomo_event::Event;
use tomo_log::*;

fn small_blocks() -> WriterOptions {
    WriterOptions {
        block_bytes: 16 << 10,
        sync_interval: None,
        flush_interval: Duration::from_secs(3600),
        ..Default::default()
    }
}

fn write(path: &Path, events: &[Event], opts: WriterOptions) -> WriteSummary {
    let mut w = Writer::create(path, meta(), opts).unwrap();
    for ev in events {
        w.append(ev).unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn round_trip_single_file_many_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.tomo");
    let events = Gen::new(1).take(20_000);
    let s = write(&path, &events, small_blocks());
    assert_eq!(s.events, 20_000);
    assert_eq!(s.pending_events, 0);
    assert!(s.blocks > 10, "expected many blocks, got {}", s.blocks);
    assert_eq!(s.segments, 1);
    assert_eq!(s.bytes, std::fs::metadata(&path).unwrap().len());

    let (m, back, damage) = read_all(&path).unwrap();
    assert_eq!(m, meta());
    assert!(damage.is_none());
    assert_eq!(back, events);

    let rep = verify(&path).unwrap();
    assert!(rep.ok(), "{rep}");
    assert_eq!(rep.events, 20_000);
    assert_eq!(rep.blocks, s.blocks);
    assert_eq!(rep.chain_head, s.chain_head);
    assert_eq!(rep.recording_id, s.recording_id);
    assert_eq!(rep.bytes, s.bytes);
    assert_eq!(rep.valid_bytes, s.bytes);
}

#[test]
fn default_options_round_trip_and_empty_recording() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.tomo");
    let events = Gen::new(2).take(3000);
    let s = write(&path, &events, WriterOptions::default());
    assert_eq!(read_all(&path).unwrap().1, events);
    assert_eq!(s.blocks, s.raw_bytes.div_ceil(256 << 10));

    let empty = dir.path().join("empty.tomo");
    let s = write(&empty, &[], WriterOptions::default());
    assert_eq!(s.blocks, 0);
    let (_, evs, dmg) = read_all(&empty).unwrap();
    assert!(evs.is_empty() && dmg.is_none());
    let rep = verify(&empty).unwrap();
    assert!(rep.ok());
    assert_eq!(rep.first_ts, None);
}

#[test]
fn round_trip_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec");
    let events = Gen::new(3).take(20_000);
    let opts = WriterOptions {
        rotate_bytes: Some(30 << 10),
        ..small_blocks()
    };
    let s = write(&path, &events, opts.clone());
    assert!(
        s.segments >= 3,
        "expected several segments, got {}",
        s.segments
    );
    let mut names: Vec<String> = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len() as u32, s.segments);
    assert_eq!(names[0], "00000000.tseg");
    assert_eq!(names[1], "00000001.tseg");

    let (_, back, damage) = read_all(&path).unwrap();
    assert!(damage.is_none());
    assert_eq!(back, events);
    let rep = verify(&path).unwrap();
    assert!(rep.ok(), "{rep}");
    assert_eq!(rep.segments, s.segments);
    assert_eq!(rep.chain_head, s.chain_head);
    assert_eq!(rep.bytes, s.bytes);

    // A later segment on its own is refused with a helpful message.
    let err = Reader::open(&path.join("00000001.tseg")).err().unwrap();
    assert!(matches!(err, LogError::NotARecording { .. }), "{err}");
    assert!(err.to_string().contains("open its directory"), "{err}");

    // The first segment alone reads as an unfinished recording.
    let mut r = Reader::open(&path.join("00000000.tseg")).unwrap();
    let n = r.by_ref().inspect(|e| assert!(e.is_ok())).count();
    assert!(n > 0 && n < events.len());
    assert!(!r.finished());

    // A directory that already holds a recording is not overwritten.
    let err = Writer::create(&path, meta(), opts).err().unwrap();
    assert!(matches!(err, LogError::Invalid { .. }), "{err}");
}

#[test]
fn rotation_missing_or_reordered_segments_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec");
    let events = Gen::new(4).take(20_000);
    let opts = WriterOptions {
        rotate_bytes: Some(30 << 10),
        ..small_blocks()
    };
    let s = write(&path, &events, opts);
    assert!(s.segments >= 4);

    // Events in segment 0.
    let mut r = Reader::open(&path.join("00000000.tseg")).unwrap();
    let in_seg0 = r.by_ref().count() as u64;

    // Remove segment 1: damage named after the missing file.
    let copy = dir.path().join("copy");
    copy_dir(&path, &copy);
    std::fs::remove_file(copy.join("00000001.tseg")).unwrap();
    let (_, back, damage) = read_all(&copy).unwrap();
    let d = damage.expect("damage");
    assert_eq!(d.path, copy.join("00000001.tseg"));
    assert_eq!(d.offset, 0);
    assert_eq!(d.events_before, in_seg0);
    assert_eq!(back.len() as u64, in_seg0);

    // Replace segment 1 by segment 2 (renamed): the chain catches it.
    let copy2 = dir.path().join("copy2");
    copy_dir(&path, &copy2);
    std::fs::remove_file(copy2.join("00000001.tseg")).unwrap();
    std::fs::rename(copy2.join("00000002.tseg"), copy2.join("00000001.tseg")).unwrap();
    let (_, back, damage) = read_all(&copy2).unwrap();
    let d = damage.expect("damage");
    assert_eq!(d.path, copy2.join("00000001.tseg"));
    assert_eq!(back.len() as u64, in_seg0);

    // Dropping the last segment is a clean-looking but unfinished recording
    // whose chain head no longer matches.
    let copy3 = dir.path().join("copy3");
    copy_dir(&path, &copy3);
    std::fs::remove_file(copy3.join(format!("{:08}.tseg", s.segments - 1))).unwrap();
    let rep = verify(&copy3).unwrap();
    assert!(rep.damage.is_none());
    assert!(!rep.finished);
    assert_ne!(rep.chain_head, s.chain_head);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn seals_by_time_and_by_flush() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.tomo");
    let opts = WriterOptions {
        block_bytes: 1 << 20,
        flush_interval: Duration::from_millis(50),
        sync_interval: Some(Duration::ZERO),
        ..Default::default()
    };
    let mut g = Gen::new(5);
    let mut w = Writer::create(&path, meta(), opts).unwrap();
    w.append(&g.next_event()).unwrap();
    assert_eq!(w.summary().blocks, 0, "sealed too early");
    assert_eq!(w.summary().pending_events, 1);
    std::thread::sleep(Duration::from_millis(80));
    w.append(&g.next_event()).unwrap();
    let s = w.summary();
    assert_eq!((s.blocks, s.events, s.pending_events), (1, 2, 0));
    // A concurrent reader sees the sealed block while the writer lives.
    let (_, evs, dmg) = read_all(&path).unwrap();
    assert_eq!(evs.len(), 2);
    assert!(dmg.is_none());

    w.append(&g.next_event()).unwrap();
    assert_eq!(w.summary().blocks, 1);
    w.flush().unwrap();
    assert_eq!(w.summary().blocks, 2);
    w.flush().unwrap(); // nothing open: no empty block
    assert_eq!(w.summary().blocks, 2);
    assert_eq!(read_all(&path).unwrap().1.len(), 3);
    let s = w.finish().unwrap();
    assert_eq!((s.blocks, s.events), (2, 3));
}

#[test]
fn drop_without_finish_keeps_events_but_is_unfinished() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.tomo");
    let events = Gen::new(6).take(100);
    {
        let mut w = Writer::create(&path, meta(), WriterOptions::default()).unwrap();
        for ev in &events {
            w.append(ev).unwrap();
        }
    }
    let rep = verify(&path).unwrap();
    assert_eq!(rep.events, 100);
    assert!(rep.damage.is_none());
    assert!(!rep.finished);
    assert!(!rep.ok());
}

#[test]
fn block_summaries_and_mixed_iteration() {
    let events = Gen::new(7).take(5000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.tomo");
    let s = write(&path, &events, small_blocks());
    let mut r = Reader::open(&path).unwrap();
    let blocks: Vec<BlockSummary> = r.blocks().map(|b| b.unwrap()).collect();
    assert_eq!(blocks.len() as u64, s.blocks);
    assert_eq!(blocks.iter().map(|b| b.events as u64).sum::<u64>(), 5000);
    assert!(r.finished());
    assert_eq!(r.events_read(), 0);
    let mut seen = 0usize;
    for b in &blocks {
        let evs = &events[seen..seen + b.events as usize];
        assert_eq!(b.first_seq, evs[0].seq);
        assert_eq!(b.last_seq, evs.last().unwrap().seq);
        assert_eq!(b.min_ts, evs.iter().map(|e| e.ts_ns).min().unwrap());
        assert_eq!(b.max_ts, evs.iter().map(|e| e.ts_ns).max().unwrap());
        assert_eq!(b.segment, 0);
        seen += b.events as usize;
    }
    assert!(blocks
        .windows(2)
        .all(|w| w[0].offset + 92 + w[0].payload_len as u64 == w[1].offset));

    // Skip block 0, read two events of block 1, skip the rest of it, read block 2.
    let mut r = Reader::open(&path).unwrap();
    r.next_block().unwrap().unwrap();
    let b1 = r.next_block().unwrap().unwrap();
    assert_eq!(b1, blocks[1]);
    let e0 = r.next().unwrap().unwrap();
    let e1 = r.next().unwrap().unwrap();
    assert_eq!(e0, events[blocks[0].events as usize]);
    assert_eq!(e1, events[blocks[0].events as usize + 1]);
    let b2 = r.next_block().unwrap().unwrap();
    assert_eq!(b2, blocks[2]);
    let first_of_2 = (blocks[0].events + blocks[1].events) as usize;
    assert_eq!(r.next().unwrap().unwrap(), events[first_of_2]);
    // Plain iteration continues across the following blocks to the end.
    let rest: Vec<Event> = r.map(|e| e.unwrap()).collect();
    assert_eq!(rest, events[first_of_2 + 1..]);
}

fn ts_events(ts: &[u64]) -> Vec<Event> {
    let mut g = Gen::new(8);
    ts.iter()
        .map(|&t| {
            let mut e = g.next_event();
            e.ts_ns = t;
            e
        })
        .collect()
}

#[test]
fn cut_window_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.tomo");
    // Timestamps 0, 10, 20, ... with a few out-of-order ones.
    let mut ts: Vec<u64> = (0..20_000u64).map(|i| i * 10).collect();
    ts[5000] = 150_000; // inside a window that otherwise ends earlier
    ts[12_000] = 3;
    let events = ts_events(&ts);
    write(
        &input,
        &events,
        WriterOptions {
            block_bytes: 4 << 10,
            ..small_blocks()
        },
    );

    for (from, to) in [
        (0u64, 200_000u64),
        (60_000, 100_000),
        (50_000, 100_000),
        (50_005, 100_005),
        (100, 100),
        (0, 1),
        (199_990, u64::MAX),
        (u64::MAX, u64::MAX),
    ] {
        let out = dir.path().join(format!("cut-{from}-{to}.tomo"));
        let s = cut(&input, &out, from, to).unwrap();
        let expect: Vec<Event> = events
            .iter()
            .filter(|e| from <= e.ts_ns && e.ts_ns < to)
            .cloned()
            .collect();
        let (m, got, dmg) = read_all(&out).unwrap();
        assert!(dmg.is_none());
        assert_eq!(m.cut_from, Some((from, to)));
        assert_eq!(m.command, meta().command);
        assert_eq!(got.len(), expect.len(), "window [{from}, {to})");
        assert_eq!(got, expect, "window [{from}, {to})");
        assert_eq!(s.events_out, expect.len() as u64);
        assert_eq!(s.output.events, expect.len() as u64);
        assert!(s.damage.is_none());
        assert!(verify(&out).unwrap().ok());
        if (from, to) == (60_000, 100_000) {
            assert!(
                s.blocks_skipped > 0 && s.blocks_copied > 0 && s.blocks_filtered > 0,
                "{s:?}"
            );
            // Inclusive start, exclusive end.
            assert_eq!(got.first().unwrap().ts_ns, 60_000);
            assert_eq!(got.last().unwrap().ts_ns, 99_990);
        }
    }

    let err = cut(&input, &dir.path().join("bad.tomo"), 10, 5)
        .err()
        .unwrap();
    assert!(matches!(err, LogError::Invalid { .. }));
    let err = cut(&input, &input, 0, 10).err().unwrap();
    assert!(matches!(err, LogError::Invalid { .. }));
    assert_eq!(read_all(&input).unwrap().1.len(), 20_000, "input untouched");
}

#[test]
fn cut_rotated_input_and_damaged_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let ts: Vec<u64> = (0..20_000u64).map(|i| i * 10).collect();
    let events = ts_events(&ts);
    write(
        &input,
        &events,
        WriterOptions {
            rotate_bytes: Some(20 << 10),
            ..small_blocks()
        },
    );
    let out = dir.path().join("out.tomo");
    let s = cut(&input, &out, 30_000, 170_000).unwrap();
    let expect: Vec<Event> = events
        .iter()
        .filter(|e| (30_000..170_000).contains(&e.ts_ns))
        .cloned()
        .collect();
    assert_eq!(read_all(&out).unwrap().1, expect);
    assert_eq!(s.events_out, expect.len() as u64);

    // Damage the third segment: the cut keeps what precedes it and says so.
    let seg = input.join("00000002.tseg");
    let mut bytes = std::fs::read(&seg).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x40;
    std::fs::write(&seg, bytes).unwrap();
    let out2 = dir.path().join("out2.tomo");
    let s = cut(&input, &out2, 0, u64::MAX).unwrap();
    let d = s.damage.clone().expect("damage reported");
    assert_eq!(d.path, seg);
    let (_, got, dmg) = read_all(&out2).unwrap();
    assert!(dmg.is_none());
    assert_eq!(got.len() as u64, d.events_before);
    assert_eq!(got, events[..got.len()]);
}

#[test]
fn verify_reports_gaps_and_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.tomo");
    let mut events = Gen::new(9).take(1000);
    // seq: 0..=99, then 105.., then a regression.
    for (i, e) in events.iter_mut().enumerate() {
        e.seq = if i < 100 { i as u64 } else { i as u64 + 5 };
    }
    events[500].seq = 3;
    let s = write(&path, &events, small_blocks());
    let rep = verify(&path).unwrap();
    assert!(rep.ok(), "{rep}");
    assert_eq!(rep.events, 1000);
    assert_eq!(rep.first_ts, Some(events[0].ts_ns));
    assert_eq!(rep.last_ts, Some(events[999].ts_ns));
    // 99 -> 105 (5 missing), 504 -> 3 (regression), 3 -> 506 (502 "missing").
    assert_eq!(rep.seq_gaps, 3);
    assert_eq!(rep.seq_regressions, 1);
    assert_eq!(rep.seq_missing, 5 + 502);
    assert_eq!(
        rep.gap_samples[0],
        SeqGap {
            after: 99,
            next: 105
        }
    );
    assert_eq!(rep.chain_head, s.chain_head);
    assert_eq!(rep.chain_head.len(), 64);
    let text = rep.to_string();
    assert!(
        text.contains(&s.chain_head) && text.contains("damage      none"),
        "{text}"
    );
    // Serializable for `--json`.
    let json = serde_json::to_string(&rep).unwrap();
    assert!(json.contains("\"chain_head\""));
}

#[test]
fn corrupted_header_is_not_a_recording() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.tomo");
    write(&path, &Gen::new(10).take(10), WriterOptions::default());
    let good = std::fs::read(&path).unwrap();

    let check = |bytes: &[u8], want: &str| {
        let p = dir.path().join("bad.tomo");
        std::fs::write(&p, bytes).unwrap();
        let err = Reader::open(&p).expect_err("must fail");
        let msg = err.to_string();
        assert!(matches!(err, LogError::NotARecording { .. }), "{msg}");
        assert!(msg.contains("bad.tomo") && msg.contains(want), "{msg}");
        let err = read_all(&p).expect_err("must fail");
        assert!(matches!(err, LogError::NotARecording { .. }));
        let err = verify(&p).expect_err("must fail");
        assert!(matches!(err, LogError::NotARecording { .. }));
    };
    check(b"", "empty");
    check(
        b"hello world, this is text and not a recording at all........................",
        "bad magic",
    );
    check(&good[..40], "truncated header");
    let mut b = good.clone();
    b[80] ^= 1; // inside the JSON metadata
    check(&b, "header checksum mismatch");
    let mut b = good.clone();
    b[20] ^= 1; // recording id
    check(&b, "checksum");

    let mut b = good.clone();
    b[8] = 9; // format version
    let p = dir.path().join("v9.tomo");
    std::fs::write(&p, &b).unwrap();
    let err = Reader::open(&p).err().unwrap();
    assert!(matches!(err, LogError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("format version 9"), "{err}");

    let err = Reader::open(&dir.path().join("missing.tomo"))
        .err()
        .unwrap();
    assert!(matches!(err, LogError::Io { .. }));
    assert!(err.to_string().contains("missing.tomo"));
    let err = Reader::open(dir.path()).err().unwrap(); // directory without segments
    assert!(matches!(err, LogError::NotARecording { .. }), "{err}");
}

#[test]
fn writer_rejects_bad_options() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.tomo");
    for opts in [
        WriterOptions {
            block_bytes: 0,
            ..Default::default()
        },
        WriterOptions {
            block_bytes: MAX_RAW_LEN,
            ..Default::default()
        },
        WriterOptions {
            zstd_level: 1000,
            ..Default::default()
        },
    ] {
        assert!(matches!(
            Writer::create(&p, meta(), opts),
            Err(LogError::Invalid { .. })
        ));
    }
    assert!(matches!(
        Writer::create(dir.path(), meta(), WriterOptions::default()),
        Err(LogError::Invalid { .. })
    ));
}

#[test]
fn huge_event_spans_its_own_block() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.tomo");
    let mut events = Gen::new(11).take(10);
    if let tomo_event::Op::Exec { argv, .. } = &mut events[5].op {
        argv.push("x".repeat(3 << 20));
    } else {
        events[5].op = tomo_event::Op::Observed {
            exe: None,
            argv: vec!["y".repeat(3 << 20)],
            cwd: None,
        };
    }
    let s = write(&path, &events, small_blocks());
    assert!(s.blocks >= 2);
    assert_eq!(read_all(&path).unwrap().1, events);

    let mut w = Writer::create(&dir.path().join("big.tomo"), meta(), small_blocks()).unwrap();
    let mut ev = events[0].clone();
    ev.op = tomo_event::Op::Observed {
        exe: None,
        argv: vec!["z".repeat(MAX_EVENT_LEN)],
        cwd: None,
    };
    assert!(matches!(w.append(&ev), Err(LogError::EventTooLarge { .. })));
    w.append(&events[0]).unwrap(); // the writer is still usable
    assert_eq!(w.finish().unwrap().events, 1);
}

#[test]
fn host_name_round_trips_and_older_meta_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    // A simulated host's name is kept (and survives a cut).
    let named = RecordingMeta {
        host_name: Some("hostA".into()),
        ..meta()
    };
    let path = dir.path().join("named.tomo");
    let events = Gen::new(7).take(100);
    let mut w = Writer::create(&path, named.clone(), small_blocks()).unwrap();
    for ev in &events {
        w.append(ev).unwrap();
    }
    w.finish().unwrap();
    assert_eq!(read_all(&path).unwrap().0, named);
    let out = dir.path().join("cut.tomo");
    cut(&path, &out, 0, u64::MAX).unwrap();
    assert_eq!(
        read_all(&out).unwrap().0.host_name.as_deref(),
        Some("hostA")
    );
    // Without a name, the header is what builds before the field wrote:
    // no `host_name` key at all.
    let path = dir.path().join("plain.tomo");
    write(&path, &events, small_blocks());
    let bytes = std::fs::read(&path).unwrap();
    assert!(!bytes.windows(9).any(|w| w == b"host_name"));
    // And the metadata those builds wrote (FORMAT.md's example) reads, with no name.
    let old: RecordingMeta = serde_json::from_str(
        r#"{"host":[17,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1],"boot":[34,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2],"source":"ptrace","command":["make","-j2"],"cut_from":null}"#,
    )
    .unwrap();
    assert_eq!(old.host_name, None);
    assert_eq!(old.source, "ptrace");
}

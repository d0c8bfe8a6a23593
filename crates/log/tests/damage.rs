//! Crash simulation (torn tails, garbage), bit flips in every region, and
//! tampering with recomputed checksums.

mod common;

use common::{meta, Gen};
use std::time::Duration;
use tomo_event::Event;
use tomo_log::*;

struct Recording {
    bytes: Vec<u8>,
    events: Vec<Event>,
    /// (offset, events before the block) of every block.
    blocks: Vec<(u64, u64)>,
    /// Offset of the first block (= header length).
    header_len: u64,
    /// Offset of the trailer (= end of the last block).
    trailer_at: u64,
}

fn record(n: usize, block_bytes: usize, seed: u64) -> Recording {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.tomo");
    let events = Gen::new(seed).take(n);
    let opts = WriterOptions {
        block_bytes,
        flush_interval: Duration::from_secs(3600),
        sync_interval: None,
        ..Default::default()
    };
    let mut w = Writer::create(&path, meta(), opts).unwrap();
    for e in &events {
        w.append(e).unwrap();
    }
    w.finish().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let mut r = Reader::from_bytes(bytes.clone()).unwrap();
    let mut blocks = Vec::new();
    let mut before = 0;
    let mut end = 0;
    for b in r.blocks() {
        let b = b.unwrap();
        blocks.push((b.offset, before));
        before += b.events as u64;
        end = b.offset + 92 + b.payload_len as u64;
    }
    assert!(r.finished());
    let header_len = blocks[0].0;
    Recording {
        bytes,
        events,
        blocks,
        header_len,
        trailer_at: end,
    }
}

/// Reads `bytes`, returning the events and the damage (panics on other errors).
fn read(bytes: Vec<u8>) -> (Vec<Event>, Option<Damage>, bool) {
    let mut r = Reader::from_bytes(bytes).unwrap();
    let mut evs = Vec::new();
    let mut damage = None;
    for e in r.by_ref() {
        match e {
            Ok(e) => evs.push(e),
            Err(e) => {
                assert!(damage.is_none(), "two errors");
                damage = Some(e.damage().expect("damage error"));
            }
        }
    }
    assert_eq!(r.damage().cloned(), damage);
    (evs, damage, r.finished())
}

/// Like [`read`] but only walks the block headers (crc and chain verified,
/// nothing decompressed): enough to locate damage, and 10x faster in the
/// unoptimized test build. Returns the events in intact blocks.
fn scan(bytes: Vec<u8>) -> (u64, Option<Damage>) {
    let mut r = Reader::from_bytes(bytes).unwrap();
    let mut events = 0;
    let mut damage = None;
    for b in r.blocks() {
        match b {
            Ok(b) => events += b.events as u64,
            Err(e) => damage = Some(e.damage().expect("damage error")),
        }
    }
    (events, damage)
}

#[test]
fn torn_last_block_at_every_offset() {
    // Small blocks keep the (unoptimized) test fast: every prefix is read.
    let rec = record(400, 4 << 10, 1);
    assert!(rec.blocks.len() >= 4, "{}", rec.blocks.len());
    let (last_off, before_last) = *rec.blocks.last().unwrap();
    // Simulates a kill -9 during the write of the last block: the file ends
    // anywhere inside it (or inside the trailer).
    for len in last_off..rec.bytes.len() as u64 {
        let (evs, damage, finished) = read(rec.bytes[..len as usize].to_vec());
        if len == last_off {
            // Cut exactly at a block boundary: a clean, unfinished recording.
            assert!(damage.is_none());
            assert!(!finished);
            assert_eq!(evs, rec.events[..before_last as usize]);
        } else if len < rec.trailer_at {
            let d = damage.unwrap_or_else(|| panic!("no damage at len {len}"));
            assert_eq!(d.offset, last_off, "len {len}: {d}");
            assert_eq!(d.events_before, before_last);
            assert_eq!(d.path.to_str(), Some("<memory>"));
            assert_eq!(evs, rec.events[..before_last as usize], "len {len}");
        } else if len == rec.trailer_at {
            assert!(damage.is_none() && !finished);
            assert_eq!(evs, rec.events);
        } else {
            let d = damage.unwrap_or_else(|| panic!("no damage at len {len}"));
            assert_eq!(d.offset, rec.trailer_at, "len {len}: {d}");
            assert_eq!(d.events_before, rec.events.len() as u64);
            assert_eq!(evs, rec.events);
        }
    }
    let (evs, damage, finished) = read(rec.bytes.clone());
    assert!(damage.is_none() && finished);
    assert_eq!(evs, rec.events);
}

#[test]
fn torn_header_of_a_file() {
    let rec = record(100, 8 << 10, 2);
    for len in 0..rec.header_len {
        let err = Reader::from_bytes(rec.bytes[..len as usize].to_vec()).expect_err("must fail");
        assert!(
            matches!(err, LogError::NotARecording { .. }),
            "len {len}: {err}"
        );
    }
    // Header alone: a valid, empty, unfinished recording.
    let (evs, damage, finished) = read(rec.bytes[..rec.header_len as usize].to_vec());
    assert!(evs.is_empty() && damage.is_none() && !finished);
}

#[test]
fn garbage_after_the_last_block() {
    let rec = record(3000, 8 << 10, 3);
    let unfinished = &rec.bytes[..rec.trailer_at as usize];
    let mut rng = common::Rng::new(9);
    for garbage in [
        vec![0u8; 1],
        vec![0u8; 4096],
        (0..300).map(|_| rng.next() as u8).collect::<Vec<u8>>(),
        b"TBLK".to_vec(),
        b"TEND".to_vec(),
        rec.bytes[rec.blocks[1].0 as usize..rec.blocks[2].0 as usize].to_vec(), // a replayed block
    ] {
        let mut b = unfinished.to_vec();
        b.extend_from_slice(&garbage);
        let (evs, damage, _) = read(b);
        let d = damage.expect("damage");
        assert_eq!(d.offset, rec.trailer_at, "{d}");
        assert_eq!(d.events_before, rec.events.len() as u64);
        assert_eq!(evs, rec.events);

        // After a finished recording's trailer, too.
        let mut b = rec.bytes.clone();
        b.extend_from_slice(&garbage);
        let (evs, damage, _) = read(b);
        let d = damage.expect("damage");
        assert_eq!(d.offset, rec.bytes.len() as u64, "{d}");
        assert!(
            d.reason.contains("after the end-of-recording trailer"),
            "{d}"
        );
        assert_eq!(evs, rec.events);
    }
}

#[test]
fn every_bit_flip_is_detected_at_the_right_block() {
    let rec = record(150, 1 << 10, 4);
    assert!(rec.blocks.len() >= 5, "{}", rec.blocks.len());
    assert!(
        rec.bytes.len() < 20_000,
        "keep the test fast: {} bytes",
        rec.bytes.len()
    );
    // Every bit of every header (file, blocks, trailer), and one bit of
    // every payload byte, in turn (all bits of all bytes is slow unoptimized).
    let in_header = |pos: u64| {
        pos < rec.header_len
            || pos >= rec.trailer_at
            || rec.blocks.iter().any(|(o, _)| *o <= pos && pos < o + 92)
    };
    for pos in 0..rec.bytes.len() {
        let bits = if in_header(pos as u64) {
            0..8
        } else {
            pos % 8..pos % 8 + 1
        };
        for bit in bits {
            let mut b = rec.bytes.clone();
            b[pos] ^= 1 << bit;
            let pos = pos as u64;
            if pos < rec.header_len {
                match Reader::from_bytes(b) {
                    Err(LogError::NotARecording { .. }) | Err(LogError::Unsupported { .. }) => {}
                    Err(e) => panic!("byte {pos} bit {bit}: unexpected error {e}"),
                    Ok(_) => panic!("byte {pos} bit {bit}: header damage not detected"),
                }
                continue;
            }
            // Decode everything for a sample; walk the blocks for the rest
            // (every single-bit error is caught by the crc of its block).
            let (n, damage) = if (pos + bit as u64).is_multiple_of(13) {
                let (evs, damage, _) = read(b);
                (evs.len() as u64, damage)
            } else {
                scan(b)
            };
            let d = damage.unwrap_or_else(|| panic!("byte {pos} bit {bit}: not detected"));
            // The damaged region is the block (or trailer) containing `pos`.
            let (off, before) = rec
                .blocks
                .iter()
                .rev()
                .find(|(o, _)| *o <= pos)
                .copied()
                .filter(|_| pos < rec.trailer_at)
                .unwrap_or((rec.trailer_at, rec.events.len() as u64));
            assert_eq!(d.offset, off, "byte {pos} bit {bit}: {d}");
            assert_eq!(d.events_before, before, "byte {pos} bit {bit}: {d}");
            assert_eq!(n, before, "byte {pos} bit {bit}");
        }
    }
}

#[test]
fn tampering_with_recomputed_crc_breaks_the_chain() {
    let rec = record(3000, 8 << 10, 5);
    let (off1, before1) = rec.blocks[1];
    let (off2, _) = rec.blocks[2];
    let payload_len = u32::from_le_bytes(
        rec.bytes[off1 as usize + 8..off1 as usize + 12]
            .try_into()
            .unwrap(),
    );

    // Change a payload byte of block 1 and fix its crc: the chain notices.
    let mut b = rec.bytes.clone();
    let p = off1 as usize + 92 + payload_len as usize / 2;
    b[p] ^= 0xff;
    fix_crc(&mut b, off1 as usize);
    let (evs, damage, _) = read(b);
    let d = damage.unwrap();
    assert_eq!(d.offset, off1);
    assert!(d.reason.contains("hash chain"), "{d}");
    assert_eq!(evs.len() as u64, before1);

    // Change a header field (max_ts) and fix the crc.
    let mut b = rec.bytes.clone();
    b[off1 as usize + 48] ^= 1;
    fix_crc(&mut b, off1 as usize);
    let d = read(b).1.unwrap();
    assert_eq!(d.offset, off1);
    assert!(d.reason.contains("hash chain"), "{d}");

    // Swap blocks 1 and 2 (each keeps a valid crc).
    let (off3, _) = rec.blocks[3];
    let mut b = rec.bytes[..off1 as usize].to_vec();
    b.extend_from_slice(&rec.bytes[off2 as usize..off3 as usize]);
    b.extend_from_slice(&rec.bytes[off1 as usize..off2 as usize]);
    b.extend_from_slice(&rec.bytes[off3 as usize..]);
    let d = read(b).1.unwrap();
    assert_eq!(d.offset, off1);
    assert!(d.reason.contains("hash chain"), "{d}");

    // Drop block 1 entirely.
    let mut b = rec.bytes[..off1 as usize].to_vec();
    b.extend_from_slice(&rec.bytes[off2 as usize..]);
    let d = read(b).1.unwrap();
    assert_eq!(d.offset, off1);

    // Splice in a block from another recording with identical content.
    let other = record(3000, 8 << 10, 5);
    let mut b = rec.bytes[..off1 as usize].to_vec();
    b.extend_from_slice(&other.bytes[other.blocks[1].0 as usize..]);
    let d = read(b).1.unwrap();
    assert_eq!(d.offset, off1);
    assert!(d.reason.contains("hash chain"), "{d}");
}

#[test]
fn truncating_whole_blocks_needs_the_chain_head() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.tomo");
    let events = Gen::new(6).take(3000);
    let opts = WriterOptions {
        block_bytes: 8 << 10,
        sync_interval: None,
        ..Default::default()
    };
    let mut w = Writer::create(&path, meta(), opts).unwrap();
    for e in &events {
        w.append(e).unwrap();
    }
    let head = w.finish().unwrap().chain_head;
    let rec = Reader::from_bytes(std::fs::read(&path).unwrap()).unwrap();
    drop(rec);
    let bytes = std::fs::read(&path).unwrap();
    let mut r = Reader::from_bytes(bytes.clone()).unwrap();
    let blocks: Vec<BlockSummary> = r.blocks().map(|b| b.unwrap()).collect();
    let last = blocks.last().unwrap();
    // Drop the trailer and the last block: reads cleanly, only the missing
    // "finished" mark and the chain head tell.
    std::fs::write(&path, &bytes[..last.offset as usize]).unwrap();
    let rep = verify(&path).unwrap();
    assert!(rep.damage.is_none());
    assert!(!rep.finished);
    assert_ne!(rep.chain_head, head);
    assert_eq!(rep.events, 3000 - last.events as u64);
}

/// Recomputes the crc32c of the block at `off` (header[0..88] + payload).
fn fix_crc(b: &mut [u8], off: usize) {
    let plen = u32::from_le_bytes(b[off + 8..off + 12].try_into().unwrap()) as usize;
    let mut data = b[off..off + 88].to_vec();
    data.extend_from_slice(&b[off + 92..off + 92 + plen]);
    let crc = crc32c(&data);
    b[off + 88..off + 92].copy_from_slice(&crc.to_le_bytes());
}

/// Bitwise CRC-32C (Castagnoli), independent of the crate under test.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

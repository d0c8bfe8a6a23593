//! Measures write and read throughput on a realistic event mix.
//!
//! `cargo run --release -p tomo-log --example throughput [EVENTS] [DIR]`

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};
use tomo_log::{Reader, Writer, WriterOptions};

fn rate(n: u64, d: Duration) -> String {
    format!("{:.2} M events/s", n as f64 / d.as_secs_f64() / 1e6)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(1_000_000, |s| s.parse().expect("EVENTS"));
    let dir = std::env::args()
        .nth(2)
        .map_or_else(std::env::temp_dir, Into::into);
    let mut g = common::Gen::new(1);
    let events = g.take(n);
    let path = dir.join(format!("tomo-log-throughput-{}.tomo", std::process::id()));

    // Encoding alone, for reference (tomo_event::encode_into).
    let mut buf = Vec::new();
    let t = Instant::now();
    for ev in &events {
        buf.clear();
        tomo_event::encode_into(ev, &mut buf).unwrap();
    }
    let enc = t.elapsed();
    // The same bytes written straight into a reused buffer: what
    // encode_into would cost without its per-event allocation.
    let t = Instant::now();
    for ev in &events {
        buf.clear();
        buf = postcard::to_extend(ev, std::mem::take(&mut buf)).unwrap();
    }
    let enc_reuse = t.elapsed();

    for level in [1, 3] {
        let opts = WriterOptions {
            zstd_level: level,
            ..WriterOptions::default()
        };
        let t = Instant::now();
        let mut w = Writer::create(&path, common::meta(), opts).unwrap();
        for ev in &events {
            w.append(ev).unwrap();
        }
        let s = w.finish().unwrap();
        let wt = t.elapsed();

        let t = Instant::now();
        let mut count = 0u64;
        let mut r = Reader::open(&path).unwrap();
        for ev in r.by_ref() {
            let ev = ev.unwrap();
            count += ev.seq & 1; // keep the decode from being optimized away
        }
        let rt = t.elapsed();
        assert!(r.finished() && r.damage().is_none() && count > 0);

        let t = Instant::now();
        let mut r = Reader::open(&path).unwrap();
        let blocks = r.blocks().inspect(|b| assert!(b.is_ok())).count();
        let bt = t.elapsed();

        println!(
            "zstd level {level}, {} blocks of {} KiB:",
            s.blocks,
            WriterOptions::default().block_bytes >> 10
        );
        println!(
            "  write  {} ({:.0} MB/s of encoded events), fdatasync every 1 s and at finish",
            rate(s.events, wt),
            s.raw_bytes as f64 / wt.as_secs_f64() / 1e6
        );
        println!(
            "  read   {} (decompress + decode + verify)",
            rate(s.events, rt)
        );
        println!(
            "  blocks {blocks} block summaries in {:.1} ms ({:.1} GB/s of file)",
            bt.as_secs_f64() * 1e3,
            s.bytes as f64 / bt.as_secs_f64() / 1e9
        );
        println!(
            "  size   {:.1} bytes/event on disk, {:.1} bytes/event encoded, ratio {:.1}x",
            s.bytes as f64 / s.events as f64,
            s.raw_bytes as f64 / s.events as f64,
            s.raw_bytes as f64 / s.bytes as f64
        );
    }
    println!(
        "encode only: tomo_event::encode_into {}, postcard::to_extend into a reused buffer {}",
        rate(n as u64, enc),
        rate(n as u64, enc_reuse)
    );
    std::fs::remove_file(&path).ok();
}

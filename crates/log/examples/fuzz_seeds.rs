//! Writes the small seed corpus of the `log_reader` fuzz target:
//! `cargo run -p tomo-log --example fuzz_seeds -- fuzz/corpus/log_reader`

#[path = "../tests/common/mod.rs"]
mod common;

use common::{meta, Gen};
use std::path::Path;
use std::time::Duration;
use tomo_log::{Writer, WriterOptions};

fn write(dir: &Path, name: &str, n: usize, block_bytes: usize, finish: bool, seed: u64) {
    let path = dir.join(name);
    let opts = WriterOptions {
        block_bytes,
        flush_interval: Duration::from_secs(3600),
        sync_interval: None,
        ..Default::default()
    };
    let mut w = Writer::create(&path, meta(), opts).unwrap();
    let mut g = Gen::new(seed);
    for _ in 0..n {
        w.append(&g.next_event()).unwrap();
    }
    if finish {
        w.finish().unwrap();
    } else {
        drop(w);
    }
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: fuzz_seeds DIR");
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();
    write(dir, "empty", 0, 1024, true, 1);
    // One event per block: payloads this small are stored as raw zstd
    // blocks, so mutations reach the event decoder.
    write(dir, "tiny-blocks", 6, 1, true, 2);
    write(dir, "one-block", 20, 64 << 10, true, 3);
    write(dir, "few-blocks", 120, 2 << 10, true, 4);
    write(dir, "unfinished", 40, 1 << 10, false, 5);
    // A torn tail, as after a crash.
    let b = std::fs::read(dir.join("few-blocks")).unwrap();
    std::fs::write(dir.join("torn"), &b[..b.len() - 100]).unwrap();
}

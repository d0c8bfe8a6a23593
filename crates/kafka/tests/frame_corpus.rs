//! Replays the committed fuzz corpus (fuzz/corpus/ship_frame) through the
//! frame decoder on the stable toolchain; mirrors fuzz/fuzz_targets/ship_frame.rs.
//! `write_fuzz_seeds` (ignored) rewrites the seeds.

use std::path::{Path, PathBuf};
use tomo_kafka::frame::{Block, Body, End, Frame, Origin};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/ship_frame")
}

fn check(data: &[u8]) {
    if let Ok(f) = Frame::decode(data) {
        assert_eq!(f.encode(), data);
    }
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let origin = Origin {
        host: [0x11; 16],
        boot: [0x22; 16],
        recording_id: [0x33; 16],
        schema_version: 2,
        meta_json: br#"{"host":[17],"source":"ebpf","command":[]}"#.to_vec(),
    };
    let block = Frame {
        origin: origin.clone(),
        body: Body::Block(Block {
            segment: 0,
            index: 3,
            raw_len: 64,
            events: 2,
            first_seq: 5,
            last_seq: 6,
            min_ts: 100,
            max_ts: 200,
            chain: [0x44; 32],
            payload: b"\x28\xb5\x2f\xfd not really zstd".to_vec(),
        }),
    };
    let end = Frame {
        origin,
        body: Body::End(End {
            events: 10,
            blocks: 4,
            chain_head: [0x55; 32],
        }),
    };
    vec![("block", block.encode()), ("end", end.encode())]
}

#[test]
fn replay_fuzz_corpus() {
    let mut n = 0;
    for e in std::fs::read_dir(dir()).unwrap_or_else(|e| panic!("{}: {e}", dir().display())) {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        check(&data);
        for len in 0..data.len() {
            check(&data[..len]);
        }
        n += 1;
    }
    assert!(n >= 2, "expected the seeds in {}", dir().display());
}

#[test]
fn seeds_decode() {
    for (name, bytes) in seeds() {
        let on_disk = std::fs::read(dir().join(name)).unwrap();
        assert_eq!(on_disk, bytes, "seed {name} is stale: run write_fuzz_seeds");
        Frame::decode(&on_disk).unwrap();
    }
}

#[test]
#[ignore = "writes the seed corpus; run by hand after a format change"]
fn write_fuzz_seeds() {
    std::fs::create_dir_all(dir()).unwrap();
    for (name, bytes) in seeds() {
        std::fs::write(dir().join(name), bytes).unwrap();
    }
}

//! Replays the committed fuzz corpus (fuzz/corpus/log_reader) through the
//! reader on the stable toolchain, so CI keeps checking it without
//! cargo-fuzz. Mirrors fuzz/fuzz_targets/log_reader.rs.

use std::path::Path;

fn drain(data: &[u8]) {
    if let Ok(mut r) = tomo_log::Reader::from_bytes(data.to_vec()) {
        let _ = r.meta();
        let errors = r.by_ref().filter(|e| e.is_err()).count();
        assert!(errors <= 1, "reader yielded {errors} errors");
        assert!(r.next().is_none(), "reader resumed after its end");
    }
    if let Ok(mut r) = tomo_log::Reader::from_bytes(data.to_vec()) {
        for _ in r.blocks() {}
    }
}

#[test]
fn replay_fuzz_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/log_reader");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        drain(&data);
        // Every prefix of the seeds, too: cheap, and the classic crash shape.
        if data.len() <= 8 << 10 {
            for len in (0..data.len()).step_by(7) {
                drain(&data[..len]);
            }
        }
        n += 1;
    }
    assert!(
        n >= 5,
        "expected the seed corpus in {}, found {n} files",
        dir.display()
    );
}

#[test]
fn seeds_are_valid_recordings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/log_reader");
    for name in ["empty", "one-block", "few-blocks", "tiny-blocks"] {
        let data = std::fs::read(dir.join(name)).unwrap();
        let mut r = tomo_log::Reader::from_bytes(data).unwrap();
        assert!(r.by_ref().all(|e| e.is_ok()), "{name}");
        assert!(r.finished(), "{name}");
    }
}

//! Replays the committed fuzz corpus (fuzz/corpus/strace_parser) through the
//! importer on the stable toolchain, so CI keeps checking it without
//! cargo-fuzz. Mirrors fuzz/fuzz_targets/strace_parser.rs.

use std::collections::HashMap;
use std::path::Path;

fn check(data: &[u8]) {
    let (events, imp) =
        tomo_source_strace::parse_text("fuzz.txt", data, tomo_source_strace::Options::default());
    let stats = imp.stats();
    assert_eq!(stats.events_out, events.len() as u64);
    assert!(imp.warnings().len() as u64 <= stats.warnings);
    let mut last = HashMap::new();
    for e in &events {
        if let Some(prev) = last.insert((e.host, e.boot), e.seq) {
            assert!(e.seq > prev, "seq {} after {prev}", e.seq);
        }
    }
}

fn corpus() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/strace_parser")
}

#[test]
fn replay_fuzz_corpus() {
    let dir = corpus();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        check(&data);
        // Prefixes (cut lines and records) and bytes flipped to the
        // troublemakers of the format, spread over the file.
        let step = (data.len() / 400).max(7);
        for len in (0..data.len()).step_by(step) {
            check(&data[..len]);
        }
        for i in (0..data.len()).step_by(step * 3 + 1) {
            for b in [
                b'"', b'{', b'}', b'<', b'>', b'(', b')', b',', b'\n', b'0', b'\\',
            ] {
                let mut d = data.clone();
                d[i] = b;
                check(&d);
            }
        }
        n += 1;
    }
    assert!(
        n >= 3,
        "expected the seed corpus in {}, found {n} files",
        dir.display()
    );
}

/// The well-formed seeds import without warnings.
#[test]
fn seeds_are_valid() {
    for name in ["pipeline-tt-yy", "sockets-ttt-T", "unfinished-vfork"] {
        let data = std::fs::read(corpus().join(name)).unwrap();
        let (events, imp) =
            tomo_source_strace::parse_text(name, &data, tomo_source_strace::Options::default());
        assert!(imp.warnings().is_empty(), "{name}: {:?}", imp.warnings());
        assert!(!events.is_empty(), "{name}");
    }
}

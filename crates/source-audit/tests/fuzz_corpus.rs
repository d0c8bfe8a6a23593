//! Replays the committed fuzz corpus (fuzz/corpus/audit_parser) through the
//! importer on the stable toolchain, so CI keeps checking it without
//! cargo-fuzz. Mirrors fuzz/fuzz_targets/audit_parser.rs.

use std::collections::HashMap;
use std::path::Path;

fn check(data: &[u8]) {
    let (events, parser) =
        tomo_source_audit::parse_text("fuzz.log", data, tomo_source_audit::Options::default());
    let stats = parser.stats();
    assert_eq!(stats.events_out, events.len() as u64);
    assert!(parser.warnings().len() as u64 <= stats.warnings);
    let mut last = HashMap::new();
    for e in &events {
        if let Some(prev) = last.insert((e.host, e.boot), e.seq) {
            assert!(e.seq > prev, "seq {} after {prev}", e.seq);
        }
    }
}

#[test]
fn replay_fuzz_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/audit_parser");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        check(&data);
        // Every prefix, and every byte flipped to a few troublemakers: cheap,
        // and the classic crash shapes (cut records, stray quotes and '=').
        for len in (0..data.len()).step_by(13) {
            check(&data[..len]);
        }
        for i in (0..data.len()).step_by(97) {
            for b in [b'"', b'=', b'\n', b'\x1d', b'0', b'f', b':'] {
                let mut d = data.clone();
                d[i] = b;
                check(&d);
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

/// The seeds mean what they say: the well-formed ones parse without warnings.
#[test]
fn seeds_are_valid_logs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/audit_parser");
    for name in [
        "raw-cat",
        "enriched-node",
        "interleaved-no-eoe",
        "sockets-pipes",
    ] {
        let data = std::fs::read(dir.join(name)).unwrap();
        let (events, p) =
            tomo_source_audit::parse_text(name, &data, tomo_source_audit::Options::default());
        assert!(p.warnings().is_empty(), "{name}: {:?}", p.warnings());
        assert!(!events.is_empty(), "{name}");
    }
}

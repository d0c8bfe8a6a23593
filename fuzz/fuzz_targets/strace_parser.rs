//! Arbitrary bytes as strace output into the strace importer: it must never
//! panic, never allocate without bound, and always hand out a well-formed
//! event stream.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (events, imp) =
        tomo_source_strace::parse_text("fuzz.txt", data, tomo_source_strace::Options::default());
    let stats = imp.stats();
    assert_eq!(stats.events_out, events.len() as u64);
    assert!(imp.warnings().len() as u64 <= stats.warnings);
    let mut last = std::collections::HashMap::new();
    for e in &events {
        if let Some(prev) = last.insert((e.host, e.boot), e.seq) {
            assert!(e.seq > prev, "seq {} after {prev}", e.seq);
        }
    }
});

//! Arbitrary bytes into the audit log importer: it must never panic, never
//! allocate without bound, and always hand out a well-formed event stream.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = tomo_source_audit::Options::default();
    let (events, parser) = tomo_source_audit::parse_text("fuzz.log", data, opts);
    let stats = parser.stats();
    assert_eq!(stats.events_out, events.len() as u64);
    assert!(parser.warnings().len() as u64 <= stats.warnings);
    // seq strictly increases within each (host, boot), as the schema says.
    let mut last = std::collections::HashMap::new();
    for e in &events {
        if let Some(prev) = last.insert((e.host, e.boot), e.seq) {
            assert!(e.seq > prev, "seq {} after {prev}", e.seq);
        }
    }
});

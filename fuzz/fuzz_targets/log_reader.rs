//! Arbitrary bytes into the recording reader: it must never panic, never
//! allocate without bound, and stop after its first error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut r) = tomo_log::Reader::from_bytes(data.to_vec()) else { return };
    let _ = r.meta();
    let mut errors = 0;
    for item in r.by_ref() {
        if item.is_err() {
            errors += 1;
        }
    }
    assert!(errors <= 1, "reader yielded {errors} errors");
    assert!(r.next().is_none(), "reader resumed after its end");
    // The block walk must be just as robust.
    if let Ok(mut r) = tomo_log::Reader::from_bytes(data.to_vec()) {
        for _ in r.blocks() {}
    }
});

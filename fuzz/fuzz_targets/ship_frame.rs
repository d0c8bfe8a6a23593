//! Arbitrary bytes as a Kafka record value (anything on the topic is outside
//! input for a collector): decoding must never panic nor over-allocate, and
//! whatever decodes must encode back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = tomo_kafka::frame::Frame::decode(data) {
        assert_eq!(f.encode(), data);
    }
});

//! Arbitrary bytes as a persistent store (`*.tomo.idx`): opening must never
//! panic or allocate without bound; what opens must be a consistent graph.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = std::path::Path::new("fuzz.idx");
    if let Ok(o) = tomo_store::disk::open_bytes(p, data) {
        let g = o.graph;
        for e in &g.edges {
            assert!((e.src as usize) < g.nodes.len() && (e.dst as usize) < g.nodes.len());
        }
        for n in 0..g.nodes.len() as u32 {
            let _ = g.entity_of(n);
        }
    }
});

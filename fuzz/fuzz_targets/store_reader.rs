//! Arbitrary bytes as a persistent store (`*.tomo.idx`): opening must never
//! panic or allocate without bound; what opens must be a consistent graph;
//! reading it in place (`disk::Lazy`) must never panic either.
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
    let opts = tomo_store::disk::LazyOptions { cache_bytes: 1 << 20 };
    if let Ok(l) = tomo_store::disk::Lazy::open_bytes(p, data.to_vec(), opts) {
        use tomo_store::GraphRead;
        for n in 0..l.node_count().min(64) as u32 {
            let _ = l.node(n);
            for &e in l.in_edges(n) {
                let _ = l.edge(e);
            }
        }
        for e in 0..l.entity_count().min(64) as u32 {
            let _ = l.entity(e);
        }
        let _ = l.by_name("/etc/passwd");
        let _ = l.process_labels();
    }
});

//! A real writer process killed with SIGKILL: every block it reported as
//! sealed before the kill must be readable afterwards.

mod common;

use common::{meta, Gen};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tomo_log::*;

const CHILD_ENV: &str = "TOMO_LOG_CRASH_CHILD";

/// The child side: runs only when re-executed by `sigkill_loses_at_most_the_open_block`
/// (it is a no-op in a normal test run). Appends events forever and prints
/// the number of events in sealed blocks each time a block is sealed.
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let opts = WriterOptions {
        block_bytes: 4 << 10,
        flush_interval: Duration::from_secs(3600),
        sync_interval: None,
        ..Default::default()
    };
    let mut w = Writer::create(path.as_ref(), meta(), opts).unwrap();
    let mut g = Gen::new(42);
    let mut out = std::io::stdout().lock();
    let mut blocks = 0;
    let deadline = Instant::now() + Duration::from_secs(30); // in case the parent dies
    while Instant::now() < deadline {
        w.append(&g.next_event()).unwrap();
        if w.blocks_written() != blocks {
            blocks = w.blocks_written();
            writeln!(out, "SEALED {}", w.events_written()).unwrap();
            out.flush().unwrap();
        }
    }
    std::process::exit(3);
}

#[test]
fn sigkill_loses_at_most_the_open_block() {
    let dir = tempfile::tempdir().unwrap();
    let expected = Gen::new(42).take(200_000);
    for (round, kill_after) in [1usize, 7, 40, 150, 400].into_iter().enumerate() {
        let path = dir.path().join(format!("crash{round}.tomo"));
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut reported = 0u64;
        let mut seen = 0;
        while seen < kill_after {
            let line = lines.next().expect("child ended early").unwrap();
            if let Some(n) = line.strip_prefix("SEALED ") {
                reported = n.parse().unwrap();
                seen += 1;
            }
        }
        // std's Child::kill sends SIGKILL on Unix: no destructor, no flush.
        child.kill().unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "child was not killed by SIGKILL: {status:?}"
        );

        let (m, events, damage) = read_all(&path).unwrap();
        assert_eq!(m, meta());
        assert!(
            events.len() as u64 >= reported,
            "round {round}: {} events recovered, {reported} were sealed before the kill",
            events.len()
        );
        assert_eq!(
            events,
            expected[..events.len()],
            "round {round}: recovered events differ"
        );
        if let Some(d) = &damage {
            // Only a torn last block is acceptable.
            assert_eq!(d.events_before, events.len() as u64);
            let size = std::fs::metadata(&path).unwrap().len();
            assert!(d.offset < size, "{d}");
        }
        let rep = verify(&path).unwrap();
        assert!(!rep.finished);
        assert_eq!(rep.events, events.len() as u64);
        eprintln!(
            "round {round}: killed after {kill_after} seals, {reported} reported, {} recovered, damage: {}",
            events.len(),
            damage.map_or("none".to_string(), |d| d.reason)
        );
    }
}

//! The entry points of a live source (the audit netlink socket, see
//! crates/capture-audit): records as (type number, payload), a known boot,
//! and `tick`, which bounds how long events are held back.

mod common;

use common::*;
use tomo_event::{Id128, Op};
use tomo_source_audit::Parser;

/// `type=NAME msg=audit(…): body` → (type number, `audit(…): body`), as the
/// kernel sends it.
fn as_netlink(line: &str) -> (u16, String) {
    let rest = line.strip_prefix("type=").unwrap();
    let (name, rest) = rest.split_once(' ').unwrap();
    let n = match name {
        "SYSCALL" => 1300,
        "PATH" => 1302,
        "SOCKADDR" => 1306,
        "CWD" => 1307,
        "EXECVE" => 1309,
        "FD_PAIR" => 1317,
        "EOE" => 1320,
        "PROCTITLE" => 1327,
        other => panic!("no number for {other}"),
    };
    (n, rest.strip_prefix("msg=").unwrap().to_string())
}

fn open_write(serial: u64) -> Vec<Ev> {
    vec![
        ev(serial, 500, 257, 3, ["ffffff9c", "7ffd0001", "241", "1b6"])
            .cwd("/tmp")
            .path(0, "\"/tmp\"", 10, "040755", "PARENT")
            .path(1, "\"out.txt\"", 11, "0100644", "CREATE"),
        ev(serial + 1, 500, 1, 5, ["3", "7ffd0002", "5", "0"]),
    ]
}

#[test]
fn netlink_records_parse_like_log_lines() {
    let evs = open_write(10);
    let (from_log, _) = parse(&log(&evs));
    let mut p = Parser::new(opts());
    let boot = Id128([9; 16]);
    p.set_live(boot);
    let mut out = Vec::new();
    for e in &evs {
        for l in e.lines() {
            let (t, payload) = as_netlink(&l);
            // The kernel's text has no newline; a stray NUL is tolerated.
            p.feed_record(t, &format!("{payload}\0"), &mut out);
        }
    }
    p.finish(&mut out);
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    assert_eq!(ops(&out), ops(&from_log));
    assert!(out.iter().all(|e| e.boot == boot && e.host == HOST));
    assert!(matches!(ops(&out)[1], Op::Io { count: 5, .. }));
    assert_eq!(p.stats().incomplete_events, 0);

    // A malformed record is a warning naming the message, not a panic.
    p.feed_record(1300, "audit(garbage", &mut out);
    assert_eq!(p.warnings().len(), 1);
    assert!(p.warnings()[0].to_string().starts_with("netlink:"));
}

fn feed(p: &mut Parser, evs: &[Ev], out: &mut Vec<tomo_event::Event>) {
    for e in evs {
        for l in e.lines() {
            let (t, payload) = as_netlink(&l);
            p.feed_record(t, &payload, out);
        }
    }
}

#[test]
fn tick_bounds_how_long_events_are_held() {
    let mut p = Parser::new(opts());
    p.set_live(Id128([9; 16]));
    let mut out = Vec::new();
    p.tick(&mut out);
    feed(&mut p, &open_write(20), &mut out);
    // An event whose last records were lost: SYSCALL only.
    let lost = &ev(22, 501, 3, 0, ["3", "0", "0", "0"]).lines()[0];
    let (t, payload) = as_netlink(lost);
    p.feed_record(t, &payload, &mut out);
    // Held back: for order, and for a late spawn of pid 500.
    assert!(out.is_empty());
    assert!(p.held() > 0);
    // The records came after the first tick: they wait one more period,
    // then the complete events are converted, then written out.
    for _ in 0..3 {
        p.tick(&mut out);
    }
    let o = ops(&out);
    assert_eq!(o.len(), 2, "{o:?}");
    assert!(matches!(o[0], Op::Open { .. }), "{o:?}");
    assert!(matches!(o[1], Op::Io { count: 5, .. }), "{o:?}");
    // The incomplete one waits longer (its records may only be delayed)...
    assert_eq!(p.stats().incomplete_events, 0);
    assert_eq!(p.held(), 1);
    for _ in 0..30 {
        p.tick(&mut out);
    }
    // ...but not forever.
    assert_eq!(p.stats().incomplete_events, 1);
    assert_eq!(p.stats().events, 3);
    assert_eq!(p.held(), 0);
    assert_eq!(p.stats().events_out as usize, out.len());
}

/// When its backlog is full, the kernel makes a process wait between the
/// records of one event while others log thousands: live, that is neither
/// a reboot nor an incomplete event.
#[test]
fn delayed_records_join_their_event() {
    let mut p = Parser::new(opts());
    p.set_live(Id128([9; 16]));
    let mut out = Vec::new();
    let evs = open_write(10);
    let lines = evs[0].lines();
    let (first, rest) = lines.split_first().unwrap();
    let (t, payload) = as_netlink(first);
    p.feed_record(t, &payload, &mut out);
    let others: Vec<Ev> = (0..3000)
        .map(|i| ev(5000 + i, 600, 3, -9, ["63", "0", "0", "0"]))
        .collect();
    feed(&mut p, &others, &mut out);
    for l in rest {
        let (t, payload) = as_netlink(l);
        p.feed_record(t, &payload, &mut out);
    }
    feed(&mut p, &evs[1..], &mut out);
    p.finish(&mut out);
    let st = p.stats();
    assert_eq!(
        (st.boots, st.incomplete_events, st.late_records),
        (1, 0, 0),
        "{st:?}"
    );
    assert_eq!(st.untracked_fd, 0, "{st:?}");
    let o = ops(&out);
    assert!(
        o.iter().any(
            |op| matches!(op, Op::Open { obj, .. } if obj.path.as_deref() == Some("/tmp/out.txt"))
        ),
        "{o:?}"
    );
    assert!(
        o.iter().any(|op| matches!(op, Op::Io { count: 5, .. })),
        "{o:?}"
    );
}

/// The kernel's serial is 32 bits: live, it wrapping round keeps the
/// processes and their descriptors.
#[test]
fn serial_wrap_keeps_the_descriptor_model() {
    let mut p = Parser::new(opts());
    p.set_live(Id128([9; 16]));
    let mut out = Vec::new();
    let mut evs = open_write(u32::MAX as u64 - 1);
    evs[1].serial = 3;
    feed(&mut p, &evs, &mut out);
    p.finish(&mut out);
    let st = p.stats();
    assert_eq!((st.boots, st.untracked_fd), (1, 0), "{st:?}");
    let o = ops(&out);
    assert!(matches!(o[1], Op::Io { count: 5, .. }), "{o:?}");
}

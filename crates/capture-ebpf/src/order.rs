//! Causal order across processes. The ring buffer is filled in the order
//! the programs ran, which is not always the order of cause and effect: a
//! pipe's reader can return from `read` (and be recorded) before the writer
//! that fed it returns from `write`. The log must never show data arriving
//! before it was sent, so a read from a pipe that returns more bytes than
//! have been logged as written into that pipe is held back, together with
//! everything its process does afterwards, until the writes are logged.
//! Likewise a new process's events wait for the `Spawn` that creates it.
//! A hold that is never satisfied (data written before the agent started,
//! a lost record) is released after [`MAX_HOLD`]: late, never dropped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};
use tomo_event::{Dir, Event, ObjKind, ObjRef, Op};

pub const MAX_HOLD: Duration = Duration::from_millis(250);
/// Pipes tracked at most; past it the tracking starts over (pipes then
/// known are no longer held: late order is possible, loss is not).
const MAX_PIPES: usize = 1 << 18;

type PipeKey = (u64, u64);
/// Bytes an event takes out of a pipe, and puts into one.
type PipeFlows = (Option<(PipeKey, u64)>, Option<(PipeKey, u64)>);

struct Held {
    ev: Event,
    since: Instant,
}

#[derive(Default)]
pub struct Order {
    queues: HashMap<u32, VecDeque<Held>>,
    written: HashMap<PipeKey, u64>,
    read: HashMap<PipeKey, u64>,
    /// Pipes created (or FIFOs opened) while recording: only their reads
    /// are held. A pipe from before the start, or written only by the agent
    /// itself (its own stderr), has writes the log never shows.
    known: HashSet<PipeKey>,
    /// Processes created while recording whose Spawn is not logged yet.
    unborn: HashSet<u32>,
    seq: u64,
    last_ts: u64,
    /// Events released by timeout rather than by their cause.
    pub late: u64,
}

fn pipe_key(o: &ObjRef) -> Option<PipeKey> {
    (o.kind == ObjKind::Pipe).then_some((o.dev, o.ino))
}

/// (pipe, bytes) this event takes out of / puts into a pipe.
fn pipe_flows(ev: &Event) -> PipeFlows {
    if !ev.ok() {
        return (None, None);
    }
    match &ev.op {
        Op::Io {
            dir, obj, count, ..
        } => match (pipe_key(obj), dir) {
            (Some(k), Dir::Read) => (Some((k, *count)), None),
            (Some(k), Dir::Write) => (None, Some((k, *count))),
            _ => (None, None),
        },
        Op::Transfer {
            src, dst, count, ..
        } => (
            pipe_key(src).map(|k| (k, *count)),
            pipe_key(dst).map(|k| (k, *count)),
        ),
        _ => (None, None),
    }
}

impl Order {
    /// A process born during the recording: hold its events until its Spawn.
    pub fn expect_spawn(&mut self, pid: u32) {
        self.unborn.insert(pid);
    }

    pub fn len(&self) -> usize {
        self.queues.values().map(|q| q.len()).sum()
    }

    fn ready(&self, ev: &Event) -> bool {
        if self.unborn.contains(&ev.proc.pid) {
            return false;
        }
        match pipe_flows(ev).0 {
            Some((k, n)) if self.known.contains(&k) => {
                let r = self.read.get(&k).copied().unwrap_or(0);
                let w = self.written.get(&k).copied().unwrap_or(0);
                r + n <= w
            }
            _ => true,
        }
    }

    /// Submit an event; it is passed to `out` (with its final seq) now or later.
    pub fn push(
        &mut self,
        ev: Event,
        out: &mut dyn FnMut(Event) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let pid = ev.proc.pid;
        let queued = self.queues.get(&pid).is_some_and(|q| !q.is_empty());
        if !queued && self.ready(&ev) {
            self.emit(ev, out)?;
            return self.drain(out, false);
        }
        self.queues.entry(pid).or_default().push_back(Held {
            ev,
            since: Instant::now(),
        });
        Ok(())
    }

    fn emit(
        &mut self,
        mut ev: Event,
        out: &mut dyn FnMut(Event) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let (rd, wr) = pipe_flows(&ev);
        let rd = rd.filter(|(k, _)| self.known.contains(k));
        let wr = wr.filter(|(k, _)| self.known.contains(k));
        if let Some((k, n)) = rd {
            let r = self.read.entry(k).or_insert(0);
            *r += n;
            // Data the agent never saw written (before it started, or
            // lost): count it as written so later reads are not held.
            let w = self.written.entry(k).or_insert(0);
            if *w < *r {
                *w = *r;
            }
        }
        if let Some((k, n)) = wr {
            *self.written.entry(k).or_insert(0) += n;
        }
        match &ev.op {
            Op::Pipe { obj, .. } | Op::Open { obj, .. } if ev.ok() => {
                if let Some(k) = pipe_key(obj) {
                    if self.known.len() >= MAX_PIPES {
                        self.known.clear();
                        self.written.clear();
                        self.read.clear();
                    }
                    self.known.insert(k);
                }
            }
            _ => {}
        }
        if let Op::Spawn { child, .. } = &ev.op {
            self.unborn.remove(&child.pid);
        }
        if let Op::Exit {
            call: tomo_event::Call::exit_group,
            ..
        } = &ev.op
        {
            self.unborn.remove(&ev.proc.pid);
        }
        // Timestamps never go backwards within a recording.
        ev.ts_ns = ev.ts_ns.max(self.last_ts);
        self.last_ts = ev.ts_ns;
        ev.seq = self.seq;
        self.seq += 1;
        out(ev)
    }

    /// Release every held event whose cause is logged (or, with `force` or
    /// after [`MAX_HOLD`], every held event).
    pub fn drain(
        &mut self,
        out: &mut dyn FnMut(Event) -> std::io::Result<()>,
        force: bool,
    ) -> std::io::Result<()> {
        if self.queues.is_empty() {
            return Ok(());
        }
        loop {
            let mut progressed = false;
            let pids: Vec<u32> = self.queues.keys().copied().collect();
            for pid in pids {
                loop {
                    let Some(h) = self.queues.get(&pid).and_then(|q| q.front()) else {
                        self.queues.remove(&pid);
                        break;
                    };
                    let timed_out = force || h.since.elapsed() >= MAX_HOLD;
                    let late = !self.ready(&h.ev);
                    if late && !timed_out {
                        break;
                    }
                    let h = self
                        .queues
                        .get_mut(&pid)
                        .and_then(|q| q.pop_front())
                        .expect("front exists");
                    if late {
                        self.late += 1;
                        self.unborn.remove(&h.ev.proc.pid);
                    }
                    self.emit(h.ev, out)?;
                    progressed = true;
                }
            }
            if !progressed {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tomo_event::{Call, Cred, Id128, ProcRef};

    fn ev(pid: u32, op: Op) -> Event {
        Event {
            host: Id128::default(),
            boot: Id128::default(),
            seq: 0,
            ts_ns: 0,
            proc: ProcRef {
                pid,
                tid: pid,
                ppid: 1,
                start_ticks: 1,
            },
            cred: Cred::default(),
            op,
            ret: 0,
        }
    }

    fn pipe(pid: u32) -> Event {
        ev(
            pid,
            Op::Pipe {
                call: Call::pipe2,
                read_fd: 3,
                write_fd: 4,
                obj: ObjRef {
                    kind: ObjKind::Pipe,
                    dev: 12,
                    ino: 7,
                    path: None,
                },
            },
        )
    }

    fn io(pid: u32, dir: Dir, count: u64) -> Event {
        let obj = ObjRef {
            kind: ObjKind::Pipe,
            dev: 12,
            ino: 7,
            path: None,
        };
        let mut e = ev(
            pid,
            Op::Io {
                call: if dir == Dir::Read {
                    Call::read
                } else {
                    Call::write
                },
                dir,
                fd: 3,
                obj,
                offset: None,
                count,
                sock: None,
            },
        );
        e.ret = count as i64;
        e
    }

    #[test]
    fn a_pipe_read_waits_for_the_write_that_fed_it() {
        let mut o = Order::default();
        let mut got: Vec<(u64, u32)> = Vec::new();
        let mut out = |e: Event| {
            got.push((e.seq, e.proc.pid));
            Ok(())
        };
        o.push(pipe(1), &mut out).unwrap();
        // The reader (pid 2) returns first, then does something else.
        o.push(io(2, Dir::Read, 10), &mut out).unwrap();
        o.push(
            ev(
                2,
                Op::Exit {
                    call: Call::exit_group,
                    code: 0,
                    signal: None,
                },
            ),
            &mut out,
        )
        .unwrap();
        assert_eq!(o.len(), 2, "held back");
        o.push(io(1, Dir::Write, 10), &mut out).unwrap();
        assert_eq!(o.len(), 0);
        assert_eq!(got, vec![(0, 1), (1, 1), (2, 2), (3, 2)]);
    }

    #[test]
    fn a_hold_without_cause_is_released_at_the_end() {
        let mut o = Order::default();
        let mut n = 0;
        let mut out = |_e: Event| {
            n += 1;
            Ok(())
        };
        // A pipe from before the start is never held.
        o.push(io(2, Dir::Read, 5), &mut out).unwrap();
        assert_eq!(o.len(), 0);
        o.push(pipe(1), &mut out).unwrap();
        o.push(io(2, Dir::Read, 5), &mut out).unwrap();
        assert_eq!(o.len(), 1);
        o.drain(&mut out, true).unwrap();
        assert_eq!(o.late, 1);
        assert_eq!(n, 3);
    }
}

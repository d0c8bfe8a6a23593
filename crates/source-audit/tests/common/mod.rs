//! Building realistic audit.log excerpts for the tests.
#![allow(dead_code)]

use tomo_event::{Event, Id128, Op};
use tomo_source_audit::{parse_text, Options, Parser};

pub const HOST: Id128 = Id128([7; 16]);

pub fn opts() -> Options {
    Options {
        default_host: HOST,
        host_override: None,
    }
}

pub fn parse(text: &str) -> (Vec<Event>, Parser) {
    parse_text("audit.log", text.as_bytes(), opts())
}

/// The records of one syscall event as auditd writes them (raw format):
/// SYSCALL, the auxiliary records given, PROCTITLE, EOE.
pub struct Ev {
    pub ts: &'static str,
    pub serial: u64,
    pub nr: u32,
    pub exit: Option<i64>,
    pub a: [&'static str; 4],
    pub pid: u32,
    pub ppid: u32,
    pub comm: &'static str,
    pub exe: &'static str,
    pub aux: Vec<String>,
}

pub fn ev(serial: u64, pid: u32, nr: u32, exit: i64, a: [&'static str; 4]) -> Ev {
    Ev {
        ts: "1700000100.500",
        serial,
        nr,
        exit: Some(exit),
        a,
        pid,
        ppid: 1,
        comm: "prog",
        exe: "/usr/bin/prog",
        aux: Vec::new(),
    }
}

impl Ev {
    pub fn ppid(mut self, p: u32) -> Ev {
        self.ppid = p;
        self
    }
    pub fn exe(mut self, comm: &'static str, exe: &'static str) -> Ev {
        self.comm = comm;
        self.exe = exe;
        self
    }
    pub fn ts(mut self, ts: &'static str) -> Ev {
        self.ts = ts;
        self
    }
    /// An auxiliary record: `TYPE body`.
    pub fn aux(mut self, rtype: &str, body: &str) -> Ev {
        self.aux.push(format!("{rtype}\u{0}{body}"));
        self
    }
    pub fn path(self, item: u32, name: &str, inode: u64, mode: &str, nametype: &str) -> Ev {
        let body = format!(
            "item={item} name={name} inode={inode} dev=fd:01 mode={mode} ouid=0 ogid=0 rdev=00:00 nametype={nametype} cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0"
        );
        self.aux("PATH", &body)
    }
    pub fn cwd(self, cwd: &str) -> Ev {
        self.aux("CWD", &format!("cwd=\"{cwd}\""))
    }

    pub fn lines(&self) -> Vec<String> {
        let stamp = format!("msg=audit({}:{})", self.ts, self.serial);
        let items = self
            .aux
            .iter()
            .filter(|a| a.starts_with("PATH\u{0}"))
            .count();
        let result = match self.exit {
            Some(x) => format!("success={} exit={x} ", if x < 0 { "no" } else { "yes" }),
            None => String::new(),
        };
        let mut out = vec![format!(
            "type=SYSCALL {stamp}: arch=c000003e syscall={} {result}a0={} a1={} a2={} a3={} items={items} ppid={} pid={} auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm=\"{}\" exe=\"{}\" subj=unconfined key=(null)",
            self.nr, self.a[0], self.a[1], self.a[2], self.a[3], self.ppid, self.pid, self.comm, self.exe
        )];
        for a in &self.aux {
            let (t, body) = a.split_once('\u{0}').unwrap();
            out.push(format!("type={t} {stamp}: {body}"));
        }
        out.push(format!(
            "type=PROCTITLE {stamp}: proctitle=\"{}\"",
            self.comm
        ));
        out.push(format!("type=EOE {stamp}: "));
        out
    }
}

pub fn log(evs: &[Ev]) -> String {
    let mut s = String::new();
    for e in evs {
        for l in e.lines() {
            s.push_str(&l);
            s.push('\n');
        }
    }
    s
}

/// The main operations (not the synthesized `Observed`), in order.
pub fn ops(evs: &[Event]) -> Vec<&Op> {
    evs.iter()
        .map(|e| &e.op)
        .filter(|o| !matches!(o, Op::Observed { .. }))
        .collect()
}

pub fn assert_seq_increasing(evs: &[Event]) {
    for w in evs.windows(2) {
        if (w[0].host, w[0].boot) == (w[1].host, w[1].boot) {
            assert!(
                w[0].seq < w[1].seq,
                "seq not increasing: {:?} then {:?}",
                w[0],
                w[1]
            );
        }
    }
}

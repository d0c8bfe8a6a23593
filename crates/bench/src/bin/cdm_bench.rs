//! CDM import benchmark (issue #5): generates a synthetic DARPA TC CDM 18
//! JSON file with N Event records (and the Subject, FileObject,
//! NetFlowObject, UnnamedPipeObject and Principal records they need), then
//! times `tomo ingest --format cdm` on it.
//!
//! The stream looks like a TC engagement's (TRACE, CDM 18): every field of
//! the schema present (unused ones `null`), unions wrapped, a mix of event
//! types dominated by reads and writes, processes forking and exec'ing,
//! files created, renamed and unlinked, flows to the network, some event
//! types Tomo skips (fcntl, lseek, mprotect), and 1% of the definitions
//! written after their first use (the importer's second pass resolves them).
//!
//! ```sh
//! cargo build --release -p tomo -p tomo-bench
//! target/release/cdm_bench --events 10000000 --dir /var/tmp
//! ```

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// CDM Event records to generate.
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// Where to write the CDM file and the recording.
    #[arg(long, default_value = "/var/tmp")]
    dir: PathBuf,
    /// The tomo binary (default: target/release/tomo next to this one).
    #[arg(long)]
    tomo: Option<PathBuf>,
    /// Reuse an existing CDM file of the same size instead of generating it.
    #[arg(long)]
    reuse: bool,
    /// Keep the CDM file and the recording afterwards.
    #[arg(long)]
    keep: bool,
    /// Only generate the file.
    #[arg(long)]
    generate_only: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

const HOST: &str = "E621F964-5A66-0F89-30E0-67ADB2A5EC28";
const NS: &str = "com.bbn.tc.schema.avro.cdm18";

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn uuid(n: u64) -> String {
    // Deterministic and spread out, like real UUIDs.
    let mut r = Rng(n.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let (a, b) = (r.next(), r.next());
    format!(
        "{:08X}-{:04X}-{:04X}-{:04X}-{:012X}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

struct Proc {
    id: u64,
    cid: u64,
    files: Vec<u64>,
    flow: Option<u64>,
}

struct Gen {
    rng: Rng,
    next: u64,
    ts: u64,
    seq: u64,
    procs: Vec<Proc>,
    next_pid: u64,
    /// Definitions held back: written after their first use.
    late: VecDeque<(u64, String)>,
    events: u64,
    lines: u64,
    line: String,
}

impl Gen {
    fn id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    fn wrap(&mut self, ty: &str, body: &str) -> String {
        format!(
            "{{\"datum\":{{\"{NS}.{ty}\":{body}}},\"CDMVersion\":\"18\",\"source\":\"SOURCE_LINUX_SYSCALL_TRACE\"}}\n"
        )
    }

    fn subject(&mut self, id: u64, cid: u64, parent: Option<u64>, cmd: &str) -> String {
        let parent = match parent {
            Some(p) => format!("{{\"{NS}.UUID\":\"{}\"}}", uuid(p)),
            None => "null".into(),
        };
        let body = format!(
            "{{\"uuid\":\"{}\",\"type\":\"SUBJECT_PROCESS\",\"cid\":{cid},\"parentSubject\":{parent},\"hostId\":\"{HOST}\",\"localPrincipal\":\"{}\",\"startTimestampNanos\":{},\"unitId\":{{\"int\":0}},\"iteration\":null,\"count\":null,\"cmdLine\":{{\"string\":\"{cmd}\"}},\"privilegeLevel\":null,\"importedLibraries\":null,\"exportedLibraries\":null,\"properties\":{{\"map\":{{\"name\":\"{}\",\"ppid\":\"1\",\"seen time\":\"1523627788.470\"}}}}}}",
            uuid(id),
            uuid(1),
            self.ts,
            cmd.split(' ').next().unwrap_or("x"),
        );
        self.wrap("Subject", &body)
    }

    fn file(&mut self, id: u64, path: &str) -> String {
        let body = format!(
            "{{\"uuid\":\"{}\",\"baseObject\":{{\"hostId\":\"{HOST}\",\"permission\":{{\"{NS}.SHORT\":\"0644\"}},\"epoch\":{{\"int\":0}},\"properties\":{{\"map\":{{\"path\":\"{path}\"}}}}}},\"type\":\"FILE_OBJECT_FILE\",\"fileDescriptor\":null,\"localPrincipal\":null,\"size\":null,\"peInfo\":null,\"hashes\":null}}",
            uuid(id)
        );
        self.wrap("FileObject", &body)
    }

    fn netflow(&mut self, id: u64, port: u64) -> String {
        let body = format!(
            "{{\"uuid\":\"{}\",\"baseObject\":{{\"hostId\":\"{HOST}\",\"permission\":null,\"epoch\":{{\"int\":0}},\"properties\":{{\"map\":{{}}}}}},\"localAddress\":\"10.0.6.23\",\"localPort\":{},\"remoteAddress\":\"128.55.12.{}\",\"remotePort\":{port},\"ipProtocol\":{{\"int\":6}},\"fileDescriptor\":null}}",
            uuid(id),
            30000 + id % 30000,
            id % 250
        );
        self.wrap("NetFlowObject", &body)
    }

    /// Write a definition now, or (1%) after its first use.
    fn define(&mut self, w: &mut impl Write, line: String) -> Result<()> {
        if self.rng.below(100) == 0 {
            self.late.push_back((self.events + 1000, line));
        } else {
            w.write_all(line.as_bytes())?;
            self.lines += 1;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &mut self,
        w: &mut impl Write,
        ty: &str,
        subject: u64,
        thread: u64,
        obj: Option<u64>,
        path: Option<&str>,
        obj2: Option<(u64, &str)>,
        size: Option<u64>,
        props: &str,
    ) -> Result<()> {
        self.seq += 1;
        self.ts += 1 + self.rng.below(20_000);
        let id = self.id();
        let l = &mut self.line;
        l.clear();
        let _ = write!(
            l,
            "{{\"datum\":{{\"{NS}.Event\":{{\"uuid\":\"{}\",\"sequence\":{{\"long\":{}}},\"type\":\"{ty}\",\"threadId\":{{\"int\":{thread}}},\"hostId\":\"{HOST}\",\"subject\":{{\"{NS}.UUID\":\"{}\"}},",
            uuid(id),
            self.seq,
            uuid(subject)
        );
        match obj {
            Some(o) => {
                let _ = write!(l, "\"predicateObject\":{{\"{NS}.UUID\":\"{}\"}},", uuid(o));
            }
            None => l.push_str("\"predicateObject\":null,"),
        }
        match path {
            Some(p) => {
                let _ = write!(l, "\"predicateObjectPath\":{{\"string\":\"{p}\"}},");
            }
            None => l.push_str("\"predicateObjectPath\":null,"),
        }
        match obj2 {
            Some((o, p)) => {
                let _ = write!(
                    l,
                    "\"predicateObject2\":{{\"{NS}.UUID\":\"{}\"}},\"predicateObject2Path\":{{\"string\":\"{p}\"}},",
                    uuid(o)
                );
            }
            None => l.push_str("\"predicateObject2\":null,\"predicateObject2Path\":null,"),
        }
        let _ = write!(
            l,
            "\"timestampNanos\":{},\"name\":null,\"parameters\":null,\"location\":null,",
            self.ts
        );
        match size {
            Some(s) => {
                let _ = write!(l, "\"size\":{{\"long\":{s}}},");
            }
            None => l.push_str("\"size\":null,"),
        }
        let _ = writeln!(
            l,
            "\"programPoint\":null,\"properties\":{{\"map\":{{{props}}}}}}}}},\"CDMVersion\":\"18\",\"source\":\"SOURCE_LINUX_SYSCALL_TRACE\"}}"
        );
        w.write_all(l.as_bytes())?;
        self.events += 1;
        self.lines += 1;
        while self.late.front().is_some_and(|(at, _)| *at <= self.events) {
            let (_, line) = self.late.pop_front().expect("front");
            w.write_all(line.as_bytes())?;
            self.lines += 1;
        }
        Ok(())
    }

    fn spawn(&mut self, w: &mut impl Write, parent: Option<usize>) -> Result<usize> {
        let id = self.id();
        self.next_pid += 1;
        let cid = 1000 + self.next_pid % 60000;
        let cmds = [
            "bash -c make",
            "cc1 main.c",
            "sshd -D",
            "python3 app.py",
            "tar cf out.tar .",
            "gzip -9",
        ];
        let cmd = cmds[self.rng.below(cmds.len() as u64) as usize];
        let pid = parent.map(|p| self.procs[p].id);
        let line = self.subject(id, cid, pid, cmd);
        // Subjects are defined before their first event, as performers do.
        w.write_all(line.as_bytes())?;
        self.lines += 1;
        if let Some(p) = parent {
            let (pid, pcid) = (self.procs[p].id, self.procs[p].cid);
            self.event(w, "EVENT_FORK", pid, pcid, Some(id), None, None, None, "")?;
        }
        self.procs.push(Proc {
            id,
            cid,
            files: Vec::new(),
            flow: None,
        });
        let i = self.procs.len() - 1;
        let exe = self.id();
        let exe_path = format!("/usr/bin/{}", cmd.split(' ').next().unwrap_or("x"));
        let line = self.file(exe, &exe_path);
        self.define(w, line)?;
        let props = format!("\"cmdLine\":\"{cmd}\"");
        self.event(
            w,
            "EVENT_EXECUTE",
            id,
            cid,
            Some(exe),
            Some(&exe_path),
            None,
            None,
            &props,
        )?;
        Ok(i)
    }

    fn step(&mut self, w: &mut impl Write) -> Result<()> {
        if self.procs.len() < 8 || self.rng.below(400) == 0 {
            let parent =
                (!self.procs.is_empty()).then(|| self.rng.below(self.procs.len() as u64) as usize);
            self.spawn(w, parent)?;
            return Ok(());
        }
        let i = self.rng.below(self.procs.len() as u64) as usize;
        let (pid, cid) = (self.procs[i].id, self.procs[i].cid);
        let r = self.rng.below(1000);
        if r < 700 && !self.procs[i].files.is_empty() {
            let f = self.procs[i].files[self.rng.below(self.procs[i].files.len() as u64) as usize];
            let ty = match r {
                0..=349 => "EVENT_READ",
                350..=579 => "EVENT_WRITE",
                580..=619 => "EVENT_MMAP",
                620..=659 => "EVENT_LSEEK",
                _ => "EVENT_FCNTL",
            };
            let size = matches!(ty, "EVENT_READ" | "EVENT_WRITE" | "EVENT_MMAP")
                .then(|| 1 + self.rng.below(65536));
            let props = if ty == "EVENT_MMAP" {
                "\"prot\":\"PROT_READ\""
            } else {
                ""
            };
            return self.event(w, ty, pid, cid, Some(f), None, None, size, props);
        }
        match r {
            0..=799 => {
                // Open an existing file or create one.
                let f = self.id();
                let path = format!("/home/admin/work/{}/f{}.dat", f % 997, f);
                let line = self.file(f, &path);
                self.define(w, line)?;
                let create = self.rng.below(3) == 0;
                let ty = if create {
                    "EVENT_CREATE_OBJECT"
                } else {
                    "EVENT_OPEN"
                };
                self.event(
                    w,
                    ty,
                    pid,
                    cid,
                    Some(f),
                    Some(&path),
                    None,
                    None,
                    "\"flags\":\"O_RDWR\"",
                )?;
                let files = &mut self.procs[i].files;
                files.push(f);
                if files.len() > 32 {
                    let old = files.remove(0);
                    self.event(w, "EVENT_CLOSE", pid, cid, Some(old), None, None, None, "")?;
                }
                Ok(())
            }
            800..=899 => {
                let flow = match self.procs[i].flow {
                    Some(f) => f,
                    None => {
                        let f = self.id();
                        let line = self.netflow(f, 443);
                        self.define(w, line)?;
                        self.procs[i].flow = Some(f);
                        self.event(w, "EVENT_CONNECT", pid, cid, Some(f), None, None, None, "")?;
                        f
                    }
                };
                let ty = if r < 850 {
                    "EVENT_SENDTO"
                } else {
                    "EVENT_RECVFROM"
                };
                let n = 1 + self.rng.below(1500);
                self.event(w, ty, pid, cid, Some(flow), None, None, Some(n), "")
            }
            900..=939 if !self.procs[i].files.is_empty() => {
                let f = self.procs[i].files.pop().expect("non-empty");
                if r < 920 {
                    let to = format!("/home/admin/work/renamed/f{f}.dat");
                    let f2 = self.id();
                    self.event(
                        w,
                        "EVENT_RENAME",
                        pid,
                        cid,
                        Some(f),
                        None,
                        Some((f2, &to)),
                        None,
                        "",
                    )
                } else {
                    self.event(w, "EVENT_UNLINK", pid, cid, Some(f), None, None, None, "")
                }
            }
            940..=989 => self.event(w, "EVENT_MPROTECT", pid, cid, None, None, None, None, ""),
            _ => {
                // The process ends.
                self.event(w, "EVENT_EXIT", pid, cid, None, None, None, None, "")?;
                self.procs.swap_remove(i);
                Ok(())
            }
        }
    }
}

fn generate(path: &PathBuf, events: u64) -> Result<(u64, u64)> {
    let f = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut w = BufWriter::with_capacity(8 << 20, f);
    let mut g = Gen {
        rng: Rng(42),
        next: 100,
        ts: 1_523_627_790_000_000_000,
        seq: 0,
        procs: Vec::new(),
        next_pid: 0,
        late: VecDeque::new(),
        events: 0,
        lines: 0,
        line: String::with_capacity(2048),
    };
    let host = format!(
        "{{\"uuid\":\"{HOST}\",\"hostName\":\"ta1-trace-e3\",\"hostIdentifiers\":[],\"osDetails\":\"Linux 4.4.0\",\"hostType\":\"HOST_DESKTOP\",\"interfaces\":[]}}"
    );
    let line = g.wrap("Host", &host);
    w.write_all(line.as_bytes())?;
    let principal = format!(
        "{{\"uuid\":\"{}\",\"type\":\"PRINCIPAL_LOCAL\",\"hostId\":\"{HOST}\",\"userId\":\"1000\",\"username\":null,\"groupIds\":[\"1000\"],\"properties\":{{\"map\":{{\"euid\":\"1000\"}}}}}}",
        uuid(1)
    );
    let line = g.wrap("Principal", &principal);
    w.write_all(line.as_bytes())?;
    g.lines += 2;
    while g.events < events {
        g.step(&mut w)?;
    }
    while let Some((_, line)) = g.late.pop_front() {
        w.write_all(line.as_bytes())?;
        g.lines += 1;
    }
    w.flush()?;
    Ok((g.events, g.lines))
}

fn children_maxrss_kib() -> u64 {
    // SAFETY: getrusage fills the struct we pass; zeroed is a valid value.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) == 0 {
            ru.ru_maxrss as u64
        } else {
            0
        }
    }
}

fn main() -> Result<()> {
    let a = Args::parse();
    std::fs::create_dir_all(&a.dir)?;
    let cdm = a.dir.join(format!("tomo-bench-cdm-{}.json", a.events));
    let rec = a.dir.join(format!("tomo-bench-cdm-{}.tomo", a.events));
    let t = Instant::now();
    let (events, lines) = if a.reuse && cdm.exists() {
        let lines = std::io::BufRead::lines(std::io::BufReader::new(std::fs::File::open(&cdm)?))
            .count() as u64;
        (a.events, lines)
    } else {
        generate(&cdm, a.events)?
    };
    let gen_s = t.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&cdm)?.len();
    eprintln!(
        "cdm_bench: {} ({} lines, {events} events, {:.2} GiB) in {gen_s:.1} s",
        cdm.display(),
        lines,
        bytes as f64 / (1u64 << 30) as f64
    );
    if a.generate_only {
        return Ok(());
    }
    let tomo = match &a.tomo {
        Some(t) => t.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no directory of this binary")?
            .join("tomo"),
    };
    if !tomo.exists() {
        bail!(
            "{} not found: cargo build --release -p tomo (or --tomo PATH)",
            tomo.display()
        );
    }
    let _ = std::fs::remove_file(&rec);
    let t = Instant::now();
    let out = Command::new(&tomo)
        .args(["ingest", "--format", "cdm"])
        .arg(&cdm)
        .arg("-o")
        .arg(&rec)
        .arg("--json")
        .output()
        .with_context(|| format!("running {}", tomo.display()))?;
    let secs = t.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "tomo ingest failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let rss = children_maxrss_kib();
    let rec_bytes = std::fs::metadata(&rec)?.len();
    let res = serde_json::json!({
        "cdm_events": events,
        "cdm_lines": lines,
        "cdm_bytes": bytes,
        "generate_seconds": gen_s,
        "ingest_seconds": secs,
        "definitions_pass_seconds": summary["definitions_seconds"],
        "cdm_events_per_second": events as f64 / secs,
        "lines_per_second": lines as f64 / secs,
        "input_mib_per_second": bytes as f64 / secs / (1u64 << 20) as f64,
        "tomo_events": summary["events"],
        "recording_bytes": rec_bytes,
        "max_rss_mib": rss / 1024,
        "bad_lines": summary["stats"]["bad_lines"],
        "mapped": summary["stats"]["mapped"],
        "skipped": summary["stats"]["skipped"],
    });
    if a.json {
        println!("{res}");
    } else {
        println!(
            "tomo ingest --format cdm: {events} CDM events ({lines} lines, {:.2} GiB) in {secs:.1} s: {:.0} events/s, {:.0} lines/s, {:.1} MiB/s; {} Tomo events, recording {:.1} MiB; peak RSS {} MiB",
            bytes as f64 / (1u64 << 30) as f64,
            events as f64 / secs,
            lines as f64 / secs,
            bytes as f64 / secs / (1u64 << 20) as f64,
            summary["events"],
            rec_bytes as f64 / (1u64 << 20) as f64,
            rss / 1024
        );
    }
    if !a.keep {
        let _ = std::fs::remove_file(&cdm);
        let _ = std::fs::remove_file(&rec);
    }
    Ok(())
}

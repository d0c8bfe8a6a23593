//! The persistent store (issue #4) on real recordings: the coverage suite's
//! programs and a shell pipeline, recorded with `tomo record`. Every query
//! answers the same from the store (`tomo index`) as from a replay; a stale
//! store is brought up to date; a damaged one makes the query replay and
//! say so, with the file and byte offset. A store whose graph does not fit
//! the memory `tomo` is given still answers `tomo why`, read in place.

mod common;

use common::*;
use serde_json::Value;

/// Every answer the queries give on `rec`, in JSON, as one string.
fn answers(rec: &str) -> String {
    let mut out = String::new();
    for cmd in ["graph", "ps", "files", "timeline"] {
        out += &tomo_ok(&[cmd, rec, "--json"]);
    }
    let files: Value = tomo_json(&["files", rec, "--json"]);
    let ps: Value = tomo_json(&["ps", rec, "--json"]);
    let first_pid = ps
        .as_array()
        .and_then(|a| a.first())
        .and_then(|p| p["pid"].as_u64())
        .map(|p| p.to_string());
    let mut names: Vec<String> = files
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| {
            f["path"]
                .as_str()
                .or(f["name"].as_str())
                .map(str::to_string)
        })
        .collect();
    names.truncate(25);
    for n in &names {
        for q in ["why", "impact"] {
            let o = tomo(&[q, rec, n, "--json"]);
            out += &format!("{q} {n} -> {:?}\n", o.status.code());
            out += &String::from_utf8_lossy(&o.stdout);
        }
        if let Some(p) = &first_pid {
            let o = tomo(&["path", rec, p, n, "--json"]);
            out += &format!("path {p} {n} -> {:?}\n", o.status.code());
            out += &String::from_utf8_lossy(&o.stdout);
        }
    }
    out
}

fn check_same(w: &Work, rec: &str, what: &str) {
    let idx = format!("{rec}.idx");
    let _ = std::fs::remove_file(&idx);
    let replay = answers(rec);
    let o = tomo(&["index", rec, "--quiet"]);
    assert!(o.status.success(), "{what}: tomo index failed: {o:?}");
    assert!(std::path::Path::new(&idx).exists());
    let stored = answers(rec);
    assert!(
        replay == stored,
        "{what}: answers differ between replay and store ({})",
        w.d()
    );
}

#[test]
fn store_answers_equal_replay_on_coverage_programs() {
    let w = Work::new();
    let mut n = 0;
    for entry in std::fs::read_dir(c_dir()).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        if p.extension() != Some(std::ffi::OsStr::new("c")) || name.starts_with("oracle") {
            continue;
        }
        let bin = w.compile(&name);
        let r = w.record_to(&format!("{name}.tomo"), &[&bin]);
        check_same(&w, &r.path, &name);
        n += 1;
    }
    assert!(n >= 10, "only {n} programs");
}

#[test]
fn store_answers_equal_replay_on_a_pipeline_and_damage_falls_back() {
    let w = Work::new();
    w.write("input/a.txt", "alpha\n");
    w.write("input/b.txt", "bravo\n");
    let r = w.record(&[
        "sh",
        "-c",
        "tar c input | gzip > out.tgz; cat out.tgz | wc -c > n",
    ]);
    check_same(&w, &r.path, "pipeline");

    // stats counts what the graph holds, from the store.
    let s = tomo_json(&["stats", &r.path, "--json"]);
    assert!(s["events"].as_u64().unwrap() > 10);
    assert!(s["store_bytes"].as_u64().unwrap() > 0);
    assert!(s["processes"].as_u64().unwrap() >= 4);

    // A damaged store: the query replays and says how to rebuild.
    let idx = format!("{}.idx", r.path);
    let want = tomo_ok(&["why", &r.path, "out.tgz", "--json"]);
    let mut b = std::fs::read(&idx).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    std::fs::write(&idx, &b).unwrap();
    let o = tomo(&["why", &r.path, "out.tgz", "--json"]);
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), want);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("byte offset") && err.contains(".idx") && err.contains("tomo index"),
        "{err}"
    );
    // `tomo index` rebuilds it.
    let o = tomo(&["index", &r.path, "--quiet"]);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("rebuilding"));
    let o = tomo(&["why", &r.path, "out.tgz", "--json"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), want);
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A heavy-tailed synthetic recording of `n` events (long-lived daemons with
/// many connections, short processes reading and writing shared files):
/// returns the name of the last output file created.
fn synthetic(path: &std::path::Path, n: u64) -> String {
    use tomo_event::*;
    let mut w = tomo_log::Writer::create(
        path,
        tomo_log::RecordingMeta::default(),
        tomo_log::WriterOptions {
            sync_interval: None,
            ..Default::default()
        },
    )
    .unwrap();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = move |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m.max(1)
    };
    let (mut t, mut seq) = (1_700_000_000_000_000_000u64, 0u64);
    let mut ev = |w: &mut tomo_log::Writer, pr: ProcRef, op: Op, ret: i64, gap: u64| {
        t += 1_000 + gap;
        let e = Event {
            host: Id128([7; 16]),
            boot: Id128([9; 16]),
            seq,
            ts_ns: t,
            proc: pr,
            cred: Cred::default(),
            op,
            ret,
        };
        seq += 1;
        w.append(&e).unwrap();
    };
    let file = |p: String, ino: u64| ObjRef {
        kind: ObjKind::File,
        dev: 2049,
        ino,
        path: Some(p),
    };
    let proc = |pid: u32, ppid: u32| ProcRef {
        pid,
        tid: pid,
        ppid,
        start_ticks: pid as u64 * 3,
    };
    let io = |call, dir, obj: ObjRef, count| Op::Io {
        call,
        dir,
        fd: 3,
        obj,
        offset: Some(0),
        count,
        sock: None,
    };
    let shell = proc(50, 1);
    let daemons: Vec<ProcRef> = (0..8).map(|d| proc(10 + d, 1)).collect();
    let (mut next_pid, mut next_ino) = (100u32, 10_000_000u64);
    let mut live: Vec<(ProcRef, u32)> = Vec::new();
    let mut last_out = String::new();
    let mut done = 0u64;
    while done < n {
        let gap = rnd(20_000);
        if rnd(100) < 40 {
            // A daemon reads a shared file or writes its log.
            let d = daemons[rnd(8) as usize];
            let (dir, obj) = if rnd(2) == 0 {
                let i = {
                    let k = rnd(20_000);
                    rnd(1 + k)
                };
                (Dir::Read, file(format!("/srv/data/{i}.dat"), 1000 + i))
            } else {
                let i = d.pid as u64;
                (Dir::Write, file(format!("/var/log/d{i}.log"), 500 + i))
            };
            ev(&mut w, d, io(Call::read, dir, obj, 64 + rnd(4000)), 0, gap);
        } else if live.len() < 8 {
            next_pid += 1;
            let pr = proc(next_pid, shell.pid);
            let spawn = Op::Spawn {
                call: Call::clone,
                kind: SpawnKind::Process,
                child: pr,
                flags: 0,
            };
            ev(&mut w, shell, spawn, pr.pid as i64, gap);
            let b = {
                let k = rnd(300);
                rnd(1 + k)
            };
            let exec = Op::Exec {
                call: Call::execve,
                exe: file(format!("/usr/bin/tool{b}"), 100_000 + b),
                argv: vec![format!("tool{b}"), format!("--job={}", pr.pid)],
                env: None,
                cwd: None,
            };
            ev(&mut w, pr, exec, 0, gap);
            let libc = Op::Mmap {
                call: Call::mmap,
                fd: 3,
                obj: file("/usr/lib/libc.so.6".into(), 200_000),
                offset: 0,
                len: 1 << 20,
                prot: mm::PROT_READ | mm::PROT_EXEC,
                flags: mm::MAP_PRIVATE,
            };
            ev(&mut w, pr, libc, 0x7f00_0000, gap);
            done += 3;
            live.push((
                pr,
                2 + {
                    let k = rnd(100);
                    rnd(1 + k)
                } as u32,
            ));
        } else {
            let k = rnd(live.len() as u64) as usize;
            let (pr, left) = live[k];
            if left == 0 {
                live.swap_remove(k);
                let exit = Op::Exit {
                    call: Call::exit_group,
                    code: 0,
                    signal: None,
                };
                ev(&mut w, pr, exit, 0, gap);
            } else {
                live[k].1 -= 1;
                let i = {
                    let k = rnd(20_000);
                    rnd(1 + k)
                };
                let shared = file(format!("/srv/data/{i}.dat"), 1000 + i);
                match rnd(10) {
                    0..=4 => ev(
                        &mut w,
                        pr,
                        io(Call::read, Dir::Read, shared, 1 + rnd(8192)),
                        0,
                        gap,
                    ),
                    5..=7 => ev(
                        &mut w,
                        pr,
                        io(Call::write, Dir::Write, shared, 1 + rnd(8192)),
                        0,
                        gap,
                    ),
                    _ => {
                        next_ino += 1;
                        last_out = format!("/tmp/out/{next_ino}");
                        let f = file(last_out.clone(), next_ino);
                        let open = Op::Open {
                            call: Call::openat,
                            fd: 4,
                            obj: f.clone(),
                            flags: 0o1101,
                            mode: 0o644,
                            created: true,
                        };
                        ev(&mut w, pr, open, 4, gap);
                        ev(
                            &mut w,
                            pr,
                            io(Call::write, Dir::Write, f, 1 + rnd(8192)),
                            0,
                            gap,
                        );
                        done += 1;
                    }
                }
            }
        }
        done += 1;
    }
    w.finish().unwrap();
    last_out
}

/// `tomo ARGS` with its address space limited to `mib` MiB (`ulimit -v`).
fn tomo_limited(mib: u64, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -v {} && exec \"$0\" \"$@\"", mib * 1024))
        .arg(tomo_bin())
        .args(args);
    run(&mut cmd, TIMEOUT * 5)
}

/// A store whose graph needs more memory than `tomo` is given still answers
/// `tomo why` (read in place, decoding only what the answer touches), the
/// same answer as the whole graph in memory gives; loading the whole graph
/// under the same limit fails. These 590,000 events make a graph that takes
/// `tomo stats` about 170 MiB resident to load whole; `tomo why` gets 64 MiB
/// of address space (and answers in about 30 MiB resident).
#[test]
fn a_store_larger_than_the_memory_given_still_answers_why() {
    const LIMIT_MIB: u64 = 64;
    let w = Work::new();
    let rec = w.dir.join("big.tomo");
    let rec = rec.to_str().unwrap();
    let target = synthetic(std::path::Path::new(rec), 600_000);
    let args = ["why", rec, &target, "--depth", "3", "--json"];
    // The answer of the whole graph in memory (a replay: no store yet).
    let want = tomo_ok(&args);
    assert!(want.contains(&target), "{want}");
    let o = tomo(&["index", rec, "--quiet"]);
    assert!(o.status.success(), "{o:?}");
    // The whole graph does not fit the limit...
    let o = tomo_limited(LIMIT_MIB, &["stats", rec, "--json"]);
    assert!(
        !o.status.success(),
        "the limit of {LIMIT_MIB} MiB is not below what the whole graph needs"
    );
    // ... and the store read in place answers within it, as in memory.
    for depth in ["3", "6"] {
        let args = ["why", rec, &target, "--depth", depth, "--json"];
        let o = tomo_limited(LIMIT_MIB, &args);
        assert!(
            o.status.success(),
            "why --depth {depth} under {LIMIT_MIB} MiB: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let unlimited = tomo_ok(&args);
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            unlimited,
            "depth {depth}"
        );
        if depth == "3" {
            assert_eq!(unlimited, want);
        }
    }
    // A suffix, a process name (ambiguous: many ran tool0) and a name not
    // in the recording (with suggestions) resolve by scanning the store,
    // within the limit too, with the same messages.
    let suffix = target.trim_start_matches("/tmp/");
    for t in [suffix, "tool0", "/tmp/out/nope"] {
        let args = ["why", rec, t, "--depth", "2"];
        let o = tomo_limited(LIMIT_MIB, &args);
        let u = tomo(&args);
        assert_eq!(o.status.code(), u.status.code(), "{t}");
        assert!(o.status.code().is_some_and(|c| c <= 1), "{t}: {o:?}");
        assert_eq!(o.stdout, u.stdout, "{t}");
        assert_eq!(
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&u.stderr),
            "{t}"
        );
    }
}

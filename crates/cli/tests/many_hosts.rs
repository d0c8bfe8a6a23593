//! Many hosts on one machine: network namespaces joined by veth pairs to the
//! root namespace (which routes between them and runs a real Kafka-protocol
//! broker, tansu), one eBPF agent per host shipping its spool, and a
//! collector gathering them into one store.
//!
//! Needs root, the kernel's eBPF and the tansu binary (`.ci/run` installs it
//! into /opt/tomo-tools; TOMO_TANSU overrides the path). Missing pieces fail
//! the tests, they are never skipped.

mod common;

use common::*;
use serde_json::Value;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The tests change global network state (namespaces, forwarding): one at a time.
static LAB: Mutex<()> = Mutex::new(());

fn sh(cmd: &str) {
    let o = Command::new("sh").args(["-c", cmd]).output().expect("sh");
    assert!(
        o.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn tansu_bin() -> PathBuf {
    let p = std::env::var_os("TOMO_TANSU")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/tomo-tools/bin/tansu"));
    assert!(
        p.is_file(),
        "the tansu broker is not installed at {} (run .ci/run, or `cargo install tansu --locked --features libsql --root /opt/tomo-tools`, or set TOMO_TANSU)",
        p.display()
    );
    p
}

/// A tansu broker in the root namespace, with its log in a SQLite file so
/// that it survives a restart.
struct Broker {
    child: Option<Child>,
    port: u16,
    advertise: String,
    db: PathBuf,
    log: PathBuf,
}

impl Broker {
    fn start(dir: &Path, advertise: &str, port: u16) -> Broker {
        let mut b = Broker {
            child: None,
            port,
            advertise: advertise.to_string(),
            db: dir.join("tansu.db"),
            log: dir.join("tansu.log"),
        };
        b.restart();
        b
    }

    fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(tansu_bin())
            .args(["broker", "--listener-url"])
            .arg(format!("tcp://0.0.0.0:{}", self.port))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://{}:{}", self.advertise, self.port))
            // tansu resolves sqlite:// paths against its working directory.
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(self.db.parent().unwrap())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start tansu");
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "tansu did not listen within 30 s: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self, topic: &str) -> String {
        format!("kafka://{}:{}/{topic}", self.advertise, self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A simulated host: a network namespace with a veth pair to the root
/// namespace, and its eBPF agent.
struct Host {
    name: String,
    ns: String,
    veth: String,
    ip: String,
    spool: PathBuf,
    agent: Option<Child>,
    agent_log: PathBuf,
}

impl Host {
    fn new(tag: &str, name: &str, k: u32, dir: &Path) -> Host {
        let ns = format!("tomo-{tag}-{name}");
        let veth = format!("tv{tag}{name}");
        let (gw, ip) = (format!("10.231.{k}.1"), format!("10.231.{k}.2"));
        sh(&format!(
            "ip netns del {ns} 2>/dev/null; ip link del {veth} 2>/dev/null; \
             ip netns add {ns} && ip link add {veth} type veth peer name eth0 netns {ns} && \
             ip addr add {gw}/24 dev {veth} && ip link set {veth} up && \
             ip -n {ns} addr add {ip}/24 dev eth0 && ip -n {ns} link set eth0 up && \
             ip -n {ns} link set lo up && ip -n {ns} route add default via {gw}"
        ));
        Host {
            name: name.to_string(),
            spool: dir.join(format!("spool-{name}")),
            agent_log: dir.join(format!("agent-{name}.log")),
            ns,
            veth,
            ip,
            agent: None,
        }
    }

    /// Starts (or restarts, on the same spool) the host's agent, inside the
    /// namespace so that its shipping goes over the host's link.
    fn start_agent(&mut self, url: &str) {
        let ready = self.spool.with_extension("ready");
        let _ = std::fs::remove_file(&ready);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.agent_log)
            .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, tomo_bin(), "agent"])
            .args(["--netns", &format!("/run/netns/{}", self.ns)])
            .args(["--host-name", &self.name])
            .arg("-o")
            .arg(&self.spool)
            .args(["--ship", url, "--stats-every", "0", "--json"])
            .arg("--ready-file")
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("cannot start the agent");
        self.agent = Some(child);
        let start = Instant::now();
        while !ready.exists() {
            if let Some(st) = self.agent.as_mut().unwrap().try_wait().unwrap() {
                panic!("agent {} exited with {st}:\n{}", self.name, self.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "agent {} did not start:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.agent_log).unwrap_or_default()
    }

    /// SIGTERM: the agent finishes its recording and ships what is left.
    fn stop_agent(&mut self) {
        if let Some(mut c) = self.agent.take() {
            // `ip netns exec` execs the agent: the child is the agent itself.
            sh(&format!("kill -TERM {}", c.id()));
            let start = Instant::now();
            loop {
                if let Some(st) = c.try_wait().unwrap() {
                    assert!(st.success(), "agent {} failed:\n{}", self.name, self.log());
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "agent {} did not stop:\n{}",
                    self.name,
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn kill9_agent(&mut self) {
        if let Some(mut c) = self.agent.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs `cmd` inside the host.
    fn exec(&self, cmd: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, "sh", "-c", cmd]);
        c
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill9_agent();
        let _ = Command::new("sh")
            .args([
                "-c",
                &format!(
                    "ip netns del {} 2>/dev/null; ip link del {} 2>/dev/null",
                    self.ns, self.veth
                ),
            ])
            .status();
    }
}

/// The root namespace forwards between the hosts while a lab exists.
struct Forwarding(String);

impl Forwarding {
    fn on() -> Forwarding {
        let old = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
        sh("echo 1 > /proc/sys/net/ipv4/ip_forward");
        Forwarding(old.trim().to_string())
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", &self.0);
    }
}

/// A child killed when the test ends, also when it fails.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn collect(url: &str, out: &Path, extra: &[&str]) -> Value {
    let o = run(
        Command::new(tomo_bin())
            .args(["collect", "--from", url, "-o"])
            .arg(out)
            .args(["--idle-exit", "3", "--json"])
            .args(extra),
        Duration::from_secs(300),
    );
    assert!(
        o.status.success(),
        "tomo collect failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("collect --json")
}

/// (kind, label, argv joined) of every node of a `why --json` tree.
fn why_nodes(t: &Value, out: &mut Vec<(String, String, String)>) {
    let n = &t["node"];
    let argv: Vec<&str> = n["argv"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .collect();
    let mut names = vec![n["label"].as_str().unwrap_or("").to_string()];
    names.extend(
        n["names"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string)),
    );
    for name in names {
        out.push((
            n["kind"].as_str().unwrap_or("").to_string(),
            name,
            argv.join(" "),
        ));
    }
    for c in t["children"].as_array().into_iter().flatten() {
        why_nodes(c, out);
    }
}

#[test]
fn why_of_a_download_continues_on_the_server_host() {
    let _g = LAB.lock().unwrap_or_else(|e| e.into_inner());
    let w = Work::new();
    let dir = PathBuf::from(w.d());
    let _fwd = Forwarding::on();
    let tag = format!("{}", std::process::id() % 100_000);
    let mut a = Host::new(&tag, "a", 41, &dir);
    let mut b = Host::new(&tag, "b", 42, &dir);
    let broker = Broker::start(&dir, "10.231.41.1", free_port());
    let url = broker.url("tomo-e2e");
    a.start_agent(&url);
    b.start_agent(&url);

    // Host A serves a file; host B downloads it.
    w.mkdir("srv");
    w.write(
        "srv/served.txt",
        "the bytes that travel between hosts\n".repeat(200),
    );
    let server = KillOnDrop(
        a.exec(&format!(
            "exec python3 -m http.server 8000 --bind {} --directory {}",
            a.ip,
            w.p("srv")
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    let dl = w.p("downloaded.txt");
    let o = run(
        &mut b.exec(&format!(
            "for i in $(seq 100); do curl -sf -o {dl} http://{}:8000/served.txt && exit 0; sleep 0.1; done; exit 1",
            a.ip
        )),
        Duration::from_secs(60),
    );
    assert!(
        o.status.success(),
        "download failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        std::fs::read(&dl).unwrap(),
        std::fs::read(w.p("srv/served.txt")).unwrap()
    );
    std::thread::sleep(Duration::from_millis(500));
    drop(server);
    a.stop_agent();
    b.stop_agent();

    let coll = dir.join("collection");
    let st = collect(&url, &coll, &[]);
    assert_eq!(st["finished_recordings"], 2, "{st}");
    assert_eq!(st["refused_blocks"], 0, "{st}");

    let why = tomo_json(&["why", coll.to_str().unwrap(), &dl, "--json"]);
    let mut nodes = Vec::new();
    why_nodes(&why["root"], &mut nodes);
    let dump = || format!("{nodes:#?}");
    assert!(
        nodes
            .iter()
            .any(|(k, _, argv)| k == "process" && argv.starts_with("curl")),
        "why names curl (host B): {}",
        dump()
    );
    assert!(
        nodes
            .iter()
            .any(|(k, _, argv)| k == "process" && argv.contains("http.server")),
        "why names the server process on host A: {}",
        dump()
    );
    assert!(
        nodes
            .iter()
            .any(|(k, l, _)| k == "file" && l == &w.p("srv/served.txt")),
        "why names the served file on host A: {}",
        dump()
    );
}

/// `tomo verify --json` of a recording: (events, blocks, chain head).
fn verify(p: &Path) -> (u64, u64, String) {
    let v = tomo_json(&["verify", p.to_str().unwrap(), "--json"]);
    (
        v["events"].as_u64().unwrap(),
        v["blocks"].as_u64().unwrap(),
        v["chain_head"].as_str().unwrap().to_string(),
    )
}

#[test]
fn faults_lose_nothing_and_duplicate_nothing() {
    let _g = LAB.lock().unwrap_or_else(|e| e.into_inner());
    let w = Work::new();
    let dir = PathBuf::from(w.d());
    let _fwd = Forwarding::on();
    let tag = format!("{}", std::process::id() % 100_000);
    let mut a = Host::new(&tag, "a", 43, &dir);
    let mut b = Host::new(&tag, "b", 44, &dir);
    let mut broker = Broker::start(&dir, "10.231.43.1", free_port());
    let url = broker.url("tomo-faults");
    a.start_agent(&url);
    b.start_agent(&url);
    // A collector runs through the faults.
    let coll = dir.join("collection");
    let coll_log = std::fs::File::create(dir.join("collect.log")).unwrap();
    let mut collector = KillOnDrop(
        Command::new(tomo_bin())
            .args(["collect", "--from", &url, "-o"])
            .arg(&coll)
            .args(["--index-every", "1", "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(coll_log)
            .spawn()
            .unwrap(),
    );

    // Steady file churn on both hosts for the whole test.
    w.mkdir("a");
    w.mkdir("b");
    let churn = |h: &Host, d: &str| {
        h.exec(&format!(
            "i=0; while [ $i -lt 1200 ]; do echo $i > {d}/f$((i % 40)); cat {d}/f$((i % 7)) > /dev/null; i=$((i+1)); sleep 0.01; done"
        ))
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
    };
    let mut wa = KillOnDrop(churn(&a, &w.p("a")));
    let mut wb = KillOnDrop(churn(&b, &w.p("b")));
    std::thread::sleep(Duration::from_secs(2));
    // 1. kill -9 an agent mid-stream; it restarts on the same spool.
    a.kill9_agent();
    std::thread::sleep(Duration::from_millis(500));
    a.start_agent(&url);
    std::thread::sleep(Duration::from_secs(2));
    // 2. stop and restart the broker.
    broker.stop();
    std::thread::sleep(Duration::from_secs(3));
    broker.restart();
    std::thread::sleep(Duration::from_secs(2));
    // 3. cut host B's link for a while.
    sh(&format!("ip link set {} down", b.veth));
    std::thread::sleep(Duration::from_secs(4));
    sh(&format!("ip link set {} up", b.veth));
    assert!(wa.0.wait().unwrap().success());
    assert!(wb.0.wait().unwrap().success());
    a.stop_agent();
    b.stop_agent();
    // 4. kill -9 the collector, then finish with a new one of the same
    // group. The dead member holds its partitions until its session (10 s)
    // times out; tansu hands them over only then.
    let _ = collector.0.kill();
    let _ = collector.0.wait();
    std::thread::sleep(Duration::from_secs(12));
    let st = collect(&url, &coll, &[]);
    assert_eq!(st["refused_blocks"], 0, "{st}");
    assert_eq!(st["bad_records"], 0, "{st}");

    // Every recording of every spool is in the collection, block for block.
    let mut spool_events = 0;
    let mut recordings = 0;
    for h in [&a, &b] {
        let mut names: Vec<_> = std::fs::read_dir(&h.spool)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        names.sort();
        if h.name == "a" {
            assert_eq!(names.len(), 2, "agent a ran twice: {names:?}");
        }
        for rec in names {
            let (ev, bl, head) = verify(&rec);
            assert!(ev > 0);
            let rid = tomo_json(&["verify", rec.to_str().unwrap(), "--json"])["recording_id"]
                .as_str()
                .unwrap()
                .to_string();
            let rep: Vec<_> = std::fs::read_dir(coll.join("hosts"))
                .unwrap()
                .map(|e| e.unwrap().path().join(&rid))
                .filter(|p| p.is_dir())
                .collect();
            assert_eq!(rep.len(), 1, "replica of {} ({rid})", rec.display());
            let clog = std::fs::read_to_string(dir.join("collect.log")).unwrap_or_default();
            assert_eq!(
                verify(&rep[0]),
                (ev, bl, head),
                "replica of {} differs; final collector: {st}\nfirst collector:\n{}",
                rec.display(),
                &clog[clog.len().saturating_sub(3000)..]
            );
            spool_events += ev;
            recordings += 1;
        }
    }
    assert_eq!(recordings, 3);
    // And the graph applied each event once.
    let stats = tomo_json(&["stats", coll.to_str().unwrap(), "--json"]);
    assert_eq!(stats["events"].as_u64(), Some(spool_events), "{stats}");
}

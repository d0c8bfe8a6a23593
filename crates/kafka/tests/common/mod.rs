//! A tansu broker (a Kafka-protocol broker written in Rust) for tests.
//!
//! Standard library only, so that other crates' tests can include it:
//! `#[path = "../../kafka/tests/common/mod.rs"] mod tansu;`
//!
//! The binary is `$TOMO_TANSU`, else `/opt/tomo-tools/bin/tansu`. Without
//! it [`Tansu::start`] panics with how to install it: the tests that need a
//! broker fail rather than skip (CI installs it).
//!
//! Each broker listens on a free port of 127.0.0.1, keeps its SQLite store
//! in its own temporary directory, and is killed (and the directory
//! removed) on drop. [`Tansu::stop`] and [`Tansu::restart`] keep the store
//! and the port, for outage tests.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const INSTALL_HINT: &str = "tansu, the test broker, is not installed: \
install it with `cargo install tansu --version 0.6.0 --locked --features libsql --root /opt/tomo-tools` \
(about 10 minutes; CI caches /opt/tomo-tools), or point TOMO_TANSU at a tansu binary";

/// The tansu binary, or why there is none.
pub fn tansu_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("TOMO_TANSU") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "TOMO_TANSU={} is not a file; {INSTALL_HINT}",
                p.display()
            ))
        };
    }
    let p = PathBuf::from("/opt/tomo-tools/bin/tansu");
    if p.is_file() {
        Ok(p)
    } else {
        Err(INSTALL_HINT.to_string())
    }
}

/// A running (or stopped) tansu broker.
pub struct Tansu {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    advertised: Option<String>,
    extra: Vec<String>,
    child: Option<Child>,
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local address").port()
}

impl Tansu {
    /// Starts a broker; panics (with how to install tansu) without the binary.
    pub fn start() -> Tansu {
        Tansu::start_with(&[])
    }

    /// Starts a broker with extra `tansu broker` arguments, e.g.
    /// `["--authentication"]` (SASL required).
    pub fn start_with(extra: &[&str]) -> Tansu {
        Tansu::start_advertising(None, extra)
    }

    /// Starts a broker that tells clients (Metadata, FindCoordinator) to
    /// connect to `advertised` (`HOST:PORT`, e.g. a proxy in front of it)
    /// rather than to its own address.
    pub fn start_advertising(advertised: Option<&str>, extra: &[&str]) -> Tansu {
        let bin = tansu_binary().unwrap_or_else(|e| panic!("{e}"));
        let dir = std::env::temp_dir().join(format!(
            "tomo-tansu-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the broker's directory");
        let mut t = Tansu {
            bin,
            dir,
            port: free_port(),
            advertised: advertised.map(str::to_string),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        t.spawn();
        t
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `kafka://127.0.0.1:PORT/TOPIC`.
    pub fn url(&self, topic: &str) -> String {
        format!("kafka://{}/{topic}", self.addr())
    }

    /// The broker's directory (its store and `tansu.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The broker's output so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("tansu.log")).unwrap_or_default()
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("tansu.log"))
            .expect("create tansu.log");
        let listener = format!("tcp://{}", self.addr());
        let advertised = format!(
            "tcp://{}",
            self.advertised.clone().unwrap_or_else(|| self.addr())
        );
        let child = Command::new(&self.bin)
            .current_dir(&self.dir)
            .arg("broker")
            .args(["--listener-url", &listener])
            .args(["--advertised-listener-url", &advertised])
            // tansu resolves sqlite:// paths against its working directory.
            .args(["--storage-engine", "sqlite://tansu.db"])
            .arg("--silent")
            .args(&self.extra)
            .env(
                "RUST_LOG",
                std::env::var("TOMO_TANSU_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.bin.display()));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("tansu exited at start ({status}):\n{}", self.log());
                }
            }
            if TcpStream::connect_timeout(
                &self.addr().parse().expect("socket address"),
                Duration::from_millis(200),
            )
            .is_ok()
            {
                return;
            }
            if start.elapsed() > Duration::from_secs(30) {
                panic!(
                    "tansu did not listen on {} in 30 s:\n{}",
                    self.addr(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the broker (SIGKILL); its store and port stay.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Replaces the extra `tansu broker` arguments for the next
    /// [`Tansu::restart`].
    pub fn set_extra(&mut self, extra: &[&str]) {
        self.extra = extra.iter().map(|s| s.to_string()).collect();
    }

    /// Starts the broker again on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Runs `tansu ARGS…` against this broker's directory (e.g. `user create`)
    /// and returns its output; panics when it fails.
    pub fn tool(&self, args: &[&str]) -> String {
        let out = Command::new(&self.bin)
            .current_dir(&self.dir)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", self.bin.display()));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "tansu {args:?}: {}\n{text}",
            out.status
        );
        text
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

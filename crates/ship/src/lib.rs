//! Shipping an agent's spool to a Kafka-protocol broker.
//!
//! The agent never sends events straight to the network: it writes its
//! durable log first (the *spool*: a directory of recordings, one per agent
//! run) and a [`Shipper`] sends the sealed blocks of those recordings, in
//! order, one Kafka record per block ([`tomo_kafka::frame`]). After the
//! broker acknowledges a batch (acks = all), the position after its last
//! block is saved in `SPOOL/ship.json` (written to a temporary file, synced,
//! renamed). A crash, a reboot or a broker outage therefore loses nothing
//! the spool holds: the shipper resumes after the last acknowledged block,
//! and may send a few blocks twice, which the collector's replica drops.
//!
//! The recordings of a spool are shipped in name order (agent runs are named
//! by their start time). All but the newest are complete (their writer
//! ended, cleanly or not); the newest is followed while it grows.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tomo_kafka::frame::{Block, Body, End, Frame, Origin};
use tomo_kafka::rskafka::client::partition::{Compression, PartitionClient};
use tomo_kafka::rskafka::client::Client;
use tomo_kafka::rskafka::record::Record;
use tomo_kafka::{KafkaError, KafkaUrl, Security};
use tomo_log::{LogError, Position, Reader};

/// The state file in the spool.
pub const STATE_FILE: &str = "ship.json";

#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error("{}: {reason}", path.display())]
    State { path: PathBuf, reason: String },
}

/// How to ship.
#[derive(Clone, Debug)]
pub struct ShipOptions {
    pub url: KafkaUrl,
    pub security: Security,
    pub compression: Compression,
    /// Partitions of the topic when the shipper has to create it.
    pub create_partitions: i32,
    /// Send a batch once it holds this many bytes of frames.
    pub batch_bytes: usize,
    /// Identifies this client to the broker.
    pub client_id: String,
}

impl ShipOptions {
    pub fn new(url: KafkaUrl) -> ShipOptions {
        ShipOptions {
            url,
            security: Security::default(),
            compression: Compression::NoCompression,
            create_partitions: 4,
            batch_bytes: 1 << 20,
            client_id: "tomo-agent".into(),
        }
    }
}

/// Counters of a shipper, readable while it runs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ShipStats {
    pub blocks: u64,
    pub events: u64,
    pub bytes: u64,
    /// Recordings whose end (or, for a writer that died, last intact block)
    /// was shipped.
    pub recordings_done: u64,
    /// Failed sends (each retried).
    pub retries: u64,
    pub last_error: Option<String>,
    /// Blocks in the spool not yet acknowledged, as of the last pass.
    pub pending_blocks: u64,
    /// Warnings (damaged recordings in the spool).
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct RecState {
    pos: Option<Position>,
    done: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    version: u32,
    recordings: BTreeMap<String, RecState>,
}

fn load_state(spool: &Path) -> Result<State, ShipError> {
    let p = spool.join(STATE_FILE);
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| ShipError::State {
            path: p,
            reason: format!(
                "not a valid ship state ({e}); move it away to ship the spool again from the start"
            ),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State {
            version: 1,
            ..State::default()
        }),
        Err(e) => Err(ShipError::State {
            path: p,
            reason: e.to_string(),
        }),
    }
}

fn save_state(spool: &Path, st: &State) -> Result<(), ShipError> {
    let p = spool.join(STATE_FILE);
    let tmp = spool.join(format!("{STATE_FILE}.tmp"));
    let err = |e: std::io::Error| ShipError::State {
        path: p.clone(),
        reason: e.to_string(),
    };
    let bytes = serde_json::to_vec(st).expect("state serializes");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(&bytes).map_err(err)?;
        f.sync_data().map_err(err)?;
    }
    std::fs::rename(&tmp, &p).map_err(err)?;
    Ok(())
}

/// The name of a new recording in a spool: its start time (UTC, to the
/// nanosecond) and the writer's pid, so that name order is start order.
pub fn new_recording_name() -> String {
    format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.9fZ"),
        std::process::id()
    )
}

/// The recordings of a spool, in shipping order: entries that are segment
/// directories or single recording files (`*.tomo`), by name.
pub fn spool_recordings(spool: &Path) -> Result<Vec<String>, ShipError> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(spool).map_err(|e| LogError::Io {
        path: spool.to_path_buf(),
        source: e,
    })?;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let p = e.path();
        if (p.is_dir() && p.join("00000000.tseg").exists())
            || (p.is_file() && name.ends_with(".tomo"))
        {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// A running shipper (a thread with its own single-threaded runtime).
pub struct Shipper {
    stop: Arc<AtomicBool>,
    drain_deadline: Arc<Mutex<Option<Instant>>>,
    stats: Arc<Mutex<ShipStats>>,
    thread: Option<std::thread::JoinHandle<Result<(), ShipError>>>,
}

impl Shipper {
    /// Starts shipping `spool`, following its newest recording.
    pub fn spawn(spool: &Path, opts: ShipOptions) -> Result<Shipper, ShipError> {
        let stop = Arc::new(AtomicBool::new(false));
        let drain_deadline = Arc::new(Mutex::new(None));
        let stats = Arc::new(Mutex::new(ShipStats::default()));
        // Fail early on an unreadable state file.
        load_state(spool)?;
        let (s, d, st, sp) = (
            Arc::clone(&stop),
            Arc::clone(&drain_deadline),
            Arc::clone(&stats),
            spool.to_path_buf(),
        );
        let thread = std::thread::Builder::new()
            .name("tomo-ship".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| ShipError::State {
                        path: sp.clone(),
                        reason: format!("cannot start the shipping runtime: {e}"),
                    })?;
                rt.block_on(run(&sp, &opts, &s, &d, &st))
            })
            .map_err(|e| ShipError::State {
                path: spool.to_path_buf(),
                reason: format!("cannot start the shipping thread: {e}"),
            })?;
        Ok(Shipper {
            stop,
            drain_deadline,
            stats,
            thread: Some(thread),
        })
    }

    pub fn stats(&self) -> ShipStats {
        self.stats.lock().expect("stats lock").clone()
    }

    /// Ships what the spool holds (its newest recording should be finished
    /// by now), giving up after `timeout` if the broker cannot be reached;
    /// what is left is shipped by the next run.
    pub fn finish(mut self, timeout: Duration) -> (ShipStats, Result<(), ShipError>) {
        *self.drain_deadline.lock().expect("lock") = Some(Instant::now() + timeout);
        self.stop.store(true, Ordering::SeqCst);
        let res = match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(ShipError::State {
                path: PathBuf::new(),
                reason: "the shipping thread panicked".into(),
            }),
            None => Ok(()),
        };
        (self.stats(), res)
    }
}

impl Drop for Shipper {
    fn drop(&mut self) {
        *self.drain_deadline.lock().expect("lock") = Some(Instant::now());
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A connection to the broker, rebuilt after errors.
struct Conn {
    client: Client,
    partitions: i32,
    clients: BTreeMap<i32, PartitionClient>,
}

struct Ctx<'a> {
    opts: &'a ShipOptions,
    stop: &'a AtomicBool,
    drain: &'a Mutex<Option<Instant>>,
    stats: &'a Mutex<ShipStats>,
    conn: Option<Conn>,
}

impl Ctx<'_> {
    /// Past the drain deadline: stop retrying.
    fn give_up(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
            && self
                .drain
                .lock()
                .expect("lock")
                .is_some_and(|d| Instant::now() >= d)
    }

    async fn connect(&mut self) -> Result<&mut Conn, KafkaError> {
        if self.conn.is_none() {
            let client = tomo_kafka::connect(
                &self.opts.url,
                &self.opts.security,
                &self.opts.client_id,
                Duration::from_secs(2),
            )
            .await?;
            let partitions =
                tomo_kafka::ensure_topic(&client, &self.opts.url, self.opts.create_partitions)
                    .await?;
            self.conn = Some(Conn {
                client,
                partitions,
                clients: BTreeMap::new(),
            });
        }
        Ok(self.conn.as_mut().expect("just set"))
    }

    async fn try_send(&mut self, host: &[u8; 16], records: &[Record]) -> Result<(), KafkaError> {
        let url = self.opts.url.clone();
        let compression = self.opts.compression;
        let conn = self.connect().await?;
        let p = tomo_kafka::partition_of(host, conn.partitions);
        if !conn.clients.contains_key(&p) {
            let pc = tomo_kafka::partition(&conn.client, &url, p).await?;
            conn.clients.insert(p, pc);
        }
        let pc = conn.clients.get(&p).expect("just inserted");
        pc.produce(records.to_vec(), compression)
            .await
            .map_err(|source| KafkaError::Client {
                brokers: url.brokers.join(","),
                source,
            })?;
        Ok(())
    }

    /// Sends until acknowledged; `false` if it gave up (drain deadline).
    async fn send(&mut self, host: &[u8; 16], records: &[Record]) -> bool {
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.try_send(host, records).await {
                Ok(()) => return true,
                Err(e) => {
                    self.conn = None;
                    {
                        let mut s = self.stats.lock().expect("lock");
                        s.retries += 1;
                        if s.last_error.as_deref() != Some(&e.to_string()) {
                            tracing::warn!("shipping: {e}; retrying");
                        }
                        s.last_error = Some(e.to_string());
                    }
                    if self.give_up() {
                        return false;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(3));
                }
            }
        }
    }
}

fn record(origin: &Origin, body: Body) -> Record {
    let frame = Frame {
        origin: origin.clone(),
        body,
    };
    let mut headers = BTreeMap::new();
    headers.insert("tomo-host".to_string(), origin.host.to_vec());
    headers.insert("tomo-boot".to_string(), origin.boot.to_vec());
    headers.insert("tomo-recording".to_string(), origin.recording_id.to_vec());
    Record {
        key: Some(origin.host.to_vec()),
        value: Some(frame.encode()),
        headers,
        timestamp: chrono::Utc::now(),
    }
}

async fn run(
    spool: &Path,
    opts: &ShipOptions,
    stop: &AtomicBool,
    drain: &Mutex<Option<Instant>>,
    stats: &Mutex<ShipStats>,
) -> Result<(), ShipError> {
    let mut st = load_state(spool)?;
    let mut ctx = Ctx {
        opts,
        stop,
        drain,
        stats,
        conn: None,
    };
    loop {
        // Read the stop flag before the pass: a pass that starts after the
        // writer finished sees everything it wrote.
        let stopping = stop.load(Ordering::SeqCst);
        let recs = spool_recordings(spool)?;
        let mut sent_any = false;
        let mut pending = 0u64;
        let mut gave_up = false;
        for (i, name) in recs.iter().enumerate() {
            let rs = st.recordings.get(name).cloned().unwrap_or_default();
            if rs.done {
                continue;
            }
            // The newest recording may still be written, unless we stop.
            let live = i + 1 == recs.len() && !stopping;
            let path = spool.join(name);
            let opened = match &rs.pos {
                Some(p) => Reader::resume(&path, p),
                None => Reader::open(&path),
            };
            let mut reader = match opened {
                Ok(r) => r,
                // Just created, header not written yet.
                Err(LogError::NotARecording { .. }) if live => continue,
                Err(e) => {
                    let w = format!("{}: not shipped: {e}", path.display());
                    tracing::warn!("{w}");
                    stats.lock().expect("lock").warnings.push(w);
                    st.recordings.insert(
                        name.clone(),
                        RecState {
                            pos: rs.pos,
                            done: true,
                        },
                    );
                    save_state(spool, &st)?;
                    continue;
                }
            };
            let meta = reader.meta().clone();
            let origin = Origin {
                host: meta.host.0,
                boot: meta.boot.0,
                recording_id: reader.recording_id(),
                schema_version: reader.schema_version(),
                meta_json: reader.meta_json().to_vec(),
            };
            let mut batch = Batch::default();
            let mut pos = rs.pos;
            let mut damaged = None;
            loop {
                let more = match reader.next_block() {
                    Some(Ok(s)) => {
                        let p = reader.block_end_position().expect("a block was returned");
                        let payload = reader.block_payload().expect("current block").to_vec();
                        let body = Body::Block(Block {
                            segment: s.segment,
                            index: p.blocks - 1,
                            raw_len: s.raw_len,
                            events: s.events,
                            first_seq: s.first_seq,
                            last_seq: s.last_seq,
                            min_ts: s.min_ts,
                            max_ts: s.max_ts,
                            chain: s.chain,
                            payload,
                        });
                        batch.push(record(&origin, body), s.events as u64);
                        pos = Some(p);
                        true
                    }
                    Some(Err(e)) => {
                        damaged = Some(e);
                        false
                    }
                    None => false,
                };
                if !batch.records.is_empty() && (!more || batch.bytes >= opts.batch_bytes) {
                    if !ctx.send(&origin.host, &batch.records).await {
                        gave_up = true;
                        break;
                    }
                    {
                        let mut s = stats.lock().expect("lock");
                        s.blocks += batch.records.len() as u64;
                        s.events += batch.events;
                        s.bytes += batch.bytes as u64;
                        s.last_error = None;
                    }
                    st.recordings
                        .insert(name.clone(), RecState { pos, done: false });
                    save_state(spool, &st)?;
                    sent_any = true;
                    batch = Batch::default();
                }
                if !more {
                    break;
                }
            }
            if gave_up {
                pending += 1;
                break;
            }
            let finished = reader.finished();
            if finished {
                let p = reader.position();
                let end = End {
                    events: pos.map_or(p.events, |q| q.events),
                    blocks: pos.map_or(p.blocks, |q| q.blocks),
                    chain_head: reader.chain_head(),
                };
                if !ctx
                    .send(&origin.host, &[record(&origin, Body::End(end))])
                    .await
                {
                    gave_up = true;
                    break;
                }
            } else if live {
                // A torn block at the end of the live recording is one
                // being written: look again on the next pass.
                continue;
            } else if let Some(e) = &damaged {
                let w = format!("{}: shipped up to the damage: {e}", path.display());
                tracing::warn!("{w}");
                stats.lock().expect("lock").warnings.push(w);
            }
            st.recordings
                .insert(name.clone(), RecState { pos, done: true });
            save_state(spool, &st)?;
            stats.lock().expect("lock").recordings_done += 1;
            sent_any = true;
        }
        stats.lock().expect("lock").pending_blocks = pending;
        if gave_up {
            return Ok(());
        }
        if stopping && !sent_any {
            return Ok(());
        }
        if !sent_any {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Records waiting to be sent together.
#[derive(Default)]
struct Batch {
    records: Vec<Record>,
    bytes: usize,
    events: u64,
}

impl Batch {
    fn push(&mut self, r: Record, events: u64) {
        self.bytes += r.value.as_ref().map_or(0, |v| v.len());
        self.events += events;
        self.records.push(r);
    }
}

//! Collecting many hosts into one store.
//!
//! A collector is a member of a Kafka consumer group: the broker's group
//! coordinator gives it some partitions of the topic (all of a host's
//! records are in one partition), and several collectors share the load.
//! Each record is one block of an agent's log ([`tomo_kafka::frame`]); the
//! collector appends it to the byte-identical replica of that recording in
//! its collection directory ([`tomo_log::Replica`]), syncs the replicas,
//! and only then commits the consumed offsets to the group. A collector
//! that crashes re-reads some records after its last commit; the replicas
//! drop the blocks they hold, so no event is lost or applied twice.
//!
//! Every few seconds (and at exit) the collection's store is brought up to
//! date ([`tomo_ingest::collection`]), which is what `tomo why` opens.

use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tomo_kafka::frame::{Body, Frame};
use tomo_kafka::group::{GroupMember, Heartbeat};
use tomo_kafka::rskafka::client::error::{Error as RsError, ProtocolError};
use tomo_kafka::rskafka::client::partition::{OffsetAt, PartitionClient};
use tomo_kafka::rskafka::client::Client;
use tomo_kafka::{KafkaError, KafkaUrl, Security};
use tomo_log::{Appended, LogError, Replica, ReplicaOrigin};

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Clone, Debug)]
pub struct CollectOptions {
    pub url: KafkaUrl,
    pub security: Security,
    pub group: String,
    pub client_id: String,
    /// The collection directory.
    pub out: PathBuf,
    /// Bring the store up to date this often (and at exit); `None`: only at exit.
    pub index_every: Option<Duration>,
    /// Stop once every assigned partition has been read to its end and
    /// nothing new came for this long (batch imports, tests).
    pub idle_exit: Option<Duration>,
    pub session_timeout: Duration,
}

impl CollectOptions {
    pub fn new(url: KafkaUrl, out: PathBuf) -> CollectOptions {
        CollectOptions {
            url,
            security: Security::default(),
            group: "tomo-collect".into(),
            client_id: "tomo-collect".into(),
            out,
            index_every: Some(Duration::from_secs(5)),
            idle_exit: None,
            session_timeout: Duration::from_secs(10),
        }
    }
}

/// Counters of a collector.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CollectStats {
    pub records: u64,
    pub blocks: u64,
    pub events: u64,
    pub bytes: u64,
    /// Blocks received again (at-least-once delivery) and dropped.
    pub duplicates: u64,
    /// Recordings whose end arrived (trailer written in the replica).
    pub finished_recordings: u64,
    /// Records that are not Tomo frames, and blocks that could not be
    /// appended (gap, chain mismatch), with the first few reasons.
    pub bad_records: u64,
    pub refused_blocks: u64,
    pub problems: Vec<String>,
    pub rebalances: u64,
    pub reconnects: u64,
    pub store_updates: u64,
    pub store_events: u64,
    /// Partitions held at the end.
    pub partitions: Vec<i32>,
}

impl CollectStats {
    fn problem(&mut self, p: String) {
        tracing::warn!("{p}");
        if self.problems.len() < 20 {
            self.problems.push(p);
        }
    }
}

/// The collection's replicas, opened on demand.
struct Replicas {
    out: PathBuf,
    open: HashMap<[u8; 16], Replica>,
    dirty: Vec<[u8; 16]>,
}

impl Replicas {
    fn get(&mut self, o: &tomo_kafka::frame::Origin) -> Result<&mut Replica, LogError> {
        if !self.open.contains_key(&o.recording_id) {
            let dir = tomo_ingest::collection::replica_dir(&self.out, &o.host, &o.recording_id);
            let r = Replica::open(
                &dir,
                ReplicaOrigin {
                    recording_id: o.recording_id,
                    meta_json: o.meta_json.clone(),
                    schema_version: o.schema_version,
                },
            )?;
            if let Some(why) = &r.repaired {
                tracing::warn!("{}: {why}", dir.display());
            }
            self.open.insert(o.recording_id, r);
        }
        Ok(self.open.get_mut(&o.recording_id).expect("just inserted"))
    }

    fn sync(&mut self) -> Result<(), LogError> {
        for id in self.dirty.drain(..) {
            if let Some(r) = self.open.get_mut(&id) {
                r.sync()?;
            }
        }
        Ok(())
    }
}

/// Applies one record to the replicas.
fn apply(reps: &mut Replicas, value: &[u8], where_: &str, st: &mut CollectStats) {
    st.records += 1;
    st.bytes += value.len() as u64;
    let f = match Frame::decode(value) {
        Ok(f) => f,
        Err(e) => {
            st.bad_records += 1;
            st.problem(format!("{where_}: {e}"));
            return;
        }
    };
    let rep = match reps.get(&f.origin) {
        Ok(r) => r,
        Err(e) => {
            st.refused_blocks += 1;
            st.problem(format!("{where_}: {e}"));
            return;
        }
    };
    let res = match &f.body {
        Body::Block(b) => rep.append(&b.borrowed()).map(|a| {
            if a == Appended::Added {
                st.blocks += 1;
                st.events += b.events as u64;
            } else {
                st.duplicates += 1;
            }
        }),
        Body::End(e) => {
            let was = rep.finished();
            rep.finish(e.events, e.blocks, e.chain_head).map(|()| {
                if !was {
                    st.finished_recordings += 1;
                }
            })
        }
    };
    match res {
        Ok(()) => reps.dirty.push(f.origin.recording_id),
        Err(e) => {
            st.refused_blocks += 1;
            st.problem(format!("{where_}: {e}"));
        }
    }
}

struct Session {
    client: Client,
    member: GroupMember,
    parts: Vec<(i32, PartitionClient, i64)>,
}

async fn session(opts: &CollectOptions) -> Result<Session, KafkaError> {
    let client = tomo_kafka::connect(
        &opts.url,
        &opts.security,
        &opts.client_id,
        Duration::from_secs(10),
    )
    .await?;
    tomo_kafka::ensure_topic(&client, &opts.url, 4).await?;
    let member = GroupMember::join(
        &opts.url,
        &opts.security,
        &opts.group,
        &opts.client_id,
        opts.session_timeout,
    )
    .await?;
    let mut s = Session {
        client,
        member,
        parts: Vec::new(),
    };
    assign(opts, &mut s).await?;
    Ok(s)
}

/// Partition clients and start offsets for the current assignment.
async fn assign(opts: &CollectOptions, s: &mut Session) -> Result<(), KafkaError> {
    let parts = s.member.assignment().partitions.clone();
    let committed = s.member.committed(&parts).await?;
    s.parts.clear();
    for (p, off) in committed {
        let pc = tomo_kafka::partition(&s.client, &opts.url, p).await?;
        let off =
            match off {
                Some(o) => o,
                None => pc.get_offset(OffsetAt::Earliest).await.map_err(|source| {
                    KafkaError::Client {
                        brokers: opts.url.brokers.join(","),
                        source,
                    }
                })?,
            };
        s.parts.push((p, pc, off));
    }
    tracing::info!("collect: assigned partitions {parts:?}");
    Ok(())
}

/// Runs a collector until `stop` (or `idle_exit`). Broker outages are
/// waited out; the stats say what happened.
pub fn run(opts: &CollectOptions, stop: &AtomicBool) -> Result<CollectStats, CollectError> {
    tomo_ingest::collection::create(&opts.out).map_err(|source| CollectError::Io {
        path: opts.out.clone(),
        source,
    })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| CollectError::Io {
            path: opts.out.clone(),
            source,
        })?;
    rt.block_on(run_async(opts, stop))
}

async fn run_async(opts: &CollectOptions, stop: &AtomicBool) -> Result<CollectStats, CollectError> {
    let mut st = CollectStats::default();
    let mut reps = Replicas {
        out: opts.out.clone(),
        open: HashMap::new(),
        dirty: Vec::new(),
    };
    let mut sess: Option<Session> = None;
    let mut backoff = Duration::from_millis(200);
    let mut last_hb = Instant::now();
    let mut last_index = Instant::now();
    let mut last_data = Instant::now();
    let mut indexed_blocks = 0u64;
    // The store update runs on its own thread: it rewrites the whole store
    // (seconds to minutes as the collection grows), and run on this loop it
    // kept the member from heartbeating for longer than its session, so the
    // broker took its partitions away and the group rebalanced.
    let mut indexing: Option<std::thread::JoinHandle<IndexOutcome>> = None;
    while !stop.load(Ordering::SeqCst) {
        if sess.is_none() {
            match session(opts).await {
                Ok(s) => {
                    sess = Some(s);
                    backoff = Duration::from_millis(200);
                }
                Err(e) => {
                    st.reconnects += 1;
                    st.problem(format!("collect: {e}; retrying"));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(3));
                    continue;
                }
            }
        }
        let s = sess.as_mut().expect("connected");
        let mut got = false;
        let mut failed = None;
        // Holding no partition says nothing about the topic's end: a
        // member that died without leaving may still hold them all until
        // its session times out and the group rebalances.
        let mut at_end = !s.parts.is_empty();
        let n = s.parts.len().max(1) as i32;
        for (p, pc, off) in s.parts.iter_mut() {
            match pc.fetch_records(*off, 1..(8 << 20), 200 / n).await {
                Ok((recs, hw)) => {
                    for r in recs {
                        if let Some(v) = &r.record.value {
                            let w = format!("{} partition {p} offset {}", opts.url, r.offset);
                            apply(&mut reps, v, &w, &mut st);
                        }
                        *off = r.offset + 1;
                        got = true;
                    }
                    if *off < hw {
                        at_end = false;
                    }
                }
                Err(RsError::ServerError {
                    protocol_error: ProtocolError::OffsetOutOfRange,
                    ..
                }) => {
                    // Records deleted by retention (or a broker that lost
                    // its log): restart at the earliest offset it has.
                    if let Ok(e) = pc.get_offset(OffsetAt::Earliest).await {
                        st.problem(format!(
                            "{} partition {p}: offset {} is gone; continuing at {e}",
                            opts.url, *off
                        ));
                        *off = e;
                    }
                }
                Err(e) => {
                    failed = Some(e.to_string());
                    break;
                }
            }
        }
        if got {
            last_data = Instant::now();
            // Durable replicas first, then the commit: a crash in between
            // re-reads records that the replicas drop as duplicates.
            reps.sync()?;
            let offs: Vec<(i32, i64)> = s.parts.iter().map(|(p, _, o)| (*p, *o)).collect();
            if let Err(e) = s.member.commit(&offs).await {
                st.problem(format!("collect: commit: {e}; rejoining"));
                failed = Some(e.to_string());
            }
        }
        if failed.is_none() && last_hb.elapsed() >= Duration::from_secs(1) {
            last_hb = Instant::now();
            match s.member.heartbeat().await {
                Ok(Heartbeat::Ok) => {}
                Ok(Heartbeat::Rebalance) => {
                    st.rebalances += 1;
                    let r = async {
                        s.member.rejoin().await?;
                        assign(opts, s).await
                    }
                    .await;
                    if let Err(e) = r {
                        failed = Some(e.to_string());
                    }
                }
                Err(e) => failed = Some(e.to_string()),
            }
        }
        if let Some(e) = failed {
            st.reconnects += 1;
            st.problem(format!("collect: {e}; reconnecting"));
            sess = None;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(3));
            continue;
        }
        if indexing.as_ref().is_some_and(|h| h.is_finished()) {
            if let Some(h) = indexing.take() {
                finish_index(h, &opts.out, &mut st);
            }
            // The interval counts from the end of the last update, so a
            // slow update is followed by a pause, not by the next one.
            last_index = Instant::now();
        }
        if let Some(iv) = opts.index_every {
            if indexing.is_none()
                && last_index.elapsed() >= iv
                && st.blocks + st.finished_recordings > indexed_blocks
            {
                indexed_blocks = st.blocks + st.finished_recordings;
                // What the update reads must be in the replicas' files.
                reps.sync()?;
                let out = opts.out.clone();
                indexing = Some(std::thread::spawn(move || index(&out)));
            }
        }
        if let Some(idle) = opts.idle_exit {
            if at_end && last_data.elapsed() >= idle {
                break;
            }
        }
    }
    reps.sync()?;
    if let Some(s) = sess {
        st.partitions = s.member.assignment().partitions.clone();
        let offs: Vec<(i32, i64)> = s.parts.iter().map(|(p, _, o)| (*p, *o)).collect();
        let mut m = s.member;
        if let Err(e) = m.commit(&offs).await {
            st.problem(format!("collect: final commit: {e}"));
        }
        if let Err(e) = m.leave().await {
            tracing::debug!("collect: leave: {e}");
        }
    }
    if let Some(h) = indexing.take() {
        finish_index(h, &opts.out, &mut st);
    }
    let last = index(&opts.out);
    last.apply(&mut st);
    Ok(st)
}

/// What a store update did, for the stats.
struct IndexOutcome {
    events: Option<u64>,
    problem: Option<String>,
}

impl IndexOutcome {
    fn apply(self, st: &mut CollectStats) {
        if let Some(n) = self.events {
            st.store_updates += 1;
            st.store_events = n;
        }
        if let Some(p) = self.problem {
            st.problem(p);
        }
    }
}

fn finish_index(h: std::thread::JoinHandle<IndexOutcome>, out: &Path, st: &mut CollectStats) {
    match h.join() {
        Ok(o) => o.apply(st),
        Err(_) => st.problem(format!("{}: the store update panicked", out.display())),
    }
}

/// Brings the collection's store up to date. Replicas may be appended to
/// meanwhile: a block the update finds half written ends its reading there
/// (the store keeps whole blocks only) and the next update goes on from it.
fn index(out: &Path) -> IndexOutcome {
    match tomo_ingest::collection::update(out, tomo_ingest::index::BadStore::Rebuild, &mut |_| {}) {
        Ok((g, rep)) => {
            // Freed on this thread, not on the loop's.
            drop(g);
            IndexOutcome {
                events: Some(rep.meta.events),
                problem: rep
                    .write_error
                    .map(|e| format!("{}: cannot write the store: {e}", out.display())),
            }
        }
        Err(e) => IndexOutcome {
            events: None,
            problem: Some(format!("{}: cannot update the store: {e}", out.display())),
        },
    }
}

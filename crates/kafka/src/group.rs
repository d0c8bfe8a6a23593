//! Consumer-group membership over the Kafka protocol.
//!
//! `rskafka` reads partitions but has no consumer groups, so collectors that
//! share the load of one topic use this module: a [`GroupMember`] finds the
//! group coordinator, joins the group (protocol type `consumer`, one
//! protocol, `range`), and, when it is the leader, computes a range
//! assignment of all the partitions of the topic over the members. It then
//! keeps its membership with heartbeats, commits and fetches offsets, and
//! leaves.
//!
//! The requests are `kafka-protocol` messages over a plain TCP or a
//! tokio-rustls connection, with SASL (PLAIN, SCRAM-SHA-256/512) when
//! [`Security::sasl`] is set. Versions are negotiated with ApiVersions: each
//! request uses the highest version both the broker and this module support.
//!
//! A caller's loop looks like this:
//!
//! ```text
//! let mut m = GroupMember::join(&url, &sec, "collectors", "tomo-collect", session).await?;
//! loop {
//!     // read m.assignment().partitions, from m.committed(...) on
//!     if m.heartbeat().await? == Heartbeat::Rebalance {
//!         // stop reading, commit what was ingested (may fail: fenced), then
//!         m.rejoin().await?;
//!     }
//!     // m.commit(&[(partition, next_offset_to_read)]) after ingesting
//! }
//! ```
//!
//! Heartbeat more often than a third of the session timeout: a member that
//! is silent for a whole session timeout is removed from the group.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, ConsumerProtocolAssignment,
    ConsumerProtocolSubscription, FindCoordinatorRequest, GroupId, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest, MetadataRequest, OffsetCommitRequest, OffsetFetchRequest,
    RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslHandshakeRequest, SyncGroupRequest,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{KafkaError, KafkaUrl, SaslMechanism, Security};

/// What the group gave this member in one generation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assignment {
    pub generation: i32,
    pub member_id: String,
    /// Partitions of the URL's topic, sorted.
    pub partitions: Vec<i32>,
}

/// Outcome of a heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heartbeat {
    /// Still a member of the current generation.
    Ok,
    /// The group is rebalancing (or this member was fenced or expired): stop
    /// reading the assigned partitions, commit if possible, and
    /// [`GroupMember::rejoin`].
    Rebalance,
}

/// Timing of a membership. [`GroupMember::join`] uses
/// [`GroupOptions::new`] of its session timeout.
#[derive(Clone, Debug)]
pub struct GroupOptions {
    /// A member silent for this long is removed from the group.
    pub session_timeout: Duration,
    /// How long the coordinator waits for the members to rejoin during a
    /// rebalance.
    pub rebalance_timeout: Duration,
    /// How long a call keeps retrying retriable failures (coordinator not
    /// available or loading, coordinator moved, connection lost) before it
    /// returns the last error. Joining may take this plus the rebalance
    /// timeout.
    pub retry_for: Duration,
    /// Time limit of one request (JoinGroup: plus the rebalance timeout,
    /// since a broker holds it until the members have rejoined).
    pub request_timeout: Duration,
}

impl GroupOptions {
    pub fn new(session_timeout: Duration) -> GroupOptions {
        GroupOptions {
            session_timeout,
            rebalance_timeout: (session_timeout * 2).max(Duration::from_secs(10)),
            retry_for: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// A member of a consumer group, connected to the group's coordinator.
pub struct GroupMember {
    url: KafkaUrl,
    tls: Option<Arc<rustls::ClientConfig>>,
    sasl: Option<(SaslMechanism, String, String)>,
    group: String,
    client_id: String,
    opts: GroupOptions,
    /// Connection to the coordinator; `None` after a failure (reconnects).
    conn: Option<Conn>,
    /// Member id for the next JoinGroup ("" to join afresh).
    member_id: String,
    assignment: Assignment,
    needs_rejoin: bool,
    /// The generation a heartbeat was told to rebalance from: a
    /// coordinator that then answers the JoinGroup with that same
    /// generation did not start a rebalance (see `try_join`).
    rebalance_from: Option<i32>,
    /// Our encoded `ConsumerProtocolSubscription`, the same bytes at every
    /// join (a coordinator rebalances when a member's metadata changes).
    subscription: Bytes,
}

impl std::fmt::Debug for GroupMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupMember")
            .field("url", &self.url.to_string())
            .field("group", &self.group)
            .field("coordinator", &self.conn.as_ref().map(|c| c.broker.clone()))
            .field("assignment", &self.assignment)
            .field("needs_rejoin", &self.needs_rejoin)
            .finish()
    }
}

/// The protocol type and the one protocol (assignor) we offer.
const PROTOCOL_TYPE: &str = "consumer";
const PROTOCOL_NAME: &str = "range";

/// Versions this module speaks, per API (intersected with the broker's and
/// with what `kafka-protocol` can encode).
const V_API_VERSIONS: (i16, i16) = (0, 3);
const V_FIND_COORDINATOR: (i16, i16) = (0, 4);
const V_JOIN_GROUP: (i16, i16) = (0, 9);
const V_SYNC_GROUP: (i16, i16) = (0, 5);
const V_HEARTBEAT: (i16, i16) = (0, 4);
const V_LEAVE_GROUP: (i16, i16) = (0, 5);
// v9 of these two belongs to the KIP-848 protocol (member epochs).
const V_OFFSET_COMMIT: (i16, i16) = (2, 8);
const V_OFFSET_FETCH: (i16, i16) = (1, 8);
const V_METADATA: (i16, i16) = (0, 12);
const V_SASL_HANDSHAKE: (i16, i16) = (1, 1);
const V_SASL_AUTHENTICATE: (i16, i16) = (0, 2);

/// Largest response frame accepted.
const MAX_FRAME: usize = 64 << 20;

/// Kafka error codes this module acts on.
mod code {
    pub const NONE: i16 = 0;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const FENCED_INSTANCE_ID: i16 = 82;
    pub const UNSTABLE_OFFSET_COMMIT: i16 = 88;
}

/// Kafka's name of an error code, e.g. `REBALANCE_IN_PROGRESS (27)`.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE (0)".to_string(),
        Some(ResponseError::Unknown(c)) => format!("UNKNOWN_ERROR_CODE ({c})"),
        Some(e) => {
            let camel = e.to_string();
            let mut s = String::with_capacity(camel.len() + 8);
            for (i, ch) in camel.chars().enumerate() {
                if ch.is_ascii_uppercase() && i > 0 {
                    s.push('_');
                }
                s.push(ch.to_ascii_uppercase());
            }
            format!("{s} ({code})")
        }
    }
}

fn is_coordinator_error(c: i16) -> bool {
    matches!(
        c,
        code::COORDINATOR_LOAD_IN_PROGRESS
            | code::COORDINATOR_NOT_AVAILABLE
            | code::NOT_COORDINATOR
    )
}

fn api_name(key: i16) -> String {
    match kafka_protocol::messages::ApiKey::try_from(key) {
        Ok(k) => format!("{k:?}"),
        Err(_) => format!("API {key}"),
    }
}

fn millis(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}

/// A failed step: the error, and whether (and how soon) to try again.
struct Fail {
    err: Box<KafkaError>,
    retry: Retry,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    No,
    /// At once (the broker told us what to change, e.g. MEMBER_ID_REQUIRED).
    Now,
    /// After a backoff.
    Later,
}

impl Fail {
    fn fatal(err: KafkaError) -> Fail {
        Fail {
            err: Box::new(err),
            retry: Retry::No,
        }
    }
    fn later(err: KafkaError) -> Fail {
        Fail {
            err: Box::new(err),
            retry: Retry::Later,
        }
    }
    fn now(err: KafkaError) -> Fail {
        Fail {
            err: Box::new(err),
            retry: Retry::Now,
        }
    }
}

struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    fn new(max: Duration) -> Backoff {
        Backoff {
            next: Duration::from_millis(100),
            max,
        }
    }

    /// Sleeps for the next backoff; false (without sleeping) when that
    /// would pass the deadline.
    async fn wait(&mut self, deadline: Instant) -> bool {
        let now = Instant::now();
        if now + self.next > deadline {
            return false;
        }
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(self.max);
        true
    }
}

fn gave_up(what: &str, started: Instant, err: KafkaError) -> KafkaError {
    KafkaError::Protocol(format!(
        "{what}: gave up after {:.1}s: {err}",
        started.elapsed().as_secs_f64()
    ))
}

impl GroupMember {
    /// FindCoordinator, JoinGroup (protocol type "consumer", one protocol
    /// "range"), SyncGroup; the leader computes a range assignment of all
    /// partitions of `url.topic` (Metadata) over the members.
    pub async fn join(
        url: &KafkaUrl,
        sec: &Security,
        group: &str,
        client_id: &str,
        session_timeout: Duration,
    ) -> Result<GroupMember, KafkaError> {
        Self::join_with(
            url,
            sec,
            group,
            client_id,
            GroupOptions::new(session_timeout),
        )
        .await
    }

    /// [`GroupMember::join`] with explicit timing.
    pub async fn join_with(
        url: &KafkaUrl,
        sec: &Security,
        group: &str,
        client_id: &str,
        opts: GroupOptions,
    ) -> Result<GroupMember, KafkaError> {
        if group.is_empty() {
            return Err(KafkaError::Protocol("empty consumer group name".into()));
        }
        if url.brokers.is_empty() {
            return Err(KafkaError::BadUrl {
                url: url.to_string(),
                reason: "no broker".into(),
            });
        }
        let mut m = GroupMember {
            url: url.clone(),
            tls: sec.tls_config(url)?,
            sasl: sec.sasl.clone(),
            group: group.to_string(),
            client_id: client_id.to_string(),
            opts,
            conn: None,
            member_id: String::new(),
            assignment: Assignment {
                generation: -1,
                member_id: String::new(),
                partitions: Vec::new(),
            },
            needs_rejoin: true,
            rebalance_from: None,
            subscription: encode_subscription(&url.topic)?,
        };
        m.join_loop().await?;
        Ok(m)
    }

    /// The assignment of the last completed join. After
    /// [`Heartbeat::Rebalance`] it is stale until [`GroupMember::rejoin`]
    /// succeeds.
    pub fn assignment(&self) -> &Assignment {
        &self.assignment
    }

    /// True when the coordinator said this member must rejoin (a heartbeat
    /// returned [`Heartbeat::Rebalance`], or a commit failed because the
    /// member was fenced), until [`GroupMember::rejoin`] succeeds.
    pub fn needs_rejoin(&self) -> bool {
        self.needs_rejoin
    }

    /// The consumer group's name.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The coordinator currently connected to (`host:port`), if any.
    pub fn coordinator(&self) -> Option<&str> {
        self.conn.as_ref().map(|c| c.broker.as_str())
    }

    /// Keeps the membership alive. REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION,
    /// UNKNOWN_MEMBER_ID and FENCED_INSTANCE_ID give
    /// [`Heartbeat::Rebalance`]; a lost coordinator is looked up again for at
    /// most [`GroupOptions::retry_for`].
    pub async fn heartbeat(&mut self) -> Result<Heartbeat, KafkaError> {
        if self.needs_rejoin {
            return Ok(Heartbeat::Rebalance);
        }
        let started = Instant::now();
        let deadline = started + self.opts.retry_for;
        let mut backoff = Backoff::new(Duration::from_secs(2));
        loop {
            match self.try_heartbeat().await {
                Ok(h) => return Ok(h),
                Err(f) if f.retry != Retry::No && backoff.wait(deadline).await => {
                    tracing::debug!("heartbeat of group {}: {}; retrying", self.group, f.err);
                }
                Err(f) if f.retry == Retry::No => return Err(*f.err),
                Err(f) => return Err(gave_up("heartbeat", started, *f.err)),
            }
        }
    }

    /// Joins again after [`Heartbeat::Rebalance`] (with a new member id when
    /// the old one is unknown to the coordinator), and takes the new
    /// assignment.
    pub async fn rejoin(&mut self) -> Result<(), KafkaError> {
        self.needs_rejoin = true;
        self.join_loop().await
    }

    /// The committed offsets of `partitions` of the URL's topic (OffsetFetch):
    /// `None` where nothing was committed. Offsets follow Kafka's convention:
    /// the offset of the next record to read.
    pub async fn committed(
        &mut self,
        partitions: &[i32],
    ) -> Result<Vec<(i32, Option<i64>)>, KafkaError> {
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let deadline = started + self.opts.retry_for;
        let mut backoff = Backoff::new(Duration::from_secs(2));
        loop {
            match self.try_committed(partitions).await {
                Ok(r) => return Ok(r),
                Err(f) if f.retry != Retry::No && backoff.wait(deadline).await => {
                    tracing::debug!("offset fetch of group {}: {}; retrying", self.group, f.err);
                }
                Err(f) if f.retry == Retry::No => return Err(*f.err),
                Err(f) => return Err(gave_up("offset fetch", started, *f.err)),
            }
        }
    }

    /// Commits `(partition, offset)` pairs of the URL's topic (OffsetCommit
    /// with this member's generation and id); `offset` is the next record
    /// to read. Fails when the member was fenced (a rebalance happened):
    /// [`GroupMember::needs_rejoin`] is then true and the caller rejoins.
    pub async fn commit(&mut self, offsets: &[(i32, i64)]) -> Result<(), KafkaError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let deadline = started + self.opts.retry_for;
        let mut backoff = Backoff::new(Duration::from_secs(2));
        loop {
            match self.try_commit(offsets).await {
                Ok(()) => return Ok(()),
                Err(f) if f.retry != Retry::No && backoff.wait(deadline).await => {
                    tracing::debug!("offset commit of group {}: {}; retrying", self.group, f.err);
                }
                Err(f) if f.retry == Retry::No => return Err(*f.err),
                Err(f) => return Err(gave_up("offset commit", started, *f.err)),
            }
        }
    }

    /// Leaves the group (LeaveGroup), so that the others take over this
    /// member's partitions at once rather than after the session timeout.
    pub async fn leave(mut self) -> Result<(), KafkaError> {
        if self.member_id.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let deadline = started + self.opts.retry_for.min(Duration::from_secs(10));
        let mut backoff = Backoff::new(Duration::from_secs(1));
        loop {
            match self.try_leave().await {
                Ok(()) => return Ok(()),
                Err(f) if f.retry != Retry::No && backoff.wait(deadline).await => {}
                Err(f) if f.retry == Retry::No => return Err(*f.err),
                Err(f) => return Err(gave_up("leave group", started, *f.err)),
            }
        }
    }

    // ---- internals ----

    fn broker(&self) -> String {
        match &self.conn {
            Some(c) => c.broker.clone(),
            None => self.url.brokers.join(","),
        }
    }

    /// An error response: names the broker, the request, the group and the
    /// error code.
    fn response_error(&self, api: &str, code: i16, detail: Option<&str>) -> KafkaError {
        let detail = match detail {
            Some(d) if !d.is_empty() => format!(": {d}"),
            _ => String::new(),
        };
        KafkaError::Protocol(format!(
            "{}: {api} of group {}: {}{detail}",
            self.broker(),
            self.group,
            error_name(code)
        ))
    }

    /// A coordinator error (not available, loading, moved): look it up
    /// again after a backoff.
    fn coordinator_fail(&mut self, api: &str, code: i16) -> Fail {
        let e = self.response_error(api, code, None);
        if code != code::COORDINATOR_LOAD_IN_PROGRESS {
            self.conn = None;
        }
        Fail::later(e)
    }

    async fn connect(&self, broker: &str) -> Result<Conn, KafkaError> {
        Conn::open(
            broker,
            self.tls.clone(),
            self.sasl.as_ref(),
            &self.client_id,
            self.opts.request_timeout,
        )
        .await
    }

    /// FindCoordinator through the bootstrap brokers, then a connection to
    /// the coordinator.
    async fn find_coordinator(&mut self) -> Result<Conn, Fail> {
        let mut last = None;
        for b in self.url.brokers.clone() {
            let mut conn = match self.connect(&b).await {
                Ok(c) => c,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            let group = self.group.clone();
            let v = conn
                .version::<FindCoordinatorRequest>(V_FIND_COORDINATOR)
                .map_err(Fail::fatal)?;
            let mut req = FindCoordinatorRequest::default();
            if v >= 4 {
                req.coordinator_keys = vec![StrBytes::from_string(group.clone())];
            } else {
                req.key = StrBytes::from_string(group.clone());
            }
            let resp = match conn.call(&req, v, self.opts.request_timeout).await {
                Ok(r) => r,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            let (err, msg, host, port) = if v >= 4 {
                match resp.coordinators.iter().find(|c| c.key.as_str() == group) {
                    Some(Coordinator {
                        error_code,
                        error_message,
                        host,
                        port,
                        ..
                    }) => (*error_code, error_message.clone(), host.to_string(), *port),
                    None => {
                        return Err(Fail::later(KafkaError::Protocol(format!(
                            "{b}: FindCoordinator of group {group}: no coordinator in the response"
                        ))))
                    }
                }
            } else {
                (
                    resp.error_code,
                    resp.error_message.clone(),
                    resp.host.to_string(),
                    resp.port,
                )
            };
            if err != code::NONE {
                let e = KafkaError::Protocol(format!(
                    "{b}: FindCoordinator of group {group}: {}{}",
                    error_name(err),
                    msg.map(|m| format!(": {m}")).unwrap_or_default()
                ));
                if is_coordinator_error(err) {
                    last = Some(e);
                    continue;
                }
                return Err(Fail::fatal(e));
            }
            let Ok(port) = u16::try_from(port) else {
                return Err(Fail::fatal(KafkaError::Protocol(format!(
                    "{b}: FindCoordinator of group {group}: bad coordinator port {port}"
                ))));
            };
            if host.is_empty() {
                return Err(Fail::fatal(KafkaError::Protocol(format!(
                    "{b}: FindCoordinator of group {group}: empty coordinator host"
                ))));
            }
            let addr = if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            if addr == conn.broker {
                return Ok(conn);
            }
            tracing::debug!("coordinator of group {group} is {addr} (asked {b})");
            return self.connect(&addr).await.map_err(Fail::later);
        }
        Err(Fail::later(last.unwrap_or_else(|| {
            KafkaError::Protocol(format!("no broker in {}", self.url))
        })))
    }

    /// One request to the coordinator, built for the negotiated version.
    /// A transport failure drops the connection and is retriable.
    async fn request<R: Request>(
        &mut self,
        ours: (i16, i16),
        timeout: Duration,
        build: impl FnOnce(i16) -> R,
    ) -> Result<(R::Response, i16), Fail> {
        if self.conn.is_none() {
            self.conn = Some(self.find_coordinator().await?);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(Fail::later(KafkaError::Protocol(
                "no coordinator connection".into(),
            )));
        };
        let v = conn.version::<R>(ours).map_err(Fail::fatal)?;
        let req = build(v);
        match conn.call(&req, v, timeout).await {
            Ok(r) => Ok((r, v)),
            Err(e) => {
                self.conn = None;
                Err(Fail::later(e))
            }
        }
    }

    async fn join_loop(&mut self) -> Result<(), KafkaError> {
        let started = Instant::now();
        let deadline = started + self.opts.retry_for + self.opts.rebalance_timeout;
        let mut backoff = Backoff::new(Duration::from_secs(2));
        let mut immediate = 0;
        loop {
            match self.try_join().await {
                Ok(a) => {
                    tracing::info!(
                        "group {}: member {} generation {} has partitions {:?} of {}",
                        self.group,
                        a.member_id,
                        a.generation,
                        a.partitions,
                        self.url.topic
                    );
                    self.assignment = a;
                    self.needs_rejoin = false;
                    return Ok(());
                }
                // A broker asking for a new member id again and again must
                // not keep us busy forever.
                Err(f) if f.retry == Retry::Now && immediate < 5 => {
                    immediate += 1;
                    tracing::debug!("join group {}: {}; again", self.group, f.err);
                }
                Err(f) if f.retry != Retry::No && backoff.wait(deadline).await => {
                    immediate = 0;
                    tracing::debug!("join group {}: {}; retrying", self.group, f.err);
                }
                Err(f) if f.retry == Retry::No => return Err(*f.err),
                Err(f) => return Err(gave_up("join group", started, *f.err)),
            }
        }
    }

    /// One JoinGroup + SyncGroup round.
    async fn try_join(&mut self) -> Result<Assignment, Fail> {
        let group = self.group.clone();
        let member_id = self.member_id.clone();
        let opts = self.opts.clone();
        let subscription = self.subscription.clone();
        let (resp, v) = self
            .request::<JoinGroupRequest>(
                V_JOIN_GROUP,
                opts.request_timeout + opts.rebalance_timeout,
                |v| {
                    let mut r = JoinGroupRequest::default();
                    r.group_id = GroupId(StrBytes::from_string(group));
                    r.session_timeout_ms = millis(opts.session_timeout);
                    if v >= 1 {
                        r.rebalance_timeout_ms = millis(opts.rebalance_timeout);
                    }
                    r.member_id = StrBytes::from_string(member_id);
                    r.protocol_type = StrBytes::from_static_str(PROTOCOL_TYPE);
                    let mut p = JoinGroupRequestProtocol::default();
                    p.name = StrBytes::from_static_str(PROTOCOL_NAME);
                    p.metadata = subscription;
                    r.protocols = vec![p];
                    r
                },
            )
            .await?;
        match resp.error_code {
            code::NONE => {}
            code::MEMBER_ID_REQUIRED => {
                let e = self.response_error("JoinGroup", resp.error_code, None);
                if resp.member_id.is_empty() {
                    return Err(Fail::fatal(e));
                }
                self.member_id = resp.member_id.to_string();
                return Err(Fail::now(e));
            }
            code::UNKNOWN_MEMBER_ID | code::FENCED_INSTANCE_ID => {
                let e = self.response_error("JoinGroup", resp.error_code, None);
                self.member_id.clear();
                return Err(Fail::now(e));
            }
            c if is_coordinator_error(c) => return Err(self.coordinator_fail("JoinGroup", c)),
            code::REBALANCE_IN_PROGRESS => {
                return Err(Fail::later(self.response_error(
                    "JoinGroup",
                    resp.error_code,
                    None,
                )))
            }
            c => return Err(Fail::fatal(self.response_error("JoinGroup", c, None))),
        }
        if resp.member_id.is_empty() {
            return Err(Fail::fatal(KafkaError::Protocol(format!(
                "{}: JoinGroup of group {} v{v}: no member id in the response",
                self.broker(),
                self.group
            ))));
        }
        if let Some(p) = resp.protocol_name.as_ref().filter(|p| !p.is_empty()) {
            if p.as_str() != PROTOCOL_NAME {
                return Err(Fail::fatal(KafkaError::Protocol(format!(
                    "{}: group {} uses protocol {p:?}, not {PROTOCOL_NAME:?}",
                    self.broker(),
                    self.group
                ))));
            }
        }
        self.member_id = resp.member_id.to_string();
        let generation = resp.generation_id;
        if self.rebalance_from.take() == Some(generation) {
            // Asked to rebalance, yet the same generation: tansu 0.6 does
            // this when it expires a silent member. It then keeps the old
            // assignments (and a leader that may be the expired member), so
            // the expired member's partitions would have no reader. Leaving
            // and joining afresh makes it start a new generation, with a
            // live leader.
            tracing::info!(
                "group {}: the coordinator asked for a rebalance but kept generation {generation}; leaving and joining afresh",
                self.group
            );
            let _ = self.try_leave().await;
            self.member_id.clear();
            return Err(Fail::now(self.response_error(
                "JoinGroup",
                code::REBALANCE_IN_PROGRESS,
                Some(&format!("generation {generation} kept after a rebalance")),
            )));
        }
        let leader = resp.leader.as_str() == resp.member_id.as_str();

        let mut assignments = Vec::new();
        if leader && !resp.skip_assignment {
            let partitions = self.partitions().await?;
            let mut members: Vec<(String, bool)> = resp
                .members
                .iter()
                .map(|m| {
                    let subscribed = match subscription_topics(&m.metadata) {
                        Ok(topics) => topics.contains(&self.url.topic),
                        Err(e) => {
                            tracing::warn!(
                                "group {}: member {}: undecodable subscription ({e}); it gets no partition",
                                self.group,
                                m.member_id
                            );
                            false
                        }
                    };
                    (m.member_id.to_string(), subscribed)
                })
                .collect();
            members.sort();
            members.dedup_by(|a, b| a.0 == b.0);
            let subscribed: Vec<&str> = members
                .iter()
                .filter(|m| m.1)
                .map(|m| m.0.as_str())
                .collect();
            let ranges = range_assign(&subscribed, &partitions);
            tracing::debug!(
                "group {} generation {generation}: leader assigns {ranges:?}",
                self.group
            );
            for (member, _) in &members {
                let parts = ranges
                    .iter()
                    .find(|(m, _)| m == member)
                    .map(|(_, p)| p.clone())
                    .unwrap_or_default();
                let mut a = SyncGroupRequestAssignment::default();
                a.member_id = StrBytes::from_string(member.clone());
                a.assignment = encode_assignment(&self.url.topic, parts)?;
                assignments.push(a);
            }
        }

        let group = self.group.clone();
        let member_id = self.member_id.clone();
        let (sync, _) = self
            .request::<SyncGroupRequest>(
                V_SYNC_GROUP,
                opts.request_timeout + opts.rebalance_timeout,
                |v| {
                    let mut r = SyncGroupRequest::default();
                    r.group_id = GroupId(StrBytes::from_string(group));
                    r.generation_id = generation;
                    r.member_id = StrBytes::from_string(member_id);
                    if v >= 5 {
                        r.protocol_type = Some(StrBytes::from_static_str(PROTOCOL_TYPE));
                        r.protocol_name = Some(StrBytes::from_static_str(PROTOCOL_NAME));
                    }
                    r.assignments = assignments;
                    r
                },
            )
            .await?;
        match sync.error_code {
            code::NONE => {}
            code::REBALANCE_IN_PROGRESS | code::ILLEGAL_GENERATION => {
                // The leader has not assigned this generation yet (or a new
                // rebalance began): join again. Meanwhile keep the session
                // alive, since a rebalance can outlast it.
                let e = self.response_error("SyncGroup", sync.error_code, None);
                let _ = self.send_heartbeat(generation).await;
                return Err(Fail::later(e));
            }
            code::UNKNOWN_MEMBER_ID | code::FENCED_INSTANCE_ID => {
                let e = self.response_error("SyncGroup", sync.error_code, None);
                self.member_id.clear();
                return Err(Fail::now(e));
            }
            c if is_coordinator_error(c) => return Err(self.coordinator_fail("SyncGroup", c)),
            c => return Err(Fail::fatal(self.response_error("SyncGroup", c, None))),
        }
        let partitions = decode_assignment(&sync.assignment, &self.url.topic).map_err(|e| {
            Fail::fatal(KafkaError::Protocol(format!(
                "{}: SyncGroup of group {}: bad assignment: {e}",
                self.broker(),
                self.group
            )))
        })?;
        Ok(Assignment {
            generation,
            member_id: self.member_id.clone(),
            partitions,
        })
    }

    /// All partitions of the URL's topic (Metadata).
    async fn partitions(&mut self) -> Result<Vec<i32>, Fail> {
        let topic = self.url.topic.clone();
        let t = topic.clone();
        let (resp, _) = self
            .request::<MetadataRequest>(V_METADATA, self.opts.request_timeout, |v| {
                let mut r = MetadataRequest::default();
                let mut mt = MetadataRequestTopic::default();
                mt.name = Some(TopicName(StrBytes::from_string(t)));
                r.topics = Some(vec![mt]);
                if v >= 4 {
                    r.allow_auto_topic_creation = false;
                }
                r
            })
            .await?;
        let Some(mt) = resp
            .topics
            .iter()
            .find(|mt| mt.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
        else {
            return Err(Fail::later(KafkaError::Protocol(format!(
                "{}: Metadata: topic {topic} not in the response",
                self.broker()
            ))));
        };
        match mt.error_code {
            code::NONE => {}
            c @ (code::UNKNOWN_TOPIC_OR_PARTITION | code::LEADER_NOT_AVAILABLE) => {
                return Err(Fail::later(KafkaError::Protocol(format!(
                    "{}: Metadata of topic {topic}: {}",
                    self.broker(),
                    error_name(c)
                ))))
            }
            c => {
                return Err(Fail::fatal(KafkaError::Protocol(format!(
                    "{}: Metadata of topic {topic}: {}",
                    self.broker(),
                    error_name(c)
                ))))
            }
        }
        let mut ps: Vec<i32> = mt
            .partitions
            .iter()
            .map(|p| p.partition_index)
            .filter(|p| *p >= 0)
            .collect();
        ps.sort_unstable();
        ps.dedup();
        Ok(ps)
    }

    async fn send_heartbeat(&mut self, generation: i32) -> Result<i16, Fail> {
        let group = self.group.clone();
        let member_id = self.member_id.clone();
        let (resp, _) = self
            .request::<HeartbeatRequest>(V_HEARTBEAT, self.opts.request_timeout, |_| {
                let mut r = HeartbeatRequest::default();
                r.group_id = GroupId(StrBytes::from_string(group));
                r.generation_id = generation;
                r.member_id = StrBytes::from_string(member_id);
                r
            })
            .await?;
        Ok(resp.error_code)
    }

    async fn try_heartbeat(&mut self) -> Result<Heartbeat, Fail> {
        let c = self.send_heartbeat(self.assignment.generation).await?;
        match c {
            code::NONE => Ok(Heartbeat::Ok),
            code::REBALANCE_IN_PROGRESS | code::ILLEGAL_GENERATION | code::FENCED_INSTANCE_ID => {
                tracing::info!("group {}: {}: rebalance", self.group, error_name(c));
                self.needs_rejoin = true;
                self.rebalance_from = Some(self.assignment.generation);
                Ok(Heartbeat::Rebalance)
            }
            code::UNKNOWN_MEMBER_ID => {
                tracing::info!(
                    "group {}: member {} expired: joining afresh",
                    self.group,
                    self.member_id
                );
                self.member_id.clear();
                self.needs_rejoin = true;
                Ok(Heartbeat::Rebalance)
            }
            c if is_coordinator_error(c) => Err(self.coordinator_fail("Heartbeat", c)),
            c => Err(Fail::fatal(self.response_error("Heartbeat", c, None))),
        }
    }

    async fn try_committed(&mut self, partitions: &[i32]) -> Result<Vec<(i32, Option<i64>)>, Fail> {
        let group = self.group.clone();
        let topic = self.url.topic.clone();
        let (resp, v) = self
            .request::<OffsetFetchRequest>(V_OFFSET_FETCH, self.opts.request_timeout, |v| {
                let mut r = OffsetFetchRequest::default();
                let name = TopicName(StrBytes::from_string(topic.clone()));
                if v >= 8 {
                    let mut t = OffsetFetchRequestTopics::default();
                    t.name = name;
                    t.partition_indexes = partitions.to_vec();
                    let mut g = OffsetFetchRequestGroup::default();
                    g.group_id = GroupId(StrBytes::from_string(group));
                    g.topics = Some(vec![t]);
                    r.groups = vec![g];
                } else {
                    let mut t = OffsetFetchRequestTopic::default();
                    t.name = name;
                    t.partition_indexes = partitions.to_vec();
                    r.group_id = GroupId(StrBytes::from_string(group));
                    r.topics = Some(vec![t]);
                }
                r
            })
            .await?;
        // (partition, offset, error code) of our topic.
        let mut found: Vec<(i32, i64, i16)> = Vec::new();
        let top_error = if v >= 8 {
            let Some(g) = resp
                .groups
                .iter()
                .find(|g| g.group_id.0.as_str() == self.group)
            else {
                return Err(Fail::fatal(KafkaError::Protocol(format!(
                    "{}: OffsetFetch of group {}: the group is not in the response",
                    self.broker(),
                    self.group
                ))));
            };
            for t in g
                .topics
                .iter()
                .filter(|t| t.name.0.as_str() == self.url.topic)
            {
                found.extend(
                    t.partitions
                        .iter()
                        .map(|p| (p.partition_index, p.committed_offset, p.error_code)),
                );
            }
            g.error_code
        } else {
            for t in resp
                .topics
                .iter()
                .filter(|t| t.name.0.as_str() == self.url.topic)
            {
                found.extend(
                    t.partitions
                        .iter()
                        .map(|p| (p.partition_index, p.committed_offset, p.error_code)),
                );
            }
            resp.error_code
        };
        let mut errors = std::iter::once(top_error).chain(found.iter().map(|f| f.2));
        if let Some(c) = errors.find(|c| *c != code::NONE) {
            if is_coordinator_error(c) {
                return Err(self.coordinator_fail("OffsetFetch", c));
            }
            let e = self.response_error("OffsetFetch", c, None);
            return Err(if c == code::UNSTABLE_OFFSET_COMMIT {
                Fail::later(e)
            } else {
                Fail::fatal(e)
            });
        }
        Ok(partitions
            .iter()
            .map(|p| {
                let off = found
                    .iter()
                    .find(|f| f.0 == *p)
                    .map(|f| f.1)
                    .filter(|o| *o >= 0);
                (*p, off)
            })
            .collect())
    }

    async fn try_commit(&mut self, offsets: &[(i32, i64)]) -> Result<(), Fail> {
        let group = self.group.clone();
        let topic = self.url.topic.clone();
        let member_id = self.member_id.clone();
        let generation = self.assignment.generation;
        let (resp, _) = self
            .request::<OffsetCommitRequest>(V_OFFSET_COMMIT, self.opts.request_timeout, |_| {
                let mut r = OffsetCommitRequest::default();
                r.group_id = GroupId(StrBytes::from_string(group));
                r.generation_id_or_member_epoch = generation;
                r.member_id = StrBytes::from_string(member_id);
                let mut t = OffsetCommitRequestTopic::default();
                t.name = TopicName(StrBytes::from_string(topic));
                t.partitions = offsets
                    .iter()
                    .map(|(p, o)| {
                        let mut rp = OffsetCommitRequestPartition::default();
                        rp.partition_index = *p;
                        rp.committed_offset = *o;
                        rp
                    })
                    .collect();
                r.topics = vec![t];
                r
            })
            .await?;
        let mut codes = resp.topics.iter().flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (p.partition_index, p.error_code))
        });
        let Some((p, c)) = codes.find(|(_, c)| *c != code::NONE) else {
            return Ok(());
        };
        match c {
            code::ILLEGAL_GENERATION
            | code::UNKNOWN_MEMBER_ID
            | code::REBALANCE_IN_PROGRESS
            | code::FENCED_INSTANCE_ID => {
                self.needs_rejoin = true;
                if c == code::UNKNOWN_MEMBER_ID {
                    self.member_id.clear();
                }
                Err(Fail::fatal(self.response_error(
                    "OffsetCommit",
                    c,
                    Some(&format!(
                        "partition {p}: this member (generation {generation}) was fenced by a rebalance; rejoin"
                    )),
                )))
            }
            c if is_coordinator_error(c) => Err(self.coordinator_fail("OffsetCommit", c)),
            c => Err(Fail::fatal(self.response_error(
                "OffsetCommit",
                c,
                Some(&format!("partition {p}")),
            ))),
        }
    }

    async fn try_leave(&mut self) -> Result<(), Fail> {
        let group = self.group.clone();
        let member_id = self.member_id.clone();
        let (resp, _) = self
            .request::<LeaveGroupRequest>(V_LEAVE_GROUP, self.opts.request_timeout, |v| {
                let mut r = LeaveGroupRequest::default();
                r.group_id = GroupId(StrBytes::from_string(group));
                if v >= 3 {
                    let mut m = MemberIdentity::default();
                    m.member_id = StrBytes::from_string(member_id);
                    if v >= 5 {
                        m.reason = Some(StrBytes::from_static_str("the collector stops"));
                    }
                    r.members = vec![m];
                } else {
                    r.member_id = StrBytes::from_string(member_id);
                }
                r
            })
            .await?;
        let c = std::iter::once(resp.error_code)
            .chain(resp.members.iter().map(|m| m.error_code))
            .find(|c| *c != code::NONE && *c != code::UNKNOWN_MEMBER_ID);
        match c {
            None => {
                self.member_id.clear();
                Ok(())
            }
            Some(c) if is_coordinator_error(c) => Err(self.coordinator_fail("LeaveGroup", c)),
            Some(c) => Err(Fail::fatal(self.response_error("LeaveGroup", c, None))),
        }
    }
}

/// Range assignment (Kafka's RangeAssignor for one topic): members in
/// member-id order get consecutive ranges; the first `n % m` members get one
/// partition more.
pub fn range_assign(members: &[&str], partitions: &[i32]) -> Vec<(String, Vec<i32>)> {
    let mut ms: Vec<&str> = members.to_vec();
    ms.sort_unstable();
    ms.dedup();
    let mut ps = partitions.to_vec();
    ps.sort_unstable();
    ps.dedup();
    if ms.is_empty() {
        return Vec::new();
    }
    let per = ps.len() / ms.len();
    let extra = ps.len() % ms.len();
    let mut out = Vec::with_capacity(ms.len());
    let mut start = 0;
    for (i, m) in ms.iter().enumerate() {
        let n = per + usize::from(i < extra);
        out.push((m.to_string(), ps[start..start + n].to_vec()));
        start += n;
    }
    out
}

fn encode_versioned<T: Encodable>(v: i16, msg: &T, what: &str) -> Result<Bytes, KafkaError> {
    let mut b = BytesMut::new();
    b.put_i16(v);
    msg.encode(&mut b, v)
        .map_err(|e| KafkaError::Protocol(format!("encoding {what}: {e}")))?;
    Ok(b.freeze())
}

/// Our subscription: version 0 (topics only), so that it is the same bytes
/// at every join.
fn encode_subscription(topic: &str) -> Result<Bytes, KafkaError> {
    let mut s = ConsumerProtocolSubscription::default();
    s.topics = vec![StrBytes::from_string(topic.to_string())];
    s.user_data = None;
    encode_versioned(0, &s, "consumer subscription")
}

fn encode_assignment(topic: &str, partitions: Vec<i32>) -> Result<Bytes, Fail> {
    let mut tp = AssignedTopic::default();
    tp.topic = TopicName(StrBytes::from_string(topic.to_string()));
    tp.partitions = partitions;
    let mut a = ConsumerProtocolAssignment::default();
    a.assigned_partitions = vec![tp];
    a.user_data = None;
    encode_versioned(0, &a, "consumer assignment").map_err(Fail::fatal)
}

/// A bounds-checked reader of the consumer protocol's (non-flexible)
/// encoding: counts and lengths from the wire are checked against what is
/// left before anything is allocated.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn i16(&mut self) -> Result<i16, String> {
        if self.0.len() < 2 {
            return Err("truncated".into());
        }
        Ok(self.0.get_i16())
    }
    fn i32(&mut self) -> Result<i32, String> {
        if self.0.len() < 4 {
            return Err("truncated".into());
        }
        Ok(self.0.get_i32())
    }
    /// An array count; each element takes at least `min_size` bytes.
    fn count(&mut self, min_size: usize) -> Result<usize, String> {
        let n = self.i32()?;
        if n < 0 {
            return Ok(0); // null array
        }
        let n = n as usize;
        if n.saturating_mul(min_size) > self.0.len() {
            return Err(format!("array of {n} elements in {} bytes", self.0.len()));
        }
        Ok(n)
    }
    fn string(&mut self) -> Result<&'a str, String> {
        let n = self.i16()?;
        if n < 0 {
            return Err("null string".into());
        }
        let n = n as usize;
        if n > self.0.len() {
            return Err("truncated string".into());
        }
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        std::str::from_utf8(s).map_err(|_| "string is not UTF-8".to_string())
    }
}

/// The topics of a member's `ConsumerProtocolSubscription` (every version
/// starts with them).
fn subscription_topics(b: &[u8]) -> Result<Vec<String>, String> {
    let mut r = Reader(b);
    let v = r.i16()?;
    if v < 0 {
        return Err(format!("bad subscription version {v}"));
    }
    let n = r.count(2)?;
    let mut topics = Vec::with_capacity(n);
    for _ in 0..n {
        topics.push(r.string()?.to_string());
    }
    Ok(topics)
}

/// Our partitions of `topic` in a `ConsumerProtocolAssignment` (every
/// version starts with the assigned partitions). Empty bytes: no partition.
fn decode_assignment(b: &[u8], topic: &str) -> Result<Vec<i32>, String> {
    if b.is_empty() {
        return Ok(Vec::new());
    }
    let mut r = Reader(b);
    let v = r.i16()?;
    if v < 0 {
        return Err(format!("bad assignment version {v}"));
    }
    let n = r.count(6)?;
    let mut out = Vec::new();
    for _ in 0..n {
        let t = r.string()?;
        let k = r.count(4)?;
        for _ in 0..k {
            let p = r.i32()?;
            if t == topic && p >= 0 {
                out.push(p);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

// ---- connection ----

trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}

/// One connection to one broker, with its negotiated API versions.
struct Conn {
    io: Box<dyn Io>,
    broker: String,
    client_id: StrBytes,
    correlation: i32,
    /// The broker's (min, max) version per API key.
    versions: HashMap<i16, (i16, i16)>,
    timeout: Duration,
}

fn host_of(broker: &str) -> &str {
    let host = broker.rsplit_once(':').map_or(broker, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

fn decode<T: Decodable>(buf: &mut Bytes, version: i16) -> Result<T, String> {
    // kafka-protocol's decoders check lengths; the guard turns any panic
    // left in them into an error.
    match std::panic::catch_unwind(AssertUnwindSafe(|| T::decode(buf, version))) {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the decoder panicked".into()),
    }
}

impl Conn {
    async fn open(
        broker: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
        sasl: Option<&(SaslMechanism, String, String)>,
        client_id: &str,
        timeout: Duration,
    ) -> Result<Conn, KafkaError> {
        let io_err = |what: &str, e: std::io::Error| KafkaError::Io {
            context: format!("{what} {broker}"),
            source: e,
        };
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(broker))
            .await
            .map_err(|_| {
                io_err(
                    "connecting to",
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"),
                )
            })?
            .map_err(|e| io_err("connecting to", e))?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = match tls {
            Some(cfg) => {
                let name = rustls::pki_types::ServerName::try_from(host_of(broker).to_string())
                    .map_err(|e| {
                        KafkaError::Protocol(format!("{broker}: bad TLS server name: {e}"))
                    })?;
                let s = tokio::time::timeout(
                    timeout,
                    tokio_rustls::TlsConnector::from(cfg).connect(name, tcp),
                )
                .await
                .map_err(|_| {
                    io_err(
                        "TLS handshake with",
                        std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"),
                    )
                })?
                .map_err(|e| io_err("TLS handshake with", e))?;
                Box::new(s)
            }
            None => Box::new(tcp),
        };
        let mut c = Conn {
            io,
            broker: broker.to_string(),
            client_id: StrBytes::from_string(client_id.to_string()),
            correlation: 0,
            versions: HashMap::new(),
            timeout,
        };
        c.negotiate().await?;
        if let Some((mech, user, pass)) = sasl {
            c.authenticate(*mech, user, pass).await?;
        }
        Ok(c)
    }

    fn err(&self, msg: impl std::fmt::Display) -> KafkaError {
        KafkaError::Protocol(format!("{}: {msg}", self.broker))
    }

    /// The highest version of `R` that the broker, `kafka-protocol` and
    /// `ours` all support.
    fn version<R: Request>(&self, ours: (i16, i16)) -> Result<i16, KafkaError> {
        let name = api_name(R::KEY);
        let Some(&(bmin, bmax)) = self.versions.get(&R::KEY) else {
            return Err(self.err(format_args!("the broker does not support {name}")));
        };
        let lo = ours.0.max(R::VERSIONS.min).max(bmin);
        let hi = ours.1.min(R::VERSIONS.max).min(bmax);
        if lo > hi {
            return Err(self.err(format_args!(
                "the broker supports {name} v{bmin}-{bmax}, this client v{}-{}",
                ours.0.max(R::VERSIONS.min),
                ours.1.min(R::VERSIONS.max)
            )));
        }
        Ok(hi)
    }

    /// Sends one request and returns the response body (after its header).
    async fn exchange<T: Encodable>(
        &mut self,
        key: i16,
        version: i16,
        request_header_version: i16,
        response_header_version: i16,
        body: &T,
        timeout: Duration,
    ) -> Result<Bytes, KafkaError> {
        let name = api_name(key);
        self.correlation = self.correlation.wrapping_add(1);
        let mut header = RequestHeader::default();
        header.request_api_key = key;
        header.request_api_version = version;
        header.correlation_id = self.correlation;
        header.client_id = Some(self.client_id.clone());
        let mut buf = BytesMut::with_capacity(256);
        buf.put_i32(0);
        header
            .encode(&mut buf, request_header_version)
            .and_then(|_| body.encode(&mut buf, version))
            .map_err(|e| self.err(format_args!("encoding {name} v{version}: {e}")))?;
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());

        let io = &mut self.io;
        let round = async {
            io.write_all(&buf).await?;
            io.flush().await?;
            let n = io.read_i32().await?;
            if n < 0 || n as usize > MAX_FRAME {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("response frame of {n} bytes"),
                ));
            }
            let mut frame = vec![0u8; n as usize];
            io.read_exact(&mut frame).await?;
            Ok(frame)
        };
        let frame = match tokio::time::timeout(timeout, round).await {
            Err(_) => {
                return Err(KafkaError::Io {
                    context: format!("{name} v{version} to {}", self.broker),
                    source: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no response in {:.1}s", timeout.as_secs_f64()),
                    ),
                })
            }
            Ok(Err(e)) => {
                return Err(KafkaError::Io {
                    context: format!("{name} v{version} to {}", self.broker),
                    source: e,
                })
            }
            Ok(Ok(f)) => f,
        };
        let mut frame = Bytes::from(frame);
        let rh: ResponseHeader = decode(&mut frame, response_header_version).map_err(|e| {
            self.err(format_args!(
                "malformed {name} v{version} response header: {e}"
            ))
        })?;
        if rh.correlation_id != self.correlation {
            return Err(self.err(format_args!(
                "{name} v{version}: response to request {} where {} was expected",
                rh.correlation_id, self.correlation
            )));
        }
        Ok(frame)
    }

    async fn call<R: Request>(
        &mut self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, KafkaError> {
        let mut body = self
            .exchange(
                R::KEY,
                version,
                R::header_version(version),
                R::Response::header_version(version),
                req,
                timeout,
            )
            .await?;
        decode(&mut body, version).map_err(|e| {
            self.err(format_args!(
                "malformed {} v{version} response: {e}",
                api_name(R::KEY)
            ))
        })
    }

    /// ApiVersions: the broker's version ranges. A broker that does not
    /// know our ApiVersions version answers in v0 with its own range.
    async fn negotiate(&mut self) -> Result<(), KafkaError> {
        let mut v = V_API_VERSIONS.1;
        for _ in 0..3 {
            let mut req = ApiVersionsRequest::default();
            if v >= 3 {
                req.client_software_name = StrBytes::from_static_str("tomo");
                req.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
            }
            let body = self
                .exchange(
                    ApiVersionsRequest::KEY,
                    v,
                    ApiVersionsRequest::header_version(v),
                    ApiVersionsResponse::header_version(v),
                    &req,
                    self.timeout,
                )
                .await?;
            // The error code comes first in every version.
            let err = if body.len() >= 2 {
                i16::from_be_bytes([body[0], body[1]])
            } else {
                return Err(self.err("truncated ApiVersions response"));
            };
            let decode_v = if err == code::UNSUPPORTED_VERSION {
                0
            } else {
                v
            };
            let resp: ApiVersionsResponse = decode(&mut body.clone(), decode_v).map_err(|e| {
                self.err(format_args!(
                    "malformed ApiVersions v{decode_v} response: {e}"
                ))
            })?;
            if err == code::UNSUPPORTED_VERSION {
                let theirs = resp
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiVersionsRequest::KEY)
                    .map(|k| k.max_version);
                match theirs {
                    Some(m) if m < v && m >= 0 => {
                        v = m.min(V_API_VERSIONS.1);
                        continue;
                    }
                    _ => return Err(self.err("ApiVersions: UNSUPPORTED_VERSION (35)")),
                }
            }
            if err != code::NONE {
                return Err(self.err(format_args!("ApiVersions: {}", error_name(err))));
            }
            self.versions = resp
                .api_keys
                .iter()
                .map(|k| (k.api_key, (k.min_version, k.max_version)))
                .collect();
            return Ok(());
        }
        Err(self.err("ApiVersions: no version agreed"))
    }

    async fn authenticate(
        &mut self,
        mech: SaslMechanism,
        user: &str,
        pass: &str,
    ) -> Result<(), KafkaError> {
        let mech_name = match mech {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        };
        let hv = self.version::<SaslHandshakeRequest>(V_SASL_HANDSHAKE)?;
        let mut req = SaslHandshakeRequest::default();
        req.mechanism = StrBytes::from_static_str(mech_name);
        // Some brokers (tansu) close the connection on an unknown mechanism.
        let resp = self.call(&req, hv, self.timeout).await.map_err(|e| {
            KafkaError::Protocol(format!(
                "SASL handshake for {mech_name} (does the broker offer {mech_name}?): {e}"
            ))
        })?;
        if resp.error_code != code::NONE {
            let offered: Vec<&str> = resp.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(self.err(format_args!(
                "SASL handshake for {mech_name}: {} (the broker offers {})",
                error_name(resp.error_code),
                offered.join(", ")
            )));
        }
        let av = self.version::<SaslAuthenticateRequest>(V_SASL_AUTHENTICATE)?;
        match mech {
            SaslMechanism::Plain => {
                let mut token = Vec::with_capacity(user.len() + pass.len() + 2);
                token.push(0);
                token.extend_from_slice(user.as_bytes());
                token.push(0);
                token.extend_from_slice(pass.as_bytes());
                self.sasl_step(mech_name, user, token.into(), av).await?;
            }
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                let scram = Scram::new(mech, user, pass, &random_nonce()?);
                let server_first = self
                    .sasl_step(mech_name, user, scram.client_first().into(), av)
                    .await?;
                let server_first = String::from_utf8(server_first.to_vec()).map_err(|_| {
                    self.err(format_args!(
                        "{mech_name}: server-first message is not UTF-8"
                    ))
                })?;
                let (client_final, server_sig) = scram
                    .client_final(&server_first)
                    .map_err(|e| self.err(format_args!("{mech_name} as {user}: {e}")))?;
                let server_final = self
                    .sasl_step(mech_name, user, client_final.into(), av)
                    .await?;
                let server_final = String::from_utf8_lossy(&server_final).into_owned();
                Scram::verify_server_final(&server_final, &server_sig)
                    .map_err(|e| self.err(format_args!("{mech_name} as {user}: {e}")))?;
            }
        }
        Ok(())
    }

    async fn sasl_step(
        &mut self,
        mech_name: &str,
        user: &str,
        token: Bytes,
        version: i16,
    ) -> Result<Bytes, KafkaError> {
        let mut req = SaslAuthenticateRequest::default();
        req.auth_bytes = token;
        let resp = self.call(&req, version, self.timeout).await?;
        if resp.error_code != code::NONE {
            return Err(self.err(format_args!(
                "SASL {mech_name} authentication as {user}: {}{}",
                error_name(resp.error_code),
                resp.error_message
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            )));
        }
        Ok(resp.auth_bytes)
    }
}

fn random_nonce() -> Result<String, KafkaError> {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 24];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| KafkaError::Protocol("no random numbers for the SCRAM nonce".into()))?;
    Ok(base64::engine::general_purpose::STANDARD_NO_PAD
        .encode(b)
        .replace('+', "-")
        .replace('/', "_"))
}

/// The client side of SCRAM (RFC 5802) without channel binding.
struct Scram {
    sha512: bool,
    pass: String,
    first_bare: String,
    nonce: String,
}

impl Scram {
    fn new(mech: SaslMechanism, user: &str, pass: &str, nonce: &str) -> Scram {
        let user = user.replace('=', "=3D").replace(',', "=2C");
        Scram {
            sha512: mech == SaslMechanism::ScramSha512,
            pass: pass.to_string(),
            first_bare: format!("n={user},r={nonce}"),
            nonce: nonce.to_string(),
        }
    }

    fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.first_bare).into_bytes()
    }

    fn hmac(&self, key: &[u8], data: &[u8]) -> Vec<u8> {
        let alg = if self.sha512 {
            ring::hmac::HMAC_SHA512
        } else {
            ring::hmac::HMAC_SHA256
        };
        ring::hmac::sign(&ring::hmac::Key::new(alg, key), data)
            .as_ref()
            .to_vec()
    }

    /// The client-final message and the server signature to expect.
    fn client_final(&self, server_first: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
        let attr = |k: char| {
            server_first
                .split(',')
                .find_map(|a| a.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
        };
        if let Some(e) = attr('e') {
            return Err(format!("server error {e}"));
        }
        let nonce = attr('r').ok_or("no nonce in the server-first message")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() <= self.nonce.len() {
            return Err("the server's nonce does not extend ours".into());
        }
        let salt = attr('s').ok_or("no salt in the server-first message")?;
        let salt = base64::engine::general_purpose::STANDARD
            .decode(salt)
            .map_err(|_| "the salt is not base64")?;
        let iterations: u32 = attr('i')
            .and_then(|i| i.parse().ok())
            .ok_or("no iteration count in the server-first message")?;
        // Bounded: a hostile broker must not make us spin for minutes.
        if !(1..=1_000_000).contains(&iterations) {
            return Err(format!("unreasonable iteration count {iterations}"));
        }
        let (alg, digest, len) = if self.sha512 {
            (ring::pbkdf2::PBKDF2_HMAC_SHA512, &ring::digest::SHA512, 64)
        } else {
            (ring::pbkdf2::PBKDF2_HMAC_SHA256, &ring::digest::SHA256, 32)
        };
        let mut salted = vec![0u8; len];
        let Some(iters) = std::num::NonZeroU32::new(iterations) else {
            return Err("zero iterations".into());
        };
        ring::pbkdf2::derive(alg, iters, &salt, self.pass.as_bytes(), &mut salted);
        let client_key = self.hmac(&salted, b"Client Key");
        let stored_key = ring::digest::digest(digest, &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare);
        let client_sig = self.hmac(stored_key.as_ref(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_sig)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = self.hmac(&salted, b"Server Key");
        let server_sig = self.hmac(&server_key, auth_message.as_bytes());
        let msg = format!(
            "{without_proof},p={}",
            base64::engine::general_purpose::STANDARD.encode(proof)
        );
        Ok((msg.into_bytes(), server_sig))
    }

    fn verify_server_final(server_final: &str, expected: &[u8]) -> Result<(), String> {
        for a in server_final.split(',') {
            if let Some(e) = a.strip_prefix("e=") {
                return Err(format!("server error {e}"));
            }
            if let Some(v) = a.strip_prefix("v=") {
                let got = base64::engine::general_purpose::STANDARD
                    .decode(v)
                    .map_err(|_| "the server signature is not base64")?;
                return if got == expected {
                    Ok(())
                } else {
                    Err("the server's signature is wrong (it does not know the password)".into())
                };
            }
        }
        Err("no server signature in the server-final message".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names() {
        assert_eq!(error_name(27), "REBALANCE_IN_PROGRESS (27)");
        assert_eq!(error_name(79), "MEMBER_ID_REQUIRED (79)");
        assert_eq!(error_name(15), "COORDINATOR_NOT_AVAILABLE (15)");
        assert_eq!(error_name(0), "NONE (0)");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR (-1)");
        assert_eq!(error_name(31000), "UNKNOWN_ERROR_CODE (31000)");
    }

    #[test]
    fn ranges() {
        let r = range_assign(&["b", "a"], &[3, 1, 0, 2]);
        assert_eq!(r, vec![("a".into(), vec![0, 1]), ("b".into(), vec![2, 3])]);
        let r = range_assign(&["a", "b", "c"], &[0, 1, 2, 3]);
        assert_eq!(
            r,
            vec![
                ("a".into(), vec![0, 1]),
                ("b".into(), vec![2]),
                ("c".into(), vec![3])
            ]
        );
        let r = range_assign(&["a", "b", "c"], &[0]);
        assert_eq!(
            r,
            vec![
                ("a".into(), vec![0]),
                ("b".into(), vec![]),
                ("c".into(), vec![])
            ]
        );
        assert!(range_assign(&[], &[0, 1]).is_empty());
    }

    #[test]
    fn consumer_protocol_round_trip() {
        let s = encode_subscription("tomo-events").unwrap();
        assert_eq!(subscription_topics(&s).unwrap(), vec!["tomo-events"]);
        let a = match encode_assignment("tomo-events", vec![3, 1]) {
            Ok(a) => a,
            Err(f) => panic!("{}", f.err),
        };
        assert_eq!(decode_assignment(&a, "tomo-events").unwrap(), vec![1, 3]);
        assert_eq!(decode_assignment(&a, "other").unwrap(), Vec::<i32>::new());
        assert_eq!(decode_assignment(&[], "t").unwrap(), Vec::<i32>::new());
        // A v1 assignment written by kafka-protocol decodes too.
        let mut tp = AssignedTopic::default();
        tp.topic = TopicName(StrBytes::from_static_str("t"));
        tp.partitions = vec![7];
        let mut ca = ConsumerProtocolAssignment::default();
        ca.assigned_partitions = vec![tp];
        ca.user_data = Some(Bytes::from_static(b"xyz"));
        let b = encode_versioned(1, &ca, "a").unwrap();
        assert_eq!(decode_assignment(&b, "t").unwrap(), vec![7]);
    }

    #[test]
    fn hostile_consumer_protocol_bytes_are_errors() {
        // Every truncation, and every byte set to extreme values, of valid
        // encodings: errors or values, never a panic or a huge allocation.
        let s = encode_subscription("topic").unwrap();
        let a = match encode_assignment("topic", vec![0, 1, 2]) {
            Ok(a) => a,
            Err(f) => panic!("{}", f.err),
        };
        for bytes in [s, a] {
            for n in 0..bytes.len() {
                let _ = subscription_topics(&bytes[..n]);
                let _ = decode_assignment(&bytes[..n], "topic");
            }
            for i in 0..bytes.len() {
                for x in [0x00, 0x7f, 0x80, 0xff] {
                    let mut m = bytes.to_vec();
                    m[i] = x;
                    let _ = subscription_topics(&m);
                    let _ = decode_assignment(&m, "topic");
                }
            }
        }
        assert!(decode_assignment(&[0, 0, 0x7f, 0xff, 0xff, 0xff], "t").is_err());
    }

    #[test]
    fn scram_sha256_rfc7677() {
        // RFC 7677, section 3.
        let s = Scram::new(
            SaslMechanism::ScramSha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO",
        );
        assert_eq!(s.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let (fin, sig) = s
            .client_final(
                "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            )
            .unwrap();
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        Scram::verify_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", &sig).unwrap();
        assert!(Scram::verify_server_final("v=AAAA", &sig).is_err());
        assert!(Scram::verify_server_final("e=invalid-proof", &sig).is_err());
        assert!(s.client_final("r=other,s=AAAA,i=1").is_err());
        assert!(s
            .client_final("r=rOprNGfwEbeRWgbNEkqOx,s=AAAA,i=0")
            .is_err());
    }

    /// A minimal in-process coordinator that answers the requests of a
    /// join (and of heartbeat, commit, fetch, leave) correctly, except for
    /// one kind of damage to the responses of one API.
    mod fake {
        use super::super::*;
        use kafka_protocol::messages::api_versions_response::ApiVersion;
        use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
        use kafka_protocol::messages::metadata_response::{
            MetadataResponsePartition, MetadataResponseTopic,
        };
        use kafka_protocol::messages::*;
        use kafka_protocol::protocol::decode_request_header_from_buffer;
        use std::sync::atomic::{AtomicBool, Ordering};
        use tokio::net::TcpListener;

        #[derive(Clone, Copy, Debug)]
        pub enum Damage {
            None,
            Truncate(ApiKey, usize),
            Correlation(ApiKey),
            FrameLength(ApiKey, i32),
            Close(ApiKey),
            ErrorCode(ApiKey, i16),
        }

        /// Starts the coordinator; the flag tells whether the damage was
        /// done (a truncation beyond the response's length is none).
        pub async fn start(damage: Damage) -> (String, Arc<AtomicBool>) {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            let applied = Arc::new(AtomicBool::new(false));
            let a = applied.clone();
            tokio::spawn(async move {
                while let Ok((s, _)) = l.accept().await {
                    let _ = s.set_nodelay(true);
                    tokio::spawn(serve(s, damage, addr.port(), a.clone()));
                }
            });
            (addr.to_string(), applied)
        }

        fn encode<T: Encodable>(t: &T, v: i16) -> BytesMut {
            let mut b = BytesMut::new();
            t.encode(&mut b, v).unwrap();
            b
        }

        async fn serve(mut s: TcpStream, damage: Damage, port: u16, applied: Arc<AtomicBool>) {
            loop {
                let Ok(n) = s.read_i32().await else { return };
                let mut buf = vec![0u8; n as usize];
                if s.read_exact(&mut buf).await.is_err() {
                    return;
                }
                let mut b = Bytes::from(buf);
                let h = decode_request_header_from_buffer(&mut b).unwrap();
                let v = h.request_api_version;
                let key = ApiKey::try_from(h.request_api_key).unwrap();
                let code_for = |k: ApiKey| match damage {
                    Damage::ErrorCode(d, c) if d == k => c,
                    _ => 0,
                };
                let mut body = match key {
                    ApiKey::ApiVersions => {
                        let mut r = ApiVersionsResponse::default();
                        r.error_code = code_for(key);
                        r.api_keys = [
                            ApiKey::ApiVersions,
                            ApiKey::FindCoordinator,
                            ApiKey::JoinGroup,
                            ApiKey::SyncGroup,
                            ApiKey::Heartbeat,
                            ApiKey::LeaveGroup,
                            ApiKey::OffsetCommit,
                            ApiKey::OffsetFetch,
                            ApiKey::Metadata,
                            ApiKey::SaslHandshake,
                            ApiKey::SaslAuthenticate,
                        ]
                        .iter()
                        .map(|k| {
                            let mut a = ApiVersion::default();
                            a.api_key = *k as i16;
                            a.min_version = k.valid_versions().min;
                            a.max_version = k.valid_versions().max;
                            a
                        })
                        .collect();
                        encode(&r, v)
                    }
                    ApiKey::FindCoordinator => {
                        let req = FindCoordinatorRequest::decode(&mut b, v).unwrap();
                        let mut r = FindCoordinatorResponse::default();
                        if v < 4 {
                            r.error_code = code_for(key);
                            r.host = StrBytes::from_static_str("127.0.0.1");
                            r.port = port as i32;
                        }
                        r.coordinators = req
                            .coordinator_keys
                            .iter()
                            .map(|k| {
                                let mut c = Coordinator::default();
                                c.key = k.clone();
                                c.error_code = code_for(key);
                                c.host = StrBytes::from_static_str("127.0.0.1");
                                c.port = port as i32;
                                c
                            })
                            .collect();
                        encode(&r, v)
                    }
                    ApiKey::JoinGroup => {
                        let req = JoinGroupRequest::decode(&mut b, v).unwrap();
                        let mut r = JoinGroupResponse::default();
                        if req.member_id.is_empty() && v >= 4 {
                            r.error_code = 79;
                            r.member_id = StrBytes::from_static_str("m-1");
                        } else {
                            r.error_code = code_for(key);
                            r.generation_id = 1;
                            r.member_id = StrBytes::from_static_str("m-1");
                            r.leader = StrBytes::from_static_str("m-1");
                            if v >= 7 {
                                r.protocol_type = Some(StrBytes::from_static_str("consumer"));
                            }
                            r.protocol_name = Some(StrBytes::from_static_str("range"));
                            let mut m = JoinGroupResponseMember::default();
                            m.member_id = StrBytes::from_static_str("m-1");
                            m.metadata = req.protocols[0].metadata.clone();
                            r.members = vec![m];
                        }
                        encode(&r, v)
                    }
                    ApiKey::Metadata => {
                        let req = MetadataRequest::decode(&mut b, v).unwrap();
                        let mut r = MetadataResponse::default();
                        let mut t = MetadataResponseTopic::default();
                        t.error_code = code_for(key);
                        t.name = req.topics.unwrap()[0].name.clone();
                        t.partitions = (0..4)
                            .map(|i| {
                                let mut p = MetadataResponsePartition::default();
                                p.partition_index = i;
                                p
                            })
                            .collect();
                        r.topics = vec![t];
                        encode(&r, v)
                    }
                    ApiKey::SyncGroup => {
                        let req = SyncGroupRequest::decode(&mut b, v).unwrap();
                        let mut r = SyncGroupResponse::default();
                        r.error_code = code_for(key);
                        r.assignment = req
                            .assignments
                            .iter()
                            .find(|a| a.member_id == req.member_id)
                            .map(|a| a.assignment.clone())
                            .unwrap_or_default();
                        encode(&r, v)
                    }
                    ApiKey::Heartbeat => {
                        let mut r = HeartbeatResponse::default();
                        r.error_code = code_for(key);
                        encode(&r, v)
                    }
                    ApiKey::OffsetCommit => {
                        let req = OffsetCommitRequest::decode(&mut b, v).unwrap();
                        let mut r = OffsetCommitResponse::default();
                        r.topics = req
                            .topics
                            .iter()
                            .map(|t| {
                                let mut rt = offset_commit_response::OffsetCommitResponseTopic::default();
                                rt.name = t.name.clone();
                                rt.partitions = t
                                    .partitions
                                    .iter()
                                    .map(|p| {
                                        let mut rp = offset_commit_response::OffsetCommitResponsePartition::default();
                                        rp.partition_index = p.partition_index;
                                        rp.error_code = code_for(key);
                                        rp
                                    })
                                    .collect();
                                rt
                            })
                            .collect();
                        encode(&r, v)
                    }
                    ApiKey::OffsetFetch => {
                        let mut r = OffsetFetchResponse::default();
                        if v >= 8 {
                            let mut g = offset_fetch_response::OffsetFetchResponseGroup::default();
                            g.group_id = GroupId(StrBytes::from_static_str("g"));
                            g.error_code = code_for(key);
                            r.groups = vec![g];
                        } else {
                            r.error_code = code_for(key);
                        }
                        encode(&r, v)
                    }
                    ApiKey::LeaveGroup => {
                        let mut r = LeaveGroupResponse::default();
                        r.error_code = code_for(key);
                        encode(&r, v)
                    }
                    // SASL PLAIN for alice/secret.
                    ApiKey::SaslHandshake => {
                        let req = SaslHandshakeRequest::decode(&mut b, v).unwrap();
                        let mut r = SaslHandshakeResponse::default();
                        r.mechanisms = vec![StrBytes::from_static_str("PLAIN")];
                        if req.mechanism.as_str() != "PLAIN" {
                            r.error_code = 33;
                        }
                        encode(&r, v)
                    }
                    ApiKey::SaslAuthenticate => {
                        let req = SaslAuthenticateRequest::decode(&mut b, v).unwrap();
                        let mut r = SaslAuthenticateResponse::default();
                        if &req.auth_bytes[..] != b"\0alice\0secret" {
                            r.error_code = 58;
                            r.error_message = Some(StrBytes::from_static_str("bad password"));
                        }
                        encode(&r, v)
                    }
                    _ => return,
                };
                let mut correlation = h.correlation_id;
                let mut frame_len = None;
                let hit = match damage {
                    Damage::Truncate(k, n) if k == key && n < body.len() => {
                        body.truncate(n);
                        true
                    }
                    Damage::Correlation(k) if k == key => {
                        correlation += 1;
                        true
                    }
                    Damage::FrameLength(k, n) if k == key => {
                        frame_len = Some(n);
                        true
                    }
                    Damage::Close(k) if k == key => {
                        applied.store(true, Ordering::SeqCst);
                        return;
                    }
                    Damage::ErrorCode(k, _) => k == key,
                    _ => false,
                };
                if hit {
                    applied.store(true, Ordering::SeqCst);
                }
                let mut rh = ResponseHeader::default();
                rh.correlation_id = correlation;
                let mut out = encode(&rh, key.response_header_version(v));
                out.extend_from_slice(&body);
                let len = frame_len.unwrap_or(out.len() as i32);
                let mut frame = len.to_be_bytes().to_vec();
                frame.extend_from_slice(&out);
                if s.write_all(&frame).await.is_err() {
                    return;
                }
            }
        }
    }

    fn quick() -> GroupOptions {
        let mut o = GroupOptions::new(Duration::from_secs(10));
        o.retry_for = Duration::ZERO;
        o.rebalance_timeout = Duration::ZERO;
        o.request_timeout = Duration::from_secs(2);
        o
    }

    async fn exercise(addr: &str) -> Result<(), KafkaError> {
        exercise_with(addr, &Security::default()).await
    }

    async fn exercise_with(addr: &str, sec: &Security) -> Result<(), KafkaError> {
        let url: KafkaUrl = format!("kafka://{addr}/t").parse().unwrap();
        let mut m = GroupMember::join_with(&url, sec, "g", "c", quick()).await?;
        assert_eq!(m.assignment().partitions, vec![0, 1, 2, 3]);
        m.heartbeat().await?;
        m.commit(&[(0, 1)]).await?;
        m.committed(&[0]).await?;
        m.leave().await
    }

    #[tokio::test]
    async fn the_fake_coordinator_works() {
        let (addr, _) = fake::start(fake::Damage::None).await;
        exercise(&addr).await.unwrap();
    }

    #[tokio::test]
    async fn sasl_plain_against_the_fake_coordinator() {
        // tansu 0.6 offers SCRAM only: PLAIN is tested here.
        let (addr, _) = fake::start(fake::Damage::None).await;
        let sasl = |m, p: &str| Security {
            sasl: Some((m, "alice".to_string(), p.to_string())),
            ..Security::default()
        };
        exercise_with(&addr, &sasl(SaslMechanism::Plain, "secret"))
            .await
            .unwrap();
        let e = exercise_with(&addr, &sasl(SaslMechanism::Plain, "guess"))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(&addr), "{e}");
        assert!(
            e.contains("SASL_AUTHENTICATION_FAILED (58): bad password"),
            "{e}"
        );
        assert!(e.contains("PLAIN authentication as alice"), "{e}");
        let e = exercise_with(&addr, &sasl(SaslMechanism::ScramSha512, "secret"))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("UNSUPPORTED_SASL_MECHANISM (33)"), "{e}");
        assert!(e.contains("the broker offers PLAIN"), "{e}");
    }

    async fn survives(d: fake::Damage) -> bool {
        let (addr, applied) = fake::start(d).await;
        let r = tokio::time::timeout(Duration::from_secs(20), exercise(&addr)).await;
        let Ok(r) = r else {
            panic!("{d:?}: hangs");
        };
        if let Err(e) = r {
            let e = e.to_string();
            assert!(
                e.contains(&addr),
                "{d:?}: the error does not name the broker: {e}"
            );
        }
        applied.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[tokio::test]
    async fn damaged_responses_are_errors_not_panics() {
        use fake::Damage;
        use kafka_protocol::messages::ApiKey;
        for k in [
            ApiKey::ApiVersions,
            ApiKey::FindCoordinator,
            ApiKey::JoinGroup,
            ApiKey::Metadata,
            ApiKey::SyncGroup,
            ApiKey::Heartbeat,
            ApiKey::OffsetCommit,
            ApiKey::OffsetFetch,
            ApiKey::LeaveGroup,
        ] {
            let mut all = vec![Damage::Correlation(k), Damage::Close(k)];
            all.extend([-1, -100, 0, 1, 3, i32::MAX].map(|n| Damage::FrameLength(k, n)));
            all.extend(
                [-1, 1, 3, 5, 14, 15, 16, 22, 25, 27, 35, 79, 82, 88, 31000]
                    .map(|c| Damage::ErrorCode(k, c)),
            );
            for d in all {
                assert!(survives(d).await, "{d:?} never happened");
            }
            // Every truncation of the response.
            let mut n = 0;
            while survives(Damage::Truncate(k, n)).await {
                n += 1;
            }
            assert!(n > 0, "{k:?}");
        }
    }

    #[test]
    fn hosts() {
        assert_eq!(host_of("broker:9092"), "broker");
        assert_eq!(host_of("[::1]:9092"), "::1");
        assert_eq!(host_of("10.0.0.1:1"), "10.0.0.1");
    }
}

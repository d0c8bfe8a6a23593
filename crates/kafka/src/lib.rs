//! Tomo's Kafka-protocol transport between hosts.
//!
//! Agents ship their durable log to a Kafka-protocol broker and collectors
//! read it back (see ARCHITECTURE.md, "Many hosts"). This crate holds what
//! both sides share:
//! - [`KafkaUrl`]: `kafka://BROKER[,BROKER…]/TOPIC` (`kafkas://` for TLS);
//! - [`Security`]: TLS (CA file, client certificate) and SASL options, and
//!   [`connect`], which builds an `rskafka` client from them;
//! - [`frame`]: the wire record that carries one sealed log block (or the end
//!   of a recording), with host, boot and recording identity in every record;
//! - [`group`]: consumer-group membership (JoinGroup/SyncGroup/Heartbeat,
//!   committed offsets), which `rskafka` does not provide.

pub mod frame;
pub mod group;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use rskafka;
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder, Credentials, SaslConfig};

/// Errors of the transport. Messages name the broker or file concerned.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("bad Kafka URL {url:?}: {reason} (expected kafka://HOST:PORT[,HOST:PORT...]/TOPIC, or kafkas:// for TLS)")]
    BadUrl { url: String, reason: String },
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    #[error("Kafka client ({brokers}): {source}")]
    Client {
        brokers: String,
        #[source]
        source: rskafka::client::error::Error,
    },
    #[error("{0}")]
    Protocol(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where to ship to or collect from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaUrl {
    pub brokers: Vec<String>,
    pub topic: String,
    /// `kafkas://`: connect with TLS even without other TLS options.
    pub tls: bool,
}

impl std::fmt::Display for KafkaUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "kafkas" } else { "kafka" };
        write!(f, "{scheme}://{}/{}", self.brokers.join(","), self.topic)
    }
}

impl std::str::FromStr for KafkaUrl {
    type Err = KafkaError;
    fn from_str(s: &str) -> Result<KafkaUrl, KafkaError> {
        let bad = |reason: &str| KafkaError::BadUrl {
            url: s.to_string(),
            reason: reason.to_string(),
        };
        let (tls, rest) = if let Some(r) = s.strip_prefix("kafka://") {
            (false, r)
        } else if let Some(r) = s.strip_prefix("kafkas://") {
            (true, r)
        } else {
            return Err(bad("the scheme must be kafka:// or kafkas://"));
        };
        let (hosts, topic) = rest
            .split_once('/')
            .ok_or_else(|| bad("no /TOPIC after the brokers"))?;
        if topic.is_empty() {
            return Err(bad("empty topic"));
        }
        // Kafka's own rule for topic names.
        if topic.len() > 249
            || !topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        {
            return Err(bad("a topic is 1 to 249 characters of [a-zA-Z0-9._-]"));
        }
        let mut brokers = Vec::new();
        for h in hosts.split(',') {
            let h = h.trim();
            if h.is_empty() {
                return Err(bad("empty broker address"));
            }
            let port_ok = h
                .rsplit_once(':')
                .is_some_and(|(host, p)| !host.is_empty() && p.parse::<u16>().is_ok());
            brokers.push(if port_ok {
                h.to_string()
            } else if h.contains(':') && !h.starts_with('[') {
                return Err(bad(&format!("bad port in {h:?}")));
            } else {
                format!("{h}:9092")
            });
        }
        Ok(KafkaUrl {
            brokers,
            topic: topic.to_string(),
            tls,
        })
    }
}

/// SASL mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl std::str::FromStr for SaslMechanism {
    type Err = String;
    fn from_str(s: &str) -> Result<SaslMechanism, String> {
        match s.to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Ok(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Ok(SaslMechanism::ScramSha512),
            _ => Err(format!(
                "unknown SASL mechanism {s:?} (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
            )),
        }
    }
}

/// Transport security of the connection to the brokers.
#[derive(Clone, Debug, Default)]
pub struct Security {
    /// PEM file of the CA certificates that sign the brokers' certificates;
    /// setting it turns TLS on.
    pub tls_ca: Option<PathBuf>,
    /// PEM certificate chain and key for TLS client authentication.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub sasl: Option<(SaslMechanism, String, String)>,
}

impl Security {
    pub fn uses_tls(&self, url: &KafkaUrl) -> bool {
        url.tls || self.tls_ca.is_some()
    }

    /// The rustls configuration, when TLS is on.
    pub fn tls_config(
        &self,
        url: &KafkaUrl,
    ) -> Result<Option<Arc<rustls::ClientConfig>>, KafkaError> {
        if !self.uses_tls(url) {
            return Ok(None);
        }
        let Some(ca) = &self.tls_ca else {
            return Err(KafkaError::BadUrl {
                url: url.to_string(),
                reason: "TLS needs the brokers' CA certificates (--kafka-ca FILE)".into(),
            });
        };
        let mut roots = rustls::RootCertStore::empty();
        for c in read_pem_certs(ca)? {
            roots.add(c).map_err(|e| KafkaError::File {
                path: ca.clone(),
                reason: format!("bad CA certificate: {e}"),
            })?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| KafkaError::Protocol(format!("TLS setup: {e}")))?
            .with_root_certificates(roots);
        let cfg = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                let chain = read_pem_certs(cert)?;
                let k = read_pem_key(key)?;
                builder
                    .with_client_auth_cert(chain, k)
                    .map_err(|e| KafkaError::File {
                        path: cert.clone(),
                        reason: format!("bad client certificate or key: {e}"),
                    })?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(KafkaError::Protocol(
                    "a TLS client certificate needs both --kafka-cert and --kafka-key".into(),
                ))
            }
        };
        Ok(Some(Arc::new(cfg)))
    }

    fn sasl_config(&self) -> Option<SaslConfig> {
        self.sasl.as_ref().map(|(m, user, pass)| {
            let c = Credentials::new(user.clone(), pass.clone());
            match m {
                SaslMechanism::Plain => SaslConfig::Plain(c),
                SaslMechanism::ScramSha256 => SaslConfig::ScramSha256(c),
                SaslMechanism::ScramSha512 => SaslConfig::ScramSha512(c),
            }
        })
    }
}

fn read_pem_certs(
    path: &PathBuf,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, KafkaError> {
    let bytes = std::fs::read(path).map_err(|e| KafkaError::File {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut &bytes[..]).collect();
    let certs = certs.map_err(|e| KafkaError::File {
        path: path.clone(),
        reason: format!("not PEM certificates: {e}"),
    })?;
    if certs.is_empty() {
        return Err(KafkaError::File {
            path: path.clone(),
            reason: "no PEM certificate in the file".into(),
        });
    }
    Ok(certs)
}

fn read_pem_key(path: &PathBuf) -> Result<rustls::pki_types::PrivateKeyDer<'static>, KafkaError> {
    let bytes = std::fs::read(path).map_err(|e| KafkaError::File {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    rustls_pemfile::private_key(&mut &bytes[..])
        .map_err(|e| KafkaError::File {
            path: path.clone(),
            reason: format!("not a PEM key: {e}"),
        })?
        .ok_or_else(|| KafkaError::File {
            path: path.clone(),
            reason: "no PEM private key in the file".into(),
        })
}

/// Wire compression of record batches. Log blocks are already zstd
/// compressed, so the default is none: a second pass only costs CPU.
pub fn parse_compression(s: &str) -> Result<Compression, String> {
    match s {
        "none" => Ok(Compression::NoCompression),
        "gzip" => Ok(Compression::Gzip),
        "lz4" => Ok(Compression::Lz4),
        "snappy" => Ok(Compression::Snappy),
        "zstd" => Ok(Compression::Zstd),
        _ => Err(format!(
            "unknown compression {s:?} (none, gzip, lz4, snappy, zstd)"
        )),
    }
}

/// A connected client. Requests retry with backoff for at most `deadline`,
/// so that the callers (shipper, collector) see an outage as an error and
/// run their own, unbounded, retry loop around it.
pub async fn connect(
    url: &KafkaUrl,
    sec: &Security,
    client_id: &str,
    deadline: Duration,
) -> Result<Client, KafkaError> {
    let mut b = ClientBuilder::new(url.brokers.clone())
        .client_id(client_id.to_string())
        .backoff_config(rskafka::BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
            deadline: Some(deadline),
        });
    if let Some(tls) = sec.tls_config(url)? {
        b = b.tls_config(tls);
    }
    if let Some(s) = sec.sasl_config() {
        b = b.sasl_config(s);
    }
    b.build().await.map_err(|source| KafkaError::Client {
        brokers: url.brokers.join(","),
        source,
    })
}

/// Number of partitions of `topic`, creating it with `create_partitions`
/// when it does not exist.
pub async fn ensure_topic(
    client: &Client,
    url: &KafkaUrl,
    create_partitions: i32,
) -> Result<i32, KafkaError> {
    let err = |source| KafkaError::Client {
        brokers: url.brokers.join(","),
        source,
    };
    for attempt in 0..2 {
        let topics = client.list_topics().await.map_err(err)?;
        if let Some(t) = topics.iter().find(|t| t.name == url.topic) {
            if !t.partitions.is_empty() {
                return Ok(t.partitions.len() as i32);
            }
        }
        if attempt == 0 {
            let ctl = client.controller_client().map_err(err)?;
            // Another agent may create it at the same time: an error here is
            // only fatal if the topic still does not exist afterwards.
            if let Err(e) = ctl
                .create_topic(&url.topic, create_partitions, 1, 5_000)
                .await
            {
                tracing::debug!("create topic {}: {e}", url.topic);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Err(KafkaError::Protocol(format!(
        "topic {} does not exist and could not be created on {}",
        url.topic,
        url.brokers.join(",")
    )))
}

/// The partition of a host: all of a host's records go to one partition so
/// that they stay in order; hosts spread over partitions (and so over the
/// collectors of a group).
pub fn partition_of(host: &[u8; 16], partitions: i32) -> i32 {
    // FNV-1a, then a splitmix64 finalizer so that the low bits depend on
    // every input bit: stable across versions and platforms, unlike std's
    // hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in host {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    (h % partitions.max(1) as u64) as i32
}

/// A partition client that waits for an unknown topic to appear.
pub async fn partition(
    client: &Client,
    url: &KafkaUrl,
    partition: i32,
) -> Result<rskafka::client::partition::PartitionClient, KafkaError> {
    client
        .partition_client(url.topic.clone(), partition, UnknownTopicHandling::Retry)
        .await
        .map_err(|source| KafkaError::Client {
            brokers: url.brokers.join(","),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u: KafkaUrl = "kafka://a:1,b/tomo-events".parse().unwrap();
        assert_eq!(u.brokers, vec!["a:1", "b:9092"]);
        assert_eq!(u.topic, "tomo-events");
        assert!(!u.tls);
        assert!("kafkas://h/t".parse::<KafkaUrl>().unwrap().tls);
        for bad in [
            "http://a/t",
            "kafka://a",
            "kafka://a/",
            "kafka://a:x/t",
            "kafka://,/t",
            "kafka://a/t t",
        ] {
            let e = bad.parse::<KafkaUrl>().unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
        assert_eq!(u.to_string(), "kafka://a:1,b:9092/tomo-events");
    }

    #[test]
    fn partitions_are_stable_and_spread() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..64u8 {
            let p = partition_of(&[i; 16], 4);
            assert!((0..4).contains(&p));
            assert_eq!(p, partition_of(&[i; 16], 4));
            seen.insert(p);
        }
        assert_eq!(seen.len(), 4);
    }
}

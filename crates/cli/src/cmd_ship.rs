//! `tomo ship` (send a spool to a Kafka-protocol broker) and `tomo collect`
//! (gather many hosts from it into one store), with the broker options they
//! share with `tomo agent --ship`.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tomo_kafka::{KafkaUrl, SaslMechanism, Security};

/// Broker connection options (TLS, SASL, wire compression).
#[derive(Args, Clone, Debug, Default)]
pub struct KafkaArgs {
    /// TLS: PEM file of the CA certificates of the brokers (turns TLS on; so does kafkas://).
    #[arg(long, value_name = "FILE")]
    pub kafka_ca: Option<PathBuf>,
    /// TLS client certificate chain (PEM), with --kafka-key.
    #[arg(long, value_name = "FILE")]
    pub kafka_cert: Option<PathBuf>,
    /// TLS client key (PEM).
    #[arg(long, value_name = "FILE")]
    pub kafka_key: Option<PathBuf>,
    /// SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (needs --sasl-user).
    #[arg(long, value_name = "MECH")]
    pub sasl_mechanism: Option<SaslMechanism>,
    #[arg(long, value_name = "USER")]
    pub sasl_user: Option<String>,
    /// File holding the SASL password (or set TOMO_SASL_PASSWORD): never on the command line.
    #[arg(long, value_name = "FILE")]
    pub sasl_password_file: Option<PathBuf>,
}

impl KafkaArgs {
    pub fn security(&self) -> Result<Security> {
        let sasl = match (&self.sasl_mechanism, &self.sasl_user) {
            (None, None) => None,
            (m, Some(u)) => {
                let pass = match &self.sasl_password_file {
                    Some(f) => std::fs::read_to_string(f)
                        .with_context(|| format!("cannot read the SASL password file {}", f.display()))?
                        .trim_end_matches(['\n', '\r'])
                        .to_string(),
                    None => std::env::var("TOMO_SASL_PASSWORD").context(
                        "--sasl-user needs a password: --sasl-password-file FILE or TOMO_SASL_PASSWORD",
                    )?,
                };
                Some((m.unwrap_or(SaslMechanism::Plain), u.clone(), pass))
            }
            (Some(_), None) => bail!("--sasl-mechanism needs --sasl-user"),
        };
        Ok(Security {
            tls_ca: self.kafka_ca.clone(),
            tls_cert: self.kafka_cert.clone(),
            tls_key: self.kafka_key.clone(),
            sasl,
        })
    }
}

fn parse_compression(
    s: &str,
) -> Result<tomo_kafka::rskafka::client::partition::Compression, String> {
    tomo_kafka::parse_compression(s)
}

/// Shipping options of `tomo ship` and `tomo agent --ship`.
#[derive(Args, Clone, Debug)]
pub struct ShipArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Compression of record batches on the wire: none, gzip, lz4, snappy,
    /// zstd. Log blocks are zstd already, so none is the default.
    #[arg(long, value_name = "CODEC", default_value = "none", value_parser = parse_compression)]
    pub compression: tomo_kafka::rskafka::client::partition::Compression,
    /// Partitions of the topic if the shipper creates it.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub partitions: i32,
    /// At exit, wait at most this long for the broker to take what is left
    /// (the rest stays in the spool and is shipped by the next run).
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub drain_timeout: f64,
}

impl ShipArgs {
    pub fn options(&self, url: KafkaUrl) -> Result<tomo_ship::ShipOptions> {
        let mut o = tomo_ship::ShipOptions::new(url);
        o.security = self.kafka.security()?;
        o.compression = self.compression;
        o.create_partitions = self.partitions.max(1);
        Ok(o)
    }
}

#[derive(Args)]
pub struct ShipCmd {
    /// The spool: a directory of recordings (what `tomo agent --ship` writes), shipped in name order.
    spool: PathBuf,
    /// Where to: kafka://BROKER[,BROKER...]/TOPIC (kafkas:// for TLS).
    #[arg(long, value_name = "URL")]
    to: KafkaUrl,
    /// Keep following the newest recording until Ctrl-C (default: ship what is there and exit).
    #[arg(long)]
    follow: bool,
    #[command(flatten)]
    ship: ShipArgs,
    /// Print the final counters as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// A flag raised by SIGINT, SIGTERM or SIGHUP.
pub fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    Ok(stop)
}

pub fn ship(a: ShipCmd) -> Result<i32> {
    if !a.spool.is_dir() {
        bail!("{} is not a spool directory", a.spool.display());
    }
    let stop = stop_flag()?;
    let shipper = tomo_ship::Shipper::spawn(&a.spool, a.ship.options(a.to.clone())?)
        .with_context(|| format!("cannot ship {}", a.spool.display()))?;
    if a.follow {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let (st, res) = shipper.finish(Duration::from_secs_f64(a.ship.drain_timeout.max(0.0)));
    res.with_context(|| format!("shipping {}", a.spool.display()))?;
    if a.json {
        println!("{}", serde_json::to_string(&st)?);
    } else {
        eprintln!(
            "tomo: ship: {} blocks ({} events, {} bytes) to {}; {} recordings complete; {} retries",
            st.blocks, st.events, st.bytes, a.to, st.recordings_done, st.retries
        );
    }
    for w in &st.warnings {
        eprintln!("tomo: ship: warning: {w}");
    }
    if let Some(e) = &st.last_error {
        eprintln!("tomo: ship: not everything was shipped (the broker did not answer in time): {e}; run again to continue");
        return Ok(1);
    }
    Ok(0)
}

#[derive(Args)]
pub struct CollectCmd {
    /// Where from: kafka://BROKER[,BROKER...]/TOPIC (kafkas:// for TLS).
    #[arg(long, value_name = "URL")]
    from: KafkaUrl,
    /// The collection directory (replicas of every host's recordings, and their store).
    #[arg(short, long)]
    output: PathBuf,
    /// Consumer group: collectors of one group share the hosts (partitions).
    #[arg(long, default_value = "tomo-collect")]
    group: String,
    /// Bring the store up to date every SECS seconds (0: only at exit).
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    index_every: f64,
    /// Exit once everything available is collected and nothing new came for SECS seconds.
    #[arg(long, value_name = "SECS")]
    idle_exit: Option<f64>,
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Print the final counters as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn collect(a: CollectCmd) -> Result<i32> {
    let stop = stop_flag()?;
    let mut o = tomo_collect::CollectOptions::new(a.from.clone(), a.output.clone());
    o.security = a.kafka.security()?;
    o.group = a.group.clone();
    o.client_id = format!("tomo-collect-{}", std::process::id());
    o.index_every = (a.index_every > 0.0).then(|| Duration::from_secs_f64(a.index_every));
    o.idle_exit = a.idle_exit.map(|s| Duration::from_secs_f64(s.max(0.0)));
    eprintln!(
        "tomo: collect: {} (group {}) into {} (Ctrl-C to stop)",
        a.from,
        a.group,
        a.output.display()
    );
    let st = tomo_collect::run(&o, &stop)
        .with_context(|| format!("collecting into {}", a.output.display()))?;
    if a.json {
        println!("{}", serde_json::to_string(&st)?);
    } else {
        eprintln!(
            "tomo: collect: {} records: {} blocks ({} events) added, {} duplicates dropped, {} recordings complete; store: {} events",
            st.records, st.blocks, st.events, st.duplicates, st.finished_recordings, st.store_events
        );
    }
    for p in &st.problems {
        eprintln!("tomo: collect: {p}");
    }
    Ok(if st.bad_records + st.refused_blocks > 0 {
        1
    } else {
        0
    })
}

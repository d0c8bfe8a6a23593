//! Consumer-group membership against a real Kafka-protocol broker (tansu).
//!
//! These tests need tansu (see tests/common/mod.rs): without it they fail
//! and say how to install it.

mod common;

use std::time::{Duration, Instant};

use common::Tansu;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tomo_kafka::group::{Assignment, GroupMember, GroupOptions, Heartbeat};
use tomo_kafka::{KafkaUrl, SaslMechanism, Security};

const SESSION: Duration = Duration::from_secs(10);

async fn topic(broker: &Tansu, name: &str, partitions: i32, sec: &Security) -> KafkaUrl {
    let url: KafkaUrl = broker.url(name).parse().unwrap();
    let client = tomo_kafka::connect(&url, sec, "tomo-test-admin", Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}\n{}", broker.log()));
    // A loaded broker may list a new topic only a little later.
    let mut tries = 0;
    let n = loop {
        match tomo_kafka::ensure_topic(&client, &url, partitions).await {
            Ok(n) => break n,
            Err(e) if tries < 10 => {
                tries += 1;
                eprintln!("create {url}: {e}; again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("create {url}: {e}\n{}", broker.log()),
        }
    };
    assert_eq!(n, partitions);
    url
}

async fn join(url: &KafkaUrl, group: &str, name: &str) -> GroupMember {
    GroupMember::join(url, &Security::default(), group, name, SESSION)
        .await
        .unwrap_or_else(|e| panic!("{name} joins {group}: {e}"))
}

/// A member that heartbeats every 200 ms and rejoins on a rebalance, in
/// its own task, publishing its assignment, as a collector would.
struct Running {
    assignment: watch::Receiver<Assignment>,
    stop: watch::Sender<bool>,
    task: JoinHandle<GroupMember>,
}

fn run(mut m: GroupMember) -> Running {
    let (tx, rx) = watch::channel(m.assignment().clone());
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            match m.heartbeat().await {
                Ok(Heartbeat::Ok) => {}
                Ok(Heartbeat::Rebalance) => {
                    if let Err(e) = m.rejoin().await {
                        panic!("rejoin: {e}");
                    }
                }
                Err(e) => panic!("heartbeat: {e}"),
            }
            tx.send_replace(m.assignment().clone());
        }
        m
    });
    Running {
        assignment: rx,
        stop,
        task,
    }
}

impl Running {
    async fn stop(self) -> GroupMember {
        let _ = self.stop.send(true);
        self.task.await.expect("member task")
    }
}

/// Waits until the members' assignments are of one generation, disjoint
/// and cover `0..partitions`; returns them.
async fn settled(members: &[&Running], partitions: i32, within: Duration) -> Vec<Assignment> {
    let start = Instant::now();
    loop {
        let now: Vec<Assignment> = members
            .iter()
            .map(|r| r.assignment.borrow().clone())
            .collect();
        let mut all: Vec<i32> = now.iter().flat_map(|a| a.partitions.clone()).collect();
        all.sort_unstable();
        let one_generation = now.iter().all(|a| a.generation == now[0].generation);
        if one_generation && all == (0..partitions).collect::<Vec<_>>() {
            return now;
        }
        if start.elapsed() > within {
            panic!("the group did not settle in {within:?}: {now:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn one_member_gets_all_partitions() {
    let broker = Tansu::start();
    let url = topic(&broker, "one", 4, &Security::default()).await;
    let mut m = join(&url, "g-one", "c1").await;
    let a = m.assignment().clone();
    assert_eq!(a.partitions, vec![0, 1, 2, 3], "{a:?}");
    assert!(!a.member_id.is_empty());
    assert!(a.generation >= 0, "{a:?}");
    assert_eq!(m.heartbeat().await.unwrap(), Heartbeat::Ok);
    assert!(!m.needs_rejoin());
    assert_eq!(m.coordinator(), Some(broker.addr().as_str()));
    m.leave().await.unwrap();
}

#[tokio::test]
async fn a_second_member_takes_half() {
    let broker = Tansu::start();
    let url = topic(&broker, "two", 4, &Security::default()).await;
    let a = run(join(&url, "g-two", "c1").await);
    assert_eq!(a.assignment.borrow().partitions, vec![0, 1, 2, 3]);

    // B's join completes once A has seen the rebalance and rejoined (A is
    // the leader and assigns).
    let b = run(join(&url, "g-two", "c2").await);
    let now = settled(&[&a, &b], 4, Duration::from_secs(60)).await;
    assert_eq!(now[0].partitions.len(), 2, "{now:?}");
    assert_eq!(now[1].partitions.len(), 2, "{now:?}");
    assert_ne!(now[0].member_id, now[1].member_id);
    let a = a.stop().await;
    let b = b.stop().await;
    b.leave().await.unwrap();
    a.leave().await.unwrap();
}

#[tokio::test]
async fn committed_offsets_survive_the_member() {
    let broker = Tansu::start();
    let url = topic(&broker, "offsets", 4, &Security::default()).await;
    let mut a = join(&url, "g-offsets", "c1").await;
    assert_eq!(
        a.committed(&[0, 1, 2, 3]).await.unwrap(),
        vec![(0, None), (1, None), (2, None), (3, None)]
    );
    a.commit(&[(0, 10), (1, 20), (3, 5)]).await.unwrap();
    a.commit(&[(0, 12)]).await.unwrap();
    assert_eq!(
        a.committed(&[0, 1, 2, 3]).await.unwrap(),
        vec![(0, Some(12)), (1, Some(20)), (2, None), (3, Some(5))]
    );
    a.leave().await.unwrap();

    // A new member of the group reads them back.
    let mut c = join(&url, "g-offsets", "c2").await;
    assert_eq!(c.assignment().partitions, vec![0, 1, 2, 3]);
    assert_eq!(
        c.committed(&[3, 1, 0, 2]).await.unwrap(),
        vec![(3, Some(5)), (1, Some(20)), (0, Some(12)), (2, None)]
    );
    c.leave().await.unwrap();

    // Offsets belong to the group.
    let mut other = join(&url, "g-offsets-other", "c3").await;
    assert_eq!(other.committed(&[0]).await.unwrap(), vec![(0, None)]);
    other.leave().await.unwrap();
}

#[tokio::test]
async fn after_a_leave_the_other_gets_everything() {
    let broker = Tansu::start();
    let url = topic(&broker, "leave", 4, &Security::default()).await;
    let a = run(join(&url, "g-leave", "c1").await);
    let b = run(join(&url, "g-leave", "c2").await);
    settled(&[&a, &b], 4, Duration::from_secs(60)).await;

    let b = b.stop().await;
    let left = b.assignment().generation;
    b.leave().await.unwrap();
    let start = Instant::now();
    loop {
        let now = a.assignment.borrow().clone();
        if now.partitions == vec![0, 1, 2, 3] && now.generation > left {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the remaining member did not take over: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.stop().await.leave().await.unwrap();
}

#[tokio::test]
async fn the_leader_leaving_hands_over() {
    // The first member is the leader; when it leaves, the other becomes
    // leader and assigns itself everything.
    let broker = Tansu::start();
    let url = topic(&broker, "leader", 3, &Security::default()).await;
    let a = run(join(&url, "g-leader", "c1").await);
    let b = run(join(&url, "g-leader", "c2").await);
    settled(&[&a, &b], 3, Duration::from_secs(60)).await;
    a.stop().await.leave().await.unwrap();
    let start = Instant::now();
    while b.assignment.borrow().partitions != vec![0, 1, 2] {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{:?}",
            b.assignment.borrow()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.stop().await.leave().await.unwrap();
}

/// One of two members stops heartbeating without leaving (a crashed
/// collector): after the session timeout the other must get its partitions.
async fn silent_member_expires(leader_dies: bool) {
    let broker = Tansu::start();
    let url = topic(&broker, "expire", 4, &Security::default()).await;
    // tansu holds a follower's JoinGroup for 3 s: shorter sessions expire
    // members while they join.
    let opts = GroupOptions::new(Duration::from_secs(6));
    let sec = Security::default();
    // The first member to join is the leader.
    let first = run(
        GroupMember::join_with(&url, &sec, "g-expire", "c1", opts.clone())
            .await
            .unwrap(),
    );
    let second = run(GroupMember::join_with(&url, &sec, "g-expire", "c2", opts)
        .await
        .unwrap());
    settled(&[&first, &second], 4, Duration::from_secs(60)).await;
    let (dies, lives) = if leader_dies {
        (first, second)
    } else {
        (second, first)
    };
    drop(dies.stop().await); // no LeaveGroup
    let start = Instant::now();
    while lives.assignment.borrow().partitions != vec![0, 1, 2, 3] {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the silent member's partitions were not reassigned: {:?}",
            lives.assignment.borrow()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    lives.stop().await.leave().await.unwrap();
}

#[tokio::test]
async fn a_silent_follower_expires() {
    silent_member_expires(false).await;
}

#[tokio::test]
async fn a_silent_leader_expires() {
    silent_member_expires(true).await;
}

#[tokio::test]
async fn survives_a_broker_restart() {
    let mut broker = Tansu::start();
    let url = topic(&broker, "restart", 2, &Security::default()).await;
    let mut m = join(&url, "g-restart", "c1").await;
    m.commit(&[(0, 7)]).await.unwrap();
    broker.restart();
    // The connection is gone: the member reconnects and carries on.
    let h = m.heartbeat().await.unwrap();
    if h == Heartbeat::Rebalance {
        m.rejoin().await.unwrap();
    }
    assert_eq!(m.assignment().partitions, vec![0, 1]);
    assert_eq!(
        m.committed(&[0, 1]).await.unwrap(),
        vec![(0, Some(7)), (1, None)]
    );
    m.leave().await.unwrap();
}

#[tokio::test]
async fn broker_down_is_an_error_in_bounded_time() {
    let mut broker = Tansu::start();
    let url = topic(&broker, "down", 1, &Security::default()).await;
    broker.stop();
    let mut opts = GroupOptions::new(SESSION);
    opts.retry_for = Duration::from_secs(2);
    opts.rebalance_timeout = Duration::from_secs(1);
    let start = Instant::now();
    let e = GroupMember::join_with(&url, &Security::default(), "g-down", "c1", opts)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(e.contains(&broker.addr()), "{e}");
}

#[tokio::test]
async fn missing_topic_is_an_error_naming_it() {
    let broker = Tansu::start();
    let url: KafkaUrl = broker.url("no-such-topic").parse().unwrap();
    let mut opts = GroupOptions::new(SESSION);
    opts.retry_for = Duration::from_secs(2);
    opts.rebalance_timeout = Duration::from_secs(1);
    let e = GroupMember::join_with(&url, &Security::default(), "g-missing", "c1", opts)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no-such-topic"), "{e}");
    assert!(e.contains(&broker.addr()), "{e}");
}

#[tokio::test]
async fn tansu_refuses_sasl_plain_with_a_clear_error() {
    // tansu 0.6 offers SCRAM-SHA-256/512 only (its rsasl lacks PLAIN);
    // PLAIN is tested against the fake coordinator of the unit tests.
    let broker = Tansu::start_with(&["--authentication"]);
    let url: KafkaUrl = broker.url("plain").parse().unwrap();
    let sec = Security {
        sasl: Some((SaslMechanism::Plain, "alice".into(), "secret".into())),
        ..Security::default()
    };
    let mut opts = GroupOptions::new(SESSION);
    opts.retry_for = Duration::from_secs(1);
    opts.rebalance_timeout = Duration::from_secs(1);
    let e = GroupMember::join_with(&url, &sec, "g-plain", "c1", opts.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("SASL handshake for PLAIN"), "{e}");
    assert!(e.contains(&broker.addr()), "{e}");
    // Nor does it let a client without SASL in.
    assert!(
        GroupMember::join_with(&url, &Security::default(), "g-plain", "c2", opts)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn sasl_scram() {
    let mut broker = Tansu::start();
    let url = topic(&broker, "scram", 2, &Security::default()).await;
    let tcp = format!("tcp://{}", broker.addr());
    for (user, mech) in [("bob", "scram256"), ("carol", "scram512")] {
        broker.tool(&[
            "user",
            "create",
            "--broker",
            &tcp,
            "--mechanism",
            mech,
            user,
            "hunter2",
        ]);
    }
    broker.stop();
    broker = {
        // The same store, now with authentication required.
        let mut b = broker;
        b.set_extra(&["--authentication"]);
        b.restart();
        b
    };
    for (user, mech) in [
        ("bob", SaslMechanism::ScramSha256),
        ("carol", SaslMechanism::ScramSha512),
    ] {
        let sec = Security {
            sasl: Some((mech, user.into(), "hunter2".into())),
            ..Security::default()
        };
        let m = GroupMember::join(&url, &sec, "g-scram", user, SESSION)
            .await
            .unwrap_or_else(|e| panic!("{user} {mech:?}: {e}\n{}", broker.log()));
        m.leave().await.unwrap();

        let bad = Security {
            sasl: Some((mech, user.into(), "wrong".into())),
            ..Security::default()
        };
        let mut opts = GroupOptions::new(SESSION);
        opts.retry_for = Duration::from_secs(1);
        opts.rebalance_timeout = Duration::from_secs(1);
        let e = GroupMember::join_with(&url, &bad, "g-scram", user, opts)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(&broker.addr()), "{e}");
    }
}

/// A CA and a server certificate for 127.0.0.1, made with the openssl
/// command: (ca.pem, server.pem, server.key) in `dir`.
fn certificates(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("the TLS test needs the openssl command (apt-get install openssl): {e}")
            });
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=tomo test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// A TLS-terminating proxy in front of a broker (tansu 0.6 takes --cert and
/// --key but serves plain TCP).
async fn tls_proxy(
    listener: tokio::net::TcpListener,
    cert: &std::path::Path,
    key: &std::path::Path,
    to: String,
) {
    let certs: Vec<_> = rustls_pemfile::certs(&mut &std::fs::read(cert).unwrap()[..])
        .collect::<Result<_, _>>()
        .unwrap();
    let key = rustls_pemfile::private_key(&mut &std::fs::read(key).unwrap()[..])
        .unwrap()
        .unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let to = to.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut up) = tokio::net::TcpStream::connect(&to).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
}

#[tokio::test]
async fn tls() {
    let dir = std::env::temp_dir().join(format!("tomo-kafka-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, cert, key) = certificates(&dir);
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = proxy.local_addr().unwrap().to_string();
    let broker = Tansu::start_advertising(Some(&proxy_addr), &[]);
    tls_proxy(proxy, &cert, &key, broker.addr()).await;

    let sec = Security {
        tls_ca: Some(ca.clone()),
        ..Security::default()
    };
    let url: KafkaUrl = format!("kafkas://{proxy_addr}/tls").parse().unwrap();
    let client = tomo_kafka::connect(&url, &sec, "tomo-test-admin", Duration::from_secs(20))
        .await
        .unwrap();
    tomo_kafka::ensure_topic(&client, &url, 2).await.unwrap();
    let mut m = GroupMember::join(&url, &sec, "g-tls", "c1", SESSION)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", broker.log()));
    assert_eq!(m.assignment().partitions, vec![0, 1]);
    assert_eq!(m.coordinator(), Some(proxy_addr.as_str()));
    m.commit(&[(1, 3)]).await.unwrap();
    assert_eq!(m.committed(&[1]).await.unwrap(), vec![(1, Some(3))]);
    m.leave().await.unwrap();

    // A CA that did not sign the broker's certificate: refused.
    std::fs::copy(&cert, dir.join("other-ca.pem")).unwrap();
    let wrong = Security {
        tls_ca: Some(dir.join("other-ca.pem")),
        ..Security::default()
    };
    let mut opts = GroupOptions::new(SESSION);
    opts.retry_for = Duration::from_secs(1);
    opts.rebalance_timeout = Duration::from_secs(1);
    let e = GroupMember::join_with(&url, &wrong, "g-tls", "c2", opts)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("TLS handshake with"), "{e}");
    assert!(e.contains(&proxy_addr), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

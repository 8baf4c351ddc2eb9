//! The network: exfiltration through name lookups is refused before any query, and UDP floods and sprays reach
//! only the granted address.

use super::{error, still_serves, text_still_works};
use crate::common::{TestServer, call, call_limited, call_ok, load};
use are_policy::Limits;
use are_runtime::invoke::CallError;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `hostile-dns-exfil` smuggles: about 140 bytes, five labels of hex.
const EXFIL_DATA: &str = "user=root;aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY;\
                          host=build-7;token=ghp_0123456789abcdefghijklmnopqrstuvwxyz";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_exfiltration_is_refused_before_any_query() {
    let server = TestServer::start().await;
    let rounds = 40;
    let args = |port: Option<u16>| {
        let mut args = json!({ "data": EXFIL_DATA, "domain": "exfil.invalid", "rounds": rounds });
        if let Some(port) = port {
            args["port"] = json!(port);
        }
        args
    };

    // No grant: name lookup and HTTP are not there at all.
    let bare = load("hostile-dns-exfil", "");
    for (function, key) in [
        ("attack.raw-lookups", "allow.sockets"),
        ("attack.std-lookups", "allow.sockets"),
        ("attack.http-lookups", "allow.http"),
    ] {
        let port = (function == "attack.http-lookups").then_some(server.port);
        let report = call(&bare, function, args(port)).await;
        let message = error(&report, function);
        assert!(
            matches!(report.outcome, Err(CallError::CapabilityDenied(_)))
                && message.contains("capability not granted")
                && message.contains(key),
            "{function}: {message}"
        );
    }

    // Granted one name and one origin: every smuggling name is refused, before any query (a query of a name
    // under `.invalid` would fail with `name-unresolvable`, never `access-denied`).
    let exfil = load(
        "hostile-dns-exfil",
        &format!(
            "sockets = [\"tcp://localhost:{port}\"]\nhttp = [{:?}]",
            server.origin(),
            port = server.port
        ),
    );
    let started = Instant::now();
    let raw = call_ok(&exfil, "attack.raw-lookups", args(None)).await;
    let names = raw["names"].as_u64().unwrap();
    assert_eq!(names, 5 * rounds);
    assert_eq!(raw["resolved"], 0, "{raw}");
    assert_eq!(
        raw["errors"],
        json!([["resolve-addresses: access-denied", names]]),
        "{raw}"
    );
    let rate = names as f64 / (raw["elapsed-us"].as_u64().unwrap().max(1) as f64 / 1e6);
    eprintln!("dns exfiltration: {names} names refused at {rate:.0} names/s");

    let std = call_ok(&exfil, "attack.std-lookups", args(None)).await;
    assert_eq!(
        (std["names"].as_u64(), std["resolved"].as_u64()),
        (Some(names), Some(0)),
        "{std}"
    );
    let errors = std["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "one kind of refusal: {std}");

    let http = call_ok(&exfil, "attack.http-lookups", args(Some(server.port))).await;
    assert_eq!(
        (http["names"].as_u64(), http["resolved"].as_u64()),
        (Some(names), Some(0)),
        "{http}"
    );
    let errors = http["errors"].as_array().unwrap();
    assert!(
        errors.len() == 1
            && errors[0][0]
                .as_str()
                .unwrap()
                .contains("HTTP-request-denied"),
        "the origin check comes before any lookup: {http}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // The component serves the next call (and is refused the same way), and so does the host.
    let again = call_ok(
        &exfil,
        "attack.raw-lookups",
        json!({"data": "x", "domain": "exfil.invalid", "rounds": 1}),
    )
    .await;
    assert_eq!(
        again["errors"],
        json!([["resolve-addresses: access-denied", 1]])
    );
    text_still_works().await;
}

/// A UDP socket on 127.0.0.1 that counts the datagrams it receives.
struct UdpSink {
    port: u16,
    received: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl UdpSink {
    async fn start() -> UdpSink {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = received.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while socket.recv_from(&mut buf).await.is_ok() {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        UdpSink {
            port,
            received,
            task,
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn received(&self) -> usize {
        self.received.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for UdpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_floods_reach_only_the_granted_address() {
    let granted = UdpSink::start().await;
    let other = UdpSink::start().await;
    let flood = load(
        "hostile-udp-flood",
        &format!(r#"sockets = ["udp://{}"]"#, granted.addr()),
    );
    let p = granted.port;

    // At an address that is not granted: refused at the first datagram.
    let out = call_ok(
        &flood,
        "attack.flood",
        json!({"target": other.addr(), "count": 100_000, "size": 512}),
    )
    .await;
    assert_eq!(out, json!({"sent": 0, "error": "send: access-denied"}));

    // Everything but the granted address is refused: other ports, broadcast, multicast, the wildcard, IPv6
    // loopback, another loopback address.
    let targets = [
        other.addr(),
        format!("255.255.255.255:{p}"),
        format!("224.0.0.1:{p}"),
        format!("0.0.0.0:{p}"),
        format!("127.0.0.2:{p}"),
        format!("[::1]:{p}"),
        granted.addr(),
    ];
    let sprayed = call_ok(&flood, "attack.spray", json!({ "targets": targets })).await;
    for pair in sprayed.as_array().unwrap() {
        let (target, outcome) = (pair[0].as_str().unwrap(), &pair[1]);
        if target == granted.addr() {
            assert_eq!(outcome, &json!({"ok": "sent 1"}), "{sprayed}");
        } else {
            assert!(
                outcome.get("err").is_some(),
                "{target} was reached: {sprayed}"
            );
        }
    }

    // One batch alternating granted and not: only the granted datagram before the first refusal goes.
    let out = call_ok(
        &flood,
        "attack.mixed-batch",
        json!({"granted": granted.addr(), "other": other.addr(), "count": 32}),
    )
    .await;
    assert_eq!(out, json!({"sent": 1, "error": "send: access-denied"}));

    // A stream connected to the granted address cannot address a datagram elsewhere.
    let out = call_ok(
        &flood,
        "attack.redirect",
        json!({"granted": granted.addr(), "other": other.addr()}),
    )
    .await;
    assert!(out.get("err").is_some(), "{out}");

    // A flood at the granted address is allowed, and ends with the call's fuel.
    let started = Instant::now();
    let out = call_ok(
        &flood,
        "attack.flood",
        json!({"target": granted.addr(), "count": 2000, "size": 64}),
    )
    .await;
    assert_eq!(out, json!({"sent": 2000, "error": null}));
    eprintln!(
        "udp flood: 2000 datagrams sent in {:.2?}",
        started.elapsed()
    );
    let limits = Limits {
        fuel: Some(20_000_000),
        ..Limits::default()
    };
    let report = call_limited(
        &flood,
        "attack.flood",
        json!({"target": granted.addr(), "count": 0, "size": 64}),
        limits,
    )
    .await;
    assert!(
        matches!(report.outcome, Err(CallError::FuelExhausted { .. })),
        "{:?}",
        report.outcome
    );

    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        other.received(),
        0,
        "a datagram reached an address that was not granted"
    );
    assert!(granted.received() > 0);
    still_serves(
        &flood,
        "attack.spray",
        json!({ "targets": [granted.addr()] }),
        json!([[granted.addr(), {"ok": "sent 1"}]]),
    )
    .await;
}

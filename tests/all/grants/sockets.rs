//! `allow.sockets`: granted addresses connect; other ports, hosts and name lookups are denied before anything
//! is sent; UDP needs a UDP entry.

use crate::common::{TcpSink, call, call_err, call_ok, load};
use are_runtime::invoke::CallError;
use serde_json::json;
use std::time::{Duration, Instant};

const NET_PAYLOAD: &str = "EXFILTRATED by hostile-net";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_granted_address_connects() {
    let sink = TcpSink::start().await;
    let net = load(
        "hostile-net",
        &format!(r#"sockets = ["127.0.0.1:{}"]"#, sink.port),
    );
    let out = call_ok(
        &net,
        "attack.tcp-connect",
        json!({"host": "127.0.0.1", "port": sink.port}),
    )
    .await;
    assert!(
        out["ok"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("127.0.0.1:{}", sink.port))),
        "{out}"
    );
    let out = call_ok(
        &net,
        "attack.tcp-connect-raw",
        json!({"ip": "127.0.0.1", "port": sink.port}),
    )
    .await;
    assert!(out["ok"].is_string(), "{out}");
    assert!(
        sink.wait_for(
            &format!("{NET_PAYLOAD}\r\n{NET_PAYLOAD}"),
            Duration::from_secs(2)
        )
        .await,
        "received {:?}",
        sink.received()
    );
    assert_eq!(sink.accepted(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_other_ports_and_hosts_are_denied() {
    let sink = TcpSink::start().await;
    let other = TcpSink::start().await;
    let net = load(
        "hostile-net",
        &format!(r#"sockets = ["127.0.0.1:{}"]"#, sink.port),
    );
    for (function, args) in [
        (
            "attack.tcp-connect",
            json!({"host": "127.0.0.1", "port": other.port}),
        ),
        (
            "attack.tcp-connect-raw",
            json!({"ip": "127.0.0.1", "port": other.port}),
        ),
        // The granted port on another loopback address, and on IPv6.
        (
            "attack.tcp-connect-raw",
            json!({"ip": "127.0.0.2", "port": sink.port}),
        ),
        (
            "attack.tcp-connect-raw",
            json!({"ip": "::1", "port": sink.port}),
        ),
    ] {
        let report = call(&net, function, args.clone()).await;
        let out = report
            .outcome
            .unwrap_or_else(|e| panic!("{function} {args}: trapped instead of failing: {e}"));
        assert!(out.is_err, "{function} {args} connected: {}", out.value);
        let message = out.value["err"].as_str().unwrap();
        assert!(
            message.contains("access-denied") || message.contains("Permission denied"),
            "{function} {args}: {message}"
        );
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(other.accepted(), 0);
    assert_eq!(sink.accepted(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_lookup_of_an_ungranted_name_is_denied_before_any_query() {
    let sink = TcpSink::start().await;
    let net = load(
        "hostile-net",
        &format!(
            r#"sockets = ["127.0.0.1:{}", "tcp://localhost:{}"]"#,
            sink.port, sink.port
        ),
    );
    // A name under `.invalid` cannot resolve: had the host asked DNS, the guest would see `name-unresolvable`.
    // `access-denied` means the host refused before any query, so the name (and data hidden in it) never left.
    for name in [
        "secret-data-in-a-label.exfil.invalid",
        "example.com",
        "localhost.",
    ] {
        let started = Instant::now();
        let out = call_ok(&net, "attack.dns-lookup", json!({ "name": name })).await;
        assert_eq!(
            out,
            json!({"err": "resolve-addresses: access-denied"}),
            "{name}"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    let out = call_ok(
        &net,
        "attack.std-dns-lookup",
        json!({"name": "secret-data.exfil.invalid"}),
    )
    .await;
    assert!(out["err"].is_string(), "{out}");
    // IP literals need no query, and resolve to themselves.
    let out = call_ok(&net, "attack.dns-lookup", json!({"name": "10.1.2.3"})).await;
    assert_eq!(out, json!({"ok": ["10.1.2.3"]}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_localhost_entry_allows_its_lookup_and_connect() {
    let sink = TcpSink::start().await;
    let net = load(
        "hostile-net",
        &format!(r#"sockets = ["tcp://localhost:{}"]"#, sink.port),
    );
    let out = call_ok(&net, "attack.dns-lookup", json!({"name": "localhost"})).await;
    let addresses = out["ok"].as_array().unwrap_or_else(|| panic!("{out}"));
    assert!(
        addresses.iter().any(|a| a == "127.0.0.1" || a == "::1"),
        "{out}"
    );
    let out = call_ok(
        &net,
        "attack.tcp-connect",
        json!({"host": "localhost", "port": sink.port}),
    )
    .await;
    assert!(out["ok"].is_string(), "{out}");
    assert!(sink.wait_for(NET_PAYLOAD, Duration::from_secs(2)).await);
    // The entry allows what `localhost` resolved to in the same instance. Every call is a fresh instance, and one
    // that did not look the name up may not connect to the address directly.
    let out = call_ok(
        &net,
        "attack.tcp-connect-raw",
        json!({"ip": "127.0.0.1", "port": sink.port}),
    )
    .await;
    assert_eq!(out, json!({"err": "finish-connect: access-denied"}));
    // Nor may it use the name on another port.
    let out = call_ok(
        &net,
        "attack.tcp-connect",
        json!({"host": "localhost", "port": sink.port.wrapping_add(1).max(1)}),
    )
    .await;
    assert!(out["err"].is_string(), "{out}");
}

#[tokio::test]
async fn sockets_without_a_grant_the_imports_are_denied() {
    let net = load("hostile-net", "");
    for (function, args) in [
        (
            "attack.tcp-connect-raw",
            json!({"ip": "127.0.0.1", "port": 9}),
        ),
        ("attack.dns-lookup", json!({"name": "localhost"})),
        (
            "attack.udp-send-raw",
            json!({"ip": "127.0.0.1", "port": 9, "payload": "x"}),
        ),
    ] {
        let err = call_err(&net, function, args).await;
        let CallError::CapabilityDenied(denied) = &err else {
            panic!("{function}: expected CapabilityDenied, got {err:?}");
        };
        assert!(denied.import.starts_with("wasi:sockets/"), "{denied:?}");
        assert!(err.to_string().contains("allow.sockets"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_udp_needs_a_udp_entry() {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    // A TCP entry for the same address does not allow UDP.
    let tcp_only = load(
        "hostile-net",
        &format!(r#"sockets = ["tcp://127.0.0.1:{port}"]"#),
    );
    for function in ["attack.udp-send", "attack.udp-send-raw"] {
        let (host_key, payload) = if function == "attack.udp-send" {
            ("host", "via std, denied")
        } else {
            ("ip", "raw, denied")
        };
        let out = call_ok(
            &tcp_only,
            function,
            json!({host_key: "127.0.0.1", "port": port, "payload": payload}),
        )
        .await;
        assert!(out["err"].is_string(), "{function}: {out}");
    }
    let mut buf = [0u8; 64];
    let nothing =
        tokio::time::timeout(Duration::from_millis(100), socket.recv_from(&mut buf)).await;
    assert!(nothing.is_err(), "a datagram arrived without a udp grant");

    let udp = load(
        "hostile-net",
        &format!(r#"sockets = ["udp://127.0.0.1:{port}"]"#),
    );
    for (function, host_key, payload) in [
        ("attack.udp-send-raw", "ip", "raw datagram"),
        ("attack.udp-send", "host", "std datagram"),
    ] {
        let out = call_ok(
            &udp,
            function,
            json!({host_key: "127.0.0.1", "port": port, "payload": payload}),
        )
        .await;
        assert!(out["ok"].is_string(), "{function}: {out}");
        let (n, _) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf))
            .await
            .expect("the datagram arrives")
            .unwrap();
        assert_eq!(&buf[..n], payload.as_bytes());
    }
    // UDP to another port, or TCP to the UDP entry, is still denied.
    let out = call_ok(
        &udp,
        "attack.udp-send-raw",
        json!({"ip": "127.0.0.1", "port": port.wrapping_add(1).max(1), "payload": "x"}),
    )
    .await;
    assert!(out["err"].is_string(), "{out}");
    let out = call_ok(
        &udp,
        "attack.tcp-connect-raw",
        json!({"ip": "127.0.0.1", "port": port}),
    )
    .await;
    assert!(out["err"].is_string(), "{out}");
}

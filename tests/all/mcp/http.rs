//! Streamable HTTP safety: Origin and Host checks on every endpoint, the bearer token, public addresses, request
//! sizes and connections that stall.

use super::{
    INITIALIZE, LIST, PATIENCE, POST_HEADERS, Serve, Transport, http_request, text_and_kv_serving,
    text_and_loop,
};
use crate::common::{tempdir, write_policy};
use serde_json::json;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_checks_origin_and_host() {
    let serve = Serve::for_policy(Transport::Http, &text_and_loop()).await;
    let addr = serve.addr();
    let post = |headers: Vec<(&'static str, String)>| async move {
        let mut all: Vec<(&str, &str)> = POST_HEADERS.to_vec();
        all.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));
        http_request(addr, "POST", "/mcp", &all, Some(INITIALIZE)).await
    };
    // No Origin (not a browser) and loopback origins are served.
    let (status, head, body) = post(vec![]).await;
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(body.contains("\"serverInfo\""), "{body}");
    assert!(
        head.to_ascii_lowercase().contains("mcp-session-id:"),
        "{head}"
    );
    for origin in ["http://localhost:5173", "http://127.0.0.1:3000"] {
        let (status, head, _) = post(vec![("Origin", origin.to_string())]).await;
        assert_eq!(status, 200, "{origin}: {head}");
    }
    // A foreign page is refused.
    for origin in [
        "https://evil.example",
        "http://localhost.evil.example",
        "null",
    ] {
        let (status, _, body) = post(vec![("Origin", origin.to_string())]).await;
        assert_eq!(status, 403, "{origin}: {body}");
    }
    // So is a Host that does not name this server (DNS rebinding).
    let (status, _, body) = post(vec![("Host", "evil.example".to_string())]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("Host header is not allowed"), "{body}");
    // A request for a session that does not exist is refused.
    let mut headers: Vec<(&str, &str)> = POST_HEADERS.to_vec();
    headers.push(("Mcp-Session-Id", "no-such-session"));
    let (status, _, _) = http_request(addr, "POST", "/mcp", &headers, Some(LIST)).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_requires_the_token_when_set() {
    let dir = tempdir();
    let token = "s3cret-token-for-the-test";
    let policy = write_policy(dir.path(), &text_and_loop());
    let serve = Serve::with_args(Transport::Http, &policy, &[], Some(token)).await;
    let addr = serve.addr();
    let bearer = format!("Bearer {token}");
    let wrong = format!("Bearer {token}x");
    for auth in [None, Some(wrong.as_str()), Some(token), Some("Bearer ")] {
        let mut headers: Vec<(&str, &str)> = POST_HEADERS.to_vec();
        if let Some(auth) = auth {
            headers.push(("Authorization", auth));
        }
        let (status, head, body) =
            http_request(addr, "POST", "/mcp", &headers, Some(INITIALIZE)).await;
        assert_eq!(status, 401, "{auth:?}: {body}");
        assert!(head.contains("www-authenticate: Bearer"), "{head}");
        assert!(body.contains("bearer token"), "{body}");
    }
    let (status, _, _) = http_request(addr, "GET", "/metrics", &[], None).await;
    assert_eq!(status, 401, "metrics need the token too");
    let (status, _, body) = http_request(addr, "GET", "/healthz", &[], None).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "ok\n"),
        "health checks need no token"
    );
    let mut headers: Vec<(&str, &str)> = POST_HEADERS.to_vec();
    headers.push(("Authorization", &bearer));
    let (status, _, _) = http_request(addr, "POST", "/mcp", &headers, Some(INITIALIZE)).await;
    assert_eq!(status, 200);
    let (status, _, _) =
        http_request(addr, "GET", "/metrics", &[("Authorization", &bearer)], None).await;
    assert_eq!(status, 200);
    // The scheme is case-insensitive (RFC 9110 §11.1).
    for scheme in ["bearer", "BEARER", "bEaReR"] {
        let auth = format!("{scheme} {token}");
        let (status, _, body) =
            http_request(addr, "GET", "/metrics", &[("Authorization", &auth)], None).await;
        assert_eq!(status, 200, "{scheme}: {body}");
    }
    // rmcp's client with the token.
    let client = serve.connect().await;
    assert_eq!(
        client
            .ok("text.slugify", json!({"text": "With Token"}))
            .await,
        "with-token"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_refuses_a_public_address_without_a_token() {
    let dir = tempdir();
    let policy = write_policy(dir.path(), &text_and_loop());
    let mut child = Serve::new(Transport::Http, &policy)
        .command()
        .args(["--http", "0.0.0.0:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start are serve");
    let mut stderr = String::new();
    let mut pipe = child.stderr.take().expect("stderr");
    let status = tokio::time::timeout(PATIENCE * 2, async {
        pipe.read_to_string(&mut stderr).await.expect("read stderr");
        child.wait().await.expect("wait")
    })
    .await
    .expect("are serve should refuse at once, not listen");
    assert!(!status.success());
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without a token")
            && stderr.contains("--token-env"),
        "{stderr}"
    );
    // With a token it starts, and wants the token.
    let token = "another-token-for-the-test";
    let serve = Serve::http_on(&policy, "0.0.0.0:0", token).await;
    let port = serve.addr().port();
    let loopback = SocketAddr::from(([127, 0, 0, 1], port));
    let (status, _, _) = http_request(loopback, "GET", "/metrics", &[], None).await;
    assert_eq!(status, 401);
    let bearer = format!("Bearer {token}");
    let (status, _, _) = http_request(
        loopback,
        "GET",
        "/metrics",
        &[("Authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(status, 200);
}

/// Read until the server closes `stream`; how long that took.
async fn time_to_close(stream: &mut tokio::net::TcpStream) -> Duration {
    let started = Instant::now();
    let mut sink = Vec::new();
    match tokio::time::timeout(PATIENCE, stream.read_to_end(&mut sink)).await {
        Ok(_) => started.elapsed(),
        Err(_) => panic!(
            "the server kept the connection open; it sent {:?}",
            String::from_utf8_lossy(&sink)
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_connections_that_stall_are_closed() {
    let policy = text_and_kv_serving(
        "header_read_timeout = \"1s\"\nconnection_idle_timeout = \"3s\"\nmax_request_size = \"64 KiB\"",
    );
    let serve = Serve::for_policy(Transport::Http, &policy).await;
    let addr = serve.addr();
    let connect = || async move { tokio::net::TcpStream::connect(addr).await.expect("connect") };
    // Half a request head (slowloris): closed after the header-read timeout.
    let mut half = connect().await;
    half.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n").as_bytes())
        .await
        .unwrap();
    let waited = time_to_close(&mut half).await;
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    // A kept-alive connection that sends nothing more: closed after the same clock.
    let mut kept = connect().await;
    kept.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = Vec::new();
    while !response.ends_with(b"ok\n") {
        let mut chunk = [0u8; 256];
        let n = kept.read(&mut chunk).await.expect("read");
        assert!(n > 0, "closed before the response");
        response.extend_from_slice(&chunk[..n]);
    }
    let waited = time_to_close(&mut kept).await;
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    // A body that stops coming: closed after the idle timeout.
    let mut stalled = connect().await;
    stalled
        .write_all(
            format!(
                "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
                 Accept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n{{\"jsonrpc\""
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let waited = time_to_close(&mut stalled).await;
    assert!(
        waited >= Duration::from_millis(2900) && waited < Duration::from_secs(12),
        "{waited:?}"
    );
    // A body over max_request_size is refused.
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(70 * 1024));
    let (status, _, _) = http_request(addr, "POST", "/mcp", &POST_HEADERS, Some(&big)).await;
    assert_eq!(status, 413);
    // A client with its stream open and nothing to say past the idle timeout is not cut: the stream carries a
    // keep-alive comment, and the calls after the pause are served.
    let client = serve.connect().await;
    assert_eq!(
        client.ok("text.slugify", json!({"text": "A b"})).await,
        "a-b"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        client.ok("text.slugify", json!({"text": "C d"})).await,
        "c-d"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_host_and_origin_are_checked_on_every_endpoint() {
    let serve = Serve::for_policy(Transport::Http, &text_and_loop()).await;
    let addr = serve.addr();
    for path in ["/metrics", "/healthz", "/mcp", "/no-such-path"] {
        let (status, _, body) =
            http_request(addr, "GET", path, &[("Host", "evil.example")], None).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(
            body.contains("Host header is not allowed"),
            "{path}: {body}"
        );
        let (status, _, body) = http_request(
            addr,
            "GET",
            path,
            &[("Origin", "https://evil.example")],
            None,
        )
        .await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(
            body.contains("Origin header is not allowed"),
            "{path}: {body}"
        );
    }
    for path in ["/metrics", "/healthz"] {
        let (status, _, body) = http_request(
            addr,
            "GET",
            path,
            &[("Origin", "http://localhost:5173")],
            None,
        )
        .await;
        assert_eq!(status, 200, "{path}: {body}");
    }
}

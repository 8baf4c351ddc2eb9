//! `allow.http`: granted origins are reachable; other ports, IPs behind wildcards and redirects elsewhere are
//! not.

use crate::common::{TcpSink, TestServer, call, call_err, call_ok, load};
use are_runtime::caps::denied::DenialReason;
use are_runtime::invoke::CallError;
use serde_json::json;
use std::time::Duration;

fn http_grant(origins: &[String]) -> String {
    format!("http = {origins:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_granted_origin_is_reachable() {
    let server = TestServer::start().await;
    let fetch = load("fetch", &http_grant(&[server.origin()]));
    let out = call_ok(&fetch, "fetch.get", json!({"url": server.url("/hello")})).await;
    assert_eq!(out["ok"]["status"], 200, "{out}");
    assert_eq!(out["ok"]["body"], "hello from the test server");
    assert_eq!(out["ok"]["truncated"], false);
    // Any path on the origin.
    let out = call_ok(
        &fetch,
        "fetch.get",
        json!({"url": server.url("/bytes?n=5000"), "max-bytes": 100}),
    )
    .await;
    assert_eq!(out["ok"]["body"], "x".repeat(100));
    assert_eq!(out["ok"]["truncated"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_other_ports_are_denied_with_an_error_value() {
    let server = TestServer::start().await;
    let other = TcpSink::start().await;
    let fetch = load("fetch", &http_grant(&[server.origin()]));
    for url in [
        format!("http://127.0.0.1:{}/hello", other.port),
        format!("https://127.0.0.1:{}/hello", server.port),
        format!("http://localhost:{}/hello", server.port),
        format!("http://[::1]:{}/hello", server.port),
    ] {
        let report = call(&fetch, "fetch.get", json!({ "url": url })).await;
        let out = report
            .outcome
            .unwrap_or_else(|e| panic!("{url}: the call failed instead of the request: {e}"));
        assert!(out.is_err, "{url} was fetched: {}", out.value);
        let message = out.value["err"].as_str().unwrap();
        assert!(message.contains("HTTP-request-denied"), "{url}: {message}");
    }
    assert_eq!(other.accepted(), 0, "a denied request reached the network");
    // The denial did not spoil the instance or the component: the granted origin still works.
    let out = call_ok(&fetch, "fetch.get", json!({"url": server.url("/hello")})).await;
    assert_eq!(out["ok"]["status"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_without_a_grant_the_import_is_denied() {
    let server = TestServer::start().await;
    let fetch = load("fetch", "");
    let err = call_err(&fetch, "fetch.get", json!({"url": server.url("/hello")})).await;
    let CallError::CapabilityDenied(denied) = &err else {
        panic!("expected CapabilityDenied, got {err:?}");
    };
    assert!(denied.import.starts_with("wasi:http/"), "{denied:?}");
    assert_eq!(denied.reason, DenialReason::NotGranted(Some("allow.http")));
    let message = err.to_string();
    assert!(
        message.starts_with("capability not granted: wasi:http/") && message.contains("allow.http"),
        "{message}"
    );
    assert_eq!(err.kind(), "capability_denied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_localhost_entry_reaches_localhost() {
    let server = TestServer::start().await;
    let fetch = load(
        "fetch",
        &http_grant(&[format!("http://localhost:{}", server.port)]),
    );
    let out = call_ok(
        &fetch,
        "fetch.get",
        json!({"url": format!("http://localhost:{}/hello", server.port)}),
    )
    .await;
    assert_eq!(out["ok"]["status"], 200, "{out}");
    assert_eq!(out["ok"]["body"], "hello from the test server");
    // The entry names the host `localhost`, not the address it resolves to.
    let out = call_ok(&fetch, "fetch.get", json!({"url": server.url("/hello")})).await;
    assert!(
        out["err"]
            .as_str()
            .is_some_and(|m| m.contains("HTTP-request-denied")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_wildcard_entry_does_not_match_an_ip() {
    let server = TestServer::start().await;
    let fetch = load(
        "fetch",
        &http_grant(&[
            "https://*.example.com".to_string(),
            format!("http://*.example.com:{}", server.port),
        ]),
    );
    for url in [
        server.url("/hello"),
        format!("http://localhost:{}/hello", server.port),
    ] {
        let out = call_ok(&fetch, "fetch.get", json!({ "url": url })).await;
        assert!(
            out["err"]
                .as_str()
                .is_some_and(|m| m.contains("HTTP-request-denied")),
            "{url}: {out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_redirect_to_another_origin_is_not_followed() {
    let server = TestServer::start().await;
    let elsewhere = TcpSink::start().await;
    let target = format!("http://127.0.0.1:{}/hello", elsewhere.port);
    let fetch = load("fetch", &http_grant(&[server.origin()]));
    let out = call_ok(
        &fetch,
        "fetch.get",
        json!({"url": server.url(&format!("/redirect?to={target}"))}),
    )
    .await;
    // wasi:http does not follow redirects: the guest gets the redirect itself (axum's `Redirect::to` is a 303).
    let status = out["ok"]["status"]
        .as_u64()
        .unwrap_or_else(|| panic!("{out}"));
    assert!((300..400).contains(&status), "{out}");
    let location = out["ok"]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "location")
        .unwrap_or_else(|| panic!("no location header: {out}"));
    assert_eq!(location[1], target);
    // A guest that follows it by hand is denied, and nothing ever reached the other server.
    let out = call_ok(&fetch, "fetch.get", json!({ "url": target })).await;
    assert!(
        out["err"]
            .as_str()
            .is_some_and(|m| m.contains("HTTP-request-denied")),
        "{out}"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(elsewhere.accepted(), 0);
}

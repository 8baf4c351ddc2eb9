//! Session instances (`mode = "session"`): state per session, a fresh instance after a failure, idle expiry,
//! the instance slots they may take; and the bound on HTTP sessions.

use super::{
    INITIALIZE, LIST, PATIENCE, POST_HEADERS, Serve, Transport, component, http_request,
    open_stream, output_of, params, raw_post, raw_session, sample, text_and_kv_serving,
};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

over_both_transports!(
    session_mode_keeps_state_per_session,
    session_instances_start_fresh_after_a_failure,
    idle_session_instances_expire,
);

async fn session_mode_keeps_state_per_session(transport: Transport) {
    let policy = component("kv", "kv", "mode = \"session\"") + &component("scratch", "kv", "");
    let serve = Serve::for_policy(transport, &policy).await;
    let one = serve.connect().await;
    let two = serve.connect().await;

    assert_eq!(one.ok("kv.set", json!({"key": "a", "value": "1"})).await, 1);
    assert_eq!(one.ok("kv.set", json!({"key": "b", "value": "2"})).await, 2);
    assert_eq!(one.ok("kv.increment", json!({"name": "n"})).await, 1);
    assert_eq!(one.ok("kv.increment", json!({"name": "n"})).await, 2);
    assert_eq!(one.ok("kv.get", json!({"key": "a"})).await, "1");
    assert_eq!(one.ok("kv.keys", Value::Null).await, json!(["a", "b"]));

    // Another session has its own instance.
    assert_eq!(two.ok("kv.get", json!({"key": "a"})).await, Value::Null);
    assert_eq!(two.ok("kv.increment", json!({"name": "n"})).await, 1);
    assert_eq!(one.ok("kv.increment", json!({"name": "n"})).await, 3);

    // The same component in the default mode starts every call fresh.
    assert_eq!(
        one.ok("scratch.set", json!({"key": "a", "value": "1"}))
            .await,
        1
    );
    assert_eq!(
        one.ok("scratch.get", json!({"key": "a"})).await,
        Value::Null
    );

    // Concurrent calls of one session share its instance, one at a time.
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let peer = one.peer();
        calls.spawn(async move {
            let result = peer
                .call_tool(params("kv.increment", json!({"name": "c"})))
                .await
                .expect("tools/call");
            output_of("kv.increment", &result).as_u64().expect("count")
        });
    }
    let mut counts: Vec<u64> = calls.join_all().await;
    counts.sort();
    assert_eq!(counts, (1..=16).collect::<Vec<u64>>());

    if transport == Transport::Http {
        // Ending a session (rmcp's client sends DELETE) drops its instance at once.
        let live = |m: &str| sample(m, "are_session_instances");
        assert_eq!(live(&serve.metrics().await), Some(2.0));
        one.close().await;
        assert_eq!(live(&serve.metrics().await), Some(1.0));
        two.close().await;
        assert_eq!(live(&serve.metrics().await), Some(0.0));
        // A new session starts empty.
        let three = serve.connect().await;
        assert_eq!(three.ok("kv.keys", Value::Null).await, json!([]));
        three.close().await;
    } else {
        one.close().await;
        two.close().await;
    }
}

async fn session_instances_start_fresh_after_a_failure(transport: Transport) {
    let policy = component(
        "kv",
        "kv",
        "mode = \"session\"\nlimits.memory = \"2 MiB\"\nlimits.max_output = \"8 MiB\"",
    ) + &component("panic", "hostile-panic", "mode = \"session\"");
    let serve = Serve::for_policy(transport, &policy).await;
    let client = serve.connect().await;
    assert_eq!(
        client.ok("kv.set", json!({"key": "a", "value": "1"})).await,
        1
    );
    assert_eq!(client.ok("kv.get", json!({"key": "a"})).await, "1");
    // A value too big for the instance's memory: the guest traps, and the instance is dropped.
    let big = "x".repeat(3 << 20);
    let message = client
        .tool_error("kv.set", json!({"key": "big", "value": big}))
        .await;
    assert!(message.contains("memory limit exceeded"), "{message}");
    // The next call starts fresh: the state is gone, and the component works.
    assert_eq!(client.ok("kv.get", json!({"key": "a"})).await, Value::Null);
    assert_eq!(
        client.ok("kv.set", json!({"key": "b", "value": "2"})).await,
        1
    );
    assert_eq!(client.ok("kv.keys", Value::Null).await, json!(["b"]));

    // A panic and a trap kill only that call; the session's next call gets a new instance.
    assert_eq!(client.ok("panic.divide", json!({"a": 9, "b": 3})).await, 3);
    let message = client
        .tool_error("panic.panic", json!({"message": "boom"}))
        .await;
    assert!(message.contains("guest panicked: boom"), "{message}");
    assert_eq!(client.ok("panic.divide", json!({"a": 8, "b": 2})).await, 4);
    let message = client
        .tool_error("panic.divide", json!({"a": 1, "b": 0}))
        .await;
    assert!(message.contains("divide by zero"), "{message}");
    assert_eq!(
        client.ok("panic.divide", json!({"a": 8, "b": -2})).await,
        -4
    );
    client.close().await;
}

async fn idle_session_instances_expire(transport: Transport) {
    let policy = component("kv", "kv", "mode = \"session\"\nidle_timeout = \"1s\"");
    let serve = Serve::for_policy(transport, &policy).await;
    let client = serve.connect().await;
    assert_eq!(client.ok("kv.increment", json!({"name": "n"})).await, 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Each call counts as use.
    assert_eq!(client.ok("kv.increment", json!({"name": "n"})).await, 2);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    if transport == Transport::Http {
        assert_eq!(
            sample(&serve.metrics().await, "are_session_instances"),
            Some(0.0)
        );
    }
    assert_eq!(client.ok("kv.increment", json!({"name": "n"})).await, 1);
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_session_instances_leave_the_pool_to_fresh_calls() {
    // Three instance slots; `text` may run one call at a time, so sessions may keep two instances.
    let policy = "[serve]\nmax_instances = 3\n\n".to_string()
        + &component("kv", "kv", "mode = \"session\"")
        + &component("text", "text", "max_concurrency = 1");
    let serve = Serve::for_policy(Transport::Http, &policy).await;
    let one = serve.connect().await;
    let two = serve.connect().await;
    let three = serve.connect().await;
    let set = json!({"key": "a", "value": "1"});
    assert_eq!(one.ok("kv.set", set.clone()).await, 1);
    assert_eq!(two.ok("kv.set", set.clone()).await, 1);
    let message = three.tool_error("kv.set", set.clone()).await;
    assert!(
        message.contains("too many session instances: all 2 are taken")
            && message.contains("[serve] max_instances"),
        "{message}"
    );
    // Fresh calls still find their slot.
    assert_eq!(
        three
            .ok("text.slugify", json!({"text": "still room"}))
            .await,
        "still-room"
    );
    // A session that ends gives its slot back.
    one.close().await;
    assert_eq!(three.ok("kv.set", set).await, 1);
    two.close().await;
    three.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_sessions_are_bounded_evicting_the_least_recently_used_idle_one() {
    let policy = text_and_kv_serving("max_sessions = 2\nconnection_idle_timeout = \"3s\"");
    let serve = Serve::for_policy(Transport::Http, &policy).await;
    let addr = serve.addr();
    // `a` keeps a session instance; then `b`; a third session closes `a`, the one used longest ago.
    let a = raw_session(addr).await;
    let set = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"kv.set","arguments":{"key":"k","value":"v"}}}"#;
    let (status, body) = raw_post(addr, &a, set).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("structuredContent"), "{body}");
    assert_eq!(
        sample(&serve.metrics().await, "are_session_instances"),
        Some(1.0)
    );
    let b = raw_session(addr).await;
    let c = raw_session(addr).await;
    assert_eq!(
        raw_post(addr, &a, LIST).await.0,
        404,
        "the evicted session is gone"
    );
    assert_eq!(
        sample(&serve.metrics().await, "are_session_instances"),
        Some(0.0),
        "and its session instance with it"
    );
    assert_eq!(raw_post(addr, &b, LIST).await.0, 200);
    assert_eq!(raw_post(addr, &c, LIST).await.0, 200);
    // With a stream open on each, no session is idle: a new one is refused, with 503 and a JSON-RPC error.
    let stream_b = open_stream(addr, &b).await;
    let _stream_c = open_stream(addr, &c).await;
    let (status, head, body) =
        http_request(addr, "POST", "/mcp", &POST_HEADERS, Some(INITIALIZE)).await;
    assert_eq!(status, 503, "{head}\n{body}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    let error: Value = serde_json::from_str(&body).expect("a JSON-RPC error body");
    assert_eq!(error["id"], Value::Null, "{error}");
    assert_eq!(error["error"]["code"], -32000, "{error}");
    let message = error["error"]["message"].as_str().expect("a message");
    assert!(
        message.contains("too many MCP sessions: all 2")
            && message.contains("[serve] max_sessions"),
        "{message}"
    );
    // The client of `b` goes: its session is idle again and gives way to a new one.
    drop(stream_b);
    let until = Instant::now() + PATIENCE;
    loop {
        let (status, _, body) =
            http_request(addr, "POST", "/mcp", &POST_HEADERS, Some(INITIALIZE)).await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            Instant::now() < until,
            "the session of a client that left stayed busy"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(raw_post(addr, &b, LIST).await.0, 404);
    assert_eq!(
        raw_post(addr, &c, LIST).await.0,
        200,
        "the busy session stays"
    );
}

/// Ending a session with `DELETE` answers 200 (what the SDKs' servers answer; 202 makes the Python SDK log an
/// error), and the session is gone afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_delete_ends_the_session_with_200() {
    let policy = text_and_kv_serving("");
    let serve = Serve::for_policy(Transport::Http, &policy).await;
    let addr = serve.addr();
    let session = raw_session(addr).await;
    let headers = [
        ("Mcp-Session-Id", session.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    let (status, head, body) = http_request(addr, "DELETE", "/mcp", &headers, None).await;
    assert_eq!(status, 200, "{head}\n{body}");
    let (status, body) = raw_post(
        addr,
        &session,
        r#"{"jsonrpc":"2.0","id":9,"method":"tools/list"}"#,
    )
    .await;
    assert_eq!(status, 404, "the ended session is gone: {body}");
}

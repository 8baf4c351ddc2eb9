//! The stdio transport spoken raw: the server ends with its client, and answers an oversized request and goes on.

use super::{INITIALIZE, INITIALIZED, RawStdio, text_and_kv_serving, text_and_loop};
use crate::common::{tempdir, write_policy};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_server_ends_with_its_client() {
    let dir = tempdir();
    let mut server = RawStdio::start(&write_policy(dir.path(), &text_and_loop()));
    server
        .send(&[
            INITIALIZE,
            INITIALIZED,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"text.slugify","arguments":{"text":"Raw Stdio"}}}"#,
        ])
        .await;
    let answers = server.answers(2).await;
    assert_eq!(answers[0]["result"]["serverInfo"]["name"], "are");
    assert_eq!(
        answers[1]["result"]["structuredContent"],
        json!({"result": "raw-stdio"})
    );
    // End of input ends the session and the process.
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_answers_an_oversized_request_and_goes_on() {
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        &text_and_kv_serving("max_request_size = \"64 KiB\""),
    );
    let mut server = RawStdio::start(&policy);
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"text.slugify","arguments":{{"text":"{}"}}}}}}"#,
        "x".repeat(4 * 1024 * 1024)
    );
    server
        .send(&[
            INITIALIZE,
            INITIALIZED,
            &huge,
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"text.slugify","arguments":{"text":"Still Here"}}}"#,
        ])
        .await;
    let answers = server.answers(3).await;
    let refused = answers
        .iter()
        .find(|a| a.get("error").is_some())
        .unwrap_or_else(|| panic!("no error answer in {answers:?}"));
    assert_eq!(refused["id"], Value::Null, "{refused}");
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    let message = refused["error"]["message"].as_str().expect("a message");
    assert!(
        message.contains("more than 65536 bytes") && message.contains("[serve] max_request_size"),
        "{message}"
    );
    let result = answers
        .iter()
        .find(|a| a["id"] == 3)
        .unwrap_or_else(|| panic!("no answer to the next request in {answers:?}"));
    assert_eq!(
        result["result"]["structuredContent"],
        json!({"result": "still-here"})
    );
    server.close().await;
}

/// A client that writes its last request and closes stdin still gets the answer: the server finishes the calls in
/// flight (fresh-instance and session calls alike), writes their answers, and only then exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_end_of_input_waits_for_calls_in_flight() {
    for mode in ["fresh", "session"] {
        let dir = tempdir();
        let policy = write_policy(
            dir.path(),
            &super::component(
                "sleep",
                "hostile-sleep",
                &format!("mode = \"{mode}\"\nlimits.timeout = \"10s\""),
            ),
        );
        let mut server = RawStdio::start(&policy);
        server.send(&[INITIALIZE, INITIALIZED]).await;
        assert_eq!(server.answers(1).await[0]["id"], 1);
        server
            .send(&[
                r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"sleep.sleep","arguments":{"ms":1500}}}"#,
            ])
            .await;
        let RawStdio {
            mut child,
            stdin,
            mut stdout,
        } = server;
        let started = std::time::Instant::now();
        drop(stdin);
        let line = tokio::time::timeout(super::PATIENCE, stdout.next_line())
            .await
            .expect("the answer comes after stdin closed")
            .expect("read")
            .expect("an answer line, not the end of output");
        let answer: Value = serde_json::from_str(&line).expect("JSON-RPC");
        assert_eq!(answer["id"], 7, "{mode}: {answer}");
        assert_eq!(answer["result"]["isError"], false, "{mode}: {answer}");
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(1000),
            "{mode}: the call ran to its end"
        );
        let status = tokio::time::timeout(super::PATIENCE, child.wait())
            .await
            .expect("are serve exits once the answer is out")
            .expect("wait");
        assert!(status.success(), "{mode}: {status}");
    }
}

/// End of input with calls queued behind a busy component and one that would never end, from a 2026-07-28
/// client (no `initialize`): every call is answered (the endless one at its timeout), then the server exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_end_of_input_answers_queued_calls_and_stops_endless_ones_at_their_timeout() {
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        &super::component(
            "sleep",
            "hostile-sleep",
            "max_concurrency = 1\nqueue = 4\nlimits.timeout = \"3s\"",
        ),
    );
    let mut server = RawStdio::start(&policy);
    let call = |id: u64, function: &str, arguments: Value| {
        super::revision::request(
            id,
            "tools/call",
            serde_json::json!({"name": format!("sleep__{function}"), "arguments": arguments}),
            serde_json::json!({}),
        )
    };
    server
        .send(&[
            &call(7, "sleep", serde_json::json!({"ms": 1000})),
            &call(8, "sleep", serde_json::json!({"ms": 300})),
            &call(9, "sleep-forever", serde_json::json!({})),
        ])
        .await;
    let RawStdio {
        mut child,
        stdin,
        mut stdout,
    } = server;
    let started = std::time::Instant::now();
    drop(stdin);
    let mut answers = std::collections::BTreeMap::new();
    while answers.len() < 3 {
        let line = tokio::time::timeout(super::PATIENCE, stdout.next_line())
            .await
            .expect("every call is answered after stdin closed")
            .expect("read")
            .unwrap_or_else(|| panic!("output ended with only {answers:?}"));
        let answer: Value = serde_json::from_str(&line).expect("JSON-RPC");
        answers.insert(answer["id"].as_u64().expect("an id"), answer);
    }
    assert_eq!(answers[&7]["result"]["isError"], false, "{:?}", answers[&7]);
    assert_eq!(answers[&8]["result"]["isError"], false, "{:?}", answers[&8]);
    let endless = &answers[&9]["result"];
    assert_eq!(endless["isError"], true, "{endless}");
    assert!(endless.to_string().contains("timed out"), "{endless}");
    let status = tokio::time::timeout(super::PATIENCE, child.wait())
        .await
        .expect("are serve exits once the answers are out")
        .expect("wait");
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "bounded by the calls' timeouts: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_answers_every_call_sent_before_end_of_input_with_the_logs_asked_for() {
    // Calls in a 2025-11-25 session and 2026-07-28 ones side by side, all written at once and stdin closed at
    // once: every call is answered (the endless loop's `out of fuel` too), and the failed calls log where the
    // client asked (the session's default warnings; a 2026 request's `logLevel`), before the process exits 0.
    let dir = tempdir();
    let mut server = RawStdio::start(&write_policy(dir.path(), &text_and_loop()));
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
    let logs = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/logLevel":"warning"}"#;
    let calls = [
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"text__word-count","arguments":{"text":"a b"}}}"#.to_string(),
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"loop__spin","arguments":{}}}"#.to_string(),
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"text__word-count","arguments":{"txt":"a b"}}}"#.to_string(),
        format!(r#"{{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{{{meta},"name":"text.word-count","arguments":{{"text":"a b c"}}}}}}"#),
        format!(r#"{{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{{{logs},"name":"loop__spin","arguments":{{}}}}}}"#),
        format!(r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{{meta},"name":"loop__spin","arguments":{{}}}}}}"#),
        r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"no-such-tool","arguments":{}}}"#.to_string(),
    ];
    let mut lines = vec![INITIALIZE, INITIALIZED];
    lines.extend(calls.iter().map(String::as_str));
    server.send(&lines).await;
    let RawStdio {
        mut child,
        stdin,
        mut stdout,
    } = server;
    drop(stdin);
    let mut messages = Vec::new();
    while let Some(line) = tokio::time::timeout(super::PATIENCE, stdout.next_line())
        .await
        .expect("every answer within the patience")
        .expect("read")
    {
        messages.push(serde_json::from_str::<Value>(&line).expect("JSON-RPC"));
    }
    let answer = |id: u64| {
        let found: Vec<&Value> = messages.iter().filter(|m| m["id"] == id).collect();
        assert_eq!(found.len(), 1, "one answer to {id} in {messages:#?}");
        found[0].clone()
    };
    assert_eq!(
        answer(2)["result"]["structuredContent"]["result"]["words"],
        2
    );
    assert!(
        answer(2)["result"].get("resultType").is_none(),
        "2025 shape"
    );
    for id in [3, 6, 7] {
        let text = answer(id)["result"]["content"][0]["text"].to_string();
        assert!(text.contains("out of fuel"), "{id}: {text}");
    }
    assert_eq!(answer(4)["error"]["code"], -32602);
    assert_eq!(answer(5)["result"]["resultType"], "complete", "2026 shape");
    assert_eq!(
        answer(5)["result"]["structuredContent"]["result"]["words"],
        3
    );
    assert_eq!(answer(8)["error"]["code"], -32602);
    let logs: Vec<&Value> = messages
        .iter()
        .filter(|m| m["method"] == "notifications/message")
        .collect();
    assert_eq!(logs.len(), 2, "the session's call 3 and call 6: {logs:#?}");
    assert!(
        logs.iter()
            .all(|l| l["params"]["data"]["kind"] == "fuel_exhausted"),
        "{logs:#?}"
    );
    let status = tokio::time::timeout(super::PATIENCE, child.wait())
        .await
        .expect("are serve exits once the answers are out")
        .expect("wait");
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_stdio_call_is_stopped_and_not_answered() {
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        &(super::component("text", "text", "")
            + &super::component("sleep", "hostile-sleep", "limits.timeout = \"20s\"")),
    );
    let mut server = RawStdio::start(&policy);
    server
        .send(&[
            INITIALIZE,
            INITIALIZED,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"sleep.sleep","arguments":{"ms":15000}}}"#,
        ])
        .await;
    assert_eq!(server.answers(1).await[0]["id"], 1);
    let started = std::time::Instant::now();
    server
        .send(&[
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2,"reason":"changed my mind"}}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"text.word-count","arguments":{"text":"a"}}}"#,
        ])
        .await;
    let answers = server.answers(1).await;
    assert_eq!(
        answers[0]["id"], 3,
        "the cancelled call is not answered: {answers:?}"
    );
    let RawStdio {
        mut child, stdin, ..
    } = server;
    drop(stdin);
    let status = tokio::time::timeout(super::PATIENCE, child.wait())
        .await
        .expect("are serve exits without waiting for the cancelled call")
        .expect("wait");
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "the cancelled call was stopped, not waited for: {:?}",
        started.elapsed()
    );
}

//! Tool calls as tasks (`io.modelcontextprotocol/tasks`): answered at once with a task id, polled with
//! `tasks/get` to the result, stopped with `tasks/cancel`, kept in SQLite across restarts (an unfinished task is
//! reported interrupted, not re-run), and never in the way of other calls.

use super::revision::{post, request, response};
use super::{PATIENCE, RawStdio, Serve, Transport, component};
use crate::common::{tempdir, write_policy};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// `text` may run as a task, `nap` (sleeps in the host) must.
fn policy() -> String {
    component("text", "text", "task = \"allowed\"")
        + &component(
            "nap",
            "hostile-sleep",
            "task = \"required\"\nlimits.timeout = \"60s\"",
        )
}

/// The `_meta` of a client that declared the tasks extension.
fn with_tasks() -> Value {
    json!({"io.modelcontextprotocol/clientCapabilities": {
        "extensions": {"io.modelcontextprotocol/tasks": {}}
    }})
}

/// Call `tool` with `arguments` as a client with tasks; the task it answers with.
async fn start(addr: SocketAddr, id: u64, tool: &str, arguments: Value) -> Value {
    let call = request(
        id,
        "tools/call",
        json!({"name": tool, "arguments": arguments}),
        with_tasks(),
    );
    let (status, answer) = post(addr, &call, Some(tool)).await;
    assert_eq!(status, 200, "{answer:?}");
    let result = response(&answer)["result"].clone();
    assert_eq!(result["resultType"], "task", "{result}");
    assert_eq!(result["status"], "working", "{result}");
    result
}

/// `tasks/get` of `task`.
async fn get(addr: SocketAddr, task: &str) -> Value {
    let message = request(90, "tasks/get", json!({"taskId": task}), with_tasks());
    let (_, answer) = post(addr, &message, Some(task)).await;
    response(&answer).clone()
}

/// Poll `task` until it is no longer working.
async fn settled(addr: SocketAddr, task: &str) -> Value {
    let until = Instant::now() + PATIENCE;
    loop {
        let answer = get(addr, task).await;
        let status = &answer["result"]["status"];
        if status != "working" {
            return answer["result"].clone();
        }
        assert!(
            Instant::now() < until,
            "task {task} still working: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_runs_to_its_result_which_outlives_a_restart() {
    let dir = tempdir();
    let path = write_policy(dir.path(), &policy());
    let serve = Serve::start(Transport::Http, &path).await;
    let task = start(
        serve.addr(),
        1,
        "text__word-count",
        json!({"text": "one two three"}),
    )
    .await;
    let id = task["taskId"].as_str().expect("a task id").to_string();
    assert_eq!(id.len(), 32, "{task}");
    assert!(task["pollIntervalMs"].as_u64().is_some(), "{task}");
    let done = settled(serve.addr(), &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["structuredContent"]["result"]["words"], 3,
        "{done}"
    );
    drop(serve);

    let serve = Serve::start(Transport::Http, &path).await;
    let again = settled(serve.addr(), &id).await;
    assert_eq!(again, done, "the result is kept across restarts");
    let unknown = get(serve.addr(), "0123456789abcdef0123456789abcdef").await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_task_is_reported_interrupted_after_a_kill() {
    let dir = tempdir();
    let path = write_policy(dir.path(), &policy());
    let serve = Serve::start(Transport::Http, &path).await;
    let task = start(serve.addr(), 1, "nap__sleep", json!({"ms": 60_000})).await;
    let id = task["taskId"].as_str().expect("a task id").to_string();
    let working = get(serve.addr(), &id).await;
    assert_eq!(working["result"]["status"], "working", "{working}");
    assert!(
        working["result"]["statusMessage"]
            .as_str()
            .is_some_and(|m| m.contains("running for")),
        "{working}"
    );
    // SAFETY: kill only sends a signal to the child process.
    assert_eq!(
        unsafe { libc::kill(serve.pid() as libc::pid_t, libc::SIGKILL) },
        0
    );
    drop(serve);

    let serve = Serve::start(Transport::Http, &path).await;
    let after = settled(serve.addr(), &id).await;
    assert_eq!(after["status"], "failed", "{after}");
    assert!(
        after["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("interrupted") && m.contains("not re-run")),
        "{after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_is_cancelled_and_never_blocks_other_calls() {
    let serve = Serve::for_policy(Transport::Http, &policy()).await;
    let addr = serve.addr();
    let started = Instant::now();
    let task = start(addr, 1, "nap__sleep", json!({"ms": 30_000})).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a task answers at once"
    );
    let id = task["taskId"].as_str().expect("a task id").to_string();

    // Other calls go on, as tasks or not.
    let plain = request(
        2,
        "tools/call",
        json!({"name": "text__word-count", "arguments": {"text": "a b"}}),
        json!({}),
    );
    let (_, answer) = post(addr, &plain, Some("text__word-count")).await;
    assert_eq!(
        response(&answer)["result"]["structuredContent"]["result"]["words"],
        2,
        "{answer:?}"
    );
    let other = start(addr, 3, "nap__sleep", json!({"ms": 1})).await;
    let other = settled(addr, other["taskId"].as_str().expect("an id")).await;
    assert_eq!(other["status"], "completed", "{other}");

    let cancel = request(4, "tasks/cancel", json!({"taskId": id}), with_tasks());
    let (_, answer) = post(addr, &cancel, Some(&id)).await;
    assert!(response(&answer).get("result").is_some(), "{answer:?}");
    let cancelled = settled(addr, &id).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "cancelled before its end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_task_needs_a_client_with_tasks_and_allowed_ones_run_plain_without() {
    let serve = Serve::for_policy(Transport::Http, &policy()).await;
    let addr = serve.addr();
    let call = request(
        1,
        "tools/call",
        json!({"name": "nap__sleep", "arguments": {"ms": 1}}),
        json!({}),
    );
    let (_, answer) = post(addr, &call, Some("nap__sleep")).await;
    let error = &response(&answer)["error"];
    assert_eq!(error["code"], -32021, "{answer:?}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("runs only as a task")),
        "{error}"
    );
    let call = request(
        2,
        "tools/call",
        json!({"name": "text__word-count", "arguments": {"text": "a"}}),
        json!({}),
    );
    let (_, answer) = post(addr, &call, Some("text__word-count")).await;
    assert_eq!(
        response(&answer)["result"]["structuredContent"]["result"]["words"],
        1,
        "{answer:?}"
    );
    // Arguments that do not fit are refused at once, not by a failed task.
    let call = request(
        4,
        "tools/call",
        json!({"name": "text__word-count", "arguments": {"text": 5}}),
        with_tasks(),
    );
    let (_, answer) = post(addr, &call, Some("text__word-count")).await;
    assert_eq!(response(&answer)["error"]["code"], -32602, "{answer:?}");
    // The server says it has tasks.
    let (_, answer) = post(
        addr,
        &request(3, "server/discover", json!({}), json!({})),
        None,
    )
    .await;
    assert!(
        response(&answer)["result"]["capabilities"]["extensions"]
            .get("io.modelcontextprotocol/tasks")
            .is_some(),
        "{answer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_over_stdio() {
    let dir = tempdir();
    let path = write_policy(dir.path(), &policy());
    let mut raw = RawStdio::start(&path);
    raw.send(&[&request(
        1,
        "tools/call",
        json!({"name": "text__word-count", "arguments": {"text": "x y z w"}}),
        with_tasks(),
    )])
    .await;
    let created = raw.answers(1).await.remove(0);
    assert_eq!(created["result"]["resultType"], "task", "{created}");
    let id = created["result"]["taskId"]
        .as_str()
        .expect("an id")
        .to_string();
    let until = Instant::now() + PATIENCE;
    let done = loop {
        raw.send(&[&request(
            2,
            "tasks/get",
            json!({"taskId": id}),
            with_tasks(),
        )])
        .await;
        let got = raw.answers(1).await.remove(0);
        if got["result"]["status"] != "working" {
            break got;
        }
        assert!(Instant::now() < until, "{got}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done["result"]["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["result"]["structuredContent"]["result"]["words"], 4,
        "{done}"
    );
    raw.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2025_11_25_session_gets_plain_answers_even_when_it_declares_tasks() {
    let serve = Serve::for_policy(Transport::Http, &policy()).await;
    let addr = serve.addr();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}}},
        "clientInfo": {"name": "raw", "version": "0"},
    }})
    .to_string();
    let session = super::raw_session_with(addr, &initialize).await;
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"text__word-count","arguments":{"text":"a b"}}}"#;
    let (_, body) = super::raw_post(addr, &session, call).await;
    assert!(body.contains(r#""words":2"#), "a plain result: {body}");
    let call = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"nap__sleep","arguments":{"ms":1}}}"#;
    let (_, body) = super::raw_post(addr, &session, call).await;
    assert!(
        body.contains("-32021") && body.contains("2026-07-28"),
        "{body}"
    );
}

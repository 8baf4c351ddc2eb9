//! Revision 2026-07-28 beside 2025-11-25: stateless requests with `_meta`, `server/discover`,
//! `subscriptions/listen` carrying `notifications/tools/list_changed`, logging only when a request asks, the
//! `Mcp-Method`/`Mcp-Name` header checks, `ttlMs`/`cacheScope`, and the methods the revision removed.

use super::{
    INITIALIZE, PATIENCE, POST_HEADERS, RawStdio, Serve, Transport, component, http_request,
    replace_file, text_and_loop,
};
use crate::common::{tempdir, write_policy};
use serde_json::{Value, json};
use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The revision these tests speak.
const REVISION: &str = "2026-07-28";

/// A 2026-07-28 request: `params` plus the `_meta` every request carries, plus `meta`.
pub(super) fn request(id: u64, method: &str, params: Value, meta: Value) -> String {
    let mut all_meta = json!({
        "io.modelcontextprotocol/protocolVersion": REVISION,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw-2026", "version": "0"},
    });
    if let (Value::Object(all), Value::Object(extra)) = (&mut all_meta, meta) {
        all.extend(extra);
    }
    let mut params = params;
    params["_meta"] = all_meta;
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

/// The JSON-RPC messages of a response body: one JSON document, or the `data:` lines of an SSE stream.
fn messages(body: &str) -> Vec<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(body.trim()) {
        return vec![v];
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect()
}

/// POST one 2026-07-28 request with the headers the revision asks for (`Mcp-Name` when `name` is given).
pub(super) async fn post(addr: SocketAddr, message: &str, name: Option<&str>) -> (u16, Vec<Value>) {
    let method: Value = serde_json::from_str(message).expect("JSON");
    let method = method["method"].as_str().expect("a method").to_string();
    let mut headers: Vec<(&str, &str)> = POST_HEADERS.to_vec();
    headers.push(("MCP-Protocol-Version", REVISION));
    headers.push(("Mcp-Method", &method));
    if let Some(name) = name {
        headers.push(("Mcp-Name", name));
    }
    let (status, _, body) = http_request(addr, "POST", "/mcp", &headers, Some(message)).await;
    (status, messages(&body))
}

/// The response (the message with an `id`) among `messages`.
pub(super) fn response(messages: &[Value]) -> &Value {
    messages
        .iter()
        .find(|m| m.get("id").is_some())
        .unwrap_or_else(|| panic!("no response in {messages:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_then_list_and_call_without_a_session() {
    let serve = Serve::for_policy(Transport::Http, &text_and_loop()).await;
    let addr = serve.addr();
    let (status, answer) = post(
        addr,
        &request(1, "server/discover", json!({}), json!({})),
        None,
    )
    .await;
    assert_eq!(status, 200, "{answer:?}");
    let result = &response(&answer)["result"];
    let versions = result["supportedVersions"].to_string();
    assert!(
        versions.contains(REVISION) && versions.contains("2025-11-25"),
        "{result}"
    );
    assert_eq!(
        result["capabilities"]["tools"]["listChanged"], true,
        "{result}"
    );
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "are",
        "{result}"
    );

    let (status, answer) = post(addr, &request(2, "tools/list", json!({}), json!({})), None).await;
    assert_eq!(status, 200, "{answer:?}");
    let result = &response(&answer)["result"];
    // The list is the same for every caller and changes only on restart here.
    assert_eq!(result["ttlMs"], 300_000, "{result}");
    assert_eq!(result["cacheScope"], "public", "{result}");
    let names: Vec<&str> = result["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t["name"].as_str().expect("a name"))
        .collect();
    assert!(names.contains(&"text__word-count"), "{names:?}");

    let call = request(
        3,
        "tools/call",
        json!({"name": "text__word-count", "arguments": {"text": "one two three"}}),
        json!({}),
    );
    let (status, answer) = post(addr, &call, Some("text__word-count")).await;
    assert_eq!(status, 200, "{answer:?}");
    let result = &response(&answer)["result"];
    assert_eq!(
        result["structuredContent"]["result"]["words"], 3,
        "{result}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_must_match_the_body() {
    let serve = Serve::for_policy(Transport::Http, &text_and_loop()).await;
    let addr = serve.addr();
    let call = request(
        1,
        "tools/call",
        json!({"name": "text__word-count", "arguments": {"text": "a"}}),
        json!({}),
    );
    let (status, answer) = post(addr, &call, Some("text__slugify")).await;
    assert_eq!(status, 400, "{answer:?}");
    assert_eq!(response(&answer)["error"]["code"], -32020, "{answer:?}");
    assert!(
        response(&answer)["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Mcp-Name")),
        "{answer:?}"
    );
    let (status, answer) = post(addr, &call, None).await;
    assert_eq!(status, 400, "a tools/call without Mcp-Name: {answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_methods_are_not_found_at_2026_and_served_before() {
    let serve = Serve::for_policy(Transport::Http, &text_and_loop()).await;
    let addr = serve.addr();
    for method in ["ping", "logging/setLevel"] {
        let params = if method == "ping" {
            json!({})
        } else {
            json!({"level": "debug"})
        };
        let (_, answer) = post(addr, &request(1, method, params, json!({})), None).await;
        assert_eq!(
            response(&answer)["error"]["code"],
            -32601,
            "{method} at {REVISION}: {answer:?}"
        );
    }
    // A 2025-11-25 session still has both.
    let session = super::raw_session(addr).await;
    for message in [
        r#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":6,"method":"logging/setLevel","params":{"level":"debug"}}"#,
    ] {
        let (status, body) = super::raw_post(addr, &session, message).await;
        assert_eq!(status, 200, "{body}");
        let answer = messages(&body);
        assert!(
            response(&answer).get("result").is_some(),
            "{message}: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_notifications_only_when_the_request_asks() {
    let serve = Serve::for_policy(Transport::Http, &text_and_loop()).await;
    let addr = serve.addr();
    let spin = |id, meta| {
        request(
            id,
            "tools/call",
            json!({"name": "loop__spin", "arguments": {}}),
            meta,
        )
    };
    let logs = |answer: &[Value]| {
        answer
            .iter()
            .filter(|m| m["method"] == "notifications/message")
            .count()
    };
    let (_, answer) = post(addr, &spin(1, json!({})), Some("loop__spin")).await;
    assert_eq!(response(&answer)["result"]["isError"], true, "{answer:?}");
    assert_eq!(logs(&answer), 0, "no logLevel, no log: {answer:?}");

    let asked = json!({"io.modelcontextprotocol/logLevel": "warning"});
    let (_, answer) = post(addr, &spin(2, asked), Some("loop__spin")).await;
    assert_eq!(logs(&answer), 1, "{answer:?}");
    let log = answer
        .iter()
        .find(|m| m["method"] == "notifications/message")
        .expect("a log");
    assert_eq!(log["params"]["level"], "warning", "{log}");
    assert_eq!(log["params"]["data"]["tool"], "loop__spin", "{log}");

    let above = json!({"io.modelcontextprotocol/logLevel": "error"});
    let (_, answer) = post(addr, &spin(3, above), Some("loop__spin")).await;
    assert_eq!(logs(&answer), 0, "a warning is below `error`: {answer:?}");
}

/// A `subscriptions/listen` request over HTTP, read as its SSE events arrive.
struct HttpListen {
    lines: tokio::io::Lines<BufReader<tokio::net::TcpStream>>,
}

impl HttpListen {
    async fn open(addr: SocketAddr, message: &str) -> HttpListen {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: {REVISION}\r\n\
             Mcp-Method: subscriptions/listen\r\nContent-Length: {}\r\n\r\n{message}",
            message.len()
        );
        stream.write_all(head.as_bytes()).await.expect("send");
        HttpListen {
            lines: BufReader::new(stream).lines(),
        }
    }

    /// The next JSON-RPC message on the stream.
    async fn next(&mut self) -> Value {
        loop {
            let line = tokio::time::timeout(PATIENCE, self.lines.next_line())
                .await
                .expect("a message on the listen stream")
                .expect("read")
                .expect("the stream stays open");
            if let Some(data) = line.strip_prefix("data:")
                && let Ok(v) = serde_json::from_str::<Value>(data.trim())
            {
                return v;
            }
        }
    }
}

/// The listen request both transports send.
fn listen(id: u64) -> String {
    request(
        id,
        "subscriptions/listen",
        json!({"notifications": {"toolsListChanged": true}}),
        json!({}),
    )
}

/// Policy with `text`, and the same plus `hash` as `extra`.
fn text_then_more() -> (String, String) {
    let text = component("text", "text", "");
    let more = format!("{text}{}", component("extra", "hash", ""));
    (text, more)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_over_http_hears_that_tools_changed() {
    let dir = tempdir();
    let (text, more) = text_then_more();
    let policy = write_policy(dir.path(), &text);
    let serve = Serve::with_args(Transport::Http, &policy, &["--watch"], None).await;
    let mut stream = HttpListen::open(serve.addr(), &listen(7)).await;
    let ack = stream.next().await;
    assert_eq!(
        ack["method"], "notifications/subscriptions/acknowledged",
        "{ack}"
    );
    assert_eq!(
        ack["params"]["notifications"]["toolsListChanged"], true,
        "{ack}"
    );

    // Under --watch the tool list may change: a short ttlMs.
    let (_, answer) = post(
        serve.addr(),
        &request(2, "tools/list", json!({}), json!({})),
        None,
    )
    .await;
    assert_eq!(response(&answer)["result"]["ttlMs"], 5_000, "{answer:?}");

    replace_file(&policy, more.as_bytes());
    let changed = stream.next().await;
    assert_eq!(
        changed["method"], "notifications/tools/list_changed",
        "{changed}"
    );
    assert_eq!(
        changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 7,
        "{changed}"
    );
    let (_, answer) = post(
        serve.addr(),
        &request(3, "tools/list", json!({}), json!({})),
        None,
    )
    .await;
    assert!(
        response(&answer)["result"]
            .to_string()
            .contains("extra__sha256-hex"),
        "{answer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_over_stdio_hears_that_tools_changed() {
    let dir = tempdir();
    let (text, more) = text_then_more();
    let policy = write_policy(dir.path(), &text);
    let mut raw = RawStdio::start_with(&policy, &["--watch"]);
    raw.send(&[
        &request(1, "server/discover", json!({}), json!({})),
        &listen(2),
    ])
    .await;
    let answers = raw.answers(2).await;
    assert!(
        answers
            .iter()
            .any(|m| m["id"] == 1 && m["result"]["supportedVersions"].is_array()),
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .any(|m| m["method"] == "notifications/subscriptions/acknowledged"),
        "{answers:?}"
    );
    replace_file(&policy, more.as_bytes());
    let changed = raw.answers(1).await;
    assert_eq!(
        changed[0]["method"], "notifications/tools/list_changed",
        "{changed:?}"
    );
    assert_eq!(
        changed[0]["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 2,
        "{changed:?}"
    );
    // Calls go on beside the open subscription.
    raw.send(&[&request(
        3,
        "tools/call",
        json!({"name": "extra__sha256-hex", "arguments": {"text": "abc"}}),
        json!({}),
    )])
    .await;
    let answer = raw.answers(1).await;
    assert_eq!(answer[0]["id"], 3, "{answer:?}");
    assert!(
        answer[0]["result"]["structuredContent"]["result"]
            .as_str()
            .is_some_and(|h| h.starts_with("ba7816bf")),
        "{answer:?}"
    );
    raw.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2025_session_and_a_2026_request_are_served_side_by_side() {
    let serve = Serve::for_policy(Transport::Http, &text_and_loop()).await;
    let addr = serve.addr();
    let (status, _, body) =
        http_request(addr, "POST", "/mcp", &POST_HEADERS, Some(INITIALIZE)).await;
    assert_eq!(status, 200);
    assert!(body.contains(r#""protocolVersion":"2025-11-25""#), "{body}");
    let (status, answer) = post(addr, &request(2, "tools/list", json!({}), json!({})), None).await;
    assert_eq!(status, 200, "{answer:?}");
    assert!(response(&answer)["result"]["tools"].is_array());
}

/// POST `message` as a stateless `tools/call` of `name` with the revision's headers, plus `accept`.
async fn post_call(addr: SocketAddr, message: &str, name: &str, accept: &str) -> (u16, Value) {
    let headers = [
        ("Content-Type", "application/json"),
        ("Accept", accept),
        ("MCP-Protocol-Version", REVISION),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", name),
    ];
    let (status, head, body) = http_request(addr, "POST", "/mcp", &headers, Some(message)).await;
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "a JSON reply: {head}\n{body}"
    );
    (
        status,
        serde_json::from_str(&body).expect("one JSON message"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_calls_over_http_are_answered_alike_on_either_path_and_share_no_instance() {
    let policy = text_and_loop() + &component("kv", "kv", "mode = \"session\"");
    let serve = Serve::for_policy(Transport::Http, &policy).await;
    let addr = serve.addr();
    // The plain `Accept` takes the server's direct path for stateless calls; a weighted one (same meaning) is left
    // to rmcp's general path. Both must give the same answers.
    let direct = "application/json, text/event-stream";
    let general = "application/json;q=1, text/event-stream";
    let cases = [
        ("text__word-count", json!({"text": "one two three"})),
        ("text.word-count", json!({"text": "a b"})),
        ("text__word-count", json!({"txt": "wrong name"})),
        ("text__word-count", json!({})),
        ("loop__spin", json!({})),
    ];
    for (id, (name, arguments)) in (1..).zip(cases) {
        let message = request(
            id,
            "tools/call",
            json!({"name": name, "arguments": arguments}),
            json!({}),
        );
        let (status, first) = post_call(addr, &message, name, direct).await;
        let (status_general, second) = post_call(addr, &message, name, general).await;
        assert_eq!(status, status_general, "{name} {arguments}");
        assert_eq!(first, second, "{name} {arguments}");
        assert_eq!(first["id"], id, "{first}");
    }
    // A session-mode component keeps nothing between stateless calls: there is no session to keep it for.
    for accept in [direct, general, direct] {
        let message = request(
            9,
            "tools/call",
            json!({"name": "kv__increment", "arguments": {"name": "n"}}),
            json!({}),
        );
        let (status, answer) = post_call(addr, &message, "kv__increment", accept).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer["result"]["structuredContent"]["result"], 1,
            "{answer}"
        );
    }
}

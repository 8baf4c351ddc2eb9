//! `are serve` driven by a real MCP client (rmcp's), over stdio (the `are` binary as a child process) and over
//! Streamable HTTP. This module is the harness: a policy, the `are serve` process, an MCP client that records
//! notifications, and raw HTTP for what a client library would not send; the tests are in its submodules, by
//! subject.
// MCP logging (logging/setLevel, notifications/message) is part of revision 2025-11-25, which `are serve`
// speaks; rmcp marks it deprecated because the next revision drops it.
#![allow(deprecated)]

use crate::common::{are, guest_source, tempdir, write_policy};
use rmcp::model::{CallToolRequestParams, CallToolResult, LoggingMessageNotificationParam};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, Peer, RoleClient, ServiceError, ServiceExt};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// How long to wait for something the server should do soon (a notification, a log line, a reload).
const PATIENCE: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Stdio,
    Http,
}

/// Runs an `async fn name(transport: Transport)` of a submodule as two tests, `name::stdio` and `name::http`.
macro_rules! over_both_transports {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn stdio() {
                super::$name($crate::mcp::Transport::Stdio).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn http() {
                super::$name($crate::mcp::Transport::Http).await;
            }
        }
    )*};
}

mod concurrency;
mod http;
mod interop;
mod limits;
mod observability;
mod reload;
mod revision;
mod sessions;
mod stdio;
mod tasks;
mod tools;

/// A `[component.NAME]` table for built guest `guest`, with `extra` (`key = value` lines) after its source.
fn component(name: &str, guest: &str, extra: &str) -> String {
    format!(
        "[component.{name}]\nsource = {}\n{extra}\n",
        guest_source(guest)
    )
}

/// Replace `path` with `bytes` in one step (a reader never sees half a file).
fn replace_file(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).expect("write file");
    std::fs::rename(&tmp, path).expect("rename file");
}

/// What the client was told without asking.
#[derive(Clone)]
struct Recorder {
    list_changed: mpsc::UnboundedSender<()>,
    logs: mpsc::UnboundedSender<LoggingMessageNotificationParam>,
}

impl ClientHandler for Recorder {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        let _ = self.list_changed.send(());
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.logs.send(params);
    }
}

/// `are serve` for one policy. Over HTTP it is one process that every client connects to; over stdio every
/// client starts its own process (a stdio server has exactly one session).
struct Serve {
    transport: Transport,
    policy: PathBuf,
    args: Vec<String>,
    token: Option<String>,
    /// Where the HTTP server listens.
    bind: String,
    http: Option<HttpProcess>,
    stderr: Arc<Mutex<String>>,
    /// `RLIMIT_NOFILE` (soft and hard) of the server process, when lowered.
    nofile: Option<u64>,
    /// The directory of a policy written for this server (see [`Serve::for_policy`]).
    _dir: Option<TempDir>,
}

struct HttpProcess {
    addr: SocketAddr,
    _child: tokio::process::Child,
}

/// Copy `reader` line by line into `sink` until it ends.
fn drain(reader: impl tokio::io::AsyncRead + Unpin + Send + 'static, sink: Arc<Mutex<String>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut sink = sink.lock().expect("stderr buffer");
            sink.push_str(&line);
            sink.push('\n');
        }
    });
}

impl Serve {
    /// `are serve` for `policy`, not started yet.
    fn new(transport: Transport, policy: &Path) -> Serve {
        Serve {
            transport,
            policy: policy.to_path_buf(),
            args: Vec::new(),
            token: None,
            bind: "127.0.0.1:0".to_string(),
            http: None,
            stderr: Arc::default(),
            nofile: None,
            _dir: None,
        }
    }

    /// Over HTTP, start the server; over stdio, every [`Serve::connect`] starts one.
    async fn launch(mut self) -> Serve {
        if self.transport == Transport::Http {
            self.http = Some(self.spawn_http().await);
        }
        self
    }

    async fn start(transport: Transport, policy: &Path) -> Serve {
        Serve::new(transport, policy).launch().await
    }

    /// Serve the policy `text`, written as `are.toml` into a temporary directory that lives as long as the server.
    async fn for_policy(transport: Transport, text: &str) -> Serve {
        let dir = tempdir();
        let policy = write_policy(dir.path(), text);
        Serve {
            _dir: Some(dir),
            ..Serve::new(transport, &policy)
        }
        .launch()
        .await
    }

    /// Start serving `policy` with extra `args`; with a `token`, `--token-env` names a variable holding it.
    async fn with_args(
        transport: Transport,
        policy: &Path,
        args: &[&str],
        token: Option<&str>,
    ) -> Serve {
        Serve {
            args: args.iter().map(|a| a.to_string()).collect(),
            token: token.map(str::to_string),
            ..Serve::new(transport, policy)
        }
        .launch()
        .await
    }

    /// Serve `policy` over HTTP on `bind`, with `token`.
    async fn http_on(policy: &Path, bind: &str, token: &str) -> Serve {
        Serve {
            token: Some(token.to_string()),
            bind: bind.to_string(),
            ..Serve::new(Transport::Http, policy)
        }
        .launch()
        .await
    }

    /// Serve `policy` over HTTP from a process whose `RLIMIT_NOFILE` is `nofile`, soft and hard (so that the
    /// server cannot raise it).
    async fn http_with_nofile(policy: &Path, nofile: u64) -> Serve {
        Serve {
            nofile: Some(nofile),
            ..Serve::new(Transport::Http, policy)
        }
        .launch()
        .await
    }

    fn command(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::from(are());
        cmd.arg("serve")
            .arg("--config")
            .arg(&self.policy)
            .args(&self.args)
            .kill_on_drop(true);
        if let Some(token) = &self.token {
            cmd.env("ARE_TEST_TOKEN", token)
                .args(["--token-env", "ARE_TEST_TOKEN"]);
        }
        if let Some(nofile) = self.nofile {
            let limit = libc::rlimit {
                rlim_cur: nofile,
                rlim_max: nofile,
            };
            // SAFETY: setrlimit is async-signal-safe and reads a struct that lives in the closure.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        cmd
    }

    /// Start the HTTP server and read the bound address from its banner on stderr.
    async fn spawn_http(&self) -> HttpProcess {
        let mut cmd = self.command();
        cmd.args(["--http", &self.bind])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start are serve");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let banner = async {
            while let Some(line) = lines.next_line().await.expect("read stderr") {
                self.log(&line);
                if let Some(rest) = line.strip_prefix("are serve: ") {
                    let url = rest
                        .split_whitespace()
                        .find(|w| w.starts_with("http://"))
                        .expect("a URL in the banner");
                    let addr = url
                        .trim_start_matches("http://")
                        .trim_end_matches("/mcp")
                        .parse::<SocketAddr>()
                        .expect("an address in the banner");
                    return Some(addr);
                }
            }
            None
        };
        let addr = match tokio::time::timeout(PATIENCE * 4, banner).await {
            Ok(Some(addr)) => addr,
            Ok(None) => panic!("are serve exited before listening:\n{}", self.stderr()),
            Err(_) => panic!("are serve did not start listening:\n{}", self.stderr()),
        };
        drain(lines.into_inner(), self.stderr.clone());
        HttpProcess {
            addr,
            _child: child,
        }
    }

    fn log(&self, line: &str) {
        let mut sink = self.stderr.lock().expect("stderr buffer");
        sink.push_str(line);
        sink.push('\n');
    }

    /// Everything the server (or, over stdio, every server process) wrote to stderr so far.
    fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr buffer").clone()
    }

    /// Wait until stderr contains `needle`.
    async fn wait_for_stderr(&self, needle: &str) {
        let until = Instant::now() + PATIENCE;
        while !self.stderr().contains(needle) {
            assert!(
                Instant::now() < until,
                "are serve never logged {needle:?}; stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn addr(&self) -> SocketAddr {
        self.http.as_ref().expect("an HTTP server").addr
    }

    /// The process id of the HTTP server.
    fn pid(&self) -> u32 {
        let http = self.http.as_ref().expect("an HTTP server");
        http._child.id().expect("are serve is running")
    }

    /// A new MCP session: over stdio a new `are serve` process, over HTTP a new session with the server.
    async fn connect(&self) -> Client {
        let (list_changed_tx, list_changed) = mpsc::unbounded_channel();
        let (logs_tx, logs) = mpsc::unbounded_channel();
        let recorder = Recorder {
            list_changed: list_changed_tx,
            logs: logs_tx,
        };
        let service = match self.transport {
            Transport::Stdio => {
                let (child, stderr) = TokioChildProcess::builder(self.command())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("start are serve");
                drain(stderr.expect("stderr"), self.stderr.clone());
                recorder.serve(child).await
            }
            Transport::Http => {
                // reqwest is built without a crypto provider of its own (the host uses ring): install one.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let url = format!("http://{}/mcp", self.addr());
                let mut config =
                    StreamableHttpClientTransportConfig::with_uri(url).max_concurrent_requests(64);
                if let Some(token) = &self.token {
                    config = config.auth_header(token.clone());
                }
                recorder
                    .serve(StreamableHttpClientTransport::from_config(config))
                    .await
            }
        };
        let service = service.unwrap_or_else(|e| {
            panic!(
                "cannot initialize an MCP session: {e}\nstderr:\n{}",
                self.stderr()
            )
        });
        Client {
            service,
            list_changed,
            logs,
        }
    }

    /// The text of `/metrics`.
    async fn metrics(&self) -> String {
        let (status, _, body) = http_request(self.addr(), "GET", "/metrics", &[], None).await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

/// One MCP session.
struct Client {
    service: RunningService<RoleClient, Recorder>,
    list_changed: mpsc::UnboundedReceiver<()>,
    logs: mpsc::UnboundedReceiver<LoggingMessageNotificationParam>,
}

fn params(name: &str, args: Value) -> CallToolRequestParams {
    let params = CallToolRequestParams::new(name.to_string());
    match args {
        Value::Object(map) => params.with_arguments(map),
        Value::Null => params,
        other => panic!("arguments must be an object, not {other}"),
    }
}

/// The text of a result's first content block.
fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default()
}

/// The output of a successful call: `structuredContent.result`, checked against the text rendering.
fn output_of(name: &str, result: &CallToolResult) -> Value {
    assert_ne!(
        result.is_error,
        Some(true),
        "{name} failed: {}",
        text_of(result)
    );
    let structured = result
        .structured_content
        .clone()
        .unwrap_or_else(|| panic!("{name}: no structuredContent in {result:?}"));
    let value = structured["result"].clone();
    let text = text_of(result);
    match &value {
        Value::String(s) => assert_eq!(&text, s, "{name}: text rendering"),
        other => assert_eq!(
            serde_json::from_str::<Value>(&text).expect("the text rendering is JSON"),
            *other,
            "{name}: text rendering"
        ),
    }
    value
}

/// The message of a failed call.
fn error_of(name: &str, result: &CallToolResult) -> String {
    assert_eq!(
        result.is_error,
        Some(true),
        "{name} should have failed: {result:?}"
    );
    assert!(
        result.structured_content.is_none(),
        "{name}: a tool error has no structured output"
    );
    text_of(result)
}

impl Client {
    fn peer(&self) -> Peer<RoleClient> {
        self.service.peer().clone()
    }

    async fn try_call(&self, name: &str, args: Value) -> Result<CallToolResult, ServiceError> {
        self.service.call_tool(params(name, args)).await
    }

    async fn call(&self, name: &str, args: Value) -> CallToolResult {
        self.try_call(name, args)
            .await
            .unwrap_or_else(|e| panic!("{name}: protocol error {e}"))
    }

    /// Call and return the output, panicking on a tool error.
    async fn ok(&self, name: &str, args: Value) -> Value {
        output_of(name, &self.call(name, args).await)
    }

    /// Call and return the message of the tool error, panicking on success.
    async fn tool_error(&self, name: &str, args: Value) -> String {
        error_of(name, &self.call(name, args).await)
    }

    /// Call and return the protocol error, panicking when there is none.
    async fn protocol_error(&self, name: &str, args: Value) -> rmcp::ErrorData {
        match self.try_call(name, args).await {
            Err(ServiceError::McpError(e)) => e,
            Err(other) => panic!("{name}: expected a protocol error, got {other}"),
            Ok(result) => panic!("{name}: expected a protocol error, got {result:?}"),
        }
    }

    /// Every tool name, through every page.
    async fn names(&self) -> Vec<String> {
        self.service
            .list_all_tools()
            .await
            .expect("tools/list")
            .into_iter()
            .map(|t| t.name.to_string())
            .collect()
    }

    async fn wait_list_changed(&mut self) {
        match tokio::time::timeout(PATIENCE, self.list_changed.recv()).await {
            Ok(Some(())) => {}
            Ok(None) => panic!("the session ended before notifications/tools/list_changed"),
            Err(_) => panic!("no notifications/tools/list_changed"),
        }
    }

    async fn next_log(&mut self) -> LoggingMessageNotificationParam {
        match tokio::time::timeout(PATIENCE, self.logs.recv()).await {
            Ok(Some(log)) => log,
            Ok(None) => panic!("the session ended before a log notification"),
            Err(_) => panic!("no notifications/message"),
        }
    }

    /// End the session (over HTTP, rmcp's client sends `DELETE /mcp` with the session id).
    async fn close(mut self) {
        let _ = self.service.close().await;
    }
}

/// A plain HTTP/1.1 request to the server; returns the status, the head and the body (as received, possibly
/// chunked).
async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = body.unwrap_or("");
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    let mut response = Vec::new();
    // An SSE response may stay open: take what arrives within a moment.
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or((response.as_str(), ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    (status, head.to_string(), body.to_string())
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;

/// The notification that completes an `initialize`.
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// Headers of a Streamable HTTP POST.
const POST_HEADERS: [(&str, &str); 2] = [
    ("Content-Type", "application/json"),
    ("Accept", "application/json, text/event-stream"),
];

/// The value of sample `name` (with its labels exactly as rendered) in Prometheus text.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        line.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// The `text` component and `loop` (`hostile-loop`) with a little fuel.
fn text_and_loop() -> String {
    component("text", "text", "") + &component("loop", "hostile-loop", "limits.fuel = 1_000_000")
}

/// The `text` component and `kv` in session mode, with `serve` as the `[serve]` table.
fn text_and_kv_serving(serve: &str) -> String {
    format!("[serve]\n{serve}\n\n")
        + &component("text", "text", "")
        + &component("kv", "kv", "mode = \"session\"")
}

/// Open a session with a raw `initialize`; its `Mcp-Session-Id`.
async fn raw_session(addr: SocketAddr) -> String {
    raw_session_with(addr, INITIALIZE).await
}

/// Open a session with the raw `initialize` request `initialize`; its `Mcp-Session-Id`.
async fn raw_session_with(addr: SocketAddr, initialize: &str) -> String {
    let (status, head, body) =
        http_request(addr, "POST", "/mcp", &POST_HEADERS, Some(initialize)).await;
    assert_eq!(status, 200, "{head}\n{body}");
    let id = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("mcp-session-id")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Mcp-Session-Id in {head}"));
    let (status, _) = raw_post(addr, &id, INITIALIZED).await;
    assert_eq!(status, 202);
    id
}

/// POST `message` in `session`; the status and the body.
async fn raw_post(addr: SocketAddr, session: &str, message: &str) -> (u16, String) {
    let mut headers: Vec<(&str, &str)> = POST_HEADERS.to_vec();
    headers.push(("Mcp-Session-Id", session));
    headers.push(("MCP-Protocol-Version", "2025-11-25"));
    let (status, _, body) = http_request(addr, "POST", "/mcp", &headers, Some(message)).await;
    (status, body)
}

/// Open the session's standalone SSE stream (`GET /mcp`) and keep it open: the session is busy while it is.
async fn open_stream(addr: SocketAddr, session: &str) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET /mcp HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nMcp-Session-Id: {session}\r\n\
         MCP-Protocol-Version: 2025-11-25\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut byte))
            .await
            .expect("a response head")
            .expect("read");
        assert_eq!(
            n,
            1,
            "closed before the head: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    stream
}

const LIST: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;

/// `are serve` over stdio spoken raw, without a client library: JSON-RPC lines in, JSON-RPC lines out.
struct RawStdio {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl RawStdio {
    /// Start `are serve` for `policy` on stdio.
    fn start(policy: &Path) -> RawStdio {
        RawStdio::start_with(policy, &[])
    }

    /// Start `are serve` for `policy` on stdio with extra `args`.
    fn start_with(policy: &Path, args: &[&str]) -> RawStdio {
        let serve = Serve {
            args: args.iter().map(|a| a.to_string()).collect(),
            ..Serve::new(Transport::Stdio, policy)
        };
        let mut child = serve
            .command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start are serve");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        RawStdio {
            child,
            stdin,
            stdout,
        }
    }

    /// Write each of `messages` as a line.
    async fn send(&mut self, messages: &[&str]) {
        for message in messages {
            self.stdin
                .write_all(format!("{message}\n").as_bytes())
                .await
                .expect("write");
        }
    }

    /// The next `n` lines, each JSON-RPC.
    async fn answers(&mut self, n: usize) -> Vec<Value> {
        let mut answers = Vec::new();
        while answers.len() < n {
            let line = tokio::time::timeout(PATIENCE, self.stdout.next_line())
                .await
                .expect("an answer for every message")
                .expect("read")
                .expect("a line");
            answers.push(serde_json::from_str::<Value>(&line).expect("JSON-RPC"));
        }
        answers
    }

    /// Close stdin: the session and the process end, successfully.
    async fn close(self) {
        let RawStdio {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        let status = tokio::time::timeout(PATIENCE, child.wait())
            .await
            .expect("are serve should exit when its client goes")
            .expect("wait");
        assert!(status.success(), "{status}");
    }
}

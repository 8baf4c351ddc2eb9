//! `are serve` driven by a real MCP client (rmcp's), over stdio (the `are` binary as a child process) and over
//! Streamable HTTP: listing and calling tools, pagination, schemas, argument errors, denials and limits as tool
//! errors, concurrency and busy components, session instances, hot reload, HTTP safety, metrics and log
//! notifications.
// MCP logging (logging/setLevel, notifications/message) is part of revision 2025-11-25, which `are serve`
// speaks; rmcp marks it deprecated because the next revision drops it.
#![allow(deprecated)]

use crate::common::{are, tempdir, with_docs};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientRequest, ErrorCode, LoggingLevel,
    LoggingMessageNotificationParam, PaginatedRequestParams, ProtocolVersion,
    SetLevelRequestParams,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, Peer, RoleClient, ServiceError, ServiceExt};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// How long to wait for something the server should do soon (a notification, a log line, a reload).
const PATIENCE: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Stdio,
    Http,
}

/// Runs an `async fn name(transport: Transport)` as two tests, `name::stdio` and `name::http`.
macro_rules! over_both_transports {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn stdio() {
                super::$name(super::Transport::Stdio).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn http() {
                super::$name(super::Transport::Http).await;
            }
        }
    )*};
}

over_both_transports!(
    lists_and_calls_tools,
    pages_through_tools,
    describes_rich_types_with_schemas_and_docs,
    argument_errors_are_protocol_errors,
    denials_and_limits_are_tool_errors,
    sixty_four_concurrent_calls,
    a_hostile_loop_does_not_hold_up_other_calls,
    a_full_queue_answers_busy,
    a_full_instance_pool_is_a_clear_error,
    session_mode_keeps_state_per_session,
    session_instances_start_fresh_after_a_failure,
    idle_session_instances_expire,
    hot_reload_adds_changes_and_removes_tools,
    hot_reload_keeps_memory_limits_within_the_pool,
    log_notifications_follow_the_level,
);

// ---------------------------------------------------------------------------------------------------------------
// Harness: a policy, the `are serve` process, and an MCP client that records notifications.

/// A TOML string holding the path of guest `name`.
fn guest_source(name: &str) -> String {
    toml_string(are_tests::guest(name).wasm_path())
}

fn toml_string(path: &Path) -> String {
    toml::Value::String(path.to_str().expect("UTF-8 path").to_string()).to_string()
}

/// Write `are.toml` into `dir`.
fn write_policy(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("are.toml");
    std::fs::write(&path, text).expect("write policy");
    path
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
    async fn start(transport: Transport, policy: &Path) -> Serve {
        Serve::with_args(transport, policy, &[], None).await
    }

    /// Start serving `policy` with extra `args`; with a `token`, `--token-env` names a variable holding it.
    async fn with_args(
        transport: Transport,
        policy: &Path,
        args: &[&str],
        token: Option<&str>,
    ) -> Serve {
        let mut serve = Serve {
            transport,
            policy: policy.to_path_buf(),
            args: args.iter().map(|a| a.to_string()).collect(),
            token: token.map(str::to_string),
            bind: "127.0.0.1:0".to_string(),
            http: None,
            stderr: Arc::default(),
            nofile: None,
        };
        if transport == Transport::Http {
            serve.http = Some(serve.spawn_http().await);
        }
        serve
    }

    /// Serve `policy` over HTTP on `bind`, with `token`.
    async fn http_on(policy: &Path, bind: &str, token: &str) -> Serve {
        let mut serve = Serve {
            transport: Transport::Http,
            policy: policy.to_path_buf(),
            args: Vec::new(),
            token: Some(token.to_string()),
            bind: bind.to_string(),
            http: None,
            stderr: Arc::default(),
            nofile: None,
        };
        serve.http = Some(serve.spawn_http().await);
        serve
    }

    /// Serve `policy` over HTTP from a process whose `RLIMIT_NOFILE` is `nofile`, soft and hard (so that the
    /// server cannot raise it).
    async fn http_with_nofile(policy: &Path, nofile: u64) -> Serve {
        let mut serve = Serve {
            transport: Transport::Http,
            policy: policy.to_path_buf(),
            args: Vec::new(),
            token: None,
            bind: "127.0.0.1:0".to_string(),
            http: None,
            stderr: Arc::default(),
            nofile: Some(nofile),
        };
        serve.http = Some(serve.spawn_http().await);
        serve
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

// ---------------------------------------------------------------------------------------------------------------
// Tests over both transports.

async fn lists_and_calls_tools(transport: Transport) {
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        &format!(
            "[component.text]\nsource = {}\n\n[component.kv]\nsource = {}\n",
            guest_source("text"),
            guest_source("kv")
        ),
    );
    let serve = Serve::start(transport, &policy).await;
    let client = serve.connect().await;

    let info = client.service.peer_info().expect("server info");
    assert_eq!(info.server_info.as_ref().expect("serverInfo").name, "are");
    assert_eq!(info.protocol_version, ProtocolVersion::V_2025_11_25);
    let tools = info.capabilities.tools.as_ref().expect("tools capability");
    assert_eq!(tools.list_changed, Some(true));
    assert!(info.capabilities.logging.is_some(), "logging capability");
    client
        .service
        .send_request(ClientRequest::PingRequest(Default::default()))
        .await
        .expect("ping");

    let names = client.names().await;
    assert_eq!(
        names,
        [
            "kv.delete",
            "kv.get",
            "kv.increment",
            "kv.keys",
            "kv.set",
            "text.find",
            "text.replace",
            "text.slugify",
            "text.word-count",
        ]
    );
    for name in &names {
        assert!(
            name.len() <= 128
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
            "{name}"
        );
    }

    let counts = client
        .ok("text.word-count", json!({"text": "one two\nthree"}))
        .await;
    assert_eq!(
        counts,
        json!({"words": 3, "lines": 2, "chars": 13, "bytes": 13})
    );
    assert_eq!(
        client
            .ok(
                "text.slugify",
                json!({"text": "Héllo, Wörld!", "separator": "_"})
            )
            .await,
        "hello_world"
    );
    // An optional parameter may be left out.
    assert_eq!(
        client
            .ok("text.slugify", json!({"text": "Hello World"}))
            .await,
        "hello-world"
    );
    // A WIT `result`: its `ok` is the output, its `err` a tool error.
    let found = client
        .ok("text.find", json!({"pattern": "o(.)", "text": "foo boa"}))
        .await;
    assert_eq!(found[0]["text"], "oo");
    assert_eq!(found[1]["groups"], json!(["a"]));
    let message = client
        .tool_error("text.find", json!({"pattern": "(", "text": "x"}))
        .await;
    assert!(message.contains("regex"), "{message}");
    // A function without parameters, called without arguments.
    assert_eq!(client.ok("kv.keys", Value::Null).await, json!([]));
    client.close().await;
}

async fn pages_through_tools(transport: Transport) {
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        &format!(
            "[serve]\npage_size = 3\n\n[component.text]\nsource = {}\n\n[component.kv]\nsource = {}\n\n\
             [component.hash]\nsource = {}\n",
            guest_source("text"),
            guest_source("kv"),
            guest_source("hash")
        ),
    );
    let serve = Serve::start(transport, &policy).await;
    let client = serve.connect().await;
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let request = cursor
            .take()
            .map(|c| PaginatedRequestParams::default().with_cursor(Some(c)));
        let page = client
            .service
            .list_tools(request)
            .await
            .expect("tools/list");
        pages.push(
            page.tools
                .iter()
                .map(|t| t.name.to_string())
                .collect::<Vec<_>>(),
        );
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages.len() < 20, "pagination does not end");
    }
    let all: Vec<String> = pages.concat();
    assert!(all.len() > 9, "enough tools for several pages: {all:?}");
    // Full pages of three, then the rest.
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    let expected: Vec<usize> = all.chunks(3).map(<[String]>::len).collect();
    assert_eq!(sizes, expected, "{pages:?}");
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(all, sorted, "pages are in order and do not repeat");
    assert_eq!(all, client.names().await);
    client.close().await;
}

async fn describes_rich_types_with_schemas_and_docs(transport: Transport) {
    let dir = tempdir();
    let hash = with_docs("hash", dir.path());
    let files = with_docs("files", dir.path());
    std::fs::create_dir(dir.path().join("data")).expect("mkdir");
    std::fs::write(dir.path().join("data/notes.txt"), "abc").expect("write");
    let policy = write_policy(
        dir.path(),
        &format!(
            "[component.hash]\nsource = {}\nallow.fs = [{{ host = \"data\", guest = \"/data\", mode = \"ro\" }}]\n\n\
             [component.files]\nsource = {}\nallow.fs = [{{ host = \"data\", guest = \"/data\", mode = \"ro\" }}]\n",
            toml_string(&hash),
            toml_string(&files)
        ),
    );
    let serve = Serve::start(transport, &policy).await;
    let client = serve.connect().await;
    let tools = client.service.list_all_tools().await.expect("tools/list");
    let tool = |name: &str| {
        tools
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no tool {name}"))
            .clone()
    };

    let sha = tool("hash.sha256");
    let description = sha.description.as_deref().unwrap_or_default();
    assert!(
        description.starts_with("Computes the SHA-256 digest of text, bytes or a file."),
        "{description}"
    );
    let input = Value::Object((*sha.input_schema).clone());
    assert_eq!(input["type"], "object");
    assert_eq!(input["required"], json!(["input", "encodings"]));
    assert_eq!(input["additionalProperties"], false);
    // The variant: one object per case, each with its doc.
    let cases = input["properties"]["input"]["oneOf"]
        .as_array()
        .expect("variant cases");
    assert_eq!(cases.len(), 3);
    assert_eq!(cases[0]["required"], json!(["text"]));
    assert!(
        input.to_string().contains("The UTF-8 bytes of this text."),
        "case docs: {input}"
    );
    assert!(
        input["properties"]["encodings"].to_string().contains("hex"),
        "flags: {input}"
    );
    let output = Value::Object((*sha.output_schema.clone().expect("outputSchema")).clone());
    assert_eq!(output["type"], "object");
    assert_eq!(output["required"], json!(["result"]));
    let digest = &output["properties"]["result"];
    assert_eq!(digest["type"], "object", "{output}");
    assert!(digest["properties"]["size"].is_object(), "{output}");

    // Every input and output schema is a valid JSON Schema, and real arguments and results fit them.
    for t in &tools {
        let input = Value::Object((*t.input_schema).clone());
        jsonschema::validator_for(&input)
            .unwrap_or_else(|e| panic!("{}: invalid inputSchema: {e}", t.name));
        if let Some(output) = &t.output_schema {
            jsonschema::validator_for(&Value::Object((**output).clone()))
                .unwrap_or_else(|e| panic!("{}: invalid outputSchema: {e}", t.name));
        }
    }
    let check = |name: &str, args: &Value, result: &CallToolResult| {
        let t = tool(name);
        let input = jsonschema::validator_for(&Value::Object((*t.input_schema).clone())).unwrap();
        assert!(
            input.is_valid(args),
            "{name}: {args} does not fit its inputSchema"
        );
        let output = Value::Object((*t.output_schema.expect("outputSchema")).clone());
        let output = jsonschema::validator_for(&output).unwrap();
        let structured = result
            .structured_content
            .clone()
            .expect("structuredContent");
        assert!(
            output.is_valid(&structured),
            "{name}: {structured} does not fit its outputSchema"
        );
    };
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    for args in [
        json!({"input": {"text": "abc"}, "encodings": {"hex": true}}),
        json!({"input": {"bytes": [97, 98, 99]}, "encodings": ["hex", "base64"]}),
        json!({"input": {"file": "/data/notes.txt"}, "encodings": ["hex"]}),
    ] {
        let result = client.call("hash.sha256", args.clone()).await;
        check("hash.sha256", &args, &result);
        let digest = output_of("hash.sha256", &result);
        assert_eq!(digest["hex"], abc, "{args}");
        assert_eq!(digest["size"], 3);
    }

    let list = tool("files.list");
    assert!(
        list.description
            .as_deref()
            .is_some_and(|d| d.starts_with("Lists a directory, sorted by name.")),
        "{list:?}"
    );
    let args = json!({"path": "/data"});
    let result = client.call("files.list", args.clone()).await;
    check("files.list", &args, &result);
    let entries = output_of("files.list", &result);
    assert_eq!(entries[0]["name"], "notes.txt");
    assert_eq!(entries[0]["kind"], "file");
    assert_eq!(entries[0]["size"], 3);
    // The `err` variant of a WIT result becomes a tool error with its payload.
    let message = client
        .tool_error("files.read", json!({"path": "/data/missing.txt"}))
        .await;
    assert!(message.contains("missing.txt"), "{message}");
    client.close().await;
}

async fn argument_errors_are_protocol_errors(transport: Transport) {
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        &format!("[component.text]\nsource = {}\n", guest_source("text")),
    );
    let serve = Serve::start(transport, &policy).await;
    let client = serve.connect().await;
    let unknown = client.protocol_error("text.nope", json!({})).await;
    assert_eq!(unknown.code, ErrorCode::INVALID_PARAMS);
    assert!(
        unknown.message.contains("unknown tool `text.nope`"),
        "{}",
        unknown.message
    );
    for (args, mentions) in [
        (json!({}), "text"),
        (json!({"text": 42}), "text"),
        (json!({"text": "a", "separator": ["-"]}), "separator"),
        (json!({"text": "a", "colour": "red"}), "colour"),
    ] {
        let e = client.protocol_error("text.slugify", args.clone()).await;
        assert_eq!(e.code, ErrorCode::INVALID_PARAMS, "{args}: {e:?}");
        assert!(
            e.message
                .starts_with("invalid arguments for `text.slugify`")
                && e.message.contains(mentions),
            "{args}: {}",
            e.message
        );
    }
    // The session is still fine.
    assert_eq!(
        client
            .ok("text.slugify", json!({"text": "still here"}))
            .await,
        "still-here"
    );
    client.close().await;
}

async fn denials_and_limits_are_tool_errors(transport: Transport) {
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        &format!(
            "[component.fetch]\nsource = {fetch}\n\n\
             [component.loop]\nsource = {spin}\nlimits.fuel = 5_000_000\n\n\
             [component.sleep]\nsource = {sleep}\nlimits.timeout = \"300ms\"\n\n\
             [component.memory]\nsource = {memory}\nlimits.memory = \"16 MiB\"\n\n\
             [component.output]\nsource = {output}\nlimits.max_output = \"64 KiB\"\n\n\
             [component.panic]\nsource = {panic}\n",
            fetch = guest_source("fetch"),
            spin = guest_source("hostile-loop"),
            sleep = guest_source("hostile-sleep"),
            memory = guest_source("hostile-memory"),
            output = guest_source("hostile-output"),
            panic = guest_source("hostile-panic"),
        ),
    );
    let serve = Serve::start(transport, &policy).await;
    let client = serve.connect().await;
    let cases = [
        (
            "fetch.get",
            json!({"url": "http://127.0.0.1:9/"}),
            &["capability not granted: wasi:http/", "allow.http"][..],
        ),
        (
            "loop.spin",
            json!({}),
            &["out of fuel", "5000000", "limits.fuel"][..],
        ),
        (
            "sleep.sleep-forever",
            json!({}),
            &["timed out", "300ms", "limits.timeout"][..],
        ),
        (
            "memory.allocate",
            json!({"mib": 64}),
            &["memory limit exceeded", "16.0 MiB", "limits.memory"][..],
        ),
        (
            "output.huge-string",
            json!({"mib": 1}),
            &["output limit exceeded", "64.0 KiB", "limits.max_output"][..],
        ),
        (
            "panic.panic",
            json!({"message": "the tool gave up"}),
            &["guest panicked: the tool gave up"][..],
        ),
    ];
    for (name, args, expected) in cases {
        let message = client.tool_error(name, args).await;
        for part in expected {
            assert!(message.contains(part), "{name}: {message:?} lacks {part:?}");
        }
    }
    // Failures are per call: the same components still answer.
    assert!(
        client
            .ok("memory.allocate", json!({"mib": 1}))
            .await
            .is_u64()
    );
    assert_eq!(client.ok("panic.divide", json!({"a": 7, "b": 2})).await, 3);
    client.close().await;
}

async fn sixty_four_concurrent_calls(transport: Transport) {
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        &format!("[component.text]\nsource = {}\n", guest_source("text")),
    );
    let serve = Serve::start(transport, &policy).await;
    let client = serve.connect().await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..64 {
        let peer = client.peer();
        calls.spawn(async move {
            let words = "word ".repeat(i);
            let result = peer
                .call_tool(params("text.word-count", json!({ "text": words })))
                .await
                .expect("tools/call");
            (i, output_of("text.word-count", &result))
        });
    }
    let mut seen = [false; 64];
    while let Some(done) = calls.join_next().await {
        let (i, counts) = done.expect("join");
        assert_eq!(counts["words"], i, "call {i}: {counts}");
        assert_eq!(counts["bytes"], 5 * i, "call {i}: {counts}");
        seen[i] = true;
    }
    assert!(seen.iter().all(|s| *s));
    client.close().await;
}

async fn a_hostile_loop_does_not_hold_up_other_calls(transport: Transport) {
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        &format!(
            "[component.loop]\nsource = {}\nlimits.fuel = \"unlimited\"\nlimits.timeout = \"2s\"\n\n\
             [component.text]\nsource = {}\n",
            guest_source("hostile-loop"),
            guest_source("text")
        ),
    );
    let serve = Serve::start(transport, &policy).await;
    let client = serve.connect().await;
    // Warm up, so that the timings below are calls and not first-time setup.
    client.ok("text.word-count", json!({"text": "warm"})).await;
    let started = Instant::now();
    let spinning = {
        let peer = client.peer();
        tokio::spawn(async move {
            let result = peer
                .call_tool(params("loop.spin", json!({})))
                .await
                .expect("tools/call");
            (error_of("loop.spin", &result), Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut slowest = Duration::ZERO;
    let mut benign_done = Instant::now();
    for i in 0..20 {
        let text = format!("call {i} while a loop spins");
        let t = Instant::now();
        let counts = client.ok("text.word-count", json!({ "text": text })).await;
        slowest = slowest.max(t.elapsed());
        benign_done = Instant::now();
        assert_eq!(counts["words"], 6);
    }
    let (message, loop_done) = spinning.await.expect("join");
    assert!(
        benign_done < loop_done,
        "the benign calls finished only after the loop was stopped"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "a benign call took {slowest:?} next to the loop"
    );
    assert!(
        message.contains("timed out")
            && message.contains("2s")
            && message.contains("limits.timeout"),
        "{message}"
    );
    let spun = loop_done - started;
    assert!(
        spun >= Duration::from_millis(1900) && spun < Duration::from_secs(6),
        "the loop was stopped after {spun:?}"
    );
    client.close().await;
}

async fn a_full_queue_answers_busy(transport: Transport) {
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        &format!(
            "[component.sleep]\nsource = {}\nmax_concurrency = 1\nqueue = 1\nlimits.timeout = \"10s\"\n",
            guest_source("hostile-sleep")
        ),
    );
    let serve = Serve::start(transport, &policy).await;
    let client = serve.connect().await;
    let mut sleepers = Vec::new();
    for _ in 0..2 {
        let peer = client.peer();
        sleepers.push(tokio::spawn(async move {
            let result = peer
                .call_tool(params("sleep.sleep", json!({"ms": 1000})))
                .await
                .expect("tools/call");
            output_of("sleep.sleep", &result)
        }));
        // The first one runs, the second one waits in the queue.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    let message = client.tool_error("sleep.sleep", json!({"ms": 1})).await;
    assert!(
        message.starts_with("busy:") && message.contains("max_concurrency 1, queue 1"),
        "{message}"
    );
    for sleeper in sleepers {
        let slept = sleeper.await.expect("join");
        assert!(slept.as_u64().expect("ms") >= 1000, "{slept}");
    }
    // With the queue empty again, calls get through.
    client.ok("sleep.sleep", json!({"ms": 1})).await;
    client.close().await;
}

async fn a_full_instance_pool_is_a_clear_error(transport: Transport) {
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        &format!(
            "[serve]\nmax_instances = 2\n\n\
             [component.sleep]\nsource = {}\nmax_concurrency = 4\nlimits.timeout = \"10s\"\n",
            guest_source("hostile-sleep")
        ),
    );
    let serve = Serve::start(transport, &policy).await;
    let client = serve.connect().await;
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let peer = client.peer();
        calls.spawn(async move {
            peer.call_tool(params("sleep.sleep", json!({"ms": 1500})))
                .await
                .expect("tools/call")
        });
    }
    let results = calls.join_all().await;
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.is_error == Some(true))
        .map(text_of)
        .collect();
    assert_eq!(failed.len(), 2, "{results:?}");
    for message in failed {
        assert!(
            message.starts_with("cannot start the component: no free instance slot")
                && message.contains("[serve] max_instances"),
            "{message}"
        );
    }
    // Slots come back when calls end.
    client.ok("sleep.sleep", json!({"ms": 1})).await;
    client.close().await;
}

async fn session_mode_keeps_state_per_session(transport: Transport) {
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        &format!(
            "[component.kv]\nsource = {kv}\nmode = \"session\"\n\n\
             [component.scratch]\nsource = {kv}\n",
            kv = guest_source("kv")
        ),
    );
    let serve = Serve::start(transport, &policy).await;
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
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        &format!(
            "[component.kv]\nsource = {kv}\nmode = \"session\"\nlimits.memory = \"2 MiB\"\nlimits.max_output = \"8 MiB\"\n\n\
             [component.panic]\nsource = {panic}\nmode = \"session\"\n",
            kv = guest_source("kv"),
            panic = guest_source("hostile-panic"),
        ),
    );
    let serve = Serve::start(transport, &policy).await;
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
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        &format!(
            "[component.kv]\nsource = {}\nmode = \"session\"\nidle_timeout = \"1s\"\n",
            guest_source("kv")
        ),
    );
    let serve = Serve::start(transport, &policy).await;
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

async fn hot_reload_adds_changes_and_removes_tools(transport: Transport) {
    let dir = tempdir();
    let text_only = format!("[component.text]\nsource = {}\n", guest_source("text"));
    let with_extra = format!("{text_only}\n[component.extra]\nsource = \"extra.wasm\"\n");
    let policy = write_policy(dir.path(), &text_only);
    let extra = dir.path().join("extra.wasm");
    replace_file(&extra, &are_tests::guest("kv").bytes());
    let serve = Serve::with_args(transport, &policy, &["--watch"], None).await;
    let mut client = serve.connect().await;
    let text_tools = client.names().await;
    assert!(text_tools.iter().all(|n| n.starts_with("text.")));

    // Add a component to the policy.
    replace_file(&policy, with_extra.as_bytes());
    client.wait_list_changed().await;
    let names = client.names().await;
    assert!(names.contains(&"extra.set".to_string()), "{names:?}");
    assert_eq!(
        client
            .ok("extra.set", json!({"key": "k", "value": "v"}))
            .await,
        1
    );

    // Change its file: another component's tools replace its own.
    replace_file(&extra, &are_tests::guest("hash").bytes());
    client.wait_list_changed().await;
    let names = client.names().await;
    assert!(names.contains(&"extra.sha256-hex".to_string()), "{names:?}");
    assert!(!names.contains(&"extra.set".to_string()), "{names:?}");
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(
        client.ok("extra.sha256-hex", json!({"text": "abc"})).await,
        abc
    );

    // A broken file: the old version keeps serving, and the server says why.
    replace_file(&extra, b"this is not a component");
    serve
        .wait_for_stderr("cannot reload, still serving the previous version")
        .await;
    assert_eq!(client.names().await, names);
    assert_eq!(
        client.ok("extra.sha256-hex", json!({"text": "abc"})).await,
        abc
    );
    // So does a broken policy.
    replace_file(&policy, b"[component.extra\n");
    serve
        .wait_for_stderr("policy changed but is not valid")
        .await;
    assert_eq!(client.names().await, names);

    // Remove the component.
    replace_file(&policy, text_only.as_bytes());
    client.wait_list_changed().await;
    assert_eq!(client.names().await, text_tools);
    let gone = client
        .protocol_error("extra.sha256-hex", json!({"text": "abc"}))
        .await;
    assert_eq!(gone.code, ErrorCode::INVALID_PARAMS);
    client.close().await;
}

async fn hot_reload_keeps_memory_limits_within_the_pool(transport: Transport) {
    let dir = tempdir();
    let base = format!(
        "[component.memory]\nsource = {}\n",
        guest_source("hostile-memory")
    );
    // Started with the default limit of 64 MiB, so instance slots hold 64 MiB.
    let policy = write_policy(dir.path(), &base);
    let serve = Serve::with_args(transport, &policy, &["--watch"], None).await;
    let mut client = serve.connect().await;
    let message = client
        .tool_error("memory.allocate", json!({"mib": 100}))
        .await;
    assert!(message.contains("over its limit of 64.0 MiB"), "{message}");
    // More than a slot holds needs a restart: the old version keeps serving, and the server says why.
    replace_file(
        &policy,
        format!("{base}limits.memory = \"256 MiB\"\n").as_bytes(),
    );
    serve
        .wait_for_stderr("limits.memory of 256.0 MiB is more than the 64.0 MiB")
        .await;
    let message = client
        .tool_error("memory.allocate", json!({"mib": 100}))
        .await;
    assert!(message.contains("over its limit of 64.0 MiB"), "{message}");
    // Less is applied.
    replace_file(
        &policy,
        format!("{base}limits.memory = \"32 MiB\"\n").as_bytes(),
    );
    client.wait_list_changed().await;
    let message = client
        .tool_error("memory.allocate", json!({"mib": 40}))
        .await;
    assert!(message.contains("over its limit of 32.0 MiB"), "{message}");
    assert!(
        client
            .ok("memory.allocate", json!({"mib": 20}))
            .await
            .is_u64()
    );
    client.close().await;
}

async fn log_notifications_follow_the_level(transport: Transport) {
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        &format!(
            "[component.text]\nsource = {}\n\n[component.loop]\nsource = {}\nlimits.fuel = 1_000_000\n",
            guest_source("text"),
            guest_source("hostile-loop")
        ),
    );
    let serve = Serve::start(transport, &policy).await;
    let mut client = serve.connect().await;
    // At `error`, a failed call (logged as a warning) sends nothing…
    client
        .service
        .set_level(SetLevelRequestParams::new(LoggingLevel::Error))
        .await
        .expect("logging/setLevel");
    client
        .tool_error("text.find", json!({"pattern": "(", "text": "x"}))
        .await;
    // …at `info` it does.
    client
        .service
        .set_level(SetLevelRequestParams::new(LoggingLevel::Info))
        .await
        .expect("logging/setLevel");
    client.tool_error("loop.spin", json!({})).await;
    let log = client.next_log().await;
    assert_eq!(log.level, LoggingLevel::Warning);
    assert_eq!(log.logger.as_deref(), Some("are"));
    assert_eq!(log.data["tool"], "loop.spin", "{:?}", log.data);
    assert_eq!(log.data["kind"], "fuel_exhausted");
    let message = log.data["message"].as_str().unwrap_or_default();
    assert!(message.contains("out of fuel"), "{message}");
    // Successful calls log nothing.
    client.ok("text.slugify", json!({"text": "fine"})).await;
    client
        .tool_error(
            "text.replace",
            json!({"pattern": ")", "text": "x", "replacement": ""}),
        )
        .await;
    let log = client.next_log().await;
    assert_eq!(log.data["tool"], "text.replace");
    assert_eq!(log.data["kind"], "tool_error");
    client.close().await;
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP only.

fn text_policy(dir: &Path) -> PathBuf {
    write_policy(
        dir,
        &format!(
            "[component.text]\nsource = {}\n\n[component.loop]\nsource = {}\nlimits.fuel = 1_000_000\n",
            guest_source("text"),
            guest_source("hostile-loop")
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_session_instances_leave_the_pool_to_fresh_calls() {
    let dir = tempdir();
    // Three instance slots; `text` may run one call at a time, so sessions may keep two instances.
    let policy = write_policy(
        dir.path(),
        &format!(
            "[serve]\nmax_instances = 3\n\n[component.kv]\nsource = {}\nmode = \"session\"\n\n\
             [component.text]\nsource = {}\nmax_concurrency = 1\n",
            guest_source("kv"),
            guest_source("text")
        ),
    );
    let serve = Serve::start(Transport::Http, &policy).await;
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
async fn http_checks_origin_and_host() {
    let dir = tempdir();
    let serve = Serve::start(Transport::Http, &text_policy(dir.path())).await;
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
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    let (status, _, _) = http_request(addr, "POST", "/mcp", &headers, Some(list)).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_requires_the_token_when_set() {
    let dir = tempdir();
    let token = "s3cret-token-for-the-test";
    let serve = Serve::with_args(Transport::Http, &text_policy(dir.path()), &[], Some(token)).await;
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
    let policy = text_policy(dir.path());
    let mut child = tokio::process::Command::from(are())
        .arg("serve")
        .arg("--config")
        .arg(&policy)
        .args(["--http", "0.0.0.0:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_server_ends_with_its_client() {
    let dir = tempdir();
    let policy = text_policy(dir.path());
    let mut child = tokio::process::Command::from(are())
        .arg("serve")
        .arg("--config")
        .arg(&policy)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start are serve");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let messages = [
        INITIALIZE,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"text.slugify","arguments":{"text":"Raw Stdio"}}}"#,
    ];
    for message in messages {
        stdin
            .write_all(format!("{message}\n").as_bytes())
            .await
            .expect("write");
    }
    let mut answers = Vec::new();
    while answers.len() < 2 {
        let line = tokio::time::timeout(PATIENCE, stdout.next_line())
            .await
            .expect("an answer")
            .expect("read")
            .expect("a line");
        answers.push(serde_json::from_str::<Value>(&line).expect("JSON-RPC"));
    }
    assert_eq!(answers[0]["result"]["serverInfo"]["name"], "are");
    assert_eq!(
        answers[1]["result"]["structuredContent"],
        json!({"result": "raw-stdio"})
    );
    // End of input ends the session and the process.
    drop(stdin);
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .expect("are serve should exit when its client goes")
        .expect("wait");
    assert!(status.success(), "{status}");
}

/// A field of `/proc/PID/status` in bytes (`VmRSS`, `VmHWM`).
fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Four concurrent calls whose results are a few MiB in linear memory but hundreds of MiB as host values and
/// JSON: each is refused as over `max_output` before the host builds it, and the server's peak RSS grows by no
/// more than a generous multiple of `limits.memory + 2 × max_output` per call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_amplification_stays_within_the_call_limits() {
    const MIB: u64 = 1 << 20;
    let (memory, max_output) = (16 * MIB, MIB);
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        &format!(
            "[component.amplify]\nsource = {}\nlimits.memory = \"16 MiB\"\nlimits.max_output = \"1 MiB\"\n",
            guest_source("hostile-amplify")
        ),
    );
    let serve = Serve::start(Transport::Http, &policy).await;
    let client = serve.connect().await;
    // Compile and run the component once, then measure from what the server holds now.
    assert_eq!(
        client.ok("amplify.bools", json!({"count": 2})).await,
        json!([true, true])
    );
    let pid = serve.pid();
    // Writing 5 to clear_refs resets the peak (VmHWM) to the current RSS (Linux 4.0+).
    let reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
    let baseline = proc_status_bytes(pid, if reset { "VmRSS" } else { "VmHWM" });
    let attacks = [
        ("amplify.records", json!({"count": 100_000})),
        ("amplify.flag-sets", json!({"count": 100_000})),
        ("amplify.bools", json!({"count": 3_000_000})),
        ("amplify.escapes", json!({"kib": 8192})),
    ];
    let started = Instant::now();
    for _round in 0..2 {
        let mut calls = tokio::task::JoinSet::new();
        for (name, args) in attacks.clone() {
            let peer = client.peer();
            calls.spawn(async move {
                let result = peer
                    .call_tool(params(name, args))
                    .await
                    .expect("tools/call");
                (name, error_of(name, &result))
            });
        }
        while let Some(done) = calls.join_next().await {
            let (name, message) = done.expect("join");
            for part in ["output limit exceeded", "1.0 MiB", "limits.max_output"] {
                assert!(message.contains(part), "{name}: {message:?} lacks {part:?}");
            }
        }
    }
    let elapsed = started.elapsed();
    let peak = proc_status_bytes(pid, "VmHWM");
    let grown = peak.saturating_sub(baseline);
    let per_call = memory + 2 * max_output;
    eprintln!(
        "result amplification: baseline {} MiB, peak {} MiB (+{} MiB; bound 4 × {} MiB × 2), {elapsed:?}",
        baseline / MIB,
        peak / MIB,
        grown / MIB,
        per_call / MIB
    );
    assert!(
        grown <= 4 * per_call * 2,
        "peak RSS grew by {} MiB under four amplification calls, over 4 × {} MiB × 2",
        grown / MIB,
        per_call / MIB
    );
    // The server still serves, the same component included.
    assert_eq!(
        client.ok("amplify.nones", json!({"count": 2})).await,
        json!([null, null])
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_health_and_metrics() {
    let dir = tempdir();
    let serve = Serve::start(Transport::Http, &text_policy(dir.path())).await;
    let (status, _, body) = http_request(serve.addr(), "GET", "/healthz", &[], None).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let client = serve.connect().await;
    client.ok("text.word-count", json!({"text": "a b"})).await;
    client.ok("text.word-count", json!({"text": "c"})).await;
    client
        .tool_error("text.find", json!({"pattern": "(", "text": "x"}))
        .await;
    client.tool_error("loop.spin", json!({})).await;
    let (status, head, metrics) = http_request(serve.addr(), "GET", "/metrics", &[], None).await;
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    let count = |name: &str| {
        sample(&metrics, name).unwrap_or_else(|| panic!("no sample {name} in\n{metrics}"))
    };
    assert_eq!(
        count(r#"are_tool_calls_total{tool="text.word-count",outcome="ok"}"#),
        2.0
    );
    assert_eq!(
        count(r#"are_tool_calls_total{tool="text.find",outcome="err"}"#),
        1.0
    );
    assert_eq!(
        count(r#"are_tool_calls_total{tool="loop.spin",outcome="fuel_exhausted"}"#),
        1.0
    );
    assert_eq!(
        count(r#"are_tool_errors_total{tool="loop.spin",outcome="fuel_exhausted"}"#),
        1.0
    );
    assert!(count(r#"are_tool_fuel_consumed_total{tool="text.word-count"}"#) > 0.0);
    assert!(count(r#"are_tool_fuel_consumed_total{tool="loop.spin"}"#) >= 1_000_000.0);
    assert_eq!(
        count(r#"are_tool_call_duration_seconds_count{tool="text.word-count"}"#),
        2.0
    );
    assert!(count(r#"are_tool_call_duration_seconds_sum{tool="text.word-count"}"#) > 0.0);
    assert_eq!(
        count(r#"are_tool_call_duration_seconds_bucket{le="+Inf",tool="text.word-count"}"#),
        2.0,
    );
    assert!(metrics.contains("# TYPE are_tool_call_duration_seconds histogram"));
    assert_eq!(count("are_session_instances"), 0.0);
    client.close().await;
}

/// Session instances that hoard every descriptor they can get and keep them between calls, next to another
/// tenant reading a file, in a server allowed 512 descriptors: each hog stops at `limits.open_files` and
/// `limits.connections` with the WASI errors of a full descriptor table, and every call of the other tenant
/// succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descriptor_hogs_do_not_starve_other_tenants() {
    const NOFILE: u64 = 512;
    const HOGS: usize = 4;
    const VICTIM_CALLS: usize = 64;
    let dir = tempdir();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/notes.txt"), "the victim's notes").unwrap();
    let mount = r#"allow.fs = [{ host = "data", guest = "/data" }]"#;
    let policy = write_policy(
        dir.path(),
        &format!(
            "[component.hog]\nsource = {hog}\nmode = \"session\"\n{mount}\n\
             allow.sockets = [\"127.0.0.1:9\"]\n\n\
             [component.files]\nsource = {files}\nmax_concurrency = 8\n{mount}\n",
            hog = guest_source("hostile-handles"),
            files = guest_source("files"),
        ),
    );
    let serve = Serve::http_with_nofile(&policy, NOFILE).await;
    let mut hogs = Vec::new();
    for _ in 0..HOGS {
        let hog = serve.connect().await;
        let sockets = hog
            .ok("hog.sockets", json!({"count": 0, "hold-ms": 0}))
            .await;
        let files = hog
            .ok(
                "hog.files",
                json!({"dir": "/data", "file": "notes.txt", "count": 0, "hold-ms": 0}),
            )
            .await;
        hogs.push((hog, sockets, files));
    }

    // Every hog now holds what it got, in its session instance, while the victim calls.
    let victim = serve.connect().await;
    let mut calls = tokio::task::JoinSet::new();
    for lane in 0..4 {
        let peer = victim.peer();
        calls.spawn(async move {
            let mut succeeded = 0;
            for _ in 0..VICTIM_CALLS / 4 {
                let read = params("files.read", json!({"path": "/data/notes.txt"}));
                match peer.call_tool(read).await {
                    Ok(result)
                        if result.is_error != Some(true)
                            && text_of(&result) == "the victim's notes" =>
                    {
                        succeeded += 1
                    }
                    Ok(result) => eprintln!("victim lane {lane}: {}", text_of(&result)),
                    Err(e) => eprintln!("victim lane {lane}: {e}"),
                }
            }
            succeeded
        });
    }
    let succeeded: usize = calls.join_all().await.into_iter().sum();
    eprintln!("victim calls next to {HOGS} descriptor hogs: {succeeded}/{VICTIM_CALLS} succeeded");
    assert_eq!(succeeded, VICTIM_CALLS, "stderr:\n{}", serve.stderr());

    for (hog, sockets, files) in hogs {
        assert_eq!(
            sockets,
            json!({"held": 16, "refused": "new-socket-limit"}),
            "limits.connections"
        );
        assert_eq!(
            files,
            json!({"held": 64, "refused": "insufficient-memory"}),
            "limits.open_files"
        );
        // The instance still holds them: the next open is refused at once.
        let again = hog
            .ok(
                "hog.files",
                json!({"dir": "/data", "file": "notes.txt", "count": 1, "hold-ms": 0}),
            )
            .await;
        assert_eq!(again, json!({"held": 0, "refused": "insufficient-memory"}));
        hog.close().await;
    }
    victim.close().await;
}

// ---------------------------------------------------------------------------------------------------------------
// Bounded server state: sessions, connections, request sizes, and the checks on every endpoint.

/// The `text` component, with `serve` as the `[serve]` table.
fn text_policy_serving(dir: &Path, serve: &str) -> PathBuf {
    write_policy(
        dir,
        &format!(
            "[serve]\n{serve}\n\n[component.text]\nsource = {}\n\n[component.kv]\nsource = {}\nmode = \"session\"\n",
            guest_source("text"),
            guest_source("kv")
        ),
    )
}

/// Open a session with a raw `initialize`; its `Mcp-Session-Id`.
async fn raw_session(addr: SocketAddr) -> String {
    let (status, head, body) =
        http_request(addr, "POST", "/mcp", &POST_HEADERS, Some(INITIALIZE)).await;
    assert_eq!(status, 200, "{head}\n{body}");
    let id = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("mcp-session-id")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Mcp-Session-Id in {head}"));
    let (status, _) = raw_post(
        addr,
        &id,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )
    .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_sessions_are_bounded_evicting_the_least_recently_used_idle_one() {
    let dir = tempdir();
    let policy = text_policy_serving(
        dir.path(),
        "max_sessions = 2\nconnection_idle_timeout = \"3s\"",
    );
    let serve = Serve::start(Transport::Http, &policy).await;
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
    let dir = tempdir();
    let policy = text_policy_serving(
        dir.path(),
        "header_read_timeout = \"1s\"\nconnection_idle_timeout = \"3s\"\nmax_request_size = \"64 KiB\"",
    );
    let serve = Serve::start(Transport::Http, &policy).await;
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
    let dir = tempdir();
    let serve = Serve::start(Transport::Http, &text_policy(dir.path())).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_answers_an_oversized_request_and_goes_on() {
    let dir = tempdir();
    let policy = text_policy_serving(dir.path(), "max_request_size = \"64 KiB\"");
    let mut child = tokio::process::Command::from(are())
        .arg("serve")
        .arg("--config")
        .arg(&policy)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start are serve");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"text.slugify","arguments":{{"text":"{}"}}}}}}"#,
        "x".repeat(4 * 1024 * 1024)
    );
    let messages = [
        INITIALIZE.to_string(),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_string(),
        huge,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"text.slugify","arguments":{"text":"Still Here"}}}"#.to_string(),
    ];
    for message in messages {
        stdin
            .write_all(format!("{message}\n").as_bytes())
            .await
            .expect("write");
    }
    let mut answers = Vec::new();
    while answers.len() < 3 {
        let line = tokio::time::timeout(PATIENCE, stdout.next_line())
            .await
            .expect("an answer for every message")
            .expect("read")
            .expect("a line");
        answers.push(serde_json::from_str::<Value>(&line).expect("JSON-RPC"));
    }
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
    drop(stdin);
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .expect("are serve should exit when its client goes")
        .expect("wait");
    assert!(status.success(), "{status}");
}

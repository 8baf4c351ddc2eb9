//! The Streamable HTTP transport: `are serve --http 127.0.0.1:0`, and independent MCP sessions, each on its own
//! HTTP/1.1 connection (hyper's client), each POSTing one request at a time to `/mcp` and reading the response
//! from the `data:` lines of the SSE body (or a plain JSON body, if the server answers with one).

use super::{
    Client, PROTOCOL_VERSION, Protocol, START_TIMEOUT, STATELESS_VERSION, StderrTail,
    client_request_line, initialize_params, request_line, stop_child,
};
use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::process::Stdio;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// `are serve` on Streamable HTTP, listening.
pub struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: StderrTail,
}

impl Server {
    /// Start the server `argv` (listening on a loopback port) and wait for the address it prints.
    pub async fn start(argv: &[OsString]) -> anyhow::Result<Server> {
        let (exe, args) = argv.split_first().context("an empty command line")?;
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", exe.to_string_lossy()))?;
        let stderr = child
            .stderr
            .take()
            .context("the child's stderr is missing")?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut tx = Some(tx);
        let stderr = StderrTail::spawn(stderr, move |line| {
            if let Some(addr) = listening_address(line)
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(addr);
            }
        });
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr,
        };
        match tokio::time::timeout(START_TIMEOUT, rx).await {
            Ok(Ok(addr)) => {
                server.addr = addr;
                Ok(server)
            }
            Ok(Err(_)) => {
                server.stop().await;
                Err(server.explain(anyhow::anyhow!(
                    "`are serve --http` ended without listening"
                )))
            }
            Err(_) => {
                server.stop().await;
                Err(server.explain(anyhow::anyhow!(
                    "`are serve --http` did not listen within {}",
                    humantime::format_duration(START_TIMEOUT)
                )))
            }
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// A new client on a connection of its own: an MCP session, or a stateless client.
    pub async fn session(&self, protocol: Protocol) -> anyhow::Result<Session> {
        Session::open(self.addr, protocol).await
    }

    /// `error` with what the server printed on stderr.
    pub fn explain(&self, error: anyhow::Error) -> anyhow::Error {
        self.stderr.explain(error)
    }

    /// Interrupt the server (as Ctrl-C would), and kill it if it lingers.
    pub async fn stop(&mut self) {
        stop_child(&mut self.child, true).await;
        self.stderr.finish().await;
    }
}

/// One MCP session over one HTTP/1.1 connection.
pub struct Session {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
    session_id: Option<HeaderValue>,
    protocol_version: HeaderValue,
    /// Every request carries `_meta` and the 2026-07-28 headers; there is no session.
    stateless: bool,
    next_id: u64,
    connection: JoinHandle<()>,
}

impl Session {
    /// Connect; in a session, `initialize` (keeping the `Mcp-Session-Id`) and send `notifications/initialized`.
    async fn open(addr: SocketAddr, protocol: Protocol) -> anyhow::Result<Session> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake failed")?;
        let mut session = Session {
            sender,
            host: HeaderValue::from_str(&addr.to_string())?,
            session_id: None,
            protocol_version: HeaderValue::from_static(PROTOCOL_VERSION),
            stateless: protocol == Protocol::Stateless,
            next_id: 1,
            connection: tokio::spawn(async move {
                let _ = connection.await;
            }),
        };
        if session.stateless {
            session.protocol_version = HeaderValue::from_static(STATELESS_VERSION);
            return Ok(session);
        }
        let (status, headers, body) = session
            .post(request_line(0, "initialize", &initialize_params()), None)
            .await
            .map_err(anyhow::Error::msg)?;
        ensure!(
            status == StatusCode::OK,
            "initialize: HTTP {status}: {}",
            String::from_utf8_lossy(&body).trim()
        );
        session.session_id = Some(
            headers
                .get("mcp-session-id")
                .cloned()
                .context("initialize: the response has no Mcp-Session-Id header")?,
        );
        let init = response_for(&headers, &body, 0).map_err(anyhow::Error::msg)?;
        let Some(version) = init["result"]["protocolVersion"].as_str() else {
            bail!("initialize failed: {init}");
        };
        session.protocol_version = HeaderValue::from_str(version)?;
        let (status, _, body) = session
            .post(
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_string(),
                None,
            )
            .await
            .map_err(anyhow::Error::msg)?;
        ensure!(
            status.is_success(),
            "notifications/initialized: HTTP {status}: {}",
            String::from_utf8_lossy(&body).trim()
        );
        Ok(session)
    }

    /// POST one JSON-RPC message to `/mcp` and read the whole response; a stateless request names its
    /// `method` and `name` in the `Mcp-Method` and `Mcp-Name` headers.
    async fn post(
        &mut self,
        body: String,
        route: Option<(&str, Option<&str>)>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), String> {
        let mut request = http::Request::post("/mcp")
            .header(HOST, &self.host)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream");
        if let Some(id) = &self.session_id {
            request = request
                .header("mcp-session-id", id)
                .header("mcp-protocol-version", &self.protocol_version);
        }
        if self.stateless {
            request = request.header("mcp-protocol-version", &self.protocol_version);
            if let Some((method, name)) = route {
                request = request.header("mcp-method", method);
                if let Some(name) = name {
                    request = request.header("mcp-name", name);
                }
            }
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        self.sender
            .ready()
            .await
            .map_err(|e| format!("the connection closed: {e}"))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| format!("the request failed: {e}"))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("reading the response failed: {e}"))?
            .to_bytes();
        Ok((parts.status, parts.headers, body))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Client for Session {
    async fn request(
        &mut self,
        method: &'static str,
        name: Option<&str>,
        params: &str,
    ) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let line = client_request_line(self.stateless, id, method, params);
        let (status, headers, body) = self.post(line, Some((method, name))).await?;
        if status != StatusCode::OK {
            return Err(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&body).trim()
            ));
        }
        response_for(&headers, &body, id)
    }
}

/// The JSON-RPC response with `id` in a response body: the body itself when it is JSON, else the SSE event
/// whose data is that response.
fn response_for(headers: &HeaderMap, body: &[u8], id: u64) -> Result<Value, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the response is not UTF-8".to_string())?;
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return serde_json::from_str(text).map_err(|e| format!("the response is not JSON: {e}"));
    }
    find_response(text, id)
}

/// The first SSE event whose data is a JSON-RPC response (a `result` or an `error`) with `id`.
fn find_response(sse: &str, id: u64) -> Result<Value, String> {
    for data in sse_data(sse) {
        let Ok(message) = serde_json::from_str::<Value>(&data) else {
            continue;
        };
        let is_response = message.get("result").is_some() || message.get("error").is_some();
        if is_response && message.get("id").and_then(Value::as_u64) == Some(id) {
            return Ok(message);
        }
    }
    Err(format!(
        "no response with id {id} in the event stream: {}",
        sse.trim()
    ))
}

/// The data of each event of a `text/event-stream` body, in order, skipping events without data (such as the
/// priming event a server sends first). Lines of one event's data are joined with `\n`, as the SSE
/// specification says; an event at the very end without its blank line is kept too.
fn sse_data(body: &str) -> Vec<String> {
    let mut events = Vec::new();
    let mut data: Option<String> = None;
    let body = body.replace("\r\n", "\n").replace('\r', "\n");
    for line in body.split('\n') {
        if line.is_empty() {
            if let Some(d) = data.take()
                && !d.is_empty()
            {
                events.push(d);
            }
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        if field == "data" {
            match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_string()),
            }
        }
    }
    if let Some(d) = data
        && !d.is_empty()
    {
        events.push(d);
    }
    events
}

/// The address in `are serve: N tools at http://ADDR/mcp (…)`.
fn listening_address(line: &str) -> Option<SocketAddr> {
    let rest = line.strip_prefix("are serve: ")?;
    let after = &rest[rest.find("http://")? + "http://".len()..];
    after[..after.find("/mcp")?].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `are serve` (rmcp 3.11) sends for a `tools/call`: a priming event, then the response.
    const RMCP_BODY: &str = "data: \nid: 0/0\nretry: 3000\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"content\":[],\"isError\":false}}\nid: 1/0\n\n";

    #[test]
    fn parses_sse_data() {
        assert_eq!(
            sse_data(RMCP_BODY),
            vec![r#"{"jsonrpc":"2.0","id":2,"result":{"content":[],"isError":false}}"#]
        );
        // Several data lines make one event; CRLF and CR line ends; comments and other fields are ignored;
        // `data:` without a space keeps its value whole; the last event may lack its blank line.
        let body = ": keep-alive\r\nevent: message\r\ndata: {\"a\":\r\ndata:  1}\r\n\r\ndata:x\rdata\r\rdata: last";
        assert_eq!(sse_data(body), vec!["{\"a\":\n 1}", "x\n", "last"]);
        assert!(sse_data("").is_empty());
        assert!(sse_data("data: \n\n").is_empty());
    }

    #[test]
    fn finds_the_response_by_id() {
        let v = find_response(RMCP_BODY, 2).unwrap();
        assert_eq!(v["result"]["isError"], false);
        assert!(find_response(RMCP_BODY, 3).is_err());
        // Notifications and requests from the server come before the response on the same stream.
        let body = "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\n\
                    data: {\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\"}\n\n\
                    data: {\"jsonrpc\":\"2.0\",\"id\":5,\"error\":{\"code\":-32602,\"message\":\"no\"}}\n\n";
        assert_eq!(find_response(body, 5).unwrap()["error"]["code"], -32602);
    }

    #[test]
    fn reads_plain_json_bodies() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let v = response_for(&headers, br#"{"jsonrpc":"2.0","id":1,"result":{}}"#, 1).unwrap();
        assert_eq!(v["id"], 1);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        assert_eq!(
            response_for(&headers, RMCP_BODY.as_bytes(), 2).unwrap()["id"],
            2
        );
    }

    #[test]
    fn parses_the_listening_line() {
        assert_eq!(
            listening_address(
                "are serve: 7 tools at http://127.0.0.1:36317/mcp (metrics at /metrics)"
            ),
            Some(SocketAddr::from(([127, 0, 0, 1], 36317)))
        );
        assert_eq!(
            listening_address("are serve: 1 tools at http://[::1]:8080/mcp"),
            Some("[::1]:8080".parse().unwrap())
        );
        assert_eq!(listening_address("WARN something at http://x/mcp"), None);
    }
}

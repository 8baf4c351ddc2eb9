//! The stdio transport: one `are serve` child, JSON-RPC messages as lines on its stdin and stdout. The logical
//! clients share that one session: each keeps one request in flight, and responses find their request by id.

use super::{
    Client, Protocol, START_TIMEOUT, StderrTail, client_request_line, initialize_params, stop_child,
};
use anyhow::{Context as _, bail};
use serde_json::Value;
use std::collections::HashMap;
use std::ffi::OsString;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, BufWriter};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Requests waiting for their response, by id; `None` once the server's stdout has closed.
type Pending = Arc<Mutex<Option<HashMap<u64, oneshot::Sender<Value>>>>>;

/// `are serve` on stdio, initialized.
pub struct Server {
    child: Child,
    conn: Arc<Conn>,
    writer: JoinHandle<()>,
    reader: JoinHandle<()>,
    stderr: StderrTail,
}

/// The session the clients share.
struct Conn {
    lines: mpsc::UnboundedSender<Vec<u8>>,
    pending: Pending,
    next_id: AtomicU64,
    /// Requests carry the stateless `_meta` (2026-07-28) instead of living in an initialized session.
    stateless: bool,
}

/// One logical client of the shared session.
pub struct StdioClient(Arc<Conn>);

impl Server {
    /// Start the server `argv` and complete the MCP handshake (a session's `initialize`, or for stateless
    /// clients a `server/discover` that shows it answers).
    pub async fn start(argv: &[OsString], protocol: Protocol) -> anyhow::Result<Server> {
        let (exe, args) = argv.split_first().context("an empty command line")?;
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", exe.to_string_lossy()))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            bail!("the child's pipes are missing");
        };
        let (lines, outgoing) = mpsc::unbounded_channel();
        let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));
        let mut server = Server {
            child,
            conn: Arc::new(Conn {
                lines,
                pending: pending.clone(),
                next_id: AtomicU64::new(1),
                stateless: protocol == Protocol::Stateless,
            }),
            writer: tokio::spawn(write_lines(stdin, outgoing)),
            reader: tokio::spawn(read_responses(stdout, pending)),
            stderr: StderrTail::spawn(stderr, |_| {}),
        };
        let handshake = async {
            if protocol == Protocol::Stateless {
                let discover = tokio::time::timeout(
                    START_TIMEOUT,
                    server.client().request("server/discover", None, "{}"),
                )
                .await
                .context("the server did not answer server/discover")?
                .map_err(anyhow::Error::msg)?;
                if discover.get("result").is_none() {
                    bail!("server/discover failed: {discover}");
                }
                return Ok(());
            }
            let init = tokio::time::timeout(
                START_TIMEOUT,
                server
                    .client()
                    .request("initialize", None, &initialize_params()),
            )
            .await
            .context("the server did not answer initialize")?
            .map_err(anyhow::Error::msg)?;
            if init.get("result").is_none() {
                bail!("initialize failed: {init}");
            }
            server
                .conn
                .send(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n".to_vec())
                .map_err(anyhow::Error::msg)
        };
        let handshake = handshake.await;
        match handshake {
            Ok(()) => Ok(server),
            Err(e) => {
                server.stop().await;
                Err(server.explain(e))
            }
        }
    }

    /// A new logical client on the session.
    pub fn client(&self) -> StdioClient {
        StdioClient(self.conn.clone())
    }

    /// The child's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// `error` with what the server printed on stderr.
    pub fn explain(&self, error: anyhow::Error) -> anyhow::Error {
        self.stderr.explain(error)
    }

    /// Close the server's stdin (it exits at end of input), and kill it if it lingers.
    pub async fn stop(&mut self) {
        self.writer.abort();
        let _ = (&mut self.writer).await;
        stop_child(&mut self.child, false).await;
        self.stderr.finish().await;
        self.reader.abort();
    }
}

impl Conn {
    fn send(&self, line: Vec<u8>) -> Result<(), String> {
        self.lines
            .send(line)
            .map_err(|_| "the server's stdin is closed".to_string())
    }
}

impl Client for StdioClient {
    async fn request(
        &mut self,
        method: &'static str,
        _name: Option<&str>,
        params: &str,
    ) -> Result<Value, String> {
        let conn = &self.0;
        let id = conn.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        match conn
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            Some(pending) => pending.insert(id, tx),
            None => return Err("the server closed its stdout".into()),
        };
        let mut line = client_request_line(conn.stateless, id, method, params).into_bytes();
        line.push(b'\n');
        conn.send(line)?;
        rx.await
            .map_err(|_| "the server closed its stdout before answering".to_string())
    }
}

/// Write queued lines, flushing whenever the queue runs dry (so concurrent requests share a write).
async fn write_lines(stdin: ChildStdin, mut lines: mpsc::UnboundedReceiver<Vec<u8>>) {
    let mut out = BufWriter::new(stdin);
    while let Some(line) = lines.recv().await {
        if out.write_all(&line).await.is_err() {
            return;
        }
        while let Ok(line) = lines.try_recv() {
            if out.write_all(&line).await.is_err() {
                return;
            }
        }
        if out.flush().await.is_err() {
            return;
        }
    }
}

/// Hand each response to the request with its id; skip notifications and requests from the server.
async fn read_responses(stdout: ChildStdout, pending: Pending) {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            tracing::debug!("are serve printed a line that is not JSON: {line}");
            continue;
        };
        if message.get("method").is_some() {
            continue;
        }
        let Some(id) = message.get("id").and_then(Value::as_u64) else {
            continue;
        };
        let waiter = pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .and_then(|p| p.remove(&id));
        if let Some(waiter) = waiter {
            let _ = waiter.send(message);
        }
    }
    // Wake every waiter with an error, and refuse new requests.
    pending.lock().unwrap_or_else(|e| e.into_inner()).take();
}

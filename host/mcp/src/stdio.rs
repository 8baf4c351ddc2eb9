//! MCP over stdin/stdout with a bound on each message: a line longer than `[serve] max_request_size` is answered
//! with a JSON-RPC error (`-32600`, `id` null, as the id is in the part not read) and skipped, without being
//! held in memory, and the server goes on with the next line. rmcp's own line transport drops such a line
//! silently, which leaves the client waiting for an answer that never comes.
//!
//! With [`BoundedLines::answering_calls`], a line that is a `tools/call` the server can answer directly (see
//! [`super::direct`]) never reaches rmcp: it runs on a task of its own and its answer is written here. Such calls
//! are cancelled by the client's `notifications/cancelled`, and the end of input waits for them as rmcp waits
//! for its own.

use super::direct::ToolCallRequest;
use super::lock;
use super::server::{McpServer, STDIO_SESSION};
use bytes::{Buf as _, BytesMut};
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, ProtocolVersion, RequestId, ServerJsonRpcMessage,
    ServerResult,
};
use rmcp::transport::Transport;
use rmcp::transport::async_rw::{AsyncRwTransport, JsonRpcMessageCodec, JsonRpcMessageCodecError};
use rmcp::{ErrorData, RoleServer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite};
use tokio_util::codec::Decoder as _;
use tokio_util::task::TaskTracker;

/// Bytes asked of the reader at a time: what is buffered beyond the limit while skipping an oversized line.
const READ_CHUNK: usize = 64 * 1024;

/// Writes answers, from rmcp and from the calls answered here; its own reading side is never used.
type Writer<W> = Arc<tokio::sync::Mutex<AsyncRwTransport<RoleServer, tokio::io::Empty, W>>>;

/// Send `message` on `writer`, after what was sent before.
fn send_on<W: AsyncWrite + Send + Unpin + 'static>(
    writer: &Writer<W>,
    message: ServerJsonRpcMessage,
) -> impl Future<Output = std::io::Result<()>> + Send + 'static {
    let writer = writer.clone();
    async move {
        // rmcp's writer queues the message at once and returns the write as a future of its own.
        let send = writer.lock().await.send(message);
        send.await
    }
}

/// Newline-delimited JSON-RPC on a reader and a writer, each incoming message at most `max_line` bytes.
pub struct BoundedLines<R, W: AsyncWrite + Send + Unpin + 'static> {
    reader: R,
    buffer: BytesMut,
    codec: JsonRpcMessageCodec<ClientJsonRpcMessage>,
    max_line: usize,
    /// `buffer` starts at the start of a line (the codec is not halfway through one, nor skipping one).
    at_line_start: bool,
    /// The codec is skipping an oversized line.
    skipping: bool,
    writer: Writer<W>,
    direct: Option<DirectStdioCalls>,
}

/// The `tools/call`s answered without rmcp.
struct DirectStdioCalls {
    server: Arc<McpServer>,
    /// The revision the session's `initialize` settled on, once answered.
    negotiated: Option<ProtocolVersion>,
    /// Calls running, by request id, for `notifications/cancelled`.
    running: Arc<Mutex<HashMap<RequestId, tokio::task::AbortHandle>>>,
    tasks: TaskTracker,
}

impl<R, W> BoundedLines<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    /// Read messages from `reader` and write answers to `writer`; a message may be `max_line` bytes long.
    pub fn new(reader: R, writer: W, max_line: usize) -> Self {
        BoundedLines {
            reader,
            buffer: BytesMut::new(),
            codec: JsonRpcMessageCodec::new_with_max_length(max_line),
            max_line,
            at_line_start: true,
            skipping: false,
            writer: Arc::new(tokio::sync::Mutex::new(AsyncRwTransport::new_server(
                tokio::io::empty(),
                writer,
            ))),
            direct: None,
        }
    }

    /// Answer the `tools/call`s that `server` can answer directly here, without rmcp.
    #[must_use]
    pub fn answering_calls(mut self, server: Arc<McpServer>) -> Self {
        self.direct = Some(DirectStdioCalls {
            server,
            negotiated: None,
            running: Arc::default(),
            tasks: TaskTracker::new(),
        });
        self
    }

    /// Take the first line of `buffer` if it is a `tools/call` answered here, and start it.
    fn take_direct_call(&mut self) -> bool {
        let Some(direct) = &self.direct else {
            return false;
        };
        let Some(end) = self.buffer.iter().position(|&b| b == b'\n') else {
            return false;
        };
        if end > self.max_line {
            return false;
        }
        let Ok(call) = serde_json::from_slice::<ToolCallRequest>(&self.buffer[..end]) else {
            return false;
        };
        let Some(planned) = call.plan(&direct.server, direct.negotiated.as_ref()) else {
            return false;
        };
        self.buffer.advance(end + 1);
        let id = call.id.clone();
        let server = direct.server.clone();
        let writer = self.writer.clone();
        let running = direct.running.clone();
        let finished_id = id.clone();
        // Held until the call is recorded, so that a call finishing at once cannot remove its entry first.
        let mut running_calls = lock(&direct.running);
        let task = direct.tasks.spawn(async move {
            let (log, response) = call.answer(&server, planned, Some(STDIO_SESSION)).await;
            // Answered (or past cancelling): a `notifications/cancelled` from now on is too late.
            lock(&running).remove(&finished_id);
            for message in log.into_iter().chain([response]) {
                if let Err(e) = send_on(&writer, message).await {
                    tracing::debug!("cannot write a tools/call answer to stdout: {e}");
                }
            }
        });
        running_calls.insert(id, task.abort_handle());
        true
    }

    /// Note the revision the session's `initialize` settled on, when rmcp sends its result.
    fn observe_sent(&mut self, message: &ServerJsonRpcMessage) {
        if let (Some(direct), ServerJsonRpcMessage::Response(response)) =
            (&mut self.direct, message)
            && let ServerResult::InitializeResult(init) = &response.result
        {
            direct.negotiated = Some(init.protocol_version.clone());
        }
    }

    /// Stop a call running here that the client cancels.
    fn observe_received(&self, message: &ClientJsonRpcMessage) {
        if let (Some(direct), ClientJsonRpcMessage::Notification(notification)) =
            (&self.direct, message)
            && let ClientNotification::CancelledNotification(cancelled) = &notification.notification
            && let Some(id) = &cancelled.params.request_id
            && let Some(call) = lock(&direct.running).remove(id)
        {
            // Cancelled: no answer is sent (the client gave up on it).
            call.abort();
        }
    }

    /// Answer a message that could not be taken. The send runs on its own task, so that `receive` being
    /// cancelled (rmcp polls it in a `select!`) cannot lose the answer halfway.
    fn answer_error(&mut self, error: ErrorData) {
        let send = send_on(&self.writer, ServerJsonRpcMessage::error(error, None));
        tokio::spawn(async move {
            if let Err(e) = send.await {
                tracing::debug!("cannot answer a refused stdio message: {e}");
            }
        });
    }
}

impl<R, W> Transport<RoleServer> for BoundedLines<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.observe_sent(&item);
        send_on(&self.writer, item)
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        loop {
            // Decoding and taking a direct call are synchronous, and reading into `buffer` is cancel-safe, so a
            // cancelled `receive` loses nothing: the next call resumes with what was read.
            if self.at_line_start && self.take_direct_call() {
                continue;
            }
            match self.codec.decode(&mut self.buffer) {
                Ok(Some(message)) => {
                    self.at_line_start = true;
                    self.skipping = false;
                    self.observe_received(&message);
                    return Some(message);
                }
                // Nothing left, or the start of a line still coming (which the codec has begun to scan).
                Ok(None) => self.at_line_start = !self.skipping && self.buffer.is_empty(),
                Err(JsonRpcMessageCodecError::MaxLineLengthExceeded) => {
                    self.at_line_start = false;
                    self.skipping = true;
                    tracing::warn!(
                        max_request_size = self.max_line,
                        "refused a stdio message longer than [serve] max_request_size"
                    );
                    self.answer_error(ErrorData::invalid_request(
                        format!(
                            "message too large: more than {} bytes ([serve] max_request_size); send less, \
                             or raise the limit in the server's policy",
                            self.max_line
                        ),
                        None,
                    ));
                    continue;
                }
                Err(JsonRpcMessageCodecError::Serde(e)) => {
                    // The codec took the whole line.
                    self.at_line_start = true;
                    self.skipping = false;
                    // Like rmcp: JSON of the wrong shape is an invalid request; text that is not JSON is
                    // ignored, since answering it can start an error storm with a peer that echoes.
                    if e.is_data() {
                        tracing::debug!("invalid JSON-RPC message on stdio: {e}");
                        self.answer_error(ErrorData::invalid_request(
                            format!("not a JSON-RPC message: {e}"),
                            None,
                        ));
                    } else {
                        tracing::debug!("ignoring a stdio line that is not JSON: {e}");
                    }
                    continue;
                }
                Err(e) => {
                    tracing::error!("cannot read MCP messages from stdin: {e}");
                    return None;
                }
            }
            self.buffer.reserve(READ_CHUNK);
            match self.reader.read_buf(&mut self.buffer).await {
                // End of input; an unterminated last line is an incomplete message, so there is nothing to take.
                // The calls running here are answered first, as rmcp answers its own.
                Ok(0) => {
                    if let Some(direct) = &self.direct {
                        direct.tasks.close();
                        direct.tasks.wait().await;
                    }
                    return None;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!("cannot read MCP messages from stdin: {e}");
                    return None;
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.writer.lock().await.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::BoundedLines;
    use rmcp::model::ClientJsonRpcMessage;
    use rmcp::transport::Transport;
    use serde_json::Value;
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

    const LIST: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#;

    #[tokio::test]
    async fn an_oversized_line_is_answered_skipped_and_never_buffered() {
        let limit = 1024;
        let (mut client_in, server_in) = tokio::io::duplex(4096);
        let (server_out, client_out) = tokio::io::duplex(4096);
        let mut transport = BoundedLines::new(server_in, server_out, limit);
        let writer = tokio::spawn(async move {
            // 8 MiB in one line, 8192 times the limit, then a request that fits.
            let chunk = vec![b'x'; 64 * 1024];
            client_in
                .write_all(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"a":""#)
                .await?;
            for _ in 0..128 {
                client_in.write_all(&chunk).await?;
            }
            client_in.write_all(b"\"}}\n").await?;
            client_in.write_all(format!("{LIST}\n").as_bytes()).await?;
            std::io::Result::Ok(client_in)
        });
        let message = transport.receive().await.expect("the next message");
        let ClientJsonRpcMessage::Request(request) = message else {
            panic!("expected a request, got {message:?}");
        };
        assert_eq!(request.id, rmcp::model::RequestId::Number(7));
        assert!(
            transport.buffer.capacity() <= limit + 2 * super::READ_CHUNK,
            "held {} bytes for a {limit}-byte limit",
            transport.buffer.capacity()
        );
        let mut answers = BufReader::new(client_out).lines();
        let answer: Value =
            serde_json::from_str(&answers.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(answer["id"], Value::Null, "{answer}");
        assert_eq!(answer["error"]["code"], -32600, "{answer}");
        let text = answer["error"]["message"].as_str().unwrap();
        assert!(
            text.contains("more than 1024 bytes") && text.contains("[serve] max_request_size"),
            "{text}"
        );
        // End of input ends the session.
        drop(writer.await.unwrap().unwrap());
        assert!(transport.receive().await.is_none());
    }

    #[tokio::test]
    async fn a_line_at_the_limit_is_taken() {
        let (mut client_in, server_in) = tokio::io::duplex(4096);
        let (server_out, _client_out) = tokio::io::duplex(4096);
        let mut transport = BoundedLines::new(server_in, server_out, LIST.len());
        client_in
            .write_all(format!("{LIST}\n").as_bytes())
            .await
            .unwrap();
        assert!(matches!(
            transport.receive().await,
            Some(ClientJsonRpcMessage::Request(_))
        ));
    }
}

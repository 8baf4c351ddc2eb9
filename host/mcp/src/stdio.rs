//! MCP over stdin/stdout with a bound on each message: a line longer than `[serve] max_request_size` is answered
//! with a JSON-RPC error (`-32600`, `id` null, as the id is in the part not read) and skipped, without being
//! held in memory, and the server goes on with the next line. rmcp's own line transport drops such a line
//! silently, which leaves the client waiting for an answer that never comes.

use bytes::BytesMut;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::transport::async_rw::{AsyncRwTransport, JsonRpcMessageCodec, JsonRpcMessageCodecError};
use rmcp::{ErrorData, RoleServer};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite};
use tokio_util::codec::Decoder as _;

/// Bytes asked of the reader at a time: what is buffered beyond the limit while skipping an oversized line.
const READ_CHUNK: usize = 64 * 1024;

/// Newline-delimited JSON-RPC on a reader and a writer, each incoming message at most `max_line` bytes.
pub struct BoundedLines<R, W: AsyncWrite + Send + Unpin + 'static> {
    reader: R,
    buffer: BytesMut,
    codec: JsonRpcMessageCodec<ClientJsonRpcMessage>,
    max_line: usize,
    /// Sends answers; its own reading side is never used.
    writer: AsyncRwTransport<RoleServer, tokio::io::Empty, W>,
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
            writer: AsyncRwTransport::new_server(tokio::io::empty(), writer),
        }
    }

    /// Answer a message that could not be taken. The send runs on its own task, so that `receive` being
    /// cancelled (rmcp polls it in a `select!`) cannot lose the answer halfway.
    fn answer_error(&mut self, error: ErrorData) {
        let send = self.writer.send(ServerJsonRpcMessage::error(error, None));
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
        self.writer.send(item)
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        loop {
            // Decoding is synchronous and reading into `buffer` is cancel-safe, so a cancelled `receive` loses
            // nothing: the next call resumes with what was read.
            match self.codec.decode(&mut self.buffer) {
                Ok(Some(message)) => return Some(message),
                Ok(None) => {}
                Err(JsonRpcMessageCodecError::MaxLineLengthExceeded) => {
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
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!("cannot read MCP messages from stdin: {e}");
                    return None;
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.writer.close().await
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

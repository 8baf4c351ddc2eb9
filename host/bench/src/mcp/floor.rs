//! The floor `are serve` is measured against: the least an MCP server can do per call, on the same transport,
//! for the same client. It parses each JSON-RPC request with serde_json, computes `text.word-count` natively (any
//! other tool answers a fixed text), and writes the response of the same shape `are serve` writes; no sandbox,
//! no schema, no SDK. Over stdio it reads lines and answers them in order, flushing when no more input is
//! buffered; over HTTP it is a bare hyper HTTP/1.1 server answering every POST with `application/json`.
//!
//! `are bench mcp` starts it as `are bench floor-server --transport stdio|http` (a hidden subcommand), exactly as
//! it starts `are serve`, and reads its CPU time the same way.

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// The transport the floor serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FloorTransport {
    /// JSON-RPC lines on stdin and stdout.
    Stdio,
    /// Streamable HTTP's request-response shape at `/mcp` on a loopback port (printed on stderr).
    Http,
}

/// Serve until the input ends (stdio) or the process is stopped (HTTP).
///
/// # Errors
/// When stdin/stdout or the listening socket fail.
pub async fn serve(transport: FloorTransport) -> anyhow::Result<()> {
    match transport {
        FloorTransport::Stdio => serve_stdio().await,
        FloorTransport::Http => serve_http().await,
    }
}

/// Plain blocking reads and writes on one thread: no runtime between the pipe and the answer.
async fn serve_stdio() -> anyhow::Result<()> {
    tokio::task::spawn_blocking(|| -> anyhow::Result<()> {
        use std::io::{BufRead as _, Write as _};
        use std::os::fd::AsFd as _;
        // The pipes themselves, without std's own stdin buffer in between (the flush test looks at ours).
        let pipe =
            |fd: std::os::fd::BorrowedFd<'_>| fd.try_clone_to_owned().map(std::fs::File::from);
        let mut input = std::io::BufReader::with_capacity(1 << 16, pipe(std::io::stdin().as_fd())?);
        let mut output =
            std::io::BufWriter::with_capacity(1 << 16, pipe(std::io::stdout().as_fd())?);
        let mut line = Vec::new();
        loop {
            line.clear();
            if input.read_until(b'\n', &mut line)? == 0 {
                output.flush()?;
                return Ok(());
            }
            if let Some(response) = answer(&line) {
                output.write_all(&response)?;
                output.write_all(b"\n")?;
            }
            // Answers to requests that arrived together leave in one write.
            if !input.buffer().contains(&b'\n') {
                output.flush()?;
            }
        }
    })
    .await
    .context("the floor server's thread failed")?
}

async fn serve_http() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // The line `are bench mcp` waits for, as `are serve --http` prints it.
    eprintln!("are serve: 1 tools at http://{addr}/mcp (the floor server)");
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let service = hyper::service::service_fn(handle);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let body = request.into_body().collect().await?.to_bytes();
    let response = match answer(&body) {
        Some(json) => Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .header("mcp-session-id", "floor")
            .body(Full::new(Bytes::from(json))),
        None => Response::builder()
            .status(StatusCode::ACCEPTED)
            .body(Full::new(Bytes::new())),
    };
    Ok(response.unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}

/// The serialized response to one JSON-RPC message, or `None` for a notification.
fn answer(message: &[u8]) -> Option<Vec<u8>> {
    let request: Value = match serde_json::from_slice(message) {
        Ok(v) => v,
        Err(e) => {
            let error = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": e.to_string()}});
            return serde_json::to_vec(&error).ok();
        }
    };
    let id = request.get("id")?.clone();
    let params = &request["params"];
    let result = match request["method"].as_str().unwrap_or_default() {
        "initialize" => json!({
            "protocolVersion": params["protocolVersion"].as_str().unwrap_or("2025-11-25"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "floor", "version": env!("CARGO_PKG_VERSION")},
        }),
        "server/discover" => json!({
            "supportedVersions": ["2025-11-25", "2026-07-28"],
            "capabilities": {"tools": {}},
        }),
        "tools/list" => json!({"tools": [
            {"name": "text.word-count", "inputSchema": {"type": "object"}},
            {"name": "text__word-count", "inputSchema": {"type": "object"}},
        ]}),
        "tools/call" => call(params),
        _ => {
            let error = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "method not found"}});
            return serde_json::to_vec(&error).ok();
        }
    };
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "result": result})).ok()
}

/// `text.word-count` natively, with the result shape `are serve` gives it; anything else a fixed text.
fn call(params: &Value) -> Value {
    let name = params["name"].as_str().unwrap_or_default();
    if name != "text.word-count" && name != "text__word-count" {
        return json!({"content": [{"type": "text", "text": "ok"}], "isError": false});
    }
    let text = params["arguments"]["text"].as_str().unwrap_or_default();
    let counts = json!({
        "words": text.split_whitespace().count(),
        "lines": text.lines().count(),
        "chars": text.chars().count(),
        "bytes": text.len(),
    });
    let pretty = serde_json::to_string_pretty(&counts).unwrap_or_default();
    json!({
        "content": [{"type": "text", "text": pretty}],
        "structuredContent": {"result": counts},
        "isError": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_like_are_serve_does() {
        let call = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"text.word-count","arguments":{"text":"a b\nc"}}}"#;
        let response: Value = serde_json::from_slice(&answer(call).unwrap()).unwrap();
        assert_eq!(response["id"], 3);
        assert_eq!(
            response["result"]["structuredContent"]["result"]["words"],
            3
        );
        assert_eq!(
            response["result"]["structuredContent"]["result"]["lines"],
            2
        );
        assert!(answer(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).is_none());
        let unknown: Value =
            serde_json::from_slice(&answer(br#"{"jsonrpc":"2.0","id":1,"method":"x"}"#).unwrap())
                .unwrap();
        assert_eq!(unknown["error"]["code"], -32601);
    }
}

//! `tools/call` answered without rmcp's per-request machinery: the request that dominates under load.
//!
//! - **HTTP**: for a stateless (2026-07-28) POST, rmcp builds a service, spawns a task that serves it over a
//!   one-shot channel transport, serializes the parsed message back into a `Value` to check its `Mcp-*` headers,
//!   and waits on a channel for the answer. Here the body is parsed once into the call's parameters and the answer
//!   is written by the task that read the request ([`answer_stateless_calls`]).
//! - **stdio**: rmcp decodes every line into its general message enum (untagged, with flattened fields: the
//!   costliest parse of the path), spawns a handler, and sends the answer back through the service loop. Here a
//!   line that is a `tools/call` is parsed into this one shape, run on a task of its own, and its answer written
//!   straight to stdout ([`super::stdio::BoundedLines`]).
//!
//! Only the exact, well-formed request takes this path: at revision 2026-07-28 with the `_meta` it requires, or
//! in a 2025-11-25 session once `initialize` is answered (stdio only); a known tool that does not run as a task;
//! no retry with input responses; over HTTP, no session, `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name`
//! each given once and matching the body, JSON in and both JSON and SSE accepted, no log level asked for.
//! Anything else goes to rmcp unchanged, so every error and every other answer stays rmcp's. The reply is the
//! message rmcp would send, built from the same types and shaped for the revision as rmcp shapes it.

// The log notification of a failed call is part of revision 2025-11-25, which we serve (see server.rs).
#![allow(deprecated)]

use super::server::{CallPlan, McpServer};
use are_runtime::catalog::ServedTool;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::{
    CallToolRequestMethod, CallToolRequestParams, JsonRpcVersion2_0, LoggingMessageNotification,
    ProtocolVersion, RequestId, ServerJsonRpcMessage, ServerNotification, ServerResult,
};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// A `tools/call` request; `method` and `jsonrpc` only parse as `tools/call` and `2.0`.
#[derive(Deserialize)]
pub(crate) struct ToolCallRequest {
    #[serde(rename = "jsonrpc")]
    _jsonrpc: JsonRpcVersion2_0,
    pub(crate) id: RequestId,
    #[serde(rename = "method")]
    _method: CallToolRequestMethod,
    params: CallToolRequestParams,
}

/// A call this path answers: its tool, and whether it is answered at revision 2026-07-28.
pub(crate) struct Planned {
    tool: ServedTool,
    at_2026: bool,
}

impl ToolCallRequest {
    /// How the call is answered here, or `None` to leave it to rmcp. `negotiated` is the revision the session's
    /// `initialize` settled on, if there was one.
    pub(crate) fn plan(
        &self,
        server: &McpServer,
        negotiated: Option<&ProtocolVersion>,
    ) -> Option<Planned> {
        let meta = self.params.meta.as_ref();
        let at_2026 = match meta.and_then(|m| m.protocol_version()) {
            Some(v)
                if v == ProtocolVersion::V_2026_07_28
                    && meta.is_some_and(|m| {
                        m.missing_required_keys(&ProtocolVersion::V_2026_07_28)
                            .is_empty()
                    }) =>
            {
                true
            }
            Some(_) => return None,
            None => match negotiated {
                Some(v) if v.as_str() < ProtocolVersion::V_2026_07_28.as_str() => false,
                _ => return None,
            },
        };
        if self.params.input_responses.is_some() || self.params.request_state.is_some() {
            return None;
        }
        let client_has_tasks = at_2026
            && meta
                .and_then(|m| m.client_capabilities())
                .is_some_and(|c| c.supports_tasks());
        let tool = server.tool(&self.params.name).ok()?;
        (CallPlan::of(&tool, client_has_tasks) == CallPlan::Plain)
            .then_some(Planned { tool, at_2026 })
    }

    /// Run the call for `session`: the log notification the client asked for (when the call failed), and the
    /// response.
    pub(crate) async fn answer(
        self,
        server: &Arc<McpServer>,
        planned: Planned,
        session: Option<&str>,
    ) -> (Option<ServerJsonRpcMessage>, ServerJsonRpcMessage) {
        let ToolCallRequest { id, params, .. } = self;
        let requested_level = params.meta.as_ref().and_then(|m| m.log_level());
        let args = params.arguments.map_or(Value::Null, Value::Object);
        let outcome = server
            .call_tool(planned.tool, &params.name, args, session)
            .await;
        match outcome {
            Ok(outcome) => {
                let log = server
                    .failure_log(
                        &params.name,
                        &outcome,
                        planned.at_2026,
                        requested_level,
                        session,
                    )
                    .map(|log| {
                        ServerJsonRpcMessage::notification(
                            ServerNotification::LoggingMessageNotification(
                                LoggingMessageNotification::new(log),
                            ),
                        )
                    });
                let mut result = ServerResult::CallToolResult(outcome.result);
                // As rmcp's handler shapes results for the revision.
                if planned.at_2026 {
                    result.fill_missing_cache_hints();
                } else {
                    result.strip_result_type_for_legacy_peer();
                    result.strip_non_object_output_for_legacy_peer();
                }
                (log, ServerJsonRpcMessage::response(result, id))
            }
            Err(error) => (None, ServerJsonRpcMessage::error(error, Some(id))),
        }
    }

    /// Whether the request asks for log notifications (in its `_meta`).
    fn asks_for_logs(&self) -> bool {
        self.params
            .meta
            .as_ref()
            .is_some_and(|m| m.log_level().is_some())
    }
}

/// What the HTTP path needs: the server, and how large a body it may read.
pub(crate) struct DirectHttpCalls {
    pub(crate) server: Arc<McpServer>,
    pub(crate) max_body: usize,
}

/// Middleware on `/mcp`: answer a stateless `tools/call` directly, pass everything else on.
pub(crate) async fn answer_stateless_calls(
    State(direct): State<Arc<DirectHttpCalls>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(length) = candidate_length(request.method(), request.headers()) else {
        return next.run(request).await;
    };
    if length > direct.max_body {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, direct.max_body).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {e}\n"),
            )
                .into_response();
        }
    };
    match direct.answer(&parts.headers, &bytes).await {
        Some(response) => response,
        None => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
}

impl DirectHttpCalls {
    /// The reply to the call in `body`, or `None` when the request is not one this path takes.
    async fn answer(&self, headers: &HeaderMap, body: &[u8]) -> Option<Response> {
        let call: ToolCallRequest = serde_json::from_slice(body).ok()?;
        // Notifications would need an SSE stream; the header must name the tool the body calls.
        if call.asks_for_logs() || single(headers, "mcp-name") != Some(call.params.name.as_bytes())
        {
            return None;
        }
        // Without a negotiated revision only a 2026-07-28 call is planned, and it asked for no log (above): the
        // response is the whole reply.
        let planned = call.plan(&self.server, None)?;
        let (_, message) = call.answer(&self.server, planned, None).await;
        Some(json_response(&message))
    }
}

/// The body's length when the request may be a stateless `tools/call` (judged by its headers alone).
fn candidate_length(method: &Method, headers: &HeaderMap) -> Option<usize> {
    let fits = method == Method::POST
        && !headers.contains_key("mcp-session-id")
        && single(headers, "mcp-protocol-version")
            == Some(ProtocolVersion::V_2026_07_28.as_str().as_bytes())
        && single(headers, "mcp-method") == Some(b"tools/call".as_slice())
        && single(headers, header::CONTENT_TYPE.as_str())
            .is_some_and(|v| essence(v).eq_ignore_ascii_case(b"application/json"))
        && accepts_json_and_sse(headers);
    if !fits {
        return None;
    }
    std::str::from_utf8(single(headers, header::CONTENT_LENGTH.as_str())?)
        .ok()?
        .parse()
        .ok()
}

/// The value of a header given exactly once.
fn single<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h [u8]> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    values.next().is_none().then(|| value.as_bytes())
}

/// A media type without its parameters, trimmed.
fn essence(value: &[u8]) -> &[u8] {
    let end = value.iter().position(|&b| b == b';').unwrap_or(value.len());
    value[..end].trim_ascii()
}

/// One `Accept` header listing both `application/json` and `text/event-stream`, with no parameters (a weight
/// could exclude one: such a request is left to rmcp, which reads weights).
fn accepts_json_and_sse(headers: &HeaderMap) -> bool {
    let Some(accept) = single(headers, header::ACCEPT.as_str()) else {
        return false;
    };
    if accept.contains(&b';') {
        return false;
    }
    let mut json = false;
    let mut sse = false;
    for media in accept.split(|&b| b == b',') {
        let media = media.trim_ascii();
        json |= media.eq_ignore_ascii_case(b"application/json");
        sse |= media.eq_ignore_ascii_case(b"text/event-stream");
    }
    json && sse
}

/// `message` as the JSON body rmcp sends for a stateless reply: 200 for results and for the errors a call gives
/// here (invalid arguments, an internal error), both of which rmcp maps to 200 as well.
fn json_response(message: &ServerJsonRpcMessage) -> Response {
    match serde_json::to_vec(message) {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot serialize the reply: {e}\n"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::{accepts_json_and_sse, candidate_length};
    use axum::http::{HeaderMap, HeaderValue, Method};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_static(v));
        }
        map
    }

    const CALL: [(&str, &str); 5] = [
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("content-length", "120"),
    ];

    #[test]
    fn only_a_stateless_call_is_a_candidate() {
        assert_eq!(candidate_length(&Method::POST, &headers(&CALL)), Some(120));
        assert_eq!(candidate_length(&Method::GET, &headers(&CALL)), None);
        let with = |extra: (&'static str, &'static str)| {
            let mut h = headers(&CALL);
            h.append(extra.0, HeaderValue::from_static(extra.1));
            candidate_length(&Method::POST, &h)
        };
        assert_eq!(with(("mcp-session-id", "abc")), None, "a session");
        assert_eq!(with(("mcp-method", "tools/call")), None, "a duplicate");
        let without = |name: &str, replace: Option<&'static str>| {
            let mut h = headers(&CALL);
            h.remove(name);
            if let Some(v) = replace {
                h.insert(
                    axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_static(v),
                );
            }
            candidate_length(&Method::POST, &h)
        };
        assert_eq!(without("content-length", None), None, "chunked");
        assert_eq!(without("mcp-method", Some("tools/list")), None);
        assert_eq!(without("mcp-protocol-version", Some("2025-11-25")), None);
        assert_eq!(without("content-type", Some("text/plain")), None);
        assert_eq!(
            without("content-type", Some("application/json; charset=utf-8")),
            Some(120)
        );
    }

    #[test]
    fn accept_needs_both_media_types_and_no_weights() {
        let accepts = |v: &'static str| accepts_json_and_sse(&headers(&[("accept", v)]));
        assert!(accepts("application/json, text/event-stream"));
        assert!(accepts("text/event-stream,application/json"));
        assert!(!accepts("application/json"));
        assert!(!accepts("*/*"));
        assert!(!accepts("application/json, text/event-stream;q=0"));
    }
}

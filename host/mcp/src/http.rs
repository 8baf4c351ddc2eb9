//! MCP over Streamable HTTP at `/mcp`, plus `/metrics` (Prometheus) and `/healthz`.
//!
//! Safe by default: it binds loopback; on every endpoint the `Host` header must name the server (against DNS
//! rebinding) and an `Origin`, when a browser sends one, must be a loopback origin or one the policy allows; with
//! a token, every request but `/healthz` needs `Authorization: Bearer <token>` (the scheme in any case); a
//! non-loopback address is refused unless a token is set; and sessions, connections, request sizes and stalls
//! are bounded (`[serve]`, see [`super::connection`] and [`super::http_sessions`]).

use super::connection::{self, ConnectionBounds};
use super::direct::{DirectHttpCalls, answer_stateless_calls};
use super::http_sessions::{BoundedSessions, SessionError, refused_for_room};
use super::server::{Handler, McpServer};
use are_policy::ServeBounds;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How the HTTP endpoint is exposed.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Address to listen on.
    pub addr: Option<SocketAddr>,
    /// Bearer token every request (but `/healthz`) must carry.
    pub token: Option<String>,
    /// Browser origins allowed besides loopback ones (`https://app.example.com`, `http://host:*`).
    pub allowed_origins: Vec<String>,
    /// Host names clients use to reach a non-loopback address.
    pub allowed_hosts: Vec<String>,
    /// Sessions, connections, request sizes and stalls allowed.
    pub bounds: ServeBounds,
}

/// Why the endpoint refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A non-loopback address without a token would expose every tool to the network.
    #[error(
        "refusing to listen on {0} without a token: anyone who can reach it could call every tool. \
         Set a token with --token-env NAME (clients send `Authorization: Bearer <token>`), or bind 127.0.0.1"
    )]
    OpenToNetwork(SocketAddr),
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A bound listener, ready to serve.
pub struct Listening {
    listener: tokio::net::TcpListener,
    app: axum::Router,
    bounds: ServeBounds,
    /// Cancelled on shutdown: ends rmcp's streams too.
    stop: CancellationToken,
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
}

/// Bind the endpoint for `server`.
///
/// # Errors
/// [`HttpError::OpenToNetwork`] for a non-loopback address without a token, [`HttpError::Bind`] when the
/// address cannot be bound.
pub async fn bind(server: Arc<McpServer>, options: HttpOptions) -> Result<Listening, HttpError> {
    let addr = options
        .addr
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080)));
    if !addr.ip().is_loopback() && options.token.is_none() {
        return Err(HttpError::OpenToNetwork(addr));
    }
    let mut origins: Vec<String> = ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]
        .into_iter()
        .chain([
            "https://localhost:*",
            "https://127.0.0.1:*",
            "https://[::1]:*",
        ])
        .map(String::from)
        .collect();
    origins.extend(options.allowed_origins.iter().cloned());
    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if !addr.ip().is_loopback() {
        hosts.push(addr.ip().to_string());
    }
    hosts.extend(options.allowed_hosts.iter().cloned());
    let bounds = options.bounds;
    let stop = CancellationToken::new();
    let gate = Arc::new(Gate {
        hosts: hosts.clone(),
        origins: origins.clone(),
    });
    let config = StreamableHttpServerConfig::default()
        .with_allowed_origins(origins)
        .enforce_origin_validation()
        .with_allowed_hosts(hosts)
        .with_max_request_body_bytes(usize::try_from(bounds.max_request_size).unwrap_or(usize::MAX))
        // A comment on every open stream well within the idle timeout, so that a long call is not cut.
        .with_sse_keep_alive(Some(
            (bounds.connection_idle_timeout / 3).min(Duration::from_secs(15)),
        ))
        // A stateless (2026-07-28) request whose first message is its answer gets a JSON body, not an SSE stream;
        // one that sends notifications first still streams. Sessions (2025-11-25) are not affected.
        .with_json_response(true)
        .with_cancellation_token(stop.child_token());
    let mcp_server = server.clone();
    let service = StreamableHttpService::new(
        move || Ok(Handler(mcp_server.clone())),
        Arc::new(BoundedSessions::new(
            LocalSessionManager::default(),
            Arc::downgrade(&server),
            usize::try_from(bounds.max_sessions).unwrap_or(usize::MAX),
        )),
        config,
    );
    let direct = Arc::new(DirectHttpCalls {
        server: server.clone(),
        max_body: usize::try_from(bounds.max_request_size).unwrap_or(usize::MAX),
    });
    let mcp = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn(answer_full_with_503))
        .layer(middleware::from_fn(end_session_with_200))
        .layer(middleware::from_fn_with_state(
            direct,
            answer_stateless_calls,
        ));
    let guarded = axum::Router::new()
        .merge(mcp)
        .route("/metrics", get(metrics))
        .with_state(server)
        .layer(middleware::from_fn_with_state(
            Arc::new(options.token),
            require_token,
        ));
    let app = guarded
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(middleware::from_fn_with_state(gate, check_host_and_origin));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| HttpError::Bind { addr, source })?;
    Ok(Listening {
        listener,
        app,
        bounds,
        stop,
        addr,
    })
}

impl Listening {
    /// Serve until `shutdown` completes.
    ///
    /// # Errors
    /// When accepting connections fails.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let bounds = ConnectionBounds {
            max_connections: usize::try_from(self.bounds.max_connections).unwrap_or(usize::MAX),
            header_read_timeout: self.bounds.header_read_timeout,
            idle_timeout: self.bounds.connection_idle_timeout,
        };
        connection::serve(self.listener, self.app, bounds, shutdown, self.stop).await
    }
}

/// Answer a new session refused for want of room with 503 and a JSON-RPC error, instead of rmcp's bare 500.
async fn answer_full_with_503(request: Request, next: Next) -> Response {
    let (response, refused) = refused_for_room(next.run(request)).await;
    let Some(max) = refused else {
        return response;
    };
    let message = SessionError::<std::convert::Infallible>::Full { max }.to_string();
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": SESSIONS_FULL, "message": message },
    });
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        axum::Json(body),
    )
        .into_response()
}

/// A `DELETE` that ended a session answers `200 OK`, as the SDKs' own servers do (rmcp answers `202`, which the
/// official Python SDK logs as an error at every session close).
async fn end_session_with_200(request: Request, next: Next) -> Response {
    let delete = request.method() == axum::http::Method::DELETE;
    let mut response = next.run(request).await;
    if delete && response.status() == StatusCode::ACCEPTED {
        *response.status_mut() = StatusCode::OK;
    }
    response
}

/// The JSON-RPC error code of a refused session (implementation-defined server error range).
const SESSIONS_FULL: i32 = -32000;

async fn metrics(State(server): State<Arc<McpServer>>) -> Response {
    server
        .metrics
        .set_session_instances(server.sessions().len());
    let body = server.metrics.render();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Reject requests without the bearer token, when one is configured.
async fn require_token(
    State(token): State<Arc<Option<String>>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = token.as_deref() else {
        return next.run(request).await;
    };
    let given = bearer_token(&headers).unwrap_or("");
    if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "missing or wrong bearer token: send `Authorization: Bearer <token>`\n",
        )
            .into_response()
    }
}

/// The credentials of `Authorization: Bearer <token>`; the scheme is case-insensitive (RFC 9110 §11.1).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
}

/// Which `Host` and `Origin` headers the endpoint answers, on every path: a `Host` that does not name the server
/// is a DNS-rebinding page, an `Origin` not allowed is a foreign page driving the user's browser.
struct Gate {
    /// Host names, with or without a port (without: any port).
    hosts: Vec<String>,
    /// Origins: `scheme://host`, `scheme://host:port` or `scheme://host:*` (any port).
    origins: Vec<String>,
}

impl Gate {
    /// Why the request is refused, if it is.
    fn refusal(&self, uri: &Uri, headers: &HeaderMap) -> Option<String> {
        let host: Option<http::uri::Authority> = match headers.get(header::HOST) {
            Some(value) => value.to_str().ok().and_then(|v| v.parse().ok()),
            None => uri.authority().cloned(),
        };
        let Some(host) = host else {
            return Some("Host header is missing or malformed".into());
        };
        if !self
            .hosts
            .iter()
            .any(|allowed| host_matches(allowed, &host))
        {
            return Some(format!(
                "Host header is not allowed: `{host}` does not name this server (add it with --allowed-host)"
            ));
        }
        // No `Origin`: not a browser, nothing more to check.
        let origin = headers.get(header::ORIGIN)?;
        let allowed = origin
            .to_str()
            .ok()
            .and_then(|o| o.parse::<Uri>().ok())
            .is_some_and(|o| {
                self.origins
                    .iter()
                    .any(|allowed| origin_matches(allowed, &o))
            });
        (!allowed).then(|| {
            format!(
                "Origin header is not allowed: {origin:?} (allow it with --allow-origin or [serve] allowed_origins)"
            )
        })
    }
}

/// Refuse, with 403, a request whose `Host` or `Origin` the [`Gate`] does not allow.
async fn check_host_and_origin(
    State(gate): State<Arc<Gate>>,
    request: Request,
    next: Next,
) -> Response {
    match gate.refusal(request.uri(), request.headers()) {
        None => next.run(request).await,
        Some(why) => {
            tracing::warn!(path = %request.uri().path(), "refused an HTTP request: {why}");
            (StatusCode::FORBIDDEN, format!("Forbidden: {why}\n")).into_response()
        }
    }
}

fn normalized_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

/// Whether `host` is `allowed` (`name` for any port, `name:port` for that one).
fn host_matches(allowed: &str, host: &http::uri::Authority) -> bool {
    let (name, port) = match allowed.parse::<http::uri::Authority>() {
        Ok(a) => (normalized_host(a.host()), a.port_u16()),
        // A bare IPv6 address such as `::1` is not an authority.
        Err(_) => (normalized_host(allowed), None),
    };
    name == normalized_host(host.host()) && port.is_none_or(|p| host.port_u16() == Some(p))
}

/// Whether `origin` is `allowed`: same scheme and host, and the port given (the scheme's default when left
/// out) or any port for `:*`.
fn origin_matches(allowed: &str, origin: &Uri) -> bool {
    let default_port = |scheme: &str| match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    let (allowed, any_port) = match allowed.strip_suffix(":*") {
        Some(base) => (base, true),
        None => (allowed, false),
    };
    let (Ok(allowed), Some(scheme), Some(authority)) = (
        allowed.parse::<Uri>(),
        origin.scheme_str(),
        origin.authority(),
    ) else {
        return false;
    };
    let (Some(allowed_scheme), Some(allowed_authority)) =
        (allowed.scheme_str(), allowed.authority())
    else {
        return false;
    };
    let port_of =
        |scheme: &str, a: &http::uri::Authority| a.port_u16().or_else(|| default_port(scheme));
    allowed_scheme.eq_ignore_ascii_case(scheme)
        && normalized_host(allowed_authority.host()) == normalized_host(authority.host())
        && (any_port || port_of(allowed_scheme, allowed_authority) == port_of(scheme, authority))
}

/// Compare without leaking, through timing, how much of the token matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::{Gate, bearer_token, constant_time_eq};
    use axum::http::{HeaderMap, HeaderValue, Uri, header};

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), HeaderValue::from_str(v).unwrap()))
            .collect()
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in ["Bearer t0k", "bearer t0k", "BEARER t0k", "bEaReR   t0k"] {
            let h = headers(&[(header::AUTHORIZATION, value)]);
            assert_eq!(bearer_token(&h), Some("t0k"), "{value}");
        }
        for value in ["Basic t0k", "Bearert0k", "t0k", "Bearer"] {
            let h = headers(&[(header::AUTHORIZATION, value)]);
            assert_ne!(bearer_token(&h), Some("t0k"), "{value}");
        }
    }

    #[test]
    fn host_and_origin() {
        let gate = Gate {
            hosts: vec![
                "localhost".into(),
                "127.0.0.1".into(),
                "::1".into(),
                "mcp.example:8443".into(),
            ],
            origins: vec![
                "http://localhost:*".into(),
                "https://app.example.com".into(),
            ],
        };
        let uri = Uri::from_static("/metrics");
        let allowed =
            |pairs: &[(header::HeaderName, &str)]| gate.refusal(&uri, &headers(pairs)).is_none();
        assert!(allowed(&[(header::HOST, "127.0.0.1:8080")]));
        assert!(allowed(&[(header::HOST, "LOCALHOST")]));
        assert!(allowed(&[(header::HOST, "[::1]:9")]));
        assert!(allowed(&[(header::HOST, "mcp.example:8443")]));
        assert!(!allowed(&[(header::HOST, "mcp.example:8080")]));
        assert!(!allowed(&[(header::HOST, "evil.example")]));
        assert!(!allowed(&[(header::HOST, "localhost.evil.example")]));
        assert!(!allowed(&[]), "no Host at all");
        let host = (header::HOST, "localhost:1");
        assert!(allowed(&[
            host.clone(),
            (header::ORIGIN, "http://localhost:5173")
        ]));
        assert!(allowed(&[
            host.clone(),
            (header::ORIGIN, "https://app.example.com")
        ]));
        assert!(allowed(&[
            host.clone(),
            (header::ORIGIN, "https://app.example.com:443")
        ]));
        assert!(!allowed(&[
            host.clone(),
            (header::ORIGIN, "https://app.example.com:8443")
        ]));
        assert!(!allowed(&[
            host.clone(),
            (header::ORIGIN, "http://app.example.com")
        ]));
        assert!(!allowed(&[
            host.clone(),
            (header::ORIGIN, "https://localhost:5173")
        ]));
        assert!(!allowed(&[host.clone(), (header::ORIGIN, "null")]));
        assert!(!allowed(&[host, (header::ORIGIN, "https://evil.example")]));
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}

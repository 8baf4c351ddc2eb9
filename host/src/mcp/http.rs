//! MCP over Streamable HTTP at `/mcp`, plus `/metrics` (Prometheus) and `/healthz`.
//!
//! Safe by default: it binds loopback; the `Host` header must name the server (against DNS rebinding); an
//! `Origin`, when a browser sends one, must be a loopback origin or one the policy allows; with a token, every
//! request but `/healthz` needs `Authorization: Bearer <token>`; and a non-loopback address is refused unless a
//! token is set.

use super::server::{Handler, McpServer};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_core::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::{
    EventStore, RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::net::SocketAddr;
use std::sync::{Arc, Weak};

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
    let config = StreamableHttpServerConfig::default()
        .with_allowed_origins(origins)
        .enforce_origin_validation()
        .with_allowed_hosts(hosts);
    let mcp_server = server.clone();
    let service = StreamableHttpService::new(
        move || Ok(Handler(mcp_server.clone())),
        Arc::new(EndingSessions {
            inner: LocalSessionManager::default(),
            server: Arc::downgrade(&server),
        }),
        config,
    );
    let guarded = axum::Router::new()
        .nest_service("/mcp", service)
        .route("/metrics", get(metrics))
        .with_state(server)
        .layer(middleware::from_fn_with_state(
            Arc::new(options.token),
            require_token,
        ));
    let app = guarded.route("/healthz", get(|| async { "ok\n" }));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| HttpError::Bind { addr, source })?;
    Ok(Listening {
        listener,
        app,
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
        use axum::serve::ListenerExt as _;
        // Responses are SSE streams written in several small pieces: without TCP_NODELAY, Nagle's algorithm
        // holds the last piece until the client's delayed ACK, about 40 ms on Linux, on every call.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("cannot set TCP_NODELAY on an MCP connection: {e}");
            }
        });
        axum::serve(listener, self.app)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// rmcp's session manager, plus: when a session closes (the client's `DELETE` with its `Mcp-Session-Id`), the
/// session instances and settings kept for it are dropped too.
pub struct EndingSessions<M = LocalSessionManager> {
    inner: M,
    server: Weak<McpServer>,
}

impl<M: SessionManager> SessionManager for EndingSessions<M> {
    type Error = M::Error;
    type Transport = M::Transport;

    fn create_session(
        &self,
    ) -> impl Future<Output = Result<(SessionId, Self::Transport), Self::Error>> + Send {
        self.inner.create_session()
    }

    fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> impl Future<Output = Result<ServerJsonRpcMessage, Self::Error>> + Send {
        self.inner.initialize_session(id, message)
    }

    fn has_session(
        &self,
        id: &SessionId,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send {
        self.inner.has_session(id)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        let closed = self.inner.close_session(id).await;
        if let Some(server) = self.server.upgrade() {
            server.end_session(id);
        }
        closed
    }

    fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> impl Future<
        Output = Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error>,
    > + Send {
        self.inner.create_stream(id, message)
    }

    fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.accept_message(id, message)
    }

    fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> impl Future<
        Output = Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error>,
    > + Send {
        self.inner.create_standalone_stream(id)
    }

    fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> impl Future<
        Output = Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error>,
    > + Send {
        self.inner.resume(id, last_event_id)
    }

    fn restore_session(
        &self,
        id: SessionId,
    ) -> impl Future<Output = Result<RestoreOutcome<Self::Transport>, Self::Error>> + Send {
        self.inner.restore_session(id)
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        self.inner.event_store()
    }
}

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
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
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

/// Compare without leaking, through timing, how much of the token matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}

//! `allow.http`: outbound HTTP (`wasi:http/outgoing-handler`) to an allowlist of origins.
//!
//! Entries are `scheme://host[:port]`. Without a port an entry allows only the scheme's default port. A host may
//! start with `*.` to allow every subdomain (not the bare domain); what follows `*.` must be a DNS name whose last
//! label is not all digits, so `*.1` or `*.0.0.1` (which a resolver may read as IP addresses) are refused when the
//! policy is read, with the entry's line and column. A request to anything else gets the WASI HTTP
//! error code `HTTP-request-denied` back in the guest: a denial is an error value, not a trap.
//!
//! The host resolves names itself and checks every address before it connects, then connects to exactly the
//! addresses it checked (so DNS rebinding cannot slip past the check). Loopback, private, link-local and other
//! non-public addresses are refused (`destination-IP-prohibited`) unless the entry names that IP literally or is
//! `localhost`.
//!
//! ```toml
//! allow.http = ["https://api.example.com", "https://*.example.org:8443", "http://127.0.0.1:8080"]
//! ```

use super::{PrepareError, Provide};
use crate::descriptors::{ConnectionPermit, Connections};
use crate::sandbox::{HostState, InstanceBuilder};
use are_policy::common::{ip_literal, is_public};
use are_policy::grants::http::{HttpGrant, Origin, Scheme};
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use wasmtime::component::Linker;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

impl Provide for HttpGrant {
    fn link(&self, linker: &mut Linker<HostState>) -> wasmtime::Result<&'static [&'static str]> {
        if self.0.is_empty() {
            return Ok(&[]);
        }
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
        Ok(&["wasi:http/types", "wasi:http/outgoing-handler"])
    }

    fn prepare(&self, builder: &mut InstanceBuilder) -> Result<(), PrepareError> {
        builder.http.grant = Arc::new(self.clone());
        Ok(())
    }
}

/// What the http and secrets capabilities prepare for one instance, before it has its connections.
#[derive(Default)]
pub struct HttpSetup {
    /// The origins the instance may reach.
    pub grant: Arc<HttpGrant>,
    /// Headers the host adds to requests to certain hosts (the guest never sees them).
    pub secrets: Arc<Vec<super::secrets::Secret>>,
}

/// The http capability's state in one instance.
pub struct HttpState {
    /// wasi:http's own context.
    pub(crate) ctx: wasmtime_wasi_http::WasiHttpCtx,
    /// The hooks that enforce the grant on every request.
    pub(crate) hooks: PolicyHooks,
}

impl HttpState {
    /// The state of an instance set up as `setup`, recording to `audit`, its connections counted in `connections`.
    pub fn new(
        setup: HttpSetup,
        audit: Option<crate::audit::AuditScope>,
        connections: Arc<Connections>,
    ) -> HttpState {
        HttpState {
            ctx: wasmtime_wasi_http::WasiHttpCtx::new(),
            hooks: PolicyHooks::new(setup.grant, setup.secrets, audit, connections),
        }
    }
}

/// The wasi:http hooks of one instance: every outgoing request is checked against the grant, gets the
/// secrets meant for its host, and is recorded in the audit trail.
pub struct PolicyHooks {
    grant: Arc<HttpGrant>,
    secrets: Arc<Vec<super::secrets::Secret>>,
    audit: Option<crate::audit::AuditScope>,
    connections: Arc<Connections>,
}

impl PolicyHooks {
    /// Hooks enforcing `grant`, injecting `secrets`, recording to `audit`, and holding each connection open
    /// against the instance's `connections`.
    pub fn new(
        grant: Arc<HttpGrant>,
        secrets: Arc<Vec<super::secrets::Secret>>,
        audit: Option<crate::audit::AuditScope>,
        connections: Arc<Connections>,
    ) -> PolicyHooks {
        PolicyHooks {
            grant,
            secrets,
            audit,
            connections,
        }
    }
}

type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ),
    HttpError,
>;

impl WasiHttpHooks for PolicyHooks {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let grant = self.grant.clone();
        let secrets = self.secrets.clone();
        let audit = self.audit.clone();
        let connections = self.connections.clone();
        Box::new(async move {
            let target = Target::of(request.uri())?;
            // The URL without its query: queries may carry data the audit trail should not keep.
            let url = format!(
                "{}://{}:{}{}",
                if target.scheme == Scheme::Https {
                    "https"
                } else {
                    "http"
                },
                target.host,
                target.port,
                request.uri().path()
            );
            let method = request.method().to_string();
            let record = |outcome: &str, detail: serde_json::Value| {
                if let Some(audit) = &audit {
                    audit.record("http.request", outcome, detail);
                }
            };
            let Some(origin) = grant.allowing(target.scheme, &target.host, target.port) else {
                tracing::info!(host = %target.host, port = target.port, "http request denied: origin not granted");
                record(
                    "denied",
                    serde_json::json!({ "method": method, "url": url, "reason": "origin not granted" }),
                );
                return Err(HttpError::HttpRequestDenied);
            };
            let addrs = match resolve_checked(&target, origin).await {
                Ok(addrs) => addrs,
                Err(e) => {
                    record(
                        "denied",
                        serde_json::json!({ "method": method, "url": url, "reason": format!("{e:?}") }),
                    );
                    return Err(e);
                }
            };
            let permit = match connections.acquire() {
                Ok(permit) => permit,
                Err(refusal) => {
                    tracing::info!(host = %target.host, port = target.port, "http request refused: {refusal}");
                    record(
                        "denied",
                        serde_json::json!({ "method": method, "url": url, "reason": refusal.reason() }),
                    );
                    return Err(HttpError::ConnectionLimitReached);
                }
            };
            let mut injected = Vec::new();
            for secret in secrets
                .iter()
                .filter(|s| s.applies_to(&target.host, target.port, target.scheme == Scheme::Https))
            {
                request
                    .headers_mut()
                    .insert(secret.header.clone(), secret.value.clone());
                injected.push(secret.header.as_str().to_string());
            }
            let result = send(
                request,
                &target,
                &addrs,
                options.unwrap_or_default(),
                permit,
            )
            .await;
            match &result {
                Ok((response, _)) => record(
                    "ok",
                    serde_json::json!({ "method": method, "url": url, "status": response.status().as_u16(), "secrets": injected }),
                ),
                Err(e) => record(
                    "error:http",
                    serde_json::json!({ "method": method, "url": url, "error": format!("{e:?}"), "secrets": injected }),
                ),
            }
            result
        })
    }
}

/// Where a request goes.
struct Target {
    scheme: Scheme,
    /// Lowercase host name or IP literal (IPv6 in brackets).
    host: String,
    port: u16,
}

impl Target {
    fn of(uri: &http::Uri) -> Result<Target, HttpError> {
        let scheme = match uri.scheme_str() {
            Some("http") => Scheme::Http,
            Some("https") | None => Scheme::Https,
            Some(_) => return Err(HttpError::HttpProtocolError),
        };
        let host = uri
            .host()
            .ok_or(HttpError::HttpRequestUriInvalid)?
            .to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(scheme.default_port());
        Ok(Target { scheme, host, port })
    }
}

/// Resolve the target and keep only the addresses the entry allows.
async fn resolve_checked(target: &Target, origin: &Origin) -> Result<Vec<SocketAddr>, HttpError> {
    let addrs: Vec<SocketAddr> = match ip_literal(&target.host) {
        Some(ip) => vec![SocketAddr::new(ip, target.port)],
        None => tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| HttpError::DnsError {
                rcode: Some(e.to_string()),
                info_code: None,
            })?
            .collect(),
    };
    let allowed: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| origin.host.allows_private() || is_public(a.ip()))
        .collect();
    if allowed.is_empty() {
        tracing::info!(host = %target.host, "http request denied: resolves only to non-public addresses");
        return Err(HttpError::DestinationIpProhibited);
    }
    Ok(allowed)
}

/// Connect to the first reachable checked address and send the request over HTTP/1.1.
async fn send(
    mut request: http::Request<WasiBody>,
    target: &Target,
    addrs: &[SocketAddr],
    options: RequestOptions,
    permit: ConnectionPermit,
) -> SendResult {
    let connect_timeout = options.connect_timeout.unwrap_or(Duration::from_secs(30));
    let first_byte_timeout = options
        .first_byte_timeout
        .unwrap_or(Duration::from_secs(60));
    let mut last_error = HttpError::ConnectionRefused;
    let mut stream = None;
    for addr in addrs {
        match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                stream = Some(s);
                break;
            }
            Ok(Err(e)) => last_error = HttpError::Connect(e),
            Err(_) => last_error = HttpError::ConnectionTimeout,
        }
    }
    let stream = stream.ok_or(last_error)?;
    let io: Box<dyn IoStream> = match target.scheme {
        Scheme::Http => Box::new(stream),
        Scheme::Https => {
            let name = match ip_literal(&target.host) {
                Some(ip) => rustls::pki_types::ServerName::from(ip),
                None => rustls::pki_types::ServerName::try_from(target.host.clone())
                    .map_err(|_| HttpError::HttpRequestUriInvalid)?,
            };
            let tls = tokio_rustls::TlsConnector::from(crate::tls::client_config())
                .connect(name, stream)
                .await
                .map_err(HttpError::Tls)?;
            Box::new(tls)
        }
    };
    let (mut sender, conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::handshake(TokioIo::new(io)),
    )
    .await
    .map_err(|_| HttpError::ConnectionTimeout)??;
    // The connection task ends when the response body is dropped or finished, and closes the connection:
    // the instance's count of connections follows it.
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let closed = conn.await.map_err(HttpError::from);
        drop(permit);
        let _ = done_tx.send(closed);
    });
    // Origin-form request target: the connection already knows scheme and authority.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    *request.uri_mut() = path.parse().map_err(|_| HttpError::HttpRequestUriInvalid)?;
    let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)??;
    let response = response.map(|body| body.map_err(HttpError::from).boxed_unsync());
    let io_done: Box<dyn Future<Output = Result<(), HttpError>> + Send> =
        Box::new(async move { done_rx.await.unwrap_or(Ok(())) });
    Ok((response, io_done))
}

/// A byte stream hyper can run HTTP/1.1 over (TCP or TLS).
pub trait IoStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> IoStream for T {}

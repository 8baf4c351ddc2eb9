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

use super::Capability;
use crate::descriptors::{ConnectionPermit, Connections};
use crate::sandbox::{HostState, InstanceBuilder};
use http_body_util::BodyExt;
use serde::Deserialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpStream;
use wasmtime::component::Linker;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// The origins a component may send HTTP requests to.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct HttpGrant(pub Vec<Origin>);

/// One allowed origin: scheme, host (exact, `*.` wildcard, or IP literal) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Which hosts match.
    pub host: HostPattern,
    /// The port; when the entry names none, the scheme's default port.
    pub port: u16,
}

/// A URL scheme wasi:http can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// The host part of an allowed origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// Exactly this name (lowercase).
    Name(String),
    /// Any name ending in `.suffix` (the entry was `*.suffix`).
    Subdomains(String),
    /// Exactly this address; non-public addresses are allowed only this way (or as `localhost`).
    Ip(IpAddr),
}

impl HostPattern {
    /// Whether `host` (lowercase name or IP literal from a request) matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Name(name) => name == host,
            HostPattern::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
            HostPattern::Ip(ip) => parse_ip_host(host) == Some(*ip),
        }
    }

    /// Whether an address outside the public internet may be reached through this entry.
    pub fn allows_private(&self) -> bool {
        match self {
            HostPattern::Ip(_) => true,
            HostPattern::Name(name) => name == "localhost",
            HostPattern::Subdomains(_) => false,
        }
    }
}

/// Parse `1.2.3.4` or `[::1]` (with or without brackets).
fn parse_ip_host(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

impl FromStr for Origin {
    type Err = String;

    fn from_str(entry: &str) -> Result<Origin, String> {
        let bad = |why: &str| {
            format!("invalid http origin {entry:?}: {why} (expected scheme://host[:port])")
        };
        let (scheme, rest) = entry
            .split_once("://")
            .ok_or_else(|| bad("missing scheme"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => return Err(bad(&format!("scheme {other:?} is not http or https"))),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(bad(
                "only an origin is allowed, no path, query or credentials",
            ));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (ip, after) = v6.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
            (format!("[{ip}]"), after.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (rest.to_string(), None),
            }
        };
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| bad(&format!("port {p:?} is not a number 0-65535")))?,
            None => scheme.default_port(),
        };
        let host = host.to_ascii_lowercase();
        let pattern = if let Some(ip) = parse_ip_host(&host) {
            HostPattern::Ip(ip)
        } else if let Some(suffix) = host.strip_prefix("*.") {
            check_dns_name(suffix).map_err(|why| {
                bad(&format!(
                    "a wildcard must be `*.` followed by a DNS name, and in {host:?} {why}"
                ))
            })?;
            HostPattern::Subdomains(suffix.to_string())
        } else {
            check_dns_name(&host).map_err(|why| {
                bad(&format!(
                    "{host:?} is neither an IP address nor a DNS name: {why}"
                ))
            })?;
            HostPattern::Name(host)
        };
        Ok(Origin {
            scheme,
            host: pattern,
            port,
        })
    }
}

/// Check that `name` is a DNS host name: at most 253 characters of dot-separated labels, each 1 to 63 letters,
/// digits and inner hyphens, the last one not all digits (so `10.1` or `0.0.1` cannot pass for a name, and a
/// grant never depends on how a resolver reads a partial IP address). `*` is not part of a name: a wildcard is
/// the caller's leading `*.` only.
///
/// # Errors
/// What is wrong, worded to follow "in NAME …" or "…: ".
pub(crate) fn check_dns_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    if name.len() > 253 {
        return Err("the name is longer than 253 characters".into());
    }
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err("a label is empty (a leading, trailing or doubled `.`)".into());
        }
        if label.contains('*') {
            return Err("`*` appears where only a whole leading `*.` is allowed".into());
        }
        if label.len() > 63 {
            return Err(format!("label {label:?} is longer than 63 characters"));
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(format!(
                "label {label:?} has characters other than letters, digits and `-`"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label {label:?} starts or ends with `-`"));
        }
    }
    let last = labels.last().copied().unwrap_or_default();
    if last.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "the last label {last:?} is all digits, which reads as an IP address, not a name \
             (grant an IP address by writing all of it, without `*.`)"
        ));
    }
    Ok(())
}

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::parse_str(d)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        match &self.host {
            HostPattern::Name(n) => write!(f, "{scheme}://{n}:{}", self.port),
            HostPattern::Subdomains(s) => write!(f, "{scheme}://*.{s}:{}", self.port),
            HostPattern::Ip(IpAddr::V6(ip)) => write!(f, "{scheme}://[{ip}]:{}", self.port),
            HostPattern::Ip(ip) => write!(f, "{scheme}://{ip}:{}", self.port),
        }
    }
}

impl HttpGrant {
    /// The first entry allowing a request to `scheme://host:port`.
    pub fn allowing(&self, scheme: Scheme, host: &str, port: u16) -> Option<&Origin> {
        self.0
            .iter()
            .find(|o| o.scheme == scheme && o.port == port && o.host.matches(host))
    }
}

impl Capability for HttpGrant {
    fn name(&self) -> &'static str {
        "http"
    }

    fn is_granted(&self) -> bool {
        !self.0.is_empty()
    }

    fn entries(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    fn link(&self, linker: &mut Linker<HostState>) -> wasmtime::Result<&'static [&'static str]> {
        if self.0.is_empty() {
            return Ok(&[]);
        }
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
        Ok(&["wasi:http/types", "wasi:http/outgoing-handler"])
    }

    fn prepare(&self, builder: &mut InstanceBuilder) -> anyhow::Result<()> {
        builder.http_grant = Arc::new(self.clone());
        Ok(())
    }
}

/// Whether `ip` is an address of the public internet (not loopback, private, link-local, reserved, …).
pub fn is_public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(a) => !is_special_v4(a),
        IpAddr::V6(a) => {
            let seg0 = a.segments()[0];
            let nat64 = a.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
            let embedded = Ipv4Addr::from_bits(a.to_bits() as u32);
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (seg0 & 0xfe00) == 0xfc00 // unique local
                || (seg0 & 0xffc0) == 0xfe80 // link local
                || (seg0 == 0x2001 && a.segments()[1] == 0x0db8) // documentation
                || (nat64 && is_special_v4(embedded)))
        }
    }
}

fn is_special_v4(a: Ipv4Addr) -> bool {
    let [b0, b1, ..] = a.octets();
    a.is_private()
        || a.is_loopback()
        || a.is_link_local()
        || a.is_broadcast()
        || a.is_documentation()
        || a.is_unspecified()
        || a.is_multicast()
        || b0 == 0
        || (b0 == 100 && (b1 & 0xc0) == 64) // shared address space (CGNAT)
        || (b0 == 192 && b1 == 0 && a.octets()[2] == 0) // IETF protocol assignments
        || (b0 == 198 && (b1 & 0xfe) == 18) // benchmarking
        || b0 >= 240 // reserved
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
    let addrs: Vec<SocketAddr> = match parse_ip_host(&target.host) {
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

/// The TLS client configuration (webpki roots, ring), built once.
pub(crate) fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(roots).with_no_client_auth())
                .unwrap_or_else(|e| unreachable!("ring supports the default TLS versions: {e}"));
            Arc::new(config)
        })
        .clone()
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
            let name = match parse_ip_host(&target.host) {
                Some(ip) => rustls::pki_types::ServerName::from(ip),
                None => rustls::pki_types::ServerName::try_from(target.host.clone())
                    .map_err(|_| HttpError::HttpRequestUriInvalid)?,
            };
            let tls = tokio_rustls::TlsConnector::from(tls_config())
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
pub(crate) trait IoStream:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static
{
}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> IoStream for T {}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(s: &str) -> Origin {
        s.parse().unwrap()
    }

    #[test]
    fn parses_origins() {
        assert_eq!(
            origin("https://api.example.com"),
            Origin {
                scheme: Scheme::Https,
                host: HostPattern::Name("api.example.com".into()),
                port: 443
            }
        );
        assert_eq!(
            origin("https://*.example.org:8443").host,
            HostPattern::Subdomains("example.org".into())
        );
        assert_eq!(
            origin("http://127.0.0.1:8080").host,
            HostPattern::Ip("127.0.0.1".parse().unwrap())
        );
        assert_eq!(origin("http://[::1]:8080").port, 8080);
        assert_eq!(origin("http://[::1]").port, 80);
    }

    #[test]
    fn rejects_bad_origins() {
        for bad in [
            "api.example.com",
            "ftp://x",
            "https://a/b",
            "https://a:99999",
            "https://a*.b",
            "https://u@h",
            "https://*.1",
            "https://*.0.0.1",
            "https://*.0.0.1:8080",
            "https://*.",
            "https://*",
            "https://*.*.example.com",
            "https://a.*.example.com",
            "https://*.[::1]",
            "https://*.example.com.",
            "https://*.-a.example.com",
            "http://1.2.3",
            "http://10.1",
        ] {
            let err = bad.parse::<Origin>().unwrap_err();
            assert!(
                err.starts_with(&format!("invalid http origin {bad:?}")),
                "{err}"
            );
        }
    }

    #[test]
    fn wildcards_cover_dns_names_only() {
        let err = "https://*.1".parse::<Origin>().unwrap_err();
        assert!(err.contains("the last label \"1\" is all digits"), "{err}");
        let err = "https://*.a.*.b".parse::<Origin>().unwrap_err();
        assert!(err.contains("only a whole leading `*.`"), "{err}");
        assert_eq!(
            origin("https://*.s3.eu-1.example2.com").host,
            HostPattern::Subdomains("s3.eu-1.example2.com".into())
        );
        assert_eq!(
            origin("https://*.1password.com").host,
            HostPattern::Subdomains("1password.com".into()),
            "a label may start with a digit; only an all-digit last label reads as an address"
        );
    }

    #[test]
    fn matching_is_exact_on_scheme_port_and_host() {
        let grant = HttpGrant(vec![
            origin("https://api.example.com"),
            origin("https://*.example.org"),
        ]);
        assert!(
            grant
                .allowing(Scheme::Https, "api.example.com", 443)
                .is_some()
        );
        assert!(
            grant
                .allowing(Scheme::Http, "api.example.com", 80)
                .is_none()
        );
        assert!(
            grant
                .allowing(Scheme::Https, "api.example.com", 8443)
                .is_none()
        );
        assert!(grant.allowing(Scheme::Https, "evil.com", 443).is_none());
        assert!(
            grant
                .allowing(Scheme::Https, "a.b.example.org", 443)
                .is_some()
        );
        assert!(grant.allowing(Scheme::Https, "example.org", 443).is_none());
        assert!(
            grant
                .allowing(Scheme::Https, "badexample.org", 443)
                .is_none()
        );
    }

    #[test]
    fn non_public_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["1.1.1.1", "93.184.216.34", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn only_literal_or_localhost_entries_reach_private_addresses() {
        assert!(origin("http://10.0.0.1").host.allows_private());
        assert!(origin("http://localhost:8080").host.allows_private());
        assert!(!origin("https://internal.example.com").host.allows_private());
        assert!(!origin("https://*.example.com").host.allows_private());
    }
}

//! Blocking outgoing HTTP requests through `wasi:http/outgoing-handler`.
//!
//! The host decides which URLs a tool may reach. A request outside the tool's grant fails with
//! [`HttpError::Denied`]; every other failure says which URL it was and what went wrong.
//!
//! ```no_run
//! use are_guest_sdk::http;
//!
//! # fn main() -> Result<(), http::HttpError> {
//! let page = http::get("https://example.com/")?;
//! println!("{} bytes, status {}", page.body.len(), page.status);
//!
//! let head = http::Request::get("https://example.com/big.json")
//!     .header("accept", "application/json")
//!     .max_body_bytes(64 * 1024)
//!     .send()?;
//! if head.truncated {
//!     println!("kept the first {} bytes", head.body.len());
//! }
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::time::Duration;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, HeaderError, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions,
    Scheme,
};
use wasip2::io::streams::StreamError;

/// The error codes of `wasi:http`, as the host reports them.
pub use wasip2::http::types::ErrorCode;

/// How many bytes one read from the response body asks for.
const READ_CHUNK: u64 = 64 * 1024;

/// Sends a `GET` request to `url` and reads the whole response.
///
/// # Errors
///
/// See [`HttpError`]: an invalid URL, a request the host denies, a failed connection or a broken body.
pub fn get(url: &str) -> Result<Response, HttpError> {
    Request::get(url).send()
}

/// An HTTP request, built with chained methods and sent with [`Request::send`].
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    max_body_bytes: Option<u64>,
    timeout: Option<Duration>,
}

impl Request {
    /// A request with the given method (`GET`, `POST`, … or any other token) and URL, no headers, no body,
    /// no size limit and the host's default timeouts.
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            method: method.to_owned(),
            url: url.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            max_body_bytes: None,
            timeout: None,
        }
    }

    /// A `GET` request for `url`.
    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }

    /// A `POST` request for `url` with `body`.
    pub fn post(url: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::new("POST", url).body(body)
    }

    /// Adds a request header. Headers the host forbids (such as `host`) fail the request.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the request body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Keeps at most `max` bytes of the response body; the rest is not read and
    /// [`Response::truncated`] is set.
    pub fn max_body_bytes(mut self, max: u64) -> Self {
        self.max_body_bytes = Some(max);
        self
    }

    /// Sets the connect, first-byte and between-bytes timeouts to `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends the request and reads the response, blocking until it is complete.
    ///
    /// # Errors
    ///
    /// See [`HttpError`].
    pub fn send(self) -> Result<Response, HttpError> {
        let url = self.url.clone();
        let parts = UrlParts::parse(&url)?;

        let entries: Vec<(String, Vec<u8>)> = self
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value.clone().into_bytes()))
            .collect();
        let headers = Fields::from_list(&entries).map_err(|error| HttpError::InvalidHeader {
            url: url.clone(),
            reason: match error {
                HeaderError::InvalidSyntax => "a header name or value is not valid HTTP",
                HeaderError::Forbidden => "the host forbids one of the headers",
                HeaderError::Immutable => "the headers are immutable",
            },
        })?;

        let request = OutgoingRequest::new(headers);
        let method = match self.method.as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "CONNECT" => Method::Connect,
            "OPTIONS" => Method::Options,
            "TRACE" => Method::Trace,
            "PATCH" => Method::Patch,
            other => Method::Other(other.to_owned()),
        };
        let invalid = |reason: &'static str| HttpError::InvalidUrl {
            url: url.clone(),
            reason,
        };
        request
            .set_method(&method)
            .map_err(|()| invalid("the method is not a valid HTTP token"))?;
        request
            .set_scheme(Some(&parts.scheme))
            .map_err(|()| invalid("the scheme is not valid"))?;
        request
            .set_authority(Some(&parts.authority))
            .map_err(|()| invalid("the host or port is not valid"))?;
        request
            .set_path_with_query(Some(&parts.path_with_query))
            .map_err(|()| invalid("the path or query is not valid"))?;

        let options = self.timeout.map(|timeout| {
            let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
            let options = RequestOptions::new();
            // A host that does not support a timeout refuses to set it; it then applies its own.
            let _ = options.set_connect_timeout(Some(nanos));
            let _ = options.set_first_byte_timeout(Some(nanos));
            let _ = options.set_between_bytes_timeout(Some(nanos));
            options
        });

        // Without a body the host sends an empty one, so only take it when there is something to write.
        let outgoing_body = if self.body.is_empty() {
            None
        } else {
            let body = request.body().map_err(|()| HttpError::Body {
                url: url.clone(),
                message: "the request body was already taken".to_owned(),
            })?;
            Some(body)
        };

        let future = outgoing_handler::handle(request, options)
            .map_err(|code| HttpError::from_code(&url, code))?;

        if let Some(body) = outgoing_body {
            write_body(&url, body, &self.body)?;
        }

        let response = loop {
            match future.get() {
                Some(Ok(Ok(response))) => break response,
                Some(Ok(Err(code))) => return Err(HttpError::from_code(&url, code)),
                Some(Err(())) => {
                    return Err(HttpError::Body {
                        url: url.clone(),
                        message: "the response was already taken".to_owned(),
                    });
                }
                None => future.subscribe().block(),
            }
        };

        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect();
        let incoming = response.consume().map_err(|()| HttpError::Body {
            url: url.clone(),
            message: "the response body was already taken".to_owned(),
        })?;
        let (body, truncated) =
            read_body(&url, &incoming, self.max_body_bytes.unwrap_or(u64::MAX))?;
        // Trailers are not read; finishing the body releases it.
        drop(IncomingBody::finish(incoming));
        drop(response);

        Ok(Response {
            status,
            headers,
            body,
            truncated,
        })
    }
}

fn write_body(url: &str, body: OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    let failed = |message: String| HttpError::Body {
        url: url.to_owned(),
        message,
    };
    {
        let stream = body
            .write()
            .map_err(|()| failed("the request body stream was already taken".to_owned()))?;
        // `blocking_write_and_flush` takes at most 4096 bytes at a time.
        for chunk in bytes.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|error| failed(stream_error(&error)))?;
        }
    }
    OutgoingBody::finish(body, None).map_err(|code| HttpError::from_code(url, code))
}

/// Reads up to `max` bytes; returns the bytes and whether more were left unread.
fn read_body(url: &str, body: &IncomingBody, max: u64) -> Result<(Vec<u8>, bool), HttpError> {
    let failed = |message: String| HttpError::Body {
        url: url.to_owned(),
        message,
    };
    let stream = body
        .stream()
        .map_err(|()| failed("the response body stream was already taken".to_owned()))?;
    let mut bytes = Vec::new();
    loop {
        let kept = bytes.len() as u64;
        // Once `max` bytes are kept, one more byte tells whether the body was cut.
        let want = if kept >= max {
            1
        } else {
            (max - kept).min(READ_CHUNK)
        };
        match stream.blocking_read(want) {
            Ok(chunk) if kept >= max => return Ok((bytes, !chunk.is_empty())),
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Ok((bytes, false)),
            Err(error) => return Err(failed(stream_error(&error))),
        }
    }
}

fn stream_error(error: &StreamError) -> String {
    match error {
        StreamError::Closed => "the stream closed early".to_owned(),
        StreamError::LastOperationFailed(error) => {
            match wasip2::http::types::http_error_code(error) {
                Some(code) => describe(&code),
                None => error.to_debug_string(),
            }
        }
    }
}

/// The response to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The response headers in the order received; values that are not UTF-8 are converted lossily.
    pub headers: Vec<(String, String)>,
    /// The body, at most [`Request::max_body_bytes`] long.
    pub body: Vec<u8>,
    /// Whether the body was longer than [`Request::max_body_bytes`] and was cut.
    pub truncated: bool,
}

impl Response {
    /// The body as text, with invalid UTF-8 replaced by U+FFFD.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of the header `name` (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Why an HTTP request failed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HttpError {
    /// The URL could not be split into scheme, host and path.
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A request header was refused.
    InvalidHeader {
        /// The URL of the request.
        url: String,
        /// What is wrong with the headers.
        reason: &'static str,
    },
    /// The host refused to send the request (`HTTP-request-denied`): the tool was not granted this URL.
    Denied {
        /// The URL of the request.
        url: String,
    },
    /// The request was sent, or tried, and failed: DNS, connection, TLS, protocol or timeout.
    Failed {
        /// The URL of the request.
        url: String,
        /// The `wasi:http` error code the host reported.
        code: ErrorCode,
    },
    /// Writing the request body or reading the response body failed.
    Body {
        /// The URL of the request.
        url: String,
        /// What happened.
        message: String,
    },
}

impl HttpError {
    fn from_code(url: &str, code: ErrorCode) -> Self {
        match code {
            ErrorCode::HttpRequestDenied => HttpError::Denied {
                url: url.to_owned(),
            },
            code => HttpError::Failed {
                url: url.to_owned(),
                code,
            },
        }
    }

    /// The URL of the request that failed.
    pub fn url(&self) -> &str {
        match self {
            HttpError::InvalidUrl { url, .. }
            | HttpError::InvalidHeader { url, .. }
            | HttpError::Denied { url }
            | HttpError::Failed { url, .. }
            | HttpError::Body { url, .. } => url,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::InvalidUrl { url, reason } => write!(f, "invalid URL `{url}`: {reason}"),
            HttpError::InvalidHeader { url, reason } => {
                write!(f, "request to `{url}` not sent: {reason}")
            }
            HttpError::Denied { url } => write!(
                f,
                "request to `{url}` denied by the host (HTTP-request-denied): this tool is not allowed to reach it"
            ),
            HttpError::Failed { url, code } => {
                write!(f, "request to `{url}` failed: {}", describe(code))
            }
            HttpError::Body { url, message } => {
                write!(f, "request to `{url}` failed in the body: {message}")
            }
        }
    }
}

impl std::error::Error for HttpError {}

/// The `wasi:http` name of an error code, with its details.
pub fn describe(code: &ErrorCode) -> String {
    fn some<T: fmt::Display>(value: &Option<T>) -> String {
        value
            .as_ref()
            .map_or_else(String::new, |value| format!(" ({value})"))
    }
    fn field(payload: &wasip2::http::types::FieldSizePayload) -> String {
        match (&payload.field_name, payload.field_size) {
            (Some(name), Some(size)) => format!(" ({name}: {size} bytes)"),
            (Some(name), None) => format!(" ({name})"),
            (None, size) => some(&size),
        }
    }
    match code {
        ErrorCode::DnsTimeout => "DNS-timeout".to_owned(),
        ErrorCode::DnsError(payload) => {
            let mut text = "DNS-error".to_owned();
            if let Some(rcode) = &payload.rcode {
                text.push_str(&format!(" ({rcode})"));
            }
            if let Some(info) = payload.info_code {
                text.push_str(&format!(" (info code {info})"));
            }
            text
        }
        ErrorCode::DestinationNotFound => "destination-not-found".to_owned(),
        ErrorCode::DestinationUnavailable => "destination-unavailable".to_owned(),
        ErrorCode::DestinationIpProhibited => "destination-IP-prohibited".to_owned(),
        ErrorCode::DestinationIpUnroutable => "destination-IP-unroutable".to_owned(),
        ErrorCode::ConnectionRefused => "connection-refused".to_owned(),
        ErrorCode::ConnectionTerminated => "connection-terminated".to_owned(),
        ErrorCode::ConnectionTimeout => "connection-timeout".to_owned(),
        ErrorCode::ConnectionReadTimeout => "connection-read-timeout".to_owned(),
        ErrorCode::ConnectionWriteTimeout => "connection-write-timeout".to_owned(),
        ErrorCode::ConnectionLimitReached => "connection-limit-reached".to_owned(),
        ErrorCode::TlsProtocolError => "TLS-protocol-error".to_owned(),
        ErrorCode::TlsCertificateError => "TLS-certificate-error".to_owned(),
        ErrorCode::TlsAlertReceived(payload) => {
            format!(
                "TLS-alert-received{}{}",
                some(&payload.alert_id),
                some(&payload.alert_message)
            )
        }
        ErrorCode::HttpRequestDenied => "HTTP-request-denied".to_owned(),
        ErrorCode::HttpRequestLengthRequired => "HTTP-request-length-required".to_owned(),
        ErrorCode::HttpRequestBodySize(size) => format!("HTTP-request-body-size{}", some(size)),
        ErrorCode::HttpRequestMethodInvalid => "HTTP-request-method-invalid".to_owned(),
        ErrorCode::HttpRequestUriInvalid => "HTTP-request-URI-invalid".to_owned(),
        ErrorCode::HttpRequestUriTooLong => "HTTP-request-URI-too-long".to_owned(),
        ErrorCode::HttpRequestHeaderSectionSize(size) => {
            format!("HTTP-request-header-section-size{}", some(size))
        }
        ErrorCode::HttpRequestHeaderSize(payload) => {
            format!(
                "HTTP-request-header-size{}",
                payload.as_ref().map_or_else(String::new, field)
            )
        }
        ErrorCode::HttpRequestTrailerSectionSize(size) => {
            format!("HTTP-request-trailer-section-size{}", some(size))
        }
        ErrorCode::HttpRequestTrailerSize(payload) => {
            format!("HTTP-request-trailer-size{}", field(payload))
        }
        ErrorCode::HttpResponseIncomplete => "HTTP-response-incomplete".to_owned(),
        ErrorCode::HttpResponseHeaderSectionSize(size) => {
            format!("HTTP-response-header-section-size{}", some(size))
        }
        ErrorCode::HttpResponseHeaderSize(payload) => {
            format!("HTTP-response-header-size{}", field(payload))
        }
        ErrorCode::HttpResponseBodySize(size) => format!("HTTP-response-body-size{}", some(size)),
        ErrorCode::HttpResponseTrailerSectionSize(size) => {
            format!("HTTP-response-trailer-section-size{}", some(size))
        }
        ErrorCode::HttpResponseTrailerSize(payload) => {
            format!("HTTP-response-trailer-size{}", field(payload))
        }
        ErrorCode::HttpResponseTransferCoding(coding) => {
            format!("HTTP-response-transfer-coding{}", some(coding))
        }
        ErrorCode::HttpResponseContentCoding(coding) => {
            format!("HTTP-response-content-coding{}", some(coding))
        }
        ErrorCode::HttpResponseTimeout => "HTTP-response-timeout".to_owned(),
        ErrorCode::HttpUpgradeFailed => "HTTP-upgrade-failed".to_owned(),
        ErrorCode::HttpProtocolError => "HTTP-protocol-error".to_owned(),
        ErrorCode::LoopDetected => "loop-detected".to_owned(),
        ErrorCode::ConfigurationError => "configuration-error".to_owned(),
        ErrorCode::InternalError(message) => format!("internal-error{}", some(message)),
    }
}

/// A URL split the way `wasi:http` wants it.
#[derive(Debug)]
struct UrlParts {
    scheme: Scheme,
    authority: String,
    path_with_query: String,
}

impl UrlParts {
    fn parse(url: &str) -> Result<Self, HttpError> {
        let invalid = |reason: &'static str| HttpError::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("expected `scheme://host/path`"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            "" => return Err(invalid("the scheme is empty")),
            other => Scheme::Other(other.to_owned()),
        };
        // The fragment never goes to the server.
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() {
            return Err(invalid("the host is empty"));
        }
        if authority.contains('@') {
            return Err(invalid(
                "credentials in the URL are not supported; send an `authorization` header",
            ));
        }
        if authority
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid("the host contains whitespace"));
        }
        let path_with_query = match path.chars().next() {
            None => "/".to_owned(),
            Some('?') => format!("/{path}"),
            Some(_) => path.to_owned(),
        };
        Ok(Self {
            scheme,
            authority: authority.to_owned(),
            path_with_query,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> (String, String, String) {
        let parts = UrlParts::parse(url).unwrap();
        let scheme = match parts.scheme {
            Scheme::Http => "http".to_owned(),
            Scheme::Https => "https".to_owned(),
            Scheme::Other(other) => other,
        };
        (scheme, parts.authority, parts.path_with_query)
    }

    fn reason(url: &str) -> &'static str {
        match UrlParts::parse(url) {
            Err(HttpError::InvalidUrl { reason, .. }) => reason,
            other => panic!("expected an invalid URL, got {other:?}"),
        }
    }

    #[test]
    fn splits_urls() {
        let owned = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
        assert_eq!(
            parts("https://example.com"),
            owned("https", "example.com", "/")
        );
        assert_eq!(
            parts("HTTP://example.com:8080/a/b?c=d#frag"),
            owned("http", "example.com:8080", "/a/b?c=d")
        );
        assert_eq!(
            parts("http://127.0.0.1?x=1"),
            owned("http", "127.0.0.1", "/?x=1")
        );
        assert_eq!(parts("http://[::1]:80/"), owned("http", "[::1]:80", "/"));
        assert_eq!(
            parts("ftp://files.example.com/x"),
            owned("ftp", "files.example.com", "/x")
        );
    }

    #[test]
    fn rejects_bad_urls() {
        assert_eq!(reason("example.com/path"), "expected `scheme://host/path`");
        assert_eq!(reason("https:///path"), "the host is empty");
        assert_eq!(reason("://host"), "the scheme is empty");
        assert!(reason("https://user:pw@example.com/").starts_with("credentials"));
        assert_eq!(
            reason("https://exa mple.com/"),
            "the host contains whitespace"
        );
    }

    #[test]
    fn messages_name_the_url() {
        let denied = HttpError::Denied {
            url: "https://evil.example/".to_owned(),
        };
        let text = denied.to_string();
        assert!(
            text.contains("https://evil.example/") && text.contains("HTTP-request-denied"),
            "{text}"
        );
        assert_eq!(denied.url(), "https://evil.example/");
        let failed = HttpError::Failed {
            url: "http://x/".to_owned(),
            code: ErrorCode::ConnectionRefused,
        };
        assert_eq!(
            failed.to_string(),
            "request to `http://x/` failed: connection-refused"
        );
    }

    #[test]
    fn response_helpers() {
        let response = Response {
            status: 200,
            headers: vec![("Content-Type".to_owned(), "text/plain".to_owned())],
            body: b"hi \xff".to_vec(),
            truncated: false,
        };
        assert_eq!(response.header("content-type"), Some("text/plain"));
        assert_eq!(response.header("missing"), None);
        assert_eq!(response.text(), "hi \u{fffd}");
    }
}

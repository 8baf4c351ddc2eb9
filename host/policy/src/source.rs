//! The syntax of a component's `source`: a local file, an `https://` URL or an `oci://` registry reference.
//!
//! A policy's `source` (and the COMPONENT argument of `are call` and `are inspect`) is one of:
//!
//! | source | fetched | pinned by |
//! | --- | --- | --- |
//! | `tools/x.wasm` | read from disk, relative to the policy | optional `sha256` |
//! | `https://host/x.wasm` | downloaded over HTTPS | `sha256` (required) |
//! | `oci://registry/repo@sha256:<manifest digest>` | pulled from an OCI registry | the manifest digest |
//! | `oci://registry/repo:tag` | pulled from an OCI registry | `sha256` (required) |
//!
//! Plain `http://` is refused, except to a loopback IP literal (`http://127.0.0.1:8080/x.wasm`,
//! `http://[::1]/x.wasm`), which tests use to serve a file locally. How sources are fetched, pinned and cached is
//! `are_runtime::source`.

use crate::common::{is_loopback_literal, parse_hex};
use std::path::{Path, PathBuf};

/// A source that is not a usable path, URL or reference. The message names the source and says what to write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid component source {location:?}: {message}")]
pub struct InvalidSource {
    /// The source as written.
    pub location: String,
    /// What is wrong and what to write instead.
    pub message: String,
}

/// A parsed component source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file on disk.
    Local(PathBuf),
    /// An `https://` URL (or `http://` to a loopback IP literal).
    Https(url::Url),
    /// An `oci://` registry reference.
    Oci(OciSource),
}

/// An `oci://registry/repository[:tag][@sha256:digest]` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciSource {
    /// The reference as written, without `oci://`.
    pub text: String,
    /// The parsed reference.
    pub reference: oci_spec::distribution::Reference,
    /// The manifest digest the reference pins, if any.
    pub manifest_digest: Option<[u8; 32]>,
}

impl Source {
    /// Parse a source: `https://…`, `http://<loopback IP>…` or `oci://…`; anything without a `scheme://` prefix is a
    /// local path (resolved by the caller).
    ///
    /// # Errors
    /// [`InvalidSource`] for an unknown scheme, a malformed URL or reference, `http://` to anything but a
    /// loopback IP literal, or an OCI digest that is not sha256.
    pub fn parse(text: &str) -> Result<Source, InvalidSource> {
        let invalid = |message: String| InvalidSource {
            location: text.to_string(),
            message,
        };
        let Some((scheme, rest)) = split_scheme(text) else {
            return Ok(Source::Local(PathBuf::from(text)));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "https" | "http" => {
                let url = url::Url::parse(text).map_err(|e| invalid(format!("{e}")))?;
                check_url(&url).map_err(|e| invalid(e.to_string()))?;
                Ok(Source::Https(url))
            }
            "oci" => Self::parse_oci(rest).map_err(invalid),
            other => Err(invalid(format!(
                "unsupported scheme `{other}://`: use a path, `https://…` or `oci://registry/repository@sha256:…`"
            ))),
        }
    }

    /// The source a component path stands for: a path whose text is a URL or reference is remote (policies and
    /// the CLI keep remote sources in `are_runtime::component::ComponentSpec::path` as written).
    ///
    /// # Errors
    /// As [`Source::parse`].
    pub fn from_path(path: &Path) -> Result<Source, InvalidSource> {
        match path.to_str() {
            Some(text) if split_scheme(text).is_some() => Source::parse(text),
            _ => Ok(Source::Local(path.to_path_buf())),
        }
    }

    /// Whether the text is a remote source (has a `scheme://` prefix).
    pub fn is_remote_text(text: &str) -> bool {
        split_scheme(text).is_some()
    }

    /// Whether this source is fetched over the network.
    pub fn is_remote(&self) -> bool {
        !matches!(self, Source::Local(_))
    }

    /// A short name for the component: the file stem of a path or URL, the last repository segment of an OCI
    /// reference.
    pub fn default_name(&self) -> String {
        let segment = match self {
            Source::Local(path) => {
                return path.file_stem().map_or_else(
                    || path.display().to_string(),
                    |s| s.to_string_lossy().into_owned(),
                );
            }
            Source::Https(url) => url
                .path_segments()
                .and_then(|mut s| s.rfind(|s| !s.is_empty()))
                .unwrap_or("component")
                .to_string(),
            Source::Oci(oci) => oci
                .reference
                .repository()
                .rsplit('/')
                .next()
                .unwrap_or("component")
                .to_string(),
        };
        let stem = segment.split_once('.').map_or(segment.as_str(), |(s, _)| s);
        let name: String = stem
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .take(64)
            .collect();
        if name.is_empty() {
            "component".into()
        } else {
            name
        }
    }

    fn parse_oci(rest: &str) -> Result<Source, String> {
        let first = rest.split('/').next().unwrap_or("");
        if !rest.contains('/')
            || !(first.contains('.') || first.contains(':') || first == "localhost")
        {
            return Err(
                "write the registry host: `oci://registry.example.com/namespace/name@sha256:…` (or `:tag` with a \
                 `sha256` pin)"
                    .into(),
            );
        }
        let reference: oci_spec::distribution::Reference =
            rest.parse().map_err(|e| format!("{e}"))?;
        let manifest_digest = match reference.digest() {
            None => None,
            Some(digest) => Some(
                digest
                    .strip_prefix("sha256:")
                    .and_then(parse_hex::<32>)
                    .ok_or_else(|| {
                        format!("unsupported digest {digest:?}: only `sha256:<64 hex>` is accepted")
                    })?,
            ),
        };
        Ok(Source::Oci(OciSource {
            text: rest.to_string(),
            reference,
            manifest_digest,
        }))
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Local(path) => write!(f, "{}", path.display()),
            Source::Https(url) => write!(f, "{url}"),
            Source::Oci(oci) => write!(f, "oci://{}", oci.text),
        }
    }
}

/// `("https", "host/x")` for `https://host/x`; `None` without a `scheme://` prefix.
fn split_scheme(text: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = text.split_once("://")?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some((scheme, rest))
}

/// `https://`, or `http://` to a loopback IP literal; no credentials in the URL. Fetchers apply it to redirects too.
pub fn check_url(url: &url::Url) -> Result<(), UnsafeUrl> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UnsafeUrl::Credentials);
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if url.host_str().is_some_and(is_loopback_literal) => Ok(()),
        "http" => Err(UnsafeUrl::PlainHttp),
        other => Err(UnsafeUrl::Scheme(other.to_string())),
    }
}

/// Why a source URL (or a redirect) is refused (see [`check_url`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeUrl {
    /// A user name or password in the URL.
    #[error("credentials in the URL are not supported")]
    Credentials,
    /// `http://` to anything but a loopback IP literal.
    #[error(
        "plain http is refused (anyone on the path could swap the component): use https:// (http:// is allowed \
         only to a loopback IP literal such as 127.0.0.1, for tests)"
    )]
    PlainHttp,
    /// Neither https nor http.
    #[error("unsupported scheme `{0}://`")]
    Scheme(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse() {
        assert_eq!(
            Source::parse("tools/x.wasm").unwrap(),
            Source::Local("tools/x.wasm".into())
        );
        assert!(matches!(
            Source::parse("https://example.com/x.wasm").unwrap(),
            Source::Https(_)
        ));
        assert!(matches!(
            Source::parse("http://127.0.0.1:8080/x.wasm").unwrap(),
            Source::Https(_)
        ));
        assert!(matches!(
            Source::parse("http://[::1]:8080/x.wasm").unwrap(),
            Source::Https(_)
        ));
        let Source::Oci(oci) =
            Source::parse(&format!("oci://ghcr.io/a/b@sha256:{}", "ab".repeat(32))).unwrap()
        else {
            panic!("not oci")
        };
        assert_eq!(oci.manifest_digest, Some([0xab; 32]));
        assert_eq!(oci.reference.registry(), "ghcr.io");
        assert_eq!(oci.reference.repository(), "a/b");
        let Source::Oci(oci) = Source::parse("oci://127.0.0.1:5000/tools/hash:1.0").unwrap() else {
            panic!("not oci")
        };
        assert_eq!(oci.manifest_digest, None);
        assert_eq!(oci.reference.tag(), Some("1.0"));
    }

    #[test]
    fn bad_sources_say_why() {
        for (text, why) in [
            ("http://example.com/x.wasm", "plain http is refused"),
            ("http://10.0.0.1/x.wasm", "plain http is refused"),
            ("http://localhost/x.wasm", "plain http is refused"),
            ("ftp://example.com/x.wasm", "unsupported scheme `ftp://`"),
            ("https://user:pw@example.com/x.wasm", "credentials"),
            ("oci://a/b", "write the registry host"),
            ("oci://ghcr.io/a/b@sha256:abcd", "invalid reference format"),
        ] {
            let err = Source::parse(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
            assert!(err.contains(text), "{text}: {err}");
        }
        let sha512 = format!("oci://ghcr.io/a/b@sha512:{}", "ab".repeat(64));
        let err = Source::parse(&sha512).unwrap_err().to_string();
        assert!(err.contains("only `sha256:<64 hex>`"), "{err}");
    }

    #[test]
    fn default_names() {
        let name = |s: &str| Source::parse(s).unwrap().default_name();
        assert_eq!(name("https://example.com/tools/hash.wasm"), "hash");
        assert_eq!(name("https://example.com/tools/hash.wasm?x=1"), "hash");
        assert_eq!(name("oci://ghcr.io/org/text-tools:1.2"), "text-tools");
        assert_eq!(name("tools/fetch.wasm"), "fetch");
    }
}

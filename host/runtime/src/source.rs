//! Where a component comes from: a local file, an `https://` URL or an `oci://` registry reference.
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
//! **Pins are checked before anything is compiled.** A remote source without a pin is refused, naming the component
//! and (when the download worked) the digest to pin, unless `--allow-unpinned` is given
//! ([`FetchOptions::allow_unpinned`]).
//! `sha256` is always the digest of the component's bytes; an `oci://…@sha256:` digest is the digest of the image
//! manifest, which names the wasm layer by its own digest, so the bytes are pinned through it. Both may be given;
//! then both must hold.
//!
//! Downloads are kept in the cache directory (`$ARE_CACHE_DIR/sources/`), content-addressed: `sha256-<hex>.wasm`
//! for components and `manifest-sha256-<hex>.json` for OCI manifests, each written to a temporary file and renamed
//! into place. Only what a run accepted is stored. A pinned source whose blob is cached (and still has its digest)
//! is used without any network access, so a second run works offline; an unpinned one is downloaded every time.
//!
//! HTTPS uses rustls with the webpki roots (as the `http` capability does), a timeout and a size cap
//! ([`FetchOptions`]), and follows at most 5 redirects, each only to `https://`. Plain `http://` is refused, except
//! to a loopback IP literal (`http://127.0.0.1:8080/x.wasm`, `http://[::1]/x.wasm`), which tests use to serve a
//! file locally. The same holds for OCI registries: HTTPS, except plain HTTP to a loopback IP registry
//! (`oci://127.0.0.1:5000/tools/x:1`). Registries are pulled anonymously. An OCI component is an image manifest
//! whose single layer has media type `application/wasm` (the CNCF wasm OCI artifact format, config
//! `application/vnd.wasm.config.v0+json`; the older `application/vnd.wasm.content.layer.v1+wasm` layer is accepted
//! too); an image index is refused.

use are_policy::Sha256Pin;
use are_policy::common::{hex, is_loopback_literal, parse_hex, sha256, strip_port};
use are_policy::source::{InvalidSource, OciSource, Source, check_url};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Layer media types that hold a component.
const WASM_LAYER_TYPES: &[&str] = &[
    "application/wasm",
    oci_client::manifest::WASM_LAYER_MEDIA_TYPE,
];
/// Manifest media types we ask a registry for.
const MANIFEST_TYPES: &[&str] = &[
    oci_client::manifest::OCI_IMAGE_MEDIA_TYPE,
    oci_client::manifest::IMAGE_MANIFEST_MEDIA_TYPE,
];
/// Redirects an HTTPS download follows at most.
const MAX_REDIRECTS: usize = 5;

/// Why a source could not be resolved. Messages name the source and say what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The source string is not a usable path, URL or reference.
    #[error("invalid component source {location:?}: {message}")]
    Invalid {
        /// The source as written.
        location: String,
        /// What is wrong and what to write instead.
        message: String,
    },
    /// A remote source without a pin, and `--allow-unpinned` was not given.
    #[error("{}", unpinned_message(component, location, actual.as_deref(), manifest.as_deref(), cause.as_deref()))]
    Unpinned {
        /// The component's name.
        component: String,
        /// The source.
        location: String,
        /// The hex sha256 of the bytes, when the download worked.
        actual: Option<String>,
        /// For OCI, the manifest digest (`sha256:…`), when the pull worked.
        manifest: Option<String>,
        /// Why the download failed, when it did.
        cause: Option<String>,
    },
    /// The downloaded bytes do not match the pin.
    #[error(
        "sha256 mismatch for component `{component}` from {location}: the policy pins {expected} but the download is \
         {actual}; nothing was compiled. The source changed or was tampered with: if the new contents are intended, \
         update `sha256` in the policy"
    )]
    PinMismatch {
        /// The component's name.
        component: String,
        /// The source.
        location: String,
        /// The pinned digest (hex).
        expected: String,
        /// The digest of what was downloaded (hex).
        actual: String,
    },
    /// The download or registry pull failed.
    #[error("cannot fetch component `{component}` from {location}: {message}")]
    Fetch {
        /// The component's name.
        component: String,
        /// The source.
        location: String,
        /// What went wrong.
        message: String,
    },
}

impl From<InvalidSource> for SourceError {
    fn from(e: InvalidSource) -> SourceError {
        SourceError::Invalid {
            location: e.location,
            message: e.message,
        }
    }
}

fn unpinned_message(
    component: &str,
    source: &str,
    actual: Option<&str>,
    manifest: Option<&str>,
    cause: Option<&str>,
) -> String {
    let mut m = format!(
        "component `{component}`: the remote source {source} is not pinned, so it was not loaded; "
    );
    match actual {
        Some(hex) => {
            m.push_str(&format!(
                "its sha256 is {hex}: add `sha256 = \"{hex}\"` to its policy table (or pass `--sha256 {hex}`)"
            ));
            if let Some(digest) = manifest {
                let bare = source.split('@').next().unwrap_or(source);
                m.push_str(&format!(", or pin the manifest with `{bare}@{digest}`"));
            }
        }
        None => m.push_str(
            "add `sha256 = \"<hex digest of the .wasm>\"` to its policy table (or pass `--sha256 HEX`)",
        ),
    }
    m.push_str(", or pass --allow-unpinned to accept whatever the server sends");
    if let Some(cause) = cause {
        m.push_str(&format!(" (the download failed as well: {cause})"));
    }
    m
}

/// Limits of one fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Accept remote sources without a pin (`--allow-unpinned`; default false).
    pub allow_unpinned: bool,
    /// Largest component accepted, in bytes: the component's `limits.max_component_size` (default 256 MiB).
    pub max_size: u64,
    /// Time for one whole fetch (default 5 minutes).
    pub timeout: Duration,
    /// Time to connect (default 30 s).
    pub connect_timeout: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            allow_unpinned: false,
            max_size: are_policy::DEFAULT_MAX_COMPONENT_SIZE,
            timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(30),
        }
    }
}

/// What a fetch produced: the component's bytes, verified against every pin given.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Their sha256.
    pub digest: [u8; 32],
    /// Where they are kept in the cache (`None` when the cache could not be written).
    pub path: Option<PathBuf>,
    /// Whether they came from the cache, without network access.
    pub from_cache: bool,
}

/// The directory of the cache that downloads are kept in.
pub const SOURCES_DIR: &str = "sources";

/// Fetches remote sources into a content-addressed directory.
#[derive(Debug, Clone)]
pub struct Fetcher {
    dir: PathBuf,
    options: FetchOptions,
}

impl Fetcher {
    /// A fetcher keeping downloads in `<cache_dir>/sources`.
    pub fn new(cache_dir: &Path, options: FetchOptions) -> Fetcher {
        Fetcher {
            dir: cache_dir.join(SOURCES_DIR),
            options,
        }
    }

    /// The directory downloads are kept in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the component with sha256 `digest` is kept.
    pub fn blob_path(&self, digest: &[u8; 32]) -> PathBuf {
        self.dir.join(format!("sha256-{}.wasm", hex(digest)))
    }

    /// Whether a file named `name` in [`Fetcher::dir`] is one a fetcher writes: a component, an OCI manifest, or
    /// a download still being written.
    pub fn is_download(name: &str) -> bool {
        name.starts_with(".tmp-")
            || (name.starts_with("sha256-") && name.ends_with(".wasm"))
            || (name.starts_with("manifest-sha256-") && name.ends_with(".json"))
    }

    fn manifest_path(&self, digest: &[u8; 32]) -> PathBuf {
        self.dir
            .join(format!("manifest-sha256-{}.json", hex(digest)))
    }

    /// The bytes of remote `source` for component `component`, verified against `pin` (and an OCI manifest
    /// digest) before they are returned: from the cache when pinned and present, else downloaded.
    ///
    /// # Errors
    /// [`SourceError::Unpinned`], [`SourceError::PinMismatch`] or [`SourceError::Fetch`]; a local source is
    /// [`SourceError::Invalid`] (read it with [`crate::component::read_component`]).
    pub fn fetch(
        &self,
        component: &str,
        source: &Source,
        pin: Option<&Sha256Pin>,
    ) -> Result<Fetched, SourceError> {
        let fetch_error = |message: String| SourceError::Fetch {
            component: component.to_string(),
            location: source.to_string(),
            message,
        };
        if let Source::Local(path) = source {
            return Err(SourceError::Invalid {
                location: path.display().to_string(),
                message: "a local file is read (`component::read_component`), not fetched".into(),
            });
        }
        let pinned =
            pin.is_some() || matches!(source, Source::Oci(o) if o.manifest_digest.is_some());
        if let Some(cached) = self.cached(source, pin) {
            return Ok(cached);
        }
        let downloaded = run_blocking(self.download(source, &fetch_error));
        let (bytes, manifest) = match downloaded {
            Ok(ok) => ok,
            Err(e) if !pinned && !self.options.allow_unpinned => {
                return Err(SourceError::Unpinned {
                    component: component.to_string(),
                    location: source.to_string(),
                    actual: None,
                    manifest: None,
                    cause: Some(match e {
                        SourceError::Fetch { message, .. } => message,
                        other => other.to_string(),
                    }),
                });
            }
            Err(e) => return Err(e),
        };
        let digest = sha256(&bytes);
        if let Some(pin) = pin
            && pin.0 != digest
        {
            return Err(SourceError::PinMismatch {
                component: component.to_string(),
                location: source.to_string(),
                expected: pin.to_string(),
                actual: hex(&digest),
            });
        }
        if !pinned && !self.options.allow_unpinned {
            return Err(SourceError::Unpinned {
                component: component.to_string(),
                location: source.to_string(),
                actual: Some(hex(&digest)),
                manifest: manifest.as_ref().map(|(d, _)| format!("sha256:{}", hex(d))),
                cause: None,
            });
        }
        if !pinned {
            tracing::warn!(component, source = %source, sha256 = %hex(&digest), "loading an unpinned remote source (--allow-unpinned)");
        }
        if let Some((manifest_digest, manifest)) = &manifest {
            self.store(&self.manifest_path(manifest_digest), manifest);
        }
        let path = self.blob_path(&digest);
        let path = self.store(&path, &bytes).then_some(path);
        Ok(Fetched {
            bytes,
            digest,
            path,
            from_cache: false,
        })
    }

    /// The cached bytes of a pinned source, if they are there and intact.
    fn cached(&self, source: &Source, pin: Option<&Sha256Pin>) -> Option<Fetched> {
        let want = match (source, pin) {
            (
                Source::Oci(OciSource {
                    manifest_digest: Some(m),
                    ..
                }),
                _,
            ) => {
                let manifest = self.read_verified(&self.manifest_path(m), m)?;
                let layer = wasm_layer(&manifest).ok()?;
                let layer = layer
                    .digest
                    .strip_prefix("sha256:")
                    .and_then(parse_hex::<32>)?;
                if pin.is_some_and(|p| p.0 != layer) {
                    return None; // Let the download report the mismatch.
                }
                layer
            }
            (_, Some(pin)) => pin.0,
            (_, None) => return None,
        };
        let path = self.blob_path(&want);
        let bytes = self.read_verified(&path, &want)?;
        tracing::debug!(path = %path.display(), "remote source from the cache");
        Some(Fetched {
            bytes,
            digest: want,
            path: Some(path),
            from_cache: true,
        })
    }

    /// The file at `path` if it is a regular file within the size cap and its sha256 is `digest`; a damaged file
    /// is removed.
    fn read_verified(&self, path: &Path, digest: &[u8; 32]) -> Option<Vec<u8>> {
        let bytes = read_regular_file(path, self.options.max_size).ok()?;
        if sha256(&bytes) == *digest {
            return Some(bytes);
        }
        tracing::warn!(path = %path.display(), "cached source does not match its digest; removing it and downloading again");
        let _ = std::fs::remove_file(path);
        None
    }

    /// Write `bytes` to `path` through a temporary file, in a directory of ours (`0700`, like the compile
    /// cache's); whether it worked (failures are logged: the bytes are still used, just not kept).
    fn store(&self, path: &Path, bytes: &[u8]) -> bool {
        let written = crate::cache::ensure_private_dir(&self.dir)
            .map_err(|why| format!("{}: {why}", self.dir.display()))
            .and_then(|()| crate::cache::write_private(path, &[bytes]).map_err(|e| e.to_string()));
        match written {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot keep the downloaded source ({e}); continuing without");
                false
            }
        }
    }

    /// Download the component (and for OCI, its manifest with the manifest's digest).
    async fn download(
        &self,
        source: &Source,
        fetch_error: &(dyn Fn(String) -> SourceError + Sync),
    ) -> Result<(Vec<u8>, Option<([u8; 32], Vec<u8>)>), SourceError> {
        let work = async {
            match source {
                Source::Local(path) => Err(SourceError::Invalid {
                    location: path.display().to_string(),
                    message: "a local file is read, not fetched".into(),
                }),
                Source::Https(url) => self
                    .download_https(url)
                    .await
                    .map(|b| (b, None))
                    .map_err(fetch_error),
                Source::Oci(oci) => self
                    .pull_oci(oci)
                    .await
                    .map(|(b, m)| (b, Some(m)))
                    .map_err(fetch_error),
            }
        };
        tokio::time::timeout(self.options.timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(fetch_error(format!(
                    "timed out after {}",
                    humantime::format_duration(self.options.timeout)
                )))
            })
    }

    async fn download_https(&self, url: &reqwest::Url) -> Result<Vec<u8>, String> {
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
            } else if let Err(why) = check_url(attempt.url()) {
                let to = attempt.url().to_string();
                attempt.error(format!("refused redirect to {to}: {why}"))
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured((*crate::tls::client_config()).clone())
            .redirect(redirects)
            .connect_timeout(self.options.connect_timeout)
            .timeout(self.options.timeout)
            .user_agent(concat!("are/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let mut response = client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| error_chain(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("the server answered {status}"));
        }
        let max = self.options.max_size;
        if let Some(len) = response.content_length()
            && len > max
        {
            return Err(too_large(len, max));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e))? {
            if (bytes.len() + chunk.len()) as u64 > max {
                return Err(too_large((bytes.len() + chunk.len()) as u64, max));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    /// Pull the manifest (checked against the reference's digest), find the wasm layer, pull it (checked against
    /// the layer digest).
    async fn pull_oci(&self, oci: &OciSource) -> Result<(Vec<u8>, ([u8; 32], Vec<u8>)), String> {
        // reqwest without a built-in crypto provider: use ring, as the rest of the host does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let registry = oci.reference.resolve_registry().to_string();
        let protocol = if is_loopback_literal(strip_port(&registry)) {
            oci_client::client::ClientProtocol::HttpsExcept(vec![registry.clone()])
        } else {
            oci_client::client::ClientProtocol::Https
        };
        let client = oci_client::Client::try_from(oci_client::client::ClientConfig {
            protocol,
            platform_resolver: None,
            read_timeout: Some(self.options.timeout),
            connect_timeout: Some(self.options.connect_timeout),
            user_agent: concat!("are/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        })
        .map_err(|e| format!("cannot build the registry client: {e}"))?;
        let auth = oci_client::secrets::RegistryAuth::Anonymous;
        let (manifest, _) = client
            .pull_manifest_raw(&oci.reference, &auth, MANIFEST_TYPES)
            .await
            .map_err(|e| format!("cannot pull the manifest: {}", error_chain(&e)))?;
        let manifest_digest = sha256(&manifest);
        if let Some(want) = oci.manifest_digest
            && want != manifest_digest
        {
            return Err(format!(
                "manifest digest mismatch: the reference pins sha256:{} but the registry sent sha256:{}",
                hex(&want),
                hex(&manifest_digest)
            ));
        }
        let layer = wasm_layer(&manifest)?;
        let layer_digest = layer
            .digest
            .strip_prefix("sha256:")
            .and_then(parse_hex::<32>)
            .ok_or_else(|| {
                format!(
                    "unsupported layer digest {:?}: only sha256 is accepted",
                    layer.digest
                )
            })?;
        let max = self.options.max_size;
        if u64::try_from(layer.size).is_ok_and(|size| size > max) {
            return Err(too_large(layer.size as u64, max));
        }
        let mut out = CappedBuffer {
            bytes: Vec::new(),
            max,
        };
        client
            .pull_blob(&oci.reference, &layer, &mut out)
            .await
            .map_err(|e| format!("cannot pull layer {}: {}", layer.digest, error_chain(&e)))?;
        // oci-client checks the layer digest too; check it here so the guarantee does not rest on it.
        let actual = sha256(&out.bytes);
        if actual != layer_digest {
            return Err(format!(
                "layer digest mismatch: the manifest names {} but the registry sent sha256:{}",
                layer.digest,
                hex(&actual)
            ));
        }
        Ok((out.bytes, (manifest_digest, manifest.to_vec())))
    }
}

/// The single wasm layer of an image manifest.
fn wasm_layer(manifest: &[u8]) -> Result<oci_client::manifest::OciDescriptor, String> {
    let parsed: serde_json::Value =
        serde_json::from_slice(manifest).map_err(|e| format!("the manifest is not JSON: {e}"))?;
    if parsed.get("manifests").is_some() {
        return Err(
            "the reference names an image index, not a wasm artifact: reference the component's own manifest".into(),
        );
    }
    let manifest: oci_client::manifest::OciImageManifest = serde_json::from_value(parsed)
        .map_err(|e| format!("the manifest is not an OCI image manifest: {e}"))?;
    let mut layers = manifest
        .layers
        .iter()
        .filter(|l| WASM_LAYER_TYPES.contains(&l.media_type.as_str()));
    match (layers.next(), layers.next()) {
        (Some(layer), None) => Ok(layer.clone()),
        (Some(_), Some(_)) => Err("the manifest has more than one wasm layer".into()),
        (None, _) => Err(format!(
            "the manifest has no `application/wasm` layer (layers: {}); push the component as a wasm OCI artifact, \
             e.g. with `wkg oci push`",
            manifest
                .layers
                .iter()
                .map(|l| l.media_type.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Collects a blob, failing once it grows past `max`.
struct CappedBuffer {
    bytes: Vec<u8>,
    max: u64,
}

impl tokio::io::AsyncWrite for CappedBuffer {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let total = (self.bytes.len() + buf.len()) as u64;
        if total > self.max {
            let message = too_large(total, self.max);
            return std::task::Poll::Ready(Err(std::io::Error::other(message)));
        }
        self.bytes.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

fn too_large(size: u64, max: u64) -> String {
    format!(
        "the component is {} but at most {} is accepted (limits.max_component_size)",
        are_policy::common::fmt_bytes(size),
        are_policy::common::fmt_bytes(max)
    )
}

/// Why a local file was not read as a component.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// It could not be opened or read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// It is not a regular file.
    #[error("it is {0}, not a regular file; a component source must be a .wasm or .wat file")]
    NotAFile(&'static str),
    /// It is larger than the cap.
    #[error(
        "it is {} but at most {} is accepted (limits.max_component_size): raise the limit if this component is \
         meant to be that large", are_policy::common::fmt_bytes(*.size), are_policy::common::fmt_bytes(*.max)
    )]
    TooLarge {
        /// Its size, in bytes (at least; a file still growing is not read to its end).
        size: u64,
        /// The cap.
        max: u64,
    },
}

/// The contents of the regular file at `path` (a link to one is followed), at most `max_size` bytes. A FIFO,
/// socket, device or directory is refused before anything is read from it, and a FIFO swapped in after that check
/// is refused too, without blocking; a file over the cap is refused before it is read (and one that grows past it
/// while being read is refused when it does).
///
/// # Errors
/// [`FileError`].
pub fn read_regular_file(path: &Path, max_size: u64) -> Result<Vec<u8>, FileError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    // Opening a FIFO for reading waits for a writer, and opening a device can have effects: look first.
    check_regular(&std::fs::metadata(path)?, max_size)?;
    // Then check what was opened, without blocking on a FIFO swapped in meanwhile.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    check_regular(&meta, max_size)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max_size.saturating_add(1))
        .read_to_end(&mut bytes)?;
    match bytes.len() as u64 {
        size if size > max_size => Err(FileError::TooLarge {
            size,
            max: max_size,
        }),
        _ => Ok(bytes),
    }
}

fn check_regular(meta: &std::fs::Metadata, max_size: u64) -> Result<(), FileError> {
    use std::os::unix::fs::FileTypeExt as _;
    let kind = meta.file_type();
    let not_a_file = if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a named pipe (FIFO)")
    } else if kind.is_socket() {
        Some("a socket")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else {
        Some("an unknown kind of file")
    };
    match not_a_file {
        Some(what) => Err(FileError::NotAFile(what)),
        None if meta.len() > max_size => Err(FileError::TooLarge {
            size: meta.len(),
            max: max_size,
        }),
        None => Ok(()),
    }
}

/// An error with its causes, `a: b: c`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// Run `future` to completion on a runtime of its own, on a thread of its own: loading is synchronous and may be
/// called from inside another runtime.
fn run_blocking<T: Send>(future: impl std::future::Future<Output = T> + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a current-thread runtime with I/O and time")
                    .block_on(future)
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

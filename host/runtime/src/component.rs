//! Loading a component: read (or fetch, see [`crate::source`]) and recognise the bytes, check the pin, compile
//! (through the cache), describe it and link it against exactly what its policy grants. Every pin is checked
//! before anything is compiled.

use crate::cache::{CacheOutcome, CompileCache};
use crate::caps;
use crate::describe::{ComponentDescription, DescribeError};
use crate::engine::AreEngine;
use crate::sandbox::HostState;
use crate::source::{FetchOptions, Fetcher, SourceError};
use are_policy::Grants;
use are_policy::common::{hex, sha256};
use are_policy::source::Source;
use are_policy::{Limits, LimitsSection, Policy, Sha256Pin};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, InstancePre, Linker};

/// Why a component could not be loaded. Every message names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file does not exist.
    #[error("component not found: {}; check the path (or `source` in the policy)", path.display())]
    NotFound {
        /// The path that was tried.
        path: PathBuf,
    },
    /// The file exists but cannot be read.
    #[error("cannot read component {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not a regular file (a directory, FIFO, socket or device), or larger than `limits.max_component_size`:
    /// refused before anything is read.
    #[error("cannot read component {}: {source}", path.display())]
    Refused {
        /// The file.
        path: PathBuf,
        /// Why.
        source: crate::source::FileError,
    },
    /// Neither binary WebAssembly nor WebAssembly text.
    #[error("{} is not a WebAssembly file (no `\\0asm` header, and not WebAssembly text); pass a .wasm component", path.display())]
    NotWasm {
        /// The file.
        path: PathBuf,
    },
    /// A core module, not a component.
    #[error(
        "{} is a core WebAssembly module, not a component; build it for wasm32-wasip2 (`are build`) \
         or wrap it with `wasm-tools component new`", path.display()
    )]
    CoreModule {
        /// The file.
        path: PathBuf,
    },
    /// The bytes do not validate as a component.
    #[error("{} is not a valid component: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The validator's explanation, with the byte offset.
        message: String,
    },
    /// Valid WebAssembly, but it uses a feature this runtime's engine does not enable.
    #[error("{} uses a WebAssembly feature this runtime does not enable: {message}", path.display())]
    UnsupportedFeature {
        /// The file.
        path: PathBuf,
        /// Which feature, as the validator reports it.
        message: String,
    },
    /// The bytes do not match the policy's `sha256` pin.
    #[error(
        "sha256 mismatch for {}: the policy pins {expected} but the file is {actual}; \
         if the new file is intended, update `sha256` in the policy", path.display()
    )]
    PinMismatch {
        /// The file.
        path: PathBuf,
        /// The pinned digest.
        expected: String,
        /// The file's digest.
        actual: String,
    },
    /// A remote source could not be fetched, is not pinned, or does not match its pin.
    #[error(transparent)]
    Source(Box<crate::source::SourceError>),
    /// Its exports or imports could not be read.
    #[error("cannot describe {}: {source}", path.display())]
    Describe {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: DescribeError,
    },
    /// Compiling or linking failed for another reason.
    #[error("cannot load {}: {message}", path.display())]
    Link {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl From<crate::source::SourceError> for LoadError {
    fn from(e: crate::source::SourceError) -> LoadError {
        LoadError::Source(Box::new(e))
    }
}

/// Everything needed to load one component: where it is and what it is granted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComponentSpec {
    /// The name tools are prefixed with (`[component.NAME]`, or the file stem).
    pub name: String,
    /// The component file (`.wasm`, or `.wat` text), or a remote source as written (`https://…`, `oci://…`; see
    /// [`crate::source`]).
    pub path: PathBuf,
    /// Optional sha256 pin of the component's bytes (required for remote sources unless unpinned ones are allowed).
    pub sha256: Option<Sha256Pin>,
    /// Arguments the guest sees.
    pub args: Vec<String>,
    /// What it may reach.
    pub grants: Grants,
    /// Per-call limits.
    pub limits: Limits,
    /// Directory that relative paths in the grants are resolved against.
    pub base_dir: PathBuf,
    /// Read WIT docs from this source directory instead of the component.
    pub wit_dir: Option<PathBuf>,
    /// An agent: its capabilities (`are:agent/*`) are linked by this.
    pub agent: Option<crate::caps::AgentLinking>,
    /// Where its calls and capability uses are recorded, if anywhere.
    pub audit: Option<crate::audit::AuditSink>,
    /// Accept a remote source without a pin (`--allow-unpinned`).
    pub allow_unpinned: bool,
}

impl ComponentSpec {
    /// The spec of the policy's component `name`, with `overrides` applied over its limits.
    pub fn from_policy(
        policy: &Policy,
        name: &str,
        overrides: LimitsSection,
    ) -> Option<ComponentSpec> {
        let c = policy.component(name)?;
        Some(ComponentSpec {
            name: name.to_string(),
            path: policy.source_path(c),
            sha256: c.sha256.clone(),
            args: c.args.clone(),
            grants: c.allow.clone(),
            limits: policy.limits_for(Some(c)).overlay(overrides).resolve(),
            base_dir: policy.base_dir.clone(),
            wit_dir: None,
            agent: None,
            audit: None,
            allow_unpinned: false,
        })
    }
}

/// Read a component file of at most `max_size` bytes (`limits.max_component_size`) and return its binary form
/// (WebAssembly text is converted). Only a regular file is read: a FIFO, socket or device is refused at once.
///
/// # Errors
/// [`LoadError::NotFound`], [`LoadError::Read`], [`LoadError::Refused`], [`LoadError::NotWasm`],
/// [`LoadError::CoreModule`], or [`LoadError::Invalid`] for text that does not parse.
pub fn read_component(path: &Path, max_size: u64) -> Result<Vec<u8>, LoadError> {
    use crate::source::FileError;
    let path_buf = || path.to_path_buf();
    let bytes = crate::source::read_regular_file(path, max_size).map_err(|e| match e {
        FileError::Io(source) if source.kind() == std::io::ErrorKind::NotFound => {
            LoadError::NotFound { path: path_buf() }
        }
        FileError::Io(source) => LoadError::Read {
            path: path_buf(),
            source,
        },
        source => LoadError::Refused {
            path: path_buf(),
            source,
        },
    })?;
    component_bytes(path, bytes)
}

/// Recognise `bytes` (read from `path`, which names them in errors) as a component, converting WebAssembly text.
///
/// # Errors
/// [`LoadError::NotWasm`], [`LoadError::CoreModule`], or [`LoadError::Invalid`] for text that does not parse.
pub fn component_bytes(path: &Path, bytes: Vec<u8>) -> Result<Vec<u8>, LoadError> {
    let bytes = if bytes.starts_with(b"\0asm") {
        bytes
    } else {
        let text_like =
            std::str::from_utf8(&bytes).is_ok_and(|t| t.trim_start().starts_with(['(', ';']));
        if !text_like {
            return Err(LoadError::NotWasm {
                path: path.to_path_buf(),
            });
        }
        wat::parse_bytes(&bytes)
            .map_err(|e| LoadError::Invalid {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?
            .into_owned()
    };
    match wasmparser::Parser::is_core_wasm(&bytes) {
        true => Err(LoadError::CoreModule {
            path: path.to_path_buf(),
        }),
        false => Ok(bytes),
    }
}

/// Check a component's digest against the policy's pin, if there is one.
///
/// # Errors
/// [`LoadError::PinMismatch`], saying how to fix it.
pub fn verify_pin(
    path: &Path,
    digest: &[u8; 32],
    pin: Option<&Sha256Pin>,
) -> Result<(), LoadError> {
    match pin {
        Some(pin) if pin.0 != *digest => Err(LoadError::PinMismatch {
            path: path.to_path_buf(),
            expected: pin.to_string(),
            actual: hex(digest),
        }),
        _ => Ok(()),
    }
}

/// The bytes of component `name` from `path` (a file, or a remote source as written), verified against `pin`, and
/// their sha256. A source over `max_size` bytes (`limits.max_component_size`) is refused, a file before it is read
/// and a download as soon as it is known to be larger. Remote sources are fetched into (or found in)
/// `<cache_dir>/sources` with `options` (whose `max_size` also bounds a file). Nothing here compiles: a mismatch is
/// refused before that.
///
/// # Errors
/// Any [`LoadError`] of reading a file, [`LoadError::PinMismatch`] for a local file, [`LoadError::Source`] for a
/// remote one (unpinned, mismatched or unreachable).
pub fn read_source(
    name: &str,
    path: &Path,
    pin: Option<&Sha256Pin>,
    cache_dir: &Path,
    options: FetchOptions,
) -> Result<(Vec<u8>, [u8; 32]), LoadError> {
    match Source::from_path(path).map_err(SourceError::from)? {
        Source::Local(path) => {
            let bytes = read_component(&path, options.max_size)?;
            let digest = sha256(&bytes);
            verify_pin(&path, &digest, pin)?;
            Ok((bytes, digest))
        }
        remote => {
            let fetched = Fetcher::new(cache_dir, options).fetch(name, &remote, pin)?;
            let bytes = component_bytes(path, fetched.bytes)?;
            // Text is converted: the loaded component's digest is that of its binary form, as for a file.
            let digest = sha256(&bytes);
            Ok((bytes, digest))
        }
    }
}

/// A component ready to call: compiled, described and linked against its grants.
pub struct LoadedComponent {
    /// How it was specified.
    pub spec: ComponentSpec,
    /// sha256 of its bytes, hex.
    pub sha256: String,
    /// Its exports and imports.
    pub description: Arc<ComponentDescription>,
    /// How compilation went: cache hit or miss, and how long loading took.
    pub load_stats: LoadStats,
    pub(crate) component: Component,
    pub(crate) pre: InstancePre<HostState>,
}

impl LoadedComponent {
    /// Where this component's records go, for calls made by `caller` (the spec's caller when `None`).
    pub fn audit_scope(&self, caller: Option<&str>) -> Option<crate::audit::AuditScope> {
        let sink = self.spec.audit.as_ref()?;
        Some(crate::audit::AuditScope {
            log: sink.log.clone(),
            component: self.spec.name.as_str().into(),
            sha256: self.sha256.as_str().into(),
            caller: caller.unwrap_or(&sink.caller).into(),
        })
    }
}

/// How long loading took and whether the cache was used.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct LoadStats {
    /// Cache outcome.
    pub cache: CacheOutcome,
    /// Time to read, compile or deserialize, describe and link.
    #[serde(serialize_with = "crate::invoke::serialize_micros")]
    pub duration: Duration,
}

/// Load `spec` with `engine`, compiling through `cache` (or directly when `None`).
///
/// # Errors
/// Any [`LoadError`].
pub fn load(
    engine: &AreEngine,
    cache: Option<&CompileCache>,
    spec: ComponentSpec,
) -> Result<LoadedComponent, LoadError> {
    let started = Instant::now();
    let path = spec.path.clone();
    let sources_dir = match cache {
        Some(cache) => cache.dir().to_path_buf(),
        None => CompileCache::from_env().dir().to_path_buf(),
    };
    let (bytes, digest) = read_source(
        &spec.name,
        &path,
        spec.sha256.as_ref(),
        &sources_dir,
        FetchOptions {
            allow_unpinned: spec.allow_unpinned,
            max_size: spec.limits.max_component_size,
            ..FetchOptions::default()
        },
    )?;
    let sha256 = hex(&digest);
    let (component, cache_outcome) = match cache {
        Some(cache) => cache.load_or_compile(engine, &bytes, &digest),
        None => Component::new(engine.engine(), &bytes).map(|c| (c, CacheOutcome::Uncached)),
    }
    .map_err(|e| {
        let mut error = compile_error(&path, &bytes, e);
        // `are serve`'s pooling engine leaves component-model async off (see engine.rs); say how to serve it.
        if let LoadError::UnsupportedFeature { message, .. } = &mut error
            && engine.config().pooling.is_some()
            && message.contains("component model async")
        {
            message.push_str(
                "; `are serve` runs tools with the pooling allocator, which leaves component-model async off: \
                 set `pooling = false` in the policy's [serve] table to serve this component",
            );
        }
        error
    })?;
    let description =
        ComponentDescription::from_bytes(&bytes, spec.wit_dir.as_deref()).map_err(|source| {
            LoadError::Describe {
                path: path.clone(),
                source,
            }
        })?;
    let pre = link(engine, &component, &spec.grants, spec.agent).map_err(|e| LoadError::Link {
        path: path.clone(),
        message: format!("{e:#}"),
    })?;
    Ok(LoadedComponent {
        spec,
        sha256,
        description: Arc::new(description),
        load_stats: LoadStats {
            cache: cache_outcome,
            duration: started.elapsed(),
        },
        component,
        pre,
    })
}

/// Build the linker for one component: the baseline, each granted capability, and denials for the rest.
fn link(
    engine: &AreEngine,
    component: &Component,
    grants: &Grants,
    agent: Option<caps::AgentLinking>,
) -> wasmtime::Result<InstancePre<HostState>> {
    let mut linker = Linker::<HostState>::new(engine.engine());
    let provided = caps::link(&mut linker, grants, agent)?;
    caps::denied::link(&mut linker, engine.engine(), component, &provided)?;
    linker.instantiate_pre(component)
}

/// Check that `bytes` are a valid component under every WebAssembly feature (whether this engine enables them
/// is checked when compiling).
///
/// # Errors
/// [`LoadError::Invalid`] with the validator's message and offset.
pub fn validate(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    let mut everything = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    everything
        .validate_all(bytes)
        .map(drop)
        .map_err(|e| LoadError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// Tell an invalid component from one that needs a feature the engine does not enable: validate again with
/// every feature on.
fn compile_error(path: &Path, bytes: &[u8], error: wasmtime::Error) -> LoadError {
    if let Err(invalid) = validate(path, bytes) {
        return invalid;
    }
    let path = path.to_path_buf();
    let message = format!("{error:#}");
    // The validator words its feature gates in several ways: "… support is not enabled", "the custom page sizes
    // proposal must be enabled …", "… require the shared-everything-threads proposal", "… the GC proposal is
    // disabled", "… requires the `cm64` feature to be enabled".
    const FEATURE_GATE: &[&str] = &[
        "enabled",
        "not supported",
        "support is",
        "proposal",
        "feature",
        "disabled",
    ];
    if FEATURE_GATE.iter().any(|gate| message.contains(gate)) {
        LoadError::UnsupportedFeature { path, message }
    } else {
        LoadError::Link { path, message }
    }
}

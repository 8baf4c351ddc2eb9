//! Precompiled components on disk, so a second run skips compilation.
//!
//! Entries live at `<dir>/<engine fingerprint>/<sha256 of the component>.cwasm`. Each file starts with a magic
//! tag and the sha256 of the payload that follows; an entry that is truncated, corrupted or from another engine
//! configuration is detected before wasmtime sees it, and is rebuilt. Writes go to a temporary file that is
//! renamed into place, so concurrent processes never see half an entry.

use crate::engine::AreEngine;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::component::Component;

const MAGIC: &[u8; 8] = b"ARECWASM";
const HEADER_LEN: usize = MAGIC.len() + 32;

/// Where precompiled components are kept.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheOutcome {
    /// Loaded from a valid cache entry.
    Hit,
    /// Compiled, and stored for next time.
    Miss,
    /// Compiled because the entry was damaged; the entry was replaced.
    Rebuilt,
    /// Compiled without a cache (disabled or not writable).
    Uncached,
}

/// What `are cache clear` removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cleared {
    /// Precompiled components removed.
    pub files: u64,
    /// Downloaded component sources (`https://`, `oci://`) and OCI manifests removed from `sources/`.
    pub sources: u64,
    /// Bytes freed.
    pub bytes: u64,
}

impl CompileCache {
    /// A cache in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> CompileCache {
        CompileCache { dir: dir.into() }
    }

    /// The cache in `$ARE_CACHE_DIR`, else the user's cache directory (`~/.cache/are` on Linux), else
    /// `./.are-cache`.
    pub fn from_env() -> CompileCache {
        let dir = std::env::var_os("ARE_CACHE_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| dirs::cache_dir().map(|d| d.join("are")))
            .unwrap_or_else(|| PathBuf::from(".are-cache"));
        CompileCache::new(dir)
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry_path(&self, engine: &AreEngine, sha256: &[u8; 32]) -> PathBuf {
        let name = crate::component::hex(sha256);
        self.dir
            .join(engine.fingerprint())
            .join(format!("{name}.cwasm"))
    }

    /// The compiled component for `bytes` (whose sha256 is `sha256`), from the cache or freshly compiled.
    ///
    /// # Errors
    /// Only compilation errors; cache problems are logged and fall back to compiling.
    pub fn load_or_compile(
        &self,
        engine: &AreEngine,
        bytes: &[u8],
        sha256: &[u8; 32],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let path = self.entry_path(engine, sha256);
        let mut outcome = CacheOutcome::Miss;
        match std::fs::read(&path) {
            Ok(entry) => match Self::deserialize(engine, &entry) {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(why) => {
                    tracing::warn!(path = %path.display(), "cache entry is unusable ({why}); recompiling");
                    outcome = CacheOutcome::Rebuilt;
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot read cache entry ({e}); recompiling")
            }
        }
        let compiled = engine.engine().precompile_component(bytes)?;
        // SAFETY: the bytes were produced just now by `precompile_component` of this same engine.
        let component = unsafe { Component::deserialize(engine.engine(), &compiled)? };
        if let Err(e) = Self::store(&path, &compiled) {
            tracing::warn!(path = %path.display(), "cannot write cache entry ({e}); continuing without cache");
            outcome = CacheOutcome::Uncached;
        }
        Ok((component, outcome))
    }

    fn deserialize(engine: &AreEngine, entry: &[u8]) -> Result<Component, String> {
        if entry.len() < HEADER_LEN || &entry[..MAGIC.len()] != MAGIC {
            return Err("missing header, truncated or not written by are".into());
        }
        let (digest, payload) = entry[MAGIC.len()..].split_at(32);
        if Sha256::digest(payload).as_slice() != digest {
            return Err("checksum mismatch: truncated or corrupted".into());
        }
        // SAFETY: the payload is byte-for-byte what `store` wrote after `precompile_component` of an engine with
        // the same fingerprint (the checksum proves it is intact); wasmtime re-checks version and settings.
        unsafe { Component::deserialize(engine.engine(), payload) }.map_err(|e| e.to_string())
    }

    fn store(path: &Path, compiled: &[u8]) -> std::io::Result<()> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(MAGIC)?;
            f.write_all(&Sha256::digest(compiled))?;
            f.write_all(compiled)?;
            f.sync_data()?;
            std::fs::rename(&tmp, path)
        };
        write().inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }

    /// Remove every cached entry: precompiled components, and the downloads of remote sources (fetched again, and
    /// checked against their pins, when next needed).
    ///
    /// # Errors
    /// When the directory exists but cannot be read or emptied.
    pub fn clear(&self) -> std::io::Result<Cleared> {
        let mut cleared = Cleared::default();
        let top = match std::fs::read_dir(&self.dir) {
            Ok(top) => top,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(cleared),
            Err(e) => return Err(e),
        };
        for fingerprint_dir in top {
            let fingerprint_dir = fingerprint_dir?.path();
            if !fingerprint_dir.is_dir() {
                continue;
            }
            let sources = fingerprint_dir
                .file_name()
                .is_some_and(|n| n == crate::source::SOURCES_DIR);
            for entry in std::fs::read_dir(&fingerprint_dir)? {
                let entry = entry?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let is_ours = if sources {
                    crate::source::Fetcher::is_download(&name)
                } else {
                    name.starts_with(".tmp-") || name.ends_with(".cwasm")
                };
                if is_ours {
                    cleared.bytes += entry.metadata().map_or(0, |m| m.len());
                    std::fs::remove_file(entry.path())?;
                    if sources {
                        cleared.sources += 1;
                    } else {
                        cleared.files += 1;
                    }
                }
            }
            let _ = std::fs::remove_dir(&fingerprint_dir);
        }
        Ok(cleared)
    }
}

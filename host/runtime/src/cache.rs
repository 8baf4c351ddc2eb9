//! Precompiled components on disk, so a second run skips compilation.
//!
//! A `.cwasm` is native code that wasmtime maps executable without validating it, so an entry is used only when it
//! is provably ours:
//!
//! - **Layout.** `<dir>/<engine fingerprint>/<sha256 of the component>.cwasm`.
//! - **Ownership.** Directories are created `0700` and entries `0600`, whatever the umask. A cache directory, a
//!   fingerprint directory or an entry that another user owns or that group or others can write is refused (so is
//!   an entry that is not a regular file): the warning names the path and the fix, and the component is compiled
//!   in memory.
//! - **Authentication.** An entry is the tag `ARECWAS2`, an HMAC-SHA256, then the compiled code. The MAC covers the
//!   engine fingerprint, the component's sha256 and the compiled code, keyed with a per-user secret kept outside
//!   the cache directory. An entry whose MAC does not verify (damaged, truncated, from an older `are`, copied from
//!   another component's name, or written by anyone without the key) is never deserialized: it is recompiled and
//!   replaced.
//! - **The key** is 32 random bytes in `$ARE_CACHE_KEY`, else `<user data dir>/are/cache.key`
//!   (`~/.local/share/are/cache.key` on Linux), made `0600` (in a `0700` directory) on first use. A key that
//!   group or others may read or write is replaced by a new one, which makes every entry recompile once; a key, or
//!   a key directory, owned by another user or writable by group or others is refused and the cache is not used.
//! - **Writes** go to a `0600` temporary file that is renamed into place, so concurrent processes never see half
//!   an entry, and two that write the same entry both leave a valid one.

use crate::engine::AreEngine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use wasmtime::component::Component;

/// Format 2: an HMAC-SHA256 follows (format 1, `ARECWASM`, carried a plain sha256).
const MAGIC: &[u8; 8] = b"ARECWAS2";
const MAC_LEN: usize = 32;
const HEADER_LEN: usize = MAGIC.len() + MAC_LEN;
/// What the MAC authenticates, so the key's MACs mean nothing elsewhere.
const MAC_DOMAIN: &[u8] = b"are compile cache entry v2\0";
const KEY_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Where precompiled components are kept.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
    key_file: Option<PathBuf>,
    /// The key, once the directory and the key file were found to be ours (`None`: the cache is not used). Decided
    /// on first use, so a refusal is reported once per process.
    trust: Arc<OnceLock<Option<CacheKey>>>,
}

/// The per-user secret that authenticates cache entries.
struct CacheKey([u8; KEY_LEN]);

impl CacheKey {
    /// The MAC of an entry of component `sha256` under engine `fingerprint`, still to be fed the compiled code.
    /// The fingerprint is length-prefixed so that no two (fingerprint, sha256, code) triples feed the same bytes.
    fn mac(&self, fingerprint: &str, sha256: &[u8; 32]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(MAC_DOMAIN);
        mac.update(&(fingerprint.len() as u64).to_le_bytes());
        mac.update(fingerprint.as_bytes());
        mac.update(sha256);
        mac
    }
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheKey(..)")
    }
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheOutcome {
    /// Loaded from a cache entry whose MAC verified.
    Hit,
    /// Compiled, and stored for next time.
    Miss,
    /// Compiled because the entry failed its MAC (damaged or not ours); the entry was replaced.
    Rebuilt,
    /// Compiled in memory: the cache is disabled, not writable, or refused as not ours.
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

/// The key file named by `$ARE_CACHE_KEY`, else `<user data dir>/are/cache.key`; `None` when there is no data
/// directory (then the cache is not used unless `ARE_CACHE_KEY` is set).
pub fn key_file_from_env() -> Option<PathBuf> {
    std::env::var_os("ARE_CACHE_KEY")
        .filter(|k| !k.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::data_local_dir().map(|d| d.join("are").join("cache.key")))
}

impl CompileCache {
    /// A cache in `dir`, its entries authenticated with the key in [`key_file_from_env`].
    pub fn new(dir: impl Into<PathBuf>) -> CompileCache {
        CompileCache {
            dir: dir.into(),
            key_file: key_file_from_env(),
            trust: Arc::default(),
        }
    }

    /// The same cache with its key in `key_file` (made on first use).
    pub fn with_key_file(self, key_file: impl Into<PathBuf>) -> CompileCache {
        CompileCache {
            dir: self.dir,
            key_file: Some(key_file.into()),
            trust: Arc::default(),
        }
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

    /// The key, if the cache may be used: its directory is (made) ours and the key is (made) private.
    fn key(&self) -> Option<&CacheKey> {
        self.trust
            .get_or_init(|| {
                let trusted = ensure_private_dir(&self.dir)
                    .map_err(|why| format!("compile cache {}: {why}", self.dir.display()))
                    .and_then(|()| match &self.key_file {
                        Some(file) => load_or_make_key(file)
                            .map_err(|why| format!("compile cache key {}: {why}", file.display())),
                        None => Err(
                            "no user data directory to keep the compile cache's key in: set \
                                     ARE_CACHE_KEY to a file path"
                                .into(),
                        ),
                    });
                trusted
                    .inspect_err(|why| {
                        tracing::warn!("{why}; not using the compile cache, compiling in memory")
                    })
                    .ok()
            })
            .as_ref()
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
        let in_memory =
            || Component::new(engine.engine(), bytes).map(|c| (c, CacheOutcome::Uncached));
        let Some(key) = self.key() else {
            return in_memory();
        };
        let fingerprint = engine.fingerprint();
        let dir = self.dir.join(&fingerprint);
        if let Err(why) = ensure_private_dir(&dir) {
            tracing::warn!(
                "compile cache {}: {why}; not using it, compiling in memory",
                dir.display()
            );
            return in_memory();
        }
        let path = dir.join(format!("{}.cwasm", are_policy::common::hex(sha256)));
        let mac = key.mac(&fingerprint, sha256);
        let mut outcome = CacheOutcome::Miss;
        match read_entry(&path) {
            Ok(Some(entry)) => match Self::deserialize(engine, &entry, mac.clone()) {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(why) => {
                    tracing::warn!(path = %path.display(), "cache entry is unusable ({why}); recompiling");
                    outcome = CacheOutcome::Rebuilt;
                }
            },
            Ok(None) => {}
            Err(EntryError::Untrusted(why)) => {
                tracing::warn!(
                    "compile cache entry {}: {why}; not using it, compiling in memory (remove it, or run \
                     `are cache clear`)",
                    path.display()
                );
                return in_memory();
            }
            Err(EntryError::Io(e)) => {
                tracing::warn!(path = %path.display(), "cannot read cache entry ({e}); recompiling")
            }
        }
        let compiled = engine.engine().precompile_component(bytes)?;
        // SAFETY: the bytes were produced just now by `precompile_component` of this same engine.
        let component = unsafe { Component::deserialize(engine.engine(), &compiled)? };
        let tag = mac.chain_update(&compiled).finalize().into_bytes();
        if let Err(e) = write_private(
            &path,
            &[MAGIC.as_slice(), tag.as_slice(), compiled.as_slice()],
        ) {
            tracing::warn!(path = %path.display(), "cannot write cache entry ({e}); continuing without cache");
            outcome = CacheOutcome::Uncached;
        }
        Ok((component, outcome))
    }

    /// The component in `entry`, if its MAC verifies; nothing unauthenticated reaches wasmtime.
    fn deserialize(engine: &AreEngine, entry: &[u8], mac: HmacSha256) -> Result<Component, String> {
        if entry.len() < HEADER_LEN || &entry[..MAGIC.len()] != MAGIC {
            return Err("missing header, truncated, or not written by this version of are".into());
        }
        let (tag, payload) = entry[MAGIC.len()..].split_at(MAC_LEN);
        // `verify_slice` compares in constant time: a forger learns nothing from how long a refusal takes.
        mac.chain_update(payload)
            .verify_slice(tag)
            .map_err(|_| "MAC mismatch: damaged, or not written by this user's are")?;
        // SAFETY: the MAC proves the payload is byte for byte what `load_or_compile` wrote after
        // `precompile_component` of an engine with this fingerprint, for this component; wasmtime re-checks its
        // version and settings.
        unsafe { Component::deserialize(engine.engine(), payload) }.map_err(|e| e.to_string())
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
            let fingerprint_dir = fingerprint_dir?;
            // A link is not followed: clearing never removes files elsewhere.
            if !fingerprint_dir.file_type()?.is_dir() {
                continue;
            }
            let fingerprint_dir = fingerprint_dir.path();
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

/// Why an entry was not read.
enum EntryError {
    /// It is not a regular file of ours that only we can write.
    Untrusted(String),
    /// Reading it failed.
    Io(std::io::Error),
}

/// The bytes of the entry at `path`, `None` when there is none. The file is opened without following a link and
/// checked through the opened descriptor, so what is checked is what is read.
fn read_entry(path: &Path) -> Result<Option<Vec<u8>>, EntryError> {
    let file = OpenOptions::new()
        .read(true)
        // No link is followed, and opening a FIFO planted here does not block.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let mut file = match file {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(EntryError::Untrusted("it is a symbolic link".into()));
        }
        Err(e) => return Err(EntryError::Io(e)),
    };
    let meta = file.metadata().map_err(EntryError::Io)?;
    if !meta.is_file() {
        return Err(EntryError::Untrusted("it is not a regular file".into()));
    }
    check_ours(&meta).map_err(EntryError::Untrusted)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut bytes).map_err(EntryError::Io)?;
    Ok(Some(bytes))
}

/// The effective user id of this process.
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Refuse what another user owns, or what group or others can write.
fn check_ours(meta: &Metadata) -> Result<(), String> {
    let mode = meta.mode() & 0o7777;
    if meta.uid() != euid() {
        return Err(format!(
            "it is owned by uid {}, not by this user (uid {})",
            meta.uid(),
            euid()
        ));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "group or others can write it (mode {mode:04o}); `chmod go-w` it"
        ));
    }
    Ok(())
}

/// Make `dir` (and missing parents) `0700` whatever the umask, or check that the existing one (a link to a
/// directory is followed) is a directory of ours that only we can write.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("cannot create it: {e}"))?;
            let meta = std::fs::metadata(dir).map_err(|e| e.to_string())?;
            // Another process may have made it meanwhile: only what we own is set to 0700.
            if meta.uid() == euid() && meta.mode() & 0o777 != 0o700 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| format!("cannot make it private: {e}"))?;
            }
            ensure_private_dir_exists(dir)
        }
        Err(e) => Err(format!("cannot read it: {e}")),
        Ok(_) => ensure_private_dir_exists(dir),
    }
}

fn ensure_private_dir_exists(dir: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(dir).map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_dir() {
        return Err("it is not a directory".into());
    }
    check_ours(&meta)
}

/// Write `parts` to `path` through a `0600` temporary file beside it, renamed into place.
pub(crate) fn write_private(path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    let tmp = temp_beside(path);
    let write = || -> std::io::Result<()> {
        let mut f = create_private(&tmp)?;
        for part in parts {
            f.write_all(part)?;
        }
        f.sync_data()?;
        std::fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// A temporary name in the directory of `path`, unique to this process and call (`are cache clear` removes
/// leftovers: they start with `.tmp-`).
fn temp_beside(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A new file at `path`, `0600` whatever the umask.
fn create_private(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

/// The key in `file`, made on first use; a key that group or others can read or write is replaced.
fn load_or_make_key(file: &Path) -> Result<CacheKey, String> {
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
    ensure_private_dir(dir.unwrap_or(Path::new(".")))
        .map_err(|why| format!("its directory: {why}"))?;
    match std::fs::symlink_metadata(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return make_key(file, false),
        Err(e) => return Err(format!("cannot read it: {e}")),
        Ok(meta) if !meta.is_file() => {
            return Err("it is not a regular file (a link is not followed)".into());
        }
        Ok(meta) if meta.uid() != euid() => {
            return Err(format!(
                "it is owned by uid {}, not by this user (uid {}); remove it",
                meta.uid(),
                euid()
            ));
        }
        Ok(meta) if meta.mode() & 0o077 != 0 => {
            tracing::warn!(
                key = %file.display(),
                "the compile cache key was open to group or others (mode {:04o}): replacing it with a new one; \
                 cached components are compiled again once",
                meta.mode() & 0o7777
            );
            return make_key(file, true);
        }
        Ok(_) => {}
    }
    let mut key = [0; KEY_LEN];
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(file)
        .map_err(|e| format!("cannot read it: {e}"))?;
    match f.read_exact(&mut key) {
        Ok(()) if f.read(&mut [0]).map_err(|e| e.to_string())? == 0 => Ok(CacheKey(key)),
        _ => {
            tracing::warn!(key = %file.display(), "the compile cache key is malformed: replacing it");
            make_key(file, true)
        }
    }
}

/// Make a new random key at `file`: written in full to a private temporary file first, then put in place with a
/// hard link (so that of two processes making the first key at once, both end up with the same one), or by a
/// rename when `replace` (or when the file system has no hard links).
fn make_key(file: &Path, replace: bool) -> Result<CacheKey, String> {
    let mut key = [0; KEY_LEN];
    getrandom::fill(&mut key).map_err(|e| format!("no randomness for a new key: {e}"))?;
    let tmp = temp_beside(file);
    match place_key(&tmp, file, &key, replace) {
        Ok(()) => {
            tracing::info!(key = %file.display(), "made a new compile cache key");
            Ok(CacheKey(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let _ = std::fs::remove_file(&tmp);
            // Another process made it first: use theirs.
            load_or_make_key(file)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(format!("cannot write it: {e}"))
        }
    }
}

fn place_key(tmp: &Path, file: &Path, key: &[u8], replace: bool) -> std::io::Result<()> {
    let mut f = create_private(tmp)?;
    f.write_all(key)?;
    f.sync_data()?;
    if replace {
        return std::fs::rename(tmp, file);
    }
    match std::fs::hard_link(tmp, file) {
        Ok(()) => std::fs::remove_file(tmp),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e),
        Err(_) => std::fs::rename(tmp, file),
    }
}

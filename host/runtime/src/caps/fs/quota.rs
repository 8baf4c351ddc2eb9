//! `quota` on an `rw` mount: the most bytes the files under its host directory may hold.
//!
//! The bytes of a directory are the apparent sizes of its regular files (a file with several hard links once);
//! directories, symlinks and file-system overhead are not counted. They are measured by walking the directory when
//! an instance starts while no other instance has it mounted with a quota (a walk sees at most
//! [`MAX_MEASURED_ENTRIES`] entries), then kept as one count that every instance mounting it shares. The host
//! shadows each `wasi:filesystem/types` method that can grow a file (`write`, `set-size`, and the streams of
//! `write-via-stream` and `append-via-stream`): the growth a write would cause is reserved before it runs, and a
//! write that would take the count past the quota fails with `insufficient-space` (what a full disk gives), never a
//! trap: `write` and `set-size` return the code, a stream write fails with an error that `filesystem-error-code`
//! reads as it (wasi-libc, and so Rust's `std`, reports every failed stream write as `EIO`). Shrinking a file with `set-size` gives its bytes back; space
//! freed by deleting or truncating on open is seen at the next measure. `rename-at` and `link-at` between a
//! mount with a quota and another mount fail with `cross-device`, so bytes written elsewhere cannot be moved in.
//!
//! What other processes, or instances that mount the same directory without a quota, write meanwhile is seen at
//! the next measure too. A directory that already holds more than its quota can only shrink.

use super::{Descriptor, ErrorCode};
use bytes::Bytes;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::p2::{DynOutputStream, OutputStream, Pollable, StreamError, StreamResult};

/// A walk that meets more entries than this refuses to start the instance: measuring the mount would cost too much.
pub const MAX_MEASURED_ENTRIES: usize = 100_000;

/// The bytes held under one host directory, shared by every instance that mounts it with a quota.
#[derive(Debug)]
struct Usage {
    used: AtomicU64,
}

/// Why a mount's quota could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    /// The mounted directory does not resolve.
    #[error("cannot resolve mount {}: {source}", path.display())]
    Resolve {
        /// The host directory.
        path: PathBuf,
        /// What the filesystem said.
        source: std::io::Error,
    },
    /// An entry under the mount cannot be read.
    #[error("cannot measure {} for its quota: {source}", path.display())]
    Measure {
        /// The entry.
        path: PathBuf,
        /// What the filesystem said.
        source: std::io::Error,
    },
    /// The mount holds too many entries to measure.
    #[error(
        "the mount {} holds more than {MAX_MEASURED_ENTRIES} entries, too many to measure for its `quota`: mount a \
         smaller directory",
        root.display()
    )]
    TooManyEntries {
        /// The mounted directory.
        root: PathBuf,
    },
}

/// The usage of each directory some live instance mounts with a quota, by canonical host path.
static LIVE: LazyLock<Mutex<HashMap<PathBuf, Weak<Usage>>>> = LazyLock::new(Mutex::default);

impl Usage {
    /// The shared usage of `root` (a canonical directory), measured now if no live instance holds it.
    fn acquire(root: &Path) -> Result<Arc<Usage>, QuotaError> {
        let mut live = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(usage) = live.get(root).and_then(Weak::upgrade) {
            return Ok(usage);
        }
        let usage = Arc::new(Usage {
            used: AtomicU64::new(measure(root)?),
        });
        live.retain(|_, held| held.strong_count() > 0);
        live.insert(root.to_path_buf(), Arc::downgrade(&usage));
        Ok(usage)
    }
}

/// The bytes of the regular files under `root`, each inode once, not following symlinks.
///
/// # Errors
/// When an entry cannot be read, or there are more than [`MAX_MEASURED_ENTRIES`].
pub fn measure(root: &Path) -> Result<u64, QuotaError> {
    let mut total = 0u64;
    let mut entries = 0usize;
    let mut linked = std::collections::HashSet::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let read = std::fs::read_dir(&dir).map_err(|source| QuotaError::Measure {
            path: dir.clone(),
            source,
        })?;
        for entry in read {
            let entry = entry.map_err(|source| QuotaError::Measure {
                path: dir.clone(),
                source,
            })?;
            entries += 1;
            if entries > MAX_MEASURED_ENTRIES {
                return Err(QuotaError::TooManyEntries {
                    root: root.to_path_buf(),
                });
            }
            let meta = entry.metadata().map_err(|source| QuotaError::Measure {
                path: entry.path(),
                source,
            })?;
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() && first_link(&meta, &mut linked) {
                total = total.saturating_add(meta.len());
            }
        }
    }
    Ok(total)
}

/// Whether this is the first time the walk meets the file's inode.
#[cfg(unix)]
fn first_link(meta: &std::fs::Metadata, seen: &mut std::collections::HashSet<(u64, u64)>) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.nlink() <= 1 || seen.insert((meta.dev(), meta.ino()))
}

/// Whether this is the first time the walk meets the file (hard links are not told apart here).
#[cfg(not(unix))]
fn first_link(_: &std::fs::Metadata, _: &mut std::collections::HashSet<(u64, u64)>) -> bool {
    true
}

/// One mount with a quota, as one instance sees it.
#[derive(Debug)]
pub struct Limited {
    guest: String,
    limit: u64,
    usage: Arc<Usage>,
}

impl Limited {
    /// Take `bytes` of the quota, or fail with `insufficient-space` when they are not left.
    fn reserve(&self, bytes: u64) -> Result<(), ErrorCode> {
        if bytes == 0 {
            return Ok(());
        }
        self.usage
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .map(drop)
            .map_err(|used| {
                tracing::info!(mount = %self.guest, used, limit = self.limit, bytes, "write refused: mount quota");
                ErrorCode::InsufficientSpace
            })
    }

    /// Give `bytes` back.
    fn release(&self, bytes: u64) {
        if bytes > 0 {
            let _ = self
                .usage
                .used
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                    Some(used.saturating_sub(bytes))
                });
        }
    }
}

/// The quotas of one instance: its mounts that have one, and which of its descriptors lead into each.
///
/// Every descriptor comes from `get-directories` or `open-at`, and both set its entry (or remove a stale one
/// left by a dropped descriptor whose table index was reused), so a live descriptor's entry is always its own.
#[derive(Debug, Default)]
pub struct Quotas {
    mounts: Vec<Arc<Limited>>,
    descriptors: HashMap<u32, Arc<Limited>>,
}

impl Quotas {
    /// Add the mount at `guest` whose host directory is `host`, limited to `limit` bytes.
    ///
    /// # Errors
    /// When the directory cannot be resolved or measured.
    pub fn mount(&mut self, host: &Path, guest: &str, limit: u64) -> Result<(), QuotaError> {
        let root = std::fs::canonicalize(host).map_err(|source| QuotaError::Resolve {
            path: host.to_path_buf(),
            source,
        })?;
        self.mounts.push(Arc::new(Limited {
            guest: guest.to_string(),
            limit,
            usage: Usage::acquire(&root)?,
        }));
        Ok(())
    }

    /// Whether no mount of this instance has a quota.
    pub fn is_empty(&self) -> bool {
        self.mounts.is_empty()
    }

    /// The preopened directory `rep` is the mount at guest path `guest`.
    pub(super) fn preopened(&mut self, rep: u32, guest: &str) {
        match self.mounts.iter().find(|m| m.guest == guest) {
            Some(limited) => self.descriptors.insert(rep, limited.clone()),
            None => self.descriptors.remove(&rep),
        };
    }

    /// The descriptor `child` was opened from `parent`, so it is in the same mount.
    pub(super) fn opened(&mut self, parent: u32, child: u32) {
        match self.descriptors.get(&parent).cloned() {
            Some(limited) => self.descriptors.insert(child, limited),
            None => self.descriptors.remove(&child),
        };
    }

    /// The quota that writes through descriptor `rep` count against, if any.
    pub(super) fn of(&self, rep: u32) -> Option<Arc<Limited>> {
        self.descriptors.get(&rep).cloned()
    }

    /// Whether moving or linking a file from descriptor `from`'s mount to `to`'s would carry bytes across a
    /// quota's boundary.
    pub(super) fn crosses(&self, from: u32, to: u32) -> bool {
        match (self.descriptors.get(&from), self.descriptors.get(&to)) {
            (None, None) => false,
            (Some(a), Some(b)) => !Arc::ptr_eq(a, b),
            _ => true,
        }
    }
}

/// The size of the file behind `fd`; 0 for a directory or a file whose size cannot be read (every byte written
/// then counts as growth, so an unknown size never lets a write past the quota).
pub(super) fn file_size(table: &ResourceTable, fd: &Resource<Descriptor>) -> wasmtime::Result<u64> {
    Ok(match table.get(fd)? {
        Descriptor::File(f) => f.file.metadata().map_or(0, |m| m.len()),
        Descriptor::Dir(_) => 0,
    })
}

/// Reserve what `write(len bytes at offset)` can add to the file behind `fd`. Returns the reservation, to be
/// settled with [`settle_write`].
pub(super) fn reserve_write(
    table: &ResourceTable,
    limited: &Limited,
    fd: &Resource<Descriptor>,
    offset: u64,
    len: u64,
) -> wasmtime::Result<Result<WriteReservation, ErrorCode>> {
    let size = file_size(table, fd)?;
    let growth = offset.saturating_add(len).saturating_sub(size);
    Ok(limited.reserve(growth).map(|()| WriteReservation {
        size,
        offset,
        growth,
    }))
}

/// The quota taken before a positioned write.
pub(super) struct WriteReservation {
    size: u64,
    offset: u64,
    growth: u64,
}

/// Give back what the write did not use: all of it when it failed, the unwritten tail of a short write.
pub(super) fn settle_write(limited: &Limited, reserved: WriteReservation, written: Option<u64>) {
    let used = written.map_or(0, |n| {
        reserved
            .offset
            .saturating_add(n)
            .saturating_sub(reserved.size)
            .min(reserved.growth)
    });
    limited.release(reserved.growth - used);
}

/// Resize the file behind `fd` to `size` under the quota: growth is reserved first, shrinking gives bytes back.
pub(super) async fn set_size(
    fs: &mut wasmtime_wasi::filesystem::WasiFilesystemCtxView<'_>,
    limited: &Limited,
    fd: Resource<Descriptor>,
    size: u64,
) -> wasmtime::Result<Result<(), ErrorCode>> {
    let current = file_size(fs.table, &fd)?;
    let growth = size.saturating_sub(current);
    if let Err(code) = limited.reserve(growth) {
        return Ok(Err(code));
    }
    let result = super::wit_result(
        wasmtime_wasi::p2::bindings::filesystem::types::HostDescriptor::set_size(fs, fd, size)
            .await,
    )?;
    match result {
        Ok(()) => limited.release(current.saturating_sub(size)),
        Err(_) => limited.release(growth),
    }
    Ok(result)
}

/// Replace the output stream `stream` (writing the file behind a descriptor of a mount with a quota) with one
/// that counts what it adds: from `offset` in a file of `size` bytes, or at the end (`None`).
pub(super) fn limit_stream(
    table: &mut ResourceTable,
    stream: Resource<DynOutputStream>,
    limited: Arc<Limited>,
    at: Option<(u64, u64)>,
) -> wasmtime::Result<Resource<DynOutputStream>> {
    let inner = table.delete(stream)?;
    let at = match at {
        Some((offset, size)) => StreamAt::Offset {
            position: offset,
            end: size,
        },
        None => StreamAt::End,
    };
    let limited: DynOutputStream = Box::new(LimitedStream {
        inner,
        limited,
        at,
        refused: false,
    });
    Ok(table.push(limited)?)
}

/// Where a limited stream writes.
#[derive(Debug, Clone, Copy)]
enum StreamAt {
    /// At `position`, in a file known to be at least `end` bytes long.
    Offset { position: u64, end: u64 },
    /// At the end of the file: every byte is growth.
    End,
}

impl StreamAt {
    /// The growth `n` more bytes cause, and where the stream is after them.
    fn after(self, n: u64) -> (u64, StreamAt) {
        match self {
            StreamAt::Offset { position, end } => {
                let position = position.saturating_add(n);
                (
                    position.saturating_sub(end),
                    StreamAt::Offset {
                        position,
                        end: end.max(position),
                    },
                )
            }
            StreamAt::End => (n, StreamAt::End),
        }
    }
}

/// A file's output stream whose writes are charged to a quota before they reach the file.
struct LimitedStream {
    inner: DynOutputStream,
    limited: Arc<Limited>,
    at: StreamAt,
    /// A write was refused: the stream is closed, as after any failed operation.
    refused: bool,
}

impl LimitedStream {
    fn charge(&mut self, n: usize) -> StreamResult<()> {
        if self.refused {
            return Err(StreamError::Closed);
        }
        let (growth, next) = self.at.after(n as u64);
        if self.limited.reserve(growth).is_err() {
            self.refused = true;
            return Err(StreamError::LastOperationFailed(no_space().into()));
        }
        self.at = next;
        Ok(())
    }
}

/// The error of a refused stream write: `filesystem-error-code` reads it as `insufficient-space`.
fn no_space() -> std::io::Error {
    std::io::Error::from_raw_os_error(libc::ENOSPC)
}

#[wasmtime_wasi::async_trait]
impl OutputStream for LimitedStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.charge(bytes.len())?;
        self.inner.write(bytes)
    }

    async fn blocking_write_and_flush(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.charge(bytes.len())?;
        self.inner.blocking_write_and_flush(bytes).await
    }

    fn flush(&mut self) -> StreamResult<()> {
        if self.refused {
            return Err(StreamError::Closed);
        }
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        if self.refused {
            return Err(StreamError::Closed);
        }
        self.inner.check_write()
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LimitedStream {
    async fn ready(&mut self) {
        if !self.refused {
            self.inner.ready().await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_count_only_what_extends_the_file() {
        let at = StreamAt::Offset {
            position: 0,
            end: 10,
        };
        let (growth, at) = at.after(4);
        assert_eq!(growth, 0, "overwriting inside the file adds nothing");
        let (growth, at) = at.after(10);
        assert_eq!(growth, 4);
        let (growth, _) = at.after(3);
        assert_eq!(growth, 3);
        assert_eq!(StreamAt::End.after(5).0, 5);
    }

    #[test]
    fn a_refused_stream_write_reads_as_insufficient_space() {
        let error: wasmtime::Error = no_space().into();
        let io = error.downcast_ref::<std::io::Error>().unwrap();
        assert_eq!(ErrorCode::from(io), ErrorCode::InsufficientSpace);
    }

    #[test]
    fn reservations_stop_at_the_limit_and_are_given_back() {
        let limited = Limited {
            guest: "/out".into(),
            limit: 100,
            usage: Arc::new(Usage {
                used: AtomicU64::new(60),
            }),
        };
        assert!(limited.reserve(40).is_ok());
        assert_eq!(limited.reserve(1), Err(ErrorCode::InsufficientSpace));
        limited.release(50);
        assert!(limited.reserve(50).is_ok());
        assert_eq!(limited.usage.used.load(Ordering::SeqCst), 100);
        let reserved = WriteReservation {
            size: 10,
            offset: 0,
            growth: 30,
        };
        settle_write(&limited, reserved, Some(25));
        assert_eq!(
            limited.usage.used.load(Ordering::SeqCst),
            85,
            "a short write gives back what it did not add"
        );
    }

    #[test]
    fn measuring_counts_file_bytes_once_per_inode() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), [0u8; 100]).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b"), [0u8; 20]).unwrap();
        std::fs::hard_link(dir.path().join("a"), dir.path().join("sub/a-again")).unwrap();
        assert_eq!(measure(dir.path()).unwrap(), 120);
    }
}

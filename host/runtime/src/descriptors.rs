//! Operating-system descriptors held on behalf of guests: open files and directories, sockets and outgoing HTTP
//! connections.
//!
//! Each instance may hold at most `limits.open_files` files and `limits.connections` sockets and HTTP connections
//! together; past that, the guest gets the WASI error of a full descriptor table (`insufficient-memory` from
//! `open-at`, `new-socket-limit` from `create-*-socket`, an HTTP `connection-refused`), never a trap.
//!
//! All instances together are also held below the process's `RLIMIT_NOFILE`: [`raise_nofile_limit`] lifts the
//! soft limit to the hard one at start, and guests share what is left after a reserve for the host itself
//! ([`guest_budget`]), so that a full set of guests never makes the host fail to accept a connection, read its
//! compile cache or write its audit trail. When every instance the server may keep at once can fill its
//! per-instance limits within that budget, no tenant's descriptors can be taken by another.
//!
//! A file is counted for as long as its operating-system descriptor is open, which may outlive the guest's
//! handle (a stream keeps its file open): the count follows the host file itself, and is brought up to date at
//! each `open-at` and before each call. Sockets are counted until the guest drops them, HTTP connections until
//! their response body is finished or dropped.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

/// Descriptors kept for the host whatever guests hold: at least this many, or a quarter of the limit when that is
/// more.
pub const HOST_RESERVE: u64 = 128;

/// Descriptors all guests may hold together, for a soft `RLIMIT_NOFILE` of `soft`: what is left after
/// [`HOST_RESERVE`] or a quarter of `soft`, whichever is more.
pub fn guest_budget(soft: u64) -> usize {
    let reserve = HOST_RESERVE.max(soft / 4);
    usize::try_from(soft.saturating_sub(reserve)).unwrap_or(usize::MAX)
}

/// Raise the soft `RLIMIT_NOFILE` of this process to its hard limit, and return the soft limit now in force.
/// Call it first thing in `main`, before any guest runs: the guests' share is computed from the limit in force
/// at their first descriptor.
///
/// # Errors
/// When the limit cannot be read; a refused raise is logged and the current limit returned.
#[cfg(unix)]
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    let mut limit = current_limit()?;
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads a valid rlimit struct.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        } else {
            // macOS refuses values above OPEN_MAX even when the hard limit is unlimited.
            tracing::debug!(
                "cannot raise RLIMIT_NOFILE to {}: {}",
                limit.rlim_max,
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(limit.rlim_cur)
}

#[cfg(unix)]
fn current_limit() -> std::io::Result<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(limit)
}

/// The descriptors all guests of this process may hold together: [`guest_budget`] of the soft limit in force
/// when it is first asked for.
pub fn process_budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        #[cfg(unix)]
        let soft = current_limit().map_or(1024, |l| l.rlim_cur);
        #[cfg(not(unix))]
        let soft = 8192;
        let budget = guest_budget(soft);
        tracing::debug!(rlimit_nofile = soft, budget, "descriptor budget for guests");
        budget
    })
}

/// Descriptors guests of this process hold now.
static PROCESS_HELD: AtomicUsize = AtomicUsize::new(0);

/// Descriptors all guests of this process hold now (files, sockets and HTTP connections).
pub fn process_held() -> usize {
    PROCESS_HELD.load(Ordering::Relaxed)
}

/// One descriptor counted against the process budget, given back when dropped.
#[derive(Debug)]
pub struct ProcessPermit(());

impl ProcessPermit {
    fn acquire() -> Result<ProcessPermit, Refusal> {
        let budget = process_budget();
        PROCESS_HELD
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < budget).then_some(held + 1)
            })
            .map(|_| ProcessPermit(()))
            .map_err(|_| Refusal::Process { budget })
    }
}

impl Drop for ProcessPermit {
    fn drop(&mut self) {
        PROCESS_HELD.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a guest may not have another descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The instance holds as many as its limit allows.
    Instance {
        /// The policy key: `limits.open_files` or `limits.connections`.
        key: &'static str,
        /// Its value.
        limit: usize,
    },
    /// All guests together hold the process's share.
    Process {
        /// The share, see [`guest_budget`].
        budget: usize,
    },
}

impl Refusal {
    /// The limit that refused, as the audit trail names it: the policy key, or `rlimit_nofile`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Instance { key, .. } => key,
            Refusal::Process { .. } => "rlimit_nofile",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Instance { key, limit } => {
                write!(f, "{key} ({limit}) reached: the instance holds {limit}")
            }
            Refusal::Process { budget } => write!(
                f,
                "all guests together hold {budget} descriptors, their share of RLIMIT_NOFILE; raise `ulimit -n` \
                 or lower limits.open_files, limits.connections or [serve] max_instances"
            ),
        }
    }
}

/// The files and directories one instance opened, capped at `limits.open_files`.
#[derive(Debug)]
pub struct OpenFiles {
    limit: usize,
    /// Each open file, by the host file that holds its descriptor: it is open while the file is alive.
    held: Vec<(Weak<std::fs::File>, ProcessPermit)>,
}

impl OpenFiles {
    /// No file open yet, at most `limit`.
    pub fn new(limit: usize) -> OpenFiles {
        OpenFiles {
            limit,
            held: Vec::new(),
        }
    }

    /// Files whose descriptor is still open.
    pub fn held(&mut self) -> usize {
        self.forget_closed();
        self.held.len()
    }

    /// Give back the count of files closed since the last look.
    pub fn forget_closed(&mut self) {
        self.held.retain(|(file, _)| file.strong_count() > 0);
    }

    /// Room for one more file, to be [`track`](Self::track)ed once opened (dropping it unused gives it back).
    ///
    /// # Errors
    /// When the instance holds `limit` files, or all guests their share of the process's descriptors.
    pub fn reserve(&mut self) -> Result<ProcessPermit, Refusal> {
        if self.held() >= self.limit {
            return Err(Refusal::Instance {
                key: "limits.open_files",
                limit: self.limit,
            });
        }
        ProcessPermit::acquire()
    }

    /// Count `file`, opened with room from [`reserve`](Self::reserve), until it closes.
    pub fn track(&mut self, file: &Arc<std::fs::File>, permit: ProcessPermit) {
        self.held.push((Arc::downgrade(file), permit));
    }
}

/// The sockets and HTTP connections one instance holds, capped at `limits.connections`. Shared with the HTTP
/// hooks and the connections' tasks, which give their permit back when the connection closes.
#[derive(Debug)]
pub struct Connections {
    limit: usize,
    held: AtomicUsize,
}

impl Connections {
    /// No connection yet, at most `limit`.
    pub fn new(limit: usize) -> Arc<Connections> {
        Arc::new(Connections {
            limit,
            held: AtomicUsize::new(0),
        })
    }

    /// Connections (sockets and HTTP) held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// One more connection, counted until the permit is dropped.
    ///
    /// # Errors
    /// When the instance holds `limit` connections, or all guests their share of the process's descriptors.
    pub fn acquire(self: &Arc<Self>) -> Result<ConnectionPermit, Refusal> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < self.limit).then_some(held + 1)
            })
            .map_err(|_| Refusal::Instance {
                key: "limits.connections",
                limit: self.limit,
            })?;
        // Made first so that a refusal by the process budget gives the instance's count back.
        let mut permit = ConnectionPermit {
            owner: self.clone(),
            _process: None,
        };
        permit._process = Some(ProcessPermit::acquire()?);
        Ok(permit)
    }
}

/// One socket or HTTP connection of an instance; dropping it gives the count back.
#[derive(Debug)]
pub struct ConnectionPermit {
    owner: Arc<Connections>,
    _process: Option<ProcessPermit>,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.owner.held.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_keeps_a_reserve() {
        assert_eq!(guest_budget(256), 128);
        assert_eq!(guest_budget(1024), 768);
        assert_eq!(guest_budget(1 << 20), 3 << 18);
        assert_eq!(guest_budget(100), 0);
    }

    #[test]
    fn files_count_until_their_descriptor_closes() {
        let dir = std::env::temp_dir();
        let mut files = OpenFiles::new(2);
        let a = Arc::new(std::fs::File::open(&dir).unwrap());
        let b = Arc::new(std::fs::File::open(&dir).unwrap());
        let permit = files.reserve().unwrap();
        files.track(&a, permit);
        let stream_copy = a.clone();
        let permit = files.reserve().unwrap();
        files.track(&b, permit);
        assert_eq!(
            files.reserve().unwrap_err(),
            Refusal::Instance {
                key: "limits.open_files",
                limit: 2
            }
        );
        drop(a);
        assert_eq!(files.held(), 2, "a stream still holds the file open");
        drop(stream_copy);
        assert_eq!(files.held(), 1);
        assert!(files.reserve().is_ok());
    }

    #[test]
    fn connections_count_until_their_permit_drops() {
        let connections = Connections::new(2);
        let one = connections.acquire().unwrap();
        let two = connections.acquire().unwrap();
        let refused = connections.acquire().unwrap_err();
        assert_eq!(refused.reason(), "limits.connections");
        assert!(
            refused
                .to_string()
                .starts_with("limits.connections (2) reached")
        );
        drop(one);
        assert_eq!(connections.held(), 1);
        let _three = connections.acquire().unwrap();
        drop(two);
        assert_eq!(connections.held(), 1);
    }
}

//! The audit trail: an append-only JSON Lines file of every call and every capability use or denial, each
//! record carrying the hash of the one before it, so that editing, deleting, inserting or reordering records
//! is detected by [`verify`].
//!
//! Turned on by the policy: `[audit] path = "audit.jsonl"` (relative to the policy file) and
//! `fsync = "always" | "interval" | "never"` (see [`Fsync`]). Without an `[audit]` path nothing is recorded and
//! the host does no audit work beyond an `Option` check where a record could be made.
//!
//! # Record format
//!
//! One record a line, keys in this order:
//!
//! ```json
//! {"seq":7,"time":"2026-11-25T10:00:00.123Z","event":"fs.open","component":"files","sha256":"9f86…",
//!  "caller":"cli","outcome":"denied","detail":{"path":"/data/new.txt","mode":["write","create","truncate"],
//!  "error":"not-permitted"},"prev":"<hash of record 6>","hash":"<sha256 of this line without hash>"}
//! ```
//!
//! - `seq`: position in the log, from 1, continuing across runs that append to the same file.
//! - `time`: RFC 3339 UTC with milliseconds, when the record was written.
//! - `component`: the component's name in the policy (`[component.NAME]`, the agent type for agents, or the file
//!   stem), and `sha256` its content hash.
//! - `caller`: who made the call: `cli` (`are call`), `mcp` (`are serve`), `agent:TYPE/KEY` for an agent's own
//!   handler and the capabilities it uses, `agent` for a tool component run on an agent's behalf (the matching
//!   `tool.call` record names the agent).
//! - `outcome`: `ok`; `denied` when a grant or ACL refused it; `err` for a call whose function returned its WIT
//!   `result` error case; otherwise `error:KIND` (snake case, e.g. `error:fuel_exhausted`, `error:no_entry`).
//! - `detail`: the event's facts, below. Never a secret value, an environment variable's value, a query string,
//!   request or message bodies, prompts or completions. Strings the guest chooses (paths, host names) are cut at
//!   [`MAX_FIELD`] bytes.
//! - `prev`: the previous record's `hash` ([`GENESIS`], 64 zeros, for the first); `hash`: sha256 (hex) of the
//!   line's JSON without `hash`, i.e. of [`Record`] serialized as written (see [`record_hash`]).
//!
//! # Events
//!
//! | event | when | detail |
//! |---|---|---|
//! | `call` | an exported function was called (CLI, MCP, agent handler, tool) | `function`, `fuel`, `duration_us`, `peak_memory`, `error` |
//! | `fs.open` | the guest opened a file or directory (`open-at`), refusals included; other path operations (stat, mkdir, rename, unlink) are not recorded | `path` (guest path as asked, `..` kept), `mode` (`read`, `write`, `create`, `exclusive`, `truncate`, `directory`, `mutate-directory`), `kind` (`file`/`dir`) or `error` (WASI error code), or `reason` when a descriptor limit refused it (`limits.open_files`, `rlimit_nofile`) |
//! | `env.read` | the guest read its environment | `names` (never values) |
//! | `http.request` | an outgoing HTTP request, allowed or not | `method`, `url` (without query), `status` or `reason`/`error`, `secrets` (names of injected headers) |
//! | `socket.connect` | a TCP connect, or the first UDP send to an address (every refused one) | `protocol`, `addr`, `port`, `host` (the granted name it resolved from) |
//! | `socket.bind`, `socket.listen` | a refused bind to a non-wildcard address, or a listen/accept (always refused) | `protocol`, `addr`, `port`, `use` |
//! | `socket.create` | a socket refused by a descriptor limit (created sockets are not recorded) | `protocol`, `reason` (`limits.connections` or `rlimit_nofile`) |
//! | `dns.lookup` | a name lookup (IP literals are not lookups) | `name`, `addresses` |
//! | `capability.denied` | the guest called an import its policy does not grant | `import` |
//! | `tool.call` | an agent called a tool | `tool`, `fuel`, `error` |
//! | `llm.call` | an agent called the model | `model` (as granted), `served_by`, `turn`, `prompt_tokens`, `completion_tokens`, `finish_reason` or `error` |
//! | `message.send` | an agent sent a message, accepted or refused (the reply is the target's `call`) | `to`, `message` (id) or `error` |
//! | `message.publish` | an agent published on a topic | `topic`, `message` (id), `subscribers` (agent types that got a copy) or `error` |
//!
//! # Canonical form
//!
//! A line is exactly the bytes [`seal`] makes of its record: `serde_json`'s compact serialization of [`Record`]
//! (keys in the order above, no whitespace, `serde_json`'s escaping, `detail` keys in the order they were made)
//! with `"hash"` spliced in last. [`verify`] parses each line, serializes the record again and requires the same
//! bytes, so a line with an added key, a duplicate key (which JSON readers resolve differently: first or last
//! wins), reordered keys, whitespace or another spelling of a string (`\u0061` for `a`) fails even though its
//! hash matches: what a reader of a verified log sees is what was hashed.
//!
//! # What the chain proves
//!
//! [`verify`] recomputes every hash and follows `prev` and `seq`, and names the first record that does not fit:
//! an edited record (its content no longer matches its hash), a deleted one (a `seq` is skipped), an inserted or
//! moved one (its `prev` is not the hash of the line before it, or its `seq` is out of place). Editing a record
//! and recomputing its hash breaks the link to the record after it.
//!
//! # Checkpoints: the end of the chain
//!
//! The chain alone cannot tell a log cut short, or rewritten whole as a new valid chain, from an honest one. A
//! log opened for a policy ([`AuditLog::for_policy`]) also signs [`Checkpoint`]s with an ed25519 key kept outside
//! the log's directory (`[audit] key`, default `~/.config/are/audit.key`, made `0600` on first use): "the log held
//! N records, the last hashing to H", one JSON line of `<log>.checkpoints`, every [`CHECKPOINT_EVERY`] records,
//! [`CHECKPOINT_INTERVAL`] after an uncovered record, and when the log is closed (a clean exit of `are call`,
//! `are serve`, `are run`). [`verify_with`] holds the log against every checkpoint of that file and of anchors
//! kept elsewhere (`are audit verify --anchor COPY`, `--head HASH`): a checkpoint past the log's end means a
//! truncated tail; another record where a checkpoint ends means a rewrite; a checkpoint not signed by the
//! trusted key (`--public-key`, `are audit key`) means a forgery. Opening a log whose last checkpoint does not
//! fit its last record fails, so the writer never signs over a truncation.
//!
//! What stays undetected: records after the last checkpoint can be cut or replaced by whoever can write the
//! file (`--require-covered` fails on such records); and someone who can write both files can cut the log and
//! its checkpoints file back to an earlier checkpoint: only an anchor copied elsewhere (or shipped as written)
//! catches that.
//!
//! Writing never fails the call it records: an I/O error is logged and the record is lost. Every record is
//! written to the file before the call goes on (a crash of the process loses nothing); [`Fsync`] decides how
//! hard it is pushed to disk.

use are_policy::Fsync;
use are_policy::common::parse_hex;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One record, as written (without its `hash`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Position in the log, from 1.
    pub seq: u64,
    /// RFC 3339 time with milliseconds, UTC.
    pub time: String,
    /// What happened: `call`, `fs.open`, `env.read`, `http.request`, `socket.connect`, `socket.bind`,
    /// `socket.listen`, `socket.create`, `dns.lookup`, `capability.denied`, `tool.call`, `llm.call`, `message.send`,
    /// `message.publish` (see the module docs).
    pub event: String,
    /// The component (or agent type) it concerns.
    pub component: String,
    /// The component's sha256.
    pub sha256: String,
    /// Who made the call: `cli`, `mcp`, or `agent:TYPE/KEY`.
    pub caller: String,
    /// `ok`, `denied`, or `error:<kind>`.
    pub outcome: String,
    /// Event-specific facts (path and mode, host and method and status, function and fuel, …).
    pub detail: Value,
    /// The previous record's hash.
    pub prev: String,
}

/// Why the log could not be opened or written.
#[derive(Debug, thiserror::Error)]
#[error("audit log {}: {source}", path.display())]
pub struct AuditError {
    /// The file.
    pub path: PathBuf,
    /// What failed.
    pub source: std::io::Error,
}

struct Writer {
    file: File,
    /// The last record written.
    seq: u64,
    last_hash: String,
    fsync: Fsync,
    /// The last record known to be on disk.
    synced: u64,
    checkpoints: Option<Checkpointer>,
}

/// The signing side of [`Checkpoints`], with the checkpoints file it appends to.
struct Checkpointer {
    settings: Checkpoints,
    file: File,
    path: PathBuf,
    /// Records covered by the last checkpoint written.
    covered: u64,
    /// When it was written (or the log opened).
    at: Instant,
}

/// How often `fsync = "interval"` pushes new records to disk.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(100);

/// An open audit log; share it with `Arc`.
pub struct AuditLog {
    path: PathBuf,
    writer: Arc<Mutex<Writer>>,
}

/// Hash of a record: sha256 of its canonical JSON (fields in declaration order, no `hash`).
pub fn record_hash(record: &Record) -> String {
    let json = serde_json::to_vec(record).unwrap_or_default();
    are_policy::common::hex(&are_policy::common::sha256(&json))
}

/// The canonical line of `record` (without its newline) and its hash: `serde_json`'s compact serialization of
/// the [`Record`] (keys in declaration order, no whitespace, `serde_json`'s escaping, `detail` keys in the order
/// they were made), with `"hash":"<sha256 of the bytes before it, closed by }>"` spliced in as the last key.
/// The writer writes exactly these bytes and [`verify`] requires them.
fn seal(record: &Record) -> serde_json::Result<(Vec<u8>, String)> {
    let mut bytes = serde_json::to_vec(record)?;
    let hash = are_policy::common::hex(&are_policy::common::sha256(&bytes));
    bytes.pop(); // the closing `}`
    bytes.extend_from_slice(b",\"hash\":\"");
    bytes.extend_from_slice(hash.as_bytes());
    bytes.extend_from_slice(b"\"}");
    Ok((bytes, hash))
}

impl AuditLog {
    /// Open `path` for appending, continuing the chain of the records it has.
    ///
    /// # Errors
    /// When the file cannot be opened, or its last record cannot be read.
    pub fn open(path: &Path, fsync: Fsync) -> Result<AuditLog, AuditError> {
        AuditLog::open_with(path, fsync, None)
    }

    /// Open `path` for appending, as [`AuditLog::open`], signing [`Checkpoint`]s into
    /// [`checkpoints_path`]`(path)` when `checkpoints` is given: every [`Checkpoints::every`] records, at most
    /// [`Checkpoints::interval`] after a record, and when the log is closed.
    ///
    /// # Errors
    /// As [`AuditLog::open`]; also when the last checkpoint does not fit the log's last record (the log was
    /// truncated or rewritten since: nothing is signed over it), or the checkpoints file cannot be opened.
    pub fn open_with(
        path: &Path,
        fsync: Fsync,
        checkpoints: Option<Checkpoints>,
    ) -> Result<AuditLog, AuditError> {
        let err = |source| AuditError {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(err)?;
        let (seq, last_hash) = match last_line(&mut file).map_err(err)? {
            None => (0, GENESIS.to_string()),
            Some((line, terminated)) => {
                // A last line without its newline (a write cut short by a crash or a full disk) gets one, so
                // that the next record starts a line of its own instead of being glued to it.
                if !terminated {
                    file.write_all(b"\n").map_err(err)?;
                }
                let value: Value = serde_json::from_str(&line).map_err(|e| {
                    err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "its last line is not a record ({e}); run `are audit verify` on it"
                        ),
                    ))
                })?;
                (
                    value["seq"].as_u64().unwrap_or(0),
                    value["hash"].as_str().unwrap_or(GENESIS).to_string(),
                )
            }
        };
        let checkpoints = checkpoints
            .map(|settings| Checkpointer::open(path, settings, seq, &last_hash))
            .transpose()?;
        let sync_file = match fsync {
            Fsync::Interval => Some(file.try_clone().map_err(err)?),
            Fsync::Always | Fsync::Never => None,
        };
        let background = sync_file.is_some() || checkpoints.is_some();
        let writer = Arc::new(Mutex::new(Writer {
            file,
            seq,
            last_hash,
            fsync,
            synced: seq,
            checkpoints,
        }));
        if background {
            spawn_background(Arc::downgrade(&writer), sync_file, path.to_path_buf());
        }
        Ok(AuditLog {
            path: path.to_path_buf(),
            writer,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The log the policy's `[audit]` section names, opened; `None` without one.
    ///
    /// # Errors
    /// As [`AuditLog::open`].
    pub fn for_policy(policy: &are_policy::Policy) -> Result<Option<Arc<AuditLog>>, AuditError> {
        let Some(path) = &policy.audit.path else {
            return Ok(None);
        };
        let path = policy.base_dir.join(path.get_ref());
        let checkpoints = Checkpoints {
            key: signing_key(&key_path(policy, &path)?, true)?,
            every: policy
                .audit
                .checkpoint_every
                .map_or(CHECKPOINT_EVERY, |n| n.get()),
            interval: policy
                .audit
                .checkpoint_interval
                .map_or(CHECKPOINT_INTERVAL, |t| t.0),
        };
        Ok(Some(Arc::new(AuditLog::open_with(
            &path,
            policy.audit.fsync,
            Some(checkpoints),
        )?)))
    }

    /// Append a record. Failures are logged, never raised: auditing must not break the call it records.
    pub fn append(
        &self,
        event: &str,
        component: &str,
        sha256: &str,
        caller: &str,
        outcome: &str,
        detail: Value,
    ) {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let record = Record {
            seq: w.seq + 1,
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            event: event.to_string(),
            component: component.to_string(),
            sha256: sha256.to_string(),
            caller: caller.to_string(),
            outcome: outcome.to_string(),
            detail,
            prev: w.last_hash.clone(),
        };
        // The line is the hashed JSON with `"hash"` added as its last key: serialize once, hash, and splice.
        let Ok((mut bytes, hash)) = seal(&record) else {
            tracing::error!(path = %self.path.display(), "cannot serialize an audit record");
            return;
        };
        bytes.push(b'\n');
        if let Err(e) = w.file.write_all(&bytes) {
            tracing::error!(path = %self.path.display(), "cannot write the audit log: {e}");
            return;
        }
        w.seq = record.seq;
        w.last_hash = hash;
        if w.fsync == Fsync::Always {
            sync(&mut w, &self.path);
        }
        if w.checkpoints
            .as_ref()
            .is_some_and(|c| w.seq - c.covered >= c.settings.every)
        {
            checkpoint(&mut w, &self.path);
        }
    }
}

/// The log's background thread, behind `fsync = "interval"` and timed checkpoints: every [`SYNC_INTERVAL`],
/// write a checkpoint when one is due by time, and push the records written since the last time to disk
/// through its own handle of the file (`sync_file`), so that appends never wait for that. It ends with the log.
fn spawn_background(writer: Weak<Mutex<Writer>>, sync_file: Option<File>, path: PathBuf) {
    let shown = path.display().to_string();
    let spawned = std::thread::Builder::new()
        .name("audit-log".into())
        .spawn(move || {
            loop {
                std::thread::sleep(SYNC_INTERVAL);
                let written = {
                    let Some(writer) = writer.upgrade() else {
                        return;
                    };
                    let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
                    let due = w.checkpoints.as_ref().is_some_and(|c| {
                        w.seq > c.covered && c.at.elapsed() >= c.settings.interval
                    });
                    if due {
                        checkpoint(&mut w, &path);
                    }
                    (w.seq > w.synced).then_some(w.seq)
                };
                let (Some(written), Some(file)) = (written, &sync_file) else {
                    continue;
                };
                if let Err(e) = file.sync_data() {
                    tracing::error!(path = %path.display(), "cannot sync the audit log: {e}");
                    continue;
                }
                // Gone meanwhile: its drop synced what this did not record as synced.
                let Some(writer) = writer.upgrade() else {
                    return;
                };
                let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
                w.synced = w.synced.max(written);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(path = %shown, "cannot start the audit log's background thread ({e}): records reach the disk when the operating system decides, and checkpoints are written every so many records and when the log is closed");
    }
}

/// The longest a guest-chosen string (a path, a host name) is kept in a record, in bytes.
pub const MAX_FIELD: usize = 4096;

/// `s` cut to at most `max` bytes (at a character boundary), marked with `…` when cut.
pub fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

fn sync(w: &mut Writer, path: &Path) {
    match w.file.sync_data() {
        Ok(()) => w.synced = w.seq,
        Err(e) => tracing::error!(path = %path.display(), "cannot sync the audit log: {e}"),
    }
}

impl Drop for AuditLog {
    /// The records reach the disk (unless `fsync = "never"`), and a last checkpoint covers them all: a clean
    /// exit of `are call`, `are serve` or `are run` leaves a log whose every record is signed for.
    fn drop(&mut self) {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        checkpoint(&mut w, &self.path);
        if w.seq > w.synced && w.fsync != Fsync::Never {
            sync(&mut w, &self.path);
        }
    }
}

/// The last non-empty line of `file`, reading backwards from its end, and whether it ends with a newline.
fn last_line(file: &mut File) -> std::io::Result<Option<(String, bool)>> {
    let len = file.seek(SeekFrom::End(0))?;
    let mut start = len;
    let mut tail = Vec::new();
    while start > 0 {
        let step = start.min(4096);
        start -= step;
        file.seek(SeekFrom::Start(start))?;
        let mut chunk = vec![0u8; step as usize];
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&tail);
        tail = chunk;
        let terminated = tail.ends_with(b"\n");
        let trimmed = tail.strip_suffix(b"\n").unwrap_or(&tail);
        if trimmed.contains(&b'\n') || start == 0 {
            let line = trimmed.rsplit(|b| *b == b'\n').next().unwrap_or(trimmed);
            if line.is_empty() {
                return Ok(None);
            }
            return Ok(Some((
                String::from_utf8_lossy(line).into_owned(),
                terminated,
            )));
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------------------------------------------------------
// checkpoints
// ---------------------------------------------------------------------------------------------------------------

/// Default [`AuditSection::checkpoint_every`].
pub const CHECKPOINT_EVERY: u64 = 1000;

/// Default [`AuditSection::checkpoint_interval`].
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);

/// How an [`AuditLog`] signs checkpoints.
#[derive(Clone)]
pub struct Checkpoints {
    /// The signing key ([`signing_key`]).
    pub key: SigningKey,
    /// A checkpoint after this many records.
    pub every: u64,
    /// And at most this long after a record no checkpoint covers.
    pub interval: Duration,
}

/// A signed statement that a log held `records` records, the last one hashing to `head`: one JSON line of
/// [`checkpoints_path`], or of an anchor file kept elsewhere. The ed25519 signature is over
/// [`Checkpoint::message`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// How many records the log held.
    pub records: u64,
    /// The `hash` of record `records` ([`GENESIS`] for none).
    pub head: String,
    /// When it was signed, RFC 3339 UTC.
    pub time: String,
    /// The signer's public key, hex (for the message; trust comes from `--public-key`).
    pub key: String,
    /// The ed25519 signature of [`Checkpoint::message`], hex.
    pub signature: String,
}

impl Checkpoint {
    /// The signed bytes: a versioned text naming the count, the head and the time.
    pub fn message(records: u64, head: &str, time: &str) -> Vec<u8> {
        format!("are audit checkpoint v1\nrecords {records}\nhead {head}\ntime {time}\n")
            .into_bytes()
    }

    /// A checkpoint of `records` records ending in `head`, signed now by `key`.
    pub fn sign(key: &SigningKey, records: u64, head: &str) -> Checkpoint {
        let time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let signature = key.sign(&Checkpoint::message(records, head, &time));
        Checkpoint {
            records,
            head: head.to_string(),
            key: are_policy::common::hex(key.verifying_key().as_bytes()),
            signature: are_policy::common::hex(&signature.to_bytes()),
            time,
        }
    }

    /// Whether `key` signed this checkpoint; otherwise why not.
    ///
    /// # Errors
    /// [`CheckpointError`]: another key signed it, or the signature is not valid.
    pub fn check(&self, key: &VerifyingKey) -> Result<(), CheckpointError> {
        let trusted = are_policy::common::hex(key.as_bytes());
        if self.key != trusted {
            return Err(CheckpointError::OtherKey {
                named: self.key.clone(),
                trusted,
            });
        }
        let signature = parse_hex::<64>(&self.signature)
            .map(|bytes| Signature::from_bytes(&bytes))
            .ok_or(CheckpointError::MalformedSignature)?;
        key.verify_strict(
            &Checkpoint::message(self.records, &self.head, &self.time),
            &signature,
        )
        .map_err(|_| CheckpointError::Forged)
    }

    /// The public key the checkpoint names.
    fn named_key(&self) -> Option<VerifyingKey> {
        VerifyingKey::from_bytes(&parse_hex::<32>(&self.key)?).ok()
    }
}

/// Where the checkpoints of the log at `log` go: `<log>.checkpoints` (e.g. `audit.jsonl.checkpoints`).
pub fn checkpoints_path(log: &Path) -> PathBuf {
    let mut name = log.file_name().unwrap_or_default().to_os_string();
    name.push(".checkpoints");
    log.with_file_name(name)
}

/// Read the checkpoints in `path`, one JSON line each.
///
/// # Errors
/// I/O errors; a line that is not a checkpoint (its number in the message).
pub fn read_checkpoints(path: &Path) -> std::io::Result<Vec<Checkpoint>> {
    std::fs::read_to_string(path)?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} line {}: not a checkpoint ({e})", path.display(), i + 1),
                )
            })
        })
        .collect()
}

impl Checkpointer {
    /// The checkpoints file of the log at `log`, which holds `seq` records ending in `head`. Its last checkpoint
    /// must fit: a log shorter than it, or with another record where it ends, was truncated or rewritten.
    fn open(
        log: &Path,
        settings: Checkpoints,
        seq: u64,
        head: &str,
    ) -> Result<Checkpointer, AuditError> {
        let path = checkpoints_path(log);
        let err = |source| AuditError {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(err)?;
        let last = match last_line(&mut file).map_err(err)? {
            None => None,
            Some((line, terminated)) => {
                if !terminated {
                    file.write_all(b"\n").map_err(err)?;
                }
                serde_json::from_str::<Checkpoint>(&line).ok()
            }
        };
        let refuse = |what: String| {
            err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{what}: the log was truncated or rewritten since; nothing more is signed over it. Run `are audit verify {}`, and move the log and its checkpoints aside to start a new one",
                    log.display()
                ),
            ))
        };
        let covered = match last {
            None => 0,
            Some(c) if c.records > seq => {
                return Err(refuse(format!(
                    "its last checkpoint covers {} records, the log holds {seq}",
                    c.records
                )));
            }
            Some(c) if c.records == seq && c.head != head => {
                return Err(refuse(format!(
                    "its last checkpoint ends at record {seq} with hash {}, the log's record {seq} has {head}",
                    c.head
                )));
            }
            Some(c) => c.records,
        };
        Ok(Checkpointer {
            settings,
            file,
            path,
            covered,
            at: Instant::now(),
        })
    }
}

/// Sign a checkpoint of every record written so far, when some are not covered yet. The records reach the
/// disk first (unless `fsync = "never"`), so that a power loss cannot leave a checkpoint over records it lost.
fn checkpoint(w: &mut Writer, log: &Path) {
    if w.checkpoints.as_ref().is_none_or(|c| c.covered == w.seq) {
        return;
    }
    if w.fsync != Fsync::Never && w.synced < w.seq {
        sync(w, log);
    }
    let (seq, head, fsync) = (w.seq, w.last_hash.clone(), w.fsync);
    let Some(c) = w.checkpoints.as_mut() else {
        return;
    };
    let signed = Checkpoint::sign(&c.settings.key, seq, &head);
    let mut line = serde_json::to_vec(&signed).unwrap_or_default();
    line.push(b'\n');
    let written = c.file.write_all(&line).and_then(|()| match fsync {
        Fsync::Never => Ok(()),
        Fsync::Always | Fsync::Interval => c.file.sync_data(),
    });
    match written {
        Ok(()) => {
            c.covered = seq;
            c.at = Instant::now();
        }
        Err(e) => {
            tracing::error!(path = %c.path.display(), "cannot write an audit checkpoint: {e}");
        }
    }
}

/// The default signing key: `audit.key` in the user's config directory.
pub fn default_key_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("are").join("audit.key"))
}

/// The signing key of the policy's log at `log`: `[audit] key`, else [`default_key_path`]; never in the log's
/// directory (whoever may rewrite the log could read it there).
fn key_path(policy: &are_policy::Policy, log: &Path) -> Result<PathBuf, AuditError> {
    let invalid = |path: &Path, message: String| AuditError {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, message),
    };
    let key = match &policy.audit.key {
        Some(k) => policy.base_dir.join(k),
        None => default_key_path().ok_or_else(|| {
            invalid(
                log,
                "there is no user config directory for the checkpoint signing key: set `[audit] key`"
                    .into(),
            )
        })?,
    };
    let canonical_dir = |p: &Path| {
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())
    };
    if canonical_dir(&key).starts_with(canonical_dir(log)) {
        return Err(invalid(
            &key,
            format!(
                "the checkpoint signing key (`[audit] key`) is inside the directory of the log {}: keep it elsewhere",
                log.display()
            ),
        ));
    }
    Ok(key)
}

/// The ed25519 key in `path` (64 hex digits), made with a fresh random key (`0600`, in a `0700` directory) when
/// missing and `create` is set. A key that another user owns, or that group or others may read or write, is
/// refused.
///
/// # Errors
/// When the key cannot be read or made, or is not a key, or its permissions are too open.
pub fn signing_key(path: &Path, create: bool) -> Result<SigningKey, AuditError> {
    use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
    let err = |source| AuditError {
        path: path.to_path_buf(),
        source,
    };
    let invalid = |message: String| {
        err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            message,
        ))
    };
    if create && !path.exists() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(err)?;
        }
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| {
            err(std::io::Error::other(format!(
                "no randomness for a key: {e}"
            )))
        })?;
        let made = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut f| {
                f.write_all(format!("{}\n", are_policy::common::hex(&seed)).as_bytes())?;
                f.sync_all()
            });
        seed.fill(0);
        match made {
            Ok(()) => {
                tracing::info!(key = %path.display(), "made the audit checkpoint signing key")
            }
            // Made by another process meanwhile: read that one.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(err(e)),
        }
    }
    let meta = std::fs::metadata(path).map_err(err)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(invalid(format!(
            "the checkpoint signing key is owned by user {}, not by this user ({me})",
            meta.uid()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(invalid(format!(
            "the checkpoint signing key may be read or written by group or others (mode {:o}): `chmod 600 {}`",
            meta.mode() & 0o777,
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(err)?;
    let seed = parse_hex::<32>(text.trim())
        .ok_or_else(|| invalid("not an audit signing key (64 hex digits)".into()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// A public key given as 64 hex digits (as `are audit key` prints it).
///
/// # Errors
/// [`InvalidPublicKey`] when `text` is not one.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, InvalidPublicKey> {
    parse_hex::<32>(text.trim())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
        .ok_or_else(|| InvalidPublicKey(text.to_string()))
}

/// Text that is not an ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an ed25519 public key (64 hex digits)")]
pub struct InvalidPublicKey(pub String);

/// Why a checkpoint does not hold for the trusted key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// Another key signed it.
    #[error("it names the key {named}, not the trusted {trusted}: signed by someone else")]
    OtherKey {
        /// The key the checkpoint names.
        named: String,
        /// The trusted key.
        trusted: String,
    },
    /// The signature field is not 128 hex digits.
    #[error("its signature is not 128 hex digits")]
    MalformedSignature,
    /// The signature does not verify.
    #[error("its signature does not match its content: forged or edited")]
    Forged,
    /// No key was given and the checkpoint names none.
    #[error("it names no valid public key")]
    NoKey,
}

/// An audit log handed to a component spec, with the caller its calls are recorded under (`cli`, `mcp`, …).
#[derive(Clone)]
pub struct AuditSink {
    /// The log.
    pub log: Arc<AuditLog>,
    /// Who calls.
    pub caller: String,
}

impl std::fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AuditSink({}, caller {})",
            self.log.path().display(),
            self.caller
        )
    }
}

impl PartialEq for AuditSink {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.log, &other.log) && self.caller == other.caller
    }
}

/// Where a record is recorded from: the log, the component, and the caller.
#[derive(Clone)]
pub struct AuditScope {
    /// The log.
    pub log: Arc<AuditLog>,
    /// The component name.
    pub component: Arc<str>,
    /// Its sha256.
    pub sha256: Arc<str>,
    /// The caller.
    pub caller: Arc<str>,
}

impl AuditScope {
    /// Record one event.
    pub fn record(&self, event: &str, outcome: &str, detail: Value) {
        self.log.append(
            event,
            &self.component,
            &self.sha256,
            &self.caller,
            outcome,
            detail,
        );
    }

    /// This scope with another caller.
    pub fn with_caller(&self, caller: &str) -> AuditScope {
        AuditScope {
            caller: caller.into(),
            ..self.clone()
        }
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// Records checked.
    pub records: u64,
    /// Hash of the last record (anchor it elsewhere to detect truncation).
    pub last_hash: String,
    /// Checkpoints checked (of the log's checkpoints file and the anchors).
    pub checkpoints: u64,
    /// Records covered by a checkpoint: those after it could have been appended by anyone who can write the file.
    pub covered: u64,
    /// The key the checkpoints are signed with, hex.
    pub key: Option<String>,
    /// Whether that key was given as trusted ([`VerifyOptions::public_key`]); otherwise the checkpoints were
    /// checked against the key they name, which proves nothing against someone who rewrites both files.
    pub key_trusted: bool,
}

/// What [`verify`] checks besides the chain.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// The public key checkpoints must be signed with. Without one they are checked against the key they name.
    pub public_key: Option<VerifyingKey>,
    /// The checkpoints file to read instead of [`checkpoints_path`] of the log (which is read when it exists).
    pub checkpoints: Option<PathBuf>,
    /// Checkpoints kept elsewhere (`--anchor`): each must be signed, and the log must hold its records and head.
    pub anchors: Vec<(PathBuf, Checkpoint)>,
    /// A record hash kept elsewhere (`--head`): the log must hold a record with it.
    pub head: Option<String>,
    /// Fail unless a checkpoint covers every record (a log closed cleanly has one).
    pub require_covered: bool,
}

/// The first bad record and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("record {record} (line {line}): {problem}")]
pub struct Tampered {
    /// The record's position as it should be (1-based).
    pub record: u64,
    /// Its line in the file.
    pub line: u64,
    /// What is wrong.
    pub problem: String,
}

/// Check the whole chain of the log at `path`, and its checkpoints file when there is one (see
/// [`verify_with`]).
///
/// # Errors
/// I/O errors reading the file; a [`Tampered`] (inside `Ok(Err(..))`) naming the first bad record.
pub fn verify(path: &Path) -> std::io::Result<Result<Verified, Tampered>> {
    verify_with(path, &VerifyOptions::default())
}

/// A checkpoint to hold the log against, and where it came from (for messages).
struct Claim {
    checkpoint: Checkpoint,
    from: String,
}

/// Check the log at `path`: every line is a record in its canonical form (the bytes the writer writes, see
/// [`seal`]: an added, reordered or duplicate key, whitespace, or another spelling of the same string fails),
/// whose content matches its hash, following the record before it by `prev` and `seq`. Then every checkpoint
/// (of the checkpoints file and of `options.anchors`) must be signed and name a record count and head that the
/// log holds: a log shorter than a checkpoint lost its tail, one with another record there was rewritten.
///
/// # Errors
/// I/O errors reading the files; a [`Tampered`] (inside `Ok(Err(..))`) naming the first bad record.
pub fn verify_with(
    path: &Path,
    options: &VerifyOptions,
) -> std::io::Result<Result<Verified, Tampered>> {
    let own = options
        .checkpoints
        .clone()
        .unwrap_or_else(|| checkpoints_path(path));
    let mut claims: Vec<Claim> = match read_checkpoints(&own) {
        Ok(list) => list
            .into_iter()
            .enumerate()
            .map(|(i, checkpoint)| Claim {
                checkpoint,
                from: format!("checkpoint {} of {}", i + 1, own.display()),
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && options.checkpoints.is_none() => {
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    claims.extend(options.anchors.iter().map(|(file, checkpoint)| Claim {
        checkpoint: checkpoint.clone(),
        from: format!("the anchor {}", file.display()),
    }));
    // Every checkpoint is signed by one key: the trusted one, else the one the first names.
    let key = options
        .public_key
        .or_else(|| claims.first().and_then(|c| c.checkpoint.named_key()));
    for claim in &claims {
        let checked = match &key {
            Some(key) => claim.checkpoint.check(key),
            None => Err(CheckpointError::NoKey),
        };
        if let Err(problem) = checked {
            return Ok(Err(Tampered {
                record: claim.checkpoint.records,
                line: 0,
                problem: format!("{} does not hold: {problem}", claim.from),
            }));
        }
    }
    let chain = match walk(path, &claims, options.head.as_deref())? {
        Ok(chain) => chain,
        Err(t) => return Ok(Err(t)),
    };
    // What the log lacks: a checkpoint past its end, the --head hash nowhere in it.
    if let Some(claim) = claims
        .iter()
        .filter(|c| c.checkpoint.records > chain.records)
        .max_by_key(|c| c.checkpoint.records)
    {
        return Ok(Err(Tampered {
            record: chain.records + 1,
            line: chain.lines + 1,
            problem: format!(
                "missing: the log ends at record {}, but {} (signed {}) says it held {} records: the tail was \
                 truncated",
                chain.records, claim.from, claim.checkpoint.time, claim.checkpoint.records
            ),
        }));
    }
    if let Some(head) = &options.head
        && !chain.head_found
    {
        return Ok(Err(Tampered {
            record: chain.records + 1,
            line: chain.lines + 1,
            problem: format!(
                "missing: no record has the hash {head} given by --head: the log was truncated before it, or \
                 rewritten"
            ),
        }));
    }
    let covered = claims
        .iter()
        .map(|c| c.checkpoint.records)
        .max()
        .unwrap_or(0);
    if options.require_covered && covered < chain.records {
        return Ok(Err(Tampered {
            record: covered + 1,
            line: covered + 1,
            problem: format!(
                "not covered: no signed checkpoint covers records {} to {} (--require-covered): they may have \
                 been appended by anyone who can write the file, or the log was not closed cleanly",
                covered + 1,
                chain.records
            ),
        }));
    }
    Ok(Ok(Verified {
        records: chain.records,
        last_hash: chain.last_hash,
        checkpoints: claims.len() as u64,
        covered,
        key: key.map(|k| are_policy::common::hex(k.as_bytes())),
        key_trusted: options.public_key.is_some(),
    }))
}

/// The chain as [`walk`] found it.
struct Chain {
    records: u64,
    lines: u64,
    last_hash: String,
    head_found: bool,
}

/// Follow the chain of the log at `path`, holding each of `claims` against the record it names and looking for
/// `head`.
fn walk(
    path: &Path,
    claims: &[Claim],
    head: Option<&str>,
) -> std::io::Result<Result<Chain, Tampered>> {
    let mut by_record: std::collections::HashMap<u64, Vec<&Claim>> = Default::default();
    for claim in claims {
        by_record
            .entry(claim.checkpoint.records)
            .or_default()
            .push(claim);
    }
    let mut prev = GENESIS.to_string();
    let mut expected_seq = 1u64;
    let mut head_found = head == Some(GENESIS);
    let mut lines = 0u64;
    // Record 0 is the empty log: a checkpoint of it must say GENESIS.
    if let Some(bad) = by_record
        .get(&0)
        .into_iter()
        .flatten()
        .find(|c| c.checkpoint.head != GENESIS)
    {
        return Ok(Err(Tampered {
            record: 1,
            line: 1,
            problem: format!(
                "{} is of an empty log with another head: not this log's",
                bad.from
            ),
        }));
    }
    let mut reader = BufReader::new(File::open(path)?);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        if reader.read_until(b'\n', &mut raw)? == 0 {
            break;
        }
        lines += 1;
        let line_no = lines;
        let bad = |problem: String| Tampered {
            record: expected_seq,
            line: line_no,
            problem,
        };
        let bytes = raw.strip_suffix(b"\n").unwrap_or(&raw);
        let mut value: Map<String, Value> = match serde_json::from_slice(bytes) {
            Ok(Value::Object(map)) => map,
            _ => return Ok(Err(bad("not a JSON record (edited or corrupted)".into()))),
        };
        let Some(Value::String(hash)) = value.remove("hash") else {
            return Ok(Err(bad("has no hash (edited)".into())));
        };
        let record: Record = match serde_json::from_value(Value::Object(value)) {
            Ok(r) => r,
            Err(e) => {
                return Ok(Err(bad(format!(
                    "is not a well-formed record ({e}): edited"
                ))));
            }
        };
        let Ok((canonical, computed)) = seal(&record) else {
            return Ok(Err(bad("cannot be serialized again: edited".into())));
        };
        if computed != hash {
            return Ok(Err(bad(
                "its content does not match its hash: the record was edited".into(),
            )));
        }
        if canonical != bytes {
            return Ok(Err(bad(
                "is not in the canonical form the writer uses (an added, duplicate or reordered key, \
                 whitespace, or another spelling of the same value): edited"
                    .into(),
            )));
        }
        if record.prev != prev {
            let problem = if record.seq > expected_seq {
                format!(
                    "record {} comes where {expected_seq} should: the records between were deleted or moved",
                    record.seq
                )
            } else if record.seq < expected_seq {
                format!(
                    "it is record {} again, out of place: inserted or reordered",
                    record.seq
                )
            } else {
                "its prev is not the hash of the record before it: that record was edited and re-hashed, or \
                 this one was inserted or moved"
                    .to_string()
            };
            return Ok(Err(bad(problem)));
        }
        if record.seq != expected_seq {
            return Ok(Err(bad(format!(
                "its number is {} where {expected_seq} was expected",
                record.seq
            ))));
        }
        if let Some(bad_claim) = by_record
            .get(&record.seq)
            .into_iter()
            .flatten()
            .find(|c| c.checkpoint.head != hash)
        {
            return Ok(Err(bad(format!(
                "rewritten: its hash is {hash}, but {} (signed {}) says record {} hashed to {}",
                bad_claim.from, bad_claim.checkpoint.time, record.seq, bad_claim.checkpoint.head
            ))));
        }
        head_found |= head == Some(hash.as_str());
        prev = hash;
        expected_seq += 1;
    }
    Ok(Ok(Chain {
        records: expected_seq - 1,
        lines,
        last_hash: prev,
        head_found,
    }))
}

/// Read every record of the log (without verifying it), with its hash.
///
/// # Errors
/// When the file cannot be read.
pub fn read(path: &Path) -> std::io::Result<Vec<Value>> {
    let file = File::open(path)?;
    BufReader::new(file)
        .lines()
        .filter_map(|line| match line {
            Ok(l) if l.trim().is_empty() => None,
            Ok(l) => Some(Ok(serde_json::from_str(&l).unwrap_or(Value::String(l)))),
            Err(e) => Some(Err(e)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write_log(path: &Path, n: u64) {
        let log = AuditLog::open(path, Fsync::Never).unwrap();
        for i in 0..n {
            log.append("call", "text", "ab", "cli", "ok", json!({ "i": i }));
        }
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn rewrite(path: &Path, lines: &[String]) {
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }

    #[test]
    fn an_intact_log_verifies_and_continues_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        write_log(&path, 3);
        write_log(&path, 2);
        let v = verify(&path).unwrap().unwrap();
        assert_eq!(v.records, 5);
        assert_eq!(lines(&path).len(), 5);
    }

    #[test]
    fn every_kind_of_tampering_is_caught_at_the_first_bad_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        write_log(&path, 5);
        let original = lines(&path);

        let mut edited = original.clone();
        edited[2] = edited[2].replace("\"ok\"", "\"denied\"");
        rewrite(&path, &edited);
        let t = verify(&path).unwrap().unwrap_err();
        assert_eq!((t.record, t.line), (3, 3));
        assert!(t.problem.contains("edited"), "{t}");

        let mut deleted = original.clone();
        deleted.remove(1);
        rewrite(&path, &deleted);
        let t = verify(&path).unwrap().unwrap_err();
        assert_eq!((t.record, t.line), (2, 2));
        assert!(t.problem.contains("deleted"), "{t}");

        let mut inserted = original.clone();
        inserted.insert(3, original[1].clone());
        rewrite(&path, &inserted);
        let t = verify(&path).unwrap().unwrap_err();
        assert_eq!((t.record, t.line), (4, 4));
        assert!(t.problem.contains("inserted"), "{t}");

        let mut reordered = original.clone();
        reordered.swap(1, 2);
        rewrite(&path, &reordered);
        let t = verify(&path).unwrap().unwrap_err();
        assert_eq!((t.record, t.line), (2, 2));

        let mut garbage = original.clone();
        garbage[4] = "{not json".into();
        rewrite(&path, &garbage);
        assert_eq!(verify(&path).unwrap().unwrap_err().line, 5);
    }

    #[test]
    fn a_line_is_its_record_with_the_hash_last() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        write_log(&path, 1);
        let line = &lines(&path)[0];
        let value: Map<String, Value> = serde_json::from_str(line).unwrap();
        let keys: Vec<&str> = value.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "seq",
                "time",
                "event",
                "component",
                "sha256",
                "caller",
                "outcome",
                "detail",
                "prev",
                "hash"
            ]
        );
        let record: Record = serde_json::from_str(line).unwrap();
        assert_eq!(value["hash"], record_hash(&record));
    }

    #[test]
    fn long_fields_are_cut_at_a_character_boundary() {
        assert_eq!(truncate("short".into(), 10), "short");
        assert_eq!(truncate("ééé".into(), 3), "é…");
        assert_eq!(
            truncate("x".repeat(5000), MAX_FIELD).len(),
            MAX_FIELD + '…'.len_utf8()
        );
    }

    #[test]
    fn interval_syncs_in_the_background_and_its_thread_ends_with_the_log() {
        use std::time::Instant;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path, Fsync::Interval).unwrap();
        log.append("call", "text", "ab", "cli", "ok", json!({}));
        let until = Instant::now() + Duration::from_secs(5);
        while log.writer.lock().unwrap().synced < 1 {
            assert!(Instant::now() < until, "record 1 was never synced");
            std::thread::sleep(Duration::from_millis(10));
        }
        let writer = Arc::downgrade(&log.writer);
        drop(log);
        while writer.upgrade().is_some() {
            assert!(
                Instant::now() < until,
                "the sync thread keeps the log alive"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A log in a fresh directory signed by a fresh key with a checkpoint every `every` records; the key's
    /// directory is apart from the log's.
    struct Signed {
        dir: tempfile::TempDir,
        path: PathBuf,
        key: SigningKey,
        every: u64,
    }

    impl Signed {
        fn new(every: u64) -> Signed {
            let dir = tempfile::tempdir().unwrap();
            let key = signing_key(&dir.path().join("keys/audit.key"), true).unwrap();
            std::fs::create_dir(dir.path().join("logs")).unwrap();
            let path = dir.path().join("logs/audit.jsonl");
            Signed {
                dir,
                path,
                key,
                every,
            }
        }

        fn open(&self) -> Result<AuditLog, AuditError> {
            let checkpoints = Checkpoints {
                key: self.key.clone(),
                every: self.every,
                interval: Duration::from_secs(3600),
            };
            AuditLog::open_with(&self.path, Fsync::Never, Some(checkpoints))
        }

        fn write(&self, n: u64) {
            let log = self.open().unwrap();
            for i in 0..n {
                log.append("call", "text", "ab", "cli", "ok", json!({ "i": i }));
            }
        }

        fn trusted(&self) -> VerifyOptions {
            VerifyOptions {
                public_key: Some(self.key.verifying_key()),
                ..VerifyOptions::default()
            }
        }

        fn verify(&self, options: &VerifyOptions) -> Result<Verified, Tampered> {
            verify_with(&self.path, options).unwrap()
        }
    }

    #[test]
    fn a_record_not_in_canonical_form_fails_even_when_its_hash_matches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        write_log(&path, 3);
        let original = lines(&path);
        let cases = [
            // An added key, which the record's hash does not cover.
            original[1].replacen("{\"seq\"", "{\"note\":\"added\",\"seq\"", 1),
            // `a` spelled `\u0061`: the same string to a JSON reader.
            original[1].replacen("\"call\"", "\"c\\u0061ll\"", 1),
            // A duplicate key: readers that keep the first see `denied`, serde_json keeps the last.
            original[1].replacen(
                "\"outcome\":\"ok\"",
                "\"outcome\":\"denied\",\"outcome\":\"ok\"",
                1,
            ),
            // Whitespace.
            original[1].replacen(",\"time\"", ", \"time\"", 1),
        ];
        for tampered in cases {
            assert_ne!(tampered, original[1]);
            let mut edited = original.clone();
            edited[1] = tampered.clone();
            rewrite(&path, &edited);
            let t = verify(&path).unwrap().unwrap_err();
            assert_eq!((t.record, t.line), (2, 2), "{tampered}: {t}");
            assert!(t.problem.contains("canonical form"), "{tampered}: {t}");
        }
        rewrite(&path, &original);
        assert!(verify(&path).unwrap().is_ok());
    }

    #[test]
    fn appending_after_a_last_line_without_its_newline_repairs_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        write_log(&path, 2);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.trim_end_matches('\n')).unwrap();
        write_log(&path, 1);
        assert_eq!(lines(&path).len(), 3);
        assert_eq!(verify(&path).unwrap().unwrap().records, 3);
    }

    #[test]
    fn checkpoints_are_signed_every_so_many_records_and_on_close() {
        let log = Signed::new(2);
        log.write(5);
        let written = read_checkpoints(&checkpoints_path(&log.path)).unwrap();
        let counts: Vec<u64> = written.iter().map(|c| c.records).collect();
        assert_eq!(counts, [2, 4, 5]);
        for c in &written {
            c.check(&log.key.verifying_key()).unwrap();
        }
        let v = log.verify(&log.trusted()).unwrap();
        assert_eq!((v.records, v.checkpoints, v.covered), (5, 3, 5));
        assert!(v.key_trusted);
        // Closing a log with nothing new signs nothing more.
        drop(log.open().unwrap());
        assert_eq!(
            read_checkpoints(&checkpoints_path(&log.path))
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn timed_checkpoints_cover_records_while_the_log_stays_open() {
        let log = Signed::new(1000);
        let open = AuditLog::open_with(
            &log.path,
            Fsync::Never,
            Some(Checkpoints {
                key: log.key.clone(),
                every: 1000,
                interval: Duration::from_millis(50),
            }),
        )
        .unwrap();
        open.append("call", "text", "ab", "cli", "ok", json!({}));
        let until = Instant::now() + Duration::from_secs(10);
        while !checkpoints_path(&log.path).exists()
            || read_checkpoints(&checkpoints_path(&log.path))
                .unwrap()
                .is_empty()
        {
            assert!(Instant::now() < until, "no timed checkpoint");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(log.verify(&log.trusted()).unwrap().covered, 1);
    }

    #[test]
    fn a_truncated_tail_is_caught_by_the_checkpoints_the_anchor_and_the_head() {
        let log = Signed::new(2);
        log.write(4);
        let head = log.verify(&log.trusted()).unwrap().last_hash;
        let anchor = log.dir.path().join("anchor");
        std::fs::copy(checkpoints_path(&log.path), &anchor).unwrap();
        let anchors: Vec<(PathBuf, Checkpoint)> = read_checkpoints(&anchor)
            .unwrap()
            .into_iter()
            .map(|c| (anchor.clone(), c))
            .collect();

        // The last record cut off: the checkpoints file says there were 4.
        let mut cut = lines(&log.path);
        cut.pop();
        rewrite(&log.path, &cut);
        let t = log.verify(&log.trusted()).unwrap_err();
        assert_eq!(t.record, 4, "{t}");
        assert!(t.problem.contains("truncated"), "{t}");
        // The writer refuses to sign over it.
        let refused = log.open().err().expect("opening a truncated log fails");
        assert!(
            refused.to_string().contains("truncated or rewritten"),
            "{refused}"
        );

        // Its checkpoints cut back too, consistently: only what is kept elsewhere tells.
        let mut own = std::fs::read_to_string(checkpoints_path(&log.path)).unwrap();
        own = own.lines().take(1).collect::<Vec<_>>().join("\n") + "\n";
        std::fs::write(checkpoints_path(&log.path), own).unwrap();
        assert!(log.verify(&log.trusted()).is_ok());
        let with_anchor = VerifyOptions {
            anchors,
            ..log.trusted()
        };
        let t = log.verify(&with_anchor).unwrap_err();
        assert!(
            t.problem.contains("the anchor") && t.problem.contains("truncated"),
            "{t}"
        );
        let with_head = VerifyOptions {
            head: Some(head),
            ..log.trusted()
        };
        let t = log.verify(&with_head).unwrap_err();
        assert!(t.problem.contains("--head"), "{t}");
        // Records after the last checkpoint are not covered.
        let strict = VerifyOptions {
            require_covered: true,
            ..log.trusted()
        };
        let t = log.verify(&strict).unwrap_err();
        assert!(t.problem.contains("not covered"), "{t}");
    }

    #[test]
    fn a_rewritten_log_is_caught_by_the_signature() {
        let log = Signed::new(2);
        log.write(4);
        let anchor = read_checkpoints(&checkpoints_path(&log.path)).unwrap();

        // A new, valid chain of as many records in place of the old one: another record where they end.
        std::fs::remove_file(&log.path).unwrap();
        let rewritten = AuditLog::open(&log.path, Fsync::Never).unwrap();
        for i in 0..4 {
            rewritten.append("call", "text", "ab", "cli", "ok", json!({ "forged": i }));
        }
        drop(rewritten);
        let t = log.verify(&log.trusted()).unwrap_err();
        assert_eq!(t.record, 2, "{t}");
        assert!(t.problem.contains("rewritten"), "{t}");

        // And its checkpoints re-signed by the forger's own key: not the trusted one.
        std::fs::remove_file(checkpoints_path(&log.path)).unwrap();
        std::fs::remove_file(&log.path).unwrap();
        let forger = Checkpoints {
            key: SigningKey::from_bytes(&[7; 32]),
            every: 2,
            interval: Duration::from_secs(3600),
        };
        let forged = AuditLog::open_with(&log.path, Fsync::Never, Some(forger)).unwrap();
        for i in 0..4 {
            forged.append("call", "text", "ab", "cli", "ok", json!({ "i": i }));
        }
        drop(forged);
        let t = log.verify(&log.trusted()).unwrap_err();
        assert!(t.problem.contains("not the trusted"), "{t}");
        // Without a trusted key it passes on the forger's word: that is what --public-key is for.
        assert!(!log.verify(&VerifyOptions::default()).unwrap().key_trusted);
        // An anchor kept elsewhere catches it without the key too.
        let kept = VerifyOptions {
            anchors: anchor
                .into_iter()
                .map(|c| (PathBuf::from("kept"), c))
                .collect(),
            ..VerifyOptions::default()
        };
        assert!(log.verify(&kept).is_err());
    }

    #[test]
    fn the_signing_key_is_made_private_and_refused_when_others_can_read_it() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("are/audit.key");
        let made = signing_key(&path, true).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(
            signing_key(&path, true).unwrap().to_bytes(),
            made.to_bytes()
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = signing_key(&path, false).err().unwrap().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        assert!(signing_key(&dir.path().join("missing"), false).is_err());
    }

    #[test]
    fn records_chain_by_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        write_log(&path, 2);
        let records = read(&path).unwrap();
        assert_eq!(records[0]["prev"], GENESIS);
        assert_eq!(records[1]["prev"], records[0]["hash"]);
        assert_eq!(records[1]["seq"], 2);
    }
}

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
//! # What the chain proves
//!
//! [`verify`] recomputes every hash and follows `prev` and `seq`, and names the first record that does not fit:
//! an edited record (its content no longer matches its hash), a deleted one (a `seq` is skipped), an inserted or
//! moved one (its `prev` is not the hash of the line before it, or its `seq` is out of place). Editing a record
//! and recomputing its hash breaks the link to the record after it. Truncating the end of the file cannot be
//! detected from the file alone: keep the last hash (`are audit verify` prints it) somewhere else to anchor it.
//! Rewriting the whole file from the first changed record onwards can only be caught that way too.
//!
//! Writing never fails the call it records: an I/O error is logged and the record is lost. Every record is
//! written to the file before the call goes on (a crash of the process loses nothing); [`Fsync`] decides how
//! hard it is pushed to disk.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// When records are forced to disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// After every record: nothing is lost even on power loss; slowest.
    Always,
    /// Every [`SYNC_INTERVAL`] (and when the log is closed) by a background thread, when records were written:
    /// calls never wait for the disk, and a power loss may lose the last 100 ms of records.
    #[default]
    Interval,
    /// Never explicitly: the operating system decides. A crash of the process loses nothing (every record is
    /// written out at once); a power loss may lose more.
    Never,
}

/// `[audit]`: where the trail goes and how hard it is pushed to disk.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// The JSON Lines file, relative to the policy. No audit trail when absent. It must not be inside an `rw`
    /// mount (checked when the policy is read), or a guest could rewrite the trail of its own calls.
    pub path: Option<toml::Spanned<String>>,
    /// When records are forced to disk (default `interval`).
    #[serde(default)]
    pub fsync: Fsync,
}

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
    crate::component::hex(&Sha256::digest(json))
}

impl AuditLog {
    /// Open `path` for appending, continuing the chain of the records it has.
    ///
    /// # Errors
    /// When the file cannot be opened, or its last record cannot be read.
    pub fn open(path: &Path, fsync: Fsync) -> Result<AuditLog, AuditError> {
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
            Some(line) => {
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
        let sync_file = match fsync {
            Fsync::Interval => Some(file.try_clone().map_err(err)?),
            Fsync::Always | Fsync::Never => None,
        };
        let writer = Arc::new(Mutex::new(Writer {
            file,
            seq,
            last_hash,
            fsync,
            synced: seq,
        }));
        if let Some(file) = sync_file {
            spawn_syncer(Arc::downgrade(&writer), file, path.to_path_buf());
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
    pub fn for_policy(policy: &crate::policy::Policy) -> Result<Option<Arc<AuditLog>>, AuditError> {
        let Some(path) = &policy.audit.path else {
            return Ok(None);
        };
        Ok(Some(Arc::new(AuditLog::open(
            &policy.base_dir.join(path.get_ref()),
            policy.audit.fsync,
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
        let Ok(mut bytes) = serde_json::to_vec(&record) else {
            tracing::error!(path = %self.path.display(), "cannot serialize an audit record");
            return;
        };
        let hash = crate::component::hex(&Sha256::digest(&bytes));
        bytes.pop(); // the closing `}`
        bytes.extend_from_slice(b",\"hash\":\"");
        bytes.extend_from_slice(hash.as_bytes());
        bytes.extend_from_slice(b"\"}\n");
        if let Err(e) = w.file.write_all(&bytes) {
            tracing::error!(path = %self.path.display(), "cannot write the audit log: {e}");
            return;
        }
        w.seq = record.seq;
        w.last_hash = hash;
        if w.fsync == Fsync::Always {
            sync(&mut w, &self.path);
        }
    }
}

/// The thread behind `fsync = "interval"`: every [`SYNC_INTERVAL`], push the records written since the last
/// time to disk, through its own handle of the file so that appends never wait for it. It ends with the log.
fn spawn_syncer(writer: Weak<Mutex<Writer>>, file: File, path: PathBuf) {
    let shown = path.display().to_string();
    let spawned = std::thread::Builder::new()
        .name("audit-fsync".into())
        .spawn(move || {
            loop {
                std::thread::sleep(SYNC_INTERVAL);
                let written = {
                    let Some(writer) = writer.upgrade() else {
                        return;
                    };
                    let w = writer.lock().unwrap_or_else(|e| e.into_inner());
                    (w.seq > w.synced).then_some(w.seq)
                };
                let Some(written) = written else {
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
        tracing::error!(path = %shown, "cannot start the audit log's sync thread ({e}): records reach the disk when the operating system decides, or when the log is closed");
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
    fn drop(&mut self) {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if w.seq > w.synced && w.fsync != Fsync::Never {
            sync(&mut w, &self.path);
        }
    }
}

/// The last non-empty line of `file`, reading backwards from its end.
fn last_line(file: &mut File) -> std::io::Result<Option<String>> {
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
        let trimmed = tail.strip_suffix(b"\n").unwrap_or(&tail);
        if trimmed.contains(&b'\n') || start == 0 {
            let line = trimmed.rsplit(|b| *b == b'\n').next().unwrap_or(trimmed);
            if line.is_empty() {
                return Ok(None);
            }
            return Ok(Some(String::from_utf8_lossy(line).into_owned()));
        }
    }
    Ok(None)
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

/// Check the whole chain of the log at `path`.
///
/// # Errors
/// I/O errors reading the file; a [`Tampered`] (inside `Ok(Err(..))`) naming the first bad record.
pub fn verify(path: &Path) -> std::io::Result<Result<Verified, Tampered>> {
    let file = File::open(path)?;
    let mut prev = GENESIS.to_string();
    let mut expected_seq = 1u64;
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        let line_no = index as u64 + 1;
        let bad = |problem: String| Tampered {
            record: expected_seq,
            line: line_no,
            problem,
        };
        let mut value: Map<String, Value> = match serde_json::from_str(&line) {
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
        if record_hash(&record) != hash {
            return Ok(Err(bad(
                "its content does not match its hash: the record was edited".into(),
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
        prev = hash;
        expected_seq += 1;
    }
    Ok(Ok(Verified {
        records: expected_seq - 1,
        last_hash: prev,
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

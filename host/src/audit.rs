//! The audit trail: an append-only JSON Lines file of every call and every capability use or denial, each
//! record carrying the hash of the one before it, so that editing, deleting, inserting or reordering records
//! is detected by [`verify`].
//!
//! A record is one line: `{"seq", "time", "event", "component", "sha256", "caller", "outcome", "detail",
//! "prev", "hash"}`. `hash` is the sha256 of the line's JSON without the `hash` field (keys in that order), and
//! `prev` the `hash` of the previous record (64 zeros for the first). Truncating the end of the file cannot be
//! detected from the file alone: keep the last hash (`are audit verify` prints it) somewhere else to anchor it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// When records are forced to disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// After every record: nothing is lost even on power loss; slowest.
    Always,
    /// At most every 100 ms (and when the log is closed): a power loss may lose the last moment.
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
    /// The JSON Lines file, relative to the policy. No audit trail when absent.
    pub path: Option<String>,
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
    /// What happened: `call`, `fs.open`, `http.request`, `socket.connect`, `dns.lookup`, `env.read`,
    /// `capability.denied`, `tool.call`, `llm.call`, `message.send`, `message.publish`.
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
    seq: u64,
    last_hash: String,
    fsync: Fsync,
    last_sync: Instant,
    dirty: bool,
}

/// An open audit log; share it with `Arc`.
pub struct AuditLog {
    path: PathBuf,
    writer: Mutex<Writer>,
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
        Ok(AuditLog {
            path: path.to_path_buf(),
            writer: Mutex::new(Writer {
                file,
                seq,
                last_hash,
                fsync,
                last_sync: Instant::now(),
                dirty: false,
            }),
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
            &policy.base_dir.join(path),
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
        let hash = record_hash(&record);
        let mut line = match serde_json::to_value(&record) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        line.insert("hash".into(), Value::String(hash.clone()));
        let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
        bytes.push(b'\n');
        if let Err(e) = w.file.write_all(&bytes) {
            tracing::error!(path = %self.path.display(), "cannot write the audit log: {e}");
            return;
        }
        w.seq = record.seq;
        w.last_hash = hash;
        w.dirty = true;
        let due = match w.fsync {
            Fsync::Always => true,
            Fsync::Interval => w.last_sync.elapsed() >= Duration::from_millis(100),
            Fsync::Never => false,
        };
        if due {
            sync(&mut w, &self.path);
        }
    }
}

fn sync(w: &mut Writer, path: &Path) {
    if let Err(e) = w.file.sync_data() {
        tracing::error!(path = %path.display(), "cannot sync the audit log: {e}");
    }
    w.last_sync = Instant::now();
    w.dirty = false;
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        let w = self.writer.get_mut().unwrap_or_else(|e| e.into_inner());
        if w.dirty && w.fsync != Fsync::Never {
            sync(w, &self.path);
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
                "it does not follow the record before it: inserted or reordered".to_string()
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

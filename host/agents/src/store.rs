//! The agent store: every message, each agent's memory, and a record per agent, behind [`AgentStore`]. The
//! backend today is [`SqliteStore`]: one SQLite file (WAL).
//!
//! A message is written before it is accepted and marked done only after its handler finished, with the reply;
//! so after a crash every message that was not done is delivered again (at least once, same id).
//!
//! Each agent type has a share of the store, bounded by its quota (`[agent.TYPE] store_quota`): the messages
//! addressed to its agents (payload, reply and headers, plus [`ROW_OVERHEAD`] each) and their memory (keys plus
//! values, plus [`ROW_OVERHEAD`] each). A write that would go over first drops the type's oldest finished
//! messages (their history); when pending messages and memory alone would go over, it is refused
//! ([`OverQuota`]). The shares are counted in memory, from the file when it is opened.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[error("agent store {path}: {source}")]
pub struct StoreError {
    /// Where the store is (the database file of [`SqliteStore`]).
    pub path: String,
    /// The backend's error.
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Accepted, not yet handled (or being handled).
    Pending,
    /// Handled; `reply` holds the handler's reply.
    Done,
    /// The handler failed; `reply` holds the error.
    Failed,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Done => "done",
            Status::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Status {
        match s {
            "done" => Status::Done,
            "failed" => Status::Failed,
            _ => Status::Pending,
        }
    }
}

/// A message between agents (or from outside to an agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// Unique and stable across redelivery.
    pub id: String,
    /// The agent it is for, `type/key`.
    pub recipient: String,
    /// Who sent it: an agent id or `external`.
    pub sender: String,
    /// The topic it was published on, if it was.
    pub topic: Option<String>,
    /// Agent-to-agent hops from its external origin.
    pub hops: u32,
    /// Agents waiting, directly or not, for this message's reply (to detect loops).
    pub chain: Vec<String>,
    /// The payload.
    pub payload: String,
    /// Whether a sender waits for the reply.
    pub wants_reply: bool,
}

/// Why the runtime, not the handler, failed a message (kept with the message, so that a repeated send gets the
/// same error value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Refusal {
    /// The handler's reply was over `[agents] max_payload`.
    TooLarge,
    /// Storing the reply would have taken the agent type over its store quota.
    QuotaExceeded,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::TooLarge => "too-large",
            Refusal::QuotaExceeded => "quota-exceeded",
        }
    }

    fn parse(s: &str) -> Option<Refusal> {
        match s {
            "too-large" => Some(Refusal::TooLarge),
            "quota-exceeded" => Some(Refusal::QuotaExceeded),
            _ => None,
        }
    }
}

/// A write refused because it would take an agent type over its store quota, even after dropping all of its
/// finished messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverQuota {
    /// The bytes the type would hold: its pending messages and memory, plus the write.
    pub needed: u64,
    /// Its quota.
    pub quota: u64,
}

/// What every stored message or memory entry counts beyond its text, for the row and its index entries.
pub const ROW_OVERHEAD: u64 = 64;

/// A message and how it ended, as stored.
#[derive(Debug, Clone, Serialize)]
pub struct StoredMessage {
    /// The message.
    #[serde(flatten)]
    pub message: Message,
    /// Where it stands.
    pub status: Status,
    /// The reply (done) or the error (failed).
    pub reply: Option<String>,
    /// How many times a handler started on it.
    pub attempts: u32,
    /// Unix milliseconds when it was accepted.
    pub created_at: i64,
}

/// What the store knows of one agent.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AgentRecord {
    /// `type/key`.
    pub id: String,
    /// How many times it was activated.
    pub activations: i64,
    /// Messages it finished handling.
    pub handled: i64,
    /// Unix milliseconds of its last activity.
    pub last_active: i64,
    /// Messages waiting for it.
    pub pending: i64,
    /// Bytes of memory it uses.
    pub memory_bytes: i64,
}

/// The SQLite store (rusqlite, bundled). Every operation is one short transaction; the connection is shared behind
/// a mutex.
pub struct SqliteStore {
    inner: Mutex<Inner>,
    path: String,
}

struct Inner {
    conn: Connection,
    /// Bytes each agent type holds (see the module docs), changed only with a committed transaction.
    usage: HashMap<String, u64>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    recipient TEXT NOT NULL,
    sender TEXT NOT NULL,
    topic TEXT,
    hops INTEGER NOT NULL,
    chain TEXT NOT NULL,
    payload TEXT NOT NULL,
    wants_reply INTEGER NOT NULL,
    status TEXT NOT NULL,
    reply TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX IF NOT EXISTS messages_by_status ON messages(status, seq);
CREATE TABLE IF NOT EXISTS memory (
    agent TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (agent, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY,
    activations INTEGER NOT NULL DEFAULT 0,
    handled INTEGER NOT NULL DEFAULT 0,
    last_active INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
";

/// Version 1: each message knows its agent type and how many bytes it holds (for the quotas), and why the
/// runtime refused it, if it did.
const MIGRATE_V1: &str = "
ALTER TABLE messages ADD COLUMN agent_type TEXT;
ALTER TABLE messages ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN refusal TEXT;
UPDATE messages SET
    agent_type = substr(recipient, 1, instr(recipient, '/') - 1),
    bytes = length(CAST(id AS BLOB)) + length(CAST(recipient AS BLOB)) + length(CAST(sender AS BLOB))
        + COALESCE(length(CAST(topic AS BLOB)), 0) + length(CAST(chain AS BLOB))
        + length(CAST(payload AS BLOB)) + COALESCE(length(CAST(reply AS BLOB)), 0) + 64;
CREATE INDEX messages_by_type ON messages(agent_type, seq, status, bytes);
PRAGMA user_version = 1;
";

/// The agent type of an agent id (`type/key`).
fn type_of(agent: &str) -> &str {
    agent.split_once('/').map_or(agent, |(t, _)| t)
}

/// The bytes `m` holds in the store before it has a reply.
fn message_bytes(m: &Message, chain: &str) -> u64 {
    let text = m.id.len()
        + m.recipient.len()
        + m.sender.len()
        + m.topic.as_ref().map_or(0, String::len)
        + chain.len()
        + m.payload.len();
    text as u64 + ROW_OVERHEAD
}

/// Make room for `need` more bytes in `agent_type`'s share, within `quota`: when the share would go over, drop
/// its oldest finished messages, if that is enough (nothing is dropped when it is not). Returns the bytes
/// dropped.
fn make_room(
    tx: &rusqlite::Transaction<'_>,
    agent_type: &str,
    used: u64,
    need: u64,
    quota: u64,
) -> rusqlite::Result<Result<u64, OverQuota>> {
    let Some(excess) = used
        .saturating_add(need)
        .checked_sub(quota)
        .filter(|e| *e > 0)
    else {
        return Ok(Ok(0));
    };
    let mut stmt = tx.prepare_cached(
        "SELECT seq, bytes FROM messages WHERE agent_type = ?1 AND status != 'pending' ORDER BY seq",
    )?;
    let mut rows = stmt.query([agent_type])?;
    let mut freed = 0u64;
    let mut last = None;
    while freed < excess {
        let Some(row) = rows.next()? else {
            let history: i64 = tx.query_row(
                "SELECT COALESCE(SUM(bytes), 0) FROM messages WHERE agent_type = ?1 AND status != 'pending'",
                [agent_type],
                |r| r.get(0),
            )?;
            let needed = used
                .saturating_add(need)
                .saturating_sub(u64::try_from(history).unwrap_or(0));
            return Ok(Err(OverQuota { needed, quota }));
        };
        last = Some(row.get::<_, i64>(0)?);
        freed += u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0);
    }
    drop(rows);
    if let Some(last) = last {
        tx.execute(
            "DELETE FROM messages WHERE agent_type = ?1 AND status != 'pending' AND seq <= ?2",
            params![agent_type, last],
        )?;
        tracing::debug!(
            agent_type,
            freed,
            "dropped the oldest finished messages to stay within the store quota"
        );
    }
    Ok(Ok(freed))
}

impl SqliteStore {
    /// Open (creating if needed) the store at `path`. `full_sync` makes every commit reach the disk.
    ///
    /// # Errors
    /// When the file cannot be created or opened, or is not a store.
    pub fn open(path: &Path, full_sync: bool) -> Result<SqliteStore, StoreError> {
        let name = path.display().to_string();
        let err = |source: rusqlite::Error| StoreError {
            path: name.clone(),
            source: source.into(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| err(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
        }
        let conn = Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(
            None,
            "synchronous",
            if full_sync { "FULL" } else { "NORMAL" },
        )
        .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        // Every WAL write is bounded by `[agents] max_payload`; keep the file from staying at a past peak.
        conn.pragma_update(None, "journal_size_limit", 16 << 20)
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err)?;
        if version < 1 {
            conn.execute_batch(&format!("BEGIN; {MIGRATE_V1} COMMIT;"))
                .map_err(err)?;
        }
        let usage = count_usage(&conn).map_err(err)?;
        Ok(SqliteStore {
            inner: Mutex::new(Inner { conn, usage }),
            path: name,
        })
    }

    /// Open an existing store read-only (for `are agents`).
    ///
    /// # Errors
    /// When the file does not exist or is not a store.
    pub fn open_read_only(path: &Path) -> Result<SqliteStore, StoreError> {
        let name = path.display().to_string();
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|source| StoreError {
                path: name.clone(),
                source: source.into(),
            })?;
        Ok(SqliteStore {
            inner: Mutex::new(Inner {
                conn,
                usage: HashMap::new(),
            }),
            path: name,
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        self.with_usage(|c, _| f(c))
    }

    /// Like [`with`](Self::with), with the shares of the agent types too.
    fn with_usage<T>(
        &self,
        f: impl FnOnce(&mut Connection, &mut HashMap<String, u64>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Inner { conn, usage } = &mut *inner;
        f(conn, usage).map_err(|source| StoreError {
            path: self.path.clone(),
            source: source.into(),
        })
    }
}

/// Where agents' messages, records and memory are kept. The runtime works through this trait; [`SqliteStore`]
/// is the backend today.
pub trait AgentStore: Send + Sync {
    /// The bytes agent type `agent_type` holds in the store (see the module docs).
    fn usage(&self, agent_type: &str) -> u64;

    /// Accept a message: store it unless a message with its id exists. Returns the stored state when it
    /// existed already (a redelivery after a crash, or a repeated send), `None` when it is new; [`OverQuota`]
    /// when it does not fit in its recipient type's `quota`.
    ///
    /// # Errors
    /// When the store fails.
    fn accept(
        &self,
        m: &Message,
        quota: u64,
    ) -> Result<Result<Option<StoredMessage>, OverQuota>, StoreError>;

    /// Record that a handler starts on message `id`.
    ///
    /// # Errors
    /// When the store fails.
    fn started(&self, id: &str) -> Result<(), StoreError>;

    /// Record how message `id` ended, and count it for its recipient. A reply (of a [`Status::Done`] message)
    /// must fit in the recipient type's `quota` ([`OverQuota`] when it does not, and nothing is written);
    /// an error (of a [`Status::Failed`] one) is always recorded: keep it short.
    ///
    /// # Errors
    /// When the store fails.
    fn finish(
        &self,
        id: &str,
        recipient: &str,
        status: Status,
        reply: Option<&str>,
        refusal: Option<Refusal>,
        quota: u64,
    ) -> Result<Result<(), OverQuota>, StoreError>;

    /// Why the runtime refused message `id`, if it did.
    ///
    /// # Errors
    /// When the store fails.
    fn refusal(&self, id: &str) -> Result<Option<Refusal>, StoreError>;

    /// Count an activation of `agent`.
    ///
    /// # Errors
    /// When the store fails.
    fn activated(&self, agent: &str) -> Result<(), StoreError>;

    /// Every message not yet handled, oldest first.
    ///
    /// # Errors
    /// When the store fails.
    fn pending(&self) -> Result<Vec<Message>, StoreError>;

    /// A message by id.
    ///
    /// # Errors
    /// When the store fails.
    fn message(&self, id: &str) -> Result<Option<StoredMessage>, StoreError>;

    /// The most recent messages for or from `agent` (all agents when `None`), newest first.
    ///
    /// # Errors
    /// When the store fails.
    fn messages(&self, agent: Option<&str>, limit: u32) -> Result<Vec<StoredMessage>, StoreError>;

    /// Every agent the store knows, with counts.
    ///
    /// # Errors
    /// When the store fails.
    fn agents(&self) -> Result<Vec<AgentRecord>, StoreError>;

    /// The value of `key` in `agent`'s memory.
    ///
    /// # Errors
    /// When the store fails.
    fn memory_get(&self, agent: &str, key: &str) -> Result<Option<String>, StoreError>;

    /// Set `key` in `agent`'s memory, unless the agent's total (keys plus values, in bytes) would exceed `quota`
    /// ([`MemoryRefusal::Quota`], with the total it would have reached) or its type's share of the store would
    /// exceed `store_quota` ([`MemoryRefusal::Store`]).
    ///
    /// # Errors
    /// When the store fails.
    fn memory_set(
        &self,
        agent: &str,
        key: &str,
        value: &str,
        quota: u64,
        store_quota: u64,
    ) -> Result<Result<(), MemoryRefusal>, StoreError>;

    /// Remove `key` from `agent`'s memory; returns whether it existed.
    ///
    /// # Errors
    /// When the store fails.
    fn memory_delete(&self, agent: &str, key: &str) -> Result<bool, StoreError>;

    /// `agent`'s keys starting with `prefix`, sorted.
    ///
    /// # Errors
    /// When the store fails.
    fn memory_keys(&self, agent: &str, prefix: &str) -> Result<Vec<String>, StoreError>;

    /// All of `agent`'s memory, sorted by key.
    ///
    /// # Errors
    /// When the store fails.
    fn memory_all(&self, agent: &str) -> Result<Vec<(String, String)>, StoreError>;
}

impl AgentStore for SqliteStore {
    /// The bytes agent type `agent_type` holds in the store (see the module docs).
    fn usage(&self, agent_type: &str) -> u64 {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.usage.get(agent_type).copied().unwrap_or(0)
    }

    /// Accept a message: store it unless a message with its id exists. Returns the stored state when it
    /// existed already (a redelivery after a crash, or a repeated send), `None` when it is new; [`OverQuota`]
    /// when it does not fit in its recipient type's `quota`.
    ///
    /// # Errors
    /// When SQLite fails.
    fn accept(
        &self,
        m: &Message,
        quota: u64,
    ) -> Result<Result<Option<StoredMessage>, OverQuota>, StoreError> {
        let agent_type = type_of(&m.recipient);
        self.with_usage(|c, usage| {
            let tx = c.transaction()?;
            if let Some(existing) = get_message(&tx, &m.id)? {
                return Ok(Ok(Some(existing)));
            }
            let chain = serde_json::to_string(&m.chain).unwrap_or_else(|_| "[]".into());
            let bytes = message_bytes(m, &chain);
            let used = usage.get(agent_type).copied().unwrap_or(0);
            let freed = match make_room(&tx, agent_type, used, bytes, quota)? {
                Ok(freed) => freed,
                Err(over) => return Ok(Err(over)),
            };
            tx.execute(
                "INSERT INTO messages (id, recipient, sender, topic, hops, chain, payload, wants_reply, status, \
                 created_at, agent_type, bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?10, ?11)",
                params![
                    m.id,
                    m.recipient,
                    m.sender,
                    m.topic,
                    m.hops,
                    chain,
                    m.payload,
                    m.wants_reply,
                    now_ms(),
                    agent_type,
                    i64::try_from(bytes).unwrap_or(i64::MAX),
                ],
            )?;
            tx.commit()?;
            usage.insert(agent_type.to_string(), used.saturating_sub(freed) + bytes);
            Ok(Ok(None))
        })
    }

    /// Record that a handler starts on message `id`.
    ///
    /// # Errors
    /// When SQLite fails.
    fn started(&self, id: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE messages SET attempts = attempts + 1 WHERE id = ?1",
                [id],
            )
            .map(drop)
        })
    }

    /// Record how message `id` ended, and count it for its recipient. A reply (of a [`Status::Done`] message)
    /// must fit in the recipient type's `quota` ([`OverQuota`] when it does not, and nothing is written);
    /// an error (of a [`Status::Failed`] one) is always recorded: keep it short.
    ///
    /// # Errors
    /// When SQLite fails.
    fn finish(
        &self,
        id: &str,
        recipient: &str,
        status: Status,
        reply: Option<&str>,
        refusal: Option<Refusal>,
        quota: u64,
    ) -> Result<Result<(), OverQuota>, StoreError> {
        let agent_type = type_of(recipient);
        let bytes = reply.map_or(0, |r| r.len() as u64);
        self.with_usage(|c, usage| {
            let tx = c.transaction()?;
            let used = usage.get(agent_type).copied().unwrap_or(0);
            let quota = if status == Status::Done { quota } else { u64::MAX };
            let freed = match make_room(&tx, agent_type, used, bytes, quota)? {
                Ok(freed) => freed,
                Err(over) => return Ok(Err(over)),
            };
            let changed = tx.execute(
                "UPDATE messages SET status = ?2, reply = ?3, finished_at = ?4, refusal = ?5, bytes = bytes + ?6 \
                 WHERE id = ?1",
                params![
                    id,
                    status.as_str(),
                    reply,
                    now_ms(),
                    refusal.map(Refusal::as_str),
                    i64::try_from(bytes).unwrap_or(i64::MAX)
                ],
            )?;
            tx.execute(
                "INSERT INTO agents (id, handled, last_active) VALUES (?1, 1, ?2) \
                 ON CONFLICT(id) DO UPDATE SET handled = handled + 1, last_active = ?2",
                params![recipient, now_ms()],
            )?;
            tx.commit()?;
            let added = if changed > 0 { bytes } else { 0 };
            usage.insert(agent_type.to_string(), used.saturating_sub(freed) + added);
            Ok(Ok(()))
        })
    }

    /// Why the runtime refused message `id`, if it did.
    ///
    /// # Errors
    /// When SQLite fails.
    fn refusal(&self, id: &str) -> Result<Option<Refusal>, StoreError> {
        self.with(|c| {
            let refusal: Option<Option<String>> = c
                .query_row("SELECT refusal FROM messages WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?;
            Ok(refusal.flatten().as_deref().and_then(Refusal::parse))
        })
    }

    /// Count an activation of `agent`.
    ///
    /// # Errors
    /// When SQLite fails.
    fn activated(&self, agent: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO agents (id, activations, last_active) VALUES (?1, 1, ?2) \
                 ON CONFLICT(id) DO UPDATE SET activations = activations + 1, last_active = ?2",
                params![agent, now_ms()],
            )
            .map(drop)
        })
    }

    /// Every message not yet handled, oldest first.
    ///
    /// # Errors
    /// When SQLite fails.
    fn pending(&self) -> Result<Vec<Message>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!("{SELECT} WHERE status = 'pending' ORDER BY seq"))?;
            let rows = stmt.query_map([], row_to_message)?;
            rows.map(|r| r.map(|m| m.message)).collect()
        })
    }

    /// A message by id.
    ///
    /// # Errors
    /// When SQLite fails.
    fn message(&self, id: &str) -> Result<Option<StoredMessage>, StoreError> {
        self.with(|c| get_message(c, id))
    }

    /// The most recent messages for or from `agent` (all agents when `None`), newest first.
    ///
    /// # Errors
    /// When SQLite fails.
    fn messages(&self, agent: Option<&str>, limit: u32) -> Result<Vec<StoredMessage>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "{SELECT} WHERE ?1 IS NULL OR recipient = ?1 OR sender = ?1 ORDER BY seq DESC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![agent, limit], row_to_message)?;
            rows.collect()
        })
    }

    /// Every agent the store knows, with counts.
    ///
    /// # Errors
    /// When SQLite fails.
    fn agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT ids.id, COALESCE(a.activations, 0), COALESCE(a.handled, 0), COALESCE(a.last_active, 0), \
                   (SELECT COUNT(*) FROM messages m WHERE m.recipient = ids.id AND m.status = 'pending'), \
                   (SELECT COALESCE(SUM(LENGTH(CAST(key AS BLOB)) + LENGTH(CAST(value AS BLOB))), 0) FROM memory WHERE agent = ids.id) \
                 FROM (SELECT id FROM agents UNION SELECT recipient FROM messages UNION SELECT agent FROM memory) ids \
                 LEFT JOIN agents a ON a.id = ids.id ORDER BY ids.id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(AgentRecord {
                    id: r.get(0)?,
                    activations: r.get(1)?,
                    handled: r.get(2)?,
                    last_active: r.get(3)?,
                    pending: r.get(4)?,
                    memory_bytes: r.get(5)?,
                })
            })?;
            rows.collect()
        })
    }

    /// The value of `key` in `agent`'s memory.
    ///
    /// # Errors
    /// When SQLite fails.
    fn memory_get(&self, agent: &str, key: &str) -> Result<Option<String>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT value FROM memory WHERE agent = ?1 AND key = ?2",
                [agent, key],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// Set `key` in `agent`'s memory, unless the agent's total (keys plus values, in bytes) would exceed `quota`
    /// ([`MemoryRefusal::Quota`], with the total it would have reached) or its type's share of the store would
    /// exceed `store_quota` ([`MemoryRefusal::Store`]).
    ///
    /// # Errors
    /// When SQLite fails.
    fn memory_set(
        &self,
        agent: &str,
        key: &str,
        value: &str,
        quota: u64,
        store_quota: u64,
    ) -> Result<Result<(), MemoryRefusal>, StoreError> {
        let agent_type = type_of(agent);
        self.with_usage(|c, usage| {
            let tx = c.transaction()?;
            let used: i64 = tx.query_row(
                "SELECT COALESCE(SUM(LENGTH(CAST(key AS BLOB)) + LENGTH(CAST(value AS BLOB))), 0) FROM memory \
                 WHERE agent = ?1 AND key != ?2",
                [agent, key],
                |r| r.get(0),
            )?;
            let entry = (key.len() + value.len()) as u64;
            let total = u64::try_from(used).unwrap_or(0) + entry;
            if total > quota {
                return Ok(Err(MemoryRefusal::Quota(total)));
            }
            let old = entry_bytes(&tx, agent, key)?;
            let share = usage.get(agent_type).copied().unwrap_or(0).saturating_sub(old);
            let freed = match make_room(&tx, agent_type, share, entry + ROW_OVERHEAD, store_quota)? {
                Ok(freed) => freed,
                Err(over) => return Ok(Err(MemoryRefusal::Store(over))),
            };
            tx.execute(
                "INSERT INTO memory (agent, key, value) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(agent, key) DO UPDATE SET value = ?3",
                [agent, key, value],
            )?;
            tx.commit()?;
            usage.insert(
                agent_type.to_string(),
                share.saturating_sub(freed) + entry + ROW_OVERHEAD,
            );
            Ok(Ok(()))
        })
    }

    /// Remove `key` from `agent`'s memory; returns whether it existed.
    ///
    /// # Errors
    /// When SQLite fails.
    fn memory_delete(&self, agent: &str, key: &str) -> Result<bool, StoreError> {
        let agent_type = type_of(agent);
        self.with_usage(|c, usage| {
            let tx = c.transaction()?;
            let old = entry_bytes(&tx, agent, key)?;
            let deleted = tx.execute(
                "DELETE FROM memory WHERE agent = ?1 AND key = ?2",
                [agent, key],
            )? > 0;
            tx.commit()?;
            if let Some(share) = usage.get_mut(agent_type) {
                *share = share.saturating_sub(old);
            }
            Ok(deleted)
        })
    }

    /// `agent`'s keys starting with `prefix`, sorted.
    ///
    /// # Errors
    /// When SQLite fails.
    fn memory_keys(&self, agent: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT key FROM memory WHERE agent = ?1 AND substr(key, 1, length(?2)) = ?2 ORDER BY key",
            )?;
            let rows = stmt.query_map([agent, prefix], |r| r.get(0))?;
            rows.collect()
        })
    }

    /// All of `agent`'s memory, sorted by key.
    ///
    /// # Errors
    /// When SQLite fails.
    fn memory_all(&self, agent: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.with(|c| {
            let mut stmt =
                c.prepare("SELECT key, value FROM memory WHERE agent = ?1 ORDER BY key")?;
            let rows = stmt.query_map([agent], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }
}

/// Why a memory write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryRefusal {
    /// Over the agent's memory quota (`allow.memory.quota`): the total it would have reached.
    Quota(u64),
    /// Over its type's share of the store (`[agent.TYPE] store_quota`).
    Store(OverQuota),
}

/// The bytes one memory entry holds in its type's share (0 when there is none).
fn entry_bytes(c: &Connection, agent: &str, key: &str) -> rusqlite::Result<u64> {
    let len: Option<i64> = c
        .query_row(
            "SELECT LENGTH(CAST(key AS BLOB)) + LENGTH(CAST(value AS BLOB)) FROM memory \
             WHERE agent = ?1 AND key = ?2",
            [agent, key],
            |r| r.get(0),
        )
        .optional()?;
    Ok(len.map_or(0, |l| u64::try_from(l).unwrap_or(0) + ROW_OVERHEAD))
}

/// The bytes each agent type holds, counted from the file.
fn count_usage(c: &Connection) -> rusqlite::Result<HashMap<String, u64>> {
    let mut usage: HashMap<String, u64> = HashMap::new();
    let mut add = |sql: &str| -> rusqlite::Result<()> {
        let mut stmt = c.prepare(sql)?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (agent_type, bytes) = row?;
            *usage.entry(agent_type).or_default() += u64::try_from(bytes).unwrap_or(0);
        }
        Ok(())
    };
    add("SELECT agent_type, SUM(bytes) FROM messages GROUP BY agent_type")?;
    add(&format!(
        "SELECT substr(agent, 1, instr(agent, '/') - 1), \
         SUM(LENGTH(CAST(key AS BLOB)) + LENGTH(CAST(value AS BLOB)) + {ROW_OVERHEAD}) FROM memory GROUP BY 1"
    ))?;
    Ok(usage)
}

const SELECT: &str = "SELECT id, recipient, sender, topic, hops, chain, payload, wants_reply, status, reply, attempts, \
                      created_at FROM messages";

fn get_message(c: &Connection, id: &str) -> rusqlite::Result<Option<StoredMessage>> {
    c.query_row(&format!("{SELECT} WHERE id = ?1"), [id], row_to_message)
        .optional()
}

fn row_to_message(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredMessage> {
    let chain: String = r.get(5)?;
    let status: String = r.get(8)?;
    Ok(StoredMessage {
        message: Message {
            id: r.get(0)?,
            recipient: r.get(1)?,
            sender: r.get(2)?,
            topic: r.get(3)?,
            hops: r.get(4)?,
            chain: serde_json::from_str(&chain).unwrap_or_default(),
            payload: r.get(6)?,
            wants_reply: r.get(7)?,
        },
        status: Status::parse(&status),
        reply: r.get(9)?,
        attempts: r.get(10)?,
        created_at: r.get(11)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str, to: &str) -> Message {
        Message {
            id: id.into(),
            recipient: to.into(),
            sender: "external".into(),
            topic: None,
            hops: 0,
            chain: vec![],
            payload: "hi".into(),
            wants_reply: true,
        }
    }

    #[test]
    fn messages_are_accepted_once_and_resumed_until_done() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agents.db");
        let store = SqliteStore::open(&path, false).unwrap();
        assert!(
            store
                .accept(&message("m1", "a/1"), u64::MAX)
                .unwrap()
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .accept(&message("m2", "b/1"), u64::MAX)
                .unwrap()
                .unwrap()
                .is_none()
        );
        let again = store
            .accept(&message("m1", "a/1"), u64::MAX)
            .unwrap()
            .unwrap()
            .expect("exists");
        assert_eq!(again.status, Status::Pending);
        store.started("m1").unwrap();
        store
            .finish("m1", "a/1", Status::Done, Some("ok"), None, u64::MAX)
            .unwrap()
            .unwrap();
        drop(store);
        let store = SqliteStore::open(&path, false).unwrap();
        let pending: Vec<String> = store.pending().unwrap().into_iter().map(|m| m.id).collect();
        assert_eq!(pending, ["m2"]);
        let done = store.message("m1").unwrap().unwrap();
        assert_eq!(
            (done.status, done.reply.as_deref(), done.attempts),
            (Status::Done, Some("ok"), 1)
        );
        let agents = store.agents().unwrap();
        assert_eq!(
            agents.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
            ["a/1", "b/1"]
        );
        assert_eq!(agents[1].pending, 1);
    }

    #[test]
    fn memory_respects_its_quota() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("m.db"), false).unwrap();
        assert_eq!(
            store.memory_set("a/1", "k", "12345", 10, u64::MAX).unwrap(),
            Ok(())
        );
        assert_eq!(
            store
                .memory_set("a/1", "k", "123456789", 10, u64::MAX)
                .unwrap(),
            Ok(()),
            "replacing counts once"
        );
        assert_eq!(
            store.memory_set("a/1", "k2", "x", 10, u64::MAX).unwrap(),
            Err(MemoryRefusal::Quota(13))
        );
        assert_eq!(
            store.memory_set("b/1", "k2", "x", 10, u64::MAX).unwrap(),
            Ok(()),
            "quotas are per agent"
        );
        assert_eq!(store.memory_keys("a/1", "").unwrap(), ["k"]);
        assert_eq!(
            store.memory_get("a/1", "k").unwrap().as_deref(),
            Some("123456789")
        );
        assert!(store.memory_delete("a/1", "k").unwrap());
        assert!(!store.memory_delete("a/1", "k").unwrap());
        assert_eq!(
            store.memory_set("a/1", "k2", "x", 10, u64::MAX).unwrap(),
            Ok(())
        );
    }

    fn sized(id: &str, to: &str, payload_bytes: usize) -> Message {
        Message {
            payload: "p".repeat(payload_bytes),
            ..message(id, to)
        }
    }

    #[test]
    fn a_type_share_drops_its_oldest_history_and_refuses_what_pending_messages_and_memory_cannot_hold()
     {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let store = SqliteStore::open(&path, false).unwrap();
        let quota = 10_000;
        for i in 0..3 {
            let id = format!("m{i}");
            assert!(
                store
                    .accept(&sized(&id, "a/1", 2000), quota)
                    .unwrap()
                    .unwrap()
                    .is_none()
            );
            store
                .finish(&id, "a/1", Status::Done, Some("r"), None, quota)
                .unwrap()
                .unwrap();
        }
        let three = store.usage("a");
        assert!(three > 6000 && three < 7000, "{three}");
        // Two more pending messages: the oldest finished ones make room.
        for id in ["p1", "p2"] {
            assert!(
                store
                    .accept(&sized(id, "a/1", 3000), quota)
                    .unwrap()
                    .unwrap()
                    .is_none()
            );
        }
        assert!(store.usage("a") <= quota, "{}", store.usage("a"));
        assert!(
            store.message("m0").unwrap().is_none(),
            "the oldest is dropped"
        );
        assert!(store.message("m2").unwrap().is_some(), "the newest is kept");
        // Pending messages are never dropped: what they and memory cannot hold is refused, and nothing is lost.
        let over = store
            .accept(&sized("p3", "a/2", 6000), quota)
            .unwrap()
            .unwrap_err();
        assert_eq!(over.quota, quota);
        assert!(over.needed > quota && over.needed < 13_000, "{over:?}");
        assert!(
            store.message("m2").unwrap().is_some(),
            "a refused write drops nothing"
        );
        assert!(matches!(
            store
                .memory_set("a/1", "k", &"v".repeat(5000), u64::MAX, quota)
                .unwrap(),
            Err(MemoryRefusal::Store(_))
        ));
        // A reply that does not fit is refused; an error is always recorded.
        assert!(
            store
                .finish(
                    "p1",
                    "a/1",
                    Status::Done,
                    Some(&"r".repeat(5000)),
                    None,
                    quota
                )
                .unwrap()
                .is_err()
        );
        store
            .finish(
                "p1",
                "a/1",
                Status::Failed,
                Some("too big"),
                Some(Refusal::QuotaExceeded),
                quota,
            )
            .unwrap()
            .unwrap();
        assert_eq!(store.refusal("p1").unwrap(), Some(Refusal::QuotaExceeded));
        assert_eq!(store.refusal("p2").unwrap(), None);
        // Other types have shares of their own.
        assert!(
            store
                .accept(&sized("b1", "b/1", 6000), quota)
                .unwrap()
                .unwrap()
                .is_none()
        );
        // The shares are counted again from the file.
        let (a, b) = (store.usage("a"), store.usage("b"));
        store
            .memory_set("a/1", "k", "v", u64::MAX, quota)
            .unwrap()
            .unwrap();
        assert!(store.memory_delete("a/1", "k").unwrap());
        assert_eq!(store.usage("a"), a);
        drop(store);
        let store = SqliteStore::open(&path, false).unwrap();
        assert_eq!((store.usage("a"), store.usage("b")), (a, b));
    }

    #[test]
    fn a_store_of_the_first_version_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v0.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            conn.execute(
                "INSERT INTO messages (id, recipient, sender, hops, chain, payload, wants_reply, status, \
                 created_at) VALUES ('m1', 'a/1', 'external', 0, '[]', 'hello', 1, 'pending', 0)",
                [],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path, false).unwrap();
        let expected = ("m1a/1external[]hello".len() as u64) + ROW_OVERHEAD;
        assert_eq!(store.usage("a"), expected);
        assert_eq!(store.pending().unwrap().len(), 1);
        drop(store);
        assert_eq!(
            SqliteStore::open(&path, false).unwrap().usage("a"),
            expected
        );
    }
}

//! The agent store: one SQLite file (WAL) holding every message, each agent's memory, and a record per agent.
//!
//! A message is written before it is accepted and marked done only after its handler finished, with the reply;
//! so after a crash every message that was not done is delivered again (at least once, same id).

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[error("agent store {path}: {source}")]
pub struct StoreError {
    /// The database file.
    pub path: String,
    /// The SQLite error.
    pub source: rusqlite::Error,
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

/// The store. Every operation is one short transaction; the connection is shared behind a mutex.
pub struct Store {
    conn: Mutex<Connection>,
    path: String,
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

impl Store {
    /// Open (creating if needed) the store at `path`. `full_sync` makes every commit reach the disk.
    ///
    /// # Errors
    /// When the file cannot be created or opened, or is not a store.
    pub fn open(path: &Path, full_sync: bool) -> Result<Store, StoreError> {
        let name = path.display().to_string();
        let err = |source| StoreError {
            path: name.clone(),
            source,
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
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Store {
            conn: Mutex::new(conn),
            path: name,
        })
    }

    /// Open an existing store read-only (for `are agents`).
    ///
    /// # Errors
    /// When the file does not exist or is not a store.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let name = path.display().to_string();
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|source| StoreError {
                path: name.clone(),
                source,
            })?;
        Ok(Store {
            conn: Mutex::new(conn),
            path: name,
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut conn).map_err(|source| StoreError {
            path: self.path.clone(),
            source,
        })
    }

    /// Accept a message: store it unless a message with its id exists. Returns the stored state when it
    /// existed already (a redelivery after a crash, or a repeated send), `None` when it is new.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn accept(&self, m: &Message) -> Result<Option<StoredMessage>, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let existing = get_message(&tx, &m.id)?;
            if existing.is_none() {
                tx.execute(
                    "INSERT INTO messages (id, recipient, sender, topic, hops, chain, payload, wants_reply, status, \
                     created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9)",
                    params![
                        m.id,
                        m.recipient,
                        m.sender,
                        m.topic,
                        m.hops,
                        serde_json::to_string(&m.chain).unwrap_or_else(|_| "[]".into()),
                        m.payload,
                        m.wants_reply,
                        now_ms()
                    ],
                )?;
            }
            tx.commit()?;
            Ok(existing)
        })
    }

    /// Record that a handler starts on message `id`.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn started(&self, id: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE messages SET attempts = attempts + 1 WHERE id = ?1",
                [id],
            )
            .map(drop)
        })
    }

    /// Record how message `id` ended, and count it for its recipient.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn finish(
        &self,
        id: &str,
        recipient: &str,
        status: Status,
        reply: Option<&str>,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE messages SET status = ?2, reply = ?3, finished_at = ?4 WHERE id = ?1",
                params![id, status.as_str(), reply, now_ms()],
            )?;
            tx.execute(
                "INSERT INTO agents (id, handled, last_active) VALUES (?1, 1, ?2) \
                 ON CONFLICT(id) DO UPDATE SET handled = handled + 1, last_active = ?2",
                params![recipient, now_ms()],
            )?;
            tx.commit()
        })
    }

    /// Count an activation of `agent`.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn activated(&self, agent: &str) -> Result<(), StoreError> {
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
    pub fn pending(&self) -> Result<Vec<Message>, StoreError> {
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
    pub fn message(&self, id: &str) -> Result<Option<StoredMessage>, StoreError> {
        self.with(|c| get_message(c, id))
    }

    /// The most recent messages for or from `agent` (all agents when `None`), newest first.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn messages(
        &self,
        agent: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredMessage>, StoreError> {
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
    pub fn agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
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
    pub fn memory_get(&self, agent: &str, key: &str) -> Result<Option<String>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT value FROM memory WHERE agent = ?1 AND key = ?2",
                [agent, key],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// Set `key` in `agent`'s memory, unless the agent's total (keys plus values, in bytes) would exceed `quota`.
    /// Returns the total it would have reached when refused.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn memory_set(
        &self,
        agent: &str,
        key: &str,
        value: &str,
        quota: u64,
    ) -> Result<Result<(), u64>, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let used: i64 = tx.query_row(
                "SELECT COALESCE(SUM(LENGTH(CAST(key AS BLOB)) + LENGTH(CAST(value AS BLOB))), 0) FROM memory \
                 WHERE agent = ?1 AND key != ?2",
                [agent, key],
                |r| r.get(0),
            )?;
            let total = u64::try_from(used).unwrap_or(0) + (key.len() + value.len()) as u64;
            if total > quota {
                return Ok(Err(total));
            }
            tx.execute(
                "INSERT INTO memory (agent, key, value) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(agent, key) DO UPDATE SET value = ?3",
                [agent, key, value],
            )?;
            tx.commit()?;
            Ok(Ok(()))
        })
    }

    /// Remove `key` from `agent`'s memory; returns whether it existed.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn memory_delete(&self, agent: &str, key: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM memory WHERE agent = ?1 AND key = ?2",
                [agent, key],
            )
            .map(|n| n > 0)
        })
    }

    /// `agent`'s keys starting with `prefix`, sorted.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn memory_keys(&self, agent: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
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
    pub fn memory_all(&self, agent: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.with(|c| {
            let mut stmt =
                c.prepare("SELECT key, value FROM memory WHERE agent = ?1 ORDER BY key")?;
            let rows = stmt.query_map([agent], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }
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
        let store = Store::open(&path, false).unwrap();
        assert!(store.accept(&message("m1", "a/1")).unwrap().is_none());
        assert!(store.accept(&message("m2", "b/1")).unwrap().is_none());
        let again = store
            .accept(&message("m1", "a/1"))
            .unwrap()
            .expect("exists");
        assert_eq!(again.status, Status::Pending);
        store.started("m1").unwrap();
        store.finish("m1", "a/1", Status::Done, Some("ok")).unwrap();
        drop(store);
        let store = Store::open(&path, false).unwrap();
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
        let store = Store::open(&dir.path().join("m.db"), false).unwrap();
        assert_eq!(store.memory_set("a/1", "k", "12345", 10).unwrap(), Ok(()));
        assert_eq!(
            store.memory_set("a/1", "k", "123456789", 10).unwrap(),
            Ok(()),
            "replacing counts once"
        );
        assert_eq!(store.memory_set("a/1", "k2", "x", 10).unwrap(), Err(13));
        assert_eq!(
            store.memory_set("b/1", "k2", "x", 10).unwrap(),
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
        assert_eq!(store.memory_set("a/1", "k2", "x", 10).unwrap(), Ok(()));
    }
}

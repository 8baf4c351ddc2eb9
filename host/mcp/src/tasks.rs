//! Tool calls as MCP tasks (the `io.modelcontextprotocol/tasks` extension): a call of a component with
//! `task = "allowed"` (from a client that declared the extension) or `task = "required"` is answered at once
//! with a task; `tasks/get` reports its status and, once it is done, its result; `tasks/cancel` stops it.
//!
//! Tasks live in a SQLite file (`[serve] task_store`, default `.are/tasks.db` beside the policy), so a finished
//! task's result outlives the process that ran it, and every `are serve` on the same policy (a stdio client
//! starts one each) sees the others' tasks. A task whose process died before it finished is reported as
//! `failed`, with an error saying it was interrupted: it is **not** re-run, because a tool call may already
//! have had effects (a POST sent, a file written) that running it again would repeat. The caller decides
//! whether to call again.
//!
//! A task id is 128 random bits: knowing it is what lets a client read or cancel the task.

use rmcp::model::{CallToolResult, DetailedTask, JsonObject, Task, TaskPayload, TaskStatus};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// How long a task and its result are kept after it was created (24 hours).
pub const TASK_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How often a client is asked to poll `tasks/get`.
pub const POLL_INTERVAL_MS: u64 = 500;

/// Why the task store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TaskStoreError {
    /// The folder or the file cannot be created or opened.
    #[error("cannot open the task store {}: {error}", path.display())]
    Open {
        /// The SQLite file.
        path: PathBuf,
        /// Why.
        error: String,
    },
    /// A query failed.
    #[error("task store: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// The tasks of this and every other `are serve` sharing the file, and the ones this process runs.
pub struct TaskStore {
    db: Mutex<Connection>,
    /// Tasks running in this process, to stop on `tasks/cancel`.
    running: Mutex<HashMap<String, CancellationToken>>,
}

/// What a finished task left.
pub enum TaskEnd {
    /// The call's result (a tool error is a result too, with `isError`).
    Completed(CallToolResult),
    /// A protocol error (e.g. arguments that do not fit the input schema).
    Failed(rmcp::ErrorData),
}

impl TaskStore {
    /// Open (or create) the store at `path`, forget tasks past [`TASK_TTL`], and mark the unfinished tasks of
    /// processes that no longer exist as interrupted.
    ///
    /// # Errors
    /// When the file cannot be opened or its schema created.
    pub fn open(path: &Path) -> Result<TaskStore, TaskStoreError> {
        let open_error = |error: String| TaskStoreError::Open {
            path: path.to_path_buf(),
            error,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| open_error(e.to_string()))?;
        }
        let db = Connection::open(path).map_err(|e| open_error(e.to_string()))?;
        db.busy_timeout(Duration::from_secs(5))?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS tasks (
                 id TEXT PRIMARY KEY,
                 tool TEXT NOT NULL,
                 status TEXT NOT NULL,
                 created_ms INTEGER NOT NULL,
                 updated_ms INTEGER NOT NULL,
                 owner_pid INTEGER NOT NULL,
                 outcome TEXT
             );",
        )
        .map_err(|e| open_error(e.to_string()))?;
        let store = TaskStore {
            db: Mutex::new(db),
            running: Mutex::default(),
        };
        store.expire()?;
        // A working task under this process's own pid is an earlier process's (a restarted container's pid 1).
        store.interrupt(std::process::id())?;
        store.reap_orphans()?;
        Ok(store)
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record a new working task for `tool`; its id, and the token that stops it.
    ///
    /// # Errors
    /// When the row cannot be written.
    pub fn create(&self, tool: &str) -> Result<(Task, CancellationToken), TaskStoreError> {
        self.expire()?;
        let id = new_task_id();
        let now = now_ms();
        self.db().execute(
            "INSERT INTO tasks (id, tool, status, created_ms, updated_ms, owner_pid) VALUES (?1, ?2, 'working', ?3, ?3, ?4)",
            params![id, tool, now, std::process::id()],
        )?;
        let token = CancellationToken::new();
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), token.clone());
        let task = task(&id, TaskStatus::Working, now, now, None);
        Ok((task, token))
    }

    /// Record how task `id` ended, unless it was cancelled meanwhile.
    ///
    /// # Errors
    /// When the row cannot be written.
    pub fn finish(&self, id: &str, end: TaskEnd) -> Result<(), TaskStoreError> {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        let (status, outcome) = match end {
            TaskEnd::Completed(result) => ("completed", serde_json::to_string(&result)),
            TaskEnd::Failed(error) => ("failed", serde_json::to_string(&error)),
        };
        let outcome = outcome.unwrap_or_else(|e| {
            serde_json::json!({"code": -32603, "message": format!("cannot store the task's result: {e}")})
                .to_string()
        });
        self.db().execute(
            "UPDATE tasks SET status = ?2, outcome = ?3, updated_ms = ?4 WHERE id = ?1 AND status = 'working'",
            params![id, status, outcome, now_ms()],
        )?;
        Ok(())
    }

    /// Cancel task `id`: stop it if this process runs it, and record it as cancelled. A finished task stays as it
    /// was. Returns whether the task exists.
    ///
    /// # Errors
    /// When the store cannot be read or written.
    pub fn cancel(&self, id: &str) -> Result<bool, TaskStoreError> {
        let updated = self.db().execute(
            "UPDATE tasks SET status = 'cancelled', updated_ms = ?2 WHERE id = ?1 AND status = 'working'",
            params![id, now_ms()],
        )?;
        if let Some(token) = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
        {
            token.cancel();
        }
        Ok(updated > 0 || self.exists(id)?)
    }

    /// Whether the store holds task `id`.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn exists(&self, id: &str) -> Result<bool, TaskStoreError> {
        let found = self
            .db()
            .query_row("SELECT 1 FROM tasks WHERE id = ?1", params![id], |_| Ok(()))
            .optional()?;
        Ok(found.is_some())
    }

    /// Task `id` as `tasks/get` shows it, if it exists.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn get(&self, id: &str) -> Result<Option<DetailedTask>, TaskStoreError> {
        self.reap_orphans()?;
        let row = self
            .db()
            .query_row(
                "SELECT tool, status, created_ms, updated_ms, outcome FROM tasks WHERE id = ?1",
                params![id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<String>>(4)?,
                    ))
                },
            )
            .optional()?;
        let Some((tool, status, created, updated, outcome)) = row else {
            return Ok(None);
        };
        let object = |text: Option<String>| -> JsonObject {
            match text.as_deref().map(serde_json::from_str::<Value>) {
                Some(Ok(Value::Object(map))) => map,
                _ => JsonObject::new(),
            }
        };
        let (status, payload, message) = match status.as_str() {
            "completed" => (
                TaskStatus::Completed,
                TaskPayload::Completed {
                    result: object(outcome),
                },
                None,
            ),
            "failed" => (
                TaskStatus::Failed,
                TaskPayload::Failed {
                    error: object(outcome),
                },
                None,
            ),
            "cancelled" => (TaskStatus::Cancelled, TaskPayload::Cancelled, None),
            _ => {
                let ran = Duration::from_millis(u64::try_from(now_ms() - created).unwrap_or(0));
                (
                    TaskStatus::Working,
                    TaskPayload::Working,
                    Some(format!("`{tool}` running for {:.1} s", ran.as_secs_f64())),
                )
            }
        };
        let base = task(id, status, created, updated, message);
        Ok(Some(DetailedTask::new(base, payload)))
    }

    /// Forget tasks created more than [`TASK_TTL`] ago.
    fn expire(&self) -> Result<(), TaskStoreError> {
        let ttl = i64::try_from(TASK_TTL.as_millis()).unwrap_or(i64::MAX);
        self.db().execute(
            "DELETE FROM tasks WHERE created_ms < ?1",
            params![now_ms().saturating_sub(ttl)],
        )?;
        Ok(())
    }

    /// Mark the working tasks of processes that are gone as failed: interrupted, not re-run (see the module
    /// docs).
    fn reap_orphans(&self) -> Result<(), TaskStoreError> {
        let owners: Vec<u32> = self
            .db()
            .prepare("SELECT DISTINCT owner_pid FROM tasks WHERE status = 'working'")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for pid in owners.into_iter().filter(|&pid| !process_exists(pid)) {
            self.interrupt(pid)?;
        }
        Ok(())
    }

    /// Mark the working tasks of process `pid` as failed: interrupted.
    fn interrupt(&self, pid: u32) -> Result<(), TaskStoreError> {
        let error = serde_json::json!({
            "code": -32603,
            "message": "interrupted: the `are serve` that ran this task stopped before it finished; it was not \
                        re-run, since the call may already have had effects; call the tool again if it is safe to",
        });
        self.db().execute(
            "UPDATE tasks SET status = 'failed', outcome = ?2, updated_ms = ?3 WHERE owner_pid = ?1 AND status = 'working'",
            params![pid, error.to_string(), now_ms()],
        )?;
        Ok(())
    }
}

/// The task store of a policy at `policy_path`: `[serve] task_store` or `.are/tasks.db`, relative to the policy.
pub fn store_path(policy_path: &Path, configured: Option<&str>) -> PathBuf {
    let base = policy_path.parent().unwrap_or(Path::new("."));
    base.join(configured.unwrap_or(".are/tasks.db"))
}

fn task(id: &str, status: TaskStatus, created: i64, updated: i64, message: Option<String>) -> Task {
    let mut task = Task::new(id, status, rfc3339(created), rfc3339(updated))
        .with_ttl_ms(u64::try_from(TASK_TTL.as_millis()).unwrap_or(u64::MAX))
        .with_poll_interval_ms(POLL_INTERVAL_MS);
    task.status_message = message;
    task
}

fn rfc3339(ms: i64) -> String {
    let time = SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(time).to_string()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn new_task_id() -> String {
    let mut bytes = [0u8; 16];
    // The OS random source failing leaves the process nothing better to use; it does not happen on Linux.
    getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("no random bytes for a task id: {e}"));
    are_policy::common::hex(&bytes)
}

/// Whether a process with this id is alive (signal 0 checks without sending anything).
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks whether the process exists and may be signalled.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    alive || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_working_then_completed_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tasks.db");
        let store = TaskStore::open(&path).unwrap();
        let (task, _stop) = store.create("text.word-count").unwrap();
        assert_eq!(task.task_id.len(), 32);
        let got = store.get(&task.task_id).unwrap().unwrap();
        assert_eq!(got.status(), TaskStatus::Working);
        let result = CallToolResult::success(vec![rmcp::model::ContentBlock::text("3")]);
        store
            .finish(&task.task_id, TaskEnd::Completed(result))
            .unwrap();
        drop(store);
        let store = TaskStore::open(&path).unwrap();
        let got = store.get(&task.task_id).unwrap().unwrap();
        assert_eq!(got.status(), TaskStatus::Completed);
        let TaskPayload::Completed { result } = got.payload else {
            panic!("a result");
        };
        assert_eq!(result["content"][0]["text"], "3");
        assert!(store.get("no-such-task").unwrap().is_none());
    }

    #[test]
    fn a_cancelled_task_keeps_its_status_and_a_dead_owner_means_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let store = TaskStore::open(&dir.path().join("tasks.db")).unwrap();
        let (task, stop) = store.create("loop.spin").unwrap();
        assert!(store.cancel(&task.task_id).unwrap());
        assert!(stop.is_cancelled());
        let late = CallToolResult::success(vec![]);
        store
            .finish(&task.task_id, TaskEnd::Completed(late))
            .unwrap();
        let got = store.get(&task.task_id).unwrap().unwrap();
        assert_eq!(got.status(), TaskStatus::Cancelled);

        // A task of a process that no longer exists (pid far above pid_max).
        store
            .db()
            .execute(
                "INSERT INTO tasks (id, tool, status, created_ms, updated_ms, owner_pid) VALUES ('orphan', 't', 'working', ?1, ?1, 2147483000)",
                params![now_ms()],
            )
            .unwrap();
        let got = store.get("orphan").unwrap().unwrap();
        assert_eq!(got.status(), TaskStatus::Failed);
        let TaskPayload::Failed { error } = got.payload else {
            panic!("an error");
        };
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .starts_with("interrupted")
        );
    }
}

//! Agents: identities, lazy activation, messages, grants, budgets, memory, the model, and recovery after a crash.
//!
//! Most tests drive an [`AgentRuntime`] in process with the `agent-probe` guest, whose JSON payloads exercise
//! one capability each; the tests that need a process (an API key in its environment, `kill -9`, the CLI) run
//! the `are` binary. This module holds their set-up; the tests are in its submodules, by subject.

use crate::common::agent_runtime;
use are_agents::AgentRuntime;
use are_agents::store::{AgentStore, StoredMessage};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod cli;
mod figures;
mod grants;
mod lifecycle;
mod limits;
mod messaging;
mod model;
mod store;

fn probe_path() -> String {
    are_tests::guest("agent-probe")
        .wasm_path()
        .display()
        .to_string()
}

/// Write `are.toml` in `dir`: the `text` tool component, then `body` (agent tables and sections) with
/// `{probe}` standing for the probe agent's component.
fn write_policy(dir: &Path, body: &str) -> PathBuf {
    let text = are_tests::guest("text").wasm_path().display().to_string();
    crate::common::write_policy(
        dir,
        &format!(
            "[component.text]\nsource = \"{text}\"\n\n{}",
            body.replace("{probe}", &probe_path())
        ),
    )
}

/// A runtime for the policy `body` (see [`write_policy`]).
fn runtime_with(dir: &Path, body: &str) -> AgentRuntime {
    agent_runtime(&write_policy(dir, body))
}

/// A runtime with one agent type, `probe`; `extra` is appended to its table.
fn runtime(dir: &Path, extra: &str) -> AgentRuntime {
    runtime_with(
        dir,
        &format!("[agent.probe]\nsource = \"{{probe}}\"\n{extra}\n"),
    )
}

/// The reply of a probe `send` that succeeded: `{"ok": "<reply JSON>"}`, parsed.
fn sent_ok(reply: &Value) -> Value {
    let text = reply["ok"]
        .as_str()
        .unwrap_or_else(|| panic!("the send failed: {reply}"));
    serde_json::from_str(text).unwrap_or(Value::String(text.to_string()))
}

/// The error of a probe `send`, `publish` or `tool` that failed: `{"err": "…"}`.
fn err_of(reply: &Value) -> String {
    reply["err"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error, got {reply}"))
        .to_string()
}

/// Poll `cond` every 10 ms for up to `within`; whether it became true.
async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn activations(store: &dyn AgentStore, id: &str) -> i64 {
    store
        .agents()
        .expect("agents")
        .into_iter()
        .find(|a| a.id == id)
        .map_or(0, |a| a.activations)
}

fn memory_value(store: &dyn AgentStore, agent: &str, key: &str) -> Option<String> {
    store.memory_get(agent, key).expect("memory")
}

/// Every message the store holds for `agent`, oldest first.
fn messages_to(store: &dyn AgentStore, agent: &str) -> Vec<StoredMessage> {
    let mut messages: Vec<StoredMessage> = store
        .messages(Some(agent), 10_000)
        .expect("messages")
        .into_iter()
        .filter(|m| m.message.recipient == agent)
        .collect();
    messages.reverse();
    messages
}

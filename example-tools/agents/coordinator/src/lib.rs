//! `agent-coordinator`: runs a research job from the first message to the report.
//!
//! 1. A job arrives at `coordinator/KEY` (from outside, e.g. `are run --send`):
//!    `{"topic": "WebAssembly agents", "sources": ["https://…", "https://…"]}`. The job is named KEY, unless
//!    the payload says `"job"`.
//! 2. It publishes one task per source on topic `tasks`. The researcher type subscribes to `tasks`, so every
//!    task reaches the agent `researcher/tasks`, which fetches and summarises the source and sends its finding
//!    back here with `messaging.send`.
//! 3. Each finding is recorded in this agent's memory, under `job/<job>`.
//! 4. When every source has its finding, it sends them all to `writer/<job>` and stores the writer's reply, the
//!    report, under `report/<job>` (`are agents memory coordinator/KEY` shows it).
//!
//! Delivery is at least once: after a crash, a message is handled again, with the same id. Every step here can
//! be repeated safely. The job is created once; a finding is recorded once, by the id of the message that
//! brought it; and the messages a handler sends get ids derived from the id of the message it handles, so
//! handling a message again sends nothing twice: the runtime recognises the ids and hands back the stored reply.
//!
//! Its policy:
//!
//! ```toml
//! [agent.coordinator]
//! source = "agent_coordinator.wasm"
//! allow.messaging = { publish = ["tasks"], send = ["writer/*"] }
//! allow.memory = { quota = "1 MiB" }
//! ```

use are_guest_sdk::agent::{Agent, identity, log, memory, messaging};
use serde_json::{Map, Value, json};

struct Coordinator;

impl Agent for Coordinator {
    fn on_message(from: String, payload: String) -> Result<Option<String>, String> {
        let message: Value =
            serde_json::from_str(&payload).map_err(|e| format!("payload is not JSON: {e}"))?;
        let reply = if message.get("finding").is_some() {
            record_finding(&from, &message)?
        } else {
            start_job(&message)?
        };
        Ok(Some(reply.to_string()))
    }
}

/// Step 1 and 2: remember the job, publish one task per source.
fn start_job(job: &Value) -> Result<Value, String> {
    let name = job["job"]
        .as_str()
        .map_or_else(identity::key, str::to_string);
    let topic = job["topic"].as_str().ok_or("a job needs a `topic`")?;
    let mut sources: Vec<&str> = Vec::new();
    for source in job["sources"]
        .as_array()
        .ok_or("a job needs `sources`, a list of URLs")?
    {
        let source = source.as_str().ok_or("`sources` are URLs, as strings")?;
        if !sources.contains(&source) {
            sources.push(source);
        }
    }
    if sources.is_empty() {
        return Err("a job needs at least one source".into());
    }
    let state_key = format!("job/{name}");
    if memory::get(&state_key).is_none() {
        let state = json!({ "topic": topic, "sources": sources, "findings": {} });
        memory::set_json(&state_key, &state)?;
    }
    let me = identity::self_id();
    for source in &sources {
        let task = json!({ "job": name, "topic": topic, "source": source, "reply_to": me });
        messaging::publish("tasks", &task.to_string())
            .map_err(|e| format!("cannot publish a task: {e}"))?;
    }
    log::info(&format!(
        "published {} tasks on `tasks` for job {name}",
        sources.len()
    ));
    Ok(json!({ "job": name, "tasks": sources.len() }))
}

/// Step 3 and 4: record a researcher's finding; once all are in, have the writer write the report.
fn record_finding(from: &str, finding: &Value) -> Result<Value, String> {
    let name = finding["job"].as_str().ok_or("a finding needs its `job`")?;
    let source = finding["source"]
        .as_str()
        .ok_or("a finding needs its `source`")?;
    let state_key = format!("job/{name}");
    let mut state: Value =
        memory::get_json(&state_key)?.ok_or_else(|| format!("there is no job `{name}` here"))?;
    let message_id = identity::current_message()
        .map(|m| m.id)
        .unwrap_or_default();
    let findings = state["findings"]
        .as_object_mut()
        .ok_or("the job state has no findings")?;
    if findings.values().any(|f| f["message"] == message_id) {
        log::info(&format!("message {message_id} was recorded already"));
    } else {
        let entry = json!({ "text": finding["finding"], "from": from, "message": message_id });
        findings.insert(source.to_string(), entry);
        memory::set_json(&state_key, &state)?;
    }
    let sources = state["sources"].as_array().cloned().unwrap_or_default();
    let have = sources
        .iter()
        .filter(|s| {
            s.as_str()
                .is_some_and(|s| state["findings"].get(s).is_some())
        })
        .count();
    log::info(&format!(
        "finding {have} of {} for job {name}: {source}",
        sources.len()
    ));
    let report_key = format!("report/{name}");
    if have == sources.len() && memory::get(&report_key).is_none() {
        let report = write_report(name, &state)?;
        memory::set(&report_key, &report)?;
        log::info(&format!("report stored under {report_key}"));
    }
    Ok(json!({ "job": name, "findings": have, "of": sources.len() }))
}

/// Send every finding, in the order of the sources, to `writer/<job>`; its reply is the report.
fn write_report(name: &str, state: &Value) -> Result<String, String> {
    let empty = Map::new();
    let findings = state["findings"].as_object().unwrap_or(&empty);
    let ordered: Vec<Value> = state["sources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let text = &findings.get(s.as_str()?)?["text"];
            Some(json!({ "source": s, "finding": text }))
        })
        .collect();
    let writer = format!("writer/{name}");
    log::info(&format!(
        "all {} findings in; asking {writer} for the report",
        ordered.len()
    ));
    let request = json!({ "job": name, "topic": state["topic"], "findings": ordered });
    messaging::send(&writer, &request.to_string())
        .map_err(|e| format!("{writer} could not write the report: {e}"))
}

are_guest_sdk::export_agent!(Coordinator);

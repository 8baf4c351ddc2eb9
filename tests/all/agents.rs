//! Agents: identities, lazy activation, messages, grants, budgets, memory, and recovery after a crash.

use crate::common::{engine, tempdir};
use are::agent::AgentRuntime;
use are::policy::Policy;
use serde_json::{Value, json};
use std::path::Path;

/// A policy in `dir` with the probe agent and the text tool; `extra` is appended to the probe's table.
fn policy(dir: &Path, extra: &str) -> Policy {
    let probe = are_tests::guest("agent-probe")
        .wasm_path()
        .display()
        .to_string();
    let text = are_tests::guest("text").wasm_path().display().to_string();
    let text = format!(
        r#"
[component.text]
source = "{text}"

[agent.probe]
source = "{probe}"
{extra}
"#
    );
    let path = dir.join("are.toml");
    std::fs::write(&path, text).expect("write policy");
    Policy::load(&path).expect("policy")
}

fn runtime(dir: &Path, extra: &str) -> AgentRuntime {
    AgentRuntime::start(
        &policy(dir, extra),
        engine().clone(),
        &crate::common::cache(),
    )
    .expect("runtime")
}

async fn ask(rt: &AgentRuntime, to: &str, cmd: Value) -> Result<Value, String> {
    let (_, reply) = rt.send(to, &cmd.to_string()).expect("send");
    let reply = reply.await.expect("reply")?;
    Ok(serde_json::from_str(&reply.unwrap_or_default()).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_knows_who_it_is_and_what_it_handles() {
    let dir = tempdir();
    let rt = runtime(dir.path(), "");
    let me = ask(&rt, "probe/a", json!({"op": "whoami"})).await.unwrap();
    assert_eq!(me["id"], "probe/a");
    assert_eq!(me["from"], "external");
    assert_eq!(me["hops"], 0);
    assert!(me["message"].as_str().unwrap().starts_with("ext-"));
}

#[tokio::test(flavor = "multi_thread")]
async fn send_and_reply_between_agents() {
    let dir = tempdir();
    let rt = runtime(dir.path(), r#"allow.messaging = { send = ["probe/*"] }"#);
    let reply = ask(
        &rt,
        "probe/a",
        json!({"op": "send", "to": "probe/b", "payload": {"op": "whoami"}}),
    )
    .await
    .unwrap();
    let inner: Value = serde_json::from_str(reply["ok"].as_str().unwrap()).unwrap();
    assert_eq!(inner["id"], "probe/b");
    assert_eq!(inner["from"], "probe/a");
    assert_eq!(inner["hops"], 1);
}

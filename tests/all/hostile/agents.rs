//! A hostile agent is stopped by loop checks, budgets and limits.

use crate::common::{agent_runtime, ask_agent, tempdir, write_policy};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// An agent runtime for `agent-hostile` as `hostile`, `agent-probe` as `good`, the `text` tool, and the hostile
/// agent's own component served as the tool `reentry`.
fn hostile_agents(dir: &std::path::Path) -> are_agents::AgentRuntime {
    let wasm = |name: &str| are_tests::guest(name).wasm_path().display().to_string();
    let policy = format!(
        r#"
[component.text]
source = {text:?}

[component.reentry]
source = {hostile:?}

[agents]
hop_limit = 4
reply_timeout = "5s"

[agent.hostile]
source = {hostile:?}
message_budget = 10
idle_timeout = "60s"
allow.messaging = {{ send = ["hostile/*"], publish = ["storm"], subscribe = ["storm"] }}
allow.tools = ["text.word-count", "reentry.*"]
allow.memory = {{ quota = "64 KiB" }}
limits = {{ timeout = "2s" }}

[agent.good]
source = {probe:?}
allow.tools = ["text.word-count"]
"#,
        text = wasm("text"),
        hostile = wasm("agent-hostile"),
        probe = wasm("agent-probe"),
    );
    agent_runtime(&write_policy(dir, &policy))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_agent_is_stopped_by_loop_checks_budgets_and_limits() {
    let dir = tempdir();
    let rt = hostile_agents(dir.path());
    // Warm both components.
    ask_agent(&rt, "hostile/warm", json!({"op": "noop"}))
        .await
        .unwrap();
    ask_agent(&rt, "good/warm", json!({"op": "echo", "text": "x"}))
        .await
        .unwrap();
    let started = Instant::now();

    // Benign work runs next to every attack below and must all succeed.
    let benign = {
        let rt = rt.clone();
        tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            for i in 0..20 {
                let asked = Instant::now();
                let reply = ask_agent(
                    &rt,
                    &format!("good/{}", i % 4),
                    json!({"op": "tool", "name": "text.word-count", "args": {"text": "one two three"}}),
                )
                .await
                .unwrap();
                assert_eq!(reply["ok"]["words"], 3, "{reply}");
                slowest = slowest.max(asked.elapsed());
            }
            slowest
        })
    };

    // Sending to itself: a loop, at once.
    let reply = ask_agent(&rt, "hostile/narcissus", json!({"op": "self"}))
        .await
        .unwrap();
    let e = reply["err"].as_str().unwrap_or_else(|| panic!("{reply}"));
    assert!(
        e.contains("LoopDetected") && e.contains("hostile/narcissus → hostile/narcissus"),
        "{e}"
    );

    // A → B → A: a loop, named.
    let reply = ask_agent(&rt, "hostile/a", json!({"op": "ping", "peer": "hostile/b"}))
        .await
        .unwrap();
    assert_eq!(reply["stopped_at"], "hostile/b", "{reply}");
    let e = reply["err"].as_str().unwrap();
    assert!(
        e.contains("LoopDetected") && e.contains("hostile/a → hostile/b → hostile/a"),
        "{e}"
    );

    // Recursing into fresh agents of its own type: the hop limit (4) stops it.
    let reply = ask_agent(&rt, "hostile/r", json!({"op": "recurse"}))
        .await
        .unwrap();
    assert_eq!(
        (reply["stopped_at"].as_str(), reply["hops"].as_u64()),
        (Some("hostile/r-r-r-r-r"), Some(4)),
        "{reply}"
    );
    let e = reply["err"].as_str().unwrap();
    assert!(
        e.contains("LoopDetected") && e.contains("hop limit reached") && e.contains("hop_limit"),
        "{e}"
    );

    // A flood: the message budget (10 per activation).
    let reply = ask_agent(
        &rt,
        "hostile/flood",
        json!({"op": "flood", "to": "hostile/sink", "n": 0}),
    )
    .await
    .unwrap();
    assert_eq!(reply["sent"], 10, "{reply}");
    assert!(
        reply["err"].as_str().unwrap().contains("BudgetExhausted"),
        "{reply}"
    );

    // Fan-out on a topic it subscribes to, three copies per copy: the budget and the hop limit end it.
    let reply = ask_agent(
        &rt,
        "hostile/fan",
        json!({"op": "fan-out", "topic": "storm", "n": 3}),
    )
    .await
    .unwrap();
    assert_eq!(reply["published"], 3, "{reply}");
    tokio::time::timeout(Duration::from_secs(20), rt.until_idle())
        .await
        .expect("the fan-out died down");
    let storm = rt
        .store()
        .messages(Some("hostile/storm"), 10_000)
        .unwrap()
        .into_iter()
        .filter(|m| m.message.recipient == "hostile/storm")
        .count();
    assert!(
        (3..=3 + 10).contains(&storm),
        "the fan-out amplified to {storm} messages; the budget allows 3 + 10"
    );

    // A storm of tool calls: the message's timeout (2s).
    let asked = Instant::now();
    let e = ask_agent(
        &rt,
        "hostile/tools",
        json!({"op": "tool-storm", "name": "text.word-count", "args": {"text": "a b"}, "n": 0}),
    )
    .await
    .unwrap_err();
    assert!(
        e.contains("timed out") && e.contains("limits.timeout"),
        "{e}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );

    // Its own component as a tool, hoping to call tools from inside a tool: a tool has no agent imports.
    let reply = ask_agent(
        &rt,
        "hostile/reentry",
        json!({"op": "tool-reentry", "name": "reentry.on-message"}),
    )
    .await
    .unwrap();
    let e = reply["err"].as_str().unwrap_or_else(|| panic!("{reply}"));
    assert!(
        e.contains("capability not granted") && e.contains("are:agent/tools"),
        "{e}"
    );

    // Hoarding persistent memory: the quota.
    let reply = ask_agent(&rt, "hostile/hoard", json!({"op": "hoard-memory"}))
        .await
        .unwrap();
    assert!(
        reply["stored"].as_u64().unwrap() <= 64 << 10
            && reply["err"].as_str().unwrap().contains("quota"),
        "{reply}"
    );

    let slowest = benign.await.expect("benign calls");
    assert!(
        slowest < Duration::from_secs(3),
        "a benign call took {slowest:?} next to the hostile agent"
    );
    assert!(started.elapsed() < Duration::from_secs(30));

    // Every hostile agent still answers.
    for id in [
        "hostile/narcissus",
        "hostile/a",
        "hostile/flood",
        "hostile/tools",
        "hostile/hoard",
    ] {
        assert_eq!(
            ask_agent(&rt, id, json!({"op": "noop"})).await.unwrap(),
            Value::Null,
            "{id}"
        );
    }
}

//! Agents: identities, lazy activation, messages, grants, budgets, memory, the model, and recovery after a crash.
//!
//! Most tests drive an [`AgentRuntime`] in process with the `agent-probe` guest, whose JSON payloads exercise
//! one capability each; the tests that need a process (an API key in its environment, `kill -9`, the CLI) run
//! the `are` binary.

use crate::common::{are, engine, run, tempdir};
use are::agent::AgentRuntime;
use are::agent::store::{Status, Store, StoredMessage};
use are::policy::Policy;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    let toml = format!(
        "[component.text]\nsource = \"{text}\"\n\n{}",
        body.replace("{probe}", &probe_path())
    );
    let path = dir.join("are.toml");
    std::fs::write(&path, toml).expect("write policy");
    path
}

/// A runtime for the policy `body` (see [`write_policy`]).
fn runtime_with(dir: &Path, body: &str) -> AgentRuntime {
    let policy = Policy::load(&write_policy(dir, body)).expect("policy");
    AgentRuntime::start(&policy, engine().clone(), &crate::common::cache()).expect("runtime")
}

/// A runtime with one agent type, `probe`; `extra` is appended to its table.
fn runtime(dir: &Path, extra: &str) -> AgentRuntime {
    runtime_with(
        dir,
        &format!("[agent.probe]\nsource = \"{{probe}}\"\n{extra}\n"),
    )
}

/// Send `cmd` to `to` from outside and wait for the reply, parsed as JSON.
async fn ask(rt: &AgentRuntime, to: &str, cmd: Value) -> Result<Value, String> {
    let (_, reply) = rt.send(to, &cmd.to_string()).expect("send");
    let reply = reply.await.expect("reply")?;
    Ok(serde_json::from_str(&reply.unwrap_or_default()).unwrap_or(Value::Null))
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

fn activations(store: &Store, id: &str) -> i64 {
    store
        .agents()
        .expect("agents")
        .into_iter()
        .find(|a| a.id == id)
        .map_or(0, |a| a.activations)
}

fn memory_value(store: &Store, agent: &str, key: &str) -> Option<String> {
    store.memory_get(agent, key).expect("memory")
}

/// Every message the store holds for `agent`, oldest first.
fn messages_to(store: &Store, agent: &str) -> Vec<StoredMessage> {
    let mut messages: Vec<StoredMessage> = store
        .messages(Some(agent), 10_000)
        .expect("messages")
        .into_iter()
        .filter(|m| m.message.recipient == agent)
        .collect();
    messages.reverse();
    messages
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_knows_who_it_is_and_what_it_handles() {
    let dir = tempdir();
    let rt = runtime(dir.path(), "");
    let me = ask(&rt, "probe/a", json!({"op": "whoami"})).await.unwrap();
    assert_eq!(me["id"], "probe/a");
    assert_eq!(me["from"], "external");
    assert_eq!(me["sender"], "external");
    assert_eq!(me["hops"], 0);
    assert_eq!(me["topic"], Value::Null);
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
    let inner = sent_ok(&reply);
    assert_eq!(inner["id"], "probe/b");
    assert_eq!(inner["from"], "probe/a");
    assert_eq!(inner["sender"], "probe/a");
    assert_eq!(inner["hops"], 1);
    // Child ids derive from the parent's: a re-run of the parent re-sends the same message, not a new one.
    let parent = rt
        .store()
        .messages(Some("probe/a"), 10)
        .unwrap()
        .into_iter()
        .find(|m| m.message.sender == "external")
        .unwrap();
    assert_eq!(
        inner["message"],
        format!("{}.s1", parent.message.id),
        "the first send of a message gets the id <parent>.s1"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_or_slow_target_is_an_error_value_for_the_sender() {
    let dir = tempdir();
    let rt = runtime_with(
        dir.path(),
        r#"
[agents]
reply_timeout = "300ms"

[agent.probe]
source = "{probe}"
allow.messaging = { send = ["probe/*"] }
limits.fuel = "unlimited"
"#,
    );
    let failed = ask(
        &rt,
        "probe/a",
        json!({"op": "send", "to": "probe/b", "payload": {"op": "fail", "message": "boom"}}),
    )
    .await
    .unwrap();
    let e = err_of(&failed);
    assert!(
        e.contains("Failed") && e.contains("probe/b") && e.contains("boom"),
        "{e}"
    );

    let started = Instant::now();
    let slow = ask(
        &rt,
        "probe/a",
        json!({"op": "send", "to": "probe/c", "payload": {"op": "sleep-ms", "ms": 1500}}),
    )
    .await
    .unwrap();
    let e = err_of(&slow);
    assert!(e.contains("Timeout") && e.contains("probe/c"), "{e}");
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "the sender waited {:?}, past the 300ms reply timeout",
        started.elapsed()
    );
    // The failed handler's message is recorded as failed, with its error.
    let store = rt.store();
    rt.until_idle().await;
    let b = messages_to(store, "probe/b");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].status, Status::Failed);
    assert_eq!(b[0].reply.as_deref(), Some("boom"));
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_activate_lazily_and_deactivate_when_idle() {
    let dir = tempdir();
    let rt = runtime(
        dir.path(),
        "idle_timeout = \"300ms\"\nallow.memory = { quota = \"1 KiB\" }",
    );
    let id = "probe/lifecycle-1";
    let store = rt.store();
    assert_eq!(rt.active(), 0, "starting the runtime activates no agent");
    assert!(store.agents().unwrap().is_empty());

    ask(&rt, id, json!({"op": "echo", "text": "hi"}))
        .await
        .unwrap();
    assert_eq!(activations(store, id), 1, "the first message activates");
    assert_eq!(rt.active(), 1);
    assert_eq!(
        memory_value(store, id, "lifecycle/activate").as_deref(),
        Some("1"),
        "the activate hook ran"
    );
    assert_eq!(memory_value(store, id, "lifecycle/deactivate"), None);
    ask(&rt, id, json!({"op": "echo", "text": "again"}))
        .await
        .unwrap();
    assert_eq!(
        activations(store, id),
        1,
        "a warm agent is not activated again"
    );

    assert!(
        eventually(Duration::from_secs(5), || memory_value(
            store,
            id,
            "lifecycle/deactivate"
        )
        .is_some())
        .await,
        "the deactivate hook ran after the idle timeout"
    );
    assert!(eventually(Duration::from_secs(2), || rt.active() == 0).await);
    assert_eq!(
        memory_value(store, id, "lifecycle/deactivate").as_deref(),
        Some("1")
    );

    let me = ask(&rt, id, json!({"op": "whoami"})).await.unwrap();
    assert_eq!(me["id"], id);
    assert_eq!(
        activations(store, id),
        2,
        "the next message activates again"
    );
    assert_eq!(
        memory_value(store, id, "lifecycle/activate").as_deref(),
        Some("2")
    );
    let record = store
        .agents()
        .unwrap()
        .into_iter()
        .find(|a| a.id == id)
        .unwrap();
    assert_eq!((record.handled, record.pending), (3, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn one_message_at_a_time_per_agent_and_agents_run_concurrently() {
    let dir = tempdir();
    let rt = runtime(dir.path(), "limits.fuel = \"unlimited\"");
    let nap = json!({"op": "sleep-ms", "ms": 400}).to_string();
    // Warm both agents so that instantiation does not count.
    for to in ["probe/a", "probe/b"] {
        ask(&rt, to, json!({"op": "echo"})).await.unwrap();
    }

    let started = Instant::now();
    let (_, first) = rt.send("probe/a", &nap).unwrap();
    let (_, second) = rt.send("probe/a", &nap).unwrap();
    let (first, second) = tokio::join!(first, second);
    first.unwrap().unwrap();
    second.unwrap().unwrap();
    let same = started.elapsed();
    assert!(
        same >= Duration::from_millis(800),
        "two 400ms messages to one agent took {same:?}: they overlapped"
    );

    let started = Instant::now();
    let (_, first) = rt.send("probe/a", &nap).unwrap();
    let (_, second) = rt.send("probe/b", &nap).unwrap();
    let (first, second) = tokio::join!(first, second);
    first.unwrap().unwrap();
    second.unwrap().unwrap();
    let different = started.elapsed();
    assert!(
        different < Duration::from_millis(750),
        "two 400ms messages to two agents took {different:?}: they did not run concurrently"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn published_messages_reach_every_subscribed_type() {
    let dir = tempdir();
    let rt = runtime_with(
        dir.path(),
        r#"
[agent.probe]
source = "{probe}"
allow.messaging = { publish = ["news", "quiet"] }

[agent.reader]
source = "{probe}"
allow.messaging = { subscribe = ["news"] }

[agent.archive]
source = "{probe}"
allow.messaging = { subscribe = ["news", "other"] }
"#,
    );
    let reply = ask(
        &rt,
        "probe/a",
        json!({"op": "publish", "topic": "news", "payload": {"op": "whoami"}}),
    )
    .await
    .unwrap();
    assert_eq!(reply, json!({"ok": null}));
    let quiet = ask(
        &rt,
        "probe/a",
        json!({"op": "publish", "topic": "quiet", "payload": {"op": "whoami"}}),
    )
    .await
    .unwrap();
    assert_eq!(quiet, json!({"ok": null}), "a topic nobody reads is fine");
    rt.until_idle().await;

    let store = rt.store();
    for agent in ["reader/news", "archive/news"] {
        let got = messages_to(store, agent);
        assert_eq!(got.len(), 1, "{agent} got one copy");
        assert_eq!(got[0].status, Status::Done);
        assert!(!got[0].message.wants_reply);
        let me: Value = serde_json::from_str(got[0].reply.as_deref().unwrap()).unwrap();
        assert_eq!(me["id"], agent);
        assert_eq!(me["sender"], "probe/a");
        assert_eq!(me["topic"], "news");
        assert_eq!(me["hops"], 1);
    }
    let everyone: Vec<String> = store.agents().unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(everyone, ["archive/news", "probe/a", "reader/news"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_denial_is_an_error_naming_its_policy_key() {
    let dir = tempdir();
    let rt = runtime_with(
        dir.path(),
        r#"
[agent.probe]
source = "{probe}"
allow.messaging = { send = ["probe/b", "nobody/*", "bad*"], publish = ["news"] }
"#,
    );
    let cases = [
        (
            json!({"op": "send", "to": "probe/c", "payload": "hi"}),
            &[
                "Denied",
                "probe/a may not send to `probe/c`",
                "allow.messaging.send",
            ][..],
        ),
        (
            json!({"op": "publish", "topic": "secrets", "payload": "hi"}),
            &[
                "Denied",
                "may not publish on `secrets`",
                "allow.messaging.publish",
            ][..],
        ),
        (
            json!({"op": "send", "to": "nobody/x", "payload": "hi"}),
            &["UnknownTarget", "no agent type `nobody`"][..],
        ),
        (
            json!({"op": "send", "to": "bad id", "payload": "hi"}),
            &["UnknownTarget", "invalid agent id"][..],
        ),
    ];
    for (cmd, expected) in cases {
        let reply = ask(&rt, "probe/a", cmd.clone()).await.unwrap();
        let e = err_of(&reply);
        for part in expected {
            assert!(e.contains(part), "{cmd}: {e:?} should say {part:?}");
        }
    }
    // Capabilities the policy does not grant at all are not linked: the call fails the message (never the host)
    // with the import and the key that would grant it, and the agent gets a fresh instance next time.
    for (cmd, import, key) in [
        (
            json!({"op": "tool", "name": "text.word-count", "args": {"text": "x"}}),
            "are:agent/tools",
            "allow.tools",
        ),
        (
            json!({"op": "ask", "prompt": "hi"}),
            "are:agent/llm",
            "allow.llm",
        ),
        (
            json!({"op": "remember", "key": "k", "value": "v"}),
            "are:agent/memory",
            "allow.memory",
        ),
    ] {
        let e = ask(&rt, "probe/a", cmd.clone()).await.unwrap_err();
        assert!(
            e.contains("capability not granted") && e.contains(import) && e.contains(key),
            "{cmd}: {e}"
        );
        let me = ask(&rt, "probe/a", json!({"op": "whoami"})).await.unwrap();
        assert_eq!(me["id"], "probe/a", "the agent still works after {cmd}");
    }
    // Sending to oneself is granted here, and a loop.
    let e = ask(
        &rt,
        "probe/b",
        json!({"op": "send", "to": "probe/b", "payload": "hi"}),
    )
    .await
    .unwrap();
    assert!(
        err_of(&e).contains("LoopDetected"),
        "sending to oneself is a loop: {e}"
    );
}

/// A payload that makes `keys[0]` send to `keys[1]`, which sends to `keys[2]`… and the last replies `whoami`.
fn chain(keys: &[&str]) -> Value {
    let mut payload = json!({"op": "whoami"});
    for to in keys.iter().skip(1).rev() {
        payload = json!({"op": "send", "to": to, "payload": payload});
    }
    payload
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hop_limit_stops_long_chains_and_loops_are_detected_at_once() {
    let dir = tempdir();
    let rt = runtime_with(
        dir.path(),
        r#"
[agents]
hop_limit = 2

[agent.probe]
source = "{probe}"
allow.messaging = { send = ["probe/*"], publish = ["echo"] }
"#,
    );
    // external → h0 → h1 → h2: two hops, within the limit.
    let reply = ask(
        &rt,
        "probe/h0",
        chain(&["probe/h0", "probe/h1", "probe/h2"]),
    )
    .await
    .unwrap();
    let last = sent_ok(&sent_ok(&reply));
    assert_eq!(
        (last["id"].as_str(), last["hops"].as_u64()),
        (Some("probe/h2"), Some(2))
    );

    // One more hop is refused where it would happen, with the limit and its key.
    let reply = ask(
        &rt,
        "probe/k0",
        chain(&["probe/k0", "probe/k1", "probe/k2", "probe/k3"]),
    )
    .await
    .unwrap();
    let e = err_of(&sent_ok(&sent_ok(&reply)));
    assert!(
        e.contains("LoopDetected")
            && e.contains("hop limit reached")
            && e.contains("[agents] hop_limit"),
        "{e}"
    );
    assert!(
        messages_to(rt.store(), "probe/k3").is_empty(),
        "the message past the hop limit was never accepted"
    );

    // A → B → A: detected when B sends, without waiting for any timeout.
    let started = Instant::now();
    let reply = ask(&rt, "probe/a", chain(&["probe/a", "probe/b", "probe/a"]))
        .await
        .unwrap();
    let e = err_of(&sent_ok(&reply));
    assert!(
        e.contains("LoopDetected") && e.contains("probe/a → probe/b → probe/a"),
        "{e}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_message_budget_stops_a_flood_per_activation() {
    let dir = tempdir();
    let rt = runtime(
        dir.path(),
        r#"
message_budget = 5
idle_timeout = "300ms"
allow.messaging = { send = ["probe/*"], publish = ["spam"] }
"#,
    );
    let flood = ask(
        &rt,
        "probe/f",
        json!({"op": "flood", "topic": "spam", "n": 1000}),
    )
    .await
    .unwrap();
    assert_eq!(flood["sent"], 5);
    let e = flood["error"].as_str().unwrap();
    assert!(
        e.contains("BudgetExhausted")
            && e.contains("budget of 5 messages")
            && e.contains("message_budget"),
        "{e}"
    );
    // The budget is per activation: the same activation has nothing left, sends included…
    let more = ask(
        &rt,
        "probe/f",
        json!({"op": "flood", "to": "probe/g", "n": 3}),
    )
    .await
    .unwrap();
    assert_eq!(more["sent"], 0, "{more}");
    assert!(more["error"].as_str().unwrap().contains("BudgetExhausted"));
    // …and the next activation has a fresh one.
    assert!(eventually(Duration::from_secs(5), || rt.active() == 0).await);
    let again = ask(
        &rt,
        "probe/f",
        json!({"op": "flood", "to": "probe/g", "n": 3}),
    )
    .await
    .unwrap();
    assert_eq!(again, json!({"sent": 3, "error": null}));
    assert_eq!(activations(rt.store(), "probe/f"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_calls_only_its_granted_tools() {
    let dir = tempdir();
    let rt = runtime(dir.path(), r#"allow.tools = ["text.word-count"]"#);
    let tools = ask(&rt, "probe/a", json!({"op": "tools"})).await.unwrap();
    assert_eq!(
        tools,
        json!(["text.word-count"]),
        "only granted tools are listed"
    );

    let counted = ask(
        &rt,
        "probe/a",
        json!({"op": "tool", "name": "text.word-count", "args": {"text": "one two three"}}),
    )
    .await
    .unwrap();
    assert_eq!(counted["ok"]["words"], 3, "{counted}");

    let refused = ask(
        &rt,
        "probe/a",
        json!({"op": "tool", "name": "text.slugify", "args": {"text": "Hello World"}}),
    )
    .await
    .unwrap();
    let e = err_of(&refused);
    assert!(
        e.contains("`text.slugify` is not granted to probe/a") && e.contains("allow.tools"),
        "{e}"
    );

    let bad = ask(
        &rt,
        "probe/a",
        json!({"op": "tool", "name": "text.word-count", "args": {"words": 1}}),
    )
    .await
    .unwrap();
    assert!(err_of(&bad).contains("text.word-count"), "{bad}");

    let dir = tempdir();
    let rt = runtime(dir.path(), r#"allow.tools = ["*"]"#);
    let tools = ask(&rt, "probe/a", json!({"op": "tools"})).await.unwrap();
    assert!(
        tools.as_array().unwrap().len() >= 4 && tools[0] == "text.find",
        "{tools}"
    );
    let missing = ask(
        &rt,
        "probe/a",
        json!({"op": "tool", "name": "nope.x", "args": {}}),
    )
    .await
    .unwrap();
    assert!(err_of(&missing).contains("no tool `nope.x`"), "{missing}");
    let slug = ask(
        &rt,
        "probe/a",
        json!({"op": "tool", "name": "text.slugify", "args": {"text": "Hello World"}}),
    )
    .await
    .unwrap();
    assert_eq!(slug["ok"], "hello-world");
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_is_private_persistent_and_within_its_quota() {
    let dir = tempdir();
    let extra = "allow.memory = { quota = \"100 B\" }";
    let rt = runtime(dir.path(), extra);
    let mut stored = 0;
    let refusal = loop {
        let reply = ask(
            &rt,
            "probe/a",
            json!({"op": "remember", "key": format!("k{stored}"), "value": "x".repeat(20)}),
        )
        .await
        .unwrap();
        if reply["err"].is_string() {
            break err_of(&reply);
        }
        stored += 1;
        assert!(stored < 10, "the quota never refused");
    };
    assert_eq!(
        stored, 4,
        "four 22-byte entries fit in 100 bytes, a fifth does not"
    );
    assert!(
        refusal.contains("memory quota exceeded")
            && refusal.contains("k4")
            && refusal.contains("110 bytes")
            && refusal.contains("quota of 100 bytes (allow.memory.quota)"),
        "{refusal}"
    );
    let keys = ask(&rt, "probe/a", json!({"op": "recall", "prefix": "k"}))
        .await
        .unwrap();
    assert_eq!(keys, json!(["k0", "k1", "k2", "k3"]));
    let other = ask(&rt, "probe/b", json!({"op": "recall", "prefix": ""}))
        .await
        .unwrap();
    assert_eq!(other, json!([]), "memory is per agent");
    // Replacing a value counts it once; multi-byte characters count in bytes.
    let replaced = ask(
        &rt,
        "probe/a",
        json!({"op": "remember", "key": "k0", "value": "é".repeat(10)}),
    )
    .await
    .unwrap();
    assert_eq!(replaced, json!({"ok": null}));
    let record = rt
        .store()
        .agents()
        .unwrap()
        .into_iter()
        .find(|a| a.id == "probe/a")
        .unwrap();
    assert_eq!(record.memory_bytes, 22 + 66, "memory in bytes: {record:?}");
    drop(rt);

    let rt = runtime(dir.path(), extra);
    let value = ask(&rt, "probe/a", json!({"op": "recall", "key": "k1"}))
        .await
        .unwrap();
    assert_eq!(value, "x".repeat(20), "memory survives the runtime");
}

/// A local OpenAI-compatible endpoint with scripted answers: request `n` gets `script[n]` (the last one once
/// the script runs out). It records every request.
struct ScriptedModel {
    port: u16,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Clone)]
struct SeenRequest {
    authorization: Option<String>,
    body: Value,
}

impl ScriptedModel {
    async fn start(script: Vec<Value>) -> ScriptedModel {
        use axum::extract::State;
        use axum::http::HeaderMap;

        type Shared = (Arc<Vec<Value>>, Arc<Mutex<Vec<SeenRequest>>>);
        async fn complete(
            State((script, seen)): State<Shared>,
            headers: HeaderMap,
            axum::Json(body): axum::Json<Value>,
        ) -> axum::Json<Value> {
            let mut seen = seen.lock().unwrap();
            let n = seen.len();
            seen.push(SeenRequest {
                authorization: headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap_or_default().to_string()),
                body,
            });
            axum::Json(script[n.min(script.len() - 1)].clone())
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(complete))
            .with_state((Arc::new(script), seen.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ScriptedModel { port, seen, task }
    }

    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    fn requests(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for ScriptedModel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn completion(message: Value, finish: &str, usage: (u32, u32)) -> Value {
    json!({
        "id": "chatcmpl-test", "object": "chat.completion", "model": "test-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1, "total_tokens": usage.0 + usage.1},
    })
}

fn tool_call(id: &str, wire_name: &str, args: Value, usage: (u32, u32)) -> Value {
    completion(
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": id, "type": "function", "function": {"name": wire_name, "arguments": args.to_string()}}
        ]}),
        "tool_calls",
        usage,
    )
}

fn final_answer(text: &str, usage: (u32, u32)) -> Value {
    completion(json!({"role": "assistant", "content": text}), "stop", usage)
}

/// `are run` with `args`, off the async runtime (the test's servers run on it); `env` is set for the process.
async fn run_are(args: Vec<String>, env: Vec<(String, String)>) -> crate::common::Output {
    tokio::task::spawn_blocking(move || {
        let out = are()
            .args(&args)
            .envs(env)
            .env_remove("ARE_LLM_BASE_URL")
            .env_remove("ARE_LLM_MODEL")
            .env_remove("ARE_LLM_API_KEY_ENV")
            .output()
            .expect("run are");
        crate::common::Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_model_loop_runs_tools_with_the_key_from_the_environment() {
    let model = ScriptedModel::start(vec![
        tool_call(
            "call-1",
            "text__word-count",
            json!({"text": "one two three"}),
            (30, 10),
        ),
        final_answer("The text has 3 words.", (50, 5)),
    ])
    .await;
    let dir = tempdir();
    let key_env = format!("ARE_TEST_LLM_KEY_{}", std::process::id());
    let key = format!("sk-test-{:x}", rand_u64());
    let config = write_policy(
        dir.path(),
        &format!(
            r#"
[llm]
base_url = "{}"
model = "test-model"
api_key_env = "{key_env}"

[agent.probe]
source = "{{probe}}"
allow.tools = ["text.*"]
allow.llm = {{ model = "default" }}
"#,
            model.base_url()
        ),
    );
    let config = config.display().to_string();
    let prompt = "How many words are in 'one two three'?";
    let cmd = json!({"op": "ask", "prompt": prompt}).to_string();
    let args: Vec<String> = [
        "run",
        "--config",
        &config,
        "--send",
        "probe/a",
        &cmd,
        "--until-idle",
        "--json",
    ]
    .map(String::from)
    .to_vec();

    let out = run_are(args.clone(), vec![(key_env.clone(), key.clone())]).await;
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&model.base_url()) && out.stderr.contains("test-model"),
        "{}",
        out.stderr
    );
    let line: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(line["to"], "probe/a");
    let reply: Value = serde_json::from_str(line["reply"].as_str().unwrap()).unwrap();
    assert_eq!(
        reply,
        json!({"ok": {"text": "The text has 3 words.", "turns": 2, "tools": [["text.word-count", true]], "tokens": 95}}),
        "the runner called the tool, fed the result back and got the final answer; usage is reported"
    );

    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bearer {key}").as_str()),
            "the key from ${key_env} goes to the endpoint"
        );
        assert_eq!(r.body["model"], "test-model");
        let offered: Vec<&str> = r.body["tools"]
            .as_array()
            .expect("tools are offered")
            .iter()
            .map(|t| {
                assert_eq!(t["type"], "function");
                t["function"]["name"].as_str().unwrap()
            })
            .collect();
        assert!(
            offered.contains(&"text__word-count") && offered.contains(&"text__slugify"),
            "granted tools are offered as functions: {offered:?}"
        );
        let word_count = r.body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["function"]["name"] == "text__word-count")
            .unwrap();
        assert_eq!(word_count["function"]["parameters"]["type"], "object");
        assert!(word_count["function"]["parameters"]["properties"]["text"].is_object());
        assert!(
            !word_count["function"]["description"]
                .as_str()
                .unwrap()
                .is_empty()
        );
    }
    assert_eq!(
        requests[0].body["messages"],
        json!([{"role": "user", "content": prompt}])
    );
    assert_eq!(
        requests[0].body["max_tokens"], 20_000,
        "the host caps a call at the budget left"
    );
    assert_eq!(requests[1].body["max_tokens"], 20_000 - 40);
    let second = requests[1].body["messages"].as_array().unwrap();
    assert_eq!(second.len(), 3, "{second:?}");
    assert_eq!(second[1]["role"], "assistant");
    assert_eq!(second[1]["tool_calls"][0]["id"], "call-1");
    assert_eq!(
        second[1]["tool_calls"][0]["function"]["name"],
        "text__word-count"
    );
    assert_eq!(second[2]["role"], "tool");
    assert_eq!(second[2]["tool_call_id"], "call-1");
    let result: Value = serde_json::from_str(second[2]["content"].as_str().unwrap()).unwrap();
    assert_eq!(result["words"], 3, "the tool's result is fed back");

    // The key is nowhere the agent could see or leave it: not in its replies, output, or the store.
    assert!(!out.stdout.contains(&key) && !out.stderr.contains(&key));
    for r in &requests {
        assert!(
            !r.body.to_string().contains(&key),
            "the agent never had the key"
        );
    }
    for entry in std::fs::read_dir(dir.path().join(".are")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
            "the store holds the key"
        );
    }

    // Without the variable, `are run` refuses to start and names it.
    let out = run_are(args, vec![]).await;
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr
            .contains(&format!("api_key_env names ${key_env}, which is not set")),
        "{}",
        out.stderr
    );
    assert_eq!(model.requests().len(), 2);
}

/// Some randomness without a dependency: the hash of a fresh `RandomState`.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_host_enforces_the_models_turn_and_token_budgets() {
    // A model that always wants another tool call, at 80 + 40 tokens a call.
    let model = ScriptedModel::start(vec![tool_call(
        "call-n",
        "text__word-count",
        json!({"text": "again"}),
        (80, 40),
    )])
    .await;
    let dir = tempdir();
    let rt = runtime_with(
        dir.path(),
        &format!(
            r#"
[llm]
base_url = "{}"

[agent.turns]
source = "{{probe}}"
allow.tools = ["text.word-count"]
allow.llm = {{ model = "default", max_turns = 2 }}

[agent.tokens]
source = "{{probe}}"
allow.tools = ["text.word-count"]
allow.llm = {{ model = "default", max_tokens = 100 }}

[agent.runner]
source = "{{probe}}"
allow.tools = ["text.word-count"]
allow.llm = {{ model = "default" }}
"#,
            model.base_url()
        ),
    );

    let reply = ask(&rt, "turns/a", json!({"op": "ask", "prompt": "loop"}))
        .await
        .unwrap();
    let e = err_of(&reply);
    assert!(
        e.contains("BudgetExhausted")
            && e.contains("2 model calls")
            && e.contains("allow.llm.max_turns"),
        "{e}"
    );
    assert_eq!(
        model.requests().len(),
        2,
        "the third call never reached the model"
    );
    // The budget is per message: the next message gets its turns again.
    let reply = ask(&rt, "turns/a", json!({"op": "ask", "prompt": "loop"}))
        .await
        .unwrap();
    assert!(err_of(&reply).contains("allow.llm.max_turns"));
    assert_eq!(model.requests().len(), 4);

    let reply = ask(&rt, "tokens/a", json!({"op": "ask", "prompt": "loop"}))
        .await
        .unwrap();
    let e = err_of(&reply);
    assert!(
        e.contains("BudgetExhausted")
            && e.contains("100 tokens")
            && e.contains("allow.llm.max_tokens"),
        "{e}"
    );
    let requests = model.requests();
    assert_eq!(requests.len(), 5, "one call spent the 100-token budget");
    assert_eq!(
        requests[4].body["max_tokens"], 100,
        "a call asks for at most the tokens left"
    );

    // The guest runner's own limit.
    let reply = ask(
        &rt,
        "runner/a",
        json!({"op": "ask", "prompt": "loop", "max_turns": 3}),
    )
    .await
    .unwrap();
    let e = err_of(&reply);
    assert!(
        e.contains("BudgetExhausted") && e.contains("after 3 turns"),
        "{e}"
    );
    assert_eq!(model.requests().len(), 8);
}

#[test]
fn kill_9_loses_nothing_and_reruns_are_idempotent() {
    let dir = tempdir();
    let config = write_policy(
        dir.path(),
        r#"
[agent.probe]
source = "{probe}"
allow.messaging = { send = ["probe/*"] }
allow.memory = { quota = "64 KiB" }
limits.fuel = "unlimited"
"#,
    );
    let count_then_nap =
        json!({"op": "seq", "steps": [{"op": "count"}, {"op": "sleep-ms", "ms": 3000}]})
            .to_string();
    let count = json!({"op": "count"}).to_string();
    let relay = json!({"op": "seq", "steps": [
        {"op": "send", "to": "probe/tally", "payload": {"op": "count"}},
        {"op": "sleep-ms", "ms": 3000},
    ]})
    .to_string();
    let config_arg = config.display().to_string();
    let mut args = vec!["run", "--config", &config_arg];
    for (to, payload) in [
        ("probe/counter", &count_then_nap),
        ("probe/counter", &count),
        ("probe/counter", &count),
        ("probe/relay", &relay),
    ] {
        args.extend(["--send", to, payload.as_str()]);
    }
    args.extend(["--until-idle", "--json"]);
    let mut child = are()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start are run");

    // Kill it once the counter counted its first message and is asleep in it, and the relay's send is done.
    let db = dir.path().join(".are/agents.db");
    let until = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        if Instant::now() > until {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
        let Ok(store) = Store::open_read_only(&db) else {
            continue;
        };
        let counted = store
            .memory_get("probe/counter", "count")
            .ok()
            .flatten()
            .is_some();
        let tallied = store
            .messages(Some("probe/tally"), 10)
            .map(|m| m.iter().any(|m| m.status == Status::Done))
            .unwrap_or(false);
        if counted && tallied {
            break true;
        }
    };
    child.kill().expect("kill -9");
    child.wait().unwrap();
    assert!(ready, "the first run never got going");
    {
        let store = Store::open_read_only(&db).unwrap();
        let pending = store.pending().unwrap();
        assert!(
            pending.len() >= 4,
            "messages were accepted before the kill and are unfinished: {pending:?}"
        );
    }

    let out = run(&["run", "--config", &config_arg, "--until-idle", "--json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("resuming"), "{}", out.stderr);

    let store = Store::open_read_only(&db).unwrap();
    assert!(store.pending().unwrap().is_empty(), "every message is done");
    let all = store.messages(None, 100).unwrap();
    assert!(all.iter().all(|m| m.status == Status::Done), "{all:#?}");
    let counter = messages_to(&store, "probe/counter");
    assert_eq!(counter.len(), 3);
    assert_eq!(counter[0].attempts, 2, "the interrupted message ran again");
    assert_eq!(
        store
            .memory_get("probe/counter", "count")
            .unwrap()
            .as_deref(),
        Some("3"),
        "each of the counter's messages counted once"
    );
    let tally = messages_to(&store, "probe/tally");
    assert_eq!(
        tally.len(),
        1,
        "the relay's re-run sent its message with the same id, not a second one: {tally:#?}"
    );
    assert_eq!(tally[0].attempts, 1);
    assert_eq!(
        store.memory_get("probe/tally", "count").unwrap().as_deref(),
        Some("1")
    );
    let relay = messages_to(&store, "probe/relay");
    assert_eq!((relay.len(), relay[0].attempts), (1, 2));
    let steps: Value = serde_json::from_str(relay[0].reply.as_deref().unwrap()).unwrap();
    assert_eq!(
        steps[0],
        json!({"ok": "1"}),
        "the re-sent message got the stored reply"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_agent_is_contained_while_others_progress() {
    let dir = tempdir();
    let rt = runtime_with(
        dir.path(),
        r#"
[agent.hostile]
source = "{probe}"
message_budget = 20
allow.messaging = { publish = ["spam"], send = ["good/*"] }
limits = { timeout = "3s", fuel = "unlimited", memory = "16 MiB" }

[agent.good]
source = "{probe}"
allow.messaging = { subscribe = ["spam"] }
"#,
    );
    // Warm the compiled components so that the timings below measure the runtime.
    ask(&rt, "good/warm", json!({"op": "echo"})).await.unwrap();
    ask(&rt, "hostile/warm", json!({"op": "echo"}))
        .await
        .unwrap();

    let started = Instant::now();
    let (_, spin) = rt
        .send("hostile/spin", &json!({"op": "spin"}).to_string())
        .unwrap();
    let (_, hoard) = rt
        .send(
            "hostile/hoard",
            &json!({"op": "hoard", "mib": 64}).to_string(),
        )
        .unwrap();
    let (_, flood) = rt
        .send(
            "hostile/flood",
            &json!({"op": "flood", "topic": "spam", "n": 1_000_000}).to_string(),
        )
        .unwrap();
    let (_, flood_send) = rt
        .send(
            "hostile/sender",
            &json!({"op": "flood", "to": "good/victim", "n": 1_000_000}).to_string(),
        )
        .unwrap();

    let mut replies = Vec::new();
    for i in 0..20 {
        let to = format!("good/{}", i % 5);
        let (_, reply) = rt
            .send(
                &to,
                &json!({"op": "echo", "text": i.to_string()}).to_string(),
            )
            .unwrap();
        replies.push(reply);
    }
    for (i, reply) in replies.into_iter().enumerate() {
        let reply = reply.await.unwrap().unwrap().unwrap();
        assert_eq!(reply, json!(i.to_string()).to_string());
    }
    let others = started.elapsed();
    assert!(
        others < Duration::from_millis(2000),
        "the other agents took {others:?} next to the hostile ones"
    );

    let e = spin.await.unwrap().unwrap_err();
    assert!(e.contains("timeout") || e.contains("time"), "{e}");
    let e = hoard.await.unwrap().unwrap_err();
    assert!(
        e.contains("memory limit exceeded") && e.contains("limits.memory"),
        "{e}"
    );
    let flood: Value = serde_json::from_str(&flood.await.unwrap().unwrap().unwrap()).unwrap();
    assert_eq!(flood["sent"], 20, "{flood}");
    assert!(flood["error"].as_str().unwrap().contains("BudgetExhausted"));
    let flood_send: Value =
        serde_json::from_str(&flood_send.await.unwrap().unwrap().unwrap()).unwrap();
    assert_eq!(flood_send["sent"], 20, "{flood_send}");
    assert!(started.elapsed() < Duration::from_secs(10));

    // The hostile agents get fresh instances and work again.
    for id in ["hostile/spin", "hostile/hoard"] {
        let me = ask(&rt, id, json!({"op": "whoami"})).await.unwrap();
        assert_eq!(me["id"], id);
    }
    rt.until_idle().await;
    assert_eq!(messages_to(rt.store(), "good/spam").len(), 20);
}

#[test]
fn are_agents_lists_shows_and_reads_memory() {
    let dir = tempdir();
    let config = write_policy(
        dir.path(),
        r#"
[agent.probe]
source = "{probe}"
allow.memory = { quota = "1 KiB" }
"#,
    );
    let config = config.display().to_string();
    let out = run(&["agents", "list", "--config", &config]);
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("no agent store"), "{}", out.stderr);

    let remember = json!({"op": "remember", "key": "greeting", "value": "hello"}).to_string();
    let echo = json!({"op": "echo", "text": "hi"}).to_string();
    let out = run(&[
        "run",
        "--config",
        &config,
        "--send",
        "probe/a",
        &remember,
        "--send",
        "probe/b",
        &echo,
        "--until-idle",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "probe/a: {\"ok\":null}\nprobe/b: \"hi\"\n");

    let out = run(&["agents", "list", "--config", &config]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["agent", "activations", "handled", "pending", "memory"]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["probe/a", "1", "1", "0", "13"]
    );
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["probe/b", "1", "1", "0", "0"]
    );
    let list = run(&["agents", "list", "--config", &config, "--json"]).json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["id"], "probe/a");
    assert_eq!(list[0]["activations"], 1);
    assert_eq!(list[0]["handled"], 1);
    assert_eq!(list[0]["pending"], 0);
    assert_eq!(list[0]["memory_bytes"], 13);

    let out = run(&["agents", "show", "probe/a", "--config", &config]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("probe/a: 1 activations, 1 handled, 0 pending, 13 bytes of memory\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("in  done")
            && out
                .stdout
                .contains("external → probe/a: {\"op\":\"remember\""),
        "{}",
        out.stdout
    );
    let show = run(&["agents", "show", "probe/a", "--config", &config, "--json"]).json();
    assert_eq!(show["agent"]["id"], "probe/a");
    let messages = show["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["status"], "done");
    assert_eq!(messages[0]["sender"], "external");
    assert_eq!(messages[0]["reply"], "{\"ok\":null}");
    assert_eq!(messages[0]["attempts"], 1);
    let unknown = run(&["agents", "show", "probe/zzz", "--config", &config]);
    assert_eq!(unknown.stdout, "probe/zzz: not in the store\n");
    let bad = run(&["agents", "show", "probe", "--config", &config]);
    assert_ne!(bad.code, Some(0));
    assert!(bad.stderr.contains("invalid agent id"), "{}", bad.stderr);

    let out = run(&["agents", "memory", "probe/a", "--config", &config]);
    assert_eq!(out.stdout, "greeting = hello\n");
    let memory = run(&["agents", "memory", "probe/a", "--config", &config, "--json"]).json();
    assert_eq!(memory, json!({"greeting": "hello"}));
}

#[test]
fn are_run_refuses_policies_without_agents_and_unknown_targets() {
    let dir = tempdir();
    let config = write_policy(dir.path(), "").display().to_string();
    let out = run(&["run", "--config", &config, "--until-idle"]);
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr
            .contains("has no [agent.TYPE] table: there is no agent to run"),
        "{}",
        out.stderr
    );

    let config = write_policy(dir.path(), "[agent.probe]\nsource = \"{probe}\"\n")
        .display()
        .to_string();
    let out = run(&[
        "run",
        "--config",
        &config,
        "--send",
        "nobody/x",
        "hi",
        "--until-idle",
    ]);
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr.contains("cannot send to nobody/x")
            && out
                .stderr
                .contains("no agent type `nobody` in the policy (configured: probe)"),
        "{}",
        out.stderr
    );
    let out = run(&[
        "run",
        "--config",
        &config,
        "--send",
        "probe",
        "hi",
        "--until-idle",
    ]);
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr.contains("invalid agent id \"probe\""),
        "{}",
        out.stderr
    );

    // A failed message is printed and makes the run fail.
    let fail = json!({"op": "fail", "message": "boom"}).to_string();
    let out = run(&[
        "run",
        "--config",
        &config,
        "--send",
        "probe/a",
        &fail,
        "--until-idle",
        "--json",
    ]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let line: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(line["error"], "boom");
    assert_eq!(line["to"], "probe/a");
    assert!(line["message"].as_str().unwrap().starts_with("ext-"));
}

/// Bytes of the store of the runtime in `dir`, its WAL included.
fn store_bytes(dir: &Path) -> u64 {
    ["agents.db", "agents.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(".are").join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// The errors of a probe `bulk`, checked to be `kind` values naming `key`.
fn bulk_errors(reply: &Value, kind: &str, key: &str) -> usize {
    let errors = reply["errors"].as_array().expect("errors");
    for e in errors {
        let e = e.as_str().unwrap();
        assert!(e.contains(kind) && e.contains(key), "{e}");
    }
    errors.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_message_cannot_fill_the_store_with_huge_payloads() {
    let dir = tempdir();
    let rt = runtime_with(
        dir.path(),
        r#"
[agent.probe]
source = "{probe}"
allow.messaging = { publish = ["big"], send = ["probe/*", "sink/*", "wide/*"] }
limits = { fuel = "unlimited" }   # building five 30 MiB payloads

[agent.sink]
source = "{probe}"
allow.messaging = { subscribe = ["big"] }

[agent.wide]
source = "{probe}"
limits = { max_output = "8 MiB" }
"#,
    );
    const MIB_30: u64 = 30 << 20;
    // One external message: publish three 30 MiB payloads, then send two.
    let started = Instant::now();
    let reply = ask(
        &rt,
        "probe/a",
        json!({"op": "seq", "steps": [
            {"op": "bulk", "topic": "big", "n": 3, "bytes": MIB_30},
            {"op": "bulk", "to": "sink/x", "n": 2, "bytes": MIB_30},
        ]}),
    )
    .await
    .unwrap();
    let took = started.elapsed();
    let (published, sent) = (&reply[0], &reply[1]);
    assert_eq!(
        (published["sent"].as_u64(), sent["sent"].as_u64()),
        (Some(0), Some(0)),
        "{reply}"
    );
    assert_eq!(
        bulk_errors(published, "TooLarge", "[agents] max_payload"),
        3
    );
    assert_eq!(bulk_errors(sent, "TooLarge", "[agents] max_payload"), 2);
    rt.until_idle().await;
    let bytes = store_bytes(dir.path());
    eprintln!("five 30 MiB payloads refused in {took:?}; store with its WAL: {bytes} bytes");
    assert!(bytes < 4 << 20, "the store holds {bytes} bytes");
    assert!(messages_to(rt.store(), "sink/big").is_empty());
    assert!(messages_to(rt.store(), "sink/x").is_empty());

    // Payloads within the limit still go.
    let reply = ask(
        &rt,
        "probe/a",
        json!({"op": "bulk", "topic": "big", "n": 2, "bytes": 1000}),
    )
    .await
    .unwrap();
    assert_eq!(reply, json!({"sent": 2, "errors": []}));
    rt.until_idle().await;
    assert_eq!(messages_to(rt.store(), "sink/big").len(), 2);

    // A reply over the limit fails the message, is not stored, and is `too-large` for an agent sender: past
    // `[agents] max_payload`, or past the handler's own `limits.max_output` (1 MiB by default).
    let big_reply = json!({"op": "big-reply", "bytes": 2 << 20});
    for (to, key) in [
        ("wide/r", "[agents] max_payload"),
        ("sink/r", "limits.max_output"),
    ] {
        let reply = ask(
            &rt,
            "probe/a",
            json!({"op": "send", "to": to, "payload": big_reply}),
        )
        .await
        .unwrap();
        let e = err_of(&reply);
        assert!(e.contains("TooLarge") && e.contains(key), "{e}");
        let stored = messages_to(rt.store(), to);
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].status, Status::Failed);
        assert!(stored[0].reply.as_ref().unwrap().len() < 4096);
        assert!(
            ask(&rt, to, big_reply.clone())
                .await
                .unwrap_err()
                .contains(key)
        );
    }
    // An outside sender is refused before anything is stored.
    let e = rt
        .send("probe/a", &"x".repeat((1 << 20) + 1))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("over the limit of 1.0 MiB ([agents] max_payload)"),
        "{e}"
    );
    rt.until_idle().await;
    let bytes = store_bytes(dir.path());
    assert!(bytes < 4 << 20, "the store holds {bytes} bytes");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_type_holds_no_more_than_its_store_quota() {
    let dir = tempdir();
    let rt = runtime_with(
        dir.path(),
        r#"
[agent.probe]
source = "{probe}"
store_quota = "256 KiB"
allow.memory = { quota = "10 MiB" }
allow.messaging = { send = ["probe/*", "small/*"] }

[agent.small]
source = "{probe}"
store_quota = "64 KiB"
"#,
    );
    // Memory fills the type's share until refused; the quota is the type's, over all its agents.
    let filled = ask(
        &rt,
        "probe/a",
        json!({"op": "fill", "prefix": "k", "n": 100, "bytes": 100_000}),
    )
    .await
    .unwrap();
    assert_eq!(filled["stored"], 2, "{filled}");
    let e = filled["err"].as_str().unwrap();
    assert!(
        e.starts_with("store quota exceeded") && e.contains("[agent.probe] store_quota"),
        "{e}"
    );
    let filled = ask(
        &rt,
        "probe/b",
        json!({"op": "fill", "prefix": "k", "n": 1, "bytes": 100_000}),
    )
    .await
    .unwrap();
    assert_eq!(filled["stored"], 0, "{filled}");
    assert!(rt.store().usage("probe") <= 256 << 10);

    // A message the type has no room for is refused: from outside, from an agent, and as a reply.
    let e = rt
        .send("probe/c", &"x".repeat(80_000))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`probe/c` has no room for it") && e.contains("[agent.probe] store_quota"),
        "{e}"
    );
    let reply = ask(
        &rt,
        "probe/a",
        json!({"op": "bulk", "to": "probe/c", "n": 1, "bytes": 80_000}),
    )
    .await
    .unwrap();
    assert_eq!(
        bulk_errors(&reply, "QuotaExceeded", "[agent.probe] store_quota"),
        1
    );
    let reply = ask(
        &rt,
        "probe/a",
        json!({"op": "send", "to": "probe/c", "payload": {"op": "big-reply", "bytes": 80_000}}),
    )
    .await
    .unwrap();
    let e = err_of(&reply);
    assert!(
        e.contains("QuotaExceeded") && e.contains("store_quota"),
        "{e}"
    );
    assert!(rt.store().usage("probe") <= 256 << 10);

    // Finished messages are history: the oldest make room for new ones, so traffic never stalls.
    let reply = ask(
        &rt,
        "probe/a",
        json!({"op": "bulk", "to": "small/b", "n": 20, "bytes": 10_000}),
    )
    .await
    .unwrap();
    assert_eq!(reply, json!({"sent": 20, "errors": []}));
    let kept = messages_to(rt.store(), "small/b").len();
    assert!((4..20).contains(&kept), "{kept} messages kept");
    assert!(rt.store().usage("small") <= 64 << 10);
    // Small messages to the full type still go: they fit beside its memory.
    let me = ask(&rt, "probe/c", json!({"op": "whoami"})).await.unwrap();
    assert_eq!(me["id"], "probe/c");
}

#[test]
fn are_run_refuses_a_payload_over_max_payload() {
    let dir = tempdir();
    let config = write_policy(
        dir.path(),
        "[agents]\nmax_payload = \"1 KiB\"\n\n[agent.probe]\nsource = \"{probe}\"\n",
    )
    .display()
    .to_string();
    let big = json!({"op": "echo", "text": "x".repeat(2000)}).to_string();
    let out = run(&[
        "run",
        "--config",
        &config,
        "--send",
        "probe/a",
        &big,
        "--until-idle",
    ]);
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr.contains("cannot send to probe/a")
            && out
                .stderr
                .contains("over the limit of 1.0 KiB ([agents] max_payload)"),
        "{}",
        out.stderr
    );
    let ok = json!({"op": "echo", "text": "small"}).to_string();
    let out = run(&[
        "run",
        "--config",
        &config,
        "--send",
        "probe/a",
        &ok,
        "--until-idle",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "probe/a: \"small\"");
}

/// Figures for the issue note: `cargo test --release -p are-cli --test all agents_figures -- --ignored
/// --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurements; run by hand"]
async fn agents_figures() {
    let dir = tempdir();
    let rt = runtime(
        dir.path(),
        r#"
idle_timeout = "10m"
message_budget = 1000000
allow.messaging = { send = ["probe/*"] }
"#,
    );
    let echo = json!({"op": "echo", "text": "x"}).to_string();
    // Compile and warm up once.
    ask(&rt, "probe/warmup", json!({"op": "echo"}))
        .await
        .unwrap();

    let cold_n = 200;
    let started = Instant::now();
    for i in 0..cold_n {
        let (_, reply) = rt.send(&format!("probe/cold-{i}"), &echo).unwrap();
        reply.await.unwrap().unwrap();
    }
    let cold = started.elapsed() / cold_n;
    let warm_n = 2000;
    let started = Instant::now();
    for _ in 0..warm_n {
        let (_, reply) = rt.send("probe/warmup", &echo).unwrap();
        reply.await.unwrap().unwrap();
    }
    let warm = started.elapsed() / warm_n;
    println!(
        "activation latency: first message to a new agent {cold:?}, to a warm agent {warm:?} \
         (send to reply, persisted; averages of {cold_n} and {warm_n})"
    );

    let n = 5000;
    ask(&rt, "probe/pong", json!({"op": "echo"})).await.unwrap();
    let started = Instant::now();
    let flood = ask(
        &rt,
        "probe/ping",
        json!({"op": "flood", "to": "probe/pong", "n": n}),
    )
    .await
    .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(flood["sent"], n, "{flood}");
    println!(
        "agent to agent: {n} send/reply round trips in {elapsed:?}: {:.0} messages/s",
        f64::from(n) / elapsed.as_secs_f64()
    );

    let idle_n = 1000;
    let rss_before = rss_bytes();
    for i in 0..idle_n {
        let (_, reply) = rt.send(&format!("probe/idle-{i}"), &echo).unwrap();
        reply.await.unwrap().unwrap();
    }
    let rss_after = rss_bytes();
    assert!(rt.active() >= idle_n as usize);
    println!(
        "memory per idle agent: RSS {} MiB → {} MiB over {idle_n} activated idle agents: {} KiB each",
        rss_before >> 20,
        rss_after >> 20,
        (rss_after.saturating_sub(rss_before) / idle_n) >> 10
    );
}

/// The resident set size of this process, from /proc.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

//! The life of an agent: lazy activation and deactivation when idle, one message at a time, and recovery after
//! `kill -9` with idempotent re-runs.

use super::{activations, eventually, memory_value, messages_to, runtime, write_policy};
use crate::common::{are, ask_agent, run, tempdir};
use are_agents::store::{AgentStore as _, SqliteStore, Status};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::{Duration, Instant};

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

    ask_agent(&rt, id, json!({"op": "echo", "text": "hi"}))
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
    ask_agent(&rt, id, json!({"op": "echo", "text": "again"}))
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

    let me = ask_agent(&rt, id, json!({"op": "whoami"})).await.unwrap();
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
        ask_agent(&rt, to, json!({"op": "echo"})).await.unwrap();
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
        let Ok(store) = SqliteStore::open_read_only(&db) else {
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
        let store = SqliteStore::open_read_only(&db).unwrap();
        let pending = store.pending().unwrap();
        assert!(
            pending.len() >= 4,
            "messages were accepted before the kill and are unfinished: {pending:?}"
        );
    }

    let out = run(&["run", "--config", &config_arg, "--until-idle", "--json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("resuming"), "{}", out.stderr);

    let store = SqliteStore::open_read_only(&db).unwrap();
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

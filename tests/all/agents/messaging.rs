//! Messages between agents: who an agent is, send and reply, a failed or slow target, publish and subscribe.

use super::{err_of, messages_to, runtime, runtime_with, sent_ok};
use crate::common::{ask_agent, tempdir};
use are_agents::store::Status;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_knows_who_it_is_and_what_it_handles() {
    let dir = tempdir();
    let rt = runtime(dir.path(), "");
    let me = ask_agent(&rt, "probe/a", json!({"op": "whoami"}))
        .await
        .unwrap();
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
    let reply = ask_agent(
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
    let failed = ask_agent(
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
    let slow = ask_agent(
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
    let reply = ask_agent(
        &rt,
        "probe/a",
        json!({"op": "publish", "topic": "news", "payload": {"op": "whoami"}}),
    )
    .await
    .unwrap();
    assert_eq!(reply, json!({"ok": null}));
    let quiet = ask_agent(
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

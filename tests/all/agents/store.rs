//! What an agent keeps: its memory (private, persistent, within its quota), payload sizes, and the store quota of
//! its type.

use super::{err_of, messages_to, runtime, runtime_with};
use crate::common::{ask_agent, tempdir};
use are_agents::store::Status;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Instant;

#[tokio::test(flavor = "multi_thread")]
async fn memory_is_private_persistent_and_within_its_quota() {
    let dir = tempdir();
    let extra = "allow.memory = { quota = \"100 B\" }";
    let rt = runtime(dir.path(), extra);
    let mut stored = 0;
    let refusal = loop {
        let reply = ask_agent(
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
    let keys = ask_agent(&rt, "probe/a", json!({"op": "recall", "prefix": "k"}))
        .await
        .unwrap();
    assert_eq!(keys, json!(["k0", "k1", "k2", "k3"]));
    let other = ask_agent(&rt, "probe/b", json!({"op": "recall", "prefix": ""}))
        .await
        .unwrap();
    assert_eq!(other, json!([]), "memory is per agent");
    // Replacing a value counts it once; multi-byte characters count in bytes.
    let replaced = ask_agent(
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
    let value = ask_agent(&rt, "probe/a", json!({"op": "recall", "key": "k1"}))
        .await
        .unwrap();
    assert_eq!(value, "x".repeat(20), "memory survives the runtime");
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
    let reply = ask_agent(
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
    let reply = ask_agent(
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
        let reply = ask_agent(
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
            ask_agent(&rt, to, big_reply.clone())
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
    let filled = ask_agent(
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
    let filled = ask_agent(
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
    let reply = ask_agent(
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
    let reply = ask_agent(
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
    let reply = ask_agent(
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
    let me = ask_agent(&rt, "probe/c", json!({"op": "whoami"}))
        .await
        .unwrap();
    assert_eq!(me["id"], "probe/c");
}

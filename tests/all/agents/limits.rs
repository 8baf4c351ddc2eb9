//! Limits on traffic between agents: the hop limit and loop detection, the message budget per activation, and a
//! hostile agent contained while others progress.

use super::{activations, err_of, eventually, messages_to, runtime, runtime_with, sent_ok};
use crate::common::{ask_agent, tempdir};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

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
    let reply = ask_agent(
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
    let reply = ask_agent(
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
    let reply = ask_agent(&rt, "probe/a", chain(&["probe/a", "probe/b", "probe/a"]))
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
    let flood = ask_agent(
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
    let more = ask_agent(
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
    let again = ask_agent(
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
    ask_agent(&rt, "good/warm", json!({"op": "echo"}))
        .await
        .unwrap();
    ask_agent(&rt, "hostile/warm", json!({"op": "echo"}))
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
        let me = ask_agent(&rt, id, json!({"op": "whoami"})).await.unwrap();
        assert_eq!(me["id"], id);
    }
    rt.until_idle().await;
    assert_eq!(messages_to(rt.store(), "good/spam").len(), 20);
}

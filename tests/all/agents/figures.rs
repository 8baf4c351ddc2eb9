//! Measurements for the issue notes, run by hand (ignored by default).

use super::runtime;
use crate::common::{ask_agent, proc_status_bytes, tempdir};
use serde_json::json;
use std::time::Instant;

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
    ask_agent(&rt, "probe/warmup", json!({"op": "echo"}))
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
    ask_agent(&rt, "probe/pong", json!({"op": "echo"}))
        .await
        .unwrap();
    let started = Instant::now();
    let flood = ask_agent(
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
    let rss_before = proc_status_bytes(std::process::id(), "VmRSS");
    for i in 0..idle_n {
        let (_, reply) = rt.send(&format!("probe/idle-{i}"), &echo).unwrap();
        reply.await.unwrap().unwrap();
    }
    let rss_after = proc_status_bytes(std::process::id(), "VmRSS");
    assert!(rt.active() >= idle_n as usize);
    println!(
        "memory per idle agent: RSS {} MiB → {} MiB over {idle_n} activated idle agents: {} KiB each",
        rss_before >> 20,
        rss_after >> 20,
        (rss_after.saturating_sub(rss_before) / idle_n) >> 10
    );
}

//! Many calls at once, over both transports: concurrent calls in one session, a hostile loop next to other
//! calls, a full queue, a full instance pool.

use super::{Serve, Transport, component, error_of, output_of, params, text_of};
use serde_json::json;
use std::time::{Duration, Instant};

over_both_transports!(
    sixty_four_concurrent_calls,
    a_hostile_loop_does_not_hold_up_other_calls,
    a_full_queue_answers_busy,
    a_full_instance_pool_is_a_clear_error,
);

async fn sixty_four_concurrent_calls(transport: Transport) {
    let serve = Serve::for_policy(transport, &component("text", "text", "")).await;
    let client = serve.connect().await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..64 {
        let peer = client.peer();
        calls.spawn(async move {
            let words = "word ".repeat(i);
            let result = peer
                .call_tool(params("text.word-count", json!({ "text": words })))
                .await
                .expect("tools/call");
            (i, output_of("text.word-count", &result))
        });
    }
    let mut seen = [false; 64];
    while let Some(done) = calls.join_next().await {
        let (i, counts) = done.expect("join");
        assert_eq!(counts["words"], i, "call {i}: {counts}");
        assert_eq!(counts["bytes"], 5 * i, "call {i}: {counts}");
        seen[i] = true;
    }
    assert!(seen.iter().all(|s| *s));
    client.close().await;
}

async fn a_hostile_loop_does_not_hold_up_other_calls(transport: Transport) {
    let policy = component(
        "loop",
        "hostile-loop",
        "limits.fuel = \"unlimited\"\nlimits.timeout = \"2s\"",
    ) + &component("text", "text", "");
    let serve = Serve::for_policy(transport, &policy).await;
    let client = serve.connect().await;
    // Warm up, so that the timings below are calls and not first-time setup.
    client.ok("text.word-count", json!({"text": "warm"})).await;
    let started = Instant::now();
    let spinning = {
        let peer = client.peer();
        tokio::spawn(async move {
            let result = peer
                .call_tool(params("loop.spin", json!({})))
                .await
                .expect("tools/call");
            (error_of("loop.spin", &result), Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut slowest = Duration::ZERO;
    let mut benign_done = Instant::now();
    for i in 0..20 {
        let text = format!("call {i} while a loop spins");
        let t = Instant::now();
        let counts = client.ok("text.word-count", json!({ "text": text })).await;
        slowest = slowest.max(t.elapsed());
        benign_done = Instant::now();
        assert_eq!(counts["words"], 6);
    }
    let (message, loop_done) = spinning.await.expect("join");
    assert!(
        benign_done < loop_done,
        "the benign calls finished only after the loop was stopped"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "a benign call took {slowest:?} next to the loop"
    );
    assert!(
        message.contains("timed out")
            && message.contains("2s")
            && message.contains("limits.timeout"),
        "{message}"
    );
    let spun = loop_done - started;
    assert!(
        spun >= Duration::from_millis(1900) && spun < Duration::from_secs(6),
        "the loop was stopped after {spun:?}"
    );
    client.close().await;
}

async fn a_full_queue_answers_busy(transport: Transport) {
    let policy = component(
        "sleep",
        "hostile-sleep",
        "max_concurrency = 1\nqueue = 1\nlimits.timeout = \"10s\"",
    );
    let serve = Serve::for_policy(transport, &policy).await;
    let client = serve.connect().await;
    let mut sleepers = Vec::new();
    for _ in 0..2 {
        let peer = client.peer();
        sleepers.push(tokio::spawn(async move {
            let result = peer
                .call_tool(params("sleep.sleep", json!({"ms": 1000})))
                .await
                .expect("tools/call");
            output_of("sleep.sleep", &result)
        }));
        // The first one runs, the second one waits in the queue.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    let message = client.tool_error("sleep.sleep", json!({"ms": 1})).await;
    assert!(
        message.starts_with("busy:") && message.contains("max_concurrency 1, queue 1"),
        "{message}"
    );
    for sleeper in sleepers {
        let slept = sleeper.await.expect("join");
        assert!(slept.as_u64().expect("ms") >= 1000, "{slept}");
    }
    // With the queue empty again, calls get through.
    client.ok("sleep.sleep", json!({"ms": 1})).await;
    client.close().await;
}

async fn a_full_instance_pool_is_a_clear_error(transport: Transport) {
    let policy = "[serve]\nmax_instances = 2\n\n".to_string()
        + &component(
            "sleep",
            "hostile-sleep",
            "max_concurrency = 4\nlimits.timeout = \"10s\"",
        );
    let serve = Serve::for_policy(transport, &policy).await;
    let client = serve.connect().await;
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let peer = client.peer();
        calls.spawn(async move {
            peer.call_tool(params("sleep.sleep", json!({"ms": 1500})))
                .await
                .expect("tools/call")
        });
    }
    let results = calls.join_all().await;
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.is_error == Some(true))
        .map(text_of)
        .collect();
    assert_eq!(failed.len(), 2, "{results:?}");
    for message in failed {
        assert!(
            message.starts_with("cannot start the component: no free instance slot")
                && message.contains("[serve] max_instances"),
            "{message}"
        );
    }
    // Slots come back when calls end.
    client.ok("sleep.sleep", json!({"ms": 1})).await;
    client.close().await;
}

//! Clocks and randomness: abuse ends at the limits.

use super::{MIB, error, memory, still_serves, text_still_works};
use crate::common::{call, call_limited, load};
use are_policy::Limits;
use are_runtime::invoke::CallError;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_and_random_abuse_ends_at_the_limits() {
    let abuser = load("hostile-clock-random", "");

    // More random bytes than the host hands out in one call: refused before it allocates.
    for function in ["attack.random-bytes", "attack.insecure-random-bytes"] {
        let report = call(&abuser, function, json!({ "len": u64::MAX })).await;
        let message = error(&report, function);
        assert!(message.contains("exceeds limit"), "{function}: {message}");
    }
    // Under that cap but over the memory limit: the copy into the guest is refused.
    let report = call_limited(
        &abuser,
        "attack.random-bytes",
        json!({ "len": 64 * MIB }),
        memory(16 * MIB),
    )
    .await;
    assert!(
        matches!(report.outcome, Err(CallError::MemoryExceeded { .. })),
        "{:?}",
        report.outcome
    );
    assert!(report.stats.peak_memory <= 16 * MIB);

    // Asking over and over for big buffers it drops: ends at the timeout.
    let limits = Limits {
        timeout: Duration::from_millis(1500),
        ..Limits::default()
    };
    let started = Instant::now();
    let report = call_limited(
        &abuser,
        "attack.random-churn",
        json!({"len": 4 * MIB, "count": 1_000_000}),
        limits,
    )
    .await;
    assert!(
        matches!(
            report.outcome,
            Err(CallError::Timeout { .. } | CallError::FuelExhausted { .. })
        ),
        "{:?}",
        report.outcome
    );
    assert!(started.elapsed() < Duration::from_secs(4));

    // Waits that never end: the timeout.
    let limits = Limits {
        timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    for (function, args) in [
        ("attack.wait", json!({ "ns": u64::MAX })),
        ("attack.wait-until", json!({ "instant": u64::MAX })),
    ] {
        let started = Instant::now();
        let report = call_limited(&abuser, function, args, limits).await;
        assert!(
            matches!(report.outcome, Err(CallError::Timeout { .. })),
            "{function}: {:?}",
            report.outcome
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{function}");
    }

    // Tight loops of host calls: fuel.
    let limits = Limits {
        fuel: Some(10_000_000),
        ..Limits::default()
    };
    for (function, args) in [
        ("attack.poll-storm", json!({ "count": 0 })),
        ("attack.clock-spin", json!(null)),
    ] {
        let report = call_limited(&abuser, function, args, limits).await;
        assert!(
            matches!(report.outcome, Err(CallError::FuelExhausted { .. })),
            "{function}: {:?}",
            report.outcome
        );
    }

    // A hundred thousand timers in one poll: the handle limit, or an answer; never a hang.
    let report = call_limited(
        &abuser,
        "attack.poll-many",
        json!({ "count": 100_000 }),
        Limits {
            timeout: Duration::from_secs(5),
            ..Limits::default()
        },
    )
    .await;
    match &report.outcome {
        Ok(out) => assert!(out.value.as_u64().is_some(), "{}", out.value),
        Err(CallError::Trap { message }) => assert!(message.contains("handle"), "{message}"),
        Err(other) => panic!("poll-many: {other}"),
    }

    still_serves(
        &abuser,
        "attack.random-bytes",
        json!({"len": 16}),
        json!(16),
    )
    .await;
    still_serves(
        &abuser,
        "attack.wait",
        json!({"ns": 1_000_000}),
        json!(null),
    )
    .await;
    text_still_works().await;
}

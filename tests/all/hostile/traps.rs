//! Panics and traps are reported clearly, one at a time and by the thousand.

use super::{error, still_serves, text_still_works};
use crate::common::{call, load};
use are_runtime::invoke::{CallError, CallReport};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test]
async fn guest_panic_is_reported_with_its_message() {
    let panic = load("hostile-panic", "");
    let report = call(&panic, "attack.panic", json!({"message": "boom"})).await;
    match &report.outcome {
        Err(CallError::Panic { message }) => {
            assert!(message.starts_with("boom"), "{message}");
            assert!(
                message.contains("lib.rs"),
                "the location is kept: {message}"
            );
        }
        other => panic!("expected Panic, got {other:?}"),
    }
    assert!(String::from_utf8_lossy(&report.stderr).contains("boom"));
    assert!(error(&report, "panic").starts_with("guest panicked: boom"));
    still_serves(&panic, "attack.divide", json!({"a": 7, "b": 2}), json!(3)).await;
}

#[tokio::test]
async fn guest_traps_are_reported_clearly() {
    let panic = load("hostile-panic", "");
    for (function, args, expected) in [
        ("attack.trap-unreachable", json!(null), "unreachable"),
        (
            "attack.divide",
            json!({"a": 1, "b": 0}),
            "integer divide by zero",
        ),
        (
            "attack.divide",
            json!({"a": i32::MIN, "b": -1}),
            "integer overflow",
        ),
        (
            "attack.out-of-bounds",
            json!(null),
            "out of bounds memory access",
        ),
        ("attack.abort", json!(null), "unreachable"),
    ] {
        let report = call(&panic, function, args.clone()).await;
        match &report.outcome {
            Err(CallError::Trap { message }) => {
                assert!(message.contains(expected), "{function} {args}: {message}");
                assert!(!message.contains('\n'), "one line: {message}");
            }
            other => panic!("{function} {args}: expected a Trap, got {other:?}"),
        }
        still_serves(&panic, "attack.divide", json!({"a": -9, "b": 3}), json!(-3)).await;
    }
    // `exit` ends this call, never the host.
    for code in [0, 3] {
        let report = call(&panic, "attack.exit", json!({ "code": code })).await;
        assert!(
            report.outcome.is_err(),
            "exit({code}): {:?}",
            report.outcome
        );
        still_serves(&panic, "attack.divide", json!({"a": 10, "b": 5}), json!(2)).await;
    }
}

/// Each way `hostile-trap-storm` traps, and what the error says.
const TRAP_KINDS: [(&str, &str); 10] = [
    ("unreachable", "unreachable"),
    ("out-of-bounds", "out of bounds memory access"),
    ("divide-by-zero", "integer divide by zero"),
    ("stack-overflow", "stack overflow"),
    ("bad-indirect-call", "table"),
    ("indirect-type-mismatch", "indirect call type mismatch"),
    ("panic", "trap storm: a panic, as asked"),
    ("after-output", "unreachable"),
    ("holding-handles", "unreachable"),
    ("after-allocating", "unreachable"),
];

/// The message of a call that trapped or panicked.
fn trap_message(report: &CallReport, what: &str) -> String {
    match &report.outcome {
        Err(CallError::Trap { message } | CallError::Panic { message }) => message.clone(),
        other => panic!("{what}: expected a trap, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_storm_leaves_the_host_healthy() {
    let storm = Arc::new(load("hostile-trap-storm", ""));
    for (kind, expected) in TRAP_KINDS {
        let report = call(&storm, "attack.trap", json!({ "kind": kind })).await;
        let message = trap_message(&report, kind);
        assert!(message.contains(expected), "{kind}: {message}");
        assert!(!message.contains('\n'), "{kind}: one line: {message}");
        still_serves(&storm, "attack.ok", json!({"n": 1}), json!(2)).await;
    }

    // Thousands of traps, four callers at once, every kind in turn.
    const CALLERS: usize = 4;
    const EACH: usize = 500;
    let started = Instant::now();
    let callers: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let storm = storm.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    let (kind, expected) = TRAP_KINDS[(caller + i) % TRAP_KINDS.len()];
                    let report = call(&storm, "attack.trap", json!({ "kind": kind })).await;
                    let message = trap_message(&report, kind);
                    assert!(message.contains(expected), "{kind}: {message}");
                }
            })
        })
        .collect();
    for caller in callers {
        caller.await.expect("a caller panicked");
    }
    let elapsed = started.elapsed();
    let traps = CALLERS * EACH;
    let rate = traps as f64 / elapsed.as_secs_f64();
    eprintln!("trap storm: {traps} traps in {elapsed:.2?}, {rate:.0} traps/s");
    assert!(
        rate > 20.0,
        "trapping got pathologically slow: {rate:.1} traps/s"
    );

    // The next benign call works, promptly, on the same component and on another one.
    let started = Instant::now();
    still_serves(&storm, "attack.ok", json!({"n": 41}), json!(42)).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    text_still_works().await;
}

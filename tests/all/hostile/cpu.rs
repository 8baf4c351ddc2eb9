//! CPU: an infinite loop is stopped by fuel or, without fuel, by the timeout; blocking in the host is stopped by
//! the timeout; the CLI reports both.

use super::{error, text_still_works, timeout_only};
use crate::common::{call_limited, call_ok, load, run};
use are_policy::Limits;
use are_runtime::invoke::CallError;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn infinite_loop_is_stopped_by_fuel() {
    let spin = load("hostile-loop", "");
    let limits = Limits {
        fuel: Some(1_000_000),
        ..Limits::default()
    };
    for function in ["attack.spin", "attack.churn"] {
        let started = Instant::now();
        let report = call_limited(&spin, function, json!(null), limits).await;
        assert!(
            matches!(
                report.outcome,
                Err(CallError::FuelExhausted { limit: 1_000_000 })
            ),
            "{function}: {:?}",
            report.outcome
        );
        let message = error(&report, function);
        assert!(
            message.contains("out of fuel")
                && message.contains("1000000 fuel")
                && message.contains("limits.fuel"),
            "{message}"
        );
        assert_eq!(report.stats.fuel_consumed, Some(1_000_000));
        assert_eq!(report.stats.fuel_limit, Some(1_000_000));
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    let out = call_ok(&spin, "attack.spin-for", json!({"ms": 5})).await;
    assert!(out.as_u64().is_some_and(|n| n > 0), "{out}");
    text_still_works().await;
}

#[tokio::test]
async fn infinite_loop_without_fuel_is_stopped_by_the_timeout() {
    let spin = load("hostile-loop", "");
    let limits = timeout_only(Duration::from_millis(500));
    for function in ["attack.spin", "attack.churn"] {
        let started = Instant::now();
        let report = call_limited(&spin, function, json!(null), limits).await;
        let elapsed = started.elapsed();
        assert!(
            matches!(report.outcome, Err(CallError::Timeout { limit }) if limit == limits.timeout),
            "{function}: {:?}",
            report.outcome
        );
        let message = error(&report, function);
        assert!(
            message.contains("timed out")
                && message.contains("500ms")
                && message.contains("limits.timeout"),
            "{message}"
        );
        assert!(
            elapsed >= limits.timeout && elapsed < limits.timeout + Duration::from_secs(1),
            "{function} stopped after {elapsed:?}"
        );
        assert_eq!(report.stats.fuel_limit, None);
    }
    let out = call_ok(&spin, "attack.spin-for", json!({"ms": 5})).await;
    assert!(out.as_u64().is_some_and(|n| n > 0), "{out}");
    text_still_works().await;
}

#[tokio::test]
async fn blocking_forever_is_stopped_by_the_timeout() {
    let sleep = load("hostile-sleep", "");
    // Fuel stays on: blocking in the host burns none, so only the wall clock can stop these.
    let limits = Limits {
        timeout: Duration::from_millis(400),
        ..Limits::default()
    };
    for function in ["attack.sleep-forever", "attack.block-forever"] {
        let started = Instant::now();
        let report = call_limited(&sleep, function, json!(null), limits).await;
        let elapsed = started.elapsed();
        assert!(
            matches!(report.outcome, Err(CallError::Timeout { limit }) if limit == limits.timeout),
            "{function}: {:?}",
            report.outcome
        );
        let message = error(&report, function);
        assert!(
            message.contains("400ms") && message.contains("limits.timeout"),
            "{message}"
        );
        assert!(
            elapsed >= limits.timeout && elapsed < limits.timeout + Duration::from_secs(1),
            "{function} stopped after {elapsed:?}"
        );
        assert!(report.stats.fuel_consumed.is_some_and(|f| f < 1_000_000));
    }
    let slept = call_ok(&sleep, "attack.sleep", json!({"ms": 20})).await;
    assert!(slept.as_u64().is_some_and(|ms| ms >= 20), "{slept}");
}

#[test]
fn the_cli_reports_out_of_fuel_and_timeouts() {
    let spin = are_tests::guest("hostile-loop").wasm;
    let out = run(&["call", spin, "attack.spin", "--fuel", "1000000"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("error: out of fuel: the call used its whole budget of 1000000 fuel units"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);

    let started = Instant::now();
    let out = run(&[
        "call",
        spin,
        "attack.spin",
        "--timeout",
        "500ms",
        "--fuel",
        "unlimited",
    ]);
    let elapsed = started.elapsed();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("error: timed out: the call ran longer than its 500ms timeout"),
        "{}",
        out.stderr
    );
    assert!(elapsed < Duration::from_millis(1500), "took {elapsed:?}");
}

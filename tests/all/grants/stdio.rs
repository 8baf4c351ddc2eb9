//! Standard streams: captured in the report apart from the result, up to `max_output`.

use crate::common::{call, call_limited, load};
use are_policy::Limits;
use are_policy::common::fmt_bytes;
use are_runtime::invoke::CallError;
use serde_json::json;
use std::time::{Duration, Instant};

/// The line `hostile-output` writes over and over.
const OUTPUT_LINE: &str = "hostile-output floods this stream with the same line, for ever!\n";

#[tokio::test]
async fn stdio_is_captured_in_the_report_apart_from_the_result() {
    let output = load("hostile-output", "");
    let limits = Limits {
        max_output: 4 << 20,
        ..Limits::default()
    };
    let report = call_limited(&output, "attack.stdout-flood", json!({"mib": 1}), limits).await;
    let out = report.outcome.expect("1 MiB fits a max_output of 4 MiB");
    assert_eq!(out.value, json!({"ok": 1 << 20}));
    assert_eq!(report.stdout.len(), 1 << 20);
    assert!(report.stdout.starts_with(OUTPUT_LINE.as_bytes()));
    assert!(report.stderr.is_empty());
    assert_eq!(report.stats.stdout_bytes, 1 << 20);
    assert!(!out.value.to_string().contains("hostile-output"));

    let report = call_limited(&output, "attack.stderr-flood", json!({"mib": 1}), limits).await;
    assert_eq!(report.outcome.unwrap().value, json!({"ok": 1 << 20}));
    assert_eq!(report.stderr.len(), 1 << 20);
    assert!(report.stdout.is_empty());

    // A guest's printing does not reach the result of a well-behaved tool either: panic output goes to stderr.
    let text = load("text", "");
    let report = call(&text, "text.word-count", json!({"text": "a b"})).await;
    assert!(report.stdout.is_empty() && report.stderr.is_empty());
}

#[tokio::test]
async fn stdio_output_exactly_at_the_limit_is_allowed() {
    let output = load("hostile-output", "");
    let limits = Limits {
        max_output: 1 << 20,
        ..Limits::default()
    };
    let report = call_limited(&output, "attack.stdout-flood", json!({"mib": 1}), limits).await;
    match report.outcome {
        Ok(out) => assert_eq!(out.value, json!({"ok": 1 << 20})),
        Err(e) => panic!("exactly max_output bytes of stdout must be allowed: {e}"),
    }
    assert_eq!(report.stdout.len(), 1 << 20);
}

#[tokio::test]
async fn stdio_endless_stdout_ends_with_output_too_large() {
    let output = load("hostile-output", "");
    let limits = Limits {
        max_output: 256 << 10,
        timeout: Duration::from_secs(3),
        ..Limits::default()
    };
    let started = Instant::now();
    let report = call_limited(&output, "attack.stdout-flood", json!({"mib": 0}), limits).await;
    let elapsed = started.elapsed();
    match &report.outcome {
        Err(CallError::OutputTooLarge { stream, limit }) => {
            assert_eq!((*stream, *limit), ("stdout", 256 << 10));
        }
        other => panic!("expected OutputTooLarge on stdout, got {other:?}"),
    }
    let message = report.outcome.as_ref().unwrap_err().to_string();
    assert!(
        message.contains("stdout")
            && message.contains(&fmt_bytes(256 << 10))
            && message.contains("limits.max_output"),
        "{message}"
    );
    assert!(elapsed < limits.timeout, "took {elapsed:?}");
    assert!(report.stdout.len() as u64 <= limits.max_output);
    assert!(report.stdout.len() as u64 >= limits.max_output / 2);
    assert!(report.stdout.starts_with(OUTPUT_LINE.as_bytes()));
}

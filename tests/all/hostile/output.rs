//! Output: floods of stdio, huge and amplified results, and amplified arguments stop at `max_output`.

use super::{MIB, error, still_serves};
use crate::common::{call_limited, call_ok, load};
use are_policy::Limits;
use are_policy::common::fmt_bytes;
use are_runtime::invoke::CallError;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test]
async fn output_floods_are_cut_at_max_output() {
    let output = load("hostile-output", "");
    let limits = Limits {
        max_output: 64 << 10,
        timeout: Duration::from_secs(3),
        ..Limits::default()
    };
    for (function, stream, mib) in [
        ("attack.stdout-flood", "stdout", 0),
        ("attack.stderr-flood", "stderr", 0),
        ("attack.stdout-flood", "stdout", 1),
        ("attack.stderr-flood", "stderr", 1),
    ] {
        let started = Instant::now();
        let report = call_limited(&output, function, json!({ "mib": mib }), limits).await;
        match &report.outcome {
            Err(CallError::OutputTooLarge { stream: s, limit }) => {
                assert_eq!((*s, *limit), (stream, limits.max_output), "{function}");
            }
            other => panic!("{function} {mib}: expected OutputTooLarge, got {other:?}"),
        }
        let message = error(&report, function);
        assert!(
            message.contains(stream)
                && message.contains(&fmt_bytes(limits.max_output))
                && message.contains("limits.max_output"),
            "{message}"
        );
        assert!(started.elapsed() < limits.timeout);
        let captured = if stream == "stdout" {
            &report.stdout
        } else {
            &report.stderr
        };
        assert!(captured.len() as u64 <= limits.max_output);
    }
    still_serves(
        &output,
        "attack.stdout-flood",
        json!({"mib": 1}),
        json!({"ok": MIB}),
    )
    .await;
}

#[tokio::test]
async fn huge_results_are_output_too_large() {
    let output = load("hostile-output", "");
    let limits = Limits {
        max_output: MIB,
        ..Limits::default()
    };
    for (function, args) in [
        ("attack.huge-string", json!({"mib": 2})),
        ("attack.huge-bytes", json!({"mib": 1})),
        ("attack.many-strings", json!({"count": 200_000})),
    ] {
        let report = call_limited(&output, function, args, limits).await;
        assert!(
            matches!(
                report.outcome,
                Err(CallError::OutputTooLarge {
                    stream: "result",
                    limit: MIB
                })
            ),
            "{function}: {:?}",
            report.outcome
        );
        let message = error(&report, function);
        assert!(
            message.contains("result")
                && message.contains(&fmt_bytes(MIB))
                && message.contains("limits.max_output"),
            "{message}"
        );
        // Refused while being lifted or measured: the host never held more than the limit of JSON text.
        assert!(report.stats.result_bytes as u64 <= MIB + 1);
    }
    still_serves(
        &output,
        "attack.many-strings",
        json!({"count": 2}),
        json!(["s0", "s1"]),
    )
    .await;
}

/// Results that are small in linear memory but large as host values or JSON are refused as over `max_output`
/// at whichever step would go over it: lifting the values, building the JSON values, or writing the JSON text.
/// Results within the limit still come back whole.
#[tokio::test]
async fn amplified_results_are_output_too_large() {
    let amplify = load("hostile-amplify", "");
    let limits = Limits {
        max_output: MIB,
        ..Limits::default()
    };
    for (function, args) in [
        // Lifting: 40 bytes of host values per byte of linear memory.
        ("attack.bools", json!({"count": 1_000_000})),
        ("attack.records", json!({"count": 10_000})),
        ("attack.nones", json!({"count": 100_000})),
        // Building JSON: lifts within the limit, but each empty flag set is an object of 32 members.
        ("attack.flag-sets", json!({"count": 20_000})),
        // Writing JSON text: 512 KiB of NULs are 3 MiB of `\u0000`.
        ("attack.escapes", json!({"kib": 512})),
    ] {
        let started = Instant::now();
        let report = call_limited(&amplify, function, args, limits).await;
        assert!(
            matches!(
                report.outcome,
                Err(CallError::OutputTooLarge {
                    stream: "result",
                    limit: MIB
                })
            ),
            "{function}: {:?}",
            report.outcome
        );
        let message = error(&report, function);
        assert!(
            message.starts_with("output limit exceeded: the guest's result")
                && message.contains(&fmt_bytes(MIB))
                && message.contains("limits.max_output"),
            "{message}"
        );
        assert!(report.stats.result_bytes as u64 <= MIB + 1, "{function}");
        assert!(started.elapsed() < Duration::from_secs(5), "{function}");
    }
    // Within the limit, every step lets the whole result through.
    let text = call_ok(&amplify, "attack.escapes", json!({"kib": 100})).await;
    assert_eq!(text.as_str().map(str::len), Some(100 << 10));
    let members: serde_json::Map<String, Value> = [
        "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r",
        "s", "t", "u", "v", "w", "x", "y", "z", "aa", "ab", "ac", "ad", "ae", "af",
    ]
    .into_iter()
    .map(|name| (name.to_string(), json!(false)))
    .collect();
    still_serves(
        &amplify,
        "attack.flag-sets",
        json!({"count": 1}),
        json!([members]),
    )
    .await;
    let bools = call_ok(&amplify, "attack.bools", json!({"count": 5_000})).await;
    assert_eq!(bools.as_array().map(Vec::len), Some(5_000));
}

/// Arguments that are small as JSON but large as component values (a `list<u8>` costs a whole value per byte)
/// are refused before the host builds them, naming the argument and the limit.
#[tokio::test]
async fn amplified_arguments_are_refused_within_max_output() {
    use base64::Engine as _;
    let hash = load("hash", "");
    let limits = Limits {
        max_output: 64 << 10,
        ..Limits::default()
    };
    let encode = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
    let report = call_limited(
        &hash,
        "base64-encode",
        json!({"data": encode(16 << 10)}),
        limits,
    )
    .await;
    match &report.outcome {
        Err(CallError::InvalidArguments(e)) => {
            assert!(e.is_over_budget(), "{e}");
            let message = e.to_string();
            assert!(
                message.starts_with("args.data: the arguments take more than 64.0 KiB")
                    && message.contains("limits.max_output"),
                "{message}"
            );
        }
        other => panic!("expected InvalidArguments, got {other:?}"),
    }
    let small = encode(1 << 10);
    let report = call_limited(&hash, "base64-encode", json!({"data": small}), limits).await;
    assert_eq!(report.outcome.expect("1 KiB fits").value, json!(small));
}

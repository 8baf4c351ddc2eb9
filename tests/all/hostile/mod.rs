//! Hostile components (issue point 10): each attack is contained with an error that names the limit and its
//! value, and the host serves the next call right after.

use crate::common::{
    TcpSink, TestServer, call, call_limited, call_ok, engine, load, load_spec, run, spec, tempdir,
};
use are::component::LoadedComponent;
use are::invoke::{CallError, CallReport, fmt_bytes};
use are::policy::Limits;
use are::sandbox::TABLE_ELEMENT_BYTES;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

/// Default limits with fuel unlimited and a short timeout: only the wall clock can stop the call.
fn timeout_only(timeout: Duration) -> Limits {
    Limits {
        fuel: None,
        timeout,
        ..Limits::default()
    }
}

/// Default limits with a smaller memory cap.
fn memory(limit: u64) -> Limits {
    Limits {
        memory: limit,
        ..Limits::default()
    }
}

/// What `hostile-memory`'s `allocate` returns for `mib` MiB: the sum of the byte it writes on each 64 KiB page.
fn checksum(mib: u64) -> Value {
    json!(
        (0..mib * 16)
            .map(|page| u64::from(page as u8 | 1))
            .sum::<u64>()
    )
}

/// The error of a call that must have failed.
fn error(report: &CallReport, what: &str) -> String {
    match &report.outcome {
        Ok(out) => panic!("{what} should have failed, returned {}", out.value),
        Err(e) => e.to_string(),
    }
}

/// A benign call on the same component still works: the host is fine after the attack.
async fn still_serves(c: &LoadedComponent, function: &str, args: Value, expected: Value) {
    assert_eq!(
        call_ok(c, function, args).await,
        expected,
        "the component did not serve a benign call after the attack"
    );
}

/// A benign tool, to show the host serves other components too.
async fn text_still_works() {
    let text = load("text", "");
    let counts = call_ok(&text, "text.word-count", json!({"text": "still here"})).await;
    assert_eq!(counts["words"], 2);
}

// ---------------------------------------------------------------------------------------------------------------
// CPU
// ---------------------------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------------------------
// memory, stack, tables
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn memory_bomb_gets_no_more_than_the_limit() {
    let bomb = load("hostile-memory", "");
    let limit = 16 * MIB;
    let report = call_limited(&bomb, "attack.bomb", json!(null), memory(limit)).await;
    // The limiter refuses the growth that would pass the limit; `memory.grow` returns -1 and the guest stops.
    let reached = report
        .outcome
        .as_ref()
        .map(|out| out.value.as_u64().expect("a size"))
        .unwrap_or_else(|e| panic!("bomb: {e}"));
    assert!(reached <= limit, "grew to {reached}");
    assert!(reached > limit - MIB, "stopped early, at {reached}");
    assert!(report.stats.peak_memory <= limit);
    assert!(report.stats.peak_memory >= reached);

    let report = call_limited(&bomb, "attack.hoard", json!(null), memory(limit)).await;
    let held = report
        .outcome
        .as_ref()
        .map(|out| out.value.as_u64().expect("a size"))
        .unwrap_or_else(|e| panic!("hoard: {e}"));
    assert!(held > 0 && held <= limit, "held {held}");
    assert!(report.stats.peak_memory <= limit);

    still_serves(&bomb, "attack.allocate", json!({"mib": 1}), checksum(1)).await;
}

#[tokio::test]
async fn allocation_over_the_limit_is_memory_exceeded() {
    let bomb = load("hostile-memory", "");
    let limit = 16 * MIB;
    let report = call_limited(&bomb, "attack.allocate", json!({"mib": 64}), memory(limit)).await;
    match &report.outcome {
        Err(CallError::MemoryExceeded {
            limit: l,
            requested,
        }) => {
            assert_eq!(*l, limit);
            assert!(*requested > 64 * MIB, "requested {requested}");
        }
        other => panic!("expected MemoryExceeded, got {other:?}"),
    }
    let message = error(&report, "allocate");
    assert!(
        message.contains("memory limit exceeded")
            && message.contains(&fmt_bytes(limit))
            && message.contains("limits.memory"),
        "{message}"
    );
    assert!(report.stats.peak_memory <= limit);
    // Under the limit, the same function works on the same component.
    let report = call_limited(&bomb, "attack.allocate", json!({"mib": 4}), memory(limit)).await;
    assert_eq!(report.outcome.unwrap().value, checksum(4));
}

#[tokio::test]
async fn deep_recursion_traps_with_a_stack_overflow() {
    let deep = load("hostile-recursion", "");
    let report = call(&deep, "attack.overflow", json!(null)).await;
    match &report.outcome {
        Err(CallError::Trap { message }) => {
            assert!(message.contains("stack overflow"), "{message}");
        }
        other => panic!("expected a stack overflow trap, got {other:?}"),
    }
    // Running the shadow stack off the bottom of linear memory traps too (an out-of-bounds access), and the
    // message says that it may be a stack overflow, naming the function.
    let report = call(&deep, "attack.overflow-fat", json!(null)).await;
    match &report.outcome {
        Err(CallError::Trap { message }) => {
            assert!(message.contains("out of bounds"), "{message}");
            assert!(message.contains("may be a stack overflow"), "{message}");
            assert!(message.contains("fat"), "{message}");
            assert!(!message.contains('\n'), "one line: {message}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    still_serves(&deep, "attack.recurse", json!({"depth": 1000}), json!(1000)).await;
    text_still_works().await;
}

#[tokio::test]
async fn table_growth_counts_against_the_memory_limit() {
    let dir = tempdir();
    let mut table_spec = spec("hostile-loop", "", dir.path());
    table_spec.name = "table".into();
    table_spec.path = are_tests::hostile_table_wat().to_path_buf();
    let table = load_spec(table_spec);
    for limit in [8 * MIB, 16 * MIB] {
        let report = call_limited(&table, "attack.bomb", json!(null), memory(limit)).await;
        let elements = report
            .outcome
            .as_ref()
            .map(|out| out.value.as_u64().expect("a size"))
            .unwrap_or_else(|e| panic!("bomb: {e}"));
        // It grows 1000 elements at a time until refused: the refusal came within one step of the limit.
        assert!(elements * TABLE_ELEMENT_BYTES <= limit, "{elements}");
        assert!(
            (elements + 1000) * TABLE_ELEMENT_BYTES > limit,
            "{elements} elements, limit {limit}"
        );
        assert!(report.stats.peak_memory <= limit);
    }
    // One growth past the limit is refused (-1), and the table is unchanged.
    let too_many = 16 * MIB / TABLE_ELEMENT_BYTES;
    let report = call_limited(
        &table,
        "attack.grow",
        json!({ "delta": too_many }),
        memory(16 * MIB),
    )
    .await;
    assert_eq!(report.outcome.unwrap().value, json!(-1));
    still_serves(&table, "attack.grow", json!({"delta": 10}), json!(1)).await;
    still_serves(&table, "attack.size", json!(null), json!(1)).await;
}

// ---------------------------------------------------------------------------------------------------------------
// output
// ---------------------------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------------------------
// panics and traps
// ---------------------------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------------------------
// blocking in the host
// ---------------------------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------------------------
// resource handles
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn handle_exhaustion_is_contained() {
    let handles = load("hostile-handles", "");
    let limits = Limits {
        timeout: Duration::from_secs(5),
        memory: 32 * MIB,
        ..Limits::default()
    };
    for function in ["attack.pollables", "attack.streams"] {
        let started = Instant::now();
        let report = call_limited(&handles, function, json!({"count": 0}), limits).await;
        match &report.outcome {
            Err(CallError::Trap { message }) => {
                assert!(message.contains("handle"), "{function}: {message}");
            }
            other => panic!("{function}: expected the host to refuse a handle, got {other:?}"),
        }
        assert!(
            started.elapsed() < limits.timeout,
            "{function}: hit the timeout"
        );
        assert!(report.stats.peak_memory <= limits.memory);
        still_serves(&handles, function, json!({"count": 100}), json!(100)).await;
    }
    // Without a mount there are no descriptors to hoard.
    still_serves(
        &handles,
        "attack.descriptors",
        json!({"count": 0}),
        json!(0),
    )
    .await;
    text_still_works().await;
}

/// Files, sockets and HTTP connections that an instance opens and never closes stop at `limits.open_files` and
/// `limits.connections`, each with the WASI error of a full descriptor table; what an instance closes is counted
/// as closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descriptor_hoarding_stops_at_the_instance_limits() {
    let dir = tempdir();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/f.txt"), "x").unwrap();
    let server = TestServer::start().await;
    let hog = load_spec(spec(
        "hostile-handles",
        &format!(
            "fs = [{{ host = \"data\", guest = \"/data\" }}]\nsockets = [\"127.0.0.1:9\"]\nhttp = [{:?}]",
            server.origin()
        ),
        dir.path(),
    ));
    let limits = Limits {
        open_files: 8,
        connections: 3,
        ..Limits::default()
    };
    let files = json!({"dir": "/data", "file": "f.txt", "count": 0, "hold-ms": 0});
    let hoard = call_limited(&hog, "attack.files", files.clone(), limits).await;
    assert_eq!(
        hoard.outcome.expect("files").value,
        json!({"held": 8, "refused": "insufficient-memory"})
    );
    let hoard = call_limited(
        &hog,
        "attack.sockets",
        json!({"count": 0, "hold-ms": 0}),
        limits,
    )
    .await;
    assert_eq!(
        hoard.outcome.expect("sockets").value,
        json!({"held": 3, "refused": "new-socket-limit"})
    );
    // Responses whose bodies are never read keep their connections open.
    let authority = format!("127.0.0.1:{}", server.port);
    let requests =
        json!({"authority": authority, "path": "/bytes?n=16000000", "count": 0, "hold-ms": 0});
    let hoard = call_limited(&hog, "attack.requests", requests, limits).await;
    let hoard = hoard.outcome.expect("requests").value;
    assert_eq!(hoard["held"], 3, "{hoard}");
    assert!(
        hoard["refused"]
            .as_str()
            .is_some_and(|r| r.contains("ConnectionLimitReached")),
        "{hoard}"
    );
    // Closed files and sockets make room again.
    let churn = json!({"dir": "/data", "file": "f.txt", "count": 100});
    let churned = call_limited(&hog, "attack.churn", churn, limits).await;
    assert_eq!(
        churned.outcome.expect("churn").value,
        json!({"held": 100, "refused": null})
    );
    // The defaults.
    let hoard = call(&hog, "attack.files", files).await;
    assert_eq!(
        hoard.outcome.expect("files").value,
        json!({"held": 64, "refused": "insufficient-memory"})
    );
    text_still_works().await;
}

// ---------------------------------------------------------------------------------------------------------------
// everything at once, and next to benign calls
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_hostile_at_once_is_contained() {
    let dir = tempdir();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/ok.txt"), "granted file").unwrap();
    let secret = format!("ARE-PLANTED-SECRET-hostile-{}", std::process::id());
    std::fs::write(dir.path().join("secret.txt"), &secret).unwrap();
    let secret_path = dir.path().join("secret.txt").display().to_string();
    let server = TestServer::start().await;
    let elsewhere = TcpSink::start().await;
    let granted_sink = TcpSink::start().await;

    let mount = r#"fs = [{ host = "data", guest = "/data" }]"#;
    let escape = load_spec(spec("hostile-fs-escape", mount, dir.path()));
    let hunter = load_spec(spec(
        "hostile-secret",
        &format!("{mount}\nhttp = [{:?}]", server.origin()),
        dir.path(),
    ));
    let snoop = load("hostile-env-snoop", "");
    let net = load(
        "hostile-net",
        &format!(
            "http = [{:?}]\nsockets = [\"127.0.0.1:{}\"]",
            server.origin(),
            granted_sink.port
        ),
    );
    let spin = load("hostile-loop", "");
    let bomb = load("hostile-memory", "");
    let deep = load("hostile-recursion", "");
    let output = load("hostile-output", "");
    let small = Limits {
        fuel: Some(5_000_000),
        memory: 16 * MIB,
        timeout: Duration::from_secs(2),
        max_output: 64 << 10,
        ..Limits::default()
    };

    let started = Instant::now();
    let elsewhere_url = format!("http://127.0.0.1:{}/", elsewhere.port);
    let (absolute, dot_dot, loot, env, http, tcp, spun, bombed, deepest, flooded) = tokio::join!(
        call(&escape, "attack.absolute", json!(null)),
        call(&escape, "attack.dot-dot", json!(null)),
        call(
            &hunter,
            "attack.hunt",
            json!({"url": server.url("/echo"), "paths": [secret_path.clone(), "../secret.txt"]}),
        ),
        call(
            &snoop,
            "attack.lookup",
            json!({"extra": ["CARGO_MANIFEST_DIR"]})
        ),
        call(&net, "attack.http-get", json!({ "url": elsewhere_url })),
        call(
            &net,
            "attack.tcp-connect",
            json!({"host": "127.0.0.1", "port": elsewhere.port}),
        ),
        call_limited(&spin, "attack.spin", json!(null), small),
        call_limited(&bomb, "attack.allocate", json!({"mib": 64}), small),
        call_limited(&deep, "attack.overflow", json!(null), small),
        call_limited(&output, "attack.stdout-flood", json!({"mib": 0}), small),
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    for (name, report) in [("absolute", &absolute), ("dot-dot", &dot_dot)] {
        let out = &report
            .outcome
            .as_ref()
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .value;
        for attempt in out.as_array().unwrap() {
            assert!(attempt["outcome"].get("err").is_some(), "{name}: {attempt}");
        }
        assert!(!out.to_string().contains(&secret));
    }
    let loot = &loot.outcome.as_ref().expect("hunt").value;
    let text = loot.to_string();
    assert!(!text.contains(&secret), "the secret leaked: {text}");
    assert!(text.contains("granted file"), "the hunt did run: {text}");
    assert!(!loot["failures"].as_array().unwrap().is_empty());
    let env = &env.outcome.as_ref().expect("lookup").value;
    assert!(
        env.as_array().unwrap().iter().all(|pair| pair[1].is_null()),
        "{env}"
    );
    let http = &http.outcome.as_ref().expect("http-get").value;
    assert!(
        http["err"]
            .as_str()
            .is_some_and(|m| m.contains("HTTP-request-denied")),
        "{http}"
    );
    assert!(tcp.outcome.as_ref().expect("tcp-connect").is_err);
    assert!(
        matches!(spun.outcome, Err(CallError::FuelExhausted { .. })),
        "{:?}",
        spun.outcome
    );
    assert!(
        matches!(bombed.outcome, Err(CallError::MemoryExceeded { .. })),
        "{:?}",
        bombed.outcome
    );
    assert!(
        matches!(deepest.outcome, Err(CallError::Trap { .. })),
        "{:?}",
        deepest.outcome
    );
    assert!(
        matches!(
            flooded.outcome,
            Err(CallError::OutputTooLarge {
                stream: "stdout",
                ..
            })
        ),
        "{:?}",
        flooded.outcome
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        elsewhere.accepted(),
        0,
        "something reached a port that was not granted"
    );

    // Every component still serves.
    still_serves(&escape, "attack.preopens", json!(null), json!(["/data"])).await;
    still_serves(&spin, "attack.spin-for", json!({"ms": 0}), json!(0)).await;
    still_serves(&bomb, "attack.allocate", json!({"mib": 1}), checksum(1)).await;
    still_serves(&deep, "attack.recurse", json!({"depth": 10}), json!(10)).await;
    let out = call_ok(
        &net,
        "attack.tcp-connect-raw",
        json!({"ip": "127.0.0.1", "port": granted_sink.port}),
    )
    .await;
    assert!(out["ok"].is_string(), "{out}");
    text_still_works().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_guest_does_not_hold_up_benign_calls() {
    let spin = Arc::new(load("hostile-loop", ""));
    let text = Arc::new(load("text", ""));
    // Warm up, so that the timing below measures calls rather than a first compilation.
    call_ok(&text, "text.word-count", json!({"text": "warm up"})).await;
    let timeout = Duration::from_secs(2);

    let started = Instant::now();
    let spinner = tokio::spawn({
        let spin = spin.clone();
        async move {
            let report =
                call_limited(&spin, "attack.spin", json!(null), timeout_only(timeout)).await;
            (report, started.elapsed())
        }
    });
    // Let the spin get going first.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let benign: Vec<_> = (0..20)
        .map(|i| {
            let text = text.clone();
            tokio::spawn(async move {
                let words = format!("benign call number {i}");
                let out = text
                    .call(engine(), "text.word-count", &json!({ "text": words }), None)
                    .await;
                (out.outcome.map(|o| o.value), started.elapsed())
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for task in benign {
        let (out, finished) = task.await.unwrap();
        let out = out.unwrap_or_else(|e| panic!("a benign call failed: {e}"));
        assert_eq!(out["words"], 4);
        slowest = slowest.max(finished);
    }
    let (report, spin_ended) = spinner.await.unwrap();
    assert!(
        matches!(report.outcome, Err(CallError::Timeout { .. })),
        "{:?}",
        report.outcome
    );
    assert!(spin_ended >= timeout && spin_ended < timeout + Duration::from_secs(1));
    assert!(
        slowest < Duration::from_secs(1),
        "benign calls waited for the spin: the last finished after {slowest:?}, the spin ended after {spin_ended:?}"
    );
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

// ---------------------------------------------------------------------------------------------------------------
// traps by the thousand
// ---------------------------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------------------------
// exfiltration through name lookups
// ---------------------------------------------------------------------------------------------------------------

/// What `hostile-dns-exfil` smuggles: about 140 bytes, five labels of hex.
const EXFIL_DATA: &str = "user=root;aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY;\
                          host=build-7;token=ghp_0123456789abcdefghijklmnopqrstuvwxyz";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_exfiltration_is_refused_before_any_query() {
    let server = TestServer::start().await;
    let rounds = 40;
    let args = |port: Option<u16>| {
        let mut args = json!({ "data": EXFIL_DATA, "domain": "exfil.invalid", "rounds": rounds });
        if let Some(port) = port {
            args["port"] = json!(port);
        }
        args
    };

    // No grant: name lookup and HTTP are not there at all.
    let bare = load("hostile-dns-exfil", "");
    for (function, key) in [
        ("attack.raw-lookups", "allow.sockets"),
        ("attack.std-lookups", "allow.sockets"),
        ("attack.http-lookups", "allow.http"),
    ] {
        let port = (function == "attack.http-lookups").then_some(server.port);
        let report = call(&bare, function, args(port)).await;
        let message = error(&report, function);
        assert!(
            matches!(report.outcome, Err(CallError::CapabilityDenied(_)))
                && message.contains("capability not granted")
                && message.contains(key),
            "{function}: {message}"
        );
    }

    // Granted one name and one origin: every smuggling name is refused, before any query (a query of a name
    // under `.invalid` would fail with `name-unresolvable`, never `access-denied`).
    let exfil = load(
        "hostile-dns-exfil",
        &format!(
            "sockets = [\"tcp://localhost:{port}\"]\nhttp = [{:?}]",
            server.origin(),
            port = server.port
        ),
    );
    let started = Instant::now();
    let raw = call_ok(&exfil, "attack.raw-lookups", args(None)).await;
    let names = raw["names"].as_u64().unwrap();
    assert_eq!(names, 5 * rounds);
    assert_eq!(raw["resolved"], 0, "{raw}");
    assert_eq!(
        raw["errors"],
        json!([["resolve-addresses: access-denied", names]]),
        "{raw}"
    );
    let rate = names as f64 / (raw["elapsed-us"].as_u64().unwrap().max(1) as f64 / 1e6);
    eprintln!("dns exfiltration: {names} names refused at {rate:.0} names/s");

    let std = call_ok(&exfil, "attack.std-lookups", args(None)).await;
    assert_eq!(
        (std["names"].as_u64(), std["resolved"].as_u64()),
        (Some(names), Some(0)),
        "{std}"
    );
    let errors = std["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "one kind of refusal: {std}");

    let http = call_ok(&exfil, "attack.http-lookups", args(Some(server.port))).await;
    assert_eq!(
        (http["names"].as_u64(), http["resolved"].as_u64()),
        (Some(names), Some(0)),
        "{http}"
    );
    let errors = http["errors"].as_array().unwrap();
    assert!(
        errors.len() == 1
            && errors[0][0]
                .as_str()
                .unwrap()
                .contains("HTTP-request-denied"),
        "the origin check comes before any lookup: {http}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // The component serves the next call (and is refused the same way), and so does the host.
    let again = call_ok(
        &exfil,
        "attack.raw-lookups",
        json!({"data": "x", "domain": "exfil.invalid", "rounds": 1}),
    )
    .await;
    assert_eq!(
        again["errors"],
        json!([["resolve-addresses: access-denied", 1]])
    );
    text_still_works().await;
}

// ---------------------------------------------------------------------------------------------------------------
// UDP floods and sprays
// ---------------------------------------------------------------------------------------------------------------

/// A UDP socket on 127.0.0.1 that counts the datagrams it receives.
struct UdpSink {
    port: u16,
    received: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl UdpSink {
    async fn start() -> UdpSink {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = received.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while socket.recv_from(&mut buf).await.is_ok() {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        UdpSink {
            port,
            received,
            task,
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn received(&self) -> usize {
        self.received.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for UdpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_floods_reach_only_the_granted_address() {
    let granted = UdpSink::start().await;
    let other = UdpSink::start().await;
    let flood = load(
        "hostile-udp-flood",
        &format!(r#"sockets = ["udp://{}"]"#, granted.addr()),
    );
    let p = granted.port;

    // At an address that is not granted: refused at the first datagram.
    let out = call_ok(
        &flood,
        "attack.flood",
        json!({"target": other.addr(), "count": 100_000, "size": 512}),
    )
    .await;
    assert_eq!(out, json!({"sent": 0, "error": "send: access-denied"}));

    // Everything but the granted address is refused: other ports, broadcast, multicast, the wildcard, IPv6
    // loopback, another loopback address.
    let targets = [
        other.addr(),
        format!("255.255.255.255:{p}"),
        format!("224.0.0.1:{p}"),
        format!("0.0.0.0:{p}"),
        format!("127.0.0.2:{p}"),
        format!("[::1]:{p}"),
        granted.addr(),
    ];
    let sprayed = call_ok(&flood, "attack.spray", json!({ "targets": targets })).await;
    for pair in sprayed.as_array().unwrap() {
        let (target, outcome) = (pair[0].as_str().unwrap(), &pair[1]);
        if target == granted.addr() {
            assert_eq!(outcome, &json!({"ok": "sent 1"}), "{sprayed}");
        } else {
            assert!(
                outcome.get("err").is_some(),
                "{target} was reached: {sprayed}"
            );
        }
    }

    // One batch alternating granted and not: only the granted datagram before the first refusal goes.
    let out = call_ok(
        &flood,
        "attack.mixed-batch",
        json!({"granted": granted.addr(), "other": other.addr(), "count": 32}),
    )
    .await;
    assert_eq!(out, json!({"sent": 1, "error": "send: access-denied"}));

    // A stream connected to the granted address cannot address a datagram elsewhere.
    let out = call_ok(
        &flood,
        "attack.redirect",
        json!({"granted": granted.addr(), "other": other.addr()}),
    )
    .await;
    assert!(out.get("err").is_some(), "{out}");

    // A flood at the granted address is allowed, and ends with the call's fuel.
    let started = Instant::now();
    let out = call_ok(
        &flood,
        "attack.flood",
        json!({"target": granted.addr(), "count": 2000, "size": 64}),
    )
    .await;
    assert_eq!(out, json!({"sent": 2000, "error": null}));
    eprintln!(
        "udp flood: 2000 datagrams sent in {:.2?}",
        started.elapsed()
    );
    let limits = Limits {
        fuel: Some(20_000_000),
        ..Limits::default()
    };
    let report = call_limited(
        &flood,
        "attack.flood",
        json!({"target": granted.addr(), "count": 0, "size": 64}),
        limits,
    )
    .await;
    assert!(
        matches!(report.outcome, Err(CallError::FuelExhausted { .. })),
        "{:?}",
        report.outcome
    );

    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        other.received(),
        0,
        "a datagram reached an address that was not granted"
    );
    assert!(granted.received() > 0);
    still_serves(
        &flood,
        "attack.spray",
        json!({ "targets": [granted.addr()] }),
        json!([[granted.addr(), {"ok": "sent 1"}]]),
    )
    .await;
}

// ---------------------------------------------------------------------------------------------------------------
// clocks and randomness
// ---------------------------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------------------------
// a symbolic link swapped during reads
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_swapped_during_reads_never_leads_out() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let dir = tempdir();
    let base = dir.path().to_path_buf();
    let secret = format!("ARE-PLANTED-SECRET-race-{}", std::process::id());
    std::fs::create_dir_all(base.join("data/inside")).unwrap();
    std::fs::create_dir_all(base.join("outside")).unwrap();
    std::fs::write(base.join("data/inside/secret.txt"), "inside").unwrap();
    std::fs::write(base.join("outside/secret.txt"), &secret).unwrap();
    // So that a listing of the outside differs from one of the inside.
    std::fs::write(base.join("outside/host-only.txt"), "host only").unwrap();
    std::os::unix::fs::symlink("inside", base.join("data/swap")).unwrap();
    let race = load_spec(spec(
        "hostile-symlink-race",
        r#"fs = [{ host = "data", guest = "/data" }]"#,
        &base,
    ));

    // Flip `data/swap` between `inside` and `../outside` as fast as rename allows, while the guest reads.
    let stop = Arc::new(AtomicBool::new(false));
    let flips = Arc::new(AtomicUsize::new(0));
    let flipper = std::thread::spawn({
        let (stop, flips, data) = (stop.clone(), flips.clone(), base.join("data"));
        move || {
            let mut n = 0usize;
            let tmp = data.join("swap.tmp");
            // Ends when told to, or when the directory is gone (the test failed and dropped it).
            while !stop.load(Ordering::Relaxed) {
                let target = ["../outside", "inside"][n % 2];
                let _ = std::fs::remove_file(&tmp);
                let flipped = std::os::unix::fs::symlink(target, &tmp)
                    .and_then(|()| std::fs::rename(&tmp, data.join("swap")));
                if flipped.is_err() {
                    break;
                }
                n += 1;
                flips.store(n, Ordering::Relaxed);
            }
        }
    });
    // The flipper takes a core: allow for a slow, busy machine.
    let slow = Limits {
        timeout: Duration::from_secs(60),
        fuel: None,
        ..Limits::default()
    };
    let read = call_limited(
        &race,
        "attack.read-file",
        json!({"path": "/data/swap/secret.txt", "rounds": 10_000}),
        slow,
    )
    .await;
    let listed = call_limited(
        &race,
        "attack.list-dir",
        json!({"path": "/data/swap", "rounds": 2_000}),
        slow,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    flipper.join().unwrap();
    let (reads, listings) = match (read.outcome, listed.outcome) {
        (Ok(read), Ok(listed)) => (read.value, listed.value),
        (read, listed) => panic!("the race calls failed: {read:?} {listed:?}"),
    };
    let flips = flips.load(Ordering::Relaxed);
    eprintln!("symlink race: {flips} flips; reads {reads}; listings {listings}");

    for (what, out, inside) in [
        ("read", &reads, "inside"),
        ("list", &listings, "secret.txt"),
    ] {
        let text = out.to_string();
        assert!(!text.contains(&secret), "{what}: the secret leaked: {text}");
        for pair in out["contents"].as_array().unwrap() {
            assert_eq!(
                pair[0], inside,
                "{what}: read something other than the inside: {text}"
            );
        }
        assert!(
            out["reads"].as_u64().unwrap() > 0,
            "{what}: never read the inside: {text}"
        );
    }
    assert!(flips > 100, "the link barely moved: {flips} flips");
    assert!(
        reads["failures"].as_u64().unwrap() > 0,
        "no read ever met the link pointing out, the race did not happen: {reads}"
    );
    // Each refusal is the host's: the link leads out of the mount.
    for out in [&reads, &listings] {
        for pair in out["errors"].as_array().unwrap() {
            let e = pair[0].as_str().unwrap();
            assert!(e.contains("not permitted"), "an unexpected error: {out}");
        }
    }

    // Settled on the inside, the same component reads it again.
    std::fs::remove_file(base.join("data/swap")).unwrap();
    std::os::unix::fs::symlink("inside", base.join("data/swap")).unwrap();
    still_serves(
        &race,
        "attack.read-file",
        json!({"path": "/data/swap/secret.txt", "rounds": 1}),
        json!({"reads": 1, "failures": 0, "contents": [["inside", 1]], "errors": []}),
    )
    .await;
}

// ---------------------------------------------------------------------------------------------------------------
// a hostile agent
// ---------------------------------------------------------------------------------------------------------------

/// An agent runtime for `agent-hostile` as `hostile`, `agent-probe` as `good`, the `text` tool, and the hostile
/// agent's own component served as the tool `reentry`.
fn hostile_agents(dir: &std::path::Path) -> are::agent::AgentRuntime {
    let wasm = |name: &str| are_tests::guest(name).wasm_path().display().to_string();
    let policy = format!(
        r#"
[component.text]
source = {text:?}

[component.reentry]
source = {hostile:?}

[agents]
hop_limit = 4
reply_timeout = "5s"

[agent.hostile]
source = {hostile:?}
message_budget = 10
idle_timeout = "60s"
allow.messaging = {{ send = ["hostile/*"], publish = ["storm"], subscribe = ["storm"] }}
allow.tools = ["text.word-count", "reentry.*"]
allow.memory = {{ quota = "64 KiB" }}
limits = {{ timeout = "2s" }}

[agent.good]
source = {probe:?}
allow.tools = ["text.word-count"]
"#,
        text = wasm("text"),
        hostile = wasm("agent-hostile"),
        probe = wasm("agent-probe"),
    );
    let path = dir.join("are.toml");
    std::fs::write(&path, policy).unwrap();
    let policy = are::policy::Policy::load(&path).expect("policy");
    are::agent::AgentRuntime::start(&policy, engine().clone(), &crate::common::cache())
        .expect("runtime")
}

/// Send `cmd` to agent `to` and wait for its reply, parsed as JSON (the handler's error as `Err`).
async fn ask_agent(rt: &are::agent::AgentRuntime, to: &str, cmd: Value) -> Result<Value, String> {
    let (_, reply) = rt.send(to, &cmd.to_string()).expect("send");
    let reply = reply.await.expect("reply")?;
    Ok(serde_json::from_str(&reply.unwrap_or_default()).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_agent_is_stopped_by_loop_checks_budgets_and_limits() {
    let dir = tempdir();
    let rt = hostile_agents(dir.path());
    // Warm both components.
    ask_agent(&rt, "hostile/warm", json!({"op": "noop"}))
        .await
        .unwrap();
    ask_agent(&rt, "good/warm", json!({"op": "echo", "text": "x"}))
        .await
        .unwrap();
    let started = Instant::now();

    // Benign work runs next to every attack below and must all succeed.
    let benign = {
        let rt = rt.clone();
        tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            for i in 0..20 {
                let asked = Instant::now();
                let reply = ask_agent(
                    &rt,
                    &format!("good/{}", i % 4),
                    json!({"op": "tool", "name": "text.word-count", "args": {"text": "one two three"}}),
                )
                .await
                .unwrap();
                assert_eq!(reply["ok"]["words"], 3, "{reply}");
                slowest = slowest.max(asked.elapsed());
            }
            slowest
        })
    };

    // Sending to itself: a loop, at once.
    let reply = ask_agent(&rt, "hostile/narcissus", json!({"op": "self"}))
        .await
        .unwrap();
    let e = reply["err"].as_str().unwrap_or_else(|| panic!("{reply}"));
    assert!(
        e.contains("LoopDetected") && e.contains("hostile/narcissus → hostile/narcissus"),
        "{e}"
    );

    // A → B → A: a loop, named.
    let reply = ask_agent(&rt, "hostile/a", json!({"op": "ping", "peer": "hostile/b"}))
        .await
        .unwrap();
    assert_eq!(reply["stopped_at"], "hostile/b", "{reply}");
    let e = reply["err"].as_str().unwrap();
    assert!(
        e.contains("LoopDetected") && e.contains("hostile/a → hostile/b → hostile/a"),
        "{e}"
    );

    // Recursing into fresh agents of its own type: the hop limit (4) stops it.
    let reply = ask_agent(&rt, "hostile/r", json!({"op": "recurse"}))
        .await
        .unwrap();
    assert_eq!(
        (reply["stopped_at"].as_str(), reply["hops"].as_u64()),
        (Some("hostile/r-r-r-r-r"), Some(4)),
        "{reply}"
    );
    let e = reply["err"].as_str().unwrap();
    assert!(
        e.contains("LoopDetected") && e.contains("hop limit reached") && e.contains("hop_limit"),
        "{e}"
    );

    // A flood: the message budget (10 per activation).
    let reply = ask_agent(
        &rt,
        "hostile/flood",
        json!({"op": "flood", "to": "hostile/sink", "n": 0}),
    )
    .await
    .unwrap();
    assert_eq!(reply["sent"], 10, "{reply}");
    assert!(
        reply["err"].as_str().unwrap().contains("BudgetExhausted"),
        "{reply}"
    );

    // Fan-out on a topic it subscribes to, three copies per copy: the budget and the hop limit end it.
    let reply = ask_agent(
        &rt,
        "hostile/fan",
        json!({"op": "fan-out", "topic": "storm", "n": 3}),
    )
    .await
    .unwrap();
    assert_eq!(reply["published"], 3, "{reply}");
    tokio::time::timeout(Duration::from_secs(20), rt.until_idle())
        .await
        .expect("the fan-out died down");
    let storm = rt
        .store()
        .messages(Some("hostile/storm"), 10_000)
        .unwrap()
        .into_iter()
        .filter(|m| m.message.recipient == "hostile/storm")
        .count();
    assert!(
        (3..=3 + 10).contains(&storm),
        "the fan-out amplified to {storm} messages; the budget allows 3 + 10"
    );

    // A storm of tool calls: the message's timeout (2s).
    let asked = Instant::now();
    let e = ask_agent(
        &rt,
        "hostile/tools",
        json!({"op": "tool-storm", "name": "text.word-count", "args": {"text": "a b"}, "n": 0}),
    )
    .await
    .unwrap_err();
    assert!(
        e.contains("timed out") && e.contains("limits.timeout"),
        "{e}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );

    // Its own component as a tool, hoping to call tools from inside a tool: a tool has no agent imports.
    let reply = ask_agent(
        &rt,
        "hostile/reentry",
        json!({"op": "tool-reentry", "name": "reentry.on-message"}),
    )
    .await
    .unwrap();
    let e = reply["err"].as_str().unwrap_or_else(|| panic!("{reply}"));
    assert!(
        e.contains("capability not granted") && e.contains("are:agent/tools"),
        "{e}"
    );

    // Hoarding persistent memory: the quota.
    let reply = ask_agent(&rt, "hostile/hoard", json!({"op": "hoard-memory"}))
        .await
        .unwrap();
    assert!(
        reply["stored"].as_u64().unwrap() <= 64 << 10
            && reply["err"].as_str().unwrap().contains("quota"),
        "{reply}"
    );

    let slowest = benign.await.expect("benign calls");
    assert!(
        slowest < Duration::from_secs(3),
        "a benign call took {slowest:?} next to the hostile agent"
    );
    assert!(started.elapsed() < Duration::from_secs(30));

    // Every hostile agent still answers.
    for id in [
        "hostile/narcissus",
        "hostile/a",
        "hostile/flood",
        "hostile/tools",
        "hostile/hoard",
    ] {
        assert_eq!(
            ask_agent(&rt, id, json!({"op": "noop"})).await.unwrap(),
            Value::Null,
            "{id}"
        );
    }
}

// ---------------------------------------------------------------------------------------------------------------
// hostile and benign calls through one host
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn benign_calls_succeed_amid_hostile_load() {
    let spin = Arc::new(load("hostile-loop", ""));
    let bomb = Arc::new(load("hostile-memory", ""));
    let storm = Arc::new(load("hostile-trap-storm", ""));
    let sleep = Arc::new(load("hostile-sleep", ""));
    let text = Arc::new(load("text", ""));
    call_ok(&text, "text.word-count", json!({"text": "warm up"})).await;
    let hostile_limits = Limits {
        fuel: Some(200_000_000),
        memory: 32 * MIB,
        timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let until = Instant::now() + Duration::from_secs(4);

    // Hostile callers, each repeating its attack until the time is up.
    let mut hostile = Vec::new();
    for (component, function, args) in [
        (spin.clone(), "attack.spin", json!(null)),
        (spin.clone(), "attack.churn", json!(null)),
        (bomb.clone(), "attack.allocate", json!({"mib": 256})),
        (bomb.clone(), "attack.bomb", json!(null)),
        (
            storm.clone(),
            "attack.trap",
            json!({"kind": "holding-handles"}),
        ),
        (
            storm.clone(),
            "attack.trap",
            json!({"kind": "stack-overflow"}),
        ),
        (sleep.clone(), "attack.sleep-forever", json!(null)),
    ] {
        hostile.push(tokio::spawn(async move {
            let mut calls = 0u32;
            while Instant::now() < until {
                let report = call_limited(&component, function, args.clone(), hostile_limits).await;
                // `bomb` returns how far it got (the limiter refuses the growth); the rest fail.
                if function != "attack.bomb" {
                    assert!(report.outcome.is_err(), "{function} succeeded");
                }
                calls += 1;
            }
            (function, calls)
        }));
    }

    // Benign callers: every call must succeed with the right answer, promptly.
    let mut benign = Vec::new();
    for caller in 0..4 {
        let text = text.clone();
        benign.push(tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            let mut calls = 0u32;
            while Instant::now() < until {
                let words = (0..=(calls % 7 + caller))
                    .map(|i| format!("w{i}"))
                    .collect::<Vec<_>>();
                let started = Instant::now();
                let report = text
                    .call(
                        engine(),
                        "text.word-count",
                        &json!({ "text": words.join(" ") }),
                        None,
                    )
                    .await;
                let out = report
                    .outcome
                    .unwrap_or_else(|e| panic!("a benign call failed: {e}"));
                assert_eq!(out.value["words"], words.len(), "{}", out.value);
                slowest = slowest.max(started.elapsed());
                calls += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (calls, slowest)
        }));
    }

    let mut attacks = Vec::new();
    for task in hostile {
        attacks.push(task.await.expect("a hostile caller panicked"));
    }
    let (mut calls, mut slowest) = (0, Duration::ZERO);
    for task in benign {
        let (n, s) = task.await.expect("a benign caller panicked");
        calls += n;
        slowest = slowest.max(s);
    }
    eprintln!("mixed load: {calls} benign calls, slowest {slowest:.2?}; hostile calls {attacks:?}");
    assert!(calls >= 20, "only {calls} benign calls in 4s");
    assert!(
        slowest < Duration::from_secs(2),
        "a benign call took {slowest:?} amid the hostile load"
    );
}

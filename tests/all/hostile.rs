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
    // Running the shadow stack off the bottom of linear memory traps too (an out-of-bounds access).
    let report = call(&deep, "attack.overflow-fat", json!(null)).await;
    match &report.outcome {
        Err(CallError::Trap { message }) => {
            assert!(message.contains("out of bounds"), "{message}");
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
        assert!(report.stats.result_bytes as u64 > MIB);
    }
    still_serves(
        &output,
        "attack.many-strings",
        json!({"count": 2}),
        json!(["s0", "s1"]),
    )
    .await;
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

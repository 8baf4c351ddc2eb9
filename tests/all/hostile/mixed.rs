//! Attacks together and next to benign calls: everything at once is contained, a spinning guest does not hold up
//! benign calls, and benign calls succeed amid hostile load.

use super::{MIB, checksum, still_serves, text_still_works, timeout_only};
use crate::common::{
    TcpSink, TestServer, call, call_limited, call_ok, engine, load, load_spec, spec, tempdir,
};
use are_policy::Limits;
use are_runtime::invoke::CallError;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

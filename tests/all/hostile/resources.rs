//! Memory, stack, tables and resource handles: each stops at its limit.

use super::{MIB, checksum, error, memory, still_serves, text_still_works};
use crate::common::{TestServer, call, call_limited, load, load_spec, spec, tempdir};
use are_policy::Limits;
use are_policy::common::fmt_bytes;
use are_runtime::invoke::CallError;
use are_runtime::sandbox::TABLE_ELEMENT_BYTES;
use serde_json::json;
use std::time::{Duration, Instant};

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

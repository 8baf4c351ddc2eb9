//! The server and its other tenants under pressure: result amplification stays within the call limits, and
//! descriptor hogs do not starve another tenant.

use super::{Serve, Transport, component, error_of, params, text_of};
use crate::common::{proc_status_bytes, tempdir, write_policy};
use serde_json::json;
use std::time::Instant;

/// Four concurrent calls whose results are a few MiB in linear memory but hundreds of MiB as host values and
/// JSON: each is refused as over `max_output` before the host builds it, and the server's peak RSS grows by no
/// more than a generous multiple of `limits.memory + 2 × max_output` per call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_amplification_stays_within_the_call_limits() {
    const MIB: u64 = 1 << 20;
    let (memory, max_output) = (16 * MIB, MIB);
    let policy = component(
        "amplify",
        "hostile-amplify",
        "limits.memory = \"16 MiB\"\nlimits.max_output = \"1 MiB\"",
    );
    let serve = Serve::for_policy(Transport::Http, &policy).await;
    let client = serve.connect().await;
    // Compile and run the component once, then measure from what the server holds now.
    assert_eq!(
        client.ok("amplify.bools", json!({"count": 2})).await,
        json!([true, true])
    );
    let pid = serve.pid();
    // Writing 5 to clear_refs resets the peak (VmHWM) to the current RSS (Linux 4.0+).
    let reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
    let baseline = proc_status_bytes(pid, if reset { "VmRSS" } else { "VmHWM" });
    let attacks = [
        ("amplify.records", json!({"count": 100_000})),
        ("amplify.flag-sets", json!({"count": 100_000})),
        ("amplify.bools", json!({"count": 3_000_000})),
        ("amplify.escapes", json!({"kib": 8192})),
    ];
    let started = Instant::now();
    for _round in 0..2 {
        let mut calls = tokio::task::JoinSet::new();
        for (name, args) in attacks.clone() {
            let peer = client.peer();
            calls.spawn(async move {
                let result = peer
                    .call_tool(params(name, args))
                    .await
                    .expect("tools/call");
                (name, error_of(name, &result))
            });
        }
        while let Some(done) = calls.join_next().await {
            let (name, message) = done.expect("join");
            for part in ["output limit exceeded", "1.0 MiB", "limits.max_output"] {
                assert!(message.contains(part), "{name}: {message:?} lacks {part:?}");
            }
        }
    }
    let elapsed = started.elapsed();
    let peak = proc_status_bytes(pid, "VmHWM");
    let grown = peak.saturating_sub(baseline);
    let per_call = memory + 2 * max_output;
    eprintln!(
        "result amplification: baseline {} MiB, peak {} MiB (+{} MiB; bound 4 × {} MiB × 2), {elapsed:?}",
        baseline / MIB,
        peak / MIB,
        grown / MIB,
        per_call / MIB
    );
    assert!(
        grown <= 4 * per_call * 2,
        "peak RSS grew by {} MiB under four amplification calls, over 4 × {} MiB × 2",
        grown / MIB,
        per_call / MIB
    );
    // The server still serves, the same component included.
    assert_eq!(
        client.ok("amplify.nones", json!({"count": 2})).await,
        json!([null, null])
    );
    client.close().await;
}

/// Session instances that hoard every descriptor they can get and keep them between calls, next to another
/// tenant reading a file, in a server allowed 512 descriptors: each hog stops at `limits.open_files` and
/// `limits.connections` with the WASI errors of a full descriptor table, and every call of the other tenant
/// succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descriptor_hogs_do_not_starve_other_tenants() {
    const NOFILE: u64 = 512;
    const HOGS: usize = 4;
    const VICTIM_CALLS: usize = 64;
    let dir = tempdir();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/notes.txt"), "the victim's notes").unwrap();
    let mount = r#"allow.fs = [{ host = "data", guest = "/data" }]"#;
    let policy = write_policy(
        dir.path(),
        &(component(
            "hog",
            "hostile-handles",
            &format!("mode = \"session\"\n{mount}\nallow.sockets = [\"127.0.0.1:9\"]"),
        ) + &component("files", "files", &format!("max_concurrency = 8\n{mount}"))),
    );
    let serve = Serve::http_with_nofile(&policy, NOFILE).await;
    let mut hogs = Vec::new();
    for _ in 0..HOGS {
        let hog = serve.connect().await;
        let sockets = hog
            .ok("hog.sockets", json!({"count": 0, "hold-ms": 0}))
            .await;
        let files = hog
            .ok(
                "hog.files",
                json!({"dir": "/data", "file": "notes.txt", "count": 0, "hold-ms": 0}),
            )
            .await;
        hogs.push((hog, sockets, files));
    }

    // Every hog now holds what it got, in its session instance, while the victim calls.
    let victim = serve.connect().await;
    let mut calls = tokio::task::JoinSet::new();
    for lane in 0..4 {
        let peer = victim.peer();
        calls.spawn(async move {
            let mut succeeded = 0;
            for _ in 0..VICTIM_CALLS / 4 {
                let read = params("files.read", json!({"path": "/data/notes.txt"}));
                match peer.call_tool(read).await {
                    Ok(result)
                        if result.is_error != Some(true)
                            && text_of(&result) == "the victim's notes" =>
                    {
                        succeeded += 1
                    }
                    Ok(result) => eprintln!("victim lane {lane}: {}", text_of(&result)),
                    Err(e) => eprintln!("victim lane {lane}: {e}"),
                }
            }
            succeeded
        });
    }
    let succeeded: usize = calls.join_all().await.into_iter().sum();
    eprintln!("victim calls next to {HOGS} descriptor hogs: {succeeded}/{VICTIM_CALLS} succeeded");
    assert_eq!(succeeded, VICTIM_CALLS, "stderr:\n{}", serve.stderr());

    for (hog, sockets, files) in hogs {
        assert_eq!(
            sockets,
            json!({"held": 16, "refused": "new-socket-limit"}),
            "limits.connections"
        );
        assert_eq!(
            files,
            json!({"held": 64, "refused": "insufficient-memory"}),
            "limits.open_files"
        );
        // The instance still holds them: the next open is refused at once.
        let again = hog
            .ok(
                "hog.files",
                json!({"dir": "/data", "file": "notes.txt", "count": 1, "hold-ms": 0}),
            )
            .await;
        assert_eq!(again, json!({"held": 0, "refused": "insufficient-memory"}));
        hog.close().await;
    }
    victim.close().await;
}

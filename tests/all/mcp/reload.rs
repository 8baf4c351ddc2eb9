//! `are serve --watch`: a changed policy or component file is reloaded, a broken one is not, and memory limits
//! stay within the instance pool.

use super::{Serve, Transport, component, replace_file};
use crate::common::{tempdir, write_policy};
use rmcp::model::ErrorCode;
use serde_json::json;

over_both_transports!(
    hot_reload_adds_changes_and_removes_tools,
    hot_reload_keeps_memory_limits_within_the_pool,
);

async fn hot_reload_adds_changes_and_removes_tools(transport: Transport) {
    let dir = tempdir();
    let text_only = component("text", "text", "");
    let with_extra = format!("{text_only}\n[component.extra]\nsource = \"extra.wasm\"\n");
    let policy = write_policy(dir.path(), &text_only);
    let extra = dir.path().join("extra.wasm");
    replace_file(&extra, &are_tests::guest("kv").bytes());
    let serve = Serve::with_args(transport, &policy, &["--watch"], None).await;
    let mut client = serve.connect().await;
    let text_tools = client.names().await;
    assert!(text_tools.iter().all(|n| n.starts_with("text__")));

    // Add a component to the policy.
    replace_file(&policy, with_extra.as_bytes());
    client.wait_list_changed().await;
    let names = client.names().await;
    assert!(names.contains(&"extra__set".to_string()), "{names:?}");
    assert_eq!(
        client
            .ok("extra.set", json!({"key": "k", "value": "v"}))
            .await,
        1
    );

    // Change its file: another component's tools replace its own.
    replace_file(&extra, &are_tests::guest("hash").bytes());
    client.wait_list_changed().await;
    let names = client.names().await;
    assert!(
        names.contains(&"extra__sha256-hex".to_string()),
        "{names:?}"
    );
    assert!(!names.contains(&"extra__set".to_string()), "{names:?}");
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(
        client.ok("extra.sha256-hex", json!({"text": "abc"})).await,
        abc
    );

    // A broken file: the old version keeps serving, and the server says why.
    replace_file(&extra, b"this is not a component");
    serve
        .wait_for_stderr("cannot reload, still serving the previous version")
        .await;
    assert_eq!(client.names().await, names);
    assert_eq!(
        client.ok("extra.sha256-hex", json!({"text": "abc"})).await,
        abc
    );
    // So does a broken policy.
    replace_file(&policy, b"[component.extra\n");
    serve
        .wait_for_stderr("policy changed but is not valid")
        .await;
    assert_eq!(client.names().await, names);

    // Remove the component.
    replace_file(&policy, text_only.as_bytes());
    client.wait_list_changed().await;
    assert_eq!(client.names().await, text_tools);
    let gone = client
        .protocol_error("extra.sha256-hex", json!({"text": "abc"}))
        .await;
    assert_eq!(gone.code, ErrorCode::INVALID_PARAMS);
    client.close().await;
}

async fn hot_reload_keeps_memory_limits_within_the_pool(transport: Transport) {
    let dir = tempdir();
    let base = component("memory", "hostile-memory", "");
    // Started with the default limit of 64 MiB, so instance slots hold 64 MiB.
    let policy = write_policy(dir.path(), &base);
    let serve = Serve::with_args(transport, &policy, &["--watch"], None).await;
    let mut client = serve.connect().await;
    let message = client
        .tool_error("memory.allocate", json!({"mib": 100}))
        .await;
    assert!(message.contains("over its limit of 64.0 MiB"), "{message}");
    // More than a slot holds needs a restart: the old version keeps serving, and the server says why.
    replace_file(
        &policy,
        format!("{base}limits.memory = \"256 MiB\"\n").as_bytes(),
    );
    serve
        .wait_for_stderr("limits.memory of 256.0 MiB is more than the 64.0 MiB")
        .await;
    let message = client
        .tool_error("memory.allocate", json!({"mib": 100}))
        .await;
    assert!(message.contains("over its limit of 64.0 MiB"), "{message}");
    // Less is applied.
    replace_file(
        &policy,
        format!("{base}limits.memory = \"32 MiB\"\n").as_bytes(),
    );
    client.wait_list_changed().await;
    let message = client
        .tool_error("memory.allocate", json!({"mib": 40}))
        .await;
    assert!(message.contains("over its limit of 32.0 MiB"), "{message}");
    assert!(
        client
            .ok("memory.allocate", json!({"mib": 20}))
            .await
            .is_u64()
    );
    client.close().await;
}

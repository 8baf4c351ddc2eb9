//! Deny by default, one capability at a time: what each `allow.*` grant lets a guest reach, and that nothing
//! else is reachable (issue point 7).
//!
//! Every test loads a real guest from `example-tools/` with a grant written as TOML and checks what the guest
//! could and could not do, from both sides: the guest's own report and what arrived on the host. The tests are in
//! submodules, one a capability; ungranted imports in general are here.

use crate::common::{call_err, call_ok, load};
use are_runtime::invoke::CallError;
use serde_json::{Value, json};

mod env;
mod fs;
mod http;
mod sockets;
mod stdio;

/// A string that exists only on the host side of a test, so that finding it in a guest's output proves a leak.
fn planted_secret(what: &str) -> String {
    format!("ARE-PLANTED-SECRET-{what}-{}", std::process::id())
}

/// The first line of the host's `/etc/passwd`, if it has one: no attack may ever return it.
fn host_passwd_line() -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines()
        .next()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
}

/// Assert that every attempt in a list of `hostile-fs-escape` attempts was contained (`err`), and that none of
/// `secrets` (nor the host's `/etc/passwd`) appears anywhere in `output`.
fn assert_contained(attempts: &Value, output: &Value, secrets: &[&str]) {
    let attempts = attempts.as_array().expect("a list of attempts");
    assert!(!attempts.is_empty(), "the attack made no attempt: {output}");
    for attempt in attempts {
        let outcome = &attempt["outcome"];
        assert!(
            outcome.get("err").is_some() && outcome.get("ok").is_none(),
            "an escape worked: {attempt}"
        );
    }
    let text = output.to_string();
    for secret in secrets {
        assert!(!text.contains(secret), "`{secret}` leaked into {text}");
    }
    if let Some(line) = host_passwd_line() {
        assert!(!text.contains(&line), "/etc/passwd leaked into {text}");
    }
}

#[tokio::test]
async fn ungranted_imports_fail_only_at_the_call_that_reaches_them() {
    use are_policy::CapabilityKind;
    // `hostile-net` imports http and sockets; with nothing granted it still loads.
    let net = load("hostile-net", "");
    let capabilities = net.description.capabilities();
    assert!(
        capabilities.contains(&CapabilityKind::Http)
            && capabilities.contains(&CapabilityKind::Sockets),
        "{capabilities:?}"
    );
    // A path that stops before any import runs normally and returns the guest's own error.
    let out = call_ok(
        &net,
        "attack.tcp-connect-raw",
        json!({"ip": "not-an-ip", "port": 1}),
    )
    .await;
    assert!(
        out["err"]
            .as_str()
            .is_some_and(|m| m.contains("is not an IP address")),
        "{out}"
    );
    // The same function, reaching the import, fails with a denial naming it.
    let err = call_err(
        &net,
        "attack.tcp-connect-raw",
        json!({"ip": "127.0.0.1", "port": 1}),
    )
    .await;
    assert!(matches!(err, CallError::CapabilityDenied(_)), "{err:?}");
    let err = call_err(
        &net,
        "attack.http-get",
        json!({"url": "http://127.0.0.1:1/"}),
    )
    .await;
    let CallError::CapabilityDenied(denied) = &err else {
        panic!("expected CapabilityDenied, got {err:?}");
    };
    assert!(denied.import.starts_with("wasi:http/"), "{denied:?}");

    // `fetch` loads without an http grant: only the call that reaches wasi:http fails, and the component keeps
    // serving (here: another call that fails in the guest before it reaches the import).
    let fetch = load("fetch", "");
    let out = call_ok(&fetch, "fetch.get", json!({"url": "not a url"})).await;
    assert!(out["err"].is_string(), "{out}");
    let err = call_err(&fetch, "fetch.get", json!({"url": "http://127.0.0.1:1/"})).await;
    assert!(matches!(err, CallError::CapabilityDenied(_)), "{err:?}");
    let out = call_ok(&fetch, "fetch.get", json!({"url": "not a url"})).await;
    assert!(out["err"].is_string(), "{out}");
}

//! `allow.env` and `args`: only granted variables and the policy's arguments reach the guest, never the host
//! process's environment.

use super::planted_secret;
use crate::common::{Output, are, call_ok, load, load_spec, output, spec, tempdir, write_policy};
use serde_json::json;

#[tokio::test]
async fn env_only_granted_variables_are_visible() {
    let snoop = load(
        "hostile-env-snoop",
        r#"env = { GRANTED = "granted-value", OTHER = "" }"#,
    );
    let granted = json!([["GRANTED", "granted-value"], ["OTHER", ""]]);
    assert_eq!(
        call_ok(&snoop, "attack.raw-vars", json!(null)).await,
        granted
    );
    assert_eq!(call_ok(&snoop, "attack.vars", json!(null)).await, granted);
    // The test process has these; the guest must not.
    assert!(std::env::var_os("PATH").is_some());
    let found = call_ok(
        &snoop,
        "attack.lookup",
        json!({"extra": ["CARGO_MANIFEST_DIR", "GRANTED", "CARGO"]}),
    )
    .await;
    for pair in found.as_array().unwrap() {
        let (name, value) = (pair[0].as_str().unwrap(), &pair[1]);
        match name {
            "GRANTED" => assert_eq!(value, "granted-value"),
            _ => assert!(value.is_null(), "{name} leaked: {value}"),
        }
    }
    assert!(found.as_array().unwrap().len() > 20, "{found}");
    // No grant, no environment.
    let bare = load("hostile-env-snoop", "");
    assert_eq!(
        call_ok(&bare, "attack.raw-vars", json!(null)).await,
        json!([])
    );
    assert_eq!(call_ok(&bare, "attack.vars", json!(null)).await, json!([]));
}

#[tokio::test]
async fn env_args_come_only_from_the_policy() {
    let dir = tempdir();
    let mut with_args = spec("hostile-env-snoop", "", dir.path());
    with_args.args = vec!["tool-name".into(), "--from-policy".into()];
    let snoop = load_spec(with_args);
    // Through `std` and then through `wasi:cli/environment`: the same two arguments each time.
    assert_eq!(
        call_ok(&snoop, "attack.args", json!(null)).await,
        json!(["tool-name", "--from-policy", "tool-name", "--from-policy"])
    );
    assert_eq!(
        call_ok(&snoop, "attack.cwd", json!(null)).await,
        json!(null)
    );
    let bare = load("hostile-env-snoop", "");
    assert_eq!(call_ok(&bare, "attack.args", json!(null)).await, json!([]));
}

/// Run the `are` binary with an extra environment variable set.
fn run_with_env(args: &[&str], var: (&str, &str)) -> Output {
    output(are().env(var.0, var.1).args(args))
}

#[test]
fn env_of_the_host_process_never_reaches_the_guest() {
    let dir = tempdir();
    let secret = planted_secret("env");
    let policy = write_policy(
        dir.path(),
        &format!(
            "[component.snoop]\nsource = '{}'\nargs = [\"snoop\", \"--policy-arg\"]\nallow.env = {{ GRANTED = \"granted-value\" }}\n",
            are_tests::guest("hostile-env-snoop").wasm
        ),
    );
    let policy = policy.to_str().unwrap();
    let var = ("ARE_TEST_PLANTED_SECRET", secret.as_str());

    let out = run_with_env(
        &["call", "snoop", "attack.raw-vars", "--policy", policy],
        var,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.json(), json!([["GRANTED", "granted-value"]]));

    let out = run_with_env(
        &[
            "call",
            "snoop",
            "attack.lookup",
            r#"{"extra": ["ARE_TEST_PLANTED_SECRET", "ARE_CACHE_DIR"]}"#,
            "--policy",
            policy,
        ],
        var,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for pair in out.json().as_array().unwrap() {
        if pair[0] != "GRANTED" {
            assert!(pair[1].is_null(), "{pair} leaked");
        }
    }
    assert!(!out.stdout.contains(&secret) && !out.stderr.contains(&secret));

    // Arguments are the policy's, never the host's command line.
    let out = run_with_env(&["call", "snoop", "attack.args", "--policy", policy], var);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.json(),
        json!(["snoop", "--policy-arg", "snoop", "--policy-arg"])
    );
}

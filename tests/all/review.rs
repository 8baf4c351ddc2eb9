//! Grant reports: `are inspect COMPONENT --policy` and `are policy review`, human and JSON, and the
//! `--deny-overgrant` gate a CI pipeline uses.

use crate::common::{Output, run, tempdir};
use serde_json::Value;
use std::path::Path;

/// The exit code of `--deny-overgrant` when an over-grant was found.
const OVERGRANT: i32 = 3;

fn guest(name: &str) -> &'static str {
    are_tests::guest(name).wasm
}

/// A policy where `fetch` is granted exactly what it imports, `text` gets HTTP and sockets it never imports,
/// and `net` is granted nothing although it imports HTTP and sockets.
fn write_policy(dir: &Path, exact_only: bool) -> String {
    let mut body = format!(
        "[component.fetch]\nsource = {:?}\nallow.http = [\"http://127.0.0.1:9\"]\n\n",
        guest("fetch")
    );
    if !exact_only {
        body.push_str(&format!(
            "[component.text]\nsource = {:?}\nallow.http = [\"https://api.example.com\"]\nallow.sockets = [\"tcp://127.0.0.1:9\"]\n\n\
             [component.net]\nsource = {:?}\n",
            guest("text"),
            guest("hostile-net")
        ));
    }
    let path = crate::common::write_policy(dir, &body);
    path.to_string_lossy().into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", out.stdout, out.stderr))
}

fn entry<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no entry {name} in {doc}"))
}

#[test]
fn review_lists_needed_granted_denied_and_over_granted_per_capability() {
    let dir = tempdir();
    let policy = write_policy(dir.path(), false);
    let out = run(&["policy", "review", &policy]);
    assert_eq!(
        out.code,
        Some(0),
        "without the gate a report is a success: {}",
        out.stderr
    );
    let text = &out.stdout;
    assert!(
        text.contains("component `fetch`") && text.contains("✓ http"),
        "{text}"
    );
    assert!(
        text.contains("∅ env "),
        "an ungranted environment is empty, not denied: {text}"
    );
    assert!(
        text.contains("! http") && text.contains("remove allow.http"),
        "text's unused HTTP grant is an over-grant: {text}"
    );
    assert!(text.contains("! sockets"), "{text}");
    assert!(
        text.contains("✗ http") && text.contains("✗ sockets"),
        "net's ungranted imports will be denied: {text}"
    );

    let doc = json(&run(&["policy", "review", &policy, "--json"]));
    assert_eq!(doc["over_grant"], true);
    let fetch = entry(&doc, "fetch");
    assert_eq!(fetch["over_granted"], Value::Array(vec![]));
    assert!(
        fetch["not_granted"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["effect"] == "empty"),
        "{fetch}"
    );
    let http = fetch["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["capability"] == "http")
        .expect("fetch's http row");
    assert_eq!(
        (&http["needed"], &http["granted"], &http["status"]),
        (
            &Value::Bool(true),
            &Value::Bool(true),
            &Value::from("granted")
        )
    );
    let text_keys: Vec<&str> = entry(&doc, "text")["over_granted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["policy_key"].as_str().unwrap())
        .collect();
    assert_eq!(text_keys, ["allow.http", "allow.sockets"]);
    let net = entry(&doc, "net");
    let denied: Vec<(&str, &str)> = net["not_granted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["policy_key"].as_str().unwrap(),
                n["effect"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(denied.contains(&("allow.http", "denied")), "{denied:?}");
    assert!(denied.contains(&("allow.sockets", "denied")), "{denied:?}");
}

#[test]
fn deny_overgrant_gates_on_over_grants_only() {
    let dir = tempdir();
    let policy = write_policy(dir.path(), false);
    let out = run(&["policy", "review", &policy, "--deny-overgrant"]);
    assert_eq!(out.code, Some(OVERGRANT), "{}\n{}", out.stdout, out.stderr);
    let out = run(&["inspect", "text", "--policy", &policy, "--deny-overgrant"]);
    assert_eq!(out.code, Some(OVERGRANT), "{}\n{}", out.stdout, out.stderr);
    // Denied imports are a finding, not an over-grant: the gate lets them through.
    let out = run(&["inspect", "net", "--policy", &policy, "--deny-overgrant"]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);

    let exact = tempdir();
    let policy = write_policy(exact.path(), true);
    let out = run(&["policy", "review", &policy, "--deny-overgrant"]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("no over-grant"), "{}", out.stdout);
}

#[test]
fn inspect_with_a_policy_adds_the_grant_report_to_its_json() {
    let dir = tempdir();
    let policy = write_policy(dir.path(), false);
    // By name from the policy, and by file path (the entry whose source is that file).
    for component in ["text", guest("text")] {
        let doc = json(&run(&["inspect", component, "--policy", &policy, "--json"]));
        let report = &doc["grant_report"];
        assert_eq!(report["name"], "text", "{report}");
        let over: Vec<&str> = report["over_granted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["policy_key"].as_str().unwrap())
            .collect();
        assert_eq!(over, ["allow.http", "allow.sockets"]);
        assert!(doc["tools"].is_array(), "the usual inspect output stays");
    }
    // A policy that does not name the component grants it nothing: every grant-needing import is reported.
    let other = tempdir();
    let empty = crate::common::write_policy(other.path(), "");
    let doc = json(&run(&[
        "inspect",
        guest("hostile-net"),
        "--policy",
        &empty.to_string_lossy(),
        "--json",
    ]));
    let keys: Vec<&str> = doc["grant_report"]["not_granted"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["policy_key"].as_str())
        .collect();
    assert!(
        keys.contains(&"allow.http") && keys.contains(&"allow.sockets"),
        "{keys:?}"
    );
}

#[test]
fn review_of_a_broken_entry_names_it_and_fails() {
    let dir = tempdir();
    let path =
        crate::common::write_policy(dir.path(), "[component.gone]\nsource = \"missing.wasm\"\n");
    let out = run(&["policy", "review", &path.to_string_lossy()]);
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("gone") && all.contains("missing.wasm"),
        "{all}"
    );
}

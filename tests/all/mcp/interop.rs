//! `are serve` driven by clients other than rmcp's: the official Python SDK (`mcp`, pinned in
//! `tests/interop/requirements.txt`) over both transports and both revisions, and the official conformance suite
//! (`@modelcontextprotocol/conformance`, pinned in `tests/interop/package-lock.json`) for both revisions. Both are
//! installed by `scripts/test`, which says where in `ARE_INTEROP_PYTHON`, `ARE_INTEROP_CLIENT` and
//! `ARE_CONFORMANCE`. Without them a test skips, saying so; under `CI=true` it fails.

use super::{Serve, Transport, component, replace_file};
use crate::common::{are, tempdir, write_policy};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The tool `var` names, or `None` (after saying why) when it is not installed and this is not CI.
fn installed(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(path) if Path::new(&path).exists() => Some(PathBuf::from(path)),
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| matches!(v.as_str(), "true" | "1" | "yes"));
            assert!(
                !ci,
                "{var} is not set or does not exist: run the tests with scripts/test, which installs it"
            );
            eprintln!("skipped: {var} is not set; scripts/test installs the MCP interop tools");
            None
        }
    }
}

/// The policy the clients see first: `text` (which may run as a task), then with `hash` added.
fn policies() -> (String, String) {
    let text = component("text", "text", "task = \"allowed\"");
    let more = format!("{text}{}", component("hash", "hash", ""));
    (text, more)
}

/// Run the Python client with `mode` against `target` (`stdio -- COMMAND…` or `http URL`); change `policy` to
/// `more` when it is ready for the reload; its JSON lines.
async fn python_client(mode: &str, target: &[String], policy: &Path, more: &str) -> Vec<Value> {
    let (Some(python), Some(client)) = (
        installed("ARE_INTEROP_PYTHON"),
        installed("ARE_INTEROP_CLIENT"),
    ) else {
        return Vec::new();
    };
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(client).args(["--mode", mode, "--list"]);
    cmd.args(["--call", "text__word-count", r#"{"text": "hi there"}"#]);
    cmd.args([
        "--call-fail",
        "text__find",
        r#"{"pattern": "(", "text": "x"}"#,
    ]);
    cmd.args(["--call-fail", "no__such-tool", "{}"]);
    if mode != "legacy" {
        cmd.args(["--task", "text__word-count", r#"{"text": "one two three"}"#]);
    }
    cmd.args(["--wait-list-changed", "20"]).args(target);
    // The client passes its environment to a stdio server: give it the test cache's.
    let env = are();
    for (key, value) in env.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the Python client");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut steps = Vec::new();
    let read_all = async {
        while let Some(line) = lines.next_line().await.expect("read") {
            let step: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            if step["step"] == "ready-for-reload" {
                replace_file(policy, more.as_bytes());
            }
            steps.push(step);
        }
    };
    tokio::time::timeout(Duration::from_secs(120), read_all)
        .await
        .expect("the Python client finishes");
    let status = child.wait().await.expect("wait");
    assert!(status.success(), "the Python client failed: {steps:#?}");
    steps
}

/// The step named `name`.
fn step<'a>(steps: &'a [Value], name: &str) -> &'a Value {
    steps
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {steps:#?}"))
}

/// What every run must show, whatever the transport and revision.
fn check(steps: &[Value], revision: &str) {
    if steps.is_empty() {
        return;
    }
    let init = step(steps, "initialize");
    assert_eq!(init["protocolVersion"], revision, "{init}");
    let tools = step(steps, "list-tools")["tools"].to_string();
    assert!(tools.contains("text__word-count"), "{tools}");
    let call = step(steps, "call");
    assert_eq!(call["isError"], false, "{call}");
    assert_eq!(call["structuredContent"]["result"]["words"], 2, "{call}");
    let failures: Vec<&Value> = steps.iter().filter(|s| s["step"] == "call-fail").collect();
    assert_eq!(failures[0]["isError"], true, "a tool error: {failures:?}");
    assert!(
        failures[0]["text"].as_str().is_some_and(|t| !t.is_empty()),
        "{failures:?}"
    );
    assert_eq!(
        failures[1]["error"]["code"], -32602,
        "an unknown tool: {failures:?}"
    );
    if revision != "2025-11-25" {
        let task = step(steps, "task");
        assert_eq!(task["status"], "completed", "{task}");
        assert_eq!(task["structuredContent"]["result"]["words"], 3, "{task}");
    }
    let changed = step(steps, "list-changed");
    assert_eq!(changed["received"], true, "{changed}");
    let after = step(steps, "list-tools-after-reload")["tools"].to_string();
    assert!(after.contains("hash__sha256"), "{after}");
    assert_eq!(step(steps, "done")["ok"], true);
}

/// `are serve --watch` over stdio, started by the Python client, at `revision`.
async fn python_over_stdio(mode: &str, revision: &str) {
    let dir = tempdir();
    let (text, more) = policies();
    let policy = write_policy(dir.path(), &text);
    let target = [
        "stdio".to_string(),
        "--".to_string(),
        env!("CARGO_BIN_EXE_are").to_string(),
        "serve".to_string(),
        "--policy".to_string(),
        policy.display().to_string(),
        "--watch".to_string(),
    ];
    check(
        &python_client(mode, &target, &policy, &more).await,
        revision,
    );
}

/// `are serve --http --watch`, with the Python client connecting by URL, at `revision`.
async fn python_over_http(mode: &str, revision: &str) {
    let dir = tempdir();
    let (text, more) = policies();
    let policy = write_policy(dir.path(), &text);
    let serve = Serve::with_args(Transport::Http, &policy, &["--watch"], None).await;
    let target = ["http".to_string(), format!("http://{}/mcp", serve.addr())];
    check(
        &python_client(mode, &target, &policy, &more).await,
        revision,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_stdio_at_2025_11_25() {
    python_over_stdio("legacy", "2025-11-25").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_stdio_at_2026_07_28() {
    python_over_stdio("auto", "2026-07-28").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_http_at_2025_11_25() {
    python_over_http("legacy", "2025-11-25").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_http_at_2026_07_28() {
    python_over_http("auto", "2026-07-28").await;
}

/// The conformance suite's server scenarios at `revision`, against `are serve --http`: every failure must be one
/// listed in `tests/interop/conformance-baseline-REVISION.yml` (scenarios that need the suite's own fixture tools,
/// prompts or resources), and every listed one must still fail.
async fn conformance(revision: &str) {
    let Some(suite) = installed("ARE_CONFORMANCE") else {
        return;
    };
    let policy = component("text", "text", "task = \"allowed\"")
        + &component("json", "json", "")
        + &component("panic", "hostile-panic", "");
    let serve = Serve::for_policy(Transport::Http, &policy).await;
    let baseline = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/interop")
        .join(format!("conformance-baseline-{revision}.yml"));
    let results = tempdir();
    let output = tokio::process::Command::new(suite)
        .args(["server", "--url", &format!("http://{}/mcp", serve.addr())])
        .args(["--requirements", revision, "--expected-failures"])
        .arg(&baseline)
        .arg("-o")
        .arg(results.path())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), output)
        .await
        .expect("the conformance suite finishes")
        .expect("run the conformance suite");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "conformance {revision}: a failure not in {} (or one listed there passes now):\n{stdout}\n{}",
        baseline.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_at_2025_11_25() {
    conformance("2025-11-25").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_at_2026_07_28() {
    conformance("2026-07-28").await;
}

//! The example agents of the README and the demo (coordinator, researcher, writer) as a pipeline through
//! `are run`, against the built-in scripted model and a local server the fetch tool reads.

use crate::common::{TestServer, run, tempdir, write_policy};
use serde_json::Value;

fn guest(name: &str) -> &'static str {
    are_tests::guest(name).wasm
}

#[tokio::test(flavor = "multi_thread")]
async fn coordinator_fans_out_to_researchers_and_gathers_a_report() {
    let server = TestServer::start().await;
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        &format!(
            r#"
[component.fetch]
source = {fetch:?}
allow.http = ["{origin}"]

[agent.coordinator]
source = {coordinator:?}
allow.messaging = {{ publish = ["tasks"], send = ["writer/*"] }}
allow.memory = {{ quota = "1 MiB" }}

[agent.researcher]
source = {researcher:?}
allow.tools = ["fetch.get"]
allow.llm = {{ model = "default", max_turns = 4 }}
allow.messaging = {{ subscribe = ["tasks"], send = ["coordinator/*"] }}

[agent.writer]
source = {writer:?}
allow.llm = {{ model = "default", max_turns = 1 }}
"#,
            fetch = guest("fetch"),
            coordinator = guest("agent-coordinator"),
            researcher = guest("agent-researcher"),
            writer = guest("agent-writer"),
            origin = server.origin(),
        ),
    );
    let config = policy.to_string_lossy().into_owned();
    let (a, b) = (server.url("/hello"), server.url("/bytes?n=3"));
    let job = serde_json::json!({"topic": "wasm safety", "sources": [a, b, a]}).to_string();
    let args: Vec<String> = [
        "run",
        "--config",
        &config,
        "--send",
        "coordinator/job-1",
        &job,
        "--until-idle",
        "--json",
    ]
    .map(String::from)
    .into();
    // The test server runs on this runtime: wait for the child on a blocking thread.
    let out = tokio::task::spawn_blocking(move || {
        run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap();
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("scripted model"),
        "says plainly that no real model is used: {}",
        out.stderr
    );
    let reply: Value = serde_json::from_str(out.stdout.lines().next().unwrap()).unwrap();
    let reply: Value = serde_json::from_str(reply["reply"].as_str().unwrap()).unwrap();
    assert_eq!(
        reply,
        serde_json::json!({"job": "job-1", "tasks": 2}),
        "duplicate sources count once"
    );

    let memory = run(&[
        "agents",
        "memory",
        "coordinator/job-1",
        "--config",
        &config,
        "--json",
    ]);
    assert_eq!(memory.code, Some(0), "{}", memory.stderr);
    let memory: Value = serde_json::from_str(&memory.stdout).unwrap();
    let report = memory["report/job-1"].as_str().expect("a report is stored");
    assert!(
        report.contains("hello from the test server") && report.contains("xxx"),
        "the report carries what the researchers fetched through the tool: {report}"
    );
    let state: Value = serde_json::from_str(memory["job/job-1"].as_str().unwrap()).unwrap();
    assert_eq!(state["findings"].as_object().unwrap().len(), 2);

    let list = run(&["agents", "list", "--config", &config]);
    for agent in ["coordinator/job-1", "researcher/tasks", "writer/job-1"] {
        assert!(list.stdout.contains(agent), "{}", list.stdout);
    }
}

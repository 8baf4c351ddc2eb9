//! `are agents` and `are run`: listing, showing and reading memory; refusing policies without agents, unknown
//! targets and payloads over `max_payload`.

use super::write_policy;
use crate::common::{run, tempdir};
use serde_json::{Value, json};

#[test]
fn are_agents_lists_shows_and_reads_memory() {
    let dir = tempdir();
    let config = write_policy(
        dir.path(),
        r#"
[agent.probe]
source = "{probe}"
allow.memory = { quota = "1 KiB" }
"#,
    );
    let config = config.display().to_string();
    let out = run(&["agents", "list", "--config", &config]);
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("no agent store"), "{}", out.stderr);

    let remember = json!({"op": "remember", "key": "greeting", "value": "hello"}).to_string();
    let echo = json!({"op": "echo", "text": "hi"}).to_string();
    let out = run(&[
        "run",
        "--config",
        &config,
        "--send",
        "probe/a",
        &remember,
        "--send",
        "probe/b",
        &echo,
        "--until-idle",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "probe/a: {\"ok\":null}\nprobe/b: \"hi\"\n");

    let out = run(&["agents", "list", "--config", &config]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["agent", "activations", "handled", "pending", "memory"]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["probe/a", "1", "1", "0", "13"]
    );
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["probe/b", "1", "1", "0", "0"]
    );
    let list = run(&["agents", "list", "--config", &config, "--json"]).json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["id"], "probe/a");
    assert_eq!(list[0]["activations"], 1);
    assert_eq!(list[0]["handled"], 1);
    assert_eq!(list[0]["pending"], 0);
    assert_eq!(list[0]["memory_bytes"], 13);

    let out = run(&["agents", "show", "probe/a", "--config", &config]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("probe/a: 1 activations, 1 handled, 0 pending, 13 bytes of memory\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("in  done")
            && out
                .stdout
                .contains("external → probe/a: {\"op\":\"remember\""),
        "{}",
        out.stdout
    );
    let show = run(&["agents", "show", "probe/a", "--config", &config, "--json"]).json();
    assert_eq!(show["agent"]["id"], "probe/a");
    let messages = show["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["status"], "done");
    assert_eq!(messages[0]["sender"], "external");
    assert_eq!(messages[0]["reply"], "{\"ok\":null}");
    assert_eq!(messages[0]["attempts"], 1);
    let unknown = run(&["agents", "show", "probe/zzz", "--config", &config]);
    assert_eq!(unknown.stdout, "probe/zzz: not in the store\n");
    let bad = run(&["agents", "show", "probe", "--config", &config]);
    assert_ne!(bad.code, Some(0));
    assert!(bad.stderr.contains("invalid agent id"), "{}", bad.stderr);

    let out = run(&["agents", "memory", "probe/a", "--config", &config]);
    assert_eq!(out.stdout, "greeting = hello\n");
    let memory = run(&["agents", "memory", "probe/a", "--config", &config, "--json"]).json();
    assert_eq!(memory, json!({"greeting": "hello"}));
}

#[test]
fn are_run_refuses_policies_without_agents_and_unknown_targets() {
    let dir = tempdir();
    let config = write_policy(dir.path(), "").display().to_string();
    let out = run(&["run", "--config", &config, "--until-idle"]);
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr
            .contains("has no [agent.TYPE] table: there is no agent to run"),
        "{}",
        out.stderr
    );

    let config = write_policy(dir.path(), "[agent.probe]\nsource = \"{probe}\"\n")
        .display()
        .to_string();
    let out = run(&[
        "run",
        "--config",
        &config,
        "--send",
        "nobody/x",
        "hi",
        "--until-idle",
    ]);
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr.contains("cannot send to nobody/x")
            && out
                .stderr
                .contains("no agent type `nobody` in the policy (configured: probe)"),
        "{}",
        out.stderr
    );
    let out = run(&[
        "run",
        "--config",
        &config,
        "--send",
        "probe",
        "hi",
        "--until-idle",
    ]);
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr.contains("invalid agent id \"probe\""),
        "{}",
        out.stderr
    );

    // A failed message is printed and makes the run fail.
    let fail = json!({"op": "fail", "message": "boom"}).to_string();
    let out = run(&[
        "run",
        "--config",
        &config,
        "--send",
        "probe/a",
        &fail,
        "--until-idle",
        "--json",
    ]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let line: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(line["error"], "boom");
    assert_eq!(line["to"], "probe/a");
    assert!(line["message"].as_str().unwrap().starts_with("ext-"));
}

#[test]
fn are_run_refuses_a_payload_over_max_payload() {
    let dir = tempdir();
    let config = write_policy(
        dir.path(),
        "[agents]\nmax_payload = \"1 KiB\"\n\n[agent.probe]\nsource = \"{probe}\"\n",
    )
    .display()
    .to_string();
    let big = json!({"op": "echo", "text": "x".repeat(2000)}).to_string();
    let out = run(&[
        "run",
        "--config",
        &config,
        "--send",
        "probe/a",
        &big,
        "--until-idle",
    ]);
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr.contains("cannot send to probe/a")
            && out
                .stderr
                .contains("over the limit of 1.0 KiB ([agents] max_payload)"),
        "{}",
        out.stderr
    );
    let ok = json!({"op": "echo", "text": "small"}).to_string();
    let out = run(&[
        "run",
        "--config",
        &config,
        "--send",
        "probe/a",
        &ok,
        "--until-idle",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "probe/a: \"small\"");
}

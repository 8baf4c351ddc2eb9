//! What an agent may do: every denial names its policy key, ungranted capabilities are not linked, and an agent
//! calls only its granted tools.

use super::{err_of, runtime, runtime_with};
use crate::common::{ask_agent, tempdir};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn every_denial_is_an_error_naming_its_policy_key() {
    let dir = tempdir();
    let rt = runtime_with(
        dir.path(),
        r#"
[agent.probe]
source = "{probe}"
allow.messaging = { send = ["probe/b", "nobody/*", "bad*"], publish = ["news"] }
"#,
    );
    let cases = [
        (
            json!({"op": "send", "to": "probe/c", "payload": "hi"}),
            &[
                "Denied",
                "probe/a may not send to `probe/c`",
                "allow.messaging.send",
            ][..],
        ),
        (
            json!({"op": "publish", "topic": "secrets", "payload": "hi"}),
            &[
                "Denied",
                "may not publish on `secrets`",
                "allow.messaging.publish",
            ][..],
        ),
        (
            json!({"op": "send", "to": "nobody/x", "payload": "hi"}),
            &["UnknownTarget", "no agent type `nobody`"][..],
        ),
        (
            json!({"op": "send", "to": "bad id", "payload": "hi"}),
            &["UnknownTarget", "invalid agent id"][..],
        ),
    ];
    for (cmd, expected) in cases {
        let reply = ask_agent(&rt, "probe/a", cmd.clone()).await.unwrap();
        let e = err_of(&reply);
        for part in expected {
            assert!(e.contains(part), "{cmd}: {e:?} should say {part:?}");
        }
    }
    // Capabilities the policy does not grant at all are not linked: the call fails the message (never the host)
    // with the import and the key that would grant it, and the agent gets a fresh instance next time.
    for (cmd, import, key) in [
        (
            json!({"op": "tool", "name": "text.word-count", "args": {"text": "x"}}),
            "are:agent/tools",
            "allow.tools",
        ),
        (
            json!({"op": "ask", "prompt": "hi"}),
            "are:agent/llm",
            "allow.llm",
        ),
        (
            json!({"op": "remember", "key": "k", "value": "v"}),
            "are:agent/memory",
            "allow.memory",
        ),
    ] {
        let e = ask_agent(&rt, "probe/a", cmd.clone()).await.unwrap_err();
        assert!(
            e.contains("capability not granted") && e.contains(import) && e.contains(key),
            "{cmd}: {e}"
        );
        let me = ask_agent(&rt, "probe/a", json!({"op": "whoami"}))
            .await
            .unwrap();
        assert_eq!(me["id"], "probe/a", "the agent still works after {cmd}");
    }
    // Sending to oneself is granted here, and a loop.
    let e = ask_agent(
        &rt,
        "probe/b",
        json!({"op": "send", "to": "probe/b", "payload": "hi"}),
    )
    .await
    .unwrap();
    assert!(
        err_of(&e).contains("LoopDetected"),
        "sending to oneself is a loop: {e}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_calls_only_its_granted_tools() {
    let dir = tempdir();
    let rt = runtime(dir.path(), r#"allow.tools = ["text.word-count"]"#);
    let tools = ask_agent(&rt, "probe/a", json!({"op": "tools"}))
        .await
        .unwrap();
    assert_eq!(
        tools,
        json!(["text.word-count"]),
        "only granted tools are listed"
    );

    let counted = ask_agent(
        &rt,
        "probe/a",
        json!({"op": "tool", "name": "text.word-count", "args": {"text": "one two three"}}),
    )
    .await
    .unwrap();
    assert_eq!(counted["ok"]["words"], 3, "{counted}");

    let refused = ask_agent(
        &rt,
        "probe/a",
        json!({"op": "tool", "name": "text.slugify", "args": {"text": "Hello World"}}),
    )
    .await
    .unwrap();
    let e = err_of(&refused);
    assert!(
        e.contains("`text.slugify` is not granted to probe/a") && e.contains("allow.tools"),
        "{e}"
    );

    let bad = ask_agent(
        &rt,
        "probe/a",
        json!({"op": "tool", "name": "text.word-count", "args": {"words": 1}}),
    )
    .await
    .unwrap();
    assert!(err_of(&bad).contains("text.word-count"), "{bad}");

    let dir = tempdir();
    let rt = runtime(dir.path(), r#"allow.tools = ["*"]"#);
    let tools = ask_agent(&rt, "probe/a", json!({"op": "tools"}))
        .await
        .unwrap();
    assert!(
        tools.as_array().unwrap().len() >= 4 && tools[0] == "text.find",
        "{tools}"
    );
    let missing = ask_agent(
        &rt,
        "probe/a",
        json!({"op": "tool", "name": "nope.x", "args": {}}),
    )
    .await
    .unwrap();
    assert!(err_of(&missing).contains("no tool `nope.x`"), "{missing}");
    let slug = ask_agent(
        &rt,
        "probe/a",
        json!({"op": "tool", "name": "text.slugify", "args": {"text": "Hello World"}}),
    )
    .await
    .unwrap();
    assert_eq!(slug["ok"], "hello-world");
}

//! The policy parser: generated policies parse back to their model, agent-only grants are refused in component
//! tables, and text that looks like a policy (or an edited one) parses or fails with an error that points inside
//! it.

use super::policy_gen::{
    GrantsModel, LimitsModel, PolicyModel, SizeModel, TimeoutModel, TomlWriter, agent_grants,
    component_model, component_name, policy_base_dir, policy_model, render_policy, toml_string,
};
use super::{config, mutate_text, toml_char};
use are_policy::{InstanceMode, Policy, PolicyError, SyncMode};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::TestCaseError;
use std::fmt::Write as _;
use std::path::Path;

fn parse_policy(text: &str) -> Result<Policy, PolicyError> {
    Policy::parse(text, Path::new("are.toml"), policy_base_dir())
}

fn sha256_of(pin: &Option<([u8; 32], u8)>) -> Option<[u8; 32]> {
    pin.as_ref().map(|(digest, _)| *digest)
}

/// The parsed grants are the generated ones.
fn check_grants(grants: &are_policy::Grants, model: &GrantsModel) -> Result<(), TestCaseError> {
    let env: Vec<(String, String)> = grants
        .env
        .0
        .iter()
        .map(|(k, v)| (k.get_ref().clone(), v.clone()))
        .collect();
    let mut expected_env = model.env.clone();
    expected_env.sort();
    prop_assert_eq!(env, expected_env);
    let http: Vec<String> = grants.http.0.iter().map(ToString::to_string).collect();
    let expected: Vec<String> = model.http.iter().map(|(_, shown)| shown.clone()).collect();
    prop_assert_eq!(http, expected);
    let sockets: Vec<String> = grants.sockets.0.iter().map(ToString::to_string).collect();
    let expected: Vec<String> = model
        .sockets
        .iter()
        .map(|(_, shown)| shown.clone())
        .collect();
    prop_assert_eq!(sockets, expected);
    let fs: Vec<(String, String, are_policy::grants::fs::Mode)> = grants
        .fs
        .0
        .iter()
        .map(|m| (m.host.get_ref().clone(), m.guest.get_ref().clone(), m.mode))
        .collect();
    let expected: Vec<(String, String, are_policy::grants::fs::Mode)> = model
        .fs
        .iter()
        .map(|m| {
            let mode = match m.mode {
                Some("rw") => are_policy::grants::fs::Mode::Rw,
                _ => are_policy::grants::fs::Mode::Ro,
            };
            (m.host.clone(), m.guest.clone(), mode)
        })
        .collect();
    prop_assert_eq!(fs, expected);
    Ok(())
}

fn check_policy(policy: &Policy, model: &PolicyModel) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        policy.defaults,
        model
            .defaults
            .as_ref()
            .map(LimitsModel::expected)
            .unwrap_or_default()
    );
    let names: Vec<&String> = policy.components.keys().collect();
    let mut expected: Vec<&String> = model.components.iter().map(|(n, _)| n).collect();
    expected.sort();
    prop_assert_eq!(names, expected);
    for (name, m) in &model.components {
        let c = &policy.components[name];
        prop_assert_eq!(c.source.get_ref(), &m.source);
        prop_assert_eq!(c.sha256.as_ref().map(|p| p.0), sha256_of(&m.sha256));
        prop_assert_eq!(&c.args, &m.args);
        check_grants(&c.allow, &m.grants)?;
        prop_assert_eq!(c.limits, m.limits.expected());
        let mode = match m.mode {
            Some("session") => InstanceMode::Session,
            _ => InstanceMode::Fresh,
        };
        prop_assert_eq!(c.mode, mode);
        prop_assert_eq!(c.max_concurrency, m.max_concurrency.unwrap_or(16));
        prop_assert_eq!(c.queue, m.queue.unwrap_or(64));
        prop_assert_eq!(
            c.idle_timeout,
            m.idle_timeout.as_ref().map(TimeoutModel::expected)
        );
        prop_assert_eq!(
            policy.limits_for(Some(c)),
            policy.defaults.overlay(m.limits.expected())
        );
    }
    let names: Vec<&String> = policy.agents.keys().collect();
    let mut expected: Vec<&String> = model.agents.iter().map(|(n, _)| n).collect();
    expected.sort();
    prop_assert_eq!(names, expected);
    for (name, m) in &model.agents {
        let a = &policy.agents[name];
        prop_assert_eq!(a.source.get_ref(), &m.source);
        prop_assert_eq!(a.sha256.as_ref().map(|p| p.0), sha256_of(&m.sha256));
        prop_assert_eq!(&a.args, &m.args);
        check_grants(&a.allow, &m.grants)?;
        prop_assert_eq!(&a.allow.tools.0, &m.agent.tools);
        let llm = &a.allow.llm;
        prop_assert_eq!(
            (llm.model.clone(), llm.max_tokens, llm.max_turns),
            m.agent
                .llm
                .clone()
                .map_or((None, None, None), |(model, t, n)| (Some(model), t, n))
        );
        prop_assert_eq!(
            a.allow.memory.quota,
            m.agent.memory.as_ref().map(SizeModel::expected)
        );
        prop_assert_eq!(&a.allow.messaging.send, &m.agent.send);
        prop_assert_eq!(&a.allow.messaging.publish, &m.agent.publish);
        prop_assert_eq!(&a.allow.messaging.subscribe, &m.agent.subscribe);
        prop_assert_eq!(a.limits, m.limits.expected());
        prop_assert_eq!(
            a.idle_timeout,
            m.idle_timeout.as_ref().map(TimeoutModel::expected)
        );
        prop_assert_eq!(a.message_budget, m.message_budget);
    }
    let (max_instances, pooling, page_size, origins) = &model.serve;
    prop_assert_eq!(policy.serve.max_instances, *max_instances);
    prop_assert_eq!(policy.serve.pooling, *pooling);
    prop_assert_eq!(policy.serve.page_size, *page_size);
    prop_assert_eq!(&policy.serve.allowed_origins, origins);
    let (store, hop_limit, reply_timeout, sync) = &model.runtime;
    let runtime = &policy.agent_runtime;
    prop_assert_eq!(&runtime.store, store);
    prop_assert_eq!(runtime.hop_limit, *hop_limit);
    prop_assert_eq!(
        runtime.reply_timeout,
        reply_timeout.as_ref().map(TimeoutModel::expected)
    );
    let sync = sync.map(|s| {
        if s == "full" {
            SyncMode::Full
        } else {
            SyncMode::Normal
        }
    });
    prop_assert_eq!(runtime.sync, sync);
    let (base_url, llm_model, api_key_env, llm_timeout) = &model.llm;
    prop_assert_eq!(&policy.llm.base_url, base_url);
    prop_assert_eq!(&policy.llm.model, llm_model);
    prop_assert_eq!(&policy.llm.api_key_env, api_key_env);
    prop_assert_eq!(
        policy.llm.timeout,
        llm_timeout.as_ref().map(TimeoutModel::expected)
    );
    Ok(())
}

/// A parse error points inside the text and says something.
fn check_error(text: &str, error: &PolicyError) -> Result<(), TestCaseError> {
    let PolicyError::Invalid {
        line,
        column,
        message,
        ..
    } = error
    else {
        return Err(TestCaseError::fail(format!(
            "parsing text failed to read: {error}"
        )));
    };
    let lines: Vec<&str> = text.split('\n').collect();
    prop_assert!(
        (1..=lines.len()).contains(line),
        "line {} of {}: {}",
        line,
        lines.len(),
        message
    );
    let columns = lines[line - 1].chars().count() + 1;
    prop_assert!(
        (1..=columns).contains(column),
        "column {} of {}: {}",
        column,
        columns,
        message
    );
    prop_assert!(!message.trim().is_empty());
    prop_assert!(error.to_string().starts_with("are.toml:"));
    Ok(())
}

/// Text that looks like a policy: known headers and keys, values of every TOML kind, and some garbage.
fn tomlish() -> impl Strategy<Value = String> {
    let header = select(vec![
        "[component.a]",
        "[component.b.allow]",
        "[component.a.limits]",
        "[defaults.limits]",
        "[defaults]",
        "[serve]",
        "[agents]",
        "[llm]",
        "[agent.x]",
        "[agent.x.allow]",
        "[agent.x.allow.llm]",
        "[[component]]",
        "[component.\"é\"]",
        "[component.'a b']",
        "[component]",
        "[agent.x.allow.messaging]",
        "[",
        "[component.a.allow.fs]",
        "[[component.a.allow.fs]]",
    ])
    .prop_map(str::to_owned);
    let key = select(vec![
        "source",
        "sha256",
        "args",
        "allow.fs",
        "allow.env",
        "allow.http",
        "allow.sockets",
        "allow.tools",
        "allow.llm.model",
        "allow.memory.quota",
        "allow.messaging.send",
        "limits.fuel",
        "limits.memory",
        "limits.timeout",
        "limits.max_output",
        "mode",
        "max_concurrency",
        "queue",
        "idle_timeout",
        "message_budget",
        "fuel",
        "memory",
        "timeout",
        "max_output",
        "max_instances",
        "pooling",
        "page_size",
        "allowed_origins",
        "store",
        "hop_limit",
        "reply_timeout",
        "sync",
        "base_url",
        "model",
        "api_key_env",
        "component.a.source",
        "allow.env.\"\"",
        "allow.env.\"A=B\"",
        "\"\"",
        "a.b.c",
        "host",
        "guest",
    ]);
    let value = prop_oneof![
        select(vec![
            "\"a.wasm\"",
            "\"64 MiB\"",
            "\"5s\"",
            "\"0s\"",
            "\"25h\"",
            "\"unlimited\"",
            "\"1_000\"",
            "\"-1\"",
            "\"18446744073709551616\"",
            "\"1e400 B\"",
            "\"99999999999999999999 EiB\"",
            "\"1.5 KiB\"",
            "\"NaN B\"",
            "\"inf MiB\"",
            "\"-5 MiB\"",
            "\"584942417355y\"",
            "\"99999999999999999999s\"",
            "\"1ns\"",
            "\"fresh\"",
            "\"session\"",
            "\"full\"",
            "\"ro\"",
            "\"rw\"",
            "\"http://x\"",
            "\"https://*.a.b:99999\"",
            "\"tcp://h:0\"",
            "\"udp://[::1]:53\"",
            "\"[\"",
            "\"http://[::1\"",
            "\"sha256:\"",
            "\"abababababababababababababababababababababababababababababababab\"",
            "\"ébébébébébébébébébébébébébébébébébébébébébébébébébébébébébébébé\"",
            "0",
            "-1",
            "9223372036854775807",
            "-9223372036854775808",
            "4294967296",
            "1.5",
            "inf",
            "nan",
            "-0.0",
            "true",
            "false",
            "1979-05-27T07:32:00Z",
            "07:32:00",
            "[]",
            "[1, \"a\"]",
            "{}",
            "{ host = \"d0\", guest = \"/d\" }",
            "[{ host = \"d0\", guest = \"/d\", mode = \"rw\" }]",
            "[{ host = \"nope\", guest = \"d\" }]",
            "{ A = \"1\" }",
            "{ model = \"m\", max_tokens = -1 }",
            "\"\"\"\nmulti\"\"\"",
            "'''\nraw'''",
            "0x10",
            "0o7",
            "0b1",
            "1_000",
            "+1",
            "1e3",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,12}".prop_map(|s| toml_string(&s, false)),
    ];
    let line = prop_oneof![
        3 => header,
        6 => (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => "\\PC{0,16}",
        1 => "[\\[\\]{}=\"',.#\\\\ a-z0-9\n]{0,12}",
    ];
    (prop::collection::vec(line, 0..12), any::<bool>())
        .prop_map(|(lines, crlf)| lines.join(if crlf { "\r\n" } else { "\n" }))
}

proptest! {
    #![proptest_config(config(64))]

    /// Generated policies, rendered as TOML in several styles, parse back to what was generated.
    #[test]
    fn generated_policies_round_trip(model in policy_model()) {
        let text = render_policy(&model);
        match parse_policy(&text) {
            Ok(policy) => check_policy(&policy, &model)?,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n{text}"))),
        }
    }

    /// Agent-only grants in a component table are refused, pointing at the component.
    #[test]
    fn agent_only_grants_are_refused_for_components(
        (name, component) in (component_name(), component_model()),
        agent in agent_grants(),
    ) {
        let model = PolicyModel {
            defaults: None,
            components: vec![(name.clone(), component)],
            agents: vec![],
            serve: (None, None, None, vec![]),
            runtime: (None, None, None, None),
            llm: (None, None, None, None),
            literal_strings: false,
        };
        let mut text = render_policy(&model);
        let w = TomlWriter { out: String::new(), literal: false };
        let entries = w.agent_grant_entries(&agent);
        // A second table header for the same component is a TOML error, so the grants go in a new component.
        if !entries.is_empty() {
            let _ = write!(text, "\n[component.extra-agentish]\nsource = \"x.wasm\"\n");
            for (k, v) in &entries {
                let _ = writeln!(text, "allow.{k} = {v}");
            }
            let error = parse_policy(&text).expect_err("agent-only grant in a component");
            check_error(&text, &error)?;
            prop_assert!(error.to_string().contains("only for agents"), "{}", error);
        }
    }

    /// Text that looks like a policy parses or fails with an error that points inside it; it never panics.
    #[test]
    fn policy_parser_survives_tomlish_text(text in tomlish()) {
        if let Err(e) = parse_policy(&text) {
            check_error(&text, &e)?;
        }
    }

    /// Generated policies with small edits parse or fail cleanly.
    #[test]
    fn policy_parser_survives_edited_policies(
        model in policy_model(),
        edits in prop::collection::vec((any::<Index>(), any::<u8>(), toml_char()), 1..=4),
    ) {
        let text = mutate_text(&render_policy(&model), &edits);
        if let Err(e) = parse_policy(&text) {
            check_error(&text, &e)?;
        }
    }
}

//! `are call`: name resolution, argument forms, errors, the JSON envelope, stats and limit overrides.

use super::{WORD_COUNT, fails, guest, ok, run_with_stdin, write_component};
use crate::common::{run, tempdir};
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn call_resolves_every_form_of_a_function_name() {
    let text = guest("text");
    for name in [
        "word-count",
        "text.word-count",
        "example:text/text@0.1.0.word-count",
        "example:text/text@0.1.0#word-count",
    ] {
        let out = ok(run(&["call", text, name, WORD_COUNT]));
        assert_eq!(
            out.json(),
            json!({"words": 2, "lines": 1, "chars": 8, "bytes": 8}),
            "{name}"
        );
        assert!(out.stderr.is_empty(), "{name}: {}", out.stderr);
    }
}

#[test]
fn call_lists_candidates_and_available_functions() {
    let out = run(&["call", guest("text"), "count-words", WORD_COUNT]);
    fails(
        &out,
        "error: no exported function `count-words`; available: text.word-count, text.slugify, text.find, text.replace",
    );
    assert!(out.stdout.is_empty());
    let out = run(&["call", guest("text"), "json.word-count", WORD_COUNT]);
    fails(&out, "no exported function `json.word-count`; available: ");

    let dir = tempdir();
    let twins = write_component(
        dir.path(),
        "twins.wasm",
        "package test:twins@0.1.0;
         interface left { run: func() -> string; stop: func(); }
         interface right { run: func() -> string; }
         world twins { export left; export right; }",
    );
    let out = run(&["call", twins.to_str().unwrap(), "run"]);
    fails(
        &out,
        "error: `run` is ambiguous; it may be: left.run, right.run",
    );
    let out = run(&["call", "--json", twins.to_str().unwrap(), "run"]);
    assert_eq!(out.code, Some(1));
    let envelope = out.json();
    assert_eq!(envelope["error"]["kind"], "unknown_function");
    assert_eq!(
        envelope["error"]["message"],
        "`run` is ambiguous; it may be: left.run, right.run"
    );
    // A unique bare name resolves (and the dummy body traps, which shows it was called).
    let out = run(&["call", twins.to_str().unwrap(), "stop"]);
    fails(&out, "guest trapped");
}

#[test]
fn call_takes_arguments_by_name_position_stdin_or_file() {
    let text = guest("text");
    let expected = json!("hello_big_world");
    let by_name = r#"{"text": "Hello, big World!", "separator": "_"}"#;
    assert_eq!(
        ok(run(&["call", text, "slugify", by_name])).json(),
        expected
    );
    assert_eq!(
        ok(run(&[
            "call",
            text,
            "slugify",
            r#"["Hello, big World!", "_"]"#
        ]))
        .json(),
        expected
    );
    // A trailing option may be left out of the array, or the object.
    assert_eq!(
        ok(run(&["call", text, "slugify", r#"["Hello, big World!"]"#])).json(),
        json!("hello-big-world")
    );
    assert_eq!(
        ok(run(&[
            "call",
            text,
            "slugify",
            r#"{"text": "Hello, big World!"}"#
        ]))
        .json(),
        json!("hello-big-world")
    );
    assert_eq!(
        ok(run_with_stdin(&["call", text, "slugify", "-"], by_name)).json(),
        expected
    );
    let dir = tempdir();
    let file = dir.path().join("args.json");
    std::fs::write(&file, by_name).unwrap();
    let at_file = format!("@{}", file.display());
    assert_eq!(
        ok(run(&["call", text, "slugify", &at_file])).json(),
        expected
    );

    let missing = format!("@{}", dir.path().join("nope.json").display());
    let out = run(&["call", text, "slugify", &missing]);
    fails(&out, "error: cannot read arguments file ");
    assert!(out.stderr.contains("nope.json"), "{}", out.stderr);
}

#[test]
fn call_reports_bad_arguments_clearly() {
    let text = guest("text");
    let out = run(&["call", text, "word-count", r#"{"text": "#]);
    fails(&out, "error: arguments are not valid JSON: {\"text\": ");
    assert!(
        out.stderr
            .contains("write a JSON object keyed by parameter name"),
        "{}",
        out.stderr
    );
    let out = run_with_stdin(&["call", text, "word-count", "-"], "not json");
    fails(&out, "error: arguments are not valid JSON: not json");

    for (args, message) in [
        (
            r#"{"text": 3}"#,
            "error: invalid arguments: args.text: expected string, got number 3\n",
        ),
        (
            r#"[true]"#,
            "error: invalid arguments: args.text: expected string, got boolean true\n",
        ),
        (
            r#"{"txt": "a"}"#,
            "error: invalid arguments: args: unknown parameter \"txt\"; expected one of: text\n",
        ),
        (
            r#"["a", "b"]"#,
            "error: invalid arguments: args: expected at most 1 arguments, got 2\n",
        ),
        (
            r#""hi""#,
            "error: invalid arguments: args: expected an object of named arguments or an array of arguments, got string \"hi\"\n",
        ),
    ] {
        let out = run(&["call", text, "word-count", args]);
        fails(&out, message);
        assert!(out.stdout.is_empty(), "{args}: {}", out.stdout);
    }
    // No arguments at all for a function that needs some.
    let out = run(&["call", text, "word-count"]);
    fails(
        &out,
        "error: invalid arguments: args: missing required parameter \"text\"",
    );
}

#[test]
fn call_json_prints_one_envelope() {
    let text = guest("text");
    let out = ok(run(&["call", "--json", text, "word-count", WORD_COUNT]));
    assert_eq!(
        out.json(),
        json!({
            "ok": true,
            "result": {"words": 2, "lines": 1, "chars": 8, "bytes": 8},
            "stdout": "",
            "stderr": "",
        })
    );
    assert!(out.stderr.is_empty(), "{}", out.stderr);

    let out = ok(run(&[
        "call",
        "--json",
        "--stats",
        text,
        "word-count",
        WORD_COUNT,
    ]));
    let envelope = out.json();
    assert_eq!(envelope["ok"], true);
    let stats = &envelope["stats"];
    assert!(stats["fuel_consumed"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(stats["fuel_limit"], 1_000_000_000u64);
    assert!(stats["wall_time_us"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["instantiate_us"].as_u64().unwrap() <= stats["wall_time_us"].as_u64().unwrap());
    assert!(stats["peak_memory"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(stats["stdout_bytes"], 0);
    assert_eq!(stats["stderr_bytes"], 0);
    assert_eq!(
        stats["result_bytes"],
        serde_json::to_vec(&envelope["result"]).unwrap().len()
    );
    assert!(matches!(
        envelope["load"]["cache"].as_str(),
        Some("hit" | "miss")
    ));
    assert!(
        out.stderr.is_empty(),
        "--json keeps stderr quiet: {}",
        out.stderr
    );

    let out = run(&["call", "--json", text, "word-count", r#"{"text": 3}"#]);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.json(),
        json!({
            "ok": false,
            "error": {
                "kind": "invalid_arguments",
                "message": "invalid arguments: args.text: expected string, got number 3",
            },
            "stdout": "",
            "stderr": "",
        })
    );

    // What the guest printed is in the envelope, not on the terminal.
    let out = run(&[
        "call",
        "--json",
        guest("hostile-panic"),
        "panic",
        r#"{"message": "boom"}"#,
    ]);
    assert_eq!(out.code, Some(1));
    let envelope = out.json();
    assert_eq!(envelope["error"]["kind"], "panic");
    let message = envelope["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("guest panicked: boom (at "),
        "{message}"
    );
    let guest_stderr = envelope["stderr"].as_str().unwrap();
    assert!(
        guest_stderr.contains("panicked at ") && guest_stderr.contains("\nboom\n"),
        "{guest_stderr}"
    );
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    // Without --json, the guest's output goes to stderr, each line marked.
    let out = run(&[
        "call",
        guest("hostile-panic"),
        "panic",
        r#"{"message": "boom"}"#,
    ]);
    assert_eq!(out.code, Some(1));
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr.contains("\nguest stderr | boom\n"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("\nerror: guest panicked: boom (at "),
        "{}",
        out.stderr
    );

    // A WIT `result` in its `err` case is a result, not a failure of the call, but `ok` is false.
    let out = run(&[
        "call",
        "--json",
        text,
        "find",
        r#"{"pattern": "(", "text": "x"}"#,
    ]);
    assert_eq!(out.code, Some(1));
    let envelope = out.json();
    assert_eq!(envelope["ok"], false);
    assert!(envelope.get("error").is_none(), "{envelope}");
    let err = envelope["result"]["err"].as_str().expect("err payload");
    assert!(err.starts_with("invalid pattern `(`"), "{err}");
}

/// The numbers of a `stats:` line: fuel used, fuel limit, and whether wall time and peak memory are there.
fn stats_fuel(stderr: &str) -> (u64, String) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("stats: fuel "))
        .unwrap_or_else(|| panic!("no stats line in {stderr}"));
    let fuel = line.strip_prefix("stats: fuel ").unwrap();
    let (used, rest) = fuel.split_once(' ').unwrap();
    assert!(rest.contains(" · wall "), "{line}");
    assert!(rest.contains(" (instantiate "), "{line}");
    assert!(rest.contains(" · peak memory "), "{line}");
    assert!(
        rest.contains(" · stdout 0 B · stderr 0 B · result "),
        "{line}"
    );
    let limit = rest.split(" · ").next().unwrap().to_string();
    (used.parse().expect("fuel used"), limit)
}

#[test]
fn call_stats_print_fuel_wall_time_and_peak_memory() {
    let out = ok(run(&[
        "call",
        "--stats",
        guest("text"),
        "word-count",
        WORD_COUNT,
    ]));
    assert_eq!(
        out.json(),
        json!({"words": 2, "lines": 1, "chars": 8, "bytes": 8}),
        "the result stays on stdout"
    );
    let (used, limit) = stats_fuel(&out.stderr);
    assert!(used > 0);
    assert_eq!(limit, "of 1000000000");
    let peak = out
        .stderr
        .split(" · peak memory ")
        .nth(1)
        .and_then(|r| r.split(" · ").next())
        .unwrap();
    assert!(peak.ends_with("MiB") || peak.ends_with("KiB"), "{peak}");
    assert!(out.stderr.contains("\nload:  "), "{}", out.stderr);

    let out = ok(run(&[
        "call",
        "--stats",
        "--fuel",
        "unlimited",
        guest("text"),
        "word-count",
        WORD_COUNT,
    ]));
    let (_, limit) = stats_fuel(&out.stderr);
    assert_eq!(limit, "(unlimited)");
}

#[test]
fn call_prints_a_wit_err_and_exits_1() {
    let out = run(&[
        "call",
        guest("text"),
        "find",
        r#"{"pattern": "(unclosed", "text": "x"}"#,
    ]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let result = out.json();
    let err = result["err"].as_str().expect("the err JSON is printed");
    assert!(err.starts_with("invalid pattern `(unclosed`"), "{err}");
    assert!(!out.stderr.contains("error:"), "{}", out.stderr);

    let out = ok(run(&[
        "call",
        guest("text"),
        "find",
        r#"{"pattern": "b+", "text": "abbc", "limit": 1}"#,
    ]));
    assert_eq!(
        out.json(),
        json!({"ok": [{"start": 1, "end": 3, "text": "bb", "groups": []}]})
    );
}

#[test]
fn call_limit_flags_override_the_policy() {
    let text = guest("text");
    let long = json!({ "text": "word ".repeat(20_000) }).to_string();

    // Fuel.
    let out = run(&["call", "--fuel", "5000", text, "word-count", &long]);
    fails(
        &out,
        "error: out of fuel: the call used its whole budget of 5000 fuel units (limits.fuel)",
    );
    let out = run(&[
        "call",
        "--json",
        "--stats",
        "--fuel",
        "5000",
        text,
        "word-count",
        &long,
    ]);
    let envelope = out.json();
    assert_eq!(envelope["error"]["kind"], "fuel_exhausted");
    assert_eq!(envelope["stats"]["fuel_limit"], 5000);
    let out = ok(run(&[
        "call",
        "--json",
        "--stats",
        "--fuel",
        "1_000_000_000",
        text,
        "word-count",
        &long,
    ]));
    assert_eq!(out.json()["result"]["words"], 20_000);

    // Memory: the text tool needs more than 1 MiB to start.
    let out = run(&["call", "--memory", "1MiB", text, "word-count", WORD_COUNT]);
    fails(&out, "error: memory limit exceeded: ");
    assert!(
        out.stderr
            .contains("over its limit of 1.0 MiB (limits.memory)"),
        "{}",
        out.stderr
    );

    // Timeout: a spinning guest is stopped at the given timeout, well before the default 5 s.
    let started = Instant::now();
    let out = run(&[
        "call",
        "--timeout",
        "300ms",
        "--fuel",
        "unlimited",
        guest("hostile-loop"),
        "spin",
    ]);
    let took = started.elapsed();
    fails(
        &out,
        "error: timed out: the call ran longer than its 300ms timeout (limits.timeout)",
    );
    assert!(took < Duration::from_secs(4), "took {took:?}");

    // Bad values are refused by the argument parser.
    let out = run(&["call", "--memory", "lots", text, "word-count", WORD_COUNT]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("invalid size \"lots\""),
        "{}",
        out.stderr
    );
    let out = run(&["call", "--timeout", "0s", text, "word-count", WORD_COUNT]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("must be more than 0"), "{}", out.stderr);
}

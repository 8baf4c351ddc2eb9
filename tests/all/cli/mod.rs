//! The `are` binary: `inspect` (world, tools, docs, imports by capability), `call` (name resolution, argument
//! forms, errors, the JSON envelope, stats, limit overrides), `policy check` and policies in use, and the guest
//! workflow `are new` → `are build` → `are inspect` / `are call`.

use crate::common::{Output, are, run, tempdir, with_docs};
use serde_json::json;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Run a prepared `are` command (see [`are`]) and collect what it printed.
pub(crate) fn output(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run are");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run `are` with `args`, writing `stdin` to its standard input.
fn run_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = are()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn are");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait for are");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The path of a built guest.
fn guest(name: &str) -> &'static str {
    are_tests::guest(name).wasm
}

/// Assert that `are` succeeded, and return its output.
#[track_caller]
fn ok(out: Output) -> Output {
    assert_eq!(
        out.code,
        Some(0),
        "are failed\nstdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    out
}

/// Assert that `are` failed with exit code 1 and an `error:` message containing `expected`.
#[track_caller]
fn fails(out: &Output, expected: &str) {
    assert_eq!(
        out.code,
        Some(1),
        "are should have failed\nstdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr.starts_with("error: "),
        "stderr should start with `error:`: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains(expected),
        "stderr should contain {expected:?}: {}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

fn write_component(dir: &Path, name: &str, wit: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, crate::common::component_from_wit(wit)).expect("write component");
    path
}

// ---------------------------------------------------------------------------------------------------------------
// are inspect
// ---------------------------------------------------------------------------------------------------------------

/// The `imports by capability:` section of `are inspect`, in order: capability, its header line, import names.
fn human_imports(stdout: &str) -> Vec<(String, String, Vec<String>)> {
    let section = stdout
        .split_once("\nimports by capability:\n")
        .expect("an imports section")
        .1;
    let mut groups: Vec<(String, String, Vec<String>)> = Vec::new();
    for line in section.lines() {
        if let Some(import) = line.strip_prefix("    ") {
            let name = import.split(" (").next().expect("name").to_string();
            let group = groups.last_mut().expect("an import under a capability");
            group.2.push(name);
        } else if let Some(header) = line.strip_prefix("  ") {
            let capability = header.split_whitespace().next().expect("capability");
            groups.push((capability.to_string(), header.to_string(), Vec::new()));
        }
    }
    groups
}

/// The interface-name prefixes that belong to each capability.
fn belongs_to(capability: &str, import: &str) -> bool {
    match capability {
        "filesystem" => import.starts_with("wasi:filesystem/"),
        "environment" => import.starts_with("wasi:cli/environment@"),
        "clocks" => import.starts_with("wasi:clocks/"),
        "random" => import.starts_with("wasi:random/"),
        "stdio" => ["wasi:cli/std", "wasi:cli/terminal-"]
            .iter()
            .any(|p| import.starts_with(p)),
        "io" => import.starts_with("wasi:io/") || import.starts_with("wasi:cli/exit@"),
        "http" => import.starts_with("wasi:http/"),
        "sockets" => import.starts_with("wasi:sockets/"),
        "other" => !import.starts_with("wasi:"),
        _ => false,
    }
}

#[test]
fn inspect_lists_world_tools_with_docs_and_imports_by_capability() {
    let dir = tempdir();
    let hash = with_docs("hash", dir.path());
    let path = hash.to_str().unwrap();
    let out = ok(run(&["inspect", path]));
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], format!("component  {path}"));
    assert!(lines.contains(&"world      hash-tool"), "{}", out.stdout);
    assert!(
        lines.contains(&"docs       embedded `are-wit-package` section"),
        "{}",
        out.stdout
    );
    assert!(lines.contains(&"tools (5):"), "{}", out.stdout);
    for (signature, doc) in [
        (
            "  hash.sha256(input: input, encodings: encodings) -> result<digest, string>",
            "      Computes the SHA-256 digest of text, bytes or a file.",
        ),
        (
            "  hash.sha256-hex(text: string) -> string",
            "      Computes the SHA-256 digest of text, in lowercase hexadecimal.",
        ),
        (
            "  hash.base64-encode(data: list<u8>, alphabet: option<alphabet>) -> string",
            "      Encodes bytes as base64.",
        ),
        (
            "  hash.base64-decode(text: string) -> result<list<u8>, string>",
            "      Decodes base64 to bytes. Accepts either alphabet, with or without padding, and ignores whitespace.",
        ),
    ] {
        let at = lines
            .iter()
            .position(|l| *l == signature)
            .unwrap_or_else(|| panic!("no line {signature:?} in\n{}", out.stdout));
        assert_eq!(lines[at + 1], doc, "the doc follows {signature}");
    }

    // Imports are grouped by capability, each group says which policy key grants it, and the groups hold the same
    // imports as `--json`.
    let groups = human_imports(&out.stdout);
    let json = ok(run(&["inspect", "--json", path])).json();
    let json_groups = json["imports"].as_object().expect("imports object");
    let capabilities: Vec<&str> = groups.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(
        capabilities,
        json_groups.keys().map(String::as_str).collect::<Vec<_>>(),
        "{}",
        out.stdout
    );
    // Capabilities come in a fixed order, most sensitive first; the hash tool reads files and writes to stdio.
    const ORDER: [&str; 9] = [
        "filesystem",
        "environment",
        "clocks",
        "random",
        "stdio",
        "io",
        "http",
        "sockets",
        "other",
    ];
    let positions: Vec<usize> = capabilities
        .iter()
        .map(|c| {
            ORDER
                .iter()
                .position(|o| o == c)
                .expect("a known capability")
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "{capabilities:?}"
    );
    assert!(
        capabilities.contains(&"filesystem") && capabilities.contains(&"stdio"),
        "{capabilities:?}"
    );
    for (capability, header, imports) in &groups {
        assert!(!imports.is_empty(), "{capability} lists no import");
        for import in imports {
            assert!(
                belongs_to(capability, import),
                "{import} is not {capability}"
            );
        }
        let names: Vec<&str> = json_groups[capability]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            imports.iter().map(String::as_str).collect::<Vec<_>>(),
            names
        );
        let key = match capability.as_str() {
            "filesystem" => Some("allow.fs"),
            "environment" => Some("allow.env"),
            "http" => Some("allow.http"),
            "sockets" => Some("allow.sockets"),
            _ => None,
        };
        match key {
            Some(key) => assert_eq!(
                header,
                &format!("{capability}  [granted by {key}]"),
                "{capability}"
            ),
            None => assert_eq!(header, capability),
        }
    }
    assert_eq!(groups[0].0, "filesystem");
    let fs = &groups[0].2;
    assert!(
        fs.iter()
            .any(|i| i.starts_with("wasi:filesystem/preopens@")),
        "{fs:?}"
    );
}

#[test]
fn inspect_json_gives_schemas_docs_and_imports() {
    let dir = tempdir();
    let embedded = with_docs("text", dir.path());
    let json = ok(run(&["inspect", "--json", embedded.to_str().unwrap()])).json();
    assert_eq!(json["world"], "text-tool");
    assert_eq!(json["package"], "example:text@0.1.0");
    assert_eq!(json["docs_source"], json!({"kind": "embedded"}));
    assert_eq!(json["component"], embedded.to_str().unwrap());
    let bytes = std::fs::read(&embedded).unwrap();
    assert_eq!(json["size"], bytes.len());
    let sha: String = <sha2::Sha256 as sha2::Digest>::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(json["sha256"], sha);

    let tools = json["tools"].as_array().expect("tools");
    let names: Vec<&str> = tools
        .iter()
        .map(|t| t["qualified_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "text.word-count",
            "text.slugify",
            "text.find",
            "text.replace"
        ]
    );
    for tool in tools {
        let name = &tool["qualified_name"];
        assert!(
            tool["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{name} has no description"
        );
        let input = &tool["input_schema"];
        assert_eq!(input["type"], "object", "{name}");
        assert_eq!(input["additionalProperties"], false, "{name}");
        assert!(tool["output_schema"].is_object(), "{name}");
        assert!(tool.get("unsupported").is_none(), "{name}");
    }
    let find = &tools[2];
    assert_eq!(find["full_name"], "example:text/text@0.1.0.find");
    assert_eq!(find["interface"], "example:text/text@0.1.0");
    assert_eq!(
        find["input_schema"]["required"],
        json!(["pattern", "text"]),
        "`limit` is an option and not required"
    );
    assert_eq!(
        find["input_schema"]["properties"]["limit"]["anyOf"][0]["maximum"],
        u32::MAX
    );
    let counts = &tools[0]["output_schema"];
    assert_eq!(counts["title"], "counts");
    assert_eq!(
        counts["description"],
        "How much text there is, counted four ways."
    );
    assert_eq!(
        counts["properties"]["words"]["description"],
        "Runs of non-whitespace characters."
    );
    assert_eq!(
        counts["required"],
        json!(["words", "lines", "chars", "bytes"])
    );
    for (capability, imports) in json["imports"].as_object().expect("imports") {
        for import in imports.as_array().unwrap() {
            let name = import["name"].as_str().unwrap();
            assert_eq!(import["capability"], capability.as_str());
            assert!(belongs_to(capability, name), "{name} is not {capability}");
            assert!(import["functions"].is_array());
        }
    }

    // The plain build has no docs; --wit brings them back.
    let plain = guest("text");
    let bare = ok(run(&["inspect", "--json", plain])).json();
    assert_eq!(bare["docs_source"], json!({"kind": "none"}));
    assert_eq!(bare["world"], "root");
    assert!(
        bare["tools"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["description"].is_null())
    );
    assert!(
        bare["tools"][0]["output_schema"]
            .get("description")
            .is_none()
    );
    let wit = are_tests::guest("text").wit_dir();
    let documented = ok(run(&[
        "inspect",
        "--json",
        plain,
        "--wit",
        wit.to_str().unwrap(),
    ]))
    .json();
    assert_eq!(
        documented["docs_source"],
        json!({"kind": "wit-dir", "path": wit.to_str().unwrap()})
    );
    assert_eq!(documented["world"], "text-tool");
    assert_eq!(documented["tools"], json["tools"], "same docs as embedded");

    let human = ok(run(&["inspect", plain]));
    assert!(
        human.stdout.contains("\ndocs       none\n"),
        "{}",
        human.stdout
    );
    let human = ok(run(&["inspect", plain, "--wit", wit.to_str().unwrap()]));
    assert!(
        human
            .stdout
            .contains(&format!("\ndocs       WIT directory {}\n", wit.display())),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stdout
            .contains("\n      Counts words, lines, characters and bytes.\n"),
        "{}",
        human.stdout
    );
}

const HANDLES_WIT: &str = "package test:handles@0.1.0;
    interface blobs {
        resource blob {
            constructor();
            size: func() -> u32;
        }
        take: func(b: blob) -> u32;
        peek: func(b: borrow<blob>) -> u32;
        make: func() -> list<blob>;
        echo: func(s: string) -> string;
    }
    world handles {
        export blobs;
    }";

const ASYNC_WIT: &str = "package test:flows@0.1.0;
    interface flows {
        drain: func(s: stream<u8>) -> u32;
        later: func() -> future<string>;
        echo: func(s: string) -> string;
    }
    world streaming {
        export flows;
    }";

#[test]
fn resources_are_reported_by_inspect_and_refused_by_call() {
    let dir = tempdir();
    let path = write_component(dir.path(), "handles.wasm", HANDLES_WIT);
    let p = path.to_str().unwrap();

    let out = ok(run(&["inspect", p]));
    assert!(out.stdout.contains("\ntools (1):\n"), "{}", out.stdout);
    let reasons = [
        (
            "blobs.take(b: own<blob>) -> u32",
            "parameter `b` is a resource handle (own<blob>); resources cannot be passed as JSON",
        ),
        (
            "blobs.peek(b: borrow<blob>) -> u32",
            "parameter `b` is a borrowed resource handle (borrow<blob>); resources cannot be passed as JSON",
        ),
        (
            "blobs.make() -> list<own<blob>>",
            "the result contains a resource handle (own<blob>); resources cannot be passed as JSON",
        ),
        (
            "blobs.[method]blob.size(self: borrow<blob>) -> u32",
            "it is a method of resource `blob`; resources cannot be passed as JSON",
        ),
    ];
    for (signature, reason) in reasons {
        let expected = format!("  {signature}\n      not callable as a tool: {reason}\n");
        assert!(
            out.stdout.contains(&expected),
            "expected\n{expected}in\n{}",
            out.stdout
        );
    }

    let json = ok(run(&["inspect", "--json", p])).json();
    let tools = json["tools"].as_array().unwrap();
    let take = tools
        .iter()
        .find(|t| t["qualified_name"] == "blobs.take")
        .expect("take is listed");
    assert_eq!(take["unsupported"], reasons[0].1);
    assert!(take.get("input_schema").is_none());
    let echo = tools
        .iter()
        .find(|t| t["qualified_name"] == "blobs.echo")
        .expect("echo is listed");
    assert!(echo.get("unsupported").is_none() && echo["input_schema"].is_object());

    // `are call` refuses before running anything: the dummy functions trap when they do run.
    for (function, args, reason) in [
        ("blobs.take", r#"{"b": 1}"#, reasons[0].1),
        ("peek", "[1]", reasons[1].1),
        ("blobs.make", "{}", reasons[2].1),
        ("blobs.[method]blob.size", "{}", reasons[3].1),
    ] {
        let qualified = if function.starts_with("blobs.") {
            function.to_string()
        } else {
            format!("blobs.{function}")
        };
        let out = run(&["call", p, function, args]);
        fails(
            &out,
            &format!("error: function `{qualified}` cannot be called as a tool: {reason}"),
        );
        assert!(!out.stderr.contains("trap"), "{}", out.stderr);
        let out = run(&["call", "--json", p, function, args]);
        assert_eq!(out.code, Some(1));
        let envelope = out.json();
        assert_eq!(envelope["ok"], false);
        assert_eq!(envelope["error"]["kind"], "unsupported");
    }
    let out = run(&["call", p, "blobs.echo", r#"{"s": "x"}"#]);
    fails(&out, "guest trapped");
}

#[test]
fn streams_and_futures_are_reported_by_inspect_and_refused_by_call() {
    let dir = tempdir();
    let path = write_component(dir.path(), "flows.wasm", ASYNC_WIT);
    let p = path.to_str().unwrap();
    let out = ok(run(&["inspect", p]));
    assert!(out.stdout.contains("\ntools (1):\n"), "{}", out.stdout);
    for expected in [
        "  flows.drain(s: stream<u8>) -> u32\n      not callable as a tool: parameter `s` is a stream (stream<u8>); futures and streams need the async component model, which tools do not support\n",
        "  flows.later() -> future<string>\n      not callable as a tool: the result is a future (future<string>); futures and streams need the async component model, which tools do not support\n",
    ] {
        assert!(
            out.stdout.contains(expected),
            "expected\n{expected}in\n{}",
            out.stdout
        );
    }
    let out = run(&["call", p, "drain", "[]"]);
    fails(
        &out,
        "error: function `flows.drain` cannot be called as a tool: parameter `s` is a stream (stream<u8>)",
    );
    let out = run(&["call", p, "flows.later"]);
    fails(
        &out,
        "error: function `flows.later` cannot be called as a tool: the result is a future (future<string>)",
    );
    // The refusal came before running anything: the dummy functions trap when they do run.
    let out = run(&["call", p, "flows.echo", r#"{"s": "x"}"#]);
    fails(&out, "guest trapped");
}

// ---------------------------------------------------------------------------------------------------------------
// are call
// ---------------------------------------------------------------------------------------------------------------

const WORD_COUNT: &str = r#"{"text": "hi there"}"#;

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

// ---------------------------------------------------------------------------------------------------------------
// Policies
// ---------------------------------------------------------------------------------------------------------------

/// A TOML string for `path`.
fn toml_path(path: &Path) -> String {
    toml::Value::String(path.to_str().expect("utf-8").to_string()).to_string()
}

fn sha256_hex(path: &Path) -> String {
    <sha2::Sha256 as sha2::Digest>::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn write_policy(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("are.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn policy_check_accepts_a_good_policy() {
    let dir = tempdir();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let hash = are_tests::guest("hash").wasm_path();
    let policy = write_policy(
        dir.path(),
        &format!(
            r#"[defaults.limits]
fuel = 1_000_000
memory = "32 MiB"
timeout = "2s"
max_output = "64 KiB"

[component.hash]
source = {source}
sha256 = "{sha}"
allow.fs = [{{ host = "data", guest = "/data" }}]
limits.fuel = "unlimited"

[component.text]
source = {text}
"#,
            source = toml_path(hash),
            sha = sha256_hex(hash),
            text = toml_path(are_tests::guest("text").wasm_path()),
        ),
    );
    let p = policy.to_str().unwrap();
    let out = ok(run(&["policy", "check", p]));
    assert_eq!(out.stdout, format!("{p}: ok, 2 component(s)\n"));

    // The default file name is are.toml in the current directory.
    let out = ok(output(
        are().current_dir(dir.path()).args(["policy", "check"]),
    ));
    assert_eq!(out.stdout, "are.toml: ok, 2 component(s)\n");
}

#[test]
fn policy_check_points_at_mistakes() {
    let dir = tempdir();
    let hash = toml_path(are_tests::guest("hash").wasm_path());
    for (text, expected) in [
        (
            format!("[component.hash]\nsource = {hash}\nallow.htp = []\n"),
            ":3:7: unknown field `htp`",
        ),
        (
            "[defaults.limits]\nmemory = \"lots\"\n".to_string(),
            ":2:10: invalid size \"lots\"",
        ),
        (
            "[defaults.limits]\ntimeout = \"soon\"\n".to_string(),
            ":2:11: invalid duration \"soon\"",
        ),
        (
            "[defaults]\nlimit.fuel = 5\n".to_string(),
            ":2:1: unknown field `limit`",
        ),
        (
            format!(
                "[component.hash]\nsource = {hash}\nallow.fs = [{{ host = \"missing-dir\", guest = \"/data\" }}]\n"
            ),
            ":3:22: mount host directory ",
        ),
        (
            format!("[component.\"bad name\"]\nsource = {hash}\n"),
            ":1:12: invalid component name \"bad name\"",
        ),
        (
            format!("[component.hash]\nsource = {hash}\nallow.http = [\"https://*.0.0.1\"]\n"),
            ":3:15: invalid http origin \"https://*.0.0.1\": a wildcard must be `*.` followed by a DNS name",
        ),
    ] {
        let policy = write_policy(dir.path(), &text);
        let p = policy.to_str().unwrap();
        let out = run(&["policy", "check", p]);
        fails(&out, &format!("error: {p}{expected}"));
        assert!(out.stdout.is_empty(), "{}", out.stdout);
    }

    // Sources that are missing, or do not match their pin, are each reported.
    let hash_path = are_tests::guest("hash").wasm_path();
    let wrong_pin = "0".repeat(64);
    let policy = write_policy(
        dir.path(),
        &format!(
            "[component.gone]\nsource = \"gone.wasm\"\n\n[component.hash]\nsource = {hash}\nsha256 = \"{wrong_pin}\"\n\n[component.notes]\nsource = \"notes.txt\"\n"
        ),
    );
    std::fs::write(dir.path().join("notes.txt"), "plain text\n").unwrap();
    let p = policy.to_str().unwrap();
    let out = run(&["policy", "check", p]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let gone = dir.path().join("gone.wasm");
    assert!(
        out.stderr.contains(&format!(
            "error: component `gone`: component not found: {}",
            gone.display()
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "error: component `hash`: sha256 mismatch for {}: the policy pins {wrong_pin} but the file is {}; \
             if the new file is intended, update `sha256` in the policy",
            hash_path.display(),
            sha256_hex(hash_path)
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("error: component `notes`: ")
            && out.stderr.contains("is not a WebAssembly file"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.ends_with(&format!("{p}: 3 problem(s)\n")),
        "{}",
        out.stderr
    );

    let out = run(&[
        "policy",
        "check",
        dir.path().join("nope.toml").to_str().unwrap(),
    ]);
    fails(&out, "error: cannot read policy ");
    assert!(out.stderr.contains("nope.toml"), "{}", out.stderr);
}

#[test]
fn policy_limits_are_layered_and_flags_win() {
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        &format!(
            r#"[defaults.limits]
fuel = 123_456_789
memory = "1 MiB"

[component.text]
source = {text}
limits.fuel = 987_654_321
limits.memory = "64 MiB"

[component.text-defaults]
source = "text-copy.wasm"
"#,
            text = toml_path(are_tests::guest("text").wasm_path()),
        ),
    );
    // A copy: same bytes (and compile cache entry), another file, so that each file has one policy entry.
    std::fs::copy(guest("text"), dir.path().join("text-copy.wasm")).unwrap();
    let p = policy.to_str().unwrap();
    let fuel_limit = |out: &Output| out.json()["stats"]["fuel_limit"].clone();

    let out = ok(run(&[
        "call",
        "--policy",
        p,
        "--json",
        "--stats",
        "text",
        "word-count",
        WORD_COUNT,
    ]));
    assert_eq!(fuel_limit(&out), 987_654_321, "the component's own limit");
    // The same file called by path gets the same entry.
    let out = ok(run(&[
        "call",
        "--policy",
        p,
        "--json",
        "--stats",
        guest("text"),
        "word-count",
        WORD_COUNT,
    ]));
    assert_eq!(
        fuel_limit(&out),
        987_654_321,
        "by path, the entry of that file"
    );
    let copy = dir.path().join("text-copy.wasm");
    let out = ok(run(&[
        "call",
        "--policy",
        p,
        "--json",
        "--stats",
        "--memory",
        "64MiB",
        copy.to_str().unwrap(),
        "word-count",
        WORD_COUNT,
    ]));
    assert_eq!(
        fuel_limit(&out),
        123_456_789,
        "by path, the entry of that file"
    );
    let out = ok(run(&[
        "call",
        "--policy",
        p,
        "--json",
        "--stats",
        "--fuel",
        "4242424",
        "text",
        "word-count",
        WORD_COUNT,
    ]));
    assert_eq!(fuel_limit(&out), 4_242_424, "--fuel wins over the policy");

    // Without its own limits, a component gets [defaults.limits]: 1 MiB is too little memory for it.
    let out = run(&[
        "call",
        "--policy",
        p,
        "--json",
        "--stats",
        "text-defaults",
        "word-count",
        WORD_COUNT,
    ]);
    assert_eq!(out.code, Some(1));
    let envelope = out.json();
    assert_eq!(envelope["error"]["kind"], "memory_exceeded");
    assert_eq!(envelope["stats"]["fuel_limit"], 123_456_789);
    assert!(
        envelope["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit of 1.0 MiB"),
        "{envelope}"
    );
    let out = ok(run(&[
        "call",
        "--policy",
        p,
        "--memory",
        "64MiB",
        "text-defaults",
        "word-count",
        WORD_COUNT,
    ]));
    assert_eq!(out.json()["words"], 2, "--memory wins over the policy");
}

#[test]
fn a_component_called_by_policy_name_gets_its_grants() {
    let dir = tempdir();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("note.txt"), "granted\n").unwrap();
    let files = are_tests::guest("files").wasm_path();
    let policy = write_policy(
        dir.path(),
        &format!(
            "[component.files]\nsource = {}\nallow.fs = [{{ host = \"data\", guest = \"/data\" }}]\n",
            toml_path(files)
        ),
    );
    let p = policy.to_str().unwrap();
    let read = r#"{"path": "/data/note.txt"}"#;

    let out = ok(run(&["call", "--policy", p, "files", "files.read", read]));
    assert_eq!(out.json(), json!({"ok": "granted\n"}));
    // By path, the policy entry whose source is that file applies.
    let out = ok(run(&[
        "call",
        "--policy",
        p,
        files.to_str().unwrap(),
        "read",
        read,
    ]));
    assert_eq!(out.json(), json!({"ok": "granted\n"}));
    // Without the policy nothing is granted.
    let out = run(&["call", files.to_str().unwrap(), "read", read]);
    assert_eq!(out.code, Some(1));
    let err = out.json()["err"]["permission-denied"]
        .as_str()
        .expect("permission-denied")
        .to_string();
    assert!(err.contains("granted: none"), "{err}");
    // The grant is read-only by default.
    let out = run(&[
        "call",
        "--policy",
        p,
        "files",
        "write",
        r#"{"path": "/data/new.txt", "contents": "x"}"#,
    ]);
    assert_eq!(out.code, Some(1));
    assert!(out.json()["err"].is_object(), "{}", out.stdout);
    assert!(!data.join("new.txt").exists());

    // A name the policy does not know is taken as a path.
    let out = run(&["call", "--policy", p, "filez", "read", read]);
    fails(&out, "error: component not found: filez");

    // A pin mismatch refuses to load, and says how to fix it.
    let policy = write_policy(
        dir.path(),
        &format!(
            "[component.files]\nsource = {}\nsha256 = \"{}\"\n",
            toml_path(files),
            "ab".repeat(32)
        ),
    );
    let out = run(&[
        "call",
        "--policy",
        policy.to_str().unwrap(),
        "files",
        "read",
        read,
    ]);
    fails(
        &out,
        &format!(
            "error: sha256 mismatch for {}: the policy pins {} but the file is {}; if the new file is intended, update `sha256` in the policy",
            files.display(),
            "ab".repeat(32),
            sha256_hex(files)
        ),
    );
}

// ---------------------------------------------------------------------------------------------------------------
// are new, are build
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn new_then_build_gives_a_documented_callable_tool() {
    let dir = tempdir();
    let crate_dir = dir.path().join("greeter");
    let out = ok(output(are().args([
        "new",
        "tool",
        "greeter",
        "--dir",
        crate_dir.to_str().unwrap(),
    ])));
    assert!(
        out.stdout.starts_with(&format!(
            "created tool `greeter` in {}",
            crate_dir.display()
        )),
        "{}",
        out.stdout
    );
    for file in ["Cargo.toml", "wit/world.wit", "src/lib.rs", ".gitignore"] {
        assert!(crate_dir.join(file).is_file(), "{file} was not written");
    }
    let out = run(&[
        "new",
        "tool",
        "greeter",
        "--dir",
        crate_dir.to_str().unwrap(),
    ]);
    fails(&out, "already exists");

    // One target directory for every run, so that only the tool itself is rebuilt.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("guest-build");
    let out = ok(run(&[
        "build",
        crate_dir.to_str().unwrap(),
        "--target-dir",
        target.to_str().unwrap(),
    ]));
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("greeter  "))
        .unwrap_or_else(|| panic!("no line for the tool in {}", out.stdout));
    let wasm = line.split("  ").nth(1).expect("the path");
    assert!(wasm.ends_with("greeter.wasm"), "{line}");
    assert!(Path::new(wasm).starts_with(&target), "{line}");

    let json = ok(run(&["inspect", "--json", wasm])).json();
    assert_eq!(json["docs_source"], json!({"kind": "embedded"}));
    assert_eq!(json["world"], "greeter-tool");
    assert_eq!(json["tools"][0]["qualified_name"], "greeter.greet");
    assert!(
        json["tools"][0]["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("Greets someone.")),
        "{json}"
    );
    let human = ok(run(&["inspect", wasm]));
    assert!(
        human
            .stdout
            .contains("  greeter.greet(name: string) -> string\n      Greets someone.\n"),
        "{}",
        human.stdout
    );
    let out = ok(run(&[
        "call",
        wasm,
        "greeter.greet",
        r#"{"name": "world"}"#,
    ]));
    assert_eq!(out.json(), json!("hello, world"));
}

#[test]
fn new_refuses_bad_names_and_build_needs_a_crate() {
    let dir = tempdir();
    for name in [
        "Greeter",
        "9lives",
        "my_tool",
        "double--dash",
        "trailing-",
        "-lead",
        "",
        "wörd",
    ] {
        let target = dir.path().join("x");
        let out = output(are().current_dir(dir.path()).args([
            "new",
            "tool",
            name,
            "--dir",
            target.to_str().unwrap(),
        ]));
        if name.starts_with('-') {
            // Taken as an option by the argument parser.
            assert_eq!(out.code, Some(2), "{name}: {}", out.stderr);
        } else {
            fails(&out, &format!("error: invalid tool name {name:?}"));
        }
        assert!(!target.exists(), "{name}: nothing is created");
    }
    let out = run(&["build", dir.path().to_str().unwrap()]);
    fails(
        &out,
        &format!(
            "error: no Cargo.toml in {}; pass the directory of a guest crate (`are new tool NAME` creates one)",
            dir.path().display()
        ),
    );
}

//! `are inspect`: world, tools, docs and imports by capability, as text and as JSON; resources, streams and
//! futures reported (and refused by `are call`).

use super::{fails, guest, ok, write_component};
use crate::common::{run, sha256_hex, tempdir, with_docs};
use serde_json::json;

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
        "fs" => import.starts_with("wasi:filesystem/"),
        "env" => import.starts_with("wasi:cli/environment@"),
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
        "fs", "env", "clocks", "random", "stdio", "io", "http", "sockets", "other",
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
        capabilities.contains(&"fs") && capabilities.contains(&"stdio"),
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
            "fs" => Some("allow.fs"),
            "env" => Some("allow.env"),
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
    assert_eq!(groups[0].0, "fs");
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
    assert_eq!(json["sha256"], sha256_hex(&bytes));

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

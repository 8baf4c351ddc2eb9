//! Listing and calling tools, over both transports: names and pages, schemas and docs, argument errors as
//! protocol errors, denials and limits as tool errors.

use super::{Serve, Transport, component, output_of};
use crate::common::{tempdir, toml_path, with_docs, write_policy};
use rmcp::model::{
    CallToolResult, ClientRequest, ErrorCode, PaginatedRequestParams, ProtocolVersion,
};
use serde_json::{Value, json};

over_both_transports!(
    lists_and_calls_tools,
    pages_through_tools,
    describes_rich_types_with_schemas_and_docs,
    argument_errors_are_protocol_errors,
    denials_and_limits_are_tool_errors,
    long_names_are_shortened_stably_and_dotted_names_are_a_choice,
);

async fn long_names_are_shortened_stably_and_dotted_names_are_a_choice(transport: Transport) {
    let long = "a-component-whose-name-is-long-enough-to-need-a-hash-when-served";
    let dir = tempdir();
    let policy = write_policy(dir.path(), &component(long, "text", ""));
    let names = |serve: Serve| async move {
        let client = serve.connect().await;
        let names = client.names().await;
        let count = names
            .iter()
            .find(|n| n.ends_with("word-count"))
            .unwrap_or_else(|| panic!("word-count, its function name kept: {names:?}"))
            .clone();
        let counts = client.ok(&count, json!({"text": "a b c"})).await;
        client.close().await;
        (names, counts)
    };
    let (listed, counts) = names(Serve::start(transport, &policy).await).await;
    assert_eq!(counts["words"], 3);
    assert_eq!(listed.len(), 4, "{listed:?}");
    for name in &listed {
        assert!(name.len() <= 64, "{name}");
        assert!(name.starts_with("a-component-whose-name-is-long"), "{name}");
    }
    assert!(
        listed.iter().any(|n| n.ends_with("__word-count")),
        "the function name is kept: {listed:?}"
    );
    let unique: std::collections::BTreeSet<_> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "collision-free: {listed:?}");
    let (again, _) = names(Serve::start(transport, &policy).await).await;
    assert_eq!(again, listed, "stable across restarts");

    let dotted = format!(
        "[serve]\ntool_names = \"dotted\"\n\n{}",
        component("text", "text", "")
    );
    let policy = write_policy(dir.path(), &dotted);
    let (listed, _) = names(Serve::start(transport, &policy).await).await;
    assert!(
        listed.contains(&"text.word-count".to_string()),
        "{listed:?}"
    );
}

async fn lists_and_calls_tools(transport: Transport) {
    let policy = component("text", "text", "") + &component("kv", "kv", "");
    let serve = Serve::for_policy(transport, &policy).await;
    let client = serve.connect().await;

    let info = client.service.peer_info().expect("server info");
    assert_eq!(info.server_info.as_ref().expect("serverInfo").name, "are");
    assert_eq!(info.protocol_version, ProtocolVersion::V_2025_11_25);
    let tools = info.capabilities.tools.as_ref().expect("tools capability");
    assert_eq!(tools.list_changed, Some(true));
    assert!(info.capabilities.logging.is_some(), "logging capability");
    client
        .service
        .send_request(ClientRequest::PingRequest(Default::default()))
        .await
        .expect("ping");

    let names = client.names().await;
    assert_eq!(
        names,
        [
            "kv__delete",
            "kv__get",
            "kv__increment",
            "kv__keys",
            "kv__set",
            "text__find",
            "text__replace",
            "text__slugify",
            "text__word-count",
        ]
    );
    // Every model API takes these as function names.
    for name in &names {
        assert!(
            (1..=64).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c)),
            "{name}"
        );
    }
    // Both spellings call the tool.
    assert_eq!(
        client.ok("text.word-count", json!({"text": "a b"})).await["words"],
        2
    );
    assert_eq!(
        client.ok("text__word-count", json!({"text": "a b"})).await["words"],
        2
    );

    let counts = client
        .ok("text.word-count", json!({"text": "one two\nthree"}))
        .await;
    assert_eq!(
        counts,
        json!({"words": 3, "lines": 2, "chars": 13, "bytes": 13})
    );
    assert_eq!(
        client
            .ok(
                "text.slugify",
                json!({"text": "Héllo, Wörld!", "separator": "_"})
            )
            .await,
        "hello_world"
    );
    // An optional parameter may be left out.
    assert_eq!(
        client
            .ok("text.slugify", json!({"text": "Hello World"}))
            .await,
        "hello-world"
    );
    // A WIT `result`: its `ok` is the output, its `err` a tool error.
    let found = client
        .ok("text.find", json!({"pattern": "o(.)", "text": "foo boa"}))
        .await;
    assert_eq!(found[0]["text"], "oo");
    assert_eq!(found[1]["groups"], json!(["a"]));
    let message = client
        .tool_error("text.find", json!({"pattern": "(", "text": "x"}))
        .await;
    assert!(message.contains("regex"), "{message}");
    // A function without parameters, called without arguments.
    assert_eq!(client.ok("kv.keys", Value::Null).await, json!([]));
    client.close().await;
}

async fn pages_through_tools(transport: Transport) {
    let policy = "[serve]\npage_size = 3\n\n".to_string()
        + &component("text", "text", "")
        + &component("kv", "kv", "")
        + &component("hash", "hash", "");
    let serve = Serve::for_policy(transport, &policy).await;
    let client = serve.connect().await;
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let request = cursor
            .take()
            .map(|c| PaginatedRequestParams::default().with_cursor(Some(c)));
        let page = client
            .service
            .list_tools(request)
            .await
            .expect("tools/list");
        pages.push(
            page.tools
                .iter()
                .map(|t| t.name.to_string())
                .collect::<Vec<_>>(),
        );
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages.len() < 20, "pagination does not end");
    }
    let all: Vec<String> = pages.concat();
    assert!(all.len() > 9, "enough tools for several pages: {all:?}");
    // Full pages of three, then the rest.
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    let expected: Vec<usize> = all.chunks(3).map(<[String]>::len).collect();
    assert_eq!(sizes, expected, "{pages:?}");
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(all, sorted, "pages are in order and do not repeat");
    assert_eq!(all, client.names().await);
    client.close().await;
}

async fn describes_rich_types_with_schemas_and_docs(transport: Transport) {
    let dir = tempdir();
    let hash = with_docs("hash", dir.path());
    let files = with_docs("files", dir.path());
    std::fs::create_dir(dir.path().join("data")).expect("mkdir");
    std::fs::write(dir.path().join("data/notes.txt"), "abc").expect("write");
    let policy = write_policy(
        dir.path(),
        &format!(
            "[component.hash]\nsource = {}\nallow.fs = [{{ host = \"data\", guest = \"/data\", mode = \"ro\" }}]\n\n\
             [component.files]\nsource = {}\nallow.fs = [{{ host = \"data\", guest = \"/data\", mode = \"ro\" }}]\n",
            toml_path(&hash),
            toml_path(&files)
        ),
    );
    let serve = Serve::start(transport, &policy).await;
    let client = serve.connect().await;
    let tools = client.service.list_all_tools().await.expect("tools/list");
    let tool = |name: &str| {
        tools
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no tool {name}"))
            .clone()
    };

    let sha = tool("hash__sha256");
    let description = sha.description.as_deref().unwrap_or_default();
    assert!(
        description.starts_with("Computes the SHA-256 digest of text, bytes or a file."),
        "{description}"
    );
    let input = Value::Object((*sha.input_schema).clone());
    assert_eq!(input["type"], "object");
    assert_eq!(input["required"], json!(["input", "encodings"]));
    assert_eq!(input["additionalProperties"], false);
    // The variant: one object per case, each with its doc.
    let cases = input["properties"]["input"]["oneOf"]
        .as_array()
        .expect("variant cases");
    assert_eq!(cases.len(), 3);
    assert_eq!(cases[0]["required"], json!(["text"]));
    assert!(
        input.to_string().contains("The UTF-8 bytes of this text."),
        "case docs: {input}"
    );
    assert!(
        input["properties"]["encodings"].to_string().contains("hex"),
        "flags: {input}"
    );
    let output = Value::Object((*sha.output_schema.clone().expect("outputSchema")).clone());
    assert_eq!(output["type"], "object");
    assert_eq!(output["required"], json!(["result"]));
    let digest = &output["properties"]["result"];
    assert_eq!(digest["type"], "object", "{output}");
    assert!(digest["properties"]["size"].is_object(), "{output}");

    // Every input and output schema is a valid JSON Schema, and real arguments and results fit them.
    for t in &tools {
        let input = Value::Object((*t.input_schema).clone());
        jsonschema::validator_for(&input)
            .unwrap_or_else(|e| panic!("{}: invalid inputSchema: {e}", t.name));
        if let Some(output) = &t.output_schema {
            jsonschema::validator_for(&Value::Object((**output).clone()))
                .unwrap_or_else(|e| panic!("{}: invalid outputSchema: {e}", t.name));
        }
    }
    let check = |name: &str, args: &Value, result: &CallToolResult| {
        let t = tool(name);
        let input = jsonschema::validator_for(&Value::Object((*t.input_schema).clone())).unwrap();
        assert!(
            input.is_valid(args),
            "{name}: {args} does not fit its inputSchema"
        );
        let output = Value::Object((*t.output_schema.expect("outputSchema")).clone());
        let output = jsonschema::validator_for(&output).unwrap();
        let structured = result
            .structured_content
            .clone()
            .expect("structuredContent");
        assert!(
            output.is_valid(&structured),
            "{name}: {structured} does not fit its outputSchema"
        );
    };
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    for args in [
        json!({"input": {"text": "abc"}, "encodings": {"hex": true}}),
        json!({"input": {"bytes": [97, 98, 99]}, "encodings": ["hex", "base64"]}),
        json!({"input": {"file": "/data/notes.txt"}, "encodings": ["hex"]}),
    ] {
        let result = client.call("hash.sha256", args.clone()).await;
        check("hash__sha256", &args, &result);
        let digest = output_of("hash.sha256", &result);
        assert_eq!(digest["hex"], abc, "{args}");
        assert_eq!(digest["size"], 3);
    }

    let list = tool("files__list");
    assert!(
        list.description
            .as_deref()
            .is_some_and(|d| d.starts_with("Lists a directory, sorted by name.")),
        "{list:?}"
    );
    let args = json!({"path": "/data"});
    let result = client.call("files.list", args.clone()).await;
    check("files__list", &args, &result);
    let entries = output_of("files.list", &result);
    assert_eq!(entries[0]["name"], "notes.txt");
    assert_eq!(entries[0]["kind"], "file");
    assert_eq!(entries[0]["size"], 3);
    // The `err` variant of a WIT result becomes a tool error with its payload.
    let message = client
        .tool_error("files.read", json!({"path": "/data/missing.txt"}))
        .await;
    assert!(message.contains("missing.txt"), "{message}");
    client.close().await;
}

async fn argument_errors_are_protocol_errors(transport: Transport) {
    let serve = Serve::for_policy(transport, &component("text", "text", "")).await;
    let client = serve.connect().await;
    let unknown = client.protocol_error("text.nope", json!({})).await;
    assert_eq!(unknown.code, ErrorCode::INVALID_PARAMS);
    assert!(
        unknown.message.contains("unknown tool `text.nope`"),
        "{}",
        unknown.message
    );
    for (args, mentions) in [
        (json!({}), "text"),
        (json!({"text": 42}), "text"),
        (json!({"text": "a", "separator": ["-"]}), "separator"),
        (json!({"text": "a", "colour": "red"}), "colour"),
    ] {
        let e = client.protocol_error("text.slugify", args.clone()).await;
        assert_eq!(e.code, ErrorCode::INVALID_PARAMS, "{args}: {e:?}");
        assert!(
            e.message
                .starts_with("invalid arguments for `text.slugify`")
                && e.message.contains(mentions),
            "{args}: {}",
            e.message
        );
    }
    // The session is still fine.
    assert_eq!(
        client
            .ok("text.slugify", json!({"text": "still here"}))
            .await,
        "still-here"
    );
    client.close().await;
}

async fn denials_and_limits_are_tool_errors(transport: Transport) {
    let policy = [
        component("fetch", "fetch", ""),
        component("loop", "hostile-loop", "limits.fuel = 5_000_000"),
        component("sleep", "hostile-sleep", "limits.timeout = \"300ms\""),
        component("memory", "hostile-memory", "limits.memory = \"16 MiB\""),
        component("output", "hostile-output", "limits.max_output = \"64 KiB\""),
        component("panic", "hostile-panic", ""),
    ]
    .concat();
    let serve = Serve::for_policy(transport, &policy).await;
    let client = serve.connect().await;
    let cases = [
        (
            "fetch.get",
            json!({"url": "http://127.0.0.1:9/"}),
            &["capability not granted: wasi:http/", "allow.http"][..],
        ),
        (
            "loop.spin",
            json!({}),
            &["out of fuel", "5000000", "limits.fuel"][..],
        ),
        (
            "sleep.sleep-forever",
            json!({}),
            &["timed out", "300ms", "limits.timeout"][..],
        ),
        (
            "memory.allocate",
            json!({"mib": 64}),
            &["memory limit exceeded", "16.0 MiB", "limits.memory"][..],
        ),
        (
            "output.huge-string",
            json!({"mib": 1}),
            &["output limit exceeded", "64.0 KiB", "limits.max_output"][..],
        ),
        (
            "panic.panic",
            json!({"message": "the tool gave up"}),
            &["guest panicked: the tool gave up"][..],
        ),
    ];
    for (name, args, expected) in cases {
        let message = client.tool_error(name, args).await;
        for part in expected {
            assert!(message.contains(part), "{name}: {message:?} lacks {part:?}");
        }
    }
    // Failures are per call: the same components still answer.
    assert!(
        client
            .ok("memory.allocate", json!({"mib": 1}))
            .await
            .is_u64()
    );
    assert_eq!(client.ok("panic.divide", json!({"a": 7, "b": 2})).await, 3);
    client.close().await;
}

//! The example tools (text, json, hash, files, fetch) called through the host, with their rich WIT types in
//! JSON: every argument sent is checked against the tool's input schema, and every result against its output
//! schema. Arguments that do not fit are refused by the schema and by the host, with the same verdict.

use crate::common::{TestServer, call, load, load_spec, spec, tempdir};
use are_runtime::component::LoadedComponent;
use are_runtime::invoke::{CallError, CallOutput};
use are_runtime::schema;
use serde_json::{Value, json};
use sha2::Digest as _;

/// Why `value` does not match `schema`, if it does not, by a draft 2020-12 validator; a draft-07 validator must
/// give the same verdict. The draft-07 one reads the schema as the TypeScript SDK and the Inspector do (Ajv's
/// default draft, without checking `$schema`), so a tool result those clients would reject fails here.
fn schema_errors(schema: &Value, value: &Value) -> Vec<String> {
    let validator = jsonschema::draft202012::new(schema)
        .unwrap_or_else(|e| panic!("not a valid 2020-12 JSON Schema ({e}): {schema}"));
    let mut as_draft7 = schema.clone();
    if let Value::Object(map) = &mut as_draft7 {
        map.remove("$schema");
    }
    let draft7 = jsonschema::draft7::new(&as_draft7)
        .unwrap_or_else(|e| panic!("not a valid draft-07 JSON Schema ({e}): {schema}"));
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        draft7.is_valid(value),
        errors.is_empty(),
        "draft-07 and 2020-12 validators disagree on {value} (2020-12: {errors:?})\nschema: {schema}"
    );
    errors
}

fn input_schema(c: &LoadedComponent, function: &str) -> Value {
    let f = c.description.find(function).expect(function);
    schema::input_schema(&c.description, f)
}

/// Positional arguments (a convenience the schema does not describe) in their named form; others as they are.
fn named(c: &LoadedComponent, function: &str, args: &Value) -> Value {
    let Value::Array(items) = args else {
        return args.clone();
    };
    let f = c.description.find(function).expect(function);
    let names = f.params.iter().map(|(name, _)| name.clone());
    Value::Object(names.zip(items.iter().cloned()).collect())
}

/// Call `function`, checking `args` against its input schema and the result against its output schema.
async fn checked(c: &LoadedComponent, function: &str, args: Value) -> CallOutput {
    let errors = schema_errors(&input_schema(c, function), &named(c, function, &args));
    assert!(
        errors.is_empty(),
        "{function}: the arguments {args} do not match the input schema: {errors:?}"
    );
    let report = call(c, function, args.clone()).await;
    let out = report.outcome.unwrap_or_else(|e| {
        panic!(
            "{function}({args}) failed: {e}\nstderr: {}",
            String::from_utf8_lossy(&report.stderr)
        )
    });
    let f = c.description.find(function).expect(function);
    match schema::output_schema(&c.description, f) {
        Some(output) => {
            let errors = schema_errors(&output, &out.value);
            assert!(
                errors.is_empty(),
                "{function}: the result {} does not match the output schema: {errors:?}\nschema: {output}",
                out.value
            );
        }
        None => assert_eq!(out.value, Value::Null),
    }
    out
}

/// The result of a function without `result<…>`.
async fn plain(c: &LoadedComponent, function: &str, args: Value) -> Value {
    let out = checked(c, function, args).await;
    assert!(!out.is_err);
    out.value
}

/// The `ok` payload of a function returning `result<…>`.
async fn ok(c: &LoadedComponent, function: &str, args: Value) -> Value {
    let out = checked(c, function, args.clone()).await;
    assert!(!out.is_err, "{function}({args}) returned {}", out.value);
    let Value::Object(map) = out.value else {
        panic!("{function}: not a result: {}", out.value);
    };
    assert_eq!(map.len(), 1);
    map.get("ok").cloned().expect("an ok key")
}

/// The `err` payload of a function returning `result<…>`.
async fn err(c: &LoadedComponent, function: &str, args: Value) -> Value {
    let out = checked(c, function, args.clone()).await;
    assert!(out.is_err, "{function}({args}) succeeded: {}", out.value);
    let Value::Object(map) = out.value else {
        panic!("{function}: not a result: {}", out.value);
    };
    assert_eq!(map.len(), 1);
    map.get("err").cloned().expect("an err key")
}

/// Arguments that do not fit: the host refuses them before calling, and says where and why. Returns
/// `path: message`.
async fn refused(c: &LoadedComponent, function: &str, args: Value) -> String {
    match call(c, function, args.clone()).await.outcome {
        Err(CallError::InvalidArguments(e)) => e.to_string(),
        Err(other) => panic!("{function}({args}): expected invalid arguments, got {other}"),
        Ok(out) => panic!("{function}({args}) was accepted and returned {}", out.value),
    }
}

/// Like [`refused`], and the input schema refuses them too.
async fn refused_by_both(c: &LoadedComponent, function: &str, args: Value) -> String {
    assert!(
        !schema_errors(&input_schema(c, function), &named(c, function, &args)).is_empty(),
        "{function}: the input schema accepts {args}, which the host refuses"
    );
    refused(c, function, args).await
}

// ---------------------------------------------------------------------------------------------------------------
// text
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn text_counts_words_lines_chars_and_bytes() {
    let text = load("text", "");
    assert_eq!(
        plain(
            &text,
            "word-count",
            json!({"text": "héllo world\nsecond line\n"})
        )
        .await,
        json!({"words": 4, "lines": 2, "chars": 24, "bytes": 25})
    );
    assert_eq!(
        plain(&text, "text.word-count", json!([""])).await,
        json!({"words": 0, "lines": 0, "chars": 0, "bytes": 0})
    );
}

#[tokio::test]
async fn text_slugifies_with_and_without_a_separator() {
    let text = load("text", "");
    let title = "  Crème brûlée — déjà vu  ";
    assert_eq!(
        plain(&text, "slugify", json!({"text": title})).await,
        "creme-brulee-deja-vu"
    );
    assert_eq!(
        plain(&text, "slugify", json!({"text": title, "separator": null})).await,
        "creme-brulee-deja-vu"
    );
    assert_eq!(
        plain(&text, "slugify", json!({"text": title, "separator": "_"})).await,
        "creme_brulee_deja_vu"
    );
    assert_eq!(
        plain(&text, "slugify", json!(["Don't panic", "+"])).await,
        "dont+panic"
    );
    let message = refused_by_both(&text, "slugify", json!({"text": title, "separator": 1})).await;
    assert_eq!(message, "args.separator: expected string, got number 1");
}

#[tokio::test]
async fn text_finds_matches_with_byte_offsets_and_groups() {
    let text = load("text", "");
    let pattern = r"(\w+)@(\w+)?\.com";
    let found = ok(
        &text,
        "find",
        json!({"pattern": pattern, "text": "a@b.com, c@.com"}),
    )
    .await;
    assert_eq!(
        found,
        json!([
            {"start": 0, "end": 7, "text": "a@b.com", "groups": ["a", "b"]},
            {"start": 9, "end": 15, "text": "c@.com", "groups": ["c", null]},
        ])
    );
    let first = ok(
        &text,
        "find",
        json!({"pattern": pattern, "text": "a@b.com, c@.com", "limit": 1}),
    )
    .await;
    assert_eq!(first, json!([found[0]]));
    // A whole float is an integer.
    let first = ok(
        &text,
        "find",
        json!({"pattern": pattern, "text": "a@b.com, c@.com", "limit": 1.0}),
    )
    .await;
    assert_eq!(first, json!([found[0]]));
    // Offsets count bytes of UTF-8.
    assert_eq!(
        ok(&text, "find", json!({"pattern": "b", "text": "éb"})).await,
        json!([{"start": 2, "end": 3, "text": "b", "groups": []}])
    );
    assert_eq!(
        ok(&text, "find", json!({"pattern": "z", "text": "abc"})).await,
        json!([])
    );

    let message = err(&text, "find", json!({"pattern": "(unclosed", "text": "x"})).await;
    let message = message.as_str().expect("a string error");
    assert!(
        message.starts_with("invalid pattern `(unclosed`: "),
        "{message}"
    );
}

#[tokio::test]
async fn text_replaces_with_capture_groups() {
    let text = load("text", "");
    assert_eq!(
        ok(
            &text,
            "replace",
            json!({"pattern": r"(\w+)@(\w+)", "text": "a@b x@y", "replacement": "$2@$1"}),
        )
        .await,
        "b@a y@x"
    );
    assert_eq!(
        ok(
            &text,
            "replace",
            json!({"pattern": "o", "text": "foo", "replacement": "$$"}),
        )
        .await,
        "f$$"
    );
    let message = err(
        &text,
        "replace",
        json!({"pattern": "[", "text": "x", "replacement": ""}),
    )
    .await;
    assert!(
        message.as_str().unwrap().starts_with("invalid pattern `[`"),
        "{message}"
    );
}

#[tokio::test]
async fn integers_are_range_checked_through_a_real_call() {
    let text = load("text", "");
    let args = |limit: Value| json!({"pattern": "a", "text": "aaa", "limit": limit});
    for (limit, message) in [
        (json!(-1), "args.limit: expected u32, got -1"),
        (
            json!(4_294_967_296u64),
            "args.limit: expected u32, got 4294967296",
        ),
        (json!(1.5), "args.limit: expected u32, got 1.5"),
        (json!("2"), "args.limit: expected u32, got string \"2\""),
    ] {
        assert_eq!(refused_by_both(&text, "find", args(limit)).await, message);
    }
    assert_eq!(
        ok(&text, "find", args(json!(u32::MAX)))
            .await
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    let json_tool = load("json", "");
    assert_eq!(
        refused_by_both(
            &json_tool,
            "pretty",
            json!({"document": "{}", "indent": 256})
        )
        .await,
        "args.indent: expected u8, got 256"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// json
// ---------------------------------------------------------------------------------------------------------------

const STORE: &str = r#"{"store": {"book": [
    {"title": "Sayings of the Century", "price": 8.95},
    {"title": "Moby Dick", "price": 22.99}
], "bicycle": {"color": "red"}}}"#;

#[tokio::test]
async fn json_queries_and_gets_with_path_expressions() {
    let tool = load("json", "");
    assert_eq!(
        ok(
            &tool,
            "query",
            json!({"document": STORE, "path": "$.store.book[?@.price < 10].title"}),
        )
        .await,
        json!([{
            "location": "$['store']['book'][0]['title']",
            "value": "\"Sayings of the Century\"",
        }])
    );
    let titles = ok(
        &tool,
        "query",
        json!({"document": STORE, "path": "store.book[*].title"}),
    )
    .await;
    assert_eq!(titles.as_array().map(Vec::len), Some(2));
    assert_eq!(titles[1]["value"], "\"Moby Dick\"");
    assert_eq!(
        ok(
            &tool,
            "query",
            json!({"document": STORE, "path": "$.nothing"})
        )
        .await,
        json!([])
    );
    assert_eq!(
        ok(
            &tool,
            "get",
            json!({"document": STORE, "path": "$.store.book[1].price"})
        )
        .await,
        "22.99"
    );
    assert_eq!(
        ok(&tool, "get", json!({"document": STORE, "path": "bicycle"})).await,
        Value::Null,
        "no match is none"
    );
    assert_eq!(
        ok(
            &tool,
            "get",
            json!({"document": STORE, "path": "store.bicycle"})
        )
        .await,
        r#"{"color":"red"}"#
    );
}

#[tokio::test]
async fn json_pretty_prints_and_minifies() {
    let tool = load("json", "");
    let doc = r#"{"b":1,"a":[true,null]}"#;
    assert_eq!(
        ok(&tool, "pretty", json!({"document": doc})).await,
        "{\n  \"b\": 1,\n  \"a\": [\n    true,\n    null\n  ]\n}"
    );
    assert_eq!(
        ok(&tool, "pretty", json!({"document": doc, "indent": 4})).await,
        "{\n    \"b\": 1,\n    \"a\": [\n        true,\n        null\n    ]\n}"
    );
    assert_eq!(
        err(&tool, "pretty", json!({"document": doc, "indent": 17})).await,
        "indent 17 is too wide: at most 16 spaces"
    );
    assert_eq!(
        ok(&tool, "minify", json!([" { \"z\" : 1 , \"a\" : 2.5 } "])).await,
        r#"{"z":1,"a":2.5}"#
    );
}

#[tokio::test]
async fn json_type_of_returns_an_enum_case() {
    let tool = load("json", "");
    for (document, kind) in [
        ("null", "null"),
        ("true", "boolean"),
        ("-1.5e3", "number"),
        ("\"s\"", "string"),
        ("[]", "array"),
        (STORE, "object"),
    ] {
        assert_eq!(
            ok(&tool, "type-of", json!({ "document": document })).await,
            kind,
            "{document}"
        );
    }
}

#[tokio::test]
async fn json_reports_errors_as_err() {
    let tool = load("json", "");
    for function in ["query", "get"] {
        let message = err(
            &tool,
            function,
            json!({"document": "{not json", "path": "$"}),
        )
        .await;
        let message = message.as_str().unwrap();
        assert!(
            message.starts_with("the document is not valid JSON") && message.contains("line 1"),
            "{function}: {message}"
        );
        let message = err(&tool, function, json!({"document": "{}", "path": "$.["})).await;
        assert!(
            message.as_str().unwrap().starts_with("invalid path `$.[`"),
            "{function}: {message}"
        );
    }
    for function in ["minify", "type-of", "pretty"] {
        let message = err(&tool, function, json!({"document": "[1,"})).await;
        assert!(
            message
                .as_str()
                .unwrap()
                .starts_with("the document is not valid JSON"),
            "{function}: {message}"
        );
    }
}

// ---------------------------------------------------------------------------------------------------------------
// hash
// ---------------------------------------------------------------------------------------------------------------

const ABC_HEX: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const ABC_BASE64: &str = "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=";

#[tokio::test]
async fn hash_sha256_of_text_and_of_bytes_in_both_forms() {
    let hash = load("hash", "");
    let both = ok(
        &hash,
        "sha256",
        json!({"input": {"text": "abc"}, "encodings": ["hex", "base64"]}),
    )
    .await;
    assert_eq!(
        both,
        json!({"hex": ABC_HEX, "base64": ABC_BASE64, "size": 3})
    );
    for bytes in [json!("YWJj"), json!([97, 98, 99])] {
        let digest = ok(
            &hash,
            "sha256",
            json!({"input": {"bytes": bytes}, "encodings": {"hex": true, "base64": true}}),
        )
        .await;
        assert_eq!(digest, both, "bytes given as {bytes}");
    }
    // Padding is optional in base64 input.
    let digest = ok(
        &hash,
        "sha256",
        json!({"input": {"bytes": "YWI"}, "encodings": ["hex"]}),
    )
    .await;
    assert_eq!(
        digest["hex"],
        hex(&sha2::Sha256::digest(b"ab")),
        "unpadded base64"
    );
    assert_eq!(
        plain(&hash, "sha256-hex", json!({"text": "abc"})).await,
        ABC_HEX
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn hash_flags_choose_the_encodings() {
    let hash = load("hash", "");
    let digest = |encodings: Value| {
        let hash = &hash;
        async move {
            ok(
                hash,
                "sha256",
                json!({"input": {"text": "abc"}, "encodings": encodings}),
            )
            .await
        }
    };
    assert_eq!(
        digest(json!({"hex": true})).await,
        json!({"hex": ABC_HEX, "base64": null, "size": 3})
    );
    assert_eq!(
        digest(json!(["hex"])).await,
        json!({"hex": ABC_HEX, "base64": null, "size": 3})
    );
    assert_eq!(
        digest(json!({"hex": false, "base64": true})).await,
        json!({"hex": null, "base64": ABC_BASE64, "size": 3})
    );
    assert_eq!(
        digest(json!(["base64"])).await,
        json!({"hex": null, "base64": ABC_BASE64, "size": 3})
    );
    for none in [json!({}), json!([]), json!({"hex": false})] {
        assert_eq!(
            err(
                &hash,
                "sha256",
                json!({"input": {"text": "abc"}, "encodings": none}),
            )
            .await,
            "no encoding asked for: set `hex`, `base64` or both"
        );
    }
    assert_eq!(
        refused_by_both(
            &hash,
            "sha256",
            json!({"input": {"text": "abc"}, "encodings": ["hex", "md5"]}),
        )
        .await,
        "args.encodings: unknown flag \"md5\"; expected one of: hex, base64"
    );
    assert_eq!(
        refused_by_both(
            &hash,
            "sha256",
            json!({"input": {"text": "abc"}, "encodings": {"hex": 1}}),
        )
        .await,
        "args.encodings.hex: expected bool, got number 1"
    );
}

#[tokio::test]
async fn hash_sha256_of_a_file_under_a_granted_dir() {
    let dir = tempdir();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let contents: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("data/blob.bin"), &contents).unwrap();
    let hash = load_spec(spec(
        "hash",
        r#"fs = [{ host = "data", guest = "/data" }]"#,
        dir.path(),
    ));
    let digest = ok(
        &hash,
        "sha256",
        json!({"input": {"file": "/data/blob.bin"}, "encodings": ["hex"]}),
    )
    .await;
    assert_eq!(
        digest,
        json!({"hex": hex(&sha2::Sha256::digest(&contents)), "base64": null, "size": 200_000})
    );
    let message = err(
        &hash,
        "sha256",
        json!({"input": {"file": "/data/missing.bin"}, "encodings": ["hex"]}),
    )
    .await;
    assert!(
        message
            .as_str()
            .unwrap()
            .starts_with("cannot read `/data/missing.bin`"),
        "{message}"
    );
    // Outside the grant, there is nothing to read.
    let message = err(
        &hash,
        "sha256",
        json!({"input": {"file": "/etc/hostname"}, "encodings": ["hex"]}),
    )
    .await;
    assert!(
        message
            .as_str()
            .unwrap()
            .starts_with("cannot read `/etc/hostname`"),
        "{message}"
    );
}

#[tokio::test]
async fn hash_base64_round_trips_bytes() {
    let hash = load("hash", "");
    let data = [0xfb, 0xff, 0x00, 0x41];
    assert_eq!(
        plain(&hash, "base64-encode", json!({ "data": data })).await,
        "+/8AQQ=="
    );
    assert_eq!(
        plain(
            &hash,
            "base64-encode",
            json!({"data": "+/8AQQ==", "alphabet": "standard"})
        )
        .await,
        "+/8AQQ==",
        "list<u8> input as base64"
    );
    assert_eq!(
        plain(
            &hash,
            "base64-encode",
            json!({"data": data, "alphabet": "url-safe"})
        )
        .await,
        "-_8AQQ"
    );
    // list<u8> output is a base64 string.
    assert_eq!(
        ok(&hash, "base64-decode", json!({"text": "-_8A QQ\n"})).await,
        "+/8AQQ=="
    );
    let every_byte: Vec<u8> = (0..=255).collect();
    let encoded = plain(&hash, "base64-encode", json!({ "data": every_byte })).await;
    let decoded = ok(&hash, "base64-decode", json!({ "text": encoded })).await;
    assert_eq!(
        decoded, encoded,
        "decode(encode(bytes)) gives the bytes back"
    );
    assert_eq!(ok(&hash, "base64-decode", json!({"text": ""})).await, "");

    let message = err(&hash, "base64-decode", json!({"text": "a*b"})).await;
    assert!(
        message.as_str().unwrap().starts_with("not base64: "),
        "{message}"
    );
}

#[tokio::test]
async fn hash_rejects_bad_bytes_enum_cases_and_variant_cases() {
    let hash = load("hash", "");
    let message = refused_by_both(&hash, "base64-encode", json!({"data": "not base64!"})).await;
    assert!(
        message.starts_with("args.data: expected base64 for list<u8>, got "),
        "{message}"
    );
    // Base64 characters, but not a valid length: only the decoder can tell.
    let message = refused(&hash, "base64-encode", json!({"data": "abcde"})).await;
    assert!(
        message.starts_with("args.data: expected base64 for list<u8>, got "),
        "{message}"
    );
    assert_eq!(
        refused_by_both(&hash, "base64-encode", json!({"data": [1, 256]})).await,
        "args.data[1]: expected u8, got 256"
    );
    let message = refused_by_both(
        &hash,
        "sha256",
        json!({"input": {"bytes": "%%%"}, "encodings": ["hex"]}),
    )
    .await;
    assert!(
        message.starts_with("args.input.bytes: expected base64 for list<u8>, got "),
        "{message}"
    );
    assert_eq!(
        refused_by_both(
            &hash,
            "base64-encode",
            json!({"data": [], "alphabet": "base32"})
        )
        .await,
        "args.alphabet: unknown enum case \"base32\"; expected one of: standard, url-safe"
    );
    assert_eq!(
        refused_by_both(
            &hash,
            "sha256",
            json!({"input": "text", "encodings": ["hex"]})
        )
        .await,
        "args.input: variant case \"text\" needs a payload: {\"text\": …}"
    );
    assert_eq!(
        refused_by_both(
            &hash,
            "sha256",
            json!({"input": {"blob": "x"}, "encodings": ["hex"]}),
        )
        .await,
        "args.input: unknown variant case \"blob\"; expected one of: text, bytes, file"
    );
    assert_eq!(
        refused_by_both(
            &hash,
            "sha256",
            json!({"input": {"text": "a", "file": "b"}, "encodings": ["hex"]}),
        )
        .await,
        "args.input: expected variant input (a case name, or an object with exactly one case key), got object with 2 keys"
    );
    assert_eq!(
        refused_by_both(&hash, "sha256", json!({"input": {"text": "abc"}})).await,
        "args: missing required parameter \"encodings\""
    );
}

// ---------------------------------------------------------------------------------------------------------------
// files
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn files_list_read_and_write_inside_the_grant() {
    let dir = tempdir();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("a.txt"), "alpha\n").unwrap();
    std::fs::write(data.join("z.bin"), [0xff, 0xfe]).unwrap();
    std::os::unix::fs::symlink("a.txt", data.join("link")).unwrap();
    let files = load_spec(spec(
        "files",
        r#"fs = [{ host = "data", guest = "/data", mode = "rw" }]"#,
        dir.path(),
    ));

    let entries = ok(&files, "list", json!({"path": "/data"})).await;
    let summary: Vec<(&str, &str, u64)> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap(),
                e["kind"].as_str().unwrap(),
                e["size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(summary[0], ("a.txt", "file", 6));
    assert_eq!(summary[1], ("link", "symlink", 5));
    assert_eq!(summary[2].0, "sub");
    assert_eq!(summary[2].1, "dir");
    assert_eq!(summary[3], ("z.bin", "file", 2));
    assert_eq!(summary.len(), 4);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let modified = entries[0]["modified"]
        .as_u64()
        .expect("the host reports mtimes");
    assert!(
        now.abs_diff(modified) < 3600,
        "modified {modified}, now {now}"
    );

    assert_eq!(
        ok(&files, "read", json!({"path": "/data/a.txt"})).await,
        "alpha\n"
    );
    assert_eq!(
        err(&files, "read", json!({"path": "/data/nope.txt"})).await,
        json!({"not-found": "`/data/nope.txt` does not exist"})
    );
    assert_eq!(
        err(&files, "read", json!({"path": "/data/z.bin"})).await,
        json!({"other": "`/data/z.bin` is not UTF-8 text"})
    );
    assert_eq!(
        err(&files, "list", json!({"path": "/data/a.txt/x"}))
            .await
            .as_object()
            .map(|o| o.len()),
        Some(1)
    );
    let outside = err(&files, "read", json!({"path": "/etc/passwd"})).await;
    assert_eq!(
        outside,
        json!({"permission-denied": "`/etc/passwd` is outside the directories this tool was granted (granted: /data)"})
    );

    // Writing into missing directories needs create-dirs.
    let deep = json!({"path": "/data/new/deep/x.txt", "contents": "héllo"});
    assert_eq!(
        err(&files, "write", deep.clone()).await,
        json!({"not-found": "`/data/new/deep/x.txt` does not exist"})
    );
    let mut with_dirs = deep.clone();
    with_dirs["create-dirs"] = json!(true);
    assert_eq!(ok(&files, "write", with_dirs).await, 6);
    assert_eq!(
        std::fs::read_to_string(data.join("new/deep/x.txt")).unwrap(),
        "héllo"
    );
    assert_eq!(
        ok(&files, "read", json!({"path": "/data/new/deep/x.txt"})).await,
        "héllo"
    );
    assert_eq!(
        ok(
            &files,
            "write",
            json!({"path": "/data/a.txt", "contents": "", "create-dirs": false}),
        )
        .await,
        0
    );
    assert_eq!(std::fs::read_to_string(data.join("a.txt")).unwrap(), "");
    assert_eq!(
        refused_by_both(
            &files,
            "write",
            json!({"path": "/data/a.txt", "contents": "", "create-dirs": "yes"}),
        )
        .await,
        "args.create-dirs: expected bool, got string \"yes\""
    );
}

// ---------------------------------------------------------------------------------------------------------------
// fetch
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn fetch_gets_from_a_granted_origin_and_truncates() {
    let server = TestServer::start().await;
    let fetch = load("fetch", &format!("http = [\"{}\"]", server.origin()));

    let response = ok(&fetch, "get", json!({"url": server.url("/hello")})).await;
    assert_eq!(response["status"], 200);
    assert_eq!(response["body"], "hello from the test server");
    assert_eq!(response["truncated"], false);
    let headers = response["headers"].as_array().expect("headers");
    assert!(
        headers.iter().any(|h| h[0] == "content-type"
            && h[1].as_str().is_some_and(|v| v.starts_with("text/plain"))),
        "{response}"
    );
    assert!(
        headers
            .iter()
            .all(|h| h.as_array().map(Vec::len) == Some(2))
    );

    let cut = ok(
        &fetch,
        "get",
        json!({"url": server.url("/bytes?n=100"), "max-bytes": 10}),
    )
    .await;
    assert_eq!(cut["status"], 200);
    assert_eq!(cut["body"], "x".repeat(10));
    assert_eq!(cut["truncated"], true);
    let whole = ok(
        &fetch,
        "get",
        json!({"url": server.url("/bytes?n=100"), "max-bytes": 100}),
    )
    .await;
    assert_eq!(whole["body"], "x".repeat(100));
    assert_eq!(whole["truncated"], false);

    let missing = ok(&fetch, "get", json!({"url": server.url("/missing")})).await;
    assert_eq!(missing["status"], 404, "any status is a response");

    assert_eq!(
        refused_by_both(
            &fetch,
            "get",
            json!({"url": server.url("/hello"), "max-bytes": -1}),
        )
        .await,
        "args.max-bytes: expected u32, got -1"
    );
    let message = err(&fetch, "get", json!({"url": "not a url"})).await;
    assert!(message.is_string(), "{message}");
}

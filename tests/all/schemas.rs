//! Describing a component costs time and memory linear in its size: a small component whose WIT types share one
//! another deeply (`t1 = tuple<t0, t0>`, `t2 = tuple<t1, t1>`, …) cannot make `are inspect`, `are serve`'s tool
//! list or an agent's expand them exponentially, and a schema over its budget is refused naming the function.

use crate::common::{self, component_from_wit, tempdir, write_policy};
use are_policy::InstanceMode;
use are_runtime::catalog::{Catalog, ServedComponent, Settings};
use are_runtime::component::ComponentSpec;
use are_runtime::describe::{ComponentDescription, DescribeError};
use are_runtime::schema::{MAX_COMPONENT_SCHEMAS, MAX_TOOL_SCHEMA, json_size};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Levels of sharing in [`deeply_shared`]: written out in full, its top type has about 3 × 2¹² nodes…
const DEPTH: usize = 12;
/// …and each of its functions names it twice: together close to the 10⁶ nodes component validation allows the
/// types of a component.
const FUNCTIONS: usize = 6;

/// What the issue promises for a component under 4 KiB: at most this long to describe…
const DESCRIBE_TIME: Duration = Duration::from_millis(100);
/// …and at most this much memory (peak resident size of the whole `are inspect` process).
const DESCRIBE_MEMORY: u64 = 32 * 1024 * 1024;

/// WIT whose types share one another `depth` levels deep, each level using the one below twice, through every
/// kind of compound type (records, variants, tuples, results, lists and options), with `functions` functions
/// taking and returning the top one.
fn deeply_shared(depth: usize, functions: usize) -> String {
    let mut wit = String::from(
        "package test:deep;\ninterface deep {\n  enum e { a, b }\n  flags g { a, b }\n  type t0 = tuple<e, g>;\n",
    );
    for i in 1..=depth {
        let p = format!("t{}", i - 1);
        wit.push_str(&match i % 5 {
            0 => format!("  record t{i} {{ a: {p}, b: {p} }}\n"),
            1 => format!("  variant t{i} {{ a({p}), b({p}) }}\n"),
            2 => format!("  type t{i} = tuple<{p}, {p}>;\n"),
            3 => format!("  type t{i} = result<{p}, {p}>;\n"),
            _ => format!("  type t{i} = tuple<list<{p}>, option<{p}>>;\n"),
        });
    }
    for f in 0..functions {
        wit.push_str(&format!("  f{f}: func(x: t{depth}) -> t{depth};\n"));
    }
    wit.push_str("}\nworld w { export deep; }\n");
    wit
}

/// Runs `are` with `args`; returns whether it succeeded, its stdout and stderr, and its peak resident size in bytes.
///
/// A process's peak size includes the size of the process it was started from (Linux folds the replaced address
/// space's high-water mark into the new program's), so `are` is started from a small Python process, which
/// reports the peak of its child alone (as `time -v` does).
fn run_measured(args: &[&str]) -> (bool, String, String, u64) {
    const REPORT: &str = "import resource, subprocess, sys\n\
        code = subprocess.run(sys.argv[1:]).returncode\n\
        print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n\
        sys.exit(code)\n";
    let are = common::are();
    let out = Command::new("python3")
        .arg("-c")
        .arg(REPORT)
        .arg(are.get_program())
        .args(args)
        .envs(
            are.get_envs()
                .filter_map(|(key, value)| Some((key, value?))),
        )
        .env_remove("RUST_LOG")
        .env_remove("ARE_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("start python3 (it measures the peak size of `are`)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let (stderr, peak_kib) = stderr
        .trim_end()
        .rsplit_once('\n')
        .map_or(("", stderr.trim_end()), |(rest, last)| (rest, last));
    let peak = peak_kib
        .parse::<u64>()
        .unwrap_or_else(|_| panic!("no peak size from python3: {stderr}{peak_kib}"))
        * 1024;
    (out.status.success(), stdout, stderr.to_string(), peak)
}

/// Every tool schema of an `are inspect --json` rendering.
fn schemas(inspected: &Value) -> Vec<&Value> {
    inspected["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .flat_map(|tool| [&tool["input_schema"], &tool["output_schema"]])
        .collect()
}

#[test]
fn a_small_component_with_deeply_shared_types_is_described_in_bounded_time_and_memory() {
    let bytes = component_from_wit(&deeply_shared(DEPTH, FUNCTIONS));
    assert!(
        bytes.len() < 4096,
        "the component takes {} bytes",
        bytes.len()
    );

    // In this process: describe it, as every path does, and render what `are inspect --json` prints.
    let started = Instant::now();
    let desc = ComponentDescription::from_bytes(&bytes, None).expect("the component describes");
    let inspected = desc.to_json();
    let elapsed = started.elapsed();
    assert!(elapsed < DESCRIBE_TIME, "describing took {elapsed:?}");
    assert_eq!(desc.tools().count(), FUNCTIONS);
    let size = json_size(&inspected);
    assert!(
        size < 1024 * 1024,
        "`are inspect --json` takes {size} bytes"
    );
    for schema in schemas(&inspected) {
        // Every shared level is written once, under the schema's own `$defs`; the top one in place.
        let defs = schema["$defs"].as_object().expect("$defs");
        assert_eq!(defs.len(), DEPTH, "{schema}");
        assert!(defs.contains_key("deep.t0") && !defs.contains_key("deep.e"));
        jsonschema::validator_for(schema).unwrap_or_else(|e| panic!("invalid schema: {e}"));
    }

    // The tool list `are serve` offers over MCP, and agents get through `allow.tools`.
    let dir = tempdir();
    let path = dir.path().join("deep.wasm");
    std::fs::write(&path, &bytes).expect("write the component");
    let spec = ComponentSpec {
        name: "deep".into(),
        path: path.clone(),
        base_dir: dir.path().to_path_buf(),
        ..ComponentSpec::default()
    };
    let settings = Settings {
        mode: InstanceMode::Fresh,
        max_concurrency: 1,
        queue: 0,
        idle_timeout: Duration::from_secs(1),
        task: are_policy::TaskMode::Never,
    };
    let loaded = common::load_spec(spec);
    let started = Instant::now();
    let catalog = Catalog::new(BTreeMap::from([(
        "deep".to_string(),
        Arc::new(ServedComponent::new(loaded, settings, 0)),
    )]));
    let elapsed = started.elapsed();
    assert!(elapsed < DESCRIBE_TIME, "the tool list took {elapsed:?}");
    assert_eq!(catalog.tools().len(), FUNCTIONS);
    let listed: usize = catalog
        .tools()
        .iter()
        .map(|t| {
            json_size(
                &serde_json::to_value(are_mcp::server::mcp_tool(
                    &t.tool,
                    are_policy::ToolNames::Portable,
                ))
                .expect("a tool serializes"),
            )
        })
        .sum();
    assert!(listed < 1024 * 1024, "tools/list takes {listed} bytes");
    for t in catalog.tools() {
        let output = Value::Object((**t.tool.output_schema.as_ref().expect("an output")).clone());
        assert!(output["$defs"].get("deep.t0").is_some(), "{output}");
        assert!(output["properties"]["result"].get("$defs").is_none());
        jsonschema::validator_for(&output).unwrap_or_else(|e| panic!("invalid schema: {e}"));
    }

    // `are inspect`, text and JSON, as a process of its own: its whole peak memory stays within the bound.
    let file = path.to_str().expect("a UTF-8 path");
    for args in [vec!["inspect", file], vec!["inspect", "--json", file]] {
        let (success, stdout, stderr, peak) = run_measured(&args);
        assert!(success, "are {args:?} failed: {stderr}");
        assert!(stdout.contains(&format!("f{}", FUNCTIONS - 1)), "{stdout}");
        assert!(
            peak < DESCRIBE_MEMORY,
            "are {args:?} peaked at {} MiB",
            peak / (1024 * 1024)
        );
    }
}

/// WIT with `functions` functions each taking a record of `fields` floats (about 90 bytes of schema each).
fn wide(fields: usize, functions: usize) -> String {
    let fields: Vec<String> = (0..fields).map(|i| format!("field{i}: f64")).collect();
    let mut wit = format!(
        "package test:wide;\ninterface wide {{\n  record r {{ {} }}\n",
        fields.join(", ")
    );
    for f in 0..functions {
        // `%` escapes names that are WIT keywords (`f32`, `f64`).
        wit.push_str(&format!("  %f{f}: func(x: r);\n"));
    }
    wit.push_str("}\nworld w { export wide; }\n");
    wit
}

#[test]
fn values_of_shared_types_fit_schemas_with_refs() {
    let desc = ComponentDescription::from_bytes(&component_from_wit(&deeply_shared(3, 1)), None)
        .expect("the component describes");
    let f = desc.find("f0").expect("f0");
    let input =
        jsonschema::validator_for(&are_runtime::schema::input_schema(&desc, f)).expect("valid");
    // t0 = tuple<e, g>; t1 = variant { a(t0), b(t0) }; t2 = tuple<t1, t1>; t3 = result<t2, t2>.
    let t1 = json!({"b": ["a", ["a", "b"]]});
    assert!(input.is_valid(&json!({"x": {"ok": [t1, t1]}})));
    assert!(!input.is_valid(&json!({"x": {"ok": [t1]}})));
    assert!(!input.is_valid(&json!({"x": {"err": [t1, {"c": ["a", []]}]}})));
    let output =
        jsonschema::validator_for(&are_runtime::schema::output_schema(&desc, f).expect("a result"))
            .expect("valid");
    let t1 = json!({"a": ["b", {"a": false, "b": true}]});
    assert!(output.is_valid(&json!({"err": [t1, t1]})));
    assert!(!output.is_valid(&json!({"err": [t1, {"a": ["c", {}]}]})));
}

#[test]
fn a_tool_schema_over_its_budget_is_refused_naming_the_function() {
    let bytes = component_from_wit(&wide(MAX_TOOL_SCHEMA / 50, 1));
    match ComponentDescription::from_bytes(&bytes, None) {
        Err(DescribeError::ToolSchemaTooLarge {
            function,
            part,
            size,
        }) => {
            assert_eq!((function.as_str(), part), ("wide.f0", "arguments"));
            assert!(size > MAX_TOOL_SCHEMA);
        }
        other => panic!("not refused for its size: {:?}", other.map(|_| ())),
    }

    // `are inspect` says which function, and the budget.
    let dir = tempdir();
    let path = dir.path().join("wide.wasm");
    std::fs::write(&path, &bytes).expect("write the component");
    let out = common::run(&["inspect", path.to_str().expect("a UTF-8 path")]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("the JSON Schema of the arguments of `wide.f0`")
            && out
                .stderr
                .contains("more than the 256.0 KiB one tool schema may take"),
        "{}",
        out.stderr
    );
    serve_refuses(dir.path(), &path, "`wide.f0`");
}

#[test]
fn the_tool_schemas_of_a_component_have_a_budget_together() {
    // Each function's schema is within its own budget; together they are not.
    let fields = MAX_TOOL_SCHEMA / 200;
    let functions = MAX_COMPONENT_SCHEMAS / (MAX_TOOL_SCHEMA / 4) + 1;
    let bytes = component_from_wit(&wide(fields, functions));
    match ComponentDescription::from_bytes(&bytes, None) {
        Err(DescribeError::SchemasTooLarge {
            function, total, ..
        }) => {
            assert!(function.starts_with("wide.f"), "{function}");
            assert!(total > MAX_COMPONENT_SCHEMAS);
        }
        other => panic!("not refused for its size: {:?}", other.map(|_| ())),
    }
    let wide_one = component_from_wit(&wide(fields, 1));
    ComponentDescription::from_bytes(&wide_one, None).expect("one such function is fine");
}

/// `are serve` does not start with the component at `path` (in `dir`), and says so naming `function`.
fn serve_refuses(dir: &Path, path: &Path, function: &str) {
    let policy = write_policy(
        dir,
        &format!(
            "[component.wide]\nsource = {:?}\n",
            path.display().to_string()
        ),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_are"))
        .args(["serve", "--policy", policy.to_str().expect("a UTF-8 path")])
        .env("ARE_CACHE_DIR", dir.join("cache"))
        .stdin(Stdio::null())
        .output()
        .expect("run are serve");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(function) && stderr.contains("256.0 KiB"),
        "{stderr}"
    );
}

/// Every example tool's input and output schemas are valid to a draft-07 validator (as the TypeScript SDK and
/// the Inspector read them, ignoring `$schema`) and to a 2020-12 one. `tools.rs` checks them against real
/// arguments and results with both.
#[test]
fn every_example_tools_schemas_are_valid_under_draft_07_and_2020_12() {
    for guest in ["text", "json", "hash", "files", "fetch", "kv"] {
        let loaded = common::load(guest, "");
        let desc = &loaded.description;
        for f in desc.tools() {
            let input = are_runtime::schema::input_schema(desc, f);
            let output = are_runtime::schema::output_schema(desc, f);
            for schema in std::iter::once(input).chain(output) {
                let mut as_draft7 = schema.clone();
                if let Value::Object(map) = &mut as_draft7 {
                    map.remove("$schema");
                }
                jsonschema::draft7::new(&as_draft7)
                    .unwrap_or_else(|e| panic!("{guest} {}: draft-07: {e}\n{schema}", f.name));
                jsonschema::draft202012::new(&schema)
                    .unwrap_or_else(|e| panic!("{guest} {}: 2020-12: {e}\n{schema}", f.name));
                assert!(
                    !schema.to_string().contains(r#""items":false"#),
                    "{guest} {}: {schema}",
                    f.name
                );
            }
        }
    }
}

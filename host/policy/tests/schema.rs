//! The committed JSON Schema of `are.toml` (`schema/are.schema.json`): it is what the policy types generate, the
//! policies of the repository validate against it, and it refuses what `Policy::parse` certainly refuses while
//! accepting what it accepts.

use are_policy::Policy;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn bless() -> String {
    format!("run `{}` to update it", are_policy::schema::REGENERATE)
}

fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

fn schema_path() -> PathBuf {
    repo_root().join("schema/are.schema.json")
}

/// The schema as a validator: the generated one, which `committed_schema_is_up_to_date` checks is the committed one
/// (reading the file here would race with that test writing it under `ARE_BLESS`).
fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&are_policy::schema::json_schema())
        .unwrap_or_else(|e| panic!("the schema is not a valid schema: {e}"))
}

/// A policy's TOML as the JSON value a schema validates.
fn to_json(text: &str, origin: &str) -> Value {
    toml::from_str(text).unwrap_or_else(|e| panic!("{origin}: not TOML: {e}\n{text}"))
}

/// Why `text` does not validate, one line per error; empty when it does.
fn schema_errors(validator: &jsonschema::Validator, text: &str, origin: &str) -> Vec<String> {
    let value = to_json(text, origin);
    validator
        .iter_errors(&value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn parses(text: &str) -> Result<Policy, String> {
    // Relative to this crate's directory, where `.` exists (for mounts).
    Policy::parse(
        text,
        Path::new("are.toml"),
        Path::new(env!("CARGO_MANIFEST_DIR")),
    )
    .map_err(|e| e.to_string())
}

#[test]
fn committed_schema_is_up_to_date() {
    let generated = are_policy::schema::json_schema_text();
    let path = schema_path();
    if std::env::var_os("ARE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    // A checkout may have turned the line ends into CRLF.
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .replace("\r\n", "\n");
    assert!(
        committed == generated,
        "{} is not what the policy types generate (they changed since it was written): {}",
        path.display(),
        bless()
    );
}

#[test]
fn schema_is_a_valid_draft_07_schema() {
    let schema = are_policy::schema::json_schema();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(schema["title"], "are.toml");
    jsonschema::meta::validate(&schema).unwrap_or_else(|e| panic!("not a valid JSON Schema: {e}"));
    // Every table refuses unknown keys, as the parser does.
    let definitions = schema["definitions"].as_object().unwrap();
    for (name, definition) in definitions
        .iter()
        .chain([(&"are.toml".to_string(), &schema)])
    {
        if definition.get("properties").is_some() {
            assert_eq!(definition["additionalProperties"], false, "{name}");
        }
    }
}

/// A policy found in the repository, and where.
struct Example {
    origin: String,
    text: String,
}

/// Policy files in the repository that are meant to be refused (seeds of the policy fuzz target).
const INVALID_FILES: &[&str] = &[
    "fuzz/seeds/policy_parse/errors.toml",
    "fuzz/seeds/policy_parse/agent-only.toml",
];

/// Files and directories that hold no policies.
fn skipped(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with('.') || name.starts_with("target") || name == "node_modules"
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if skipped(&path) {
            continue;
        }
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The ```toml blocks of a Markdown text (or of doc comments, with their `//!` / `///` stripped).
fn toml_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut block: Option<String> = None;
    for line in text.lines() {
        let line = line.trim_start();
        let line = ["//! ", "/// ", "//!", "///"]
            .iter()
            .find_map(|p| line.strip_prefix(p))
            .unwrap_or(line);
        match &mut block {
            None if line.trim_end() == "```toml" => block = Some(String::new()),
            Some(b) if line.trim_end() == "```" => {
                blocks.push(std::mem::take(b));
                block = None;
            }
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None => {}
        }
    }
    blocks
}

fn is_table_header(line: &str) -> bool {
    let line = line.trim();
    line.starts_with('[') && !line.starts_with("[[") && line.contains(']')
}

/// A documentation block as a policy: a whole policy, or (no table header) the keys of one table, which are
/// put in an agent's table (agents take every grant); `None` for a `Cargo.toml`, the one other kind of TOML the
/// documentation shows. `"…"` stands for an elided digest.
fn doc_policy(block: &str) -> Option<String> {
    let block = block.replace(
        "sha256 = \"…\"",
        &format!("sha256 = \"{}\"", "ab".repeat(32)),
    );
    let headers: Vec<&str> = block.lines().filter(|l| is_table_header(l)).collect();
    if headers.is_empty() {
        return Some(format!(
            "[agent.example]\nsource = \"example.wasm\"\n{block}"
        ));
    }
    let manifest = [
        "[package]",
        "[workspace]",
        "[lib]",
        "[dependencies]",
        "[dev-dependencies]",
    ];
    let is_manifest = headers
        .iter()
        .any(|h| manifest.iter().any(|m| h.trim_start().starts_with(m)));
    (!is_manifest).then_some(block)
}

/// The `are.toml` texts the CLI writes (`are new`, `are demo`): raw string literals holding a `[component.` or
/// `[agent.` table, with their `format!` arguments filled in (`{{` → `{`, `{x:?}` → `"x"`, `{x}` → `x`).
fn cli_policies(text: &str) -> Vec<String> {
    let mut policies = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("r#\"") {
        let body = &rest[start + 3..];
        let Some(end) = body.find("\"#") else { break };
        let literal = &body[..end];
        rest = &body[end + 2..];
        if !literal
            .lines()
            .any(|l| l.starts_with("[component.") || l.starts_with("[agent."))
        {
            continue;
        }
        let mut policy = String::new();
        let mut chars = literal.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => policy.push(chars.next().unwrap()),
                '}' if chars.peek() == Some(&'}') => policy.push(chars.next().unwrap()),
                '{' => {
                    let argument: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    match argument.strip_suffix(":?") {
                        Some(name) => policy.push_str(&format!("{name:?}")),
                        None => policy.push_str(&argument),
                    }
                }
                c => policy.push(c),
            }
        }
        policies.push(policy);
    }
    policies
}

/// Every policy of the repository: policy files (`*.toml` but `Cargo.toml` and tool settings), the ```toml
/// blocks of the Markdown files and doc comments (README, module docs, the example agents), and the policies the
/// CLI writes.
fn examples() -> (Vec<Example>, Vec<Example>) {
    let root = repo_root();
    let mut files = Vec::new();
    walk(&root, &mut files);
    let (mut valid, mut invalid) = (Vec::new(), Vec::new());
    let mut cli = 0;
    for path in files {
        let relative = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let name = path.file_name().unwrap().to_string_lossy();
        let read = || std::fs::read_to_string(&path).unwrap();
        match ext {
            "toml"
                if ![
                    "Cargo.toml",
                    "rust-toolchain.toml",
                    "rustfmt.toml",
                    "clippy.toml",
                    "deny.toml",
                ]
                .contains(&name.as_ref()) =>
            {
                let example = Example {
                    origin: relative.clone(),
                    text: read(),
                };
                if INVALID_FILES.contains(&relative.as_str()) {
                    invalid.push(example);
                } else {
                    valid.push(example);
                }
            }
            "md" | "rs" => {
                let text = read();
                for (i, block) in toml_blocks(&text).iter().enumerate() {
                    if let Some(text) = doc_policy(block) {
                        valid.push(Example {
                            origin: format!("{relative} (```toml block {})", i + 1),
                            text,
                        });
                    }
                }
                if ext == "rs" && relative.starts_with("host/cli/") {
                    for (i, text) in cli_policies(&text).into_iter().enumerate() {
                        cli += 1;
                        valid.push(Example {
                            origin: format!("{relative} (policy {})", i + 1),
                            text,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    // So that the test cannot pass by finding nothing.
    assert!(
        valid.iter().any(|e| e.origin.starts_with("README.md")),
        "no policy in README.md"
    );
    assert!(
        valid.iter().any(|e| e.origin.starts_with("example-tools/")),
        "no example agent policy"
    );
    assert!(
        valid.iter().any(|e| e.origin.starts_with("fuzz/seeds/")),
        "no fuzz seed"
    );
    assert!(
        cli >= 2,
        "the policies of `are new` and `are demo` were not found under host/cli/"
    );
    assert_eq!(
        invalid.len(),
        INVALID_FILES.len(),
        "missing: {INVALID_FILES:?}"
    );
    (valid, invalid)
}

#[test]
fn policies_in_the_repository_validate() {
    let validator = validator();
    let (valid, invalid) = examples();
    let mut failures = Vec::new();
    for example in &valid {
        let errors = schema_errors(&validator, &example.text, &example.origin);
        if !errors.is_empty() {
            failures.push(format!("{}:\n  {}", example.origin, errors.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "policies that the schema refuses:\n{}",
        failures.join("\n")
    );
    for example in &invalid {
        assert!(
            !schema_errors(&validator, &example.text, &example.origin).is_empty(),
            "{}: the schema accepts it",
            example.origin
        );
        assert!(
            parses(&example.text).is_err(),
            "{}: the parser accepts it",
            example.origin
        );
    }
    eprintln!(
        "{} policies validate, {} are refused",
        valid.len(),
        invalid.len()
    );
}

const COMPONENT: &str = "[component.a]\nsource = \"a.wasm\"\n";
const AGENT: &str = "[agent.a]\nsource = \"a.wasm\"\n";

/// Policies the parser accepts: the schema must accept them too (it is not stricter than the parser).
#[test]
fn schema_accepts_what_the_parser_accepts() {
    let validator = validator();
    let hex = "0123456789abcdef".repeat(4);
    let upper = hex.to_uppercase();
    for text in [
        String::new(),
        format!("{COMPONENT}sha256 = \"{hex}\""),
        format!("{COMPONENT}sha256 = \"sha256:{upper}\""),
        format!("{COMPONENT}limits.fuel = 0\nlimits.memory = 65536\nlimits.max_output = \"512\""),
        format!("{COMPONENT}limits.fuel = \"1_000_000\"\nlimits.memory = \"1.5 GiB\"\nlimits.timeout = \"1h 30m\""),
        format!("{COMPONENT}limits.fuel = \"unlimited\"\nlimits.memory = \"64mb\"\nlimits.timeout = \"250ms\""),
        format!("{COMPONENT}limits.max_component_size = \" 2 KiB \"\nlimits.timeout = \"1.5s\""),
        format!("{COMPONENT}allow.http = [\"HTTPS://Api.Example.com/\", \"http://[::1]:8080\", \"https://*.example.org:8443\"]"),
        format!("{COMPONENT}allow.sockets = [\"db.internal:5432\", \"udp://10.0.0.53:53\", \"tcp://[::1]:9\"]"),
        format!("{COMPONENT}allow.env = {{ A = \"1\", \"x.y\" = \"a=b\" }}"),
        format!("{COMPONENT}allow.fs = [{{ host = \".\", guest = \"/data\" }}]"),
        format!("{COMPONENT}allow.fs = [{{ host = \".\", guest = \"/out\", mode = \"rw\", quota = \"10 MiB\" }}]"),
        format!(
            "{COMPONENT}allow.http = [\"https://api.example.com\"]\n\
             allow.secrets = [{{ host = \"api.example.com:443\", header = \"X-Api-Key\", from_env = \"K\" }}]"
        ),
        // Agent-only grants that grant nothing are accepted on a component.
        format!("{COMPONENT}allow.tools = []\nallow.llm = {{ max_tokens = 5 }}\nallow.memory = {{}}\nallow.messaging = {{ send = [] }}"),
        format!("{COMPONENT}mode = \"session\"\nmax_concurrency = 1\nqueue = 0\nidle_timeout = \"5m\""),
        format!(
            "{AGENT}allow.tools = [\"*\"]\nallow.llm.model = \"default\"\nallow.memory.quota = \"1 MiB\"\n\
             allow.messaging = {{ send = [\"w/*\"], publish = [\"t\"], subscribe = [\"t\"] }}\n\
             message_budget = 10\nstore_quota = 1048576\nidle_timeout = \"30s\""
        ),
        "[agents]\nsync = \"full\"\nmax_payload = \"1 MiB\"\nhop_limit = 3".to_string(),
        "[audit]\npath = \"audit.jsonl\"\nfsync = \"always\"\ncheckpoint_every = 1\ncheckpoint_interval = \"10s\"".to_string(),
        "[serve]\npooling = false\nallowed_origins = [\"https://app.example.com\"]\nheader_read_timeout = \"10s\"".to_string(),
        "[defaults.limits]\nopen_files = 0\nconnections = 4294967295".to_string(),
        "[component.A-b_9]\nsource = \"oci://ghcr.io/a/b@sha256:0000000000000000000000000000000000000000000000000000000000000000\"".to_string(),
    ] {
        if let Err(e) = parses(&text) {
            panic!("the parser refuses it (fix the test): {e}\n{text}");
        }
        let errors = schema_errors(&validator, &text, "a good policy");
        assert!(errors.is_empty(), "the schema refuses a policy the parser accepts:\n{text}\n{}", errors.join("\n"));
    }
}

/// Policies the parser refuses that a schema can tell: the schema must refuse them too (it is not looser than it
/// needs to be).
#[test]
fn schema_refuses_what_the_parser_certainly_refuses() {
    let validator = validator();
    for (text, why) in [
        (
            "[compnent.a]\nsource = \"a.wasm\"".to_string(),
            "unknown table",
        ),
        (format!("{COMPONENT}allow.htp = []"), "unknown grant"),
        (format!("{COMPONENT}limits.fuell = 1"), "unknown limit"),
        (
            format!("{COMPONENT}sourc = \"b.wasm\""),
            "unknown key in a component",
        ),
        ("[component.a]\nargs = []".to_string(), "missing source"),
        (
            "[serve]\npage_size = \"100\"".to_string(),
            "a string for a number",
        ),
        (
            "[serve]\npooling = \"yes\"".to_string(),
            "a string for a boolean",
        ),
        (format!("{COMPONENT}args = \"x\""), "a string for a list"),
        (format!("{COMPONENT}mode = \"sessions\""), "an unknown mode"),
        (
            format!("{COMPONENT}max_concurrency = -1"),
            "a negative count",
        ),
        (format!("{COMPONENT}limits.fuel = -5"), "negative fuel"),
        (
            format!("{COMPONENT}limits.fuel = \"lots\""),
            "fuel that is no number",
        ),
        (format!("{COMPONENT}limits.fuel = 1.5"), "fractional fuel"),
        (
            format!("{COMPONENT}limits.memory = \"lots\""),
            "a size without a number",
        ),
        (
            format!("{COMPONENT}limits.memory = \"64 MiBs\""),
            "a size with an unknown unit",
        ),
        (format!("{COMPONENT}limits.memory = -1"), "a negative size"),
        (
            format!("{COMPONENT}limits.timeout = 5"),
            "a timeout that is no string",
        ),
        (
            format!("{COMPONENT}limits.timeout = \"5\""),
            "a timeout without a unit",
        ),
        (format!("{COMPONENT}sha256 = \"abc\""), "a short digest"),
        (
            format!("{COMPONENT}sha256 = \"{}\"", "g".repeat(64)),
            "a digest that is not hex",
        ),
        (
            "[component.\"a.b\"]\nsource = \"a.wasm\"".to_string(),
            "a bad component name",
        ),
        (
            format!("[agent.{}]\nsource = \"a.wasm\"", "a".repeat(65)),
            "a long agent name",
        ),
        (
            format!("{COMPONENT}allow.http = [\"ftp://example.com\"]"),
            "an origin that is not http(s)",
        ),
        (
            format!("{COMPONENT}allow.http = [\"https://example.com/path\"]"),
            "an origin with a path",
        ),
        (
            format!("{COMPONENT}allow.http = [\"example.com\"]"),
            "an origin without a scheme",
        ),
        (
            format!("{COMPONENT}allow.sockets = [\"db.internal\"]"),
            "a socket without a port",
        ),
        (
            format!("{COMPONENT}allow.env = {{ \"A=B\" = \"x\" }}"),
            "an env name with `=`",
        ),
        (
            format!("{COMPONENT}allow.env = {{ A = 1 }}"),
            "an env value that is no string",
        ),
        (
            format!("{COMPONENT}allow.fs = [{{ host = \".\", guest = \"data\" }}]"),
            "a relative guest path",
        ),
        (
            format!("{COMPONENT}allow.fs = [{{ host = \".\", guest = \"/d\", mode = \"wr\" }}]"),
            "an unknown mode",
        ),
        (
            format!(
                "{COMPONENT}allow.fs = [{{ host = \".\", guest = \"/d\", quota = \"1 MiB\" }}]"
            ),
            "a quota on ro",
        ),
        (
            format!("{COMPONENT}allow.fs = [{{ host = \".\", guest = \"/d\", size = 1 }}]"),
            "an unknown mount key",
        ),
        (
            format!(
                "{COMPONENT}allow.http = [\"https://*.example.com\"]\n\
                 allow.secrets = [{{ host = \"*.example.com\", header = \"A\", from_env = \"T\" }}]"
            ),
            "a wildcard secret host",
        ),
        (
            format!(
                "{COMPONENT}allow.http = [\"https://a.example\"]\n\
                 allow.secrets = [{{ host = \"a.example\", header = \"Bad Header\", from_env = \"T\" }}]"
            ),
            "a header name with a space",
        ),
        (
            format!(
                "{COMPONENT}allow.http = [\"https://a.example\"]\n\
                 allow.secrets = [{{ host = \"a.example\", header = \"A\", from_env = \"\" }}]"
            ),
            "a secret without a variable",
        ),
        (
            format!("{COMPONENT}allow.tools = [\"text.*\"]"),
            "tools for a component",
        ),
        (
            format!("{COMPONENT}allow.llm.model = \"default\""),
            "a model for a component",
        ),
        (
            format!("{COMPONENT}allow.memory.quota = \"1 MiB\""),
            "memory for a component",
        ),
        (
            format!("{COMPONENT}allow.messaging.subscribe = [\"t\"]"),
            "messaging for a component",
        ),
        (
            format!("{AGENT}allow.llm = {{ model = \"m\", turns = 3 }}"),
            "an unknown llm key",
        ),
        (
            format!("{AGENT}message_budget = \"many\""),
            "a budget that is no number",
        ),
        (
            "[agents]\nsync = \"sometimes\"".to_string(),
            "an unknown sync mode",
        ),
        (
            "[audit]\nfsync = \"hourly\"".to_string(),
            "an unknown fsync mode",
        ),
        (
            "[audit]\ncheckpoint_every = 0".to_string(),
            "no records per checkpoint",
        ),
        ("[llm]\nmodel = 4".to_string(), "a model that is no string"),
        (
            "[defaults]\nfuel = 1".to_string(),
            "limits outside `limits`",
        ),
    ] {
        assert!(
            parses(&text).is_err(),
            "{why}: the parser accepts it (fix the test)\n{text}"
        );
        assert!(
            !schema_errors(&validator, &text, why).is_empty(),
            "{why}: the schema accepts a policy the parser refuses\n{text}"
        );
    }
}

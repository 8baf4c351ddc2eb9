//! The audit trail (issue 6 point 2): every call and every capability use or refusal is recorded with the
//! component, its sha256, the caller and the outcome; records are hash-chained so that `are audit verify` names
//! the first record that was edited, deleted, inserted or moved; `are audit show` filters them; and no secret
//! value ever reaches the file.
//!
//! The capability tests load guests in process with a shared [`AuditLog`]; the call, HTTP-secret, verify and
//! show tests run the `are` binary.

use crate::common::{
    TcpSink, TestServer, agent_runtime, ask_agent, call_ok, load_spec, run, spec, tempdir,
};
use are_policy::Fsync;
use are_runtime::audit::{AuditLog, AuditSink};
use are_runtime::component::LoadedComponent;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A log in a fresh directory, shared by the components loaded through it.
struct Trail {
    dir: tempfile::TempDir,
    path: PathBuf,
    log: Arc<AuditLog>,
}

impl Trail {
    fn new() -> Trail {
        let dir = tempdir();
        let path = dir.path().join("audit.jsonl");
        let log = Arc::new(AuditLog::open(&path, Fsync::Never).expect("open the audit log"));
        Trail { dir, path, log }
    }

    /// Guest `name` with `grants` (an `allow` table body), relative mounts resolving in this trail's directory,
    /// recording to this log as caller `test`.
    fn load(&self, name: &str, grants: &str) -> LoadedComponent {
        let mut spec = spec(name, grants, self.dir.path());
        spec.audit = Some(AuditSink {
            log: self.log.clone(),
            caller: "test".into(),
        });
        load_spec(spec)
    }

    /// Every record so far, after checking the chain.
    fn records(&self) -> Vec<Value> {
        let verified = are_runtime::audit::verify(&self.path).expect("read the log");
        assert!(verified.is_ok(), "the chain is broken: {verified:?}");
        are_runtime::audit::read(&self.path).expect("read the log")
    }

    /// The records of `event`.
    fn of(&self, event: &str) -> Vec<Value> {
        self.records()
            .into_iter()
            .filter(|r| r["event"] == event)
            .collect()
    }
}

/// The one record of `records` whose detail field `key` is `value`.
fn with<'a>(records: &'a [Value], key: &str, value: &str) -> &'a Value {
    let found: Vec<&Value> = records
        .iter()
        .filter(|r| r["detail"][key] == value)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one record with {key} = {value:?} among {records:#?}"
    );
    found[0]
}

fn mode(record: &Value) -> Vec<&str> {
    record["detail"]["mode"]
        .as_array()
        .unwrap_or_else(|| panic!("no mode in {record}"))
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------------------------------
// calls
// ---------------------------------------------------------------------------------------------------------------

/// Write `are.toml` in `dir` with an `[audit]` section (`fsync`) and `body`; returns its path.
fn write_policy(dir: &Path, fsync: &str, body: &str) -> String {
    let toml = format!("[audit]\npath = \"logs/audit.jsonl\"\nfsync = \"{fsync}\"\n\n{body}");
    crate::common::write_policy(dir, &toml)
        .display()
        .to_string()
}

#[test]
fn a_call_through_the_cli_is_recorded_with_its_fuel_and_outcome() {
    let dir = tempdir();
    let hash = are_tests::guest("hash");
    let config = write_policy(
        dir.path(),
        "always",
        &format!(
            "[component.hash]\nsource = \"{}\"\n",
            hash.wasm_path().display()
        ),
    );
    let out = run(&[
        "call",
        "--config",
        &config,
        "hash",
        "hash.sha256-hex",
        r#"{"text":"abc"}"#,
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let out = run(&[
        "call",
        "--config",
        &config,
        "hash",
        "hash.sha256-hex",
        r#"{"txt":"abc"}"#,
    ]);
    assert_ne!(out.code, Some(0));

    let log = dir.path().join("logs/audit.jsonl");
    let records = are_runtime::audit::read(&log).unwrap();
    let calls: Vec<&Value> = records.iter().filter(|r| r["event"] == "call").collect();
    assert_eq!(calls.len(), 2, "{records:#?}");
    let sha = are_policy::common::hex(&are_policy::common::sha256(&hash.bytes()));
    for call in &calls {
        assert_eq!(call["component"], "hash");
        assert_eq!(call["sha256"], sha.as_str());
        assert_eq!(call["caller"], "cli");
        assert_eq!(call["detail"]["function"], "hash.sha256-hex");
    }
    assert!(calls[1]["seq"].as_u64() > calls[0]["seq"].as_u64());
    assert_eq!(calls[0]["outcome"], "ok");
    assert!(
        calls[0]["detail"]["fuel"].as_u64().is_some_and(|f| f > 0),
        "{}",
        calls[0]
    );
    assert!(
        calls[0]["detail"]["peak_memory"]
            .as_u64()
            .is_some_and(|m| m > 0)
    );
    assert_eq!(calls[1]["outcome"], "error:invalid_arguments");
    assert!(
        calls[1]["detail"]["error"]
            .as_str()
            .unwrap()
            .contains("text")
    );

    let out = run(&["audit", "verify", &log.display().to_string()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .contains(&format!("ok, {} records", records.len())),
        "{}",
        out.stdout
    );
}

// ---------------------------------------------------------------------------------------------------------------
// filesystem
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_file_the_guest_opens_is_recorded_with_its_guest_path_and_mode() {
    let trail = Trail::new();
    let base = trail.dir.path();
    std::fs::create_dir_all(base.join("data")).unwrap();
    std::fs::create_dir_all(base.join("out")).unwrap();
    std::fs::write(base.join("data/notes.txt"), "notes").unwrap();
    let files = trail.load(
        "files",
        r#"fs = [{ host = "data", guest = "/data" }, { host = "out", guest = "/out", mode = "rw" }]"#,
    );

    call_ok(&files, "files.read", json!({"path": "/data/notes.txt"})).await;
    call_ok(&files, "files.list", json!({"path": "/data"})).await;
    let refused = call_ok(
        &files,
        "files.write",
        json!({"path": "/data/new.txt", "contents": "no"}),
    )
    .await;
    assert!(refused.get("err").is_some(), "{refused}");
    let written = call_ok(
        &files,
        "files.write",
        json!({"path": "/out/report.txt", "contents": "yes"}),
    )
    .await;
    assert_eq!(written, json!({"ok": 3}));

    let opens = trail.of("fs.open");
    let read = with(&opens, "path", "/data/notes.txt");
    assert_eq!(read["outcome"], "ok");
    assert_eq!(read["detail"]["kind"], "file");
    assert_eq!(read["component"], "files");
    assert_eq!(read["caller"], "test");
    assert_eq!(read["sha256"], files.sha256.as_str());
    assert!(mode(read).contains(&"read") && !mode(read).contains(&"write"));

    let listed = with(&opens, "path", "/data");
    assert_eq!(listed["outcome"], "ok");
    assert_eq!(listed["detail"]["kind"], "dir");
    assert!(mode(listed).contains(&"directory"), "{listed}");

    let refused = with(&opens, "path", "/data/new.txt");
    assert_eq!(
        refused["outcome"], "denied",
        "a write to the ro mount: {refused}"
    );
    assert!(mode(refused).contains(&"write") && mode(refused).contains(&"create"));
    assert!(!base.join("data/new.txt").exists());

    let written = with(&opens, "path", "/out/report.txt");
    assert_eq!(written["outcome"], "ok");
    assert!(
        ["write", "create", "truncate"]
            .iter()
            .all(|m| mode(written).contains(m)),
        "{written}"
    );
}

#[tokio::test]
async fn an_escape_through_a_granted_descriptor_is_recorded_as_denied() {
    let trail = Trail::new();
    std::fs::create_dir_all(trail.dir.path().join("data")).unwrap();
    let escape = trail.load(
        "hostile-fs-escape",
        r#"fs = [{ host = "data", guest = "/data" }]"#,
    );
    let attempts = call_ok(&escape, "attack.dot-dot", json!(null)).await;
    assert!(
        attempts
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["outcome"].get("err").is_some()),
        "{attempts}"
    );
    let climbs: Vec<Value> = trail
        .of("fs.open")
        .into_iter()
        .filter(|r| {
            r["detail"]["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/data/..") || p.starts_with("/data/../"))
        })
        .collect();
    assert!(!climbs.is_empty(), "no open-at with `..` was recorded");
    for climb in &climbs {
        assert_eq!(climb["outcome"], "denied", "{climb}");
        assert_eq!(climb["component"], "hostile-fs-escape");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// environment
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn reading_the_environment_records_the_names_never_the_values() {
    let trail = Trail::new();
    let value = format!("env-value-that-must-not-be-logged-{}", std::process::id());
    let snoop = trail.load(
        "hostile-env-snoop",
        &format!(r#"env = {{ API_BASE = "{value}", LOG = "info" }}"#),
    );
    let vars = call_ok(&snoop, "attack.raw-vars", json!(null)).await;
    assert_eq!(vars, json!([["API_BASE", value], ["LOG", "info"]]));

    let reads = trail.of("env.read");
    assert!(!reads.is_empty(), "no env.read recorded");
    for read in &reads {
        assert_eq!(read["outcome"], "ok");
        assert_eq!(read["detail"]["names"], json!(["API_BASE", "LOG"]));
    }
    let text = std::fs::read_to_string(&trail.path).unwrap();
    assert!(!text.contains(&value), "a variable's value is in the log");
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_requests_are_recorded_allowed_or_denied_without_the_secret() {
    let server = TestServer::start().await;
    let dir = tempdir();
    let fetch = are_tests::guest("fetch");
    let secret_env = format!("ARE_TEST_AUDIT_SECRET_{}", std::process::id());
    let secret = format!("audit-secret-value-{}", std::process::id());
    let config = write_policy(
        dir.path(),
        "interval",
        &format!(
            r#"[component.fetch]
source = "{}"
allow.http = ["{}"]
allow.secrets = [{{ host = "127.0.0.1", header = "X-Api-Key", from_env = "{secret_env}" }}]
"#,
            fetch.wasm_path().display(),
            server.origin()
        ),
    );
    let echo = server.url("/echo?token=query-data");
    let denied = "http://127.0.0.2:9/elsewhere";
    let out = tokio::task::spawn_blocking(move || {
        let run = |url: &str| {
            crate::common::are()
                .args(["call", "--config", &config, "fetch", "get"])
                .arg(json!({ "url": url }).to_string())
                .env(&secret_env, &secret)
                .output()
                .expect("run are")
        };
        (run(&echo), run(denied), secret)
    })
    .await
    .unwrap();
    let (allowed, refused, secret) = out;
    let allowed_out = String::from_utf8_lossy(&allowed.stdout);
    assert!(
        allowed.status.success() && allowed_out.contains(&secret),
        "the server got the secret header: {allowed_out}"
    );
    assert!(!refused.status.success());

    let log = dir.path().join("logs/audit.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(&secret), "the secret's value is in the log");
    assert!(
        !text.contains("query-data"),
        "the query string is in the log"
    );
    let records = are_runtime::audit::read(&log).unwrap();
    let requests: Vec<&Value> = records
        .iter()
        .filter(|r| r["event"] == "http.request")
        .collect();
    assert_eq!(requests.len(), 2, "{records:#?}");
    assert_eq!(requests[0]["outcome"], "ok");
    assert_eq!(requests[0]["component"], "fetch");
    assert_eq!(requests[0]["detail"]["status"], 200);
    assert_eq!(requests[0]["detail"]["method"], "GET");
    assert_eq!(requests[0]["detail"]["url"], server.url("/echo"));
    assert_eq!(requests[0]["detail"]["secrets"], json!(["x-api-key"]));
    assert_eq!(requests[1]["outcome"], "denied");
    assert_eq!(requests[1]["detail"]["url"], "http://127.0.0.2:9/elsewhere");
    assert!(are_runtime::audit::verify(&log).unwrap().is_ok());
}

// ---------------------------------------------------------------------------------------------------------------
// sockets
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_connects_and_name_lookups_are_recorded_allowed_or_denied() {
    let sink = TcpSink::start().await;
    let other = TcpSink::start().await;
    let trail = Trail::new();
    let net = trail.load(
        "hostile-net",
        &format!(
            r#"sockets = ["127.0.0.1:{}", "tcp://localhost:{}"]"#,
            sink.port, sink.port
        ),
    );
    let ok = call_ok(
        &net,
        "attack.tcp-connect-raw",
        json!({"ip": "127.0.0.1", "port": sink.port}),
    )
    .await;
    assert!(ok["ok"].is_string(), "{ok}");
    let refused = call_ok(
        &net,
        "attack.tcp-connect-raw",
        json!({"ip": "127.0.0.1", "port": other.port}),
    )
    .await;
    assert!(refused["err"].is_string(), "{refused}");
    let looked_up = call_ok(&net, "attack.dns-lookup", json!({"name": "localhost"})).await;
    assert!(looked_up["ok"].is_array(), "{looked_up}");
    let exfil = "secret-data-in-a-label.exfil.invalid";
    let refused_lookup = call_ok(&net, "attack.dns-lookup", json!({"name": exfil})).await;
    assert!(refused_lookup["err"].is_string());
    // A lookup finishes on another task: give its record a moment.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let connects = trail.of("socket.connect");
    let port_of = |r: &&Value| r["detail"]["port"].as_u64();
    let allowed: Vec<&Value> = connects
        .iter()
        .filter(|r| port_of(r) == Some(u64::from(sink.port)))
        .collect();
    assert_eq!(allowed.len(), 1, "{connects:#?}");
    assert_eq!(allowed[0]["outcome"], "ok");
    assert_eq!(allowed[0]["detail"]["addr"], "127.0.0.1");
    assert_eq!(allowed[0]["detail"]["protocol"], "tcp");
    let denied: Vec<&Value> = connects
        .iter()
        .filter(|r| port_of(r) == Some(u64::from(other.port)))
        .collect();
    assert_eq!(denied.len(), 1, "{connects:#?}");
    assert_eq!(denied[0]["outcome"], "denied");
    assert_eq!(other.accepted(), 0);

    let lookups = trail.of("dns.lookup");
    let localhost = with(&lookups, "name", "localhost");
    assert_eq!(localhost["outcome"], "ok");
    assert!(
        localhost["detail"]["addresses"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
    assert_eq!(with(&lookups, "name", exfil)["outcome"], "denied");
}

// ---------------------------------------------------------------------------------------------------------------
// agents
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn an_agents_tool_calls_model_calls_and_messages_are_recorded() {
    let dir = tempdir();
    let text = are_tests::guest("text").wasm_path().display().to_string();
    let probe = are_tests::guest("agent-probe")
        .wasm_path()
        .display()
        .to_string();
    let config = crate::common::write_policy(
        dir.path(),
        &format!(
            r#"[audit]
path = "audit.jsonl"
fsync = "never"

[component.text]
source = "{text}"

[agent.probe]
source = "{probe}"
allow.tools = ["text.word-count"]
allow.llm = {{ model = "default" }}
allow.messaging = {{ send = ["probe/*"], publish = ["news"] }}
"#
        ),
    );
    let rt = agent_runtime(&config);
    let ask = |cmd: Value| {
        let rt = rt.clone();
        async move { ask_agent(&rt, "probe/a", cmd).await.expect("handled") }
    };
    let counted =
        ask(json!({"op": "tool", "name": "text.word-count", "args": {"text": "a b c"}})).await;
    assert!(counted["ok"].is_object(), "{counted}");
    let refused = ask(json!({"op": "tool", "name": "text.slugify", "args": {"text": "A b"}})).await;
    assert!(refused["err"].is_string(), "{refused}");
    let answered = ask(json!({"op": "ask", "prompt": "say something"})).await;
    assert!(answered["ok"]["text"].is_string(), "{answered}");
    let sent =
        ask(json!({"op": "send", "to": "probe/b", "payload": {"op": "echo", "text": "hi"}})).await;
    assert!(sent["ok"].is_string(), "{sent}");
    let refused_send = ask(json!({"op": "send", "to": "writer/x", "payload": "x"})).await;
    assert!(refused_send["err"].as_str().unwrap().contains("Denied"));
    let published = ask(json!({"op": "publish", "topic": "news", "payload": "x"})).await;
    assert_eq!(published, json!({"ok": null}));
    let refused_publish = ask(json!({"op": "publish", "topic": "secrets", "payload": "x"})).await;
    assert!(refused_publish["err"].as_str().unwrap().contains("Denied"));
    rt.until_idle().await;

    let log = dir.path().join("audit.jsonl");
    assert!(are_runtime::audit::verify(&log).unwrap().is_ok());
    let records = are_runtime::audit::read(&log).unwrap();
    let of = |event: &str| -> Vec<Value> {
        records
            .iter()
            .filter(|r| r["event"] == event)
            .cloned()
            .collect()
    };
    for r in records.iter().filter(|r| {
        ["tool.call", "llm.call", "message.send", "message.publish"]
            .contains(&r["event"].as_str().unwrap())
    }) {
        assert_eq!(r["caller"], "agent:probe/a", "{r}");
        assert_eq!(r["component"], "probe", "{r}");
    }

    let tools = of("tool.call");
    let ok = with(&tools, "tool", "text.word-count");
    assert_eq!(ok["outcome"], "ok");
    assert!(ok["detail"]["fuel"].as_u64().is_some_and(|f| f > 0), "{ok}");
    assert_eq!(with(&tools, "tool", "text.slugify")["outcome"], "denied");
    // The tool's own run is a `call` of the `text` component.
    assert!(
        of("call")
            .iter()
            .any(|c| c["component"] == "text" && c["detail"]["function"] == "text.word-count"),
        "{records:#?}"
    );

    let llm = of("llm.call");
    assert_eq!(llm.len(), 1, "{llm:#?}");
    assert_eq!(llm[0]["outcome"], "ok");
    assert_eq!(llm[0]["detail"]["model"], "default");
    assert!(
        llm[0]["detail"]["prompt_tokens"]
            .as_u64()
            .is_some_and(|t| t > 0)
    );
    assert!(
        llm[0]["detail"]["completion_tokens"]
            .as_u64()
            .is_some_and(|t| t > 0)
    );
    assert!(
        !llm[0].to_string().contains("say something"),
        "the prompt is not recorded"
    );

    let sends = of("message.send");
    let to_b = with(&sends, "to", "probe/b");
    assert_eq!(to_b["outcome"], "ok");
    assert!(
        to_b["detail"]["message"]
            .as_str()
            .is_some_and(|id| id.ends_with(".s1"))
    );
    assert_eq!(with(&sends, "to", "writer/x")["outcome"], "denied");
    // The receiving agent's handler call is recorded under its own identity.
    assert!(
        of("call").iter().any(|c| c["caller"] == "agent:probe/b"
            && c["detail"]["function"] == "handler.on-message"
            && c["outcome"] == "ok"),
        "{records:#?}"
    );

    let publishes = of("message.publish");
    let news = with(&publishes, "topic", "news");
    assert_eq!(news["outcome"], "ok");
    assert!(news["detail"]["message"].is_string());
    assert_eq!(news["detail"]["subscribers"], 0);
    assert_eq!(with(&publishes, "topic", "secrets")["outcome"], "denied");
}

// ---------------------------------------------------------------------------------------------------------------
// are audit verify
// ---------------------------------------------------------------------------------------------------------------

/// A log of `n` records in `dir` (alternating components `alpha`/`beta`, every third one denied).
fn sample_log(dir: &Path, n: u64) -> PathBuf {
    let path = dir.join("sample.jsonl");
    let log = AuditLog::open(&path, Fsync::Never).unwrap();
    for i in 1..=n {
        let component = if i % 2 == 1 { "alpha" } else { "beta" };
        let outcome = if i % 3 == 0 { "denied" } else { "ok" };
        log.append("call", component, "00", "cli", outcome, json!({ "i": i }));
    }
    path
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Run `are audit verify` on `lines` written to `path`; returns (exit code, stderr, the --json report).
fn verify_lines(path: &Path, lines: &[String]) -> (Option<i32>, String, Value) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
    let file = path.display().to_string();
    let human = run(&["audit", "verify", &file]);
    let json = run(&["audit", "verify", &file, "--json"]);
    assert_eq!(human.code, json.code);
    (human.code, human.stderr, json.json())
}

#[test]
fn verify_passes_an_intact_log_and_names_the_first_bad_record_of_a_tampered_one() {
    let dir = tempdir();
    let path = sample_log(dir.path(), 5);
    let original = lines(&path);
    let copy = dir.path().join("copy.jsonl");

    let (code, _, report) = verify_lines(&copy, &original);
    assert_eq!(code, Some(0));
    assert_eq!(report["ok"], true);
    assert_eq!(report["records"], 5);
    let last: Value = serde_json::from_str(&original[4]).unwrap();
    assert_eq!(report["last_hash"], last["hash"]);

    let check = |tampered: Vec<String>, record: u64, word: &str| {
        let (code, stderr, report) = verify_lines(&copy, &tampered);
        assert_eq!(code, Some(1), "{stderr}");
        assert_eq!(report["ok"], false);
        assert_eq!(report["first_bad"]["record"], record, "{report}");
        assert!(
            stderr.contains(&format!("record {record} ")),
            "the message names record {record}: {stderr}"
        );
        assert!(
            report["first_bad"]["problem"]
                .as_str()
                .unwrap()
                .contains(word),
            "{report}"
        );
    };

    // An edited field: record 3's outcome.
    let mut edited = original.clone();
    edited[2] = edited[2].replace("\"denied\"", "\"ok\"");
    assert_ne!(edited[2], original[2]);
    check(edited, 3, "edited");

    // An edited detail, even with the record's own hash recomputed: the next record no longer follows it.
    let mut rehashed = original.clone();
    let mut forged: Value = serde_json::from_str(&rehashed[1]).unwrap();
    forged["detail"]["i"] = json!(99);
    rehashed[1] = reseal(forged);
    check(rehashed, 3, "edited and re-hashed");

    // A deleted record.
    let mut deleted = original.clone();
    deleted.remove(1);
    check(deleted, 2, "deleted");

    // An inserted record: a copy of record 1 after record 3.
    let mut inserted = original.clone();
    inserted.insert(3, original[0].clone());
    check(inserted, 4, "inserted");

    // Two records swapped.
    let mut swapped = original.clone();
    swapped.swap(1, 2);
    check(swapped, 2, "deleted or moved");
}

/// `record` with its `hash` recomputed over its (edited) content, as a forger would.
fn reseal(mut record: Value) -> String {
    record.as_object_mut().unwrap().remove("hash");
    let parsed: are_runtime::audit::Record = serde_json::from_value(record.clone()).unwrap();
    record["hash"] = are_runtime::audit::record_hash(&parsed).into();
    record.to_string()
}

// ---------------------------------------------------------------------------------------------------------------
// are audit show
// ---------------------------------------------------------------------------------------------------------------

fn show(args: &[&str]) -> Vec<Value> {
    let mut all = vec!["audit", "show", "--json"];
    all.extend_from_slice(args);
    let out = run(&all);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON record a line"))
        .collect()
}

fn seqs(records: &[Value]) -> Vec<u64> {
    records.iter().map(|r| r["seq"].as_u64().unwrap()).collect()
}

#[test]
fn show_filters_by_component_denial_event_and_time() {
    let dir = tempdir();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path, Fsync::Never).unwrap();
    log.append("call", "alpha", "00", "cli", "ok", json!({}));
    log.append("fs.open", "beta", "00", "cli", "denied", json!({}));
    log.append("socket.connect", "alpha", "00", "mcp", "denied", json!({}));
    std::thread::sleep(Duration::from_millis(30));
    let boundary = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    std::thread::sleep(Duration::from_millis(30));
    log.append("dns.lookup", "beta", "00", "cli", "ok", json!({}));
    log.append("call", "alpha", "00", "cli", "error:trap", json!({}));
    drop(log);
    let file = path.display().to_string();

    assert_eq!(seqs(&show(&[&file])), [1, 2, 3, 4, 5]);
    assert_eq!(seqs(&show(&[&file, "--component", "alpha"])), [1, 3, 5]);
    assert_eq!(seqs(&show(&[&file, "--denied"])), [2, 3]);
    assert_eq!(seqs(&show(&[&file, "--since", &boundary])), [4, 5]);
    assert_eq!(seqs(&show(&[&file, "--since", "1h"])), [1, 2, 3, 4, 5]);
    assert_eq!(
        seqs(&show(&[&file, "--since", "2999-01-01T00:00:00Z"])),
        [0u64; 0]
    );
    assert_eq!(seqs(&show(&[&file, "--event", "call"])), [1, 5]);
    assert_eq!(seqs(&show(&[&file, "--event", "s*"])), [3]);
    assert_eq!(
        seqs(&show(&[&file, "--component", "alpha", "--denied"])),
        [3]
    );
    assert_eq!(
        seqs(&show(&[&file, "--component", "beta", "--since", &boundary])),
        [4]
    );
    // Records come back whole, hash included.
    let first = &show(&[&file])[0];
    assert_eq!(first["prev"], are_runtime::audit::GENESIS);
    assert!(first["hash"].as_str().is_some_and(|h| h.len() == 64));

    // The table form prints one line a record.
    let out = run(&["audit", "show", &file, "--denied"]);
    assert_eq!(out.code, Some(0));
    let table: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(table.len(), 2, "{}", out.stdout);
    assert!(
        table[0].contains("fs.open") && table[0].contains("beta") && table[0].contains("denied")
    );

    // The log named by a policy's [audit] section.
    let config = crate::common::write_policy(dir.path(), "[audit]\npath = \"audit.jsonl\"\n")
        .display()
        .to_string();
    assert_eq!(
        seqs(&show(&["--config", &config, "--component", "beta"])),
        [2, 4]
    );

    let out = run(&["audit", "show", &file, "--since", "yesterday-ish"]);
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("--since"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------------------------------
// signed checkpoints (issue 11 point 9)
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn cli_calls_leave_a_signed_covered_log_whose_truncation_and_rewrite_are_caught() {
    let dir = tempdir();
    let hash = are_tests::guest("hash");
    // The key apart from the log's directory, as the policy must have it.
    let config = write_policy(
        dir.path(),
        "never",
        &format!(
            "[component.hash]\nsource = \"{}\"\n",
            hash.wasm_path().display()
        ),
    );
    let config_text = std::fs::read_to_string(&config).unwrap().replace(
        "fsync = \"never\"\n",
        "fsync = \"never\"\nkey = \"keys/audit.key\"\ncheckpoint_every = 1000\n",
    );
    std::fs::write(&config, config_text).unwrap();
    for text in ["a", "b", "c"] {
        let args = json!({ "text": text }).to_string();
        let out = run(&[
            "call",
            "--config",
            &config,
            "hash",
            "hash.sha256-hex",
            &args,
        ]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
    }
    let log = dir.path().join("logs/audit.jsonl");
    let file = log.display().to_string();
    let key = run(&["audit", "key", "--config", &config]);
    assert_eq!(key.code, Some(0), "{}", key.stderr);
    let public = key.stdout.trim().to_string();
    assert_eq!(public.len(), 64, "{public}");

    // Each `are call` signed a checkpoint when it exited: every record is covered.
    let out = run(&[
        "audit",
        "verify",
        &file,
        "--public-key",
        &public,
        "--require-covered",
        "--json",
    ]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(report["records"], report["covered"], "{report}");
    assert_eq!(report["checkpoints"], 3, "{report}");
    assert_eq!(report["key_trusted"], true);
    let records = report["records"].as_u64().unwrap();
    let head = report["last_hash"].as_str().unwrap().to_string();
    let anchor = dir.path().join("anchor.checkpoints");
    std::fs::copy(are_runtime::audit::checkpoints_path(&log), &anchor).unwrap();
    let anchor = anchor.display().to_string();

    // The last record cut off, and its checkpoints file cut back to match.
    let original = lines(&log);
    let checkpoints = std::fs::read_to_string(are_runtime::audit::checkpoints_path(&log)).unwrap();
    std::fs::write(&log, original[..original.len() - 1].join("\n") + "\n").unwrap();
    let kept: Vec<&str> = checkpoints
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).unwrap()["records"].as_u64() < Some(records))
        .collect();
    std::fs::write(
        are_runtime::audit::checkpoints_path(&log),
        kept.join("\n") + "\n",
    )
    .unwrap();
    let out = run(&["audit", "verify", &file, "--public-key", &public]);
    assert_eq!(
        out.code,
        Some(0),
        "a consistent cut passes alone: {}",
        out.stderr
    );
    for (flag, value, word) in [
        ("--anchor", anchor.as_str(), "truncated"),
        ("--head", head.as_str(), "--head"),
    ] {
        let out = run(&[
            "audit",
            "verify",
            &file,
            "--public-key",
            &public,
            flag,
            value,
        ]);
        assert_eq!(out.code, Some(1), "{flag}: {}", out.stdout);
        assert!(
            out.stderr.contains(&format!("record {records} ")) && out.stderr.contains(word),
            "{flag}: {}",
            out.stderr
        );
    }

    // A whole new chain in place of the log: the kept anchor's heads are not in it.
    std::fs::remove_file(&log).unwrap();
    std::fs::remove_file(are_runtime::audit::checkpoints_path(&log)).unwrap();
    let forged = AuditLog::open(&log, Fsync::Never).unwrap();
    for i in 0..records {
        forged.append("call", "hash", "00", "cli", "ok", json!({ "i": i }));
    }
    drop(forged);
    let out = run(&[
        "audit",
        "verify",
        &file,
        "--public-key",
        &public,
        "--anchor",
        &anchor,
    ]);
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(out.stderr.contains("rewritten"), "{}", out.stderr);
    let out = run(&["audit", "verify", &file, "--require-covered"]);
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(out.stderr.contains("not covered"), "{}", out.stderr);
}

#[test]
fn show_escapes_what_guests_and_editors_put_in_records() {
    let dir = tempdir();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path, Fsync::Never).unwrap();
    log.append(
        "fs.open",
        "\u{1b}[2Jevil",
        "00",
        "cli",
        "denied",
        json!({ "path": "/data/\u{9b}31m\u{202e}txt.exe\rok" }),
    );
    drop(log);
    let out = run(&["audit", "show", &path.display().to_string()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        !out.stdout
            .chars()
            .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
        "{:?}",
        out.stdout
    );
    assert!(out.stdout.contains("\\u{1b}[2Jevil"), "{}", out.stdout);
    assert!(
        out.stdout.contains("\\u{9b}31m\\u{202e}txt.exe\\rok"),
        "{}",
        out.stdout
    );
    assert_eq!(out.stdout.lines().count(), 1);
}

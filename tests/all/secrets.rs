//! `allow.secrets`: the host adds a header to the requests for one host, with a value from its own environment.
//! The value must reach that host and nothing else: not the guest (through its environment, its files, another
//! host, or a redirect it follows), not another server, and not the output, the logs or the audit trail.
//!
//! The `are` binary runs with the value in its environment, as in production; two local servers record every
//! request they receive, so each test checks from the receiving side too. The one way the value does come back
//! to the guest is a granted host that echoes request headers: that host holds the secret by design, so it is
//! trusted with it, and `trusted_host_that_echoes_headers_hands_the_secret_back` pins that caveat (SECURITY.md).

use crate::common::{Output, are, output_off_runtime, run, tempdir};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The variable the host reads the secret from.
const VAR: &str = "ARE_TEST_SECRET_TOKEN";

/// A value that exists only in the `are` process's environment, so that finding it anywhere else is a leak.
fn secret_value() -> String {
    format!(
        "are-test-secret-{}-{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// One request a [`Recorder`] received.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: Vec<(String, String)>,
}

/// A local HTTP server on 127.0.0.1 that keeps every request it receives:
/// - `/echo`: the request's headers as JSON (what a header-reflecting service does)
/// - `/plain`: `plain`
/// - `/redirect?to=URL`: a 303 to `URL`
struct Recorder {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    async fn start() -> Recorder {
        use axum::extract::{Query, Request, State};
        use axum::response::{IntoResponse, Redirect, Response};
        use std::collections::HashMap;

        type Log = Arc<Mutex<Vec<Seen>>>;
        async fn record(State(log): State<Log>, req: Request) -> Response {
            let headers: Vec<(String, String)> = req
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                .collect();
            let path = req.uri().to_string();
            log.lock().unwrap().push(Seen {
                path: path.clone(),
                headers: headers.clone(),
            });
            match req.uri().path() {
                "/echo" => axum::Json(json!({ "headers": headers })).into_response(),
                "/redirect" => {
                    let Query(q) =
                        Query::<HashMap<String, String>>::try_from_uri(req.uri()).expect("a query");
                    Redirect::to(q.get("to").map_or("/plain", String::as_str)).into_response()
                }
                _ => "plain".into_response(),
            }
        }
        let seen: Log = Arc::default();
        let app = axum::Router::new()
            .fallback(record)
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Recorder { port, seen, task }
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }

    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The values of header `name` on the requests to `path` (its path part), one list per request.
    fn header_values(&self, path: &str, name: &str) -> Vec<Vec<String>> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.split('?').next() == Some(path))
            .map(|r| {
                r.headers
                    .into_iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
                    .collect()
            })
            .collect()
    }

    /// Whether `needle` appears anywhere in what this server received.
    fn received(&self, needle: &str) -> bool {
        self.requests().iter().any(|r| {
            r.path.contains(needle)
                || r.headers
                    .iter()
                    .any(|(k, v)| k.contains(needle) || v.contains(needle))
        })
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The policy of these tests: `hunter` (`hostile-secret`) may reach both servers and read `data/`; the secret
/// goes to `allowed` only. The audit trail is `audit.jsonl` next to it.
fn write_policy(dir: &Path, allowed: &Recorder, other: &Recorder) -> PathBuf {
    std::fs::create_dir_all(dir.join("data/nested")).unwrap();
    std::fs::write(dir.join("data/notes.txt"), "granted file").unwrap();
    std::fs::write(dir.join("data/nested/.env"), "NOTHING=here").unwrap();
    let policy = format!(
        r#"[audit]
path = "audit.jsonl"

[component.hunter]
source = {source:?}
allow.http = [{allowed:?}, {other:?}]
allow.fs = [{{ host = "data", guest = "/data" }}]
allow.env = {{ GRANTED = "granted-value" }}
allow.secrets = [{{ host = "127.0.0.1:{port}", header = "Authorization", from_env = "{VAR}", prefix = "Bearer " }}]
"#,
        source = are_tests::guest("hostile-secret").wasm,
        allowed = allowed.origin(),
        other = other.origin(),
        port = allowed.port,
    );
    crate::common::write_policy(dir, &policy)
}

/// Run `are` with the secret in its environment (and `extra_env`), off the async runtime so that the servers
/// keep answering.
async fn run_are(args: Vec<String>, secret: &str, extra_env: &[(&str, &str)]) -> Output {
    let mut cmd = are();
    cmd.env(VAR, secret).args(&args);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    output_off_runtime(cmd).await
}

/// `are call hunter attack.FUNCTION ARGS --policy POLICY --json`, checked to have succeeded; returns the output
/// and the envelope's result.
async fn call_hunter(
    policy: &Path,
    function: &str,
    args: Value,
    secret: &str,
    extra_env: &[(&str, &str)],
) -> (Output, Value) {
    let args = vec![
        "call".to_string(),
        "hunter".into(),
        format!("attack.{function}"),
        args.to_string(),
        "--policy".into(),
        policy.display().to_string(),
        "--json".into(),
    ];
    let out = run_are(args, secret, extra_env).await;
    assert_eq!(
        out.code,
        Some(0),
        "{function}: {}\n{}",
        out.stdout,
        out.stderr
    );
    let result = out.json()["result"].clone();
    (out, result)
}

/// The finding for `http:URL` in a loot, if any.
fn finding<'a>(loot: &'a Value, url: &str) -> Option<&'a str> {
    loot["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["source"] == format!("http:{url}"))
        .and_then(|f| f["content"].as_str())
}

fn assert_not_in(secret: &str, what: &str, text: &str) {
    assert!(
        !text.contains(secret),
        "the secret leaked into {what}:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_reaches_only_its_host_and_never_the_guest_or_the_logs() {
    let dir = tempdir();
    let allowed = Recorder::start().await;
    let other = Recorder::start().await;
    let policy = write_policy(dir.path(), &allowed, &other);
    let secret = secret_value();
    let mut outputs = Vec::new();

    // 1. The hunt: every variable and argument, every file it can reach (granted or not), and a header-echoing
    //    server that is not the secret's host.
    let (out, loot) = call_hunter(
        &policy,
        "hunt",
        json!({
            "url": other.url("/echo"),
            "paths": ["/data", "../", "/proc/self/environ", dir.path().display().to_string()],
        }),
        &secret,
        &[],
    )
    .await;
    let text = loot.to_string();
    assert!(
        text.contains("granted file") && text.contains("granted-value"),
        "the hunt ran: {text}"
    );
    let echoed = finding(&loot, &other.url("/echo")).expect("the other server answered");
    assert!(echoed.starts_with("200"), "{echoed}");
    assert!(
        !echoed.to_ascii_lowercase().contains("authorization"),
        "the other host got an Authorization header: {echoed}"
    );
    outputs.push(out);

    // 2. The guest forges its own Authorization header for the secret's host: the host replaces it, so the
    //    server gets the secret once and the forgery never.
    let (out, loot) = call_hunter(
        &policy,
        "follow",
        json!({
            "url": allowed.url("/plain"),
            "headers": [["Authorization", "guest-forged"], ["authorization", "guest-forged-2"]],
            "hops": 0,
        }),
        &secret,
        &[],
    )
    .await;
    assert!(
        finding(&loot, &allowed.url("/plain")).is_some_and(|c| c.starts_with("200")),
        "{loot}"
    );
    assert_eq!(
        allowed.header_values("/plain", "authorization"),
        [[format!("Bearer {secret}")]],
        "the secret's host gets exactly the secret, in place of the guest's own header"
    );
    assert!(!allowed.received("guest-forged"));
    outputs.push(out);

    // 3. A redirect from the secret's host to the other one, followed by the guest (wasi:http itself never
    //    follows): the first request carries the secret, the second does not.
    let target = other.url("/echo");
    let (out, loot) = call_hunter(
        &policy,
        "follow",
        json!({
            "url": allowed.url(&format!("/redirect?to={target}")),
            "headers": [],
            "hops": 3,
        }),
        &secret,
        // At the most verbose logging, too.
        &[(
            "RUST_LOG",
            "trace,cranelift=info,wasmtime_cranelift=info,regalloc2=info",
        )],
    )
    .await;
    assert!(
        finding(&loot, &allowed.url(&format!("/redirect?to={target}")))
            .is_some_and(|c| c.starts_with("303")),
        "{loot}"
    );
    let echoed = finding(&loot, &target).expect("the guest followed the redirect");
    assert!(
        echoed.starts_with("200") && !echoed.to_ascii_lowercase().contains("authorization"),
        "{echoed}"
    );
    assert_eq!(
        allowed.header_values("/redirect", "authorization"),
        [[format!("Bearer {secret}")]]
    );
    assert!(
        out.stderr.contains("TRACE") || out.stderr.contains("DEBUG"),
        "trace logging was on: {}",
        out.stderr
    );
    outputs.push(out);

    // 4. The guest's own Authorization header to the other host goes through untouched: the host replaces the
    //    header only for the secret's host.
    let (out, _) = call_hunter(
        &policy,
        "follow",
        json!({ "url": other.url("/plain"), "headers": [["Authorization", "guest-own"]], "hops": 0 }),
        &secret,
        &[],
    )
    .await;
    assert_eq!(
        other.header_values("/plain", "authorization"),
        [["guest-own".to_string()]]
    );
    outputs.push(out);

    // The same calls without --json (the human output), and the policy review, which lists the secret.
    let out = run_are(
        vec![
            "call".into(),
            "hunter".into(),
            "attack.follow".into(),
            json!({ "url": allowed.url("/plain"), "headers": [], "hops": 0 }).to_string(),
            "--policy".into(),
            policy.display().to_string(),
            "--stats".into(),
        ],
        &secret,
        &[],
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    outputs.push(out);
    let out = run_are(
        vec![
            "policy".into(),
            "review".into(),
            policy.display().to_string(),
        ],
        &secret,
        &[],
    )
    .await;
    assert!(
        out.stdout.contains(&format!(
            "Authorization header for 127.0.0.1:{} from ${VAR}",
            allowed.port
        )),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    outputs.push(out);

    // Where the secret went: the secret's host, on each of its requests; the other server, never.
    assert!(allowed.received(&secret));
    assert!(
        !other.received(&secret),
        "the other server received the secret: {:?}",
        other.requests()
    );
    assert!(
        !other.requests().is_empty(),
        "the other server was reached, without it"
    );
    for out in &outputs {
        assert_not_in(&secret, "stdout", &out.stdout);
        assert_not_in(&secret, "stderr", &out.stderr);
    }

    // The audit trail records each request to the secret's host with the header's name, never its value.
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).expect("the audit trail");
    assert_not_in(&secret, "the audit trail", &audit);
    let requests: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["event"] == "http.request")
        .collect();
    assert!(requests.len() >= 6, "{audit}");
    for record in &requests {
        let url = record["detail"]["url"].as_str().unwrap();
        let expected = if url.starts_with(&allowed.origin()) {
            json!(["authorization"])
        } else {
            json!([])
        };
        assert_eq!(record["detail"]["secrets"], expected, "{record}");
    }
    let out = run(&[
        "audit",
        "verify",
        dir.path().join("audit.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_host_that_echoes_headers_hands_the_secret_back() {
    // The caveat, pinned: the host injects the secret into every request to its host, and cannot tell what that
    // host sends back. One that reflects request headers hands the value to the guest. Grant secrets only to
    // hosts trusted with them, which includes not echoing them (SECURITY.md).
    let dir = tempdir();
    let allowed = Recorder::start().await;
    let other = Recorder::start().await;
    let policy = write_policy(dir.path(), &allowed, &other);
    let secret = secret_value();
    let (out, loot) = call_hunter(
        &policy,
        "follow",
        json!({ "url": allowed.url("/echo"), "headers": [], "hops": 0 }),
        &secret,
        &[],
    )
    .await;
    assert!(
        finding(&loot, &allowed.url("/echo")).is_some_and(|c| c.contains(&secret)),
        "{loot}"
    );
    assert!(out.stdout.contains(&secret));
    // Even then the audit trail keeps only the header's name.
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert_not_in(&secret, "the audit trail", &audit);
    assert!(!other.received(&secret));
}

#[test]
fn a_secret_that_could_never_be_sent_is_refused_when_the_policy_is_read() {
    let dir = tempdir();
    let source = are_tests::guest("hostile-secret").wasm;
    for (http, host, expected) in [
        (
            "https://api.example.com",
            "other.example.com",
            "a secret for other.example.com but `allow.http` does not allow that host: add its origin to allow.http",
        ),
        (
            "http://127.0.0.1:8080",
            "127.0.0.1:9090",
            "a secret for 127.0.0.1:9090 but `allow.http` does not allow that host",
        ),
        (
            "http://api.example.com",
            "api.example.com",
            "a secret for api.example.com but `allow.http` allows that host only over plain http, and secrets \
             are sent only over https (or to a loopback IP literal): allow its https origin",
        ),
    ] {
        let policy = crate::common::write_policy(
            dir.path(),
            &format!(
                "[component.c]\nsource = {source:?}\nallow.http = [{http:?}]\n\
                 allow.secrets = [{{ host = {host:?}, header = \"Authorization\", from_env = \"{VAR}\" }}]\n"
            ),
        );
        let p = policy.to_str().unwrap();
        let out = run(&["policy", "check", p]);
        assert_eq!(out.code, Some(1), "{http} {host}: {}", out.stderr);
        // Line 4, column 27: the secret's `host` value.
        assert!(
            out.stderr.contains(&format!("error: {p}:4:27: {expected}")),
            "{http} {host}: {}",
            out.stderr
        );
        let e = are_policy::Policy::load(&policy).unwrap_err().to_string();
        assert!(e.contains(expected), "{e}");
    }

    // Without its variable in the environment, the policy is fine but a call cannot start: the error names the
    // variable, not a value.
    let policy = crate::common::write_policy(
        dir.path(),
        &format!(
            "[component.c]\nsource = {source:?}\nallow.http = [\"http://127.0.0.1:9\"]\n\
             allow.secrets = [{{ host = \"127.0.0.1:9\", header = \"Authorization\", from_env = \"ARE_TEST_UNSET_SECRET\" }}]\n"
        ),
    );
    let p = policy.to_str().unwrap();
    assert_eq!(run(&["policy", "check", p]).code, Some(0));
    let out = run(&[
        "call",
        "c",
        "attack.follow",
        r#"{"url": "http://127.0.0.1:9/", "headers": [], "hops": 0}"#,
        "--policy",
        p,
    ]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "the secret for 127.0.0.1:9 is read from $ARE_TEST_UNSET_SECRET, which is not set in the host's environment"
        ),
        "{}",
        out.stderr
    );
}

//! Shared helpers: one engine and compile cache per test binary, loading guests with grants written as TOML,
//! writing policies, running the `are` binary, starting an agent runtime, and local HTTP/TCP servers to aim tools
//! at.

use are_agents::AgentRuntime;
use are_policy::Grants;
use are_policy::{Limits, Policy};
use are_runtime::cache::CompileCache;
use are_runtime::component::{self, ComponentSpec, LoadedComponent};
use are_runtime::engine::{AreEngine, EngineConfig};
use are_runtime::host::Host;
use are_runtime::invoke::{CallError, CallReport};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The engine every in-process test shares (fuel and epochs on, like the CLI).
pub fn engine() -> &'static AreEngine {
    static ENGINE: OnceLock<AreEngine> = OnceLock::new();
    ENGINE.get_or_init(|| AreEngine::new(EngineConfig::default()).expect("engine"))
}

/// The host assembly every test shares: the shared engine and compile cache.
pub fn host() -> Host {
    host_with_cache(cache())
}

/// The shared engine with compile cache `cache`.
pub fn host_with_cache(cache: CompileCache) -> Host {
    Host::new(engine().clone(), cache)
}

/// A compile cache under cargo's per-target temporary directory, shared across runs.
pub fn cache() -> CompileCache {
    cache_in(Path::new(env!("CARGO_TARGET_TMPDIR")).join("are-test-cache"))
}

/// The key that authenticates the entries of every test's compile cache, kept out of the user's data directory.
pub fn test_cache_key() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("are-test-cache-key/cache.key")
}

/// A compile cache in `dir`, keyed with [`test_cache_key`].
pub fn cache_in(dir: impl Into<PathBuf>) -> CompileCache {
    CompileCache::new(dir).with_key_file(test_cache_key())
}

/// The spec of guest `name` with `grants` (the body of an `allow` table, e.g. `http = ["http://127.0.0.1:1"]`)
/// and default limits; relative mount paths resolve against `base_dir`.
pub fn spec(name: &str, grants: &str, base_dir: &Path) -> ComponentSpec {
    let grants: Grants =
        toml::from_str(grants).unwrap_or_else(|e| panic!("bad grants {grants:?}: {e}"));
    ComponentSpec {
        name: name.to_string(),
        path: are_tests::guest(name).wasm_path().to_path_buf(),
        grants,
        limits: Limits::default(),
        base_dir: base_dir.to_path_buf(),
        ..ComponentSpec::default()
    }
}

/// Load a spec through the shared engine and cache; panics with the load error.
pub fn load_spec(spec: ComponentSpec) -> LoadedComponent {
    let path = spec.path.clone();
    component::load(engine(), Some(&cache()), spec)
        .unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()))
}

/// Load guest `name` with `grants` (see [`spec`]), relative paths resolving against the current directory.
pub fn load(name: &str, grants: &str) -> LoadedComponent {
    load_spec(spec(name, grants, Path::new(".")))
}

/// Call and return the report.
pub async fn call(c: &LoadedComponent, function: &str, args: Value) -> CallReport {
    c.call(engine(), function, &args, None).await
}

/// Call with other limits.
pub async fn call_limited(
    c: &LoadedComponent,
    function: &str,
    args: Value,
    limits: Limits,
) -> CallReport {
    c.call(engine(), function, &args, Some(limits)).await
}

/// Call and return the JSON result, panicking on any failure (with the guest's stderr).
pub async fn call_ok(c: &LoadedComponent, function: &str, args: Value) -> Value {
    let report = call(c, function, args).await;
    match report.outcome {
        Ok(out) => out.value,
        Err(e) => panic!(
            "{function} failed: {e}\nstderr: {}",
            String::from_utf8_lossy(&report.stderr)
        ),
    }
}

/// Call and return the error, panicking if the call succeeded.
pub async fn call_err(c: &LoadedComponent, function: &str, args: Value) -> CallError {
    match call(c, function, args).await.outcome {
        Ok(out) => panic!("{function} should have failed, returned {}", out.value),
        Err(e) => e,
    }
}

/// The `are` binary cargo built for these tests, with its compile cache in the test temp dir (keyed with
/// [`test_cache_key`]) and logs quiet.
pub fn are() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_are"));
    cmd.env(
        "ARE_CACHE_DIR",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("are-cli-cache"),
    )
    .env("ARE_CACHE_KEY", test_cache_key())
    .env_remove("RUST_LOG")
    .env_remove("ARE_LOG");
    cmd
}

/// What a finished `are` process printed.
pub struct Output {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<std::process::Output> for Output {
    fn from(out: std::process::Output) -> Output {
        Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Output {
    /// Parse stdout as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Run `are` with `args` and collect its output.
pub fn run(args: &[&str]) -> Output {
    output(are().args(args))
}

/// Run a prepared `are` command (see [`are`]) and collect what it printed.
pub fn output(cmd: &mut Command) -> Output {
    cmd.output().expect("run are").into()
}

/// Run a prepared command on a blocking thread and collect what it printed, so that the servers the test runs on
/// its async runtime keep answering meanwhile.
pub async fn output_off_runtime(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || output(&mut cmd))
        .await
        .expect("the command's thread")
}

/// Write `text` as `are.toml` in `dir`; its path.
pub fn write_policy(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("are.toml");
    std::fs::write(&path, text).expect("write policy");
    path
}

/// `path` as a TOML string, for a policy.
pub fn toml_path(path: &Path) -> String {
    toml::Value::String(path.to_str().expect("UTF-8 path").to_string()).to_string()
}

/// The path of built guest `name` as a TOML string: a `source` value.
pub fn guest_source(name: &str) -> String {
    toml_path(are_tests::guest(name).wasm_path())
}

/// An agent runtime for the policy at `path`, on the shared engine and compile cache.
pub fn agent_runtime(path: &Path) -> AgentRuntime {
    let policy = Policy::load(path).expect("policy");
    AgentRuntime::start(&policy, &host()).expect("runtime")
}

/// Send `cmd` to agent `to` from outside and wait for the reply, parsed as JSON (the handler's error as `Err`).
pub async fn ask_agent(rt: &AgentRuntime, to: &str, cmd: Value) -> Result<Value, String> {
    let (_, reply) = rt.send(to, &cmd.to_string()).expect("send");
    let reply = reply.await.expect("reply")?;
    Ok(serde_json::from_str(&reply.unwrap_or_default()).unwrap_or(Value::Null))
}

/// The SHA-256 digest of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    <sha2::Sha256 as sha2::Digest>::digest(bytes).into()
}

/// The SHA-256 digest of `bytes` in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    sha256(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A field of `/proc/PID/status` in bytes (`VmRSS`, `VmHWM`).
pub fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// A temporary directory, removed on drop.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("are-test-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("tempdir")
}

/// A local HTTP server for tests, on 127.0.0.1:
/// - `/hello`: `hello from the test server`
/// - `/echo`: the request's method, path and headers as JSON
/// - `/redirect?to=URL`: a 302 to `URL`
/// - `/bytes?n=N`: N bytes of `x`
pub struct TestServer {
    /// Its port.
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// Start a server on a free port.
    pub async fn start() -> TestServer {
        use axum::extract::{Query, Request};
        use axum::response::{IntoResponse, Redirect};
        use axum::routing::get;
        use std::collections::HashMap;

        async fn echo(req: Request) -> axum::Json<Value> {
            let headers: serde_json::Map<String, Value> = req
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), Value::from(v.to_str().unwrap_or("<binary>"))))
                .collect();
            axum::Json(serde_json::json!({
                "method": req.method().as_str(),
                "path": req.uri().to_string(),
                "headers": headers,
            }))
        }
        async fn redirect(Query(q): Query<HashMap<String, String>>) -> impl IntoResponse {
            Redirect::to(q.get("to").map_or("/hello", String::as_str))
        }
        async fn bytes(Query(q): Query<HashMap<String, usize>>) -> String {
            "x".repeat(q.get("n").copied().unwrap_or(0))
        }
        let app = axum::Router::new()
            .route("/hello", get(|| async { "hello from the test server" }))
            .route("/echo", get(echo).post(echo))
            .route("/redirect", get(redirect))
            .route("/bytes", get(bytes));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestServer { port, task }
    }

    /// `http://127.0.0.1:PORT`
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT{path}`
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A copy of guest `name` with its WIT docs embedded (as `are build` produces), in `dir`.
pub fn with_docs(name: &str, dir: &Path) -> PathBuf {
    let guest = are_tests::guest(name);
    let bytes =
        are_runtime::describe::embed_wit_docs(&guest.bytes(), guest.wit_dir()).expect("embed docs");
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, bytes).expect("write component");
    path
}

/// A TCP listener on 127.0.0.1 that accepts every connection and keeps what it receives: a place to aim socket
/// tools at, and a witness that nothing reached a place that was not granted.
pub struct TcpSink {
    /// Its port.
    pub port: u16,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    received: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpSink {
    /// Start a sink on a free port.
    pub async fn start() -> TcpSink {
        use std::sync::atomic::Ordering;
        use tokio::io::AsyncReadExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (count, data) = (accepted.clone(), received.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let data = data.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while let Ok(n @ 1..) = stream.read(&mut buf).await {
                        data.lock().expect("sink data").extend_from_slice(&buf[..n]);
                    }
                });
            }
        });
        TcpSink {
            port,
            accepted,
            received,
            task,
        }
    }

    /// How many connections it accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Everything received so far, on all connections.
    pub fn received(&self) -> String {
        String::from_utf8_lossy(&self.received.lock().expect("sink data")).into_owned()
    }

    /// Wait up to `within` for `what` to have arrived; returns whether it did.
    pub async fn wait_for(&self, what: &str, within: std::time::Duration) -> bool {
        let until = tokio::time::Instant::now() + within;
        while !self.received().contains(what) {
            if tokio::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        true
    }
}

impl Drop for TcpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A component implementing the single world of `wit`, whose functions trap when called (for describing,
/// schemas and loading; never for calling).
pub fn component_from_wit(wit: &str) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve
        .push_str("test.wit", wit)
        .unwrap_or_else(|e| panic!("test WIT does not parse: {e:#}\n{wit}"));
    let world = resolve.select_world(&[package], None).expect("one world");
    let mut module =
        wit_component::dummy_module(&resolve, world, wit_parser::ManglingAndAbi::Standard32);
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .expect("metadata embeds");
    wit_component::ComponentEncoder::default()
        .module(&module)
        .expect("module is valid")
        .validate(true)
        .encode()
        .unwrap_or_else(|e| panic!("component does not encode: {e:#}\n{wit}"))
}

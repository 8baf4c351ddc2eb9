//! Component sources (`are_runtime::source`): pins are checked before compiling, `http(s)://` downloads are cached by digest
//! and reused offline, `oci://` references come from a registry (a tiny OCI distribution server in this file),
//! unpinned remote sources are refused unless `--allow-unpinned`, plain `http://` goes only to loopback, and agent
//! types load from the same sources.

use crate::common::{are, engine, output, sha256, tempdir, write_policy};
use are_agents::AgentRuntime;
use are_policy::source::Source;
use are_policy::{LimitsSection, Policy, Sha256Pin};
use are_runtime::component::{self, ComponentSpec, LoadError, LoadedComponent};
use are_runtime::source::{FetchOptions, Fetcher, SourceError};
use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A component exporting `answer: func() -> u32` returning 42; small, so compiling it is quick.
fn answer_component() -> Vec<u8> {
    wat::parse_str(
        r#"(component
            (core module $m (func (export "answer") (result i32) i32.const 42))
            (core instance $i (instantiate $m))
            (func (export "answer") (result u32) (canon lift (core func $i "answer"))))"#,
    )
    .expect("the component text parses")
}

fn hex(bytes: &[u8; 32]) -> String {
    are_policy::common::hex(bytes)
}

/// Every file under `dir` (none when it does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

fn compiled_entries(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect()
}

/// One canned response.
#[derive(Clone)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn ok(content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status: 200,
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
        }
    }
}

/// A plain HTTP/1.1 server on 127.0.0.1 answering GET and HEAD from a fixed table of paths (404 otherwise), one
/// connection at a time, closing each after its response. Stops when dropped (or with [`FileServer::stop`]).
struct FileServer {
    port: u16,
    routes: Arc<Mutex<HashMap<String, Response>>>,
    requests: Arc<Mutex<Vec<String>>>,
    stopping: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FileServer {
    fn start(routes: HashMap<String, Response>) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let routes = Arc::new(Mutex::new(routes));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let (routes, requests, stopping) = (routes.clone(), requests.clone(), stopping.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    serve_one(stream, &routes, &requests);
                }
            })
        };
        FileServer {
            port,
            routes,
            requests,
            stopping,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `METHOD path` of every request so far.
    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    fn set(&self, path: &str, response: Response) {
        self.routes.lock().unwrap().insert(path.into(), response);
    }

    /// Stop listening; the port is closed when this returns.
    fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve_one(
    mut stream: TcpStream,
    routes: &Mutex<HashMap<String, Response>>,
    requests: &Mutex<Vec<String>>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    requests.lock().unwrap().push(format!("{method} {path}"));
    let response = routes
        .lock()
        .unwrap()
        .get(path)
        .cloned()
        .unwrap_or(Response {
            status: 404,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: br#"{"errors":[{"code":"NOT_FOUND","message":"not found"}]}"#.to_vec(),
        });
    let mut out = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        response.status,
        response.body.len()
    );
    for (name, value) in &response.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if method != "HEAD" {
        bytes.extend_from_slice(&response.body);
    }
    let _ = stream.write_all(&bytes);
    let _ = stream.flush();
}

/// A server with the answer component at `/tools/answer.wasm`.
fn wasm_server() -> (FileServer, Vec<u8>) {
    let wasm = answer_component();
    let server = FileServer::start(HashMap::from([(
        "/tools/answer.wasm".to_string(),
        Response::ok("application/wasm", wasm.clone()),
    )]));
    (server, wasm)
}

/// An OCI registry serving the answer component as a wasm artifact at `tools/answer`, tag `1.0` and by digest;
/// returns the server, the component and the manifest digest.
fn registry() -> (FileServer, Vec<u8>, [u8; 32]) {
    let wasm = answer_component();
    let config = br#"{"created":"2026-01-01T00:00:00Z","architecture":"wasm","os":"wasip2","layerDigests":[]}"#.to_vec();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.wasm.config.v0+json",
        "config": {
            "mediaType": "application/vnd.wasm.config.v0+json",
            "digest": format!("sha256:{}", hex(&sha256(&config))),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/wasm",
            "digest": format!("sha256:{}", hex(&sha256(&wasm))),
            "size": wasm.len(),
        }],
    }))
    .unwrap();
    let manifest_digest = sha256(&manifest);
    let manifest_response = Response {
        status: 200,
        headers: vec![
            (
                "Content-Type".into(),
                "application/vnd.oci.image.manifest.v1+json".into(),
            ),
            (
                "Docker-Content-Digest".into(),
                format!("sha256:{}", hex(&manifest_digest)),
            ),
        ],
        body: manifest,
    };
    let blob = |bytes: &[u8]| Response::ok("application/octet-stream", bytes.to_vec());
    let server = FileServer::start(HashMap::from([
        (
            "/v2/".to_string(),
            Response::ok("application/json", b"{}".to_vec()),
        ),
        (
            "/v2/tools/answer/manifests/1.0".to_string(),
            manifest_response.clone(),
        ),
        (
            format!(
                "/v2/tools/answer/manifests/sha256:{}",
                hex(&manifest_digest)
            ),
            manifest_response,
        ),
        (
            format!("/v2/tools/answer/blobs/sha256:{}", hex(&sha256(&wasm))),
            blob(&wasm),
        ),
        (
            format!("/v2/tools/answer/blobs/sha256:{}", hex(&sha256(&config))),
            blob(&config),
        ),
    ]));
    (server, wasm, manifest_digest)
}

/// A spec for `source` (a path or remote source as written), pinned by `pin`.
fn spec(source: &str, pin: Option<[u8; 32]>) -> ComponentSpec {
    ComponentSpec {
        name: "answer".into(),
        path: PathBuf::from(source),
        sha256: pin.map(Sha256Pin),
        base_dir: PathBuf::from("."),
        ..ComponentSpec::default()
    }
}

fn load_in(cache_dir: &Path, spec: ComponentSpec) -> Result<LoadedComponent, LoadError> {
    component::load(engine(), Some(&crate::common::cache_in(cache_dir)), spec)
}

async fn answer(loaded: &LoadedComponent) -> serde_json::Value {
    let report = loaded
        .call(engine(), "answer", &serde_json::Value::Null, None)
        .await;
    report
        .outcome
        .unwrap_or_else(|e| panic!("answer failed: {e}"))
        .value
}

/// `are` with its cache in `cache_dir`.
fn are_in(cache_dir: &Path, args: &[&str]) -> crate::common::Output {
    output(are().env("ARE_CACHE_DIR", cache_dir).args(args))
}

#[test]
fn a_local_pin_mismatch_is_refused_before_compiling() {
    let dir = tempdir();
    let file = dir.path().join("answer.wasm");
    let wasm = answer_component();
    std::fs::write(&file, &wasm).unwrap();
    let cache_dir = dir.path().join("cache");
    let mut wrong = sha256(&wasm);
    wrong[31] ^= 0xff;

    let err = match load_in(&cache_dir, spec(file.to_str().unwrap(), Some(wrong))) {
        Ok(_) => panic!("a wrong pin loaded"),
        Err(e) => e,
    };
    assert!(matches!(err, LoadError::PinMismatch { .. }), "{err:?}");
    let message = err.to_string();
    for part in [
        file.display().to_string(),
        hex(&wrong),
        hex(&sha256(&wasm)),
        "update `sha256` in the policy".to_string(),
    ] {
        assert!(message.contains(&part), "{part:?} missing from: {message}");
    }
    assert!(
        files_under(&cache_dir).is_empty(),
        "a refused component left cache entries: {:?}",
        files_under(&cache_dir)
    );

    // Through a policy and the binary too: refused, nothing compiled.
    let policy = write_policy(
        dir.path(),
        &format!(
            "[component.answer]\nsource = \"answer.wasm\"\nsha256 = \"{}\"\n",
            hex(&wrong)
        ),
    );
    let out = are_in(
        &cache_dir,
        &[
            "call",
            "--policy",
            policy.to_str().unwrap(),
            "answer",
            "answer",
        ],
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("sha256 mismatch"), "{}", out.stderr);
    assert!(compiled_entries(&cache_dir).is_empty());
}

#[test]
fn a_pinned_download_is_cached_and_then_loads_with_the_server_gone() {
    let dir = tempdir();
    let cache_dir = dir.path().join("cache");
    let (mut server, wasm) = wasm_server();
    let url = server.url("/tools/answer.wasm");
    let policy = write_policy(
        dir.path(),
        &format!(
            "[component.answer]\nsource = \"{url}\"\nsha256 = \"{}\"\n",
            hex(&sha256(&wasm))
        ),
    );
    let args = [
        "call",
        "--policy",
        policy.to_str().unwrap(),
        "answer",
        "answer",
    ];

    let out = are_in(&cache_dir, &args);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "42");
    assert_eq!(server.requests(), ["GET /tools/answer.wasm"]);
    let blob = cache_dir
        .join("sources")
        .join(format!("sha256-{}.wasm", hex(&sha256(&wasm))));
    assert_eq!(std::fs::read(&blob).expect("the download is cached"), wasm);
    assert!(
        !files_under(&cache_dir.join("sources")).iter().any(|p| p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".tmp")),
        "temporary files left behind"
    );

    server.stop();
    let out = are_in(&cache_dir, &args);
    assert_eq!(out.code, Some(0), "offline second run: {}", out.stderr);
    assert_eq!(out.stdout.trim(), "42");

    // The URL itself stands for the policy entry that names it, with its pin.
    let out = are_in(
        &cache_dir,
        &["call", "--policy", policy.to_str().unwrap(), &url, "answer"],
    );
    assert_eq!(
        (out.code, out.stdout.trim()),
        (Some(0), "42"),
        "{}",
        out.stderr
    );

    // `policy check` and `inspect` resolve the same source, from the cache.
    let out = are_in(&cache_dir, &["policy", "check", policy.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let out = are_in(
        &cache_dir,
        &[
            "inspect",
            "--policy",
            policy.to_str().unwrap(),
            "answer",
            "--json",
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.json()["sha256"], hex(&sha256(&wasm)));
}

#[tokio::test]
async fn a_pinned_download_loads_in_process_and_a_damaged_cache_entry_is_fetched_again() {
    let dir = tempdir();
    let (server, wasm) = wasm_server();
    let url = server.url("/tools/answer.wasm");
    let loaded = load_in(dir.path(), spec(&url, Some(sha256(&wasm)))).expect("loads");
    assert_eq!(answer(&loaded).await, 42);
    assert_eq!(loaded.sha256, hex(&sha256(&wasm)));

    // A cached blob that no longer matches its name is dropped and downloaded again.
    let blob = dir
        .path()
        .join("sources")
        .join(format!("sha256-{}.wasm", hex(&sha256(&wasm))));
    std::fs::write(&blob, b"tampered").unwrap();
    load_in(dir.path(), spec(&url, Some(sha256(&wasm)))).expect("loads again");
    assert_eq!(std::fs::read(&blob).unwrap(), wasm);
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn a_download_that_does_not_match_its_pin_is_refused() {
    let dir = tempdir();
    let (server, wasm) = wasm_server();
    let url = server.url("/tools/answer.wasm");
    let mut wrong = sha256(&wasm);
    wrong[0] ^= 1;
    let err = match load_in(dir.path(), spec(&url, Some(wrong))) {
        Ok(_) => panic!("a wrong pin loaded"),
        Err(e) => e,
    };
    let LoadError::Source(source) = &err else {
        panic!("expected a source error, got {err:?}");
    };
    let SourceError::PinMismatch {
        expected, actual, ..
    } = &**source
    else {
        panic!("expected a pin mismatch, got {err:?}");
    };
    assert_eq!(*expected, hex(&wrong));
    assert_eq!(*actual, hex(&sha256(&wasm)));
    let message = err.to_string();
    assert!(
        message.contains("component `answer`")
            && message.contains(&url)
            && message.contains("update `sha256`"),
        "{message}"
    );
    assert!(
        files_under(dir.path()).is_empty(),
        "nothing is cached or compiled: {:?}",
        files_under(dir.path())
    );
}

#[test]
fn an_unpinned_download_is_refused_unless_allowed() {
    let dir = tempdir();
    let cache_dir = dir.path().join("cache");
    let (server, wasm) = wasm_server();
    let url = server.url("/tools/answer.wasm");
    let policy = write_policy(
        dir.path(),
        &format!("[component.answer]\nsource = \"{url}\"\n"),
    );
    let by_policy = [
        "call",
        "--policy",
        policy.to_str().unwrap(),
        "answer",
        "answer",
    ];

    let out = are_in(&cache_dir, &by_policy);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    for part in [
        "component `answer`",
        "not pinned",
        &format!("sha256 = \"{}\"", hex(&sha256(&wasm))),
        "--allow-unpinned",
    ] {
        assert!(
            out.stderr.contains(part),
            "{part:?} missing from: {}",
            out.stderr
        );
    }
    assert!(
        compiled_entries(&cache_dir).is_empty(),
        "nothing is compiled"
    );
    assert!(
        files_under(&cache_dir.join("sources")).is_empty(),
        "nothing is kept"
    );

    // A URL given directly is refused the same way; `--sha256` pins it, `--allow-unpinned` accepts it.
    let out = are_in(&cache_dir, &["call", &url, "answer"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("not pinned"), "{}", out.stderr);
    let pin = hex(&sha256(&wasm));
    let out = are_in(&cache_dir, &["call", &url, "answer", "--sha256", &pin]);
    assert_eq!(
        (out.code, out.stdout.trim()),
        (Some(0), "42"),
        "{}",
        out.stderr
    );

    for args in [
        [&["--allow-unpinned"][..], &by_policy[..]].concat(),
        [&by_policy[..], &["--allow-unpinned"][..]].concat(),
    ] {
        let out = are_in(&cache_dir, &args);
        assert_eq!(
            (out.code, out.stdout.trim()),
            (Some(0), "42"),
            "{args:?}: {}",
            out.stderr
        );
    }

    // The library refuses too, by default.
    let err = match load_in(&cache_dir, spec(&url, None)) {
        Ok(_) => panic!("an unpinned source loaded"),
        Err(e) => e,
    };
    assert!(
        matches!(&err, LoadError::Source(e) if matches!(&**e, SourceError::Unpinned { actual: Some(a), .. } if *a == pin)),
        "{err:?}"
    );
    drop(server);
}

#[test]
fn an_unreachable_unpinned_source_says_how_to_pin_it() {
    let dir = tempdir();
    let (mut server, _) = wasm_server();
    let url = server.url("/tools/answer.wasm");
    server.stop();
    let message = match load_in(dir.path(), spec(&url, None)) {
        Ok(_) => panic!("loaded from a stopped server"),
        Err(e) => e.to_string(),
    };
    assert!(
        message.contains("not pinned")
            && message.contains("sha256 = ")
            && message.contains("download failed"),
        "{message}"
    );
}

#[tokio::test]
async fn an_oci_reference_by_digest_loads_and_is_cached() {
    let dir = tempdir();
    let cache_dir = dir.path().join("cache");
    let (mut server, wasm, manifest_digest) = registry();
    let reference = format!(
        "oci://127.0.0.1:{}/tools/answer@sha256:{}",
        server.port,
        hex(&manifest_digest)
    );
    let loaded =
        load_in(&cache_dir, spec(&reference, None)).expect("an OCI reference by digest loads");
    assert_eq!(answer(&loaded).await, 42);
    assert_eq!(loaded.sha256, hex(&sha256(&wasm)));
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.contains("/manifests/sha256:"))
            && server
                .requests()
                .iter()
                .any(|r| r.contains("/blobs/sha256:")),
        "{:?}",
        server.requests()
    );

    // The binary takes the reference directly, and a tag with a sha256 pin works too.
    let out = are_in(&cache_dir, &["call", &reference, "answer"]);
    assert_eq!(
        (out.code, out.stdout.trim()),
        (Some(0), "42"),
        "{}",
        out.stderr
    );
    let tag = format!("oci://127.0.0.1:{}/tools/answer:1.0", server.port);
    let out = are_in(
        &cache_dir,
        &["inspect", &tag, "--sha256", &hex(&sha256(&wasm))],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("answer() -> u32"), "{}", out.stdout);
    // A tag alone is not a pin.
    let out = are_in(&cache_dir, &["call", &tag, "answer"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("not pinned") && out.stderr.contains(&hex(&manifest_digest)),
        "the message offers the manifest digest to pin: {}",
        out.stderr
    );

    // The manifest and the layer are cached by digest: the reference loads with the registry gone.
    server.stop();
    let loaded = load_in(&cache_dir, spec(&reference, None)).expect("loads offline");
    assert_eq!(answer(&loaded).await, 42);
}

#[test]
fn an_oci_digest_mismatch_is_refused() {
    let dir = tempdir();
    let (server, wasm, manifest_digest) = registry();
    let mut wrong = manifest_digest;
    wrong[5] ^= 0x10;
    // A registry that answers every manifest request with the same manifest, whatever digest was asked for.
    let manifest = format!(
        "/v2/tools/answer/manifests/sha256:{}",
        hex(&manifest_digest)
    );
    let served = server.routes.lock().unwrap()[&manifest].clone();
    server.set(
        &format!("/v2/tools/answer/manifests/sha256:{}", hex(&wrong)),
        served,
    );
    let reference = format!(
        "oci://127.0.0.1:{}/tools/answer@sha256:{}",
        server.port,
        hex(&wrong)
    );
    let message = match load_in(dir.path(), spec(&reference, None)) {
        Ok(_) => panic!("a manifest with another digest loaded"),
        Err(e) => e.to_string(),
    };
    assert!(
        message.contains(&reference) && message.contains("component `answer`"),
        "{message}"
    );
    assert!(message.to_lowercase().contains("digest"), "{message}");
    assert!(compiled_entries(dir.path()).is_empty());

    // A layer whose bytes are not what the manifest names.
    let layer = format!("/v2/tools/answer/blobs/sha256:{}", hex(&sha256(&wasm)));
    let mut tampered = wasm.clone();
    *tampered.last_mut().unwrap() ^= 1;
    server.set(&layer, Response::ok("application/octet-stream", tampered));
    let reference = format!(
        "oci://127.0.0.1:{}/tools/answer@sha256:{}",
        server.port,
        hex(&manifest_digest)
    );
    let message = match load_in(dir.path(), spec(&reference, None)) {
        Ok(_) => panic!("a tampered layer loaded"),
        Err(e) => e.to_string(),
    };
    assert!(message.to_lowercase().contains("digest"), "{message}");

    // A tag whose component does not match the sha256 pin.
    let tag = format!("oci://127.0.0.1:{}/tools/answer:1.0", server.port);
    server.set(
        &layer,
        Response::ok("application/octet-stream", wasm.clone()),
    );
    let mut wrong_pin = sha256(&wasm);
    wrong_pin[1] ^= 1;
    let err = match load_in(dir.path(), spec(&tag, Some(wrong_pin))) {
        Ok(_) => panic!("a wrong pin loaded"),
        Err(e) => e,
    };
    assert!(
        matches!(&err, LoadError::Source(e) if matches!(**e, SourceError::PinMismatch { .. })),
        "{err:?}"
    );
    assert!(compiled_entries(dir.path()).is_empty());
}

#[test]
fn plain_http_goes_only_to_loopback() {
    // In a policy: refused when parsed, with line and column.
    let err = Policy::parse(
        "[component.a]\nsource = \"http://example.com/a.wasm\"\n",
        Path::new("are.toml"),
        Path::new("."),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("are.toml:2:10:") && err.contains("plain http is refused"),
        "{err}"
    );
    assert!(
        Policy::parse(
            "[component.a]\nsource = \"http://127.0.0.1:9/a.wasm\"\n",
            Path::new("are.toml"),
            Path::new("."),
        )
        .is_ok()
    );

    // In a spec, or given to the binary: refused before any connection.
    let dir = tempdir();
    let err = match load_in(dir.path(), spec("http://192.0.2.1/a.wasm", Some([0; 32]))) {
        Ok(_) => panic!("loaded"),
        Err(e) => e,
    };
    assert!(
        matches!(&err, LoadError::Source(e) if matches!(**e, SourceError::Invalid { .. })),
        "{err:?}"
    );
    let out = are_in(
        dir.path(),
        &[
            "call",
            "http://192.0.2.1/a.wasm",
            "answer",
            "--allow-unpinned",
        ],
    );
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("plain http is refused"),
        "{}",
        out.stderr
    );

    // A download redirected to plain http elsewhere is refused too.
    let (server, wasm) = wasm_server();
    server.set(
        "/moved.wasm",
        Response {
            status: 302,
            headers: vec![("Location".into(), "http://192.0.2.1/a.wasm".into())],
            body: Vec::new(),
        },
    );
    let message = match load_in(
        dir.path(),
        spec(&server.url("/moved.wasm"), Some(sha256(&wasm))),
    ) {
        Ok(_) => panic!("followed a redirect to plain http"),
        Err(e) => e.to_string(),
    };
    assert!(
        message.contains("refused redirect to http://192.0.2.1/a.wasm"),
        "{message}"
    );
}

#[test]
fn downloads_are_capped() {
    let dir = tempdir();
    let (server, wasm) = wasm_server();
    let fetcher = Fetcher::new(
        dir.path(),
        FetchOptions {
            max_size: 16,
            ..FetchOptions::default()
        },
    );
    let source = Source::parse(&server.url("/tools/answer.wasm")).unwrap();
    let err = fetcher
        .fetch("answer", &source, Some(&Sha256Pin(sha256(&wasm))))
        .unwrap_err()
        .to_string();
    assert!(err.contains("at most 16 B"), "{err}");
}

/// The download cap is the same setting as the file cap: `limits.max_component_size`.
#[test]
fn a_download_over_max_component_size_is_refused() {
    let dir = tempdir();
    let (server, wasm) = wasm_server();
    let url = server.url("/tools/answer.wasm");
    let policy = write_policy(
        dir.path(),
        &format!(
            "[component.answer]\nsource = \"{url}\"\nsha256 = \"{}\"\nlimits.max_component_size = \"16 B\"\n",
            hex(&sha256(&wasm))
        ),
    );
    let cache_dir = dir.path().join("cache");
    let out = are_in(
        &cache_dir,
        &[
            "call",
            "--policy",
            policy.to_str().unwrap(),
            "answer",
            "answer",
        ],
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("but at most 16 B is accepted (limits.max_component_size)"),
        "{}",
        out.stderr
    );
    assert!(compiled_entries(&cache_dir).is_empty(), "nothing compiled");
}

#[test]
fn a_policy_component_spec_keeps_its_remote_source() {
    let policy = Policy::parse(
        "[component.web]\nsource = \"https://example.com/t/web.wasm\"\n",
        Path::new("/srv/are.toml"),
        Path::new("/srv"),
    )
    .unwrap();
    let spec = ComponentSpec::from_policy(&policy, "web", LimitsSection::default()).unwrap();
    assert_eq!(spec.path, PathBuf::from("https://example.com/t/web.wasm"));
    assert!(Source::from_path(&spec.path).unwrap().is_remote());
}

/// Agent types take remote sources too: a pinned download becomes an agent that answers, `policy check` reads
/// agent sources as well, and a wrong pin stops the runtime from starting, naming the agent type.
#[tokio::test(flavor = "multi_thread")]
async fn an_agent_type_loads_from_a_pinned_download() {
    let dir = tempdir();
    let probe = std::fs::read(are_tests::guest("agent-probe").wasm_path()).unwrap();
    let server = FileServer::start(HashMap::from([(
        "/agents/probe.wasm".to_string(),
        Response::ok("application/wasm", probe.clone()),
    )]));
    let url = server.url("/agents/probe.wasm");
    let cache_dir = dir.path().join("cache");
    let policy_path = dir.path().join("are.toml");
    let write_pinned = |pin: &[u8; 32]| {
        write_policy(
            dir.path(),
            &format!(
                "[agent.probe]\nsource = \"{url}\"\nsha256 = \"{}\"\n",
                hex(pin)
            ),
        );
        Policy::load(&policy_path).unwrap()
    };

    let policy = write_pinned(&sha256(&probe));
    let runtime = AgentRuntime::start(
        &policy,
        &crate::common::host_with_cache(crate::common::cache_in(&cache_dir)),
    )
    .expect("an agent type from a pinned download starts");
    let (_, reply) = runtime.send("probe/a", r#"{"op": "whoami"}"#).unwrap();
    let reply = reply.await.unwrap().unwrap().unwrap_or_default();
    let me: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(me["id"], "probe/a");
    drop(runtime);
    assert_eq!(server.requests(), ["GET /agents/probe.wasm"]);

    let out = are_in(
        &cache_dir,
        &["policy", "check", policy_path.to_str().unwrap()],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .ends_with("ok, 0 component(s), 1 agent type(s)\n"),
        "{}",
        out.stdout
    );

    let mut wrong = sha256(&probe);
    wrong[0] ^= 1;
    let policy = write_pinned(&wrong);
    let err = match AgentRuntime::start(
        &policy,
        &crate::common::host_with_cache(crate::common::cache_in(&cache_dir)),
    ) {
        Ok(_) => panic!("an agent type with a wrong pin started"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.starts_with("agent type `probe`:") && err.contains("update `sha256`"),
        "{err}"
    );
    let out = are_in(
        &cache_dir,
        &["policy", "check", policy_path.to_str().unwrap()],
    );
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stderr.contains("error: agent `probe`:"),
        "{}",
        out.stderr
    );
}

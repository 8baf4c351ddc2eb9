//! Loading components: a clear error, naming the file and what to do, for everything that is not a loadable
//! component (through the library and through `are call` / `are inspect`); sha256 pins; and the compile cache.

use crate::cli::output;
use crate::common::{Output, are, cache, call_ok, engine, run, tempdir};
use are::cache::{CacheOutcome, CompileCache};
use are::component::{self, ComponentSpec, LoadError, LoadedComponent};
use are::policy::Sha256Pin;
use serde_json::json;
use sha2::Digest as _;
use std::path::{Path, PathBuf};

/// A spec for the file at `path`, granted nothing.
fn spec_for(path: &Path) -> ComponentSpec {
    ComponentSpec {
        name: "under-test".into(),
        path: path.to_path_buf(),
        base_dir: PathBuf::from("."),
        ..ComponentSpec::default()
    }
}

/// Load `path` without a cache and return why it failed.
fn load_err(path: &Path) -> LoadError {
    match component::load(engine(), None, spec_for(path)) {
        Ok(_) => panic!("{} loaded, but should not have", path.display()),
        Err(e) => e,
    }
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write test file");
    path
}

/// `are call` (and `are inspect`, when `inspect_too`) refuse `path` with exit code 1 and an `error:` line that names
/// the file and contains `expected`.
fn assert_cli_refuses(path: &Path, expected: &str, inspect_too: bool) {
    let p = path.to_str().expect("utf-8 path");
    let mut commands = vec![vec!["call", p, "some-function", "{}"]];
    if inspect_too {
        commands.push(vec!["inspect", p]);
        commands.push(vec!["inspect", "--json", p]);
    }
    for args in commands {
        let out = run(&args);
        assert_eq!(
            out.code,
            Some(1),
            "are {args:?} should fail with exit code 1\nstdout: {}\nstderr: {}",
            out.stdout,
            out.stderr
        );
        assert!(
            out.stderr.starts_with("error: "),
            "are {args:?}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains(p),
            "are {args:?} does not name {p}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains(expected),
            "are {args:?} does not say {expected:?}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        assert!(
            out.stdout.is_empty(),
            "are {args:?} printed: {}",
            out.stdout
        );
    }
}

#[test]
fn a_directory_cannot_be_read_as_a_component() {
    let dir = tempdir();
    let err = load_err(dir.path());
    assert!(
        matches!(&err, LoadError::Read { path, .. } if path == dir.path()),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read component {}: ", dir.path().display())),
        "{err}"
    );
    assert_cli_refuses(dir.path(), "cannot read component", true);
}

#[test]
fn a_missing_file_is_not_found() {
    let dir = tempdir();
    let path = dir.path().join("nowhere.wasm");
    let err = load_err(&path);
    assert!(
        matches!(&err, LoadError::NotFound { path: p } if *p == path),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(path.to_str().unwrap()), "{message}");
    assert!(message.contains("check the path"), "{message}");
    assert_cli_refuses(&path, "component not found", true);
}

#[test]
fn text_and_random_bytes_are_not_webassembly() {
    let dir = tempdir();
    let text = write(dir.path(), "notes.txt", "these are my notes\n");
    // Deterministic noise that starts with neither `\0asm` nor WebAssembly text.
    let mut state = 0x2545_f491_u32;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8 | 0x80
        })
        .collect();
    let noise = write(dir.path(), "noise.wasm", noise);
    let empty = write(dir.path(), "empty.wasm", "");
    for path in [&text, &noise, &empty] {
        let err = load_err(path);
        assert!(
            matches!(&err, LoadError::NotWasm { path: p } if p == path),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("{} is not a WebAssembly file", path.display())),
            "{message}"
        );
        assert!(message.contains("pass a .wasm component"), "{message}");
        assert_cli_refuses(path, "is not a WebAssembly file", true);
    }
}

#[test]
fn a_core_module_is_not_a_component() {
    let dir = tempdir();
    let binary = write(dir.path(), "core.wasm", b"\0asm\x01\0\0\0");
    let text = write(
        dir.path(),
        "core.wat",
        "(module (func (export \"f\") (result i32) i32.const 1))",
    );
    for path in [&binary, &text] {
        let err = load_err(path);
        assert!(
            matches!(&err, LoadError::CoreModule { path: p } if p == path),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("core WebAssembly module"), "{message}");
        assert!(
            message.contains("are build") && message.contains("wasm-tools component new"),
            "the message should say how to make a component: {message}"
        );
        assert_cli_refuses(path, "is a core WebAssembly module, not a component", true);
    }
}

/// The byte range of the instructions (after the locals) of the largest function body in `component`.
fn largest_function_code(component: &[u8]) -> std::ops::Range<usize> {
    let mut largest = 0..0;
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        if let wasmparser::Payload::CodeSectionEntry(body) = payload.expect("the guest parses") {
            let ops = body.get_operators_reader().expect("operators");
            let code = ops.original_position()..body.range().end;
            if code.len() > largest.len() {
                largest = code;
            }
        }
    }
    assert!(largest.len() > 16, "no sizeable function body: {largest:?}");
    largest
}

#[test]
fn a_corrupt_component_is_invalid_and_never_a_panic() {
    let dir = tempdir();
    let good = are_tests::guest("hash").bytes();

    let truncated = write(dir.path(), "truncated.wasm", &good[..good.len() / 2]);
    // Same structure, but the instructions of a function replaced by bytes that are no opcode.
    let mut garbled = good.clone();
    let code = largest_function_code(&good);
    garbled[code.start..code.end - 1].fill(0xff);
    let garbled = write(dir.path(), "garbled.wasm", garbled);

    // Only the magic number; and WebAssembly text that parses but does not validate.
    let magic = write(dir.path(), "magic.wasm", b"\0asm");
    let mistyped = write(
        dir.path(),
        "mistyped.wat",
        "(component (core module (func (result i32))))",
    );
    for path in [&truncated, &garbled, &magic, &mistyped] {
        let err = load_err(path);
        let LoadError::Invalid { path: p, message } = &err else {
            panic!(
                "{}: expected LoadError::Invalid, got {err:?}",
                path.display()
            );
        };
        assert_eq!(p, path);
        assert!(
            message.contains("offset"),
            "the message should give the offset: {message}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("{} is not a valid component: ", path.display())),
            "{err}"
        );
        assert_cli_refuses(path, "is not a valid component", true);
    }

    // Bytes flipped anywhere: loading reports an error (or, for a flip in data, loads), and never panics.
    let small = are_tests::guest("hostile-recursion").bytes();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (1..=16)
            .map(|i| {
                let at = small.len() * i / 17;
                let mut bytes = small.clone();
                bytes[at] ^= 0xa5;
                let path = write(dir.path(), &format!("flipped-{at}.wasm"), bytes);
                scope.spawn(move || {
                    match std::panic::catch_unwind(|| {
                        component::load(engine(), None, spec_for(&path))
                    }) {
                        Err(_) => panic!("loading with byte {at} flipped panicked"),
                        Ok(Ok(_)) => None,
                        Ok(Err(e)) => {
                            let message = e.to_string();
                            assert!(
                                message.contains(path.to_str().unwrap()),
                                "byte {at}: the error does not name the file: {message}"
                            );
                            Some(e)
                        }
                    }
                })
            })
            .collect();
        let errors: Vec<LoadError> = workers
            .into_iter()
            .filter_map(|w| w.join().expect("worker"))
            .collect();
        assert!(
            errors
                .iter()
                .any(|e| matches!(e, LoadError::Invalid { .. })),
            "no flip made the component invalid: {errors:?}"
        );
    });
}

/// Components whose core module uses a proposal that wasmparser knows but wasmtime 48 leaves disabled.
const NEEDS_DISABLED_FEATURES: &[(&str, &str, &str)] = &[
    (
        "custom-page-sizes.wat",
        "(component (core module (memory 1 (pagesize 1))))",
        "custom page sizes",
    ),
    (
        "wide-arithmetic.wat",
        "(component (core module
            (func (param i64 i64 i64 i64) (result i64 i64)
                local.get 0 local.get 1 local.get 2 local.get 3 i64.add128)))",
        "wide arithmetic",
    ),
];

#[test]
fn a_feature_the_engine_does_not_enable_is_named() {
    let dir = tempdir();
    for (name, wat, feature) in NEEDS_DISABLED_FEATURES {
        let path = write(dir.path(), name, wat);
        let bytes = component::read_component(&path).expect("the text parses");
        component::validate(&path, &bytes).expect("valid with every WebAssembly feature on");
        let err = load_err(&path);
        let LoadError::UnsupportedFeature { path: p, message } = &err else {
            panic!("{name}: expected LoadError::UnsupportedFeature, got {err:?}");
        };
        assert_eq!(p, &path);
        assert!(message.contains(feature), "{name}: {message}");
        assert!(
            err.to_string().starts_with(&format!(
                "{} uses a WebAssembly feature this runtime does not enable",
                path.display()
            )),
            "{err}"
        );
        assert_cli_refuses(
            &path,
            "uses a WebAssembly feature this runtime does not enable",
            false,
        );
    }
}

/// `are serve`'s pooling engine runs without component-model async (streams, futures): a component that uses it
/// is refused with the setting that serves it, and loads in an engine that allocates on demand.
#[test]
fn a_component_using_async_is_refused_by_the_pooling_engine_with_the_setting_that_serves_it() {
    let dir = tempdir();
    let path = write(
        dir.path(),
        "streams.wat",
        "(component (type $s (stream u8)) (type (func (result $s))))",
    );
    let pooling = are::engine::AreEngine::new(are::engine::EngineConfig {
        pooling: Some(are::engine::PoolingConfig {
            max_instances: 2,
            max_memory: 1 << 20,
        }),
        ..are::engine::EngineConfig::default()
    })
    .unwrap();
    let err = match component::load(&pooling, None, spec_for(&path)) {
        Ok(_) => panic!("the pooling engine loaded a component using streams"),
        Err(e) => e,
    };
    assert!(
        matches!(err, LoadError::UnsupportedFeature { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("component model async")
            && message.contains("set `pooling = false` in the policy's [serve] table"),
        "{message}"
    );
    component::load(engine(), None, spec_for(&path)).expect("an on-demand engine loads it");
}

#[test]
fn a_sha256_pin_must_match() {
    let path = are_tests::guest("hash").wasm_path();
    let digest: [u8; 32] = sha2::Sha256::digest(are_tests::guest("hash").bytes()).into();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();

    let mut wrong = digest;
    wrong[0] ^= 1;
    let spec = ComponentSpec {
        sha256: Some(Sha256Pin(wrong)),
        ..spec_for(path)
    };
    let err = match component::load(engine(), Some(&cache()), spec) {
        Ok(_) => panic!("a wrong pin loaded"),
        Err(e) => e,
    };
    let LoadError::PinMismatch {
        path: p,
        expected,
        actual,
    } = &err
    else {
        panic!("expected LoadError::PinMismatch, got {err:?}");
    };
    assert_eq!(p, path);
    assert_eq!(*expected, Sha256Pin(wrong).to_string());
    assert_eq!(*actual, hex);
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains(&hex) && message.contains(expected),
        "{message}"
    );
    assert!(
        message.contains("update `sha256` in the policy"),
        "the message should say how to fix it: {message}"
    );

    let spec = ComponentSpec {
        sha256: Some(Sha256Pin(digest)),
        ..spec_for(path)
    };
    let loaded = component::load(engine(), Some(&cache()), spec).expect("the right pin loads");
    assert_eq!(loaded.sha256, hex);
}

/// The cache entries under `dir`.
fn cwasm_files(dir: &Path) -> Vec<PathBuf> {
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
            } else if path.extension().is_some_and(|e| e == "cwasm") {
                found.push(path);
            }
        }
    }
    found
}

fn load_with(cache: &CompileCache, name: &str) -> LoadedComponent {
    let spec = spec_for(are_tests::guest(name).wasm_path());
    component::load(engine(), Some(cache), spec).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_second_load_comes_from_the_cache_and_is_much_faster() {
    let dir = tempdir();
    let cache = CompileCache::new(dir.path().join("cache"));
    let first = load_with(&cache, "text").load_stats;
    assert_eq!(first.cache, CacheOutcome::Miss);
    assert_eq!(cwasm_files(cache.dir()).len(), 1, "one entry written");
    let second = load_with(&cache, "text").load_stats;
    assert_eq!(second.cache, CacheOutcome::Hit);
    assert!(
        second.duration * 4 < first.duration,
        "a cache hit ({:?}) should be much faster than compiling ({:?})",
        second.duration,
        first.duration
    );
}

#[tokio::test]
async fn a_damaged_cache_entry_is_rebuilt() {
    let dir = tempdir();
    let cache = CompileCache::new(dir.path().join("cache"));
    assert_eq!(
        load_with(&cache, "hash").load_stats.cache,
        CacheOutcome::Miss
    );
    let entries = cwasm_files(cache.dir());
    let [entry] = entries.as_slice() else {
        panic!("expected one cache entry, found {entries:?}");
    };
    let expected = json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

    type Damage = fn(&mut Vec<u8>);
    let damages: [(&str, Damage); 3] = [
        ("truncated", |bytes| bytes.truncate(bytes.len() / 3)),
        ("a byte flipped", |bytes| {
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x40;
        }),
        ("emptied", Vec::clear),
    ];
    for (what, damage) in damages {
        let mut bytes = std::fs::read(entry).expect("read entry");
        damage(&mut bytes);
        std::fs::write(entry, bytes).expect("damage entry");
        let loaded = load_with(&cache, "hash");
        assert_eq!(loaded.load_stats.cache, CacheOutcome::Rebuilt, "{what}");
        let digest = call_ok(&loaded, "sha256-hex", json!({"text": "abc"})).await;
        assert_eq!(digest, expected, "{what}: the rebuilt component works");
        assert_eq!(
            load_with(&cache, "hash").load_stats.cache,
            CacheOutcome::Hit,
            "{what}: the entry was replaced"
        );
    }
}

#[tokio::test]
async fn an_unwritable_cache_is_skipped() {
    let dir = tempdir();
    // A file where the cache directory should be: nothing can be created under it.
    let blocker = write(dir.path(), "cache", "not a directory");
    let cache = CompileCache::new(&blocker);
    for _ in 0..2 {
        let loaded = load_with(&cache, "hash");
        assert_eq!(loaded.load_stats.cache, CacheOutcome::Uncached);
        let digest = call_ok(&loaded, "sha256-hex", json!({"text": ""})).await;
        assert_eq!(
            digest,
            json!("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
    }
    assert_eq!(
        std::fs::read_to_string(&blocker).unwrap(),
        "not a directory"
    );
}

/// Run `are` with its compile cache in `cache_dir`.
fn run_cached(cache_dir: &Path, args: &[&str]) -> Output {
    output(are().env("ARE_CACHE_DIR", cache_dir).args(args))
}

#[test]
fn the_cache_commands_show_and_clear_the_cache() {
    let dir = tempdir();
    let cache_dir = dir.path().join("cli-cache");
    let hash = are_tests::guest("hash").wasm;

    let out = run_cached(&cache_dir, &["cache", "dir"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim_end(), cache_dir.display().to_string());

    let call = |stats: &[&str]| {
        let mut args = vec!["call", hash, "sha256-hex", r#"{"text": "abc"}"#];
        args.extend_from_slice(stats);
        let out = run_cached(&cache_dir, &args);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(
            out.json(),
            json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        out
    };
    let first = call(&["--stats"]);
    assert!(
        first.stderr.contains("load:  compiled and cached in "),
        "{}",
        first.stderr
    );
    let second = call(&["--stats"]);
    assert!(
        second.stderr.contains("load:  from cache in "),
        "{}",
        second.stderr
    );
    assert_eq!(cwasm_files(&cache_dir).len(), 1);
    // Downloads of remote sources go too; anything else in the cache directory stays.
    let sources = cache_dir.join("sources");
    std::fs::create_dir_all(&sources).unwrap();
    let downloaded = [
        format!("sha256-{}.wasm", "ab".repeat(32)),
        format!("manifest-sha256-{}.json", "cd".repeat(32)),
        ".tmp-123-4".to_string(),
    ];
    for name in &downloaded {
        std::fs::write(sources.join(name), b"data").unwrap();
    }
    std::fs::write(sources.join("notes.txt"), b"mine").unwrap();

    let out = run_cached(&cache_dir, &["cache", "clear"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for name in &downloaded {
        assert!(!sources.join(name).exists(), "{name} removed");
    }
    assert!(sources.join("notes.txt").exists(), "other files stay");
    assert!(
        out.stdout
            .starts_with("removed 1 cached component(s) and 3 downloaded source(s), ")
            && out
                .stdout
                .trim_end()
                .ends_with(&format!("freed, from {}", cache_dir.display())),
        "{}",
        out.stdout
    );
    assert!(cwasm_files(&cache_dir).is_empty(), "entries removed");

    let out = run_cached(&cache_dir, &["cache", "clear"]);
    assert!(
        out.stdout
            .starts_with("removed 0 cached component(s) and 0 downloaded source(s), 0 B freed"),
        "{}",
        out.stdout
    );
    let third = call(&["--stats"]);
    assert!(
        third.stderr.contains("load:  compiled and cached in "),
        "after clearing, the component is compiled again: {}",
        third.stderr
    );

    // A cache directory that does not exist yet is nothing to clear.
    let out = run_cached(&dir.path().join("never-made"), &["cache", "clear"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.starts_with("removed 0 cached component(s)"));
}

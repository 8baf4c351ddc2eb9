//! What is refused, and how: directories, FIFOs, devices, oversized and missing files, text and random bytes, core
//! modules, corrupt components, disabled features, async under the pooling engine, and a sha256 pin that does not
//! match.

use super::{assert_cli_refuses, load_err, spec_for, write};
use crate::common::{cache, engine, run, sha256, sha256_hex, tempdir};
use are_policy::Sha256Pin;
use are_runtime::component::{self, ComponentSpec, LoadError};
use std::path::Path;
use std::process::Command;

#[test]
fn a_directory_cannot_be_read_as_a_component() {
    let dir = tempdir();
    let err = load_err(dir.path());
    assert!(
        matches!(&err, LoadError::Refused { path, .. } if path == dir.path()),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "cannot read component {}: it is a directory, not a regular file",
            dir.path().display()
        )),
        "{err}"
    );
    assert_cli_refuses(dir.path(), "cannot read component", true);
}

/// Opens the FIFO at `path` for writing every few seconds until dropped: should a reader block on it, it gets
/// end-of-file and the test fails on its assertions instead of hanging.
struct FifoUnblocker {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FifoUnblocker {
    fn start(path: &Path) -> FifoUnblocker {
        use std::os::unix::fs::OpenOptionsExt as _;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (path, stopping) = (path.to_path_buf(), stop.clone());
        std::thread::spawn(move || {
            while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_secs(15));
                // Succeeds only while a reader has it open: that reader then sees end-of-file.
                let _ = std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&path);
            }
        });
        FifoUnblocker { stop }
    }
}

impl Drop for FifoUnblocker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A FIFO as a component is refused at once, naming it: nothing waits for a writer.
#[test]
fn a_fifo_is_refused_at_once() {
    let dir = tempdir();
    let fifo = dir.path().join("tool.wasm");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo failed");
    let _unblocker = FifoUnblocker::start(&fifo);
    let started = std::time::Instant::now();
    let err = load_err(&fifo);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "refusing took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(&err, LoadError::Refused { path, .. } if *path == fifo),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "cannot read component {}: it is a named pipe (FIFO), not a regular file; a component source must be \
             a .wasm or .wat file",
            fifo.display()
        )
    );
    let started = std::time::Instant::now();
    assert_cli_refuses(&fifo, "it is a named pipe (FIFO), not a regular file", true);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "three CLI runs took {:?}",
        started.elapsed()
    );
}

/// A device is not read either: `/dev/zero` would never end.
#[test]
fn a_device_is_refused() {
    let zero = Path::new("/dev/zero");
    let err = load_err(zero);
    assert!(matches!(&err, LoadError::Refused { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("it is a character device, not a regular file"),
        "{err}"
    );
    assert_cli_refuses(zero, "it is a character device, not a regular file", true);
}

/// `limits.max_component_size` (per component, or in `[defaults.limits]`) refuses a larger file before reading
/// it, in `are call`, `are inspect` and `are policy check`.
#[test]
fn a_component_over_max_component_size_is_refused() {
    let dir = tempdir();
    let hash = are_tests::guest("hash").wasm;
    let policy = write(
        dir.path(),
        "are.toml",
        format!(
            "[defaults.limits]\nmax_component_size = \"2 KiB\"\n\n\
             [component.small]\nsource = {hash:?}\nlimits.max_component_size = \"1 KiB\"\n\n\
             [component.plain]\nsource = {hash:?}\n\n\
             [component.roomy]\nsource = {hash:?}\nlimits.max_component_size = \"64 MiB\"\n"
        ),
    );
    let policy = policy.to_str().unwrap();
    for (name, cap) in [("small", 1024), ("plain", 2048)] {
        let cap = are_policy::common::fmt_bytes(cap);
        let refused = format!(
            "cannot read component {hash}: it is {} but at most {cap} is accepted (limits.max_component_size)",
            are_policy::common::fmt_bytes(std::fs::metadata(hash).unwrap().len())
        );
        for args in [
            vec![
                "call",
                "--policy",
                policy,
                name,
                "sha256-hex",
                r#"{"text": ""}"#,
            ],
            vec!["inspect", "--policy", policy, name],
        ] {
            let out = run(&args);
            assert_eq!(out.code, Some(1), "{args:?}: {}", out.stderr);
            assert!(out.stderr.contains(&refused), "{args:?}: {}", out.stderr);
        }
    }
    let out = run(&[
        "call",
        "--policy",
        policy,
        "roomy",
        "sha256-hex",
        r#"{"text": ""}"#,
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let out = run(&["policy", "check", policy]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("component `small`: cannot read component"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("component `plain`: cannot read component"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("`roomy`"), "{}", out.stderr);
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
        let bytes = component::read_component(&path, are_policy::DEFAULT_MAX_COMPONENT_SIZE)
            .expect("the text parses");
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
    let pooling = are_runtime::engine::AreEngine::new(are_runtime::engine::EngineConfig {
        pooling: Some(are_runtime::engine::PoolingConfig {
            max_instances: 2,
            max_memory: 1 << 20,
        }),
        ..are_runtime::engine::EngineConfig::default()
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
    let digest = sha256(&are_tests::guest("hash").bytes());
    let hex = sha256_hex(&are_tests::guest("hash").bytes());

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

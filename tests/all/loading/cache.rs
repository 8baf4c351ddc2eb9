//! The compile cache: reuse, damaged and planted entries, its permissions and key, and `are cache`.

use super::{spec_for, write};
use crate::common::{Output, are, cache_in, call_ok, engine, output, sha256, tempdir};
use are_runtime::cache::{CacheOutcome, CompileCache};
use are_runtime::component::{self, LoadedComponent};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

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
    let cache = cache_in(dir.path().join("cache"));
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
    let cache = cache_in(dir.path().join("cache"));
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
    let cache = cache_in(&blocker);
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

/// A component whose `answer: func() -> u32` returns `n`; small, so compiling it is quick.
fn answer_returning(n: u32) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(component
            (core module $m (func (export "answer") (result i32) i32.const {n}))
            (core instance $i (instantiate $m))
            (func (export "answer") (result u32) (canon lift (core func $i "answer"))))"#
    ))
    .expect("the component text parses")
}

async fn answer_of(loaded: &LoadedComponent) -> serde_json::Value {
    let report = loaded.call(engine(), "answer", &json!(null), None).await;
    report
        .outcome
        .unwrap_or_else(|e| panic!("answer failed: {e}"))
        .value
}

/// What `answer` of precompiled `code` returns when wasmtime is handed the code directly, as a cache that trusted
/// the entry would.
async fn answer_of_precompiled(code: &[u8]) -> u32 {
    // SAFETY: the test's own forgery, compiled by this engine; this is exactly what the cache must never do with
    // an entry it cannot authenticate.
    let component = unsafe { wasmtime::component::Component::deserialize(engine().engine(), code) }
        .expect("wasmtime accepts the forged code");
    let mut store = wasmtime::Store::new(engine().engine(), ());
    store.set_fuel(1_000_000).unwrap();
    store.set_epoch_deadline(1_000_000);
    let linker = wasmtime::component::Linker::<()>::new(engine().engine());
    let instance = linker
        .instantiate_async(&mut store, &component)
        .await
        .unwrap();
    let answer = instance
        .get_typed_func::<(), (u32,)>(&mut store, "answer")
        .unwrap();
    answer.call_async(&mut store, ()).await.unwrap().0
}

/// Native code is run only from an entry this user's `are` authenticated: native code of an attacker's choosing
/// planted under a component's name, with every checksum that can be computed without the key, is discarded and
/// recompiled, never run; so is another component's genuine entry copied under its name.
#[tokio::test]
async fn native_code_planted_in_the_cache_is_never_run() {
    use hmac::Mac as _;
    let dir = tempdir();
    let cache_dir = dir.path().join("cache");
    let key = dir.path().join("key").join("cache.key");
    let load = |path: &Path| {
        let cache = CompileCache::new(&cache_dir).with_key_file(&key);
        component::load(engine(), Some(&cache), spec_for(path)).unwrap_or_else(|e| panic!("{e}"))
    };
    let good_bytes = answer_returning(42);
    let evil_bytes = answer_returning(666);
    let good = write(dir.path(), "good.wasm", &good_bytes);
    let evil = write(dir.path(), "evil.wasm", &evil_bytes);
    assert_eq!(load(&good).load_stats.cache, CacheOutcome::Miss);
    assert_eq!(load(&evil).load_stats.cache, CacheOutcome::Miss);
    let fingerprint = engine().fingerprint();
    let entry_of = |bytes: &[u8]| {
        cache_dir
            .join(&fingerprint)
            .join(format!("{}.cwasm", are_policy::common::hex(&sha256(bytes))))
    };
    let good_entry = entry_of(&good_bytes);
    let genuine = std::fs::read(&good_entry).unwrap();
    assert!(genuine.starts_with(b"ARECWAS2"), "the current format");

    // The attacker's code: the good component's own compiled code with `mov eax, 42` patched to return 666
    // (x86-64), and the evil component compiled by this very engine.
    let code = &genuine[40..];
    let mov_42 = [0xb8, 42, 0, 0, 0];
    let mut patched = None;
    for at in (0..code.len().saturating_sub(4)).filter(|&at| code[at..at + 5] == mov_42) {
        let mut candidate = code.to_vec();
        candidate[at + 1..at + 5].copy_from_slice(&666u32.to_le_bytes());
        if answer_of_precompiled(&candidate).await == 666 {
            patched = Some(candidate);
            break;
        }
    }
    // On another architecture there is no such instruction: the evil component's code stands in.
    let patched_ok = patched.is_some();
    let patched = patched.unwrap_or_default();
    let evil_code = engine().engine().precompile_component(&evil_bytes).unwrap();
    assert_eq!(answer_of_precompiled(&evil_code).await, 666);

    let attacker_key = [7u8; 32];
    let forged_mac = |code: &[u8]| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&attacker_key).unwrap();
        mac.update(b"are compile cache entry v2\0");
        mac.update(&(fingerprint.len() as u64).to_le_bytes());
        mac.update(fingerprint.as_bytes());
        mac.update(&sha256(&good_bytes));
        mac.update(code);
        mac.finalize().into_bytes().to_vec()
    };
    let entry = |magic: &[u8], tag: &[u8], code: &[u8]| [magic, tag, code].concat();
    let mut forgeries = vec![
        (
            "compiled evil code, under the old format's sha256 header",
            entry(b"ARECWASM", &sha256(&evil_code), &evil_code),
        ),
        (
            "compiled evil code, its sha256 where the MAC goes",
            entry(b"ARECWAS2", &sha256(&evil_code), &evil_code),
        ),
        (
            "compiled evil code, with a MAC under another key",
            entry(b"ARECWAS2", &forged_mac(&evil_code), &evil_code),
        ),
        (
            "the evil component's genuine entry",
            std::fs::read(entry_of(&evil_bytes)).unwrap(),
        ),
    ];
    if patched_ok {
        forgeries.extend([
            (
                "patched native code, under the old format's recomputed sha256",
                entry(b"ARECWASM", &sha256(&patched), &patched),
            ),
            (
                "patched native code, its recomputed sha256 where the MAC goes",
                entry(b"ARECWAS2", &sha256(&patched), &patched),
            ),
            (
                "the genuine MAC, over patched native code",
                entry(b"ARECWAS2", &genuine[8..40], &patched),
            ),
        ]);
    }
    for (what, forged) in forgeries {
        std::fs::write(&good_entry, forged).unwrap();
        let loaded = load(&good);
        assert_eq!(loaded.load_stats.cache, CacheOutcome::Rebuilt, "{what}");
        assert_eq!(
            answer_of(&loaded).await,
            json!(42),
            "{what}: the planted code ran"
        );
        let again = load(&good);
        assert_eq!(
            again.load_stats.cache,
            CacheOutcome::Hit,
            "{what}: replaced"
        );
        assert_eq!(answer_of(&again).await, json!(42), "{what}");
    }
    println!("patched x86-64 native code tried: {patched_ok}");
}

/// The mode of `path` (permission bits).
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Even under `umask 000`, the cache directory and its fingerprint directory are made `0700`, entries `0600`, and
/// the key `0600` in a `0700` directory.
#[test]
fn the_cache_and_its_key_are_private_whatever_the_umask() {
    let dir = tempdir();
    let cache_dir = dir.path().join("made/cache");
    let key_dir = dir.path().join("keys");
    let key = key_dir.join("cache.key");
    let hash = are_tests::guest("hash").wasm;
    let out = output(
        Command::new("sh")
            .args([
                "-c",
                r#"umask 000 && exec "$0" "$@""#,
                env!("CARGO_BIN_EXE_are"),
            ])
            .args(["call", hash, "sha256-hex", r#"{"text": "abc"}"#, "--stats"])
            .env("ARE_CACHE_DIR", &cache_dir)
            .env("ARE_CACHE_KEY", &key)
            .env_remove("RUST_LOG")
            .env_remove("ARE_LOG"),
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("compiled and cached"), "{}", out.stderr);
    let entries = cwasm_files(&cache_dir);
    let [entry] = entries.as_slice() else {
        panic!("one entry expected, found {entries:?}");
    };
    assert_eq!(mode(&cache_dir), 0o700, "cache directory");
    assert_eq!(
        mode(entry.parent().unwrap()),
        0o700,
        "fingerprint directory"
    );
    assert_eq!(mode(entry), 0o600, "entry");
    assert_eq!(mode(&key_dir), 0o700, "key directory");
    assert_eq!(mode(&key), 0o600, "key");
    assert_eq!(std::fs::read(&key).unwrap().len(), 32);
}

/// A cache directory that others can write is refused, with a message naming it and the fix; the call works,
/// compiled in memory, and nothing is written there.
#[test]
fn a_world_writable_cache_is_refused_and_the_call_still_works() {
    let dir = tempdir();
    let cache_dir = dir.path().join("shared-cache");
    std::fs::create_dir(&cache_dir).unwrap();
    chmod(&cache_dir, 0o777);
    let hash = are_tests::guest("hash").wasm;
    for _ in 0..2 {
        let out = run_cached(
            &cache_dir,
            &["call", hash, "sha256-hex", r#"{"text": "abc"}"#, "--stats"],
        );
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(
            out.json(),
            json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        let warning = format!(
            "compile cache {}: group or others can write it (mode 0777); `chmod go-w` it; not using the compile \
             cache, compiling in memory",
            cache_dir.display()
        );
        assert!(out.stderr.contains(&warning), "{}", out.stderr);
        assert!(
            out.stderr.contains("load:  compiled (no cache) in "),
            "{}",
            out.stderr
        );
    }
    assert_eq!(
        std::fs::read_dir(&cache_dir).unwrap().count(),
        0,
        "nothing written"
    );

    // The same for a fingerprint directory or an entry that others can write, in a cache that is otherwise ours.
    let cache = cache_in(dir.path().join("cache"));
    assert_eq!(
        load_with(&cache, "hash").load_stats.cache,
        CacheOutcome::Miss
    );
    let entries = cwasm_files(cache.dir());
    let [entry] = entries.as_slice() else {
        panic!("one entry expected, found {entries:?}");
    };
    for path in [entry.as_path(), entry.parent().unwrap()] {
        let before = mode(path);
        chmod(path, before | 0o002);
        let cache = cache_in(dir.path().join("cache"));
        assert_eq!(
            load_with(&cache, "hash").load_stats.cache,
            CacheOutcome::Uncached,
            "{}",
            path.display()
        );
        chmod(path, before);
    }
    assert_eq!(
        load_with(&cache_in(dir.path().join("cache")), "hash")
            .load_stats
            .cache,
        CacheOutcome::Hit
    );
}

/// Run as root, a cache directory, fingerprint directory, entry or key owned by another user (`nobody`) is
/// refused and the component compiled in memory.
#[test]
fn a_cache_owned_by_another_user_is_refused() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: changing a file's owner needs root");
        return;
    }
    const NOBODY: u32 = 65534;
    let dir = tempdir();
    let key = dir.path().join("key").join("cache.key");
    let cache_dir = dir.path().join("cache");
    let cache = || CompileCache::new(&cache_dir).with_key_file(&key);
    let hash = are_tests::guest("hash").wasm_path().to_path_buf();
    let load = || {
        component::load(engine(), Some(&cache()), spec_for(&hash))
            .unwrap_or_else(|e| panic!("{e}"))
            .load_stats
            .cache
    };
    assert_eq!(load(), CacheOutcome::Miss);
    let entries = cwasm_files(&cache_dir);
    let [entry] = entries.as_slice() else {
        panic!("one entry expected, found {entries:?}");
    };
    let fingerprint_dir = entry.parent().unwrap();
    for path in [entry.as_path(), fingerprint_dir, &cache_dir, &key] {
        std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).unwrap();
        assert_eq!(
            load(),
            CacheOutcome::Uncached,
            "{} owned by nobody",
            path.display()
        );
        std::os::unix::fs::chown(path, Some(0), Some(0)).unwrap();
        assert_eq!(load(), CacheOutcome::Hit, "{} ours again", path.display());
    }
    // The CLI says why.
    std::os::unix::fs::chown(&cache_dir, Some(NOBODY), Some(NOBODY)).unwrap();
    let out = output(
        are()
            .env("ARE_CACHE_DIR", &cache_dir)
            .env("ARE_CACHE_KEY", &key)
            .args([
                "call",
                &hash.display().to_string(),
                "sha256-hex",
                r#"{"text": ""}"#,
            ]),
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "compile cache {}: it is owned by uid 65534, not by this user (uid 0)",
            cache_dir.display()
        )),
        "{}",
        out.stderr
    );
}

/// A key that group or others can read is replaced by a new `0600` one: entries made with the old key are then
/// recompiled once.
#[test]
fn a_key_open_to_others_is_replaced() {
    let dir = tempdir();
    let key = dir.path().join("key").join("cache.key");
    let cache = || CompileCache::new(dir.path().join("cache")).with_key_file(&key);
    assert_eq!(
        load_with(&cache(), "hash").load_stats.cache,
        CacheOutcome::Miss
    );
    assert_eq!(mode(&key), 0o600);
    let old = std::fs::read(&key).unwrap();
    chmod(&key, 0o644);
    assert_eq!(
        load_with(&cache(), "hash").load_stats.cache,
        CacheOutcome::Rebuilt
    );
    assert_eq!(mode(&key), 0o600, "replaced by a private key");
    assert_ne!(std::fs::read(&key).unwrap(), old, "a new key");
    assert_eq!(
        load_with(&cache(), "hash").load_stats.cache,
        CacheOutcome::Hit
    );
}

/// Processes starting at once with no key yet agree on one: whichever makes it first, every entry verifies.
#[test]
fn concurrent_first_uses_make_one_key() {
    let dir = tempdir();
    let key = dir.path().join("key").join("cache.key");
    let cache = || CompileCache::new(dir.path().join("cache")).with_key_file(&key);
    let outcomes: Vec<CacheOutcome> = std::thread::scope(|s| {
        let loads: Vec<_> = (0..4)
            .map(|_| s.spawn(|| load_with(&cache(), "hash").load_stats.cache))
            .collect();
        loads.into_iter().map(|l| l.join().unwrap()).collect()
    });
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, CacheOutcome::Miss | CacheOutcome::Hit)),
        "{outcomes:?}"
    );
    assert_eq!(
        load_with(&cache(), "hash").load_stats.cache,
        CacheOutcome::Hit
    );
    let leftovers: Vec<_> = std::fs::read_dir(key.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["cache.key"], "no temporary files left");
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

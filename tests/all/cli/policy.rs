//! Policies: `are policy check`, layered limits and flags, and a component called by its policy name with its
//! grants.

use super::{WORD_COUNT, fails, file_sha256_hex, guest, ok};
use crate::common::{Output, are, output, run, tempdir, toml_path, write_policy};
use serde_json::json;

#[test]
fn policy_check_accepts_a_good_policy() {
    let dir = tempdir();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let hash = are_tests::guest("hash").wasm_path();
    let policy = write_policy(
        dir.path(),
        &format!(
            r#"[defaults.limits]
fuel = 1_000_000
memory = "32 MiB"
timeout = "2s"
max_output = "64 KiB"

[component.hash]
source = {source}
sha256 = "{sha}"
allow.fs = [{{ host = "data", guest = "/data" }}]
limits.fuel = "unlimited"

[component.text]
source = {text}
"#,
            source = toml_path(hash),
            sha = file_sha256_hex(hash),
            text = toml_path(are_tests::guest("text").wasm_path()),
        ),
    );
    let p = policy.to_str().unwrap();
    let out = ok(run(&["policy", "check", p]));
    assert_eq!(out.stdout, format!("{p}: ok, 2 component(s)\n"));

    // The default file name is are.toml in the current directory.
    let out = ok(output(
        are().current_dir(dir.path()).args(["policy", "check"]),
    ));
    assert_eq!(out.stdout, "are.toml: ok, 2 component(s)\n");
}

#[test]
fn policy_check_points_at_mistakes() {
    let dir = tempdir();
    let hash = toml_path(are_tests::guest("hash").wasm_path());
    for (text, expected) in [
        (
            format!("[component.hash]\nsource = {hash}\nallow.htp = []\n"),
            ":3:7: unknown field `htp`",
        ),
        (
            "[defaults.limits]\nmemory = \"lots\"\n".to_string(),
            ":2:10: invalid size \"lots\"",
        ),
        (
            "[defaults.limits]\ntimeout = \"soon\"\n".to_string(),
            ":2:11: invalid duration \"soon\"",
        ),
        (
            "[defaults]\nlimit.fuel = 5\n".to_string(),
            ":2:1: unknown field `limit`",
        ),
        (
            format!(
                "[component.hash]\nsource = {hash}\nallow.fs = [{{ host = \"missing-dir\", guest = \"/data\" }}]\n"
            ),
            ":3:22: mount host directory ",
        ),
        (
            format!("[component.\"bad name\"]\nsource = {hash}\n"),
            ":1:12: invalid component name \"bad name\"",
        ),
        (
            format!("[component.hash]\nsource = {hash}\nallow.http = [\"https://*.0.0.1\"]\n"),
            ":3:15: invalid http origin \"https://*.0.0.1\": a wildcard must be `*.` followed by a DNS name",
        ),
    ] {
        let policy = write_policy(dir.path(), &text);
        let p = policy.to_str().unwrap();
        let out = run(&["policy", "check", p]);
        fails(&out, &format!("error: {p}{expected}"));
        assert!(out.stdout.is_empty(), "{}", out.stdout);
    }

    // Sources that are missing, or do not match their pin, are each reported.
    let hash_path = are_tests::guest("hash").wasm_path();
    let wrong_pin = "0".repeat(64);
    let policy = write_policy(
        dir.path(),
        &format!(
            "[component.gone]\nsource = \"gone.wasm\"\n\n[component.hash]\nsource = {hash}\nsha256 = \"{wrong_pin}\"\n\n[component.notes]\nsource = \"notes.txt\"\n"
        ),
    );
    std::fs::write(dir.path().join("notes.txt"), "plain text\n").unwrap();
    let p = policy.to_str().unwrap();
    let out = run(&["policy", "check", p]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let gone = dir.path().join("gone.wasm");
    assert!(
        out.stderr.contains(&format!(
            "error: component `gone`: component not found: {}",
            gone.display()
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "error: component `hash`: sha256 mismatch for {}: the policy pins {wrong_pin} but the file is {}; \
             if the new file is intended, update `sha256` in the policy",
            hash_path.display(),
            file_sha256_hex(hash_path)
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("error: component `notes`: ")
            && out.stderr.contains("is not a WebAssembly file"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.ends_with(&format!("{p}: 3 problem(s)\n")),
        "{}",
        out.stderr
    );

    let out = run(&[
        "policy",
        "check",
        dir.path().join("nope.toml").to_str().unwrap(),
    ]);
    fails(&out, "error: cannot read policy ");
    assert!(out.stderr.contains("nope.toml"), "{}", out.stderr);
}

#[test]
fn policy_limits_are_layered_and_flags_win() {
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        &format!(
            r#"[defaults.limits]
fuel = 123_456_789
memory = "1 MiB"

[component.text]
source = {text}
limits.fuel = 987_654_321
limits.memory = "64 MiB"

[component.text-defaults]
source = "text-copy.wasm"
"#,
            text = toml_path(are_tests::guest("text").wasm_path()),
        ),
    );
    // A copy: same bytes (and compile cache entry), another file, so that each file has one policy entry.
    std::fs::copy(guest("text"), dir.path().join("text-copy.wasm")).unwrap();
    let p = policy.to_str().unwrap();
    let fuel_limit = |out: &Output| out.json()["stats"]["fuel_limit"].clone();

    let out = ok(run(&[
        "call",
        "--policy",
        p,
        "--json",
        "--stats",
        "text",
        "word-count",
        WORD_COUNT,
    ]));
    assert_eq!(fuel_limit(&out), 987_654_321, "the component's own limit");
    // The same file called by path gets the same entry.
    let out = ok(run(&[
        "call",
        "--policy",
        p,
        "--json",
        "--stats",
        guest("text"),
        "word-count",
        WORD_COUNT,
    ]));
    assert_eq!(
        fuel_limit(&out),
        987_654_321,
        "by path, the entry of that file"
    );
    let copy = dir.path().join("text-copy.wasm");
    let out = ok(run(&[
        "call",
        "--policy",
        p,
        "--json",
        "--stats",
        "--memory",
        "64MiB",
        copy.to_str().unwrap(),
        "word-count",
        WORD_COUNT,
    ]));
    assert_eq!(
        fuel_limit(&out),
        123_456_789,
        "by path, the entry of that file"
    );
    let out = ok(run(&[
        "call",
        "--policy",
        p,
        "--json",
        "--stats",
        "--fuel",
        "4242424",
        "text",
        "word-count",
        WORD_COUNT,
    ]));
    assert_eq!(fuel_limit(&out), 4_242_424, "--fuel wins over the policy");

    // Without its own limits, a component gets [defaults.limits]: 1 MiB is too little memory for it.
    let out = run(&[
        "call",
        "--policy",
        p,
        "--json",
        "--stats",
        "text-defaults",
        "word-count",
        WORD_COUNT,
    ]);
    assert_eq!(out.code, Some(1));
    let envelope = out.json();
    assert_eq!(envelope["error"]["kind"], "memory_exceeded");
    assert_eq!(envelope["stats"]["fuel_limit"], 123_456_789);
    assert!(
        envelope["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit of 1.0 MiB"),
        "{envelope}"
    );
    let out = ok(run(&[
        "call",
        "--policy",
        p,
        "--memory",
        "64MiB",
        "text-defaults",
        "word-count",
        WORD_COUNT,
    ]));
    assert_eq!(out.json()["words"], 2, "--memory wins over the policy");
}

#[test]
fn a_component_called_by_policy_name_gets_its_grants() {
    let dir = tempdir();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("note.txt"), "granted\n").unwrap();
    let files = are_tests::guest("files").wasm_path();
    let policy = write_policy(
        dir.path(),
        &format!(
            "[component.files]\nsource = {}\nallow.fs = [{{ host = \"data\", guest = \"/data\" }}]\n",
            toml_path(files)
        ),
    );
    let p = policy.to_str().unwrap();
    let read = r#"{"path": "/data/note.txt"}"#;

    let out = ok(run(&["call", "--policy", p, "files", "files.read", read]));
    assert_eq!(out.json(), json!({"ok": "granted\n"}));
    // By path, the policy entry whose source is that file applies.
    let out = ok(run(&[
        "call",
        "--policy",
        p,
        files.to_str().unwrap(),
        "read",
        read,
    ]));
    assert_eq!(out.json(), json!({"ok": "granted\n"}));
    // Without the policy nothing is granted.
    let out = run(&["call", files.to_str().unwrap(), "read", read]);
    assert_eq!(out.code, Some(1));
    let err = out.json()["err"]["permission-denied"]
        .as_str()
        .expect("permission-denied")
        .to_string();
    assert!(err.contains("granted: none"), "{err}");
    // The grant is read-only by default.
    let out = run(&[
        "call",
        "--policy",
        p,
        "files",
        "write",
        r#"{"path": "/data/new.txt", "contents": "x"}"#,
    ]);
    assert_eq!(out.code, Some(1));
    assert!(out.json()["err"].is_object(), "{}", out.stdout);
    assert!(!data.join("new.txt").exists());

    // A name the policy does not know is taken as a path.
    let out = run(&["call", "--policy", p, "filez", "read", read]);
    fails(&out, "error: component not found: filez");

    // A pin mismatch refuses to load, and says how to fix it.
    let policy = write_policy(
        dir.path(),
        &format!(
            "[component.files]\nsource = {}\nsha256 = \"{}\"\n",
            toml_path(files),
            "ab".repeat(32)
        ),
    );
    let out = run(&[
        "call",
        "--policy",
        policy.to_str().unwrap(),
        "files",
        "read",
        read,
    ]);
    fails(
        &out,
        &format!(
            "error: sha256 mismatch for {}: the policy pins {} but the file is {}; if the new file is intended, update `sha256` in the policy",
            files.display(),
            "ab".repeat(32),
            file_sha256_hex(files)
        ),
    );
}

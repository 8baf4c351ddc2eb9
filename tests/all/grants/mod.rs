//! Deny by default, one capability at a time: what each `allow.*` grant lets a guest reach, and that nothing
//! else is reachable (issue point 7).
//!
//! Every test loads a real guest from `example-tools/` with a grant written as TOML and checks what the guest
//! could and could not do, from both sides: the guest's own report and what arrived on the host.

use crate::common::{
    Output, TcpSink, TestServer, are, call, call_err, call_limited, call_ok, load, load_spec, spec,
    tempdir,
};
use are::caps::denied::DenialReason;
use are::invoke::{CallError, fmt_bytes};
use are::policy::{Limits, Policy};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// A string that exists only on the host side of a test, so that finding it in a guest's output proves a leak.
fn planted_secret(what: &str) -> String {
    format!("ARE-PLANTED-SECRET-{what}-{}", std::process::id())
}

/// The first line of the host's `/etc/passwd`, if it has one: no attack may ever return it.
fn host_passwd_line() -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines()
        .next()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
}

/// Assert that every attempt in a list of `hostile-fs-escape` attempts was contained (`err`), and that none of
/// `secrets` (nor the host's `/etc/passwd`) appears anywhere in `output`.
fn assert_contained(attempts: &Value, output: &Value, secrets: &[&str]) {
    let attempts = attempts.as_array().expect("a list of attempts");
    assert!(!attempts.is_empty(), "the attack made no attempt: {output}");
    for attempt in attempts {
        let outcome = &attempt["outcome"];
        assert!(
            outcome.get("err").is_some() && outcome.get("ok").is_none(),
            "an escape worked: {attempt}"
        );
    }
    let text = output.to_string();
    for secret in secrets {
        assert!(!text.contains(secret), "`{secret}` leaked into {text}");
    }
    if let Some(line) = host_passwd_line() {
        assert!(!text.contains(&line), "/etc/passwd leaked into {text}");
    }
}

/// A directory layout for filesystem tests: `base/data` (read-only, with a file), `base/out` (read-write), and a
/// secret file and directory in `base/outside`, next to the mounts and never mounted.
struct FsFixture {
    dir: tempfile::TempDir,
    secret: String,
}

impl FsFixture {
    fn new() -> FsFixture {
        let dir = tempdir();
        let base = dir.path();
        std::fs::create_dir_all(base.join("data/sub")).unwrap();
        std::fs::create_dir_all(base.join("out")).unwrap();
        std::fs::create_dir_all(base.join("outside")).unwrap();
        std::fs::write(base.join("data/notes.txt"), "notes in the data mount\n").unwrap();
        let secret = planted_secret("fs");
        std::fs::write(base.join("outside/secret.txt"), &secret).unwrap();
        FsFixture { dir, secret }
    }

    fn base(&self) -> &Path {
        self.dir.path()
    }

    fn outside(&self) -> String {
        self.base().join("outside").display().to_string()
    }

    fn secret_file(&self) -> String {
        self.base().join("outside/secret.txt").display().to_string()
    }

    /// `data` at `/data` read-only and `out` at `/out` read-write.
    fn grants() -> &'static str {
        r#"fs = [
            { host = "data", guest = "/data", mode = "ro" },
            { host = "out", guest = "/out", mode = "rw" },
        ]"#
    }

    fn load(&self, name: &str) -> are::component::LoadedComponent {
        load_spec(spec(name, Self::grants(), self.base()))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// fs
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn fs_read_only_mount_is_listed_and_read_but_not_written() {
    let fx = FsFixture::new();
    let files = fx.load("files");

    let listed = call_ok(&files, "files.list", json!({"path": "/data"})).await;
    let names: Vec<&str> = listed["ok"]
        .as_array()
        .unwrap_or_else(|| panic!("list failed: {listed}"))
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["notes.txt", "sub"]);

    let read = call_ok(&files, "files.read", json!({"path": "/data/notes.txt"})).await;
    assert_eq!(read, json!({"ok": "notes in the data mount\n"}));

    let report = call(
        &files,
        "files.write",
        json!({"path": "/data/new.txt", "contents": "should not land"}),
    )
    .await;
    let out = report
        .outcome
        .expect("a refused write is an error value, not a trap");
    assert!(out.is_err, "write to a ro mount succeeded: {}", out.value);
    assert!(
        out.value["err"]["permission-denied"].is_string(),
        "{}",
        out.value
    );
    assert!(!fx.base().join("data/new.txt").exists());
    // Nor may it replace an existing file.
    let out = call_ok(
        &files,
        "files.write",
        json!({"path": "/data/notes.txt", "contents": "overwritten"}),
    )
    .await;
    assert!(out.get("err").is_some(), "{out}");
    assert_eq!(
        std::fs::read_to_string(fx.base().join("data/notes.txt")).unwrap(),
        "notes in the data mount\n"
    );
}

#[tokio::test]
async fn fs_read_write_mount_writes_through_to_the_host() {
    let fx = FsFixture::new();
    let files = fx.load("files");
    let out = call_ok(
        &files,
        "files.write",
        json!({"path": "/out/report.txt", "contents": "written by the guest"}),
    )
    .await;
    assert_eq!(out, json!({"ok": 20}));
    assert_eq!(
        std::fs::read_to_string(fx.base().join("out/report.txt")).unwrap(),
        "written by the guest"
    );
    let out = call_ok(
        &files,
        "files.write",
        json!({"path": "/out/a/b/deep.txt", "contents": "deep", "create-dirs": true}),
    )
    .await;
    assert_eq!(out, json!({"ok": 4}));
    assert_eq!(
        std::fs::read_to_string(fx.base().join("out/a/b/deep.txt")).unwrap(),
        "deep"
    );
    // What the host put there, the guest reads back.
    std::fs::write(fx.base().join("out/from-host.txt"), "from the host").unwrap();
    let read = call_ok(&files, "files.read", json!({"path": "/out/from-host.txt"})).await;
    assert_eq!(read, json!({"ok": "from the host"}));
    // A path outside every mount is refused, and says which directories were granted.
    let read = call_ok(&files, "files.read", json!({"path": fx.secret_file()})).await;
    let denied = read["err"]["permission-denied"]
        .as_str()
        .unwrap_or_else(|| panic!("{read}"));
    assert!(
        denied.contains("/data") && denied.contains("/out"),
        "{denied}"
    );
    assert!(!read.to_string().contains(&fx.secret));
}

#[tokio::test]
async fn fs_without_a_mount_the_guest_sees_no_filesystem() {
    let escape = load("hostile-fs-escape", "");
    assert_eq!(
        call_ok(&escape, "attack.preopens", json!(null)).await,
        json!([])
    );
    let out = call_ok(&escape, "attack.absolute", json!(null)).await;
    assert_contained(&out, &out, &[]);
    let out = call_ok(&escape, "attack.dot-dot", json!(null)).await;
    assert_contained(&out, &out, &[]);

    let files = load("files", "");
    let read = call_ok(&files, "files.read", json!({"path": "/etc/passwd"})).await;
    let denied = read["err"]["permission-denied"]
        .as_str()
        .unwrap_or_else(|| panic!("{read}"));
    assert!(denied.contains("granted: none"), "{denied}");
}

#[tokio::test]
async fn fs_dot_dot_and_absolute_paths_stay_inside_the_mounts() {
    let fx = FsFixture::new();
    let escape = fx.load("hostile-fs-escape");
    assert_eq!(
        call_ok(&escape, "attack.preopens", json!(null)).await,
        json!(["/data", "/out"])
    );
    for function in ["attack.dot-dot", "attack.absolute"] {
        let out = call_ok(&escape, function, json!(null)).await;
        // Both mounts were tried, by descriptor.
        let text = out.to_string();
        assert!(
            text.contains("from `/data`") && text.contains("from `/out`"),
            "{function}: {text}"
        );
        assert_contained(&out, &out, &[&fx.secret, &fx.outside()]);
    }
}

#[tokio::test]
async fn fs_symlinks_already_pointing_outside_are_not_followed() {
    let fx = FsFixture::new();
    let base = fx.base();
    std::os::unix::fs::symlink(fx.secret_file(), base.join("data/abs-file")).unwrap();
    std::os::unix::fs::symlink(fx.outside(), base.join("data/abs-dir")).unwrap();
    std::os::unix::fs::symlink("../outside/secret.txt", base.join("data/rel-file")).unwrap();
    std::os::unix::fs::symlink("../../outside", base.join("data/sub/rel-dir")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", base.join("data/passwd")).unwrap();
    let escape = fx.load("hostile-fs-escape");
    for link in [
        "/data/abs-file",
        "/data/abs-dir",
        "/data/rel-file",
        "/data/sub/rel-dir",
        "/data/passwd",
    ] {
        let out = call_ok(&escape, "attack.follow-symlink", json!({"path": link})).await;
        assert_contained(&out, &out, &[&fx.secret, "secret.txt"]);
        // It really went through the descriptor of the mount too.
        assert!(
            out.to_string().contains("open-at from `/data`"),
            "{link}: {out}"
        );
    }
    // A link inside the mount that stays inside the mount still works: the refusal is about leaving it.
    std::os::unix::fs::symlink("notes.txt", base.join("data/inside")).unwrap();
    let files = fx.load("files");
    let read = call_ok(&files, "files.read", json!({"path": "/data/inside"})).await;
    assert_eq!(read, json!({"ok": "notes in the data mount\n"}));
}

#[tokio::test]
async fn fs_symlinks_planted_at_run_time_are_not_followed() {
    let fx = FsFixture::new();
    let escape = fx.load("hostile-fs-escape");
    let secret_file = fx.secret_file();
    let mut planted = 0;
    for target in [
        secret_file.as_str(),
        "../outside/secret.txt",
        "../../../../../../../../etc/passwd",
        "/etc/passwd",
    ] {
        let out = call_ok(
            &escape,
            "attack.plant-symlink",
            json!({"dir": "/out", "target": target}),
        )
        .await;
        assert!(out["created"].is_object(), "{out}");
        if out["created"]["ok"].is_string() {
            planted += 1;
        }
        assert_contained(&out["reads"], &out, &[&fx.secret]);
    }
    // Relative links could be created (only reading through them is refused), so the reads were real tries.
    assert!(
        planted >= 1,
        "no link was planted: the reads tested nothing"
    );
    // The guest cleaned up after itself.
    let left: Vec<_> = std::fs::read_dir(fx.base().join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // Planting in a read-only mount does not even create the link.
    let out = call_ok(
        &escape,
        "attack.plant-symlink",
        json!({"dir": "/data", "target": secret_file}),
    )
    .await;
    assert!(out["created"]["err"].is_string(), "{out}");
    assert_contained(&out["reads"], &out, &[&fx.secret]);
    assert!(!fx.base().join("data/escape-link").exists());
}

fn policy_error(text: &str, base_dir: &Path) -> (usize, usize, String) {
    match Policy::parse(text, Path::new("are.toml"), base_dir) {
        Ok(_) => panic!("policy was accepted:\n{text}"),
        Err(are::policy::PolicyError::Invalid {
            line,
            column,
            message,
            ..
        }) => (line, column, message),
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// 1-based line and column of the first `needle` in `text`.
fn position(text: &str, needle: &str) -> (usize, usize) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not in {text}"));
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap().chars().count() + 1;
    (line, column)
}

#[test]
fn fs_policy_refuses_a_missing_host_directory_with_line_and_column() {
    let dir = tempdir();
    std::fs::create_dir(dir.path().join("present")).unwrap();
    let text = "[component.files]\nsource = \"files.wasm\"\nallow.fs = [\n  { host = \"present\", guest = \"/a\" },\n  { host = \"missing\", guest = \"/b\" },\n]\n";
    let (line, column, message) = policy_error(text, dir.path());
    assert_eq!((line, column), position(text, "\"missing\""), "{message}");
    assert!(message.contains("does not exist"), "{message}");
    assert!(message.contains("missing"), "{message}");
    // The whole message, as a user sees it, starts with file:line:column.
    let err = Policy::parse(text, Path::new("are.toml"), dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("are.toml:{line}:{column}: ")),
        "{err}"
    );
    // A file is not a directory either.
    std::fs::write(dir.path().join("file"), "").unwrap();
    let text = "[component.files]\nsource = \"files.wasm\"\nallow.fs = [{ host = \"file\", guest = \"/a\" }]\n";
    let (line, column, message) = policy_error(text, dir.path());
    assert_eq!((line, column), position(text, "\"file\""), "{message}");
}

#[test]
fn fs_policy_refuses_relative_or_climbing_guest_paths() {
    let dir = tempdir();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    for guest in ["data", "./data", "/data/../etc", "/a/./b", ""] {
        let text = format!(
            "[component.files]\nsource = \"files.wasm\"\nallow.fs = [{{ host = \"data\", guest = \"{guest}\" }}]\n"
        );
        let (line, column, message) = policy_error(&text, dir.path());
        assert_eq!(
            (line, column),
            position(&text, &format!("\"{guest}\" }}")),
            "{guest}: {message}"
        );
        assert!(message.contains("must be absolute"), "{guest}: {message}");
    }
    // The same path mounted twice is refused too.
    let text = "[component.files]\nsource = \"files.wasm\"\nallow.fs = [{ host = \"data\", guest = \"/d\" }, { host = \"data\", guest = \"/d/\" }]\n";
    let (_, _, message) = policy_error(text, dir.path());
    assert!(message.contains("mounted twice"), "{message}");
}

#[test]
fn fs_policy_refuses_overlapping_mounts_of_different_modes() {
    let dir = tempdir();
    std::fs::create_dir_all(dir.path().join("out/inner")).unwrap();
    std::fs::create_dir_all(dir.path().join("other")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("out/inner"), dir.path().join("alias")).unwrap();
    let policy = |a: &str, mode_a: &str, b: &str, mode_b: &str| {
        format!(
            "[component.files]\nsource = \"files.wasm\"\nallow.fs = [\n  {{ host = \"{a}\", guest = \"/a\", mode = \"{mode_a}\" }},\n  {{ host = \"{b}\", guest = \"/b\", mode = \"{mode_b}\" }},\n]\n"
        )
    };
    // `ro` inside `rw` (writable through the outer mount), `rw` inside `ro`, one directory twice, and a symlink
    // that leads inside the other mount.
    for (a, b) in [
        ("out", "out/inner"),
        ("out/inner", "./out"),
        ("out", "out/"),
        ("out", "alias"),
    ] {
        let text = policy(a, "rw", b, "ro");
        let (line, column, message) = policy_error(&text, dir.path());
        assert_eq!(
            (line, column),
            position(&text, &format!("\"{b}\", guest = \"/b\"")),
            "{message}"
        );
        let (a_line, a_column) = position(&text, &format!("\"{a}\", guest = \"/a\""));
        assert!(
            message.contains(&format!(
                "mount \"{b}\" (ro) overlaps mount \"{a}\" (rw) at {a_line}:{a_column}"
            )),
            "{message}"
        );
        assert!(message.contains("give them the same mode"), "{message}");
    }
    // The same mode may overlap, and directories apart may have any modes.
    for (a, mode_a, b, mode_b) in [
        ("out", "rw", "out/inner", "rw"),
        ("out", "ro", "alias", "ro"),
        ("out", "rw", "other", "ro"),
    ] {
        let text = policy(a, mode_a, b, mode_b);
        Policy::parse(&text, Path::new("are.toml"), dir.path())
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
    }
}

#[test]
fn fs_policy_quota_needs_an_rw_mount_that_overlaps_no_other() {
    let dir = tempdir();
    std::fs::create_dir_all(dir.path().join("out/inner")).unwrap();
    let text = "[component.files]\nsource = \"files.wasm\"\nallow.fs = [{ host = \"out\", guest = \"/o\", mode = \"rw\", quota = \"10 MiB\" }]\n";
    let policy = Policy::parse(text, Path::new("are.toml"), dir.path()).unwrap();
    assert_eq!(
        are::caps::Capability::entries(&policy.components["files"].allow.fs),
        ["out -> /o (rw, quota 10.0 MiB)"]
    );
    let text = "[component.files]\nsource = \"files.wasm\"\nallow.fs = [{ host = \"out\", guest = \"/o\", quota = \"10 MiB\" }]\n";
    let (line, column, message) = policy_error(text, dir.path());
    assert_eq!((line, column), position(text, "\"10 MiB\""), "{message}");
    assert!(message.contains("a `ro` mount has none"), "{message}");
    let text = "[component.files]\nsource = \"files.wasm\"\nallow.fs = [{ host = \"out\", guest = \"/o\", mode = \"rw\", quota = \"lots\" }]\n";
    let (line, column, message) = policy_error(text, dir.path());
    assert_eq!((line, column), position(text, "\"lots\""), "{message}");
    assert!(message.contains("invalid size \"lots\""), "{message}");
    let text = "[component.files]\nsource = \"files.wasm\"\nallow.fs = [\n  { host = \"out\", guest = \"/o\", mode = \"rw\", quota = \"1 MiB\" },\n  { host = \"out/inner\", guest = \"/i\", mode = \"rw\" },\n]\n";
    let (line, column, message) = policy_error(text, dir.path());
    assert_eq!((line, column), position(text, "\"out/inner\""), "{message}");
    assert!(message.contains("one has a `quota`"), "{message}");
}

#[test]
fn audit_file_inside_an_rw_mount_is_refused() {
    let dir = tempdir();
    for sub in ["out/sub", "logs", "data"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    std::os::unix::fs::symlink(dir.path().join("out"), dir.path().join("alias")).unwrap();
    let policy = |audit: &str, table: &str| {
        format!(
            "[audit]\npath = \"{audit}\"\n\n[{table}]\nsource = \"files.wasm\"\nallow.fs = [\n  {{ host = \"data\", guest = \"/data\" }},\n  {{ host = \"out\", guest = \"/out\", mode = \"rw\" }},\n]\n"
        )
    };
    for (audit, table) in [
        ("out/audit.jsonl", "component.files"),
        ("out", "component.files"),
        ("./out/../out/missing/audit.jsonl", "component.files"),
        ("alias/sub/audit.jsonl", "component.files"),
        ("out/audit.jsonl", "agent.files"),
    ] {
        let text = policy(audit, table);
        let (line, column, message) = policy_error(&text, dir.path());
        assert_eq!((line, column), (2, 8), "{audit}: {message}");
        let (mount_line, mount_column) = position(&text, "\"out\", guest");
        let kind = table.split('.').next().unwrap();
        assert!(
            message.contains(&format!(
                "the audit file \"{audit}\" is inside the rw mount \"out\" of {kind} \"files\" at \
                 {mount_line}:{mount_column}"
            )),
            "{message}"
        );
    }
    // Beside the mounts, or in a read-only one, the audit file is fine.
    for audit in ["logs/audit.jsonl", "audit.jsonl", "data/audit.jsonl"] {
        let text = policy(audit, "component.files");
        Policy::parse(&text, Path::new("are.toml"), dir.path())
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
    }
}

#[tokio::test]
async fn fs_quota_refuses_writes_past_it_and_the_mount_stays_under() {
    let dir = tempdir();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("existing.bin"), [0u8; 300]).unwrap();
    let files = load_spec(spec(
        "files",
        r#"fs = [{ host = "out", guest = "/out", mode = "rw", quota = "1 KiB" }]"#,
        dir.path(),
    ));
    let write = |path: &str, bytes: usize| json!({"path": path, "contents": "x".repeat(bytes)});
    // 300 bytes were there; 600 more fit in 1024.
    let done = call_ok(&files, "files.write", write("/out/a.txt", 600)).await;
    assert_eq!(done, json!({"ok": 600}));
    // 200 more do not: the guest gets an error value, not a trap. (The host fails the stream write with
    // `insufficient-space`; wasi-libc reports any failed stream write as EIO.)
    let refused = call_ok(&files, "files.write", write("/out/b.txt", 200)).await;
    let message = refused["err"]["other"]
        .as_str()
        .unwrap_or_else(|| panic!("{refused}"));
    assert!(message.starts_with("`/out/b.txt`: "), "{message}");
    let used = are::caps::fs::quota::measure(&out).unwrap();
    assert!(used <= 1024, "the mount holds {used} bytes");
    assert_eq!(used, 900, "nothing of the refused write landed");
    // Rewriting a file gives back what it held: 700 bytes replace 600.
    let done = call_ok(&files, "files.write", write("/out/a.txt", 700)).await;
    assert_eq!(done, json!({"ok": 700}));
    // The next instance measures again: space freed on the host counts.
    std::fs::remove_file(out.join("existing.bin")).unwrap();
    let done = call_ok(&files, "files.write", write("/out/b.txt", 300)).await;
    assert_eq!(done, json!({"ok": 300}));
    let refused = call_ok(&files, "files.write", write("/out/c.txt", 100)).await;
    assert!(refused["err"]["other"].is_string(), "{refused}");
    assert!(are::caps::fs::quota::measure(&out).unwrap() <= 1024);
}

// ---------------------------------------------------------------------------------------------------------------
// env and args
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn env_only_granted_variables_are_visible() {
    let snoop = load(
        "hostile-env-snoop",
        r#"env = { GRANTED = "granted-value", OTHER = "" }"#,
    );
    let granted = json!([["GRANTED", "granted-value"], ["OTHER", ""]]);
    assert_eq!(
        call_ok(&snoop, "attack.raw-vars", json!(null)).await,
        granted
    );
    assert_eq!(call_ok(&snoop, "attack.vars", json!(null)).await, granted);
    // The test process has these; the guest must not.
    assert!(std::env::var_os("PATH").is_some());
    let found = call_ok(
        &snoop,
        "attack.lookup",
        json!({"extra": ["CARGO_MANIFEST_DIR", "GRANTED", "CARGO"]}),
    )
    .await;
    for pair in found.as_array().unwrap() {
        let (name, value) = (pair[0].as_str().unwrap(), &pair[1]);
        match name {
            "GRANTED" => assert_eq!(value, "granted-value"),
            _ => assert!(value.is_null(), "{name} leaked: {value}"),
        }
    }
    assert!(found.as_array().unwrap().len() > 20, "{found}");
    // No grant, no environment.
    let bare = load("hostile-env-snoop", "");
    assert_eq!(
        call_ok(&bare, "attack.raw-vars", json!(null)).await,
        json!([])
    );
    assert_eq!(call_ok(&bare, "attack.vars", json!(null)).await, json!([]));
}

#[tokio::test]
async fn env_args_come_only_from_the_policy() {
    let dir = tempdir();
    let mut with_args = spec("hostile-env-snoop", "", dir.path());
    with_args.args = vec!["tool-name".into(), "--from-policy".into()];
    let snoop = load_spec(with_args);
    // Through `std` and then through `wasi:cli/environment`: the same two arguments each time.
    assert_eq!(
        call_ok(&snoop, "attack.args", json!(null)).await,
        json!(["tool-name", "--from-policy", "tool-name", "--from-policy"])
    );
    assert_eq!(
        call_ok(&snoop, "attack.cwd", json!(null)).await,
        json!(null)
    );
    let bare = load("hostile-env-snoop", "");
    assert_eq!(call_ok(&bare, "attack.args", json!(null)).await, json!([]));
}

/// Run the `are` binary with an extra environment variable set.
fn run_with_env(args: &[&str], var: (&str, &str)) -> Output {
    let out = are()
        .env(var.0, var.1)
        .args(args)
        .output()
        .expect("run are");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn env_of_the_host_process_never_reaches_the_guest() {
    let dir = tempdir();
    let secret = planted_secret("env");
    let policy = dir.path().join("are.toml");
    std::fs::write(
        &policy,
        format!(
            "[component.snoop]\nsource = '{}'\nargs = [\"snoop\", \"--policy-arg\"]\nallow.env = {{ GRANTED = \"granted-value\" }}\n",
            are_tests::guest("hostile-env-snoop").wasm
        ),
    )
    .unwrap();
    let policy = policy.to_str().unwrap();
    let var = ("ARE_TEST_PLANTED_SECRET", secret.as_str());

    let out = run_with_env(
        &["call", "snoop", "attack.raw-vars", "--policy", policy],
        var,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.json(), json!([["GRANTED", "granted-value"]]));

    let out = run_with_env(
        &[
            "call",
            "snoop",
            "attack.lookup",
            r#"{"extra": ["ARE_TEST_PLANTED_SECRET", "ARE_CACHE_DIR"]}"#,
            "--policy",
            policy,
        ],
        var,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for pair in out.json().as_array().unwrap() {
        if pair[0] != "GRANTED" {
            assert!(pair[1].is_null(), "{pair} leaked");
        }
    }
    assert!(!out.stdout.contains(&secret) && !out.stderr.contains(&secret));

    // Arguments are the policy's, never the host's command line.
    let out = run_with_env(&["call", "snoop", "attack.args", "--policy", policy], var);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.json(),
        json!(["snoop", "--policy-arg", "snoop", "--policy-arg"])
    );
}

// ---------------------------------------------------------------------------------------------------------------
// http
// ---------------------------------------------------------------------------------------------------------------

fn http_grant(origins: &[String]) -> String {
    format!("http = {origins:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_granted_origin_is_reachable() {
    let server = TestServer::start().await;
    let fetch = load("fetch", &http_grant(&[server.origin()]));
    let out = call_ok(&fetch, "fetch.get", json!({"url": server.url("/hello")})).await;
    assert_eq!(out["ok"]["status"], 200, "{out}");
    assert_eq!(out["ok"]["body"], "hello from the test server");
    assert_eq!(out["ok"]["truncated"], false);
    // Any path on the origin.
    let out = call_ok(
        &fetch,
        "fetch.get",
        json!({"url": server.url("/bytes?n=5000"), "max-bytes": 100}),
    )
    .await;
    assert_eq!(out["ok"]["body"], "x".repeat(100));
    assert_eq!(out["ok"]["truncated"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_other_ports_are_denied_with_an_error_value() {
    let server = TestServer::start().await;
    let other = TcpSink::start().await;
    let fetch = load("fetch", &http_grant(&[server.origin()]));
    for url in [
        format!("http://127.0.0.1:{}/hello", other.port),
        format!("https://127.0.0.1:{}/hello", server.port),
        format!("http://localhost:{}/hello", server.port),
        format!("http://[::1]:{}/hello", server.port),
    ] {
        let report = call(&fetch, "fetch.get", json!({ "url": url })).await;
        let out = report
            .outcome
            .unwrap_or_else(|e| panic!("{url}: the call failed instead of the request: {e}"));
        assert!(out.is_err, "{url} was fetched: {}", out.value);
        let message = out.value["err"].as_str().unwrap();
        assert!(message.contains("HTTP-request-denied"), "{url}: {message}");
    }
    assert_eq!(other.accepted(), 0, "a denied request reached the network");
    // The denial did not spoil the instance or the component: the granted origin still works.
    let out = call_ok(&fetch, "fetch.get", json!({"url": server.url("/hello")})).await;
    assert_eq!(out["ok"]["status"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_without_a_grant_the_import_is_denied() {
    let server = TestServer::start().await;
    let fetch = load("fetch", "");
    let err = call_err(&fetch, "fetch.get", json!({"url": server.url("/hello")})).await;
    let CallError::CapabilityDenied(denied) = &err else {
        panic!("expected CapabilityDenied, got {err:?}");
    };
    assert!(denied.import.starts_with("wasi:http/"), "{denied:?}");
    assert_eq!(denied.reason, DenialReason::NotGranted(Some("allow.http")));
    let message = err.to_string();
    assert!(
        message.starts_with("capability not granted: wasi:http/") && message.contains("allow.http"),
        "{message}"
    );
    assert_eq!(err.kind(), "capability_denied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_localhost_entry_reaches_localhost() {
    let server = TestServer::start().await;
    let fetch = load(
        "fetch",
        &http_grant(&[format!("http://localhost:{}", server.port)]),
    );
    let out = call_ok(
        &fetch,
        "fetch.get",
        json!({"url": format!("http://localhost:{}/hello", server.port)}),
    )
    .await;
    assert_eq!(out["ok"]["status"], 200, "{out}");
    assert_eq!(out["ok"]["body"], "hello from the test server");
    // The entry names the host `localhost`, not the address it resolves to.
    let out = call_ok(&fetch, "fetch.get", json!({"url": server.url("/hello")})).await;
    assert!(
        out["err"]
            .as_str()
            .is_some_and(|m| m.contains("HTTP-request-denied")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_wildcard_entry_does_not_match_an_ip() {
    let server = TestServer::start().await;
    let fetch = load(
        "fetch",
        &http_grant(&[
            "https://*.example.com".to_string(),
            format!("http://*.example.com:{}", server.port),
        ]),
    );
    for url in [
        server.url("/hello"),
        format!("http://localhost:{}/hello", server.port),
    ] {
        let out = call_ok(&fetch, "fetch.get", json!({ "url": url })).await;
        assert!(
            out["err"]
                .as_str()
                .is_some_and(|m| m.contains("HTTP-request-denied")),
            "{url}: {out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_redirect_to_another_origin_is_not_followed() {
    let server = TestServer::start().await;
    let elsewhere = TcpSink::start().await;
    let target = format!("http://127.0.0.1:{}/hello", elsewhere.port);
    let fetch = load("fetch", &http_grant(&[server.origin()]));
    let out = call_ok(
        &fetch,
        "fetch.get",
        json!({"url": server.url(&format!("/redirect?to={target}"))}),
    )
    .await;
    // wasi:http does not follow redirects: the guest gets the redirect itself (axum's `Redirect::to` is a 303).
    let status = out["ok"]["status"]
        .as_u64()
        .unwrap_or_else(|| panic!("{out}"));
    assert!((300..400).contains(&status), "{out}");
    let location = out["ok"]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "location")
        .unwrap_or_else(|| panic!("no location header: {out}"));
    assert_eq!(location[1], target);
    // A guest that follows it by hand is denied, and nothing ever reached the other server.
    let out = call_ok(&fetch, "fetch.get", json!({ "url": target })).await;
    assert!(
        out["err"]
            .as_str()
            .is_some_and(|m| m.contains("HTTP-request-denied")),
        "{out}"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(elsewhere.accepted(), 0);
}

// ---------------------------------------------------------------------------------------------------------------
// sockets
// ---------------------------------------------------------------------------------------------------------------

const NET_PAYLOAD: &str = "EXFILTRATED by hostile-net";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_granted_address_connects() {
    let sink = TcpSink::start().await;
    let net = load(
        "hostile-net",
        &format!(r#"sockets = ["127.0.0.1:{}"]"#, sink.port),
    );
    let out = call_ok(
        &net,
        "attack.tcp-connect",
        json!({"host": "127.0.0.1", "port": sink.port}),
    )
    .await;
    assert!(
        out["ok"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("127.0.0.1:{}", sink.port))),
        "{out}"
    );
    let out = call_ok(
        &net,
        "attack.tcp-connect-raw",
        json!({"ip": "127.0.0.1", "port": sink.port}),
    )
    .await;
    assert!(out["ok"].is_string(), "{out}");
    assert!(
        sink.wait_for(
            &format!("{NET_PAYLOAD}\r\n{NET_PAYLOAD}"),
            Duration::from_secs(2)
        )
        .await,
        "received {:?}",
        sink.received()
    );
    assert_eq!(sink.accepted(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_other_ports_and_hosts_are_denied() {
    let sink = TcpSink::start().await;
    let other = TcpSink::start().await;
    let net = load(
        "hostile-net",
        &format!(r#"sockets = ["127.0.0.1:{}"]"#, sink.port),
    );
    for (function, args) in [
        (
            "attack.tcp-connect",
            json!({"host": "127.0.0.1", "port": other.port}),
        ),
        (
            "attack.tcp-connect-raw",
            json!({"ip": "127.0.0.1", "port": other.port}),
        ),
        // The granted port on another loopback address, and on IPv6.
        (
            "attack.tcp-connect-raw",
            json!({"ip": "127.0.0.2", "port": sink.port}),
        ),
        (
            "attack.tcp-connect-raw",
            json!({"ip": "::1", "port": sink.port}),
        ),
    ] {
        let report = call(&net, function, args.clone()).await;
        let out = report
            .outcome
            .unwrap_or_else(|e| panic!("{function} {args}: trapped instead of failing: {e}"));
        assert!(out.is_err, "{function} {args} connected: {}", out.value);
        let message = out.value["err"].as_str().unwrap();
        assert!(
            message.contains("access-denied") || message.contains("Permission denied"),
            "{function} {args}: {message}"
        );
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(other.accepted(), 0);
    assert_eq!(sink.accepted(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_lookup_of_an_ungranted_name_is_denied_before_any_query() {
    let sink = TcpSink::start().await;
    let net = load(
        "hostile-net",
        &format!(
            r#"sockets = ["127.0.0.1:{}", "tcp://localhost:{}"]"#,
            sink.port, sink.port
        ),
    );
    // A name under `.invalid` cannot resolve: had the host asked DNS, the guest would see `name-unresolvable`.
    // `access-denied` means the host refused before any query, so the name (and data hidden in it) never left.
    for name in [
        "secret-data-in-a-label.exfil.invalid",
        "example.com",
        "localhost.",
    ] {
        let started = Instant::now();
        let out = call_ok(&net, "attack.dns-lookup", json!({ "name": name })).await;
        assert_eq!(
            out,
            json!({"err": "resolve-addresses: access-denied"}),
            "{name}"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    let out = call_ok(
        &net,
        "attack.std-dns-lookup",
        json!({"name": "secret-data.exfil.invalid"}),
    )
    .await;
    assert!(out["err"].is_string(), "{out}");
    // IP literals need no query, and resolve to themselves.
    let out = call_ok(&net, "attack.dns-lookup", json!({"name": "10.1.2.3"})).await;
    assert_eq!(out, json!({"ok": ["10.1.2.3"]}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_localhost_entry_allows_its_lookup_and_connect() {
    let sink = TcpSink::start().await;
    let net = load(
        "hostile-net",
        &format!(r#"sockets = ["tcp://localhost:{}"]"#, sink.port),
    );
    let out = call_ok(&net, "attack.dns-lookup", json!({"name": "localhost"})).await;
    let addresses = out["ok"].as_array().unwrap_or_else(|| panic!("{out}"));
    assert!(
        addresses.iter().any(|a| a == "127.0.0.1" || a == "::1"),
        "{out}"
    );
    let out = call_ok(
        &net,
        "attack.tcp-connect",
        json!({"host": "localhost", "port": sink.port}),
    )
    .await;
    assert!(out["ok"].is_string(), "{out}");
    assert!(sink.wait_for(NET_PAYLOAD, Duration::from_secs(2)).await);
    // The entry allows what `localhost` resolved to in the same instance. Every call is a fresh instance, and one
    // that did not look the name up may not connect to the address directly.
    let out = call_ok(
        &net,
        "attack.tcp-connect-raw",
        json!({"ip": "127.0.0.1", "port": sink.port}),
    )
    .await;
    assert_eq!(out, json!({"err": "finish-connect: access-denied"}));
    // Nor may it use the name on another port.
    let out = call_ok(
        &net,
        "attack.tcp-connect",
        json!({"host": "localhost", "port": sink.port.wrapping_add(1).max(1)}),
    )
    .await;
    assert!(out["err"].is_string(), "{out}");
}

#[tokio::test]
async fn sockets_without_a_grant_the_imports_are_denied() {
    let net = load("hostile-net", "");
    for (function, args) in [
        (
            "attack.tcp-connect-raw",
            json!({"ip": "127.0.0.1", "port": 9}),
        ),
        ("attack.dns-lookup", json!({"name": "localhost"})),
        (
            "attack.udp-send-raw",
            json!({"ip": "127.0.0.1", "port": 9, "payload": "x"}),
        ),
    ] {
        let err = call_err(&net, function, args).await;
        let CallError::CapabilityDenied(denied) = &err else {
            panic!("{function}: expected CapabilityDenied, got {err:?}");
        };
        assert!(denied.import.starts_with("wasi:sockets/"), "{denied:?}");
        assert!(err.to_string().contains("allow.sockets"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_udp_needs_a_udp_entry() {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    // A TCP entry for the same address does not allow UDP.
    let tcp_only = load(
        "hostile-net",
        &format!(r#"sockets = ["tcp://127.0.0.1:{port}"]"#),
    );
    for function in ["attack.udp-send", "attack.udp-send-raw"] {
        let (host_key, payload) = if function == "attack.udp-send" {
            ("host", "via std, denied")
        } else {
            ("ip", "raw, denied")
        };
        let out = call_ok(
            &tcp_only,
            function,
            json!({host_key: "127.0.0.1", "port": port, "payload": payload}),
        )
        .await;
        assert!(out["err"].is_string(), "{function}: {out}");
    }
    let mut buf = [0u8; 64];
    let nothing =
        tokio::time::timeout(Duration::from_millis(100), socket.recv_from(&mut buf)).await;
    assert!(nothing.is_err(), "a datagram arrived without a udp grant");

    let udp = load(
        "hostile-net",
        &format!(r#"sockets = ["udp://127.0.0.1:{port}"]"#),
    );
    for (function, host_key, payload) in [
        ("attack.udp-send-raw", "ip", "raw datagram"),
        ("attack.udp-send", "host", "std datagram"),
    ] {
        let out = call_ok(
            &udp,
            function,
            json!({host_key: "127.0.0.1", "port": port, "payload": payload}),
        )
        .await;
        assert!(out["ok"].is_string(), "{function}: {out}");
        let (n, _) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf))
            .await
            .expect("the datagram arrives")
            .unwrap();
        assert_eq!(&buf[..n], payload.as_bytes());
    }
    // UDP to another port, or TCP to the UDP entry, is still denied.
    let out = call_ok(
        &udp,
        "attack.udp-send-raw",
        json!({"ip": "127.0.0.1", "port": port.wrapping_add(1).max(1), "payload": "x"}),
    )
    .await;
    assert!(out["err"].is_string(), "{out}");
    let out = call_ok(
        &udp,
        "attack.tcp-connect-raw",
        json!({"ip": "127.0.0.1", "port": port}),
    )
    .await;
    assert!(out["err"].is_string(), "{out}");
}

// ---------------------------------------------------------------------------------------------------------------
// stdio
// ---------------------------------------------------------------------------------------------------------------

/// The line `hostile-output` writes over and over.
const OUTPUT_LINE: &str = "hostile-output floods this stream with the same line, for ever!\n";

#[tokio::test]
async fn stdio_is_captured_in_the_report_apart_from_the_result() {
    let output = load("hostile-output", "");
    let limits = Limits {
        max_output: 4 << 20,
        ..Limits::default()
    };
    let report = call_limited(&output, "attack.stdout-flood", json!({"mib": 1}), limits).await;
    let out = report.outcome.expect("1 MiB fits a max_output of 4 MiB");
    assert_eq!(out.value, json!({"ok": 1 << 20}));
    assert_eq!(report.stdout.len(), 1 << 20);
    assert!(report.stdout.starts_with(OUTPUT_LINE.as_bytes()));
    assert!(report.stderr.is_empty());
    assert_eq!(report.stats.stdout_bytes, 1 << 20);
    assert!(!out.value.to_string().contains("hostile-output"));

    let report = call_limited(&output, "attack.stderr-flood", json!({"mib": 1}), limits).await;
    assert_eq!(report.outcome.unwrap().value, json!({"ok": 1 << 20}));
    assert_eq!(report.stderr.len(), 1 << 20);
    assert!(report.stdout.is_empty());

    // A guest's printing does not reach the result of a well-behaved tool either: panic output goes to stderr.
    let text = load("text", "");
    let report = call(&text, "text.word-count", json!({"text": "a b"})).await;
    assert!(report.stdout.is_empty() && report.stderr.is_empty());
}

#[tokio::test]
async fn stdio_output_exactly_at_the_limit_is_allowed() {
    let output = load("hostile-output", "");
    let limits = Limits {
        max_output: 1 << 20,
        ..Limits::default()
    };
    let report = call_limited(&output, "attack.stdout-flood", json!({"mib": 1}), limits).await;
    match report.outcome {
        Ok(out) => assert_eq!(out.value, json!({"ok": 1 << 20})),
        Err(e) => panic!("exactly max_output bytes of stdout must be allowed: {e}"),
    }
    assert_eq!(report.stdout.len(), 1 << 20);
}

#[tokio::test]
async fn stdio_endless_stdout_ends_with_output_too_large() {
    let output = load("hostile-output", "");
    let limits = Limits {
        max_output: 256 << 10,
        timeout: Duration::from_secs(3),
        ..Limits::default()
    };
    let started = Instant::now();
    let report = call_limited(&output, "attack.stdout-flood", json!({"mib": 0}), limits).await;
    let elapsed = started.elapsed();
    match &report.outcome {
        Err(CallError::OutputTooLarge { stream, limit }) => {
            assert_eq!((*stream, *limit), ("stdout", 256 << 10));
        }
        other => panic!("expected OutputTooLarge on stdout, got {other:?}"),
    }
    let message = report.outcome.as_ref().unwrap_err().to_string();
    assert!(
        message.contains("stdout")
            && message.contains(&fmt_bytes(256 << 10))
            && message.contains("limits.max_output"),
        "{message}"
    );
    assert!(elapsed < limits.timeout, "took {elapsed:?}");
    assert!(report.stdout.len() as u64 <= limits.max_output);
    assert!(report.stdout.len() as u64 >= limits.max_output / 2);
    assert!(report.stdout.starts_with(OUTPUT_LINE.as_bytes()));
}

// ---------------------------------------------------------------------------------------------------------------
// ungranted imports in general
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn ungranted_imports_fail_only_at_the_call_that_reaches_them() {
    use are::describe::Capability;
    // `hostile-net` imports http and sockets; with nothing granted it still loads.
    let net = load("hostile-net", "");
    let capabilities = net.description.capabilities();
    assert!(
        capabilities.contains(&Capability::Http) && capabilities.contains(&Capability::Sockets),
        "{capabilities:?}"
    );
    // A path that stops before any import runs normally and returns the guest's own error.
    let out = call_ok(
        &net,
        "attack.tcp-connect-raw",
        json!({"ip": "not-an-ip", "port": 1}),
    )
    .await;
    assert!(
        out["err"]
            .as_str()
            .is_some_and(|m| m.contains("is not an IP address")),
        "{out}"
    );
    // The same function, reaching the import, fails with a denial naming it.
    let err = call_err(
        &net,
        "attack.tcp-connect-raw",
        json!({"ip": "127.0.0.1", "port": 1}),
    )
    .await;
    assert!(matches!(err, CallError::CapabilityDenied(_)), "{err:?}");
    let err = call_err(
        &net,
        "attack.http-get",
        json!({"url": "http://127.0.0.1:1/"}),
    )
    .await;
    let CallError::CapabilityDenied(denied) = &err else {
        panic!("expected CapabilityDenied, got {err:?}");
    };
    assert!(denied.import.starts_with("wasi:http/"), "{denied:?}");

    // `fetch` loads without an http grant: only the call that reaches wasi:http fails, and the component keeps
    // serving (here: another call that fails in the guest before it reaches the import).
    let fetch = load("fetch", "");
    let out = call_ok(&fetch, "fetch.get", json!({"url": "not a url"})).await;
    assert!(out["err"].is_string(), "{out}");
    let err = call_err(&fetch, "fetch.get", json!({"url": "http://127.0.0.1:1/"})).await;
    assert!(matches!(err, CallError::CapabilityDenied(_)), "{err:?}");
    let out = call_ok(&fetch, "fetch.get", json!({"url": "not a url"})).await;
    assert!(out["err"].is_string(), "{out}");
}

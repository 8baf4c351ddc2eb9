//! `allow.fs`: mounts read-only and read-write, paths and symbolic links that try to leave them, the policy's
//! checks of mounts, and the write quota.

use super::{assert_contained, planted_secret};
use crate::common::{call, call_ok, load, load_spec, spec, tempdir};
use are_policy::Policy;
use serde_json::json;
use std::path::Path;

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

    fn load(&self, name: &str) -> are_runtime::component::LoadedComponent {
        load_spec(spec(name, Self::grants(), self.base()))
    }
}

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
        Err(are_policy::PolicyError::Invalid {
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
        are_policy::Grant::entries(&policy.components["files"].allow.fs),
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
    let used = are_runtime::caps::fs::quota::measure(&out).unwrap();
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
    assert!(are_runtime::caps::fs::quota::measure(&out).unwrap() <= 1024);
}

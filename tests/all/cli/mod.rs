//! The `are` binary: `inspect`, `call`, `policy check` and policies in use, and the guest workflow. This module
//! holds the checks they share; the tests are in its submodules, by subcommand.

use crate::common::{Output, are, sha256_hex};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

mod call;
mod inspect;
mod policy;
mod workflow;

/// Run `are` with `args`, writing `stdin` to its standard input.
fn run_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = are()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn are");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for are").into()
}

/// The path of a built guest.
fn guest(name: &str) -> &'static str {
    are_tests::guest(name).wasm
}

/// Assert that `are` succeeded, and return its output.
#[track_caller]
fn ok(out: Output) -> Output {
    assert_eq!(
        out.code,
        Some(0),
        "are failed\nstdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    out
}

/// Assert that `are` failed with exit code 1 and an `error:` message containing `expected`.
#[track_caller]
fn fails(out: &Output, expected: &str) {
    assert_eq!(
        out.code,
        Some(1),
        "are should have failed\nstdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr.starts_with("error: "),
        "stderr should start with `error:`: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains(expected),
        "stderr should contain {expected:?}: {}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

fn write_component(dir: &Path, name: &str, wit: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, crate::common::component_from_wit(wit)).expect("write component");
    path
}

/// The SHA-256 of the file at `path`, in hex.
fn file_sha256_hex(path: &Path) -> String {
    sha256_hex(&std::fs::read(path).unwrap())
}

const WORD_COUNT: &str = r#"{"text": "hi there"}"#;

//! `are-policy` is the policy model alone: a tool that reads or checks policies must not pull in the runtime.

use std::process::Command;

/// Crates the policy crate must never depend on, not even through another dependency.
const RUNTIME_CRATES: [&str; 6] = [
    "wasmtime",
    "wasmtime-wasi",
    "tokio",
    "rmcp",
    "hyper",
    "reqwest",
];

#[test]
fn the_policy_crate_depends_on_no_runtime_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--locked",
            "-p",
            "are-policy",
            "-e",
            "normal,build",
        ])
        .args(["--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cargo tree failed: {stderr}");
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(names.contains(&"are-policy"), "{tree}");
    assert!(names.contains(&"serde"), "{tree}");
    for forbidden in RUNTIME_CRATES {
        assert!(
            !names.contains(&forbidden),
            "are-policy depends on {forbidden}:\n{tree}"
        );
    }
}

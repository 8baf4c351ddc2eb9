//! The guest workflow: `are new` → `are build` → `are inspect` / `are call`.

use super::{fails, ok};
use crate::common::{are, output, run, tempdir};
use serde_json::json;
use std::path::Path;

#[test]
fn new_then_build_gives_a_documented_callable_tool() {
    let dir = tempdir();
    let crate_dir = dir.path().join("greeter");
    let out = ok(output(are().args([
        "new",
        "tool",
        "greeter",
        "--dir",
        crate_dir.to_str().unwrap(),
    ])));
    assert!(
        out.stdout.starts_with(&format!(
            "created tool `greeter` in {}",
            crate_dir.display()
        )),
        "{}",
        out.stdout
    );
    for file in ["Cargo.toml", "wit/world.wit", "src/lib.rs", ".gitignore"] {
        assert!(crate_dir.join(file).is_file(), "{file} was not written");
    }
    let out = run(&[
        "new",
        "tool",
        "greeter",
        "--dir",
        crate_dir.to_str().unwrap(),
    ]);
    fails(&out, "already exists");

    // One target directory for every run, so that only the tool itself is rebuilt.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("guest-build");
    let out = ok(run(&[
        "build",
        crate_dir.to_str().unwrap(),
        "--target-dir",
        target.to_str().unwrap(),
    ]));
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("greeter  "))
        .unwrap_or_else(|| panic!("no line for the tool in {}", out.stdout));
    let wasm = line.split("  ").nth(1).expect("the path");
    assert!(wasm.ends_with("greeter.wasm"), "{line}");
    assert!(Path::new(wasm).starts_with(&target), "{line}");

    let json = ok(run(&["inspect", "--json", wasm])).json();
    assert_eq!(json["docs_source"], json!({"kind": "embedded"}));
    assert_eq!(json["world"], "greeter-tool");
    assert_eq!(json["tools"][0]["qualified_name"], "greeter.greet");
    assert!(
        json["tools"][0]["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("Greets someone.")),
        "{json}"
    );
    let human = ok(run(&["inspect", wasm]));
    assert!(
        human
            .stdout
            .contains("  greeter.greet(name: string) -> string\n      Greets someone.\n"),
        "{}",
        human.stdout
    );
    let out = ok(run(&[
        "call",
        wasm,
        "greeter.greet",
        r#"{"name": "world"}"#,
    ]));
    assert_eq!(out.json(), json!("hello, world"));
}

#[test]
fn new_refuses_bad_names_and_build_needs_a_crate() {
    let dir = tempdir();
    for name in [
        "Greeter",
        "9lives",
        "my_tool",
        "double--dash",
        "trailing-",
        "-lead",
        "",
        "wörd",
    ] {
        let target = dir.path().join("x");
        let out = output(are().current_dir(dir.path()).args([
            "new",
            "tool",
            name,
            "--dir",
            target.to_str().unwrap(),
        ]));
        if name.starts_with('-') {
            // Taken as an option by the argument parser.
            assert_eq!(out.code, Some(2), "{name}: {}", out.stderr);
        } else {
            fails(&out, &format!("error: invalid tool name {name:?}"));
        }
        assert!(!target.exists(), "{name}: nothing is created");
    }
    let out = run(&["build", dir.path().to_str().unwrap()]);
    fails(
        &out,
        &format!(
            "error: no Cargo.toml in {}; pass the directory of a guest crate (`are new tool NAME` creates one)",
            dir.path().display()
        ),
    );
}

//! Nothing a guest controls can forge the terminal (issue 11 point 11): guest stdout and stderr forwarded by
//! `are call`, WIT docs shown by `are inspect` and agent log lines come out with their control characters
//! escaped, and a newline in an agent's log line does not start a line of its own.

use crate::common::{component_from_wit, run, tempdir, write_policy};
use serde_json::json;

/// Escape sequences that clear the screen, set the window title, ring the bell, overwrite the line with a
/// carriage return, recolour it with an 8-bit CSI, and reverse it with a bidi override; then a newline that
/// starts a line looking like the host's own.
const FORGERY: &str =
    "\u{1b}[2J\u{1b}]0;owned\u{7}\rok\u{9b}31m\u{202e}desrever\nERROR are: forged by the guest";

/// Whether `text` holds a character that drives a terminal (tab and newline aside).
fn drives_the_terminal(text: &str) -> bool {
    text.chars().any(|c| {
        (c.is_control() && c != '\n' && c != '\t') || ('\u{202a}'..='\u{202e}').contains(&c)
    })
}

#[test]
fn guest_stdout_and_stderr_are_forwarded_escaped() {
    let output = are_tests::guest("hostile-output");
    let args = json!({ "text": FORGERY }).to_string();
    let out = run(&[
        "call",
        &output.wasm_path().display().to_string(),
        "attack.forge-terminal",
        &args,
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!drives_the_terminal(&out.stderr), "{:?}", out.stderr);
    for stream in ["stdout", "stderr"] {
        assert!(
            out.stderr.contains(&format!(
                "guest {stream} | \\u{{1b}}[2J\\u{{1b}}]0;owned\\u{{7}}\\rok\\u{{9b}}31m\\u{{202e}}desrever"
            )),
            "{:?}",
            out.stderr
        );
        // The guest's newline starts a line, but one marked as the guest's.
        assert!(
            out.stderr
                .contains(&format!("guest {stream} | ERROR are: forged by the guest")),
            "{:?}",
            out.stderr
        );
    }
    assert!(
        !out.stderr
            .lines()
            .any(|l| l.starts_with("ERROR are: forged")),
        "{:?}",
        out.stderr
    );
}

#[test]
fn wit_docs_and_names_are_shown_escaped_by_inspect() {
    let wit = "package test:docs;\n\ninterface api {\n    greet: func(name: string) -> string;\n}\n\n\
               world docs {\n    export api;\n}\n";
    let component = component_from_wit(wit);
    // Docs a hostile builder put in the embedded WIT package: the WIT parser would refuse them in a source file.
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve.push_str("docs.wit", wit).unwrap();
    let world = resolve.select_world(&[package], None).unwrap();
    resolve.worlds[world].docs.contents = Some(FORGERY.to_string());
    let (_, api) = resolve
        .interfaces
        .iter_mut()
        .find(|(_, i)| i.name.as_deref() == Some("api"))
        .unwrap();
    api.functions.get_mut("greet").unwrap().docs.contents = Some(FORGERY.to_string());
    let encoded = wit_component::encode(&resolve, package).expect("encode the WIT package");
    let mut bytes = component;
    let section = wasm_encoder::CustomSection {
        name: are_runtime::describe::WIT_DOCS_SECTION.into(),
        data: encoded.as_slice().into(),
    };
    use wasm_encoder::{Encode as _, Section as _};
    bytes.push(section.id());
    section.encode(&mut bytes);
    let dir = tempdir();
    let path = dir.path().join("docs.wasm");
    std::fs::write(&path, &bytes).unwrap();

    let out = run(&["inspect", &path.display().to_string()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!drives_the_terminal(&out.stdout), "{:?}", out.stdout);
    assert!(
        out.stdout
            .contains("\\u{1b}[2J\\u{1b}]0;owned\\u{7}\\rok\\u{9b}31m\\u{202e}desrever"),
        "the docs are shown, escaped: {}",
        out.stdout
    );
    // A docs line of its own stays indented under its function.
    assert!(
        out.stdout
            .lines()
            .any(|l| l == "      ERROR are: forged by the guest"),
        "{}",
        out.stdout
    );
    // JSON carries the docs as they are (serde escapes them).
    let json = run(&["inspect", "--json", &path.display().to_string()]);
    assert_eq!(json.code, Some(0), "{}", json.stderr);
    assert!(json.stdout.contains("\\u001b[2J"), "{}", json.stdout);
}

#[test]
fn an_agent_log_line_stays_one_escaped_line_marked_with_the_agent() {
    let dir = tempdir();
    let probe = are_tests::guest("agent-probe");
    let config = write_policy(
        dir.path(),
        &format!(
            "[agent.probe]\nsource = \"{}\"\n",
            probe.wasm_path().display()
        ),
    );
    let payload = json!({ "op": "log", "message": FORGERY }).to_string();
    let out = run(&[
        "run",
        "--config",
        &config.display().to_string(),
        "--send",
        "probe/a",
        &payload,
        "--until-idle",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // The host colours its own log lines; none of the guest's sequences gets through.
    for raw in [
        "\u{1b}[2J",
        "\u{1b}]0;",
        "\u{7}",
        "\r",
        "\u{9b}",
        "\u{202e}",
    ] {
        assert!(!out.stderr.contains(raw), "{raw:?} in {:?}", out.stderr);
    }
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("desrever"))
        .unwrap_or_else(|| panic!("the log line: {:?}", out.stderr));
    assert!(line.contains("probe/a"), "marked with the agent: {line}");
    assert!(
        line.contains("\\nERROR are: forged by the guest"),
        "the newline is escaped, on the same line: {line}"
    );
    assert!(
        !out.stderr
            .lines()
            .any(|l| l.starts_with("ERROR are: forged")),
        "{:?}",
        out.stderr
    );
}

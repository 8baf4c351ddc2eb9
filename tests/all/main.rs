//! Integration tests, one binary for all: they drive the `are` library and the `are` binary against the guest
//! components that `tests/build.rs` compiles from `example-tools/`.
//!
//! One module a subject; a subject with several parts is a folder whose `mod.rs` holds its set-up (the `are serve`
//! harness of `mcp/`, the agent runtime of `agents/`, the generators of `properties/`) and whose files hold the
//! tests, one a part. Set-up that several subjects share (the engine and cache, loading guests, running `are`,
//! writing a policy, an agent runtime, local servers) is in `common.rs`.

mod agents;
mod audit;
mod bench;
mod cli;
mod common;
mod grants;
mod hostile;
mod instances;
mod loading;
mod mcp;
mod pipeline;
mod properties;
mod review;
mod schemas;
mod secrets;
mod sources;
mod terminal;
mod tools;

/// The header of a binary component: `\0asm`, version 0x0d, layer 1.
const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

#[test]
fn every_guest_is_a_built_component_with_its_wit() {
    let guests = are_tests::guests();
    assert!(!guests.is_empty(), "no guests were built");
    for guest in guests {
        let bytes = guest.bytes();
        assert!(
            bytes.starts_with(&COMPONENT_HEADER),
            "`{}` at {} is not a component",
            guest.name,
            guest.wasm
        );
        // Agents are built on the guest SDK's `are:agent` world; every other guest brings its own WIT.
        assert!(
            guest.name.starts_with("agent-") || guest.wit_dir().join("world.wit").is_file(),
            "`{}` has no {}/world.wit",
            guest.name,
            guest.wit
        );
    }
    for name in [
        "text",
        "json",
        "hash",
        "files",
        "fetch",
        "hostile-loop",
        "hostile-secret",
    ] {
        assert_eq!(are_tests::guest(name).name, name);
    }
}

#[test]
fn the_table_attack_is_component_text() {
    let text =
        std::fs::read_to_string(are_tests::hostile_table_wat()).expect("table.wat is readable");
    assert!(text.contains("(component") && text.contains("table.grow"));
}

#[test]
#[should_panic(expected = "known guests: ")]
fn an_unknown_guest_lists_the_known_ones() {
    are_tests::guest("no-such-guest");
}

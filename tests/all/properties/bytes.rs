//! Loading arbitrary bytes: edited components, edited component text and random bytes are refused with an error
//! or read, validated and described; nothing panics.

use super::{config, mutate_text, toml_char};
use crate::common::component_from_wit;
use are_runtime::component::{LoadError, read_component, validate};
use are_runtime::describe::ComponentDescription;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use std::path::Path;

/// An edit of a component's bytes.
#[derive(Debug, Clone)]
enum ByteEdit {
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    Truncate(Index),
    Duplicate(Index, usize),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    // Bytes that matter to the binary format: LEB128 continuation, section ids, type constructors, max values.
    let special = prop_oneof![
        select(vec![
            0x00, 0x01, 0x7f, 0x80, 0xff, 0x0b, 0x60, 0x40, 0x41, 0x42, 0x3f, 0x70, 0x6f, 0x00
        ]),
        any::<u8>(),
    ];
    prop_oneof![
        3 => (any::<Index>(), 0..8u8).prop_map(|(at, bit)| ByteEdit::Flip(at, bit)),
        3 => (any::<Index>(), special.clone()).prop_map(|(at, b)| ByteEdit::Set(at, b)),
        2 => (any::<Index>(), prop::collection::vec(special, 1..=6)).prop_map(|(at, b)| ByteEdit::Insert(at, b)),
        1 => (any::<Index>(), 1..64usize).prop_map(|(at, n)| ByteEdit::Remove(at, n)),
        1 => any::<Index>().prop_map(ByteEdit::Truncate),
        1 => (any::<Index>(), 1..64usize).prop_map(|(at, n)| ByteEdit::Duplicate(at, n)),
    ]
}

fn apply_edits(bytes: &mut Vec<u8>, edits: &[ByteEdit]) {
    for edit in edits {
        let len = bytes.len();
        match edit {
            ByteEdit::Flip(at, bit) if len > 0 => bytes[at.index(len)] ^= 1 << bit,
            ByteEdit::Set(at, b) if len > 0 => bytes[at.index(len)] = *b,
            ByteEdit::Insert(at, new) => {
                let i = at.index(len + 1);
                bytes.splice(i..i, new.iter().copied());
            }
            ByteEdit::Remove(at, n) if len > 0 => {
                let i = at.index(len);
                bytes.drain(i..(i + n).min(len));
            }
            ByteEdit::Truncate(at) => bytes.truncate(at.index(len + 1)),
            ByteEdit::Duplicate(at, n) if len > 0 => {
                let i = at.index(len);
                let copy: Vec<u8> = bytes[i..(i + n).min(len)].to_vec();
                bytes.splice(i..i, copy);
            }
            _ => {}
        }
    }
}

/// Components to mutate: small real guests and a generated one with a rich signature.
fn seed_components() -> &'static [Vec<u8>] {
    static SEEDS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut seeds: Vec<Vec<u8>> = ["hostile-recursion", "kv"]
            .into_iter()
            .map(|name| are_tests::guest(name).bytes())
            .collect();
        seeds.push(component_from_wit(
            "package gen:seed;
             interface api {
                 record r { a: u8, b-c: option<string> }
                 variant v { x(r), y }
                 flags f { p, q }
                 resource h;
                 call: func(r: r, v: v, f: f, l: list<u8>) -> result<tuple<s64, f32>, string>;
                 use-handle: func(h: borrow<h>);
             }
             world seed { export api; export top: func(c: char) -> option<option<bool>>; }",
        ));
        seeds
    })
}

/// Reading, validating and describing bytes fails with an error or succeeds; it never panics.
fn load_bytes(bytes: &[u8], dir: &Path, name: &str) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write component");
    match read_component(&path, are_policy::DEFAULT_MAX_COMPONENT_SIZE) {
        Ok(read) => {
            let _ = validate(&path, &read);
            if let Ok(desc) = ComponentDescription::from_bytes(&read, None) {
                let _ = desc.to_json();
            }
        }
        Err(
            LoadError::NotWasm { .. } | LoadError::CoreModule { .. } | LoadError::Invalid { .. },
        ) => {}
        Err(e) => panic!("unexpected read error: {e}"),
    }
}

proptest! {
    #![proptest_config(config(48))]

    /// Edited components are refused with an error, or read, validated and described; nothing panics.
    #[test]
    fn edited_components_load_or_fail_cleanly(
        seed in any::<Index>(),
        edits in prop::collection::vec(byte_edit(), 1..=6),
    ) {
        let seeds = seed_components();
        let mut bytes = seeds[seed.index(seeds.len())].clone();
        apply_edits(&mut bytes, &edits);
        let dir = tempfile::tempdir().expect("temp dir");
        load_bytes(&bytes, dir.path(), "edited.wasm");
    }

    /// Edited WebAssembly text (the hand-written table attack) is refused or read like a binary.
    #[test]
    fn edited_component_text_loads_or_fails_cleanly(
        edits in prop::collection::vec((any::<Index>(), any::<u8>(), toml_char()), 1..=4),
    ) {
        let text = std::fs::read_to_string(are_tests::hostile_table_wat()).expect("table.wat");
        let edited = mutate_text(&text, &edits);
        let dir = tempfile::tempdir().expect("temp dir");
        load_bytes(edited.as_bytes(), dir.path(), "edited.wat");
    }

    /// Arbitrary bytes, with or without a WebAssembly header, are refused cleanly.
    #[test]
    fn arbitrary_bytes_are_refused_cleanly(
        header in select(vec![&b""[..], b"\0asm", b"\0asm\x0d\x00\x01\x00", b"\0asm\x01\x00\x00\x00", b"(component", b";;"]),
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let bytes: Vec<u8> = header.iter().copied().chain(body).collect();
        let dir = tempfile::tempdir().expect("temp dir");
        load_bytes(&bytes, dir.path(), "arbitrary.wasm");
    }
}

//! Property tests (proptest): JSON ⇄ WIT values over generated WIT types and values, the policy parser over
//! generated policies and arbitrary text, and loading arbitrary bytes as a component. This module holds what they
//! share; the generators and the properties are in its submodules.
//!
//! The case counts are small so that `cargo test` stays fast. `PROPTEST_CASES` sets the count of every property
//! here for a longer run: `PROPTEST_CASES=5000 cargo test -p are-cli --test all properties`.

use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::Value;
use std::collections::BTreeSet;

mod bytes;
mod integers;
mod policy;
mod policy_gen;
mod values;
mod wit_gen;

/// `default_cases` cases, unless `PROPTEST_CASES` says otherwise; failures are reported, not persisted (a found
/// case becomes a named regression test instead).
fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A small deterministic generator for choices inside one generated case (which form a value takes).
struct Choices(u64);

impl Choices {
    fn next(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::validator_for(schema).unwrap_or_else(|e| panic!("invalid schema {schema}: {e}"))
}

/// Small edits of a text: characters that matter to TOML inserted, characters removed, lines duplicated.
fn mutate_text(text: &str, edits: &[(Index, u8, char)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for (at, op, c) in edits {
        let i = at.index(chars.len() + 1);
        match op % 3 {
            0 => chars.insert(i, *c),
            1 if i < chars.len() => {
                chars.remove(i);
            }
            _ => {
                let start = chars[..i]
                    .iter()
                    .rposition(|&c| c == '\n')
                    .map_or(0, |p| p + 1);
                let end = chars[i..]
                    .iter()
                    .position(|&c| c == '\n')
                    .map_or(chars.len(), |p| i + p);
                let line: Vec<char> = chars[start..end].to_vec();
                chars.splice(end..end, std::iter::once('\n').chain(line));
            }
        }
    }
    chars.into_iter().collect()
}

fn toml_char() -> impl Strategy<Value = char> {
    prop_oneof![
        select(vec![
            '[', ']', '{', '}', '=', '"', '\'', ',', '.', '#', '\\', '\n', ' ', '_', '-', '0', 'a',
            'é', '\r', '\t'
        ]),
        any::<char>(),
    ]
}

/// Names are unique ignoring case, as WIT requires.
fn unique_by_name<T>(items: Vec<(String, T)>) -> Vec<(String, T)> {
    let mut seen = BTreeSet::new();
    items
        .into_iter()
        .filter(|(name, _)| seen.insert(name.to_lowercase()))
        .collect()
}

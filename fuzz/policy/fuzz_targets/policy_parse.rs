//! Arbitrary text → `Policy::parse`: it must return a policy or an error that points inside the text, never panic.
//!
//! Policies that parse are used the way the host uses them: limits resolved for every component and agent, every
//! entry found again by its name, and every grant listed. It builds against `are-policy` alone.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use are_policy::review::{find_entry, policy_entries};
use are_policy::{Policy, PolicyError};
use libfuzzer_sys::fuzz_target;

/// A base directory with a `data` subdirectory, so that `allow.fs` mounts can be valid.
fn base_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("are-fuzz-policy-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("data")).expect("base dir");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    // `Policy::load` reads the file as UTF-8; anything else never reaches the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Policy::parse(text, Path::new("are.toml"), base_dir()) {
        Ok(policy) => {
            for component in policy.components.values() {
                let _ = policy.limits_for(Some(component)).resolve();
                let _ = policy.source_path(component);
                for grant in component.allow.all() {
                    let _ = grant.entries();
                }
            }
            for entry in policy_entries(&policy) {
                let name = entry.name;
                assert!(
                    find_entry(&policy, name).is_some(),
                    "entry {name} is not found by its name"
                );
            }
            for agent in policy.agents.values() {
                let _ = policy.defaults.overlay(agent.limits).resolve();
            }
        }
        Err(PolicyError::Invalid {
            line,
            column,
            message,
            ..
        }) => {
            let lines = text.split('\n').count();
            assert!(
                (1..=lines).contains(&line),
                "line {line} outside 1..={lines}: {message}"
            );
            let line_text = text.split('\n').nth(line - 1).unwrap_or_default();
            let columns = line_text.chars().count() + 1;
            assert!(
                (1..=columns).contains(&column),
                "column {column} outside 1..={columns} of line {line}: {message}"
            );
            assert!(!message.is_empty(), "empty error message");
        }
        Err(e @ PolicyError::Read { .. }) => panic!("parsing text cannot fail to read: {e}"),
    }
});

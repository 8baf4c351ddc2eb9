//! Hostile components (issue point 10): each attack is contained with an error that names the limit and its
//! value, and the host serves the next call right after. This module holds the shared checks; the attacks are in
//! its submodules, by what they go after.

use crate::common::{call_ok, load};
use are_policy::Limits;
use are_runtime::component::LoadedComponent;
use are_runtime::invoke::CallReport;
use serde_json::{Value, json};
use std::time::Duration;

mod agents;
mod clocks;
mod cpu;
mod fs;
mod mixed;
mod network;
mod output;
mod resources;
mod traps;

const MIB: u64 = 1 << 20;

/// Default limits with fuel unlimited and a short timeout: only the wall clock can stop the call.
fn timeout_only(timeout: Duration) -> Limits {
    Limits {
        fuel: None,
        timeout,
        ..Limits::default()
    }
}

/// Default limits with a smaller memory cap.
fn memory(limit: u64) -> Limits {
    Limits {
        memory: limit,
        ..Limits::default()
    }
}

/// What `hostile-memory`'s `allocate` returns for `mib` MiB: the sum of the byte it writes on each 64 KiB page.
fn checksum(mib: u64) -> Value {
    json!(
        (0..mib * 16)
            .map(|page| u64::from(page as u8 | 1))
            .sum::<u64>()
    )
}

/// The error of a call that must have failed.
fn error(report: &CallReport, what: &str) -> String {
    match &report.outcome {
        Ok(out) => panic!("{what} should have failed, returned {}", out.value),
        Err(e) => e.to_string(),
    }
}

/// A benign call on the same component still works: the host is fine after the attack.
async fn still_serves(c: &LoadedComponent, function: &str, args: Value, expected: Value) {
    assert_eq!(
        call_ok(c, function, args).await,
        expected,
        "the component did not serve a benign call after the attack"
    );
}

/// A benign tool, to show the host serves other components too.
async fn text_still_works() {
    let text = load("text", "");
    let counts = call_ok(&text, "text.word-count", json!({"text": "still here"})).await;
    assert_eq!(counts["words"], 2);
}

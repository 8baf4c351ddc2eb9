//! `agent-hostile`: an agent that attacks the agent runtime itself. Its messages are JSON commands, `{"op": …}`,
//! and its reply is JSON saying how far the attack got and what stopped it.
//!
//! | op | fields | attack | what should stop it |
//! |---|---|---|---|
//! | `self` | | sends to its own id | loop detection (`loop-detected`) |
//! | `recurse` | | sends `recurse` to a fresh key of its own type, which does the same, forever | the hop limit |
//! | `ping` | `peer` | sends `ping` to `peer` naming itself, so that `peer` sends back: A → B → A | loop detection |
//! | `fan-out` | `topic`, `n` | publishes `n` copies of its own command on a topic it subscribes to: each copy publishes `n` more | the message budget and the hop limit |
//! | `flood` | `to` or `topic`, `n` | sends or publishes `n` messages (0: forever) | the message budget |
//! | `tool-storm` | `name`, `args`, `n` | calls a tool `n` times (0: forever) | the message's timeout |
//! | `tool-reentry` | `name` | calls a tool that is this very component loaded as a tool, hoping it calls tools in turn | tools have no agent imports |
//! | `hoard-memory` | `bytes` | fills its persistent memory in 4 KiB values | the memory quota |
//!
//! Loaded as a plain tool component (not an agent), its `on-message` runs with no agent capabilities at all:
//! the `tools.call` and `messaging.send` it tries fail with "capability not granted".

use are_guest_sdk::agent::{self, Agent, memory, messaging, tools};
use serde_json::{Value, json};

struct Hostile;

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or_default()
}

impl Agent for Hostile {
    fn on_message(_from: String, payload: String) -> Result<Option<String>, String> {
        let cmd: Value =
            serde_json::from_str(&payload).map_err(|e| format!("payload is not JSON: {e}"))?;
        // Asked only where needed: loaded as a plain tool, even `identity` is not granted.
        let me = agent::identity::self_id;
        let hops = || agent::identity::current_message().map_or(0, |m| m.hops);
        let reply = match field(&cmd, "op") {
            "self" => outcome(messaging::send(&me(), &payload)),
            "recurse" => {
                let next = format!("{}-r", me());
                match messaging::send(&next, &payload) {
                    // The deepest agent's answer comes back up the chain unchanged.
                    Ok(reply) => serde_json::from_str(&reply).unwrap_or(Value::String(reply)),
                    Err(e) => {
                        json!({ "stopped_at": me(), "hops": hops(), "err": format!("{e:?}") })
                    }
                }
            }
            "ping" => {
                let back = json!({ "op": "ping", "peer": me() }).to_string();
                match messaging::send(field(&cmd, "peer"), &back) {
                    Ok(reply) => serde_json::from_str(&reply).unwrap_or(Value::String(reply)),
                    Err(e) => {
                        json!({ "stopped_at": me(), "hops": hops(), "err": format!("{e:?}") })
                    }
                }
            }
            "fan-out" => {
                let n = cmd["n"].as_u64().unwrap_or(2);
                let mut published = 0;
                let mut error = None;
                for _ in 0..n {
                    match messaging::publish(field(&cmd, "topic"), &payload) {
                        Ok(()) => published += 1,
                        Err(e) => {
                            error = Some(format!("{e:?}"));
                            break;
                        }
                    }
                }
                if let Some(e) = &error {
                    agent::log::warn(&format!("fan-out stopped at hop {}: {e}", hops()));
                }
                json!({ "published": published, "hops": hops(), "err": error })
            }
            "flood" => {
                let n = cmd["n"].as_u64().unwrap_or(0);
                let mut sent = 0u64;
                let error = loop {
                    if n != 0 && sent >= n {
                        break None;
                    }
                    let result = match cmd.get("topic") {
                        Some(topic) => messaging::publish(topic.as_str().unwrap_or_default(), "x"),
                        None => messaging::send(field(&cmd, "to"), r#"{"op":"noop"}"#).map(drop),
                    };
                    match result {
                        Ok(()) => sent += 1,
                        Err(e) => break Some(format!("{e:?}")),
                    }
                };
                json!({ "sent": sent, "err": error })
            }
            "tool-storm" => {
                let n = cmd["n"].as_u64().unwrap_or(0);
                let mut calls = 0u64;
                let error = loop {
                    if n != 0 && calls >= n {
                        break None;
                    }
                    match tools::call(field(&cmd, "name"), &cmd["args"]) {
                        Ok(_) => calls += 1,
                        Err(e) => break Some(e),
                    }
                };
                json!({ "calls": calls, "err": error })
            }
            "tool-reentry" => {
                let inner = json!({ "from": "tool-reentry", "payload": payload });
                outcome(tools::call(field(&cmd, "name"), &inner).map(|v| v.to_string()))
            }
            "hoard-memory" => {
                let bytes = cmd["bytes"].as_u64().unwrap_or(u64::MAX);
                let value = "m".repeat(4096);
                let mut stored = 0u64;
                let error = loop {
                    if stored >= bytes {
                        break None;
                    }
                    match memory::set(&format!("hoard/{stored:016x}"), &value) {
                        Ok(()) => stored += value.len() as u64,
                        Err(e) => break Some(e),
                    }
                };
                json!({ "stored": stored, "err": error })
            }
            "noop" => json!(null),
            other => return Err(format!("unknown op {other:?}")),
        };
        Ok(Some(reply.to_string()))
    }
}

/// `{"ok": …}` or `{"err": "<the error, as Debug>"}`.
fn outcome<E: std::fmt::Debug>(result: Result<String, E>) -> Value {
    match result {
        Ok(reply) => json!({ "ok": reply }),
        Err(e) => json!({ "err": format!("{e:?}") }),
    }
}

are_guest_sdk::export_agent!(Hostile);

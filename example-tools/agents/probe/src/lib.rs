//! `agent-probe`: an agent whose messages are commands, one host capability each, so that tests (and curious
//! people) can drive every path of the agent runtime. The payload is JSON, `{"op": …, …}`; the reply is JSON.
//!
//! | op | fields | does |
//! |---|---|---|
//! | `whoami` | | replies with its id and the message info |
//! | `echo` | `text` | replies with the text |
//! | `send` | `to`, `payload` | sends and replies with the reply (or the error) |
//! | `publish` | `topic`, `payload` | publishes |
//! | `remember` | `key`, `value` | stores in memory |
//! | `recall` | `key` or `prefix` | reads memory |
//! | `count` | | increments a counter in memory once per message id (idempotent), replies with it |
//! | `tool` | `name`, `args` | calls a tool |
//! | `tools` | | lists granted tools |
//! | `ask` | `prompt`, `max_turns` | runs the model with tools |
//! | `flood` | `topic` or `to`, `n` | publishes or sends `n` messages |
//! | `bulk` | `topic` or `to`, `n`, `bytes` | publishes or sends `n` `echo` commands padded to `bytes` bytes, replies with how many went and each error |
//! | `big-reply` | `bytes` | replies with `bytes` bytes |
//! | `fill` | `prefix`, `n`, `bytes` | stores `n` values of `bytes` bytes in memory until refused, replies with how many and the error |
//! | `spin` | | loops forever |
//! | `hoard` | `mib` | allocates memory |
//! | `fail` | `message` | returns an error |
//! | `sleep-ms` | `ms` | busy-waits (for crash tests) |
//! | `log` | `message` | writes a warning log line |
//! | `seq` | `steps` | runs each step (a command) in order, replies with the list of their replies |
//!
//! An agent whose key starts with `lifecycle` (e.g. `probe/lifecycle-1`) counts its activations and
//! deactivations in its memory, under `lifecycle/activate` and `lifecycle/deactivate` (it needs `allow.memory`).

use are_guest_sdk::agent::{self, Agent, llm, memory, messaging, tools};
use serde_json::{Value, json};

struct Probe;

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or_default()
}

impl Agent for Probe {
    fn on_message(from: String, payload: String) -> Result<Option<String>, String> {
        let cmd: Value =
            serde_json::from_str(&payload).map_err(|e| format!("payload is not JSON: {e}"))?;
        let reply = match field(&cmd, "op") {
            "whoami" => {
                let info = agent::identity::current_message();
                json!({
                    "id": agent::identity::self_id(),
                    "from": from,
                    "message": info.as_ref().map(|m| &m.id),
                    "sender": info.as_ref().map(|m| &m.sender),
                    "topic": info.as_ref().and_then(|m| m.topic.clone()),
                    "hops": info.as_ref().map(|m| m.hops),
                })
            }
            "echo" => json!(field(&cmd, "text")),
            "send" => {
                let payload = match &cmd["payload"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                match messaging::send(field(&cmd, "to"), &payload) {
                    Ok(reply) => json!({ "ok": reply }),
                    Err(e) => json!({ "err": format!("{e:?}") }),
                }
            }
            "publish" => {
                match messaging::publish(field(&cmd, "topic"), &cmd["payload"].to_string()) {
                    Ok(()) => json!({ "ok": null }),
                    Err(e) => json!({ "err": format!("{e:?}") }),
                }
            }
            "remember" => match memory::set(field(&cmd, "key"), field(&cmd, "value")) {
                Ok(()) => json!({ "ok": null }),
                Err(e) => json!({ "err": e }),
            },
            "recall" => match cmd.get("prefix") {
                Some(p) => json!(memory::list(p.as_str().unwrap_or_default())),
                None => json!(memory::get(field(&cmd, "key"))),
            },
            "count" => {
                let id = agent::identity::current_message()
                    .map(|m| m.id)
                    .unwrap_or_default();
                let seen_key = format!("seen/{id}");
                let count: u64 = memory::get_json("count")?.unwrap_or(0);
                let count = if memory::get(&seen_key).is_some() {
                    count
                } else {
                    memory::set_json("count", &(count + 1))?;
                    memory::set(&seen_key, "1")?;
                    count + 1
                };
                json!(count)
            }
            "tool" => match tools::call(field(&cmd, "name"), &cmd["args"]) {
                Ok(v) => json!({ "ok": v }),
                Err(e) => json!({ "err": e }),
            },
            "tools" => json!(
                tools::list()
                    .into_iter()
                    .map(|t| t.name)
                    .collect::<Vec<_>>()
            ),
            "ask" => {
                let turns = cmd["max_turns"].as_u64().unwrap_or(8) as u32;
                match llm::Runner::new()
                    .max_turns(turns)
                    .run(field(&cmd, "prompt"))
                {
                    Ok(a) => {
                        json!({ "ok": { "text": a.text, "turns": a.turns, "tools": a.tool_calls, "tokens": a.tokens } })
                    }
                    Err(e) => json!({ "err": format!("{e:?}") }),
                }
            }
            "flood" => {
                let n = cmd["n"].as_u64().unwrap_or(1);
                let mut sent = 0;
                let mut error = None;
                for i in 0..n {
                    let result = match cmd.get("topic") {
                        Some(t) => {
                            messaging::publish(t.as_str().unwrap_or_default(), &i.to_string())
                        }
                        None => {
                            messaging::send(field(&cmd, "to"), "{\"op\":\"echo\",\"text\":\"x\"}")
                                .map(drop)
                        }
                    };
                    match result {
                        Ok(()) => sent += 1,
                        Err(e) => {
                            error = Some(format!("{e:?}"));
                            break;
                        }
                    }
                }
                json!({ "sent": sent, "error": error })
            }
            "bulk" => {
                let n = cmd["n"].as_u64().unwrap_or(1);
                // Built in place (a 30 MiB payload takes 30 MiB of the guest's memory, not twice that), with a
                // fill rather than a loop of pushes, so that it costs little fuel.
                let (head, tail) = (r#"{"op":"echo","pad":""#, r#""}"#);
                let bytes = cmd["bytes"].as_u64().unwrap_or(0) as usize;
                let mut payload = Vec::with_capacity(head.len() + bytes + tail.len());
                payload.extend_from_slice(head.as_bytes());
                payload.resize(head.len() + bytes, b'b');
                payload.extend_from_slice(tail.as_bytes());
                let payload = String::from_utf8(payload).map_err(|e| e.to_string())?;
                let mut sent = 0;
                let mut errors = Vec::new();
                for _ in 0..n {
                    let result = match cmd.get("topic") {
                        Some(t) => messaging::publish(t.as_str().unwrap_or_default(), &payload),
                        None => messaging::send(field(&cmd, "to"), &payload).map(drop),
                    };
                    match result {
                        Ok(()) => sent += 1,
                        Err(e) => errors.push(format!("{e:?}")),
                    }
                }
                json!({ "sent": sent, "errors": errors })
            }
            "big-reply" => {
                return Ok(Some(
                    "r".repeat(cmd["bytes"].as_u64().unwrap_or(0) as usize),
                ));
            }
            "fill" => {
                let value = "f".repeat(cmd["bytes"].as_u64().unwrap_or(0) as usize);
                let mut stored = 0;
                let mut error = None;
                for i in 0..cmd["n"].as_u64().unwrap_or(1) {
                    match memory::set(&format!("{}/{i}", field(&cmd, "prefix")), &value) {
                        Ok(()) => stored += 1,
                        Err(e) => {
                            error = Some(e);
                            break;
                        }
                    }
                }
                json!({ "stored": stored, "err": error })
            }
            "spin" => loop {
                std::hint::black_box(());
            },
            "hoard" => {
                let mib = cmd["mib"].as_u64().unwrap_or(1) as usize;
                let block = vec![1u8; mib << 20];
                json!(block.iter().map(|b| *b as u64).sum::<u64>())
            }
            "fail" => return Err(field(&cmd, "message").to_string()),
            "sleep-ms" => {
                let until = std::time::Instant::now()
                    + std::time::Duration::from_millis(cmd["ms"].as_u64().unwrap_or(0));
                while std::time::Instant::now() < until {
                    std::hint::black_box(());
                }
                json!("slept")
            }
            "log" => {
                agent::log::warn(field(&cmd, "message"));
                json!("logged")
            }
            "seq" => {
                let mut replies = Vec::new();
                for step in cmd["steps"].as_array().into_iter().flatten() {
                    let reply = Probe::on_message(from.clone(), step.to_string())?;
                    replies.push(reply.map_or(Value::Null, |r| {
                        serde_json::from_str(&r).unwrap_or(Value::String(r))
                    }));
                }
                json!(replies)
            }
            other => return Err(format!("unknown op {other:?}")),
        };
        Ok(Some(reply.to_string()))
    }

    fn activate() -> Result<(), String> {
        count_lifecycle("activate")
    }

    fn deactivate() -> Result<(), String> {
        count_lifecycle("deactivate")
    }
}

/// For agents whose key starts with `lifecycle`: count a lifecycle hook in memory.
fn count_lifecycle(hook: &str) -> Result<(), String> {
    if !agent::identity::key().starts_with("lifecycle") {
        return Ok(());
    }
    let key = format!("lifecycle/{hook}");
    let n: u64 = memory::get_json(&key)?.unwrap_or(0);
    memory::set_json(&key, &(n + 1))
}

are_guest_sdk::export_agent!(Probe);

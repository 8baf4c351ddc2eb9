//! `agent-researcher`: researches one source with the model and the fetch tool, and reports back.
//!
//! The researcher type subscribes to topic `tasks`, so every task a coordinator publishes there reaches the
//! agent `researcher/tasks`, one at a time:
//! `{"job": "job-1", "topic": "…", "source": "https://…", "reply_to": "coordinator/job-1"}`.
//!
//! It runs the model with its granted tools ([`llm::Runner`]): the model asks for `fetch.get` on the source,
//! the runner calls the tool and hands the page back, and the model answers with a summary. The finding goes to
//! the coordinator named in `reply_to`, by a direct send: `{"job", "source", "finding", "tools"}`. A source that
//! cannot be researched still gets a finding, saying why, so that the job can finish; one too large to send
//! (`too-large`, over `[agents] max_payload`) is cut to its first 64 KiB.
//!
//! Its policy:
//!
//! ```toml
//! [agent.researcher]
//! source = "agent_researcher.wasm"
//! allow.tools = ["fetch.get"]
//! allow.llm = { model = "default", max_tokens = 20000, max_turns = 4 }
//! allow.messaging = { subscribe = ["tasks"], send = ["coordinator/*"] }
//! ```

use are_guest_sdk::agent::{Agent, llm, log, messaging};
use serde_json::{Value, json};

/// What the model is told to do.
const INSTRUCTIONS: &str = "You are a researcher. Fetch the source you are given with the fetch tool, then \
    summarise in two or three sentences what it says about the topic. Answer with the summary only.";

struct Researcher;

impl Agent for Researcher {
    fn on_message(_from: String, payload: String) -> Result<Option<String>, String> {
        let task: Value =
            serde_json::from_str(&payload).map_err(|e| format!("payload is not JSON: {e}"))?;
        let field = |name: &str| {
            task[name]
                .as_str()
                .ok_or_else(|| format!("a task needs `{name}`"))
        };
        let (job, topic, source, reply_to) = (
            field("job")?,
            field("topic")?,
            field("source")?,
            field("reply_to")?,
        );

        let runner = llm::Runner::new().system(INSTRUCTIONS).max_turns(4);
        let (finding, tools) = match runner.run(&format!("Topic: {topic}\nSource: {source}\n")) {
            Ok(answer) => (answer.text, answer.tool_calls),
            Err(e) => {
                log::warn(&format!("job {job}: could not research {source}: {e}"));
                (format!("could not research {source}: {e}"), Vec::new())
            }
        };
        let tools: Vec<String> = tools
            .into_iter()
            .map(|(name, ok)| format!("{name} {}", if ok { "ok" } else { "failed" }))
            .collect();

        let report = |finding: &str| {
            json!({ "job": job, "source": source, "finding": finding, "tools": tools }).to_string()
        };
        let reply = match messaging::send(reply_to, &report(&finding)) {
            // Over the runtime's payload limit: hand over the start of it rather than nothing.
            Err(messaging::Error::TooLarge(e)) => {
                log::warn(&format!(
                    "job {job}: the finding on {source} is too large to send ({e}); sending its first {SHORT} bytes"
                ));
                messaging::send(reply_to, &report(prefix(&finding, SHORT)))
            }
            sent => sent,
        }
        .map_err(|e| format!("cannot hand the finding to {reply_to}: {e}"))?;
        Ok(Some(reply))
    }
}

/// How much of a finding too large to send is sent instead, in bytes.
const SHORT: usize = 64 * 1024;

/// The longest start of `text` of at most `max` bytes.
fn prefix(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

are_guest_sdk::export_agent!(Researcher);

//! `agent-writer`: turns a job's findings into a short report with the model, and replies with it.
//!
//! It gets `{"job": "job-1", "topic": "…", "findings": [{"source": "https://…", "finding": "…"}, …]}` (from the
//! coordinator, at `writer/<job>`) and replies with the report as plain text. It uses the model without tools:
//! everything it may say is in the findings.
//!
//! Its policy:
//!
//! ```toml
//! [agent.writer]
//! source = "agent_writer.wasm"
//! allow.llm = { model = "default", max_tokens = 8000, max_turns = 1 }
//! ```

use are_guest_sdk::agent::{Agent, llm};
use serde_json::Value;
use std::fmt::Write as _;

/// What the model is told to do.
const INSTRUCTIONS: &str = "You are a writer. From the findings you are given, write a short report on the \
    topic: a title line, then one paragraph of at most five sentences that cites each source by its URL. Use \
    nothing but the findings.";

struct Writer;

impl Agent for Writer {
    fn on_message(_from: String, payload: String) -> Result<Option<String>, String> {
        let request: Value =
            serde_json::from_str(&payload).map_err(|e| format!("payload is not JSON: {e}"))?;
        let topic = request["topic"]
            .as_str()
            .ok_or("a request needs a `topic`")?;
        let findings = request["findings"]
            .as_array()
            .ok_or("a request needs `findings`")?;

        let mut prompt = format!("Topic: {topic}\nFindings:\n");
        for f in findings {
            let source = f["source"].as_str().unwrap_or("(unknown source)");
            let text = f["finding"].as_str().unwrap_or_default();
            let _ = writeln!(prompt, "- {source}: {text}");
        }

        let answer = llm::Runner::new()
            .system(INSTRUCTIONS)
            .use_tools(false)
            .max_turns(1)
            .run(&prompt)
            .map_err(|e| format!("the model could not write the report: {e}"))?;
        Ok(Some(answer.text))
    }
}

are_guest_sdk::export_agent!(Writer);

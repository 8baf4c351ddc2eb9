//! `are run`: run the agents of a policy, resuming what a previous run left unfinished.

use anyhow::Context as _;
use are_agents::AgentRuntime;
use are_policy::Policy;
use std::path::PathBuf;
use std::process::ExitCode;

/// Run agents: `are run --policy are.toml --send writer/main "write about wasm" --until-idle`.
#[derive(clap::Args)]
pub struct Opts {
    /// The policy with `[agent.TYPE]` tables.
    #[arg(
        long = "policy",
        visible_alias = "config",
        value_name = "are.toml",
        default_value = "are.toml"
    )]
    config: PathBuf,
    /// Send a message from outside to agent TYPE/KEY (repeatable); its reply is printed.
    #[arg(long, num_args = 2, value_names = ["TYPE/KEY", "PAYLOAD"])]
    send: Vec<String>,
    /// Exit once every message is handled (otherwise run until Ctrl-C).
    #[arg(long)]
    until_idle: bool,
    /// Print replies as JSON lines `{"to", "message", "reply" | "error"}`.
    #[arg(long)]
    json: bool,
}

impl Opts {
    pub async fn run(self, globals: super::Globals) -> anyhow::Result<ExitCode> {
        let policy = Policy::load(&self.config)?;
        anyhow::ensure!(
            !policy.agents.is_empty(),
            "{} has no [agent.TYPE] table: there is no agent to run",
            self.config.display()
        );
        let host = globals.host()?;
        let runtime = AgentRuntime::start(&policy, &host)?;
        eprintln!(
            "are run: agents {} · model: {}",
            runtime.types().collect::<Vec<_>>().join(", "),
            runtime.llm().describe()
        );
        let resumed = runtime.resume()?;
        if resumed > 0 {
            eprintln!("are run: resuming {resumed} message(s) a previous run did not finish");
        }
        let mut replies = Vec::new();
        for pair in self.send.chunks(2) {
            let [to, payload] = pair else { continue };
            let (id, reply) = runtime
                .send(to, payload)
                .with_context(|| format!("cannot send to {to}"))?;
            replies.push((to.clone(), id, reply));
        }
        let mut failed = false;
        for (to, id, reply) in replies {
            let outcome = reply
                .await
                .unwrap_or_else(|_| Err("the runtime stopped before a reply".into()));
            failed |= outcome.is_err();
            if self.json {
                let line = match &outcome {
                    Ok(r) => serde_json::json!({ "to": to, "message": id, "reply": r }),
                    Err(e) => serde_json::json!({ "to": to, "message": id, "error": e }),
                };
                println!("{line}");
            } else {
                // Replies and errors are the agent's text: escaped, one line each.
                match outcome {
                    Ok(Some(reply)) => println!("{to}: {}", are_runtime::terminal::escape(&reply)),
                    Ok(None) => println!("{to}: (no reply)"),
                    Err(e) => println!("{to}: error: {}", are_runtime::terminal::escape(&e)),
                }
            }
        }
        if self.until_idle {
            runtime.until_idle().await;
        } else {
            eprintln!("are run: running; Ctrl-C to stop (unfinished messages resume next time)");
            let _ = tokio::signal::ctrl_c().await;
        }
        Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }
}

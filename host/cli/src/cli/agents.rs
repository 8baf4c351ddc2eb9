//! `are agents`: look into the agent store, read-only.

use are_agents::AgentId;
use are_agents::runtime_store_path;
use are_agents::store::{AgentStore as _, SqliteStore};
use are_policy::Policy;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Every agent the store knows: activations, messages handled and pending, memory used.
    List(Common),
    /// One agent: its record and its recent messages.
    Show {
        /// `type/key`.
        id: String,
        #[command(flatten)]
        common: Common,
        /// How many recent messages.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// One agent's memory.
    Memory {
        /// `type/key`.
        id: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(clap::Args)]
pub struct Common {
    /// The policy (its `[agents] store` locates the store).
    #[arg(
        long = "policy",
        visible_alias = "config",
        value_name = "are.toml",
        default_value = "are.toml"
    )]
    config: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl Common {
    fn open(&self) -> anyhow::Result<SqliteStore> {
        let policy = Policy::load(&self.config)?;
        let path = runtime_store_path(&policy);
        anyhow::ensure!(
            path.is_file(),
            "no agent store at {} yet: run the agents first (`are run`)",
            path.display()
        );
        Ok(SqliteStore::open_read_only(&path)?)
    }
}

impl Cmd {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Cmd::List(common) => {
                let agents = common.open()?.agents()?;
                if common.json {
                    println!("{}", serde_json::to_string_pretty(&agents)?);
                } else {
                    println!(
                        "{:<32} {:>11} {:>8} {:>8} {:>10}",
                        "agent", "activations", "handled", "pending", "memory"
                    );
                    for a in agents {
                        println!(
                            "{:<32} {:>11} {:>8} {:>8} {:>10}",
                            a.id, a.activations, a.handled, a.pending, a.memory_bytes
                        );
                    }
                }
            }
            Cmd::Show { id, common, limit } => {
                AgentId::parse(&id).map_err(anyhow::Error::msg)?;
                let store = common.open()?;
                let record = store.agents()?.into_iter().find(|a| a.id == id);
                let messages = store.messages(Some(&id), limit)?;
                if common.json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(
                            &serde_json::json!({ "agent": record, "messages": messages })
                        )?
                    );
                } else {
                    match record {
                        Some(a) => println!(
                            "{}: {} activations, {} handled, {} pending, {} bytes of memory",
                            a.id, a.activations, a.handled, a.pending, a.memory_bytes
                        ),
                        None => println!("{id}: not in the store"),
                    }
                    for m in messages {
                        let dir = if m.message.recipient == id {
                            "in "
                        } else {
                            "out"
                        };
                        println!(
                            "  {dir} {:<8} {} {} → {}: {}",
                            format!("{:?}", m.status).to_lowercase(),
                            m.message.id,
                            m.message.sender,
                            m.message.recipient,
                            preview(&m.message.payload)
                        );
                    }
                }
            }
            Cmd::Memory { id, common } => {
                AgentId::parse(&id).map_err(anyhow::Error::msg)?;
                let memory = common.open()?.memory_all(&id)?;
                if common.json {
                    let map: serde_json::Map<String, serde_json::Value> =
                        memory.into_iter().map(|(k, v)| (k, v.into())).collect();
                    println!("{}", serde_json::to_string_pretty(&map)?);
                } else {
                    for (k, v) in memory {
                        println!("{k} = {}", preview(&v));
                    }
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn preview(text: &str) -> String {
    let one_line = text.replace('\n', " ");
    match one_line.char_indices().nth(100) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

//! `are policy check`: parse and validate a policy, and check every component it names.

use are::component::{read_component, sha256, verify_pin};
use are::policy::Policy;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Validate a policy: syntax, unknown keys, values, mounts, and each component's source and pin.
    Check {
        /// The policy file.
        #[arg(default_value = "are.toml")]
        file: PathBuf,
    },
}

impl Cmd {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let Cmd::Check { file } = self;
        let policy = Policy::load(&file)?;
        let mut problems = 0;
        for (name, component) in &policy.components {
            let path = policy.source_path(component);
            match read_component(&path) {
                Err(e) => {
                    problems += 1;
                    eprintln!("error: component `{name}`: {e}");
                }
                Ok(bytes) => {
                    if let Err(e) = verify_pin(&path, &sha256(&bytes), component.sha256.as_ref()) {
                        problems += 1;
                        eprintln!("error: component `{name}`: {e}");
                    }
                }
            }
        }
        if problems > 0 {
            eprintln!("{}: {problems} problem(s)", file.display());
            return Ok(ExitCode::FAILURE);
        }
        println!(
            "{}: ok, {} component(s)",
            file.display(),
            policy.components.len()
        );
        Ok(ExitCode::SUCCESS)
    }
}

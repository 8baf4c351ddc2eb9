//! `are cache`: where precompiled components live, and clearing them.

use are_policy::common::fmt_bytes;
use are_runtime::cache::CompileCache;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Remove every precompiled component and every downloaded remote source.
    Clear,
    /// Print the cache directory (`$ARE_CACHE_DIR`, else the user cache dir).
    Dir,
}

impl Cmd {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let cache = CompileCache::from_env();
        match self {
            Cmd::Clear => {
                let cleared = cache.clear()?;
                println!(
                    "removed {} cached component(s) and {} downloaded source(s), {} freed, from {}",
                    cleared.files,
                    cleared.sources,
                    fmt_bytes(cleared.bytes),
                    cache.dir().display()
                );
            }
            Cmd::Dir => println!("{}", cache.dir().display()),
        }
        Ok(ExitCode::SUCCESS)
    }
}

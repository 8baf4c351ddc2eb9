//! `are build`: compile a guest crate to a component and embed its WIT docs.

use anyhow::Context as _;
use are::describe::embed_wit_docs;
use are::guest_build::{build_components, ensure_wasm_target};
use are::invoke::fmt_bytes;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Build a guest crate: `are build [DIR]`.
#[derive(clap::Args)]
pub struct Opts {
    /// The crate (or workspace) directory; it must contain Cargo.toml, and each component crate a `wit/` folder.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Cargo target directory (default: `DIR/target`).
    #[arg(long)]
    target_dir: Option<PathBuf>,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let manifest = self.dir.join("Cargo.toml");
        anyhow::ensure!(
            manifest.is_file(),
            "no Cargo.toml in {}; pass the directory of a guest crate (`are new tool NAME` creates one)",
            self.dir.display()
        );
        ensure_wasm_target()?;
        let target_dir = self
            .target_dir
            .clone()
            .unwrap_or_else(|| self.dir.join("target"));
        let built = build_components(&manifest, &target_dir, None)?;
        anyhow::ensure!(
            !built.is_empty(),
            "cargo built no component in {}: is the crate-type `cdylib`?",
            self.dir.display()
        );
        for component in built {
            let size = finish(&component.wasm, &component.manifest_dir)?;
            println!(
                "{}  {}  ({})",
                component.package,
                component.wasm.display(),
                fmt_bytes(size)
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Embed the crate's WIT docs into the built component, in place. Returns the final size.
pub fn finish(wasm: &Path, crate_dir: &Path) -> anyhow::Result<u64> {
    let wit = crate_dir.join("wit");
    if !wit.is_dir() {
        return Ok(std::fs::metadata(wasm)?.len());
    }
    let bytes = std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    let with_docs = embed_wit_docs(&bytes, &wit)
        .with_context(|| format!("cannot embed the WIT docs of {}", wit.display()))?;
    let tmp = wasm.with_extension("wasm.tmp");
    std::fs::write(&tmp, &with_docs).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, wasm).with_context(|| format!("cannot replace {}", wasm.display()))?;
    Ok(with_docs.len() as u64)
}

//! `are build`: compile a guest crate to a component and embed its WIT docs.

use anyhow::Context as _;
use are_build::{BuiltComponent, build_components, ensure_wasm_target};
use are_policy::common::fmt_bytes;
use are_runtime::describe::embed_wit_docs;
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
            let (path, size) = finish(&component, &target_dir)?;
            println!(
                "{}  {}  ({})",
                component.package,
                path.display(),
                fmt_bytes(size)
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Write the finished component, with the crate's WIT docs embedded when it has a `wit/` folder, to
/// `TARGET/components/PACKAGE.wasm` (cargo's own artifact is left as it is). Returns the path and size.
pub fn finish(component: &BuiltComponent, target_dir: &Path) -> anyhow::Result<(PathBuf, u64)> {
    let wasm = &component.wasm;
    let bytes = std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    let wit = component.manifest_dir.join("wit");
    let finished = if wit.is_dir() {
        embed_wit_docs(&bytes, &wit)
            .with_context(|| format!("cannot embed the WIT docs of {}", wit.display()))?
    } else {
        bytes
    };
    let dir = target_dir.join("components");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{}.wasm", component.package));
    let tmp = path.with_extension("wasm.tmp");
    std::fs::write(&tmp, &finished).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok((path, finished.len() as u64))
}

//! `allow.fs`: host directories mounted into the guest, read-only or read-write.
//!
//! Mounts are WASI preopens backed by `cap-std`: paths are resolved inside the mounted directory, so `..`,
//! absolute paths and symlinks that lead out of a mount are refused by the host, whatever the guest asks for.
//! Without a mount the guest sees no filesystem at all.
//!
//! ```toml
//! allow.fs = [{ host = "./data", guest = "/data", mode = "ro" }]
//! ```

use super::Capability;
use crate::policy::{PolicyError, SourceText};
use crate::sandbox::{HostState, InstanceBuilder};
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::path::Path;
use toml::Spanned;
use wasmtime::component::Linker;
use wasmtime_wasi::FsPerms;
use wasmtime_wasi::filesystem::WasiFilesystem;
use wasmtime_wasi::p2::bindings::filesystem;

/// The mounts granted to a component.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct FsGrant(pub Vec<Mount>);

/// One host directory made visible to the guest.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    /// Host directory, relative to the policy file.
    pub host: Spanned<String>,
    /// Absolute path the guest uses, e.g. `/data`.
    pub guest: Spanned<String>,
    /// `ro` (default) or `rw`.
    #[serde(default)]
    pub mode: Mode,
}

/// Whether a mount may be written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Read files and list directories.
    #[default]
    Ro,
    /// Also create, write, rename and delete.
    Rw,
}

impl Capability for FsGrant {
    fn name(&self) -> &'static str {
        "fs"
    }

    fn is_granted(&self) -> bool {
        !self.0.is_empty()
    }

    fn entries(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|m| {
                let mode = match m.mode {
                    Mode::Ro => "ro",
                    Mode::Rw => "rw",
                };
                format!("{} -> {} ({mode})", m.host.get_ref(), m.guest.get_ref())
            })
            .collect()
    }

    fn validate(&self, base_dir: &Path, source: &SourceText) -> Result<(), PolicyError> {
        let mut seen = std::collections::BTreeSet::new();
        for mount in &self.0 {
            let host = base_dir.join(mount.host.get_ref());
            if !host.is_dir() {
                return Err(source.error(
                    mount.host.span(),
                    format!(
                        "mount host directory {} does not exist or is not a directory; create it or fix `host`",
                        host.display()
                    ),
                ));
            }
            let guest = mount.guest.get_ref();
            if !guest.starts_with('/') || guest.split('/').any(|part| part == ".." || part == ".") {
                return Err(source.error(
                    mount.guest.span(),
                    format!("mount guest path {guest:?} must be absolute and without `.` or `..`, e.g. \"/data\""),
                ));
            }
            if !seen.insert(guest.trim_end_matches('/')) {
                return Err(source.error(
                    mount.guest.span(),
                    format!("guest path {guest:?} is mounted twice"),
                ));
            }
        }
        Ok(())
    }

    fn link(&self, linker: &mut Linker<HostState>) -> wasmtime::Result<&'static [&'static str]> {
        // Linked even without a mount: the guest then sees an empty list of preopens and cannot name a file.
        filesystem::types::add_to_linker::<HostState, WasiFilesystem>(linker, |s| {
            wasmtime_wasi::filesystem::WasiFilesystemView::filesystem(s)
        })?;
        filesystem::preopens::add_to_linker::<HostState, WasiFilesystem>(linker, |s| {
            wasmtime_wasi::filesystem::WasiFilesystemView::filesystem(s)
        })?;
        Ok(&["wasi:filesystem/types", "wasi:filesystem/preopens"])
    }

    fn prepare(&self, builder: &mut InstanceBuilder) -> anyhow::Result<()> {
        for mount in &self.0 {
            let host = builder.base_dir.join(mount.host.get_ref());
            let perms = match mount.mode {
                Mode::Ro => FsPerms::ReadOnly,
                Mode::Rw => FsPerms::ReadWrite,
            };
            builder
                .wasi
                .preopened_dir(&host, mount.guest.get_ref(), perms)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!(
                        "cannot mount {} at {}",
                        host.display(),
                        mount.guest.get_ref()
                    )
                })?;
        }
        Ok(())
    }
}

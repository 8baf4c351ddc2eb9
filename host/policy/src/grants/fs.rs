//! `allow.fs`: host directories mounted into the guest, read-only or read-write.
//!
//! Mounts are WASI preopens backed by `cap-std`: paths are resolved inside the mounted directory, so `..`,
//! absolute paths and symlinks that lead out of a mount are refused by the host, whatever the guest asks for.
//! Without a mount the guest sees no filesystem at all.
//!
//! Every `open-at` is counted against `limits.open_files` until the file it opened is closed (see
//! `are_runtime::descriptors`); one past the limit fails with `insufficient-memory`.
//!
//! With an audit trail, every `open-at` (how a guest opens any file or directory, reads and writes included) is
//! recorded as an `fs.open` event with the guest path, the mode asked for and the outcome, refusals included
//! (a refusal by a descriptor limit carries its `reason`); see `are_runtime::audit`. Path operations that open nothing (`stat-at`, `readlink-at`, `create-directory-at`,
//! `rename-at`, `unlink-file-at`, …) are not recorded.
//!
//! ```toml
//! allow.fs = [
//!     { host = "./data", guest = "/data", mode = "ro" },
//!     { host = "./out", guest = "/out", mode = "rw", quota = "10 MiB" },
//! ]
//! ```
//!
//! An `rw` mount may take a `quota`: writes that would bring the bytes of the files under its host directory past
//! it fail with `insufficient-space`, as on a full disk (see `are_runtime::caps::fs::quota` for exactly what is counted, and when).
//!
//! A policy is refused when it is ambiguous about what a guest may write: two mounts of one component (or agent)
//! whose host directories overlap (one is, or is inside, the other, after symlinks are resolved) must have the same
//! mode, since a `ro` mount inside an `rw` one could be written through the outer mount; a mount with a `quota`
//! must not overlap another mount at all, since writes through the other would not be counted; and the audit
//! file must not be inside any `rw` mount, or a guest could rewrite the trail of its own calls. Mounts of
//! different components may overlap: that is how components share files.

use super::Grant;
use crate::capability::CapabilityKind;
use crate::{PolicyError, Size, SourceText};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The mounts granted to a component.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct FsGrant(pub Vec<Mount>);

/// One host directory made visible to the guest.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
// Only an `rw` mount takes a `quota`.
#[schemars(extend(
    "if" = { "properties": { "mode": { "const": "rw" } }, "required": ["mode"] },
    "else" = { "not": { "required": ["quota"] } },
))]
pub struct Mount {
    /// Host directory, relative to the policy file; it must exist.
    #[schemars(with = "String")]
    pub host: Spanned<String>,
    /// Absolute path the guest uses, e.g. `/data`, without `.` or `..` segments.
    #[schemars(with = "String", extend("pattern" = "^/"))]
    pub guest: Spanned<String>,
    /// `ro` (default) or `rw`.
    #[serde(default)]
    pub mode: Mode,
    /// For an `rw` mount, the most bytes the files under `host` may hold, e.g. `"10 MiB"`: a write that would
    /// pass it fails with `insufficient-space`. Unlimited when absent.
    #[serde(default)]
    #[schemars(with = "Option<Size>")]
    pub quota: Option<Spanned<Size>>,
}

/// Whether a mount may be written.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Read files and list directories.
    #[default]
    Ro,
    /// Also create, write, rename and delete.
    Rw,
}

impl Mode {
    /// `ro` or `rw`, as written in a policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Ro => "ro",
            Mode::Rw => "rw",
        }
    }
}

impl FsGrant {
    /// The first `rw` mount whose host directory holds `path` (or is it), both resolved against `base_dir` with
    /// symlinks followed as far as they exist.
    pub fn rw_mount_holding(&self, base_dir: &Path, path: &Path) -> Option<&Mount> {
        let path = resolve_existing(&base_dir.join(path));
        self.0.iter().find(|m| {
            m.mode == Mode::Rw
                && path.starts_with(resolve_existing(&base_dir.join(m.host.get_ref())))
        })
    }
}

/// `path` with its longest existing ancestor canonicalized (symlinks resolved) and the rest appended as written.
fn resolve_existing(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut existing = path;
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            return rest.iter().rev().fold(real, |acc, part| acc.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = if parent.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    parent
                };
            }
            _ => return path.to_path_buf(),
        }
    }
}

impl Grant for FsGrant {
    fn kind(&self) -> CapabilityKind {
        CapabilityKind::Fs
    }

    fn is_granted(&self) -> bool {
        !self.0.is_empty()
    }

    fn entries(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|m| {
                let quota = m.quota.as_ref().map_or(String::new(), |q| {
                    format!(", quota {}", bytesize::ByteSize(q.get_ref().0))
                });
                format!(
                    "{} -> {} ({}{quota})",
                    m.host.get_ref(),
                    m.guest.get_ref(),
                    m.mode.as_str()
                )
            })
            .collect()
    }

    fn validate(&self, base_dir: &Path, source: &SourceText) -> Result<(), PolicyError> {
        let mut seen = std::collections::BTreeSet::new();
        let mut resolved: Vec<(&Mount, PathBuf)> = Vec::with_capacity(self.0.len());
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
            if let Some(quota) = &mount.quota
                && mount.mode == Mode::Ro
            {
                return Err(source.error(
                    quota.span(),
                    "`quota` limits writes and a `ro` mount has none: remove it, or make the mount `rw`",
                ));
            }
            let real = std::fs::canonicalize(&host).map_err(|e| {
                source.error(
                    mount.host.span(),
                    format!(
                        "cannot resolve mount host directory {}: {e}",
                        host.display()
                    ),
                )
            })?;
            for (other, other_real) in &resolved {
                if !(real.starts_with(other_real) || other_real.starts_with(&real)) {
                    continue;
                }
                let (line, column) = source.line_column(other.host.span());
                let both = format!(
                    "mount {:?} ({}) overlaps mount {:?} ({}) at {line}:{column}",
                    mount.host.get_ref(),
                    mount.mode.as_str(),
                    other.host.get_ref(),
                    other.mode.as_str()
                );
                if mount.mode != other.mode {
                    return Err(source.error(
                        mount.host.span(),
                        format!(
                            "{both}: the files they share would be both read-only and writable (a `ro` mount \
                             inside an `rw` one can be written through the outer one); give them the same mode, \
                             or mount directories that do not overlap"
                        ),
                    ));
                }
                if mount.quota.is_some() || other.quota.is_some() {
                    return Err(source.error(
                        mount.host.span(),
                        format!(
                            "{both}, and one has a `quota`: writes through the other would not count against \
                             it; mount directories that do not overlap"
                        ),
                    ));
                }
            }
            resolved.push((mount, real));
        }
        Ok(())
    }
}

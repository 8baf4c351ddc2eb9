//! `allow.fs`: host directories mounted into the guest, read-only or read-write.
//!
//! Mounts are WASI preopens backed by `cap-std`: paths are resolved inside the mounted directory, so `..`,
//! absolute paths and symlinks that lead out of a mount are refused by the host, whatever the guest asks for.
//! Without a mount the guest sees no filesystem at all.
//!
//! Every `open-at` is counted against `limits.open_files` until the file it opened is closed (see
//! [`crate::descriptors`]); one past the limit fails with `insufficient-memory`.
//!
//! With an audit trail, every `open-at` (how a guest opens any file or directory, reads and writes included) is
//! recorded as an `fs.open` event with the guest path, the mode asked for and the outcome, refusals included
//! (a refusal by a descriptor limit carries its `reason`); see [`crate::audit`]. Path operations that open nothing (`stat-at`, `readlink-at`, `create-directory-at`,
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
//! it fail with `insufficient-space`, as on a full disk (see [`quota`] for exactly what is counted, and when).
//!
//! A policy is refused when it is ambiguous about what a guest may write: two mounts of one component (or agent)
//! whose host directories overlap (one is, or is inside, the other, after symlinks are resolved) must have the same
//! mode, since a `ro` mount inside an `rw` one could be written through the outer mount; a mount with a `quota`
//! must not overlap another mount at all, since writes through the other would not be counted; and the audit
//! file must not be inside any `rw` mount, or a guest could rewrite the trail of its own calls. Mounts of
//! different components may overlap: that is how components share files.

pub mod quota;

use super::{PrepareError, Provide};
use crate::descriptors::OpenFiles;
use crate::sandbox::{HostState, InstanceBuilder};
use are_policy::grants::fs::{FsGrant, Mode};
use std::collections::HashMap;
use std::sync::Arc;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::FsPerms;
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystem, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::filesystem;
use wasmtime_wasi::p2::bindings::filesystem::preopens::Host as Preopens;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    DescriptorFlags, ErrorCode, HostDescriptor, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::{FsError, FsResult};

/// The fs capability's state in one instance.
pub struct FsState {
    /// The mounts with a quota, and what their directories hold.
    pub quotas: quota::Quotas,
    /// Files the guest holds open (`limits.open_files`).
    pub(crate) open_files: OpenFiles,
}

impl FsState {
    /// No quotas yet, and room for `open_files` open files.
    pub fn new(open_files: usize) -> FsState {
        FsState {
            quotas: quota::Quotas::default(),
            open_files: OpenFiles::new(open_files),
        }
    }
}

impl Provide for FsGrant {
    fn link(&self, linker: &mut Linker<HostState>) -> wasmtime::Result<&'static [&'static str]> {
        // Linked even without a mount: the guest then sees an empty list of preopens and cannot name a file.
        filesystem::types::add_to_linker::<HostState, WasiFilesystem>(linker, |s| {
            wasmtime_wasi::filesystem::WasiFilesystemView::filesystem(s)
        })?;
        filesystem::preopens::add_to_linker::<HostState, WasiFilesystem>(linker, |s| {
            wasmtime_wasi::filesystem::WasiFilesystemView::filesystem(s)
        })?;
        let quotas = self.0.iter().any(|m| m.quota.is_some());
        linker.allow_shadowing(true);
        let shadowed = shadow_opens(linker).and_then(|()| {
            if quotas {
                shadow_writes(linker)
            } else {
                Ok(())
            }
        });
        linker.allow_shadowing(false);
        shadowed?;
        Ok(&["wasi:filesystem/types", "wasi:filesystem/preopens"])
    }

    fn prepare(&self, builder: &mut InstanceBuilder) -> Result<(), PrepareError> {
        for mount in &self.0 {
            let host = builder.base_dir.join(mount.host.get_ref());
            let perms = match mount.mode {
                Mode::Ro => FsPerms::ReadOnly,
                Mode::Rw => FsPerms::ReadWrite,
            };
            if let Some(quota) = &mount.quota {
                builder
                    .fs
                    .quotas
                    .mount(&host, mount.guest.get_ref(), quota.get_ref().0)?;
            }
            builder
                .wasi
                .preopened_dir(&host, mount.guest.get_ref(), perms)
                .map_err(|e| PrepareError::Mount {
                    host: host.clone(),
                    guest: mount.guest.get_ref().clone(),
                    reason: format!("{e:#}"),
                })?;
        }
        Ok(())
    }
}

/// The version of `wasi:filesystem` that `add_to_linker` defines; 0.2.x imports resolve to it.
const TYPES: &str = "wasi:filesystem/types@0.2.12";
/// See [`TYPES`].
const PREOPENS: &str = "wasi:filesystem/preopens@0.2.12";

/// Replace `descriptor.open-at` and `get-directories` with versions that count open files against
/// `limits.open_files`, record `fs.open` events when the instance has an audit trail, and note which mount each
/// descriptor is in when it has a quota. Without an audit trail or a quota they call the wasmtime-wasi
/// implementations straight after the count and two checks.
fn shadow_opens(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker
        .instance(PREOPENS)?
        .func_wrap("get-directories", |mut store, (): ()| {
            let state = store.data_mut();
            let dirs = Preopens::get_directories(&mut state.filesystem())?;
            if !state.fs.quotas.is_empty() {
                for (fd, name) in &dirs {
                    state.fs.quotas.preopened(fd.rep(), name);
                }
            }
            if state.audit.is_some() {
                let paths = guest_paths(&mut state.table)?;
                for (fd, name) in &dirs {
                    paths.0.insert(fd.rep(), name.as_str().into());
                }
            }
            Ok((dirs,))
        })?;
    linker.instance(TYPES)?.func_wrap_async(
        "[method]descriptor.open-at",
        |mut store,
         (fd, path_flags, path, oflags, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            Box::new(async move {
                let reserved = store.data_mut().fs.open_files.reserve();
                let Some(audit) = store.data().audit.clone() else {
                    let permit = match reserved {
                        Ok(permit) => permit,
                        Err(refusal) => return Ok((Err(refused_open(&path, refusal)),)),
                    };
                    let state = store.data_mut();
                    let opened =
                        wit_result(open_at(state, fd, path_flags, path, oflags, flags).await)?;
                    track_opened(state, &opened, permit)?;
                    return Ok((opened,));
                };
                let state = store.data_mut();
                let base = guest_paths(&mut state.table)?
                    .0
                    .get(&fd.rep())
                    .cloned()
                    .unwrap_or_else(|| "?".into());
                let guest_path = join_guest_path(&base, &path);
                let mode = open_mode(oflags, flags);
                let permit = match reserved {
                    Ok(permit) => permit,
                    Err(refusal) => {
                        let detail = serde_json::json!({
                            "path": guest_path, "mode": mode, "reason": refusal.reason(),
                        });
                        audit.record("fs.open", "denied", detail);
                        return Ok((Err(refused_open(&path, refusal)),));
                    }
                };
                let opened = open_at(state, fd, path_flags, path, oflags, flags).await;
                let opened = match opened {
                    Ok(fd) => Ok(fd),
                    Err(e) => match e.downcast() {
                        Ok(code) => Err(code),
                        Err(trap) => {
                            let detail = serde_json::json!({ "path": guest_path, "mode": mode });
                            audit.record("fs.open", "error:trap", detail);
                            return Err(trap);
                        }
                    },
                };
                track_opened(state, &opened, permit)?;
                let mut detail = serde_json::json!({ "path": guest_path, "mode": mode });
                let outcome = match &opened {
                    Ok(new) => {
                        let kind = match state.table.get(new)? {
                            Descriptor::File(_) => "file",
                            Descriptor::Dir(_) => "dir",
                        };
                        detail["kind"] = kind.into();
                        guest_paths(&mut state.table)?
                            .0
                            .insert(new.rep(), guest_path.into());
                        "ok".to_string()
                    }
                    Err(code) => {
                        detail["error"] = code.name().into();
                        match code {
                            ErrorCode::NotPermitted | ErrorCode::Access => "denied".to_string(),
                            other => format!("error:{}", other.name().replace('-', "_")),
                        }
                    }
                };
                audit.record("fs.open", &outcome, detail);
                Ok((opened,))
            })
        },
    )?;
    Ok(())
}

/// `open-at`, keeping quotas: a new descriptor is in its parent's mount, and in a mount with a quota a truncating
/// open for writing truncates after opening, here, so that the bytes it frees are given back to the quota.
async fn open_at(
    state: &mut HostState,
    fd: Resource<Descriptor>,
    path_flags: PathFlags,
    path: String,
    oflags: OpenFlags,
    flags: DescriptorFlags,
) -> FsResult<Resource<Descriptor>> {
    if state.fs.quotas.is_empty() {
        return HostDescriptor::open_at(
            &mut state.filesystem(),
            fd,
            path_flags,
            path,
            oflags,
            flags,
        )
        .await;
    }
    let parent = fd.rep();
    let truncating =
        state.fs.quotas.of(parent).filter(|_| {
            oflags.contains(OpenFlags::TRUNCATE) && flags.contains(DescriptorFlags::WRITE)
        });
    let oflags = match truncating {
        Some(_) => oflags & !OpenFlags::TRUNCATE,
        None => oflags,
    };
    let new = HostDescriptor::open_at(&mut state.filesystem(), fd, path_flags, path, oflags, flags)
        .await?;
    state.fs.quotas.opened(parent, new.rep());
    if let Some(limited) = truncating {
        let file = Resource::new_borrow(new.rep());
        let truncated = quota::set_size(&mut state.filesystem(), &limited, file, 0)
            .await
            .map_err(FsError::trap)?;
        if let Err(code) = truncated {
            state.table.delete(new)?;
            return Err(code.into());
        }
    }
    Ok(new)
}

/// Replace the `descriptor` methods that can add bytes to a mount (`write`, `set-size`, `write-via-stream`,
/// `append-via-stream`) or carry them in from another mount (`rename-at`, `link-at`) with versions that hold
/// writes to the mount's quota (see [`quota`]). Linked only for a grant with a quota; a descriptor outside every
/// mount with a quota goes straight to wasmtime-wasi after one map lookup.
fn shadow_writes(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let mut types = linker.instance(TYPES)?;
    types.func_wrap_async(
        "[method]descriptor.write",
        |mut store, (fd, buf, offset): (Resource<Descriptor>, Vec<u8>, u64)| {
            Box::new(async move {
                let state = store.data_mut();
                let Some(limited) = state.fs.quotas.of(fd.rep()) else {
                    let written =
                        HostDescriptor::write(&mut state.filesystem(), fd, buf, offset).await;
                    return Ok((wit_result(written)?,));
                };
                let reserved = match quota::reserve_write(
                    &state.table,
                    &limited,
                    &fd,
                    offset,
                    buf.len() as u64,
                )? {
                    Ok(reserved) => reserved,
                    Err(code) => return Ok((Err(code),)),
                };
                let written = wit_result(
                    HostDescriptor::write(&mut state.filesystem(), fd, buf, offset).await,
                )?;
                quota::settle_write(&limited, reserved, written.as_ref().ok().copied());
                Ok((written,))
            })
        },
    )?;
    types.func_wrap_async(
        "[method]descriptor.set-size",
        |mut store, (fd, size): (Resource<Descriptor>, u64)| {
            Box::new(async move {
                let state = store.data_mut();
                let Some(limited) = state.fs.quotas.of(fd.rep()) else {
                    let resized = HostDescriptor::set_size(&mut state.filesystem(), fd, size).await;
                    return Ok((wit_result(resized)?,));
                };
                Ok((quota::set_size(&mut state.filesystem(), &limited, fd, size).await?,))
            })
        },
    )?;
    types.func_wrap(
        "[method]descriptor.write-via-stream",
        |mut store, (fd, offset): (Resource<Descriptor>, u64)| {
            let state = store.data_mut();
            let limited = state.fs.quotas.of(fd.rep());
            let size = match &limited {
                Some(_) => Some(quota::file_size(&state.table, &fd)?),
                None => None,
            };
            let stream = wit_result(HostDescriptor::write_via_stream(
                &mut state.filesystem(),
                fd,
                offset,
            ))?;
            match (stream, limited, size) {
                (Ok(stream), Some(limited), Some(size)) => Ok((Ok(quota::limit_stream(
                    &mut state.table,
                    stream,
                    limited,
                    Some((offset, size)),
                )?),)),
                (stream, _, _) => Ok((stream,)),
            }
        },
    )?;
    types.func_wrap(
        "[method]descriptor.append-via-stream",
        |mut store, (fd,): (Resource<Descriptor>,)| {
            let state = store.data_mut();
            let limited = state.fs.quotas.of(fd.rep());
            let stream = wit_result(HostDescriptor::append_via_stream(
                &mut state.filesystem(),
                fd,
            ))?;
            match (stream, limited) {
                (Ok(stream), Some(limited)) => Ok((Ok(quota::limit_stream(
                    &mut state.table,
                    stream,
                    limited,
                    None,
                )?),)),
                (stream, _) => Ok((stream,)),
            }
        },
    )?;
    types.func_wrap_async(
        "[method]descriptor.rename-at",
        |mut store,
         (fd, old_path, new_fd, new_path): (
            Resource<Descriptor>,
            String,
            Resource<Descriptor>,
            String,
        )| {
            Box::new(async move {
                let state = store.data_mut();
                if state.fs.quotas.crosses(fd.rep(), new_fd.rep()) {
                    return Ok((Err(ErrorCode::CrossDevice),));
                }
                let renamed = HostDescriptor::rename_at(
                    &mut state.filesystem(),
                    fd,
                    old_path,
                    new_fd,
                    new_path,
                )
                .await;
                Ok((wit_result(renamed)?,))
            })
        },
    )?;
    types.func_wrap_async(
        "[method]descriptor.link-at",
        |mut store,
         (fd, old_flags, old_path, new_fd, new_path): (
            Resource<Descriptor>,
            PathFlags,
            String,
            Resource<Descriptor>,
            String,
        )| {
            Box::new(async move {
                let state = store.data_mut();
                if state.fs.quotas.crosses(fd.rep(), new_fd.rep()) {
                    return Ok((Err(ErrorCode::CrossDevice),));
                }
                let linked = HostDescriptor::link_at(
                    &mut state.filesystem(),
                    fd,
                    old_flags,
                    old_path,
                    new_fd,
                    new_path,
                )
                .await;
                Ok((wit_result(linked)?,))
            })
        },
    )?;
    Ok(())
}

/// Count a file or directory the guest just opened against `limits.open_files`, for as long as its host
/// descriptor stays open (streams share it); a failed open gives the room back.
fn track_opened(
    state: &mut HostState,
    opened: &Result<Resource<Descriptor>, ErrorCode>,
    permit: crate::descriptors::ProcessPermit,
) -> wasmtime::Result<()> {
    if let Ok(new) = opened {
        let file = match state.table.get(new)? {
            Descriptor::File(f) => &f.file,
            Descriptor::Dir(d) => &d.dir,
        };
        let file = file.clone();
        state.fs.open_files.track(&file, permit);
    }
    Ok(())
}

/// Log an `open-at` refused by a descriptor limit, and the error the guest gets for it: there is no "too many
/// open files" in `wasi:filesystem`, and `insufficient-memory` (ENOMEM) is the resource shortage it has.
fn refused_open(path: &str, refusal: crate::descriptors::Refusal) -> ErrorCode {
    let path = crate::audit::truncate(path.to_string(), crate::audit::MAX_FIELD);
    tracing::info!(%path, "open refused: {refusal}");
    ErrorCode::InsufficientMemory
}

/// A filesystem result as the guest sees it: an error code, or a trap.
fn wit_result<T>(result: FsResult<T>) -> wasmtime::Result<Result<T, ErrorCode>> {
    match result {
        Ok(v) => Ok(Ok(v)),
        Err(e) => e.downcast().map(Err),
    }
}

/// The guest path of every descriptor an audited instance was given, by table index. It lives in the instance's
/// own resource table, so it goes away with the instance. Entries of dropped descriptors stay until their index
/// is reused by another descriptor; every descriptor comes from `get-directories` or `open-at`, which both set
/// theirs, so a live descriptor's entry is always its own.
#[derive(Default)]
struct GuestPaths(HashMap<u32, Arc<str>>);

/// This instance's [`GuestPaths`], created on first use. It is pushed when the guest first asks for its
/// preopens, early in its life, so the search (which stops at it) looks at few entries.
fn guest_paths(table: &mut ResourceTable) -> wasmtime::Result<&mut GuestPaths> {
    if !table.iter_mut().any(|e| e.is::<GuestPaths>()) {
        table.push(GuestPaths::default())?;
    }
    table
        .iter_mut()
        .find_map(|e| e.downcast_mut::<GuestPaths>())
        .ok_or_else(|| wasmtime::format_err!("the audit's guest paths vanished from the table"))
}

/// The guest path `rel` names from the directory at guest path `base`, as asked for (not normalized, so that an
/// attempt to climb out with `..` shows in the record). Very long paths are cut.
fn join_guest_path(base: &str, rel: &str) -> String {
    let joined = match rel {
        "" | "." => base.to_string(),
        _ if base.ends_with('/') => format!("{base}{rel}"),
        _ => format!("{base}/{rel}"),
    };
    crate::audit::truncate(joined, crate::audit::MAX_FIELD)
}

/// What an `open-at` asks for: `read`, `write`, `create`, `exclusive`, `truncate`, `directory`,
/// `mutate-directory`.
fn open_mode(oflags: OpenFlags, flags: DescriptorFlags) -> Vec<&'static str> {
    let mut mode = Vec::new();
    if flags.contains(DescriptorFlags::READ) {
        mode.push("read");
    }
    if flags.contains(DescriptorFlags::WRITE) {
        mode.push("write");
    }
    if oflags.contains(OpenFlags::CREATE) {
        mode.push("create");
    }
    if oflags.contains(OpenFlags::EXCLUSIVE) {
        mode.push("exclusive");
    }
    if oflags.contains(OpenFlags::TRUNCATE) {
        mode.push("truncate");
    }
    if oflags.contains(OpenFlags::DIRECTORY) {
        mode.push("directory");
    }
    if flags.contains(DescriptorFlags::MUTATE_DIRECTORY) {
        mode.push("mutate-directory");
    }
    mode
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_paths_join_as_asked() {
        assert_eq!(join_guest_path("/data", "a/b.txt"), "/data/a/b.txt");
        assert_eq!(join_guest_path("/", "etc"), "/etc");
        assert_eq!(join_guest_path("/data", "."), "/data");
        assert_eq!(
            join_guest_path("/data", "../../etc/passwd"),
            "/data/../../etc/passwd"
        );
    }

    #[test]
    fn open_modes_name_every_flag_asked_for() {
        assert_eq!(
            open_mode(
                OpenFlags::CREATE | OpenFlags::TRUNCATE,
                DescriptorFlags::WRITE
            ),
            ["write", "create", "truncate"]
        );
        assert_eq!(
            open_mode(OpenFlags::DIRECTORY, DescriptorFlags::READ),
            ["read", "directory"]
        );
    }
}

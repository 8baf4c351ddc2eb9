//! Build guest crates (tools and agents written in Rust) to WebAssembly components.
//!
//! Guests build with an ordinary `cargo build --release --target wasm32-wasip2`: wit-bindgen and the linker
//! that ships with the target emit a component directly. This module runs that build, streams the compiler's
//! diagnostics to stderr unchanged, and collects the `.wasm` files from cargo's JSON messages.
//!
//! This crate is the one implementation of that build, used by `are build` and `are demo` (are-cli), by
//! `are bench` (are-bench), and by the build script of the test fixtures (`tests/build.rs`), which builds the
//! example tools before the integration tests. It depends on `std` and `serde_json` only.

use std::ffi::OsStr;
use std::fmt;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use serde_json::Value;

/// The Rust target guests are compiled for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// Environment variables that must not reach a nested cargo, because they describe the outer build.
///
/// Cargo sets most of them for build scripts; a nested build would otherwise compile the guests with the
/// host's compiler flags (`CARGO_ENCODED_RUSTFLAGS`, `RUSTFLAGS`), through clippy (`RUSTC_WORKSPACE_WRAPPER`
/// under `cargo clippy`), into the outer build's directories (`CARGO_TARGET_DIR`, `CARGO_BUILD_BUILD_DIR`,
/// whose lock the outer build holds), or link build scripts with the host's linker (`RUSTC_LINKER`).
const STRIPPED_ENV: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_BUILD_DIR",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_LINKER",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "OUT_DIR",
    "TARGET",
    "HOST",
    "PROFILE",
    "OPT_LEVEL",
    "DEBUG",
    "NUM_JOBS",
];

/// Prefixes of variables cargo sets per build script. The nested cargo sets its own for each guest build
/// script but does not clear ours, so a host-only `CARGO_CFG_UNIX` or `CARGO_FEATURE_STD` would leak into them.
/// `__CARGO` covers cargo's internal switches (`__CARGO_FIX_PLZ` and the like).
const STRIPPED_PREFIXES: &[&str] = &[
    "CARGO_CFG_",
    "CARGO_FEATURE_",
    "CARGO_PKG_",
    "DEP_",
    "__CARGO",
];

/// Whether `name` is dropped from the environment of a nested cargo. The jobserver (`CARGO_MAKEFLAGS`,
/// `MAKEFLAGS`, `MFLAGS`) is kept, so that the nested build shares the outer build's job slots, and so are
/// `RUSTC` and `RUSTUP_TOOLCHAIN`, so that it uses the same compiler.
fn is_stripped(name: &str) -> bool {
    STRIPPED_ENV.contains(&name)
        || STRIPPED_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix))
}

/// One component produced by [`build_components`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltComponent {
    /// The cargo package name, such as `text` or `hostile-loop`.
    pub package: String,
    /// The component file.
    pub wasm: PathBuf,
    /// The directory of the package's `Cargo.toml`, where its `wit/` directory lives.
    pub manifest_dir: PathBuf,
}

/// Why a guest build failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum GuestBuildError {
    /// A program (`cargo`, `rustc` or `rustup`) could not be started.
    Spawn {
        /// The program.
        program: String,
        /// What it was started for.
        purpose: String,
        /// The error from the operating system.
        error: io::Error,
    },
    /// The `wasm32-wasip2` target is not installed and could not be installed.
    TargetMissing {
        /// What went wrong.
        detail: String,
    },
    /// Cargo failed; the compiler's errors went to stderr.
    BuildFailed {
        /// The guest manifest that was built.
        manifest: PathBuf,
        /// How cargo exited.
        status: ExitStatus,
    },
    /// A requested package built but produced no `.wasm` file.
    NoComponent {
        /// The guest manifest that was built.
        manifest: PathBuf,
        /// The package, or `None` when the whole build produced no component at all.
        package: Option<String>,
    },
    /// Reading cargo's output failed.
    Io {
        /// The guest manifest that was built.
        manifest: PathBuf,
        /// The error.
        error: io::Error,
    },
}

impl fmt::Display for GuestBuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuestBuildError::Spawn {
                program,
                purpose,
                error,
            } => {
                write!(
                    f,
                    "cannot run `{program}` to {purpose}: {error}; is the Rust toolchain installed and on PATH?"
                )
            }
            GuestBuildError::TargetMissing { detail } => write!(
                f,
                "the `{WASM_TARGET}` target is not installed ({detail}); install the target with \
                 `rustup target add {WASM_TARGET}`"
            ),
            GuestBuildError::BuildFailed { manifest, status } => write!(
                f,
                "building the guest crates in `{}` for `{WASM_TARGET}` failed ({status}); the compiler's errors \
                 are above: fix them and build again",
                manifest.display()
            ),
            GuestBuildError::NoComponent {
                manifest,
                package: Some(package),
            } => write!(
                f,
                "package `{package}` in `{}` built but produced no WebAssembly component; a guest crate needs \
                 `crate-type = [\"cdylib\"]` under `[lib]`",
                manifest.display()
            ),
            GuestBuildError::NoComponent {
                manifest,
                package: None,
            } => write!(
                f,
                "building `{}` produced no WebAssembly component; a guest crate needs `crate-type = [\"cdylib\"]` \
                 under `[lib]`",
                manifest.display()
            ),
            GuestBuildError::Io { manifest, error } => {
                write!(
                    f,
                    "reading cargo's output while building `{}`: {error}",
                    manifest.display()
                )
            }
        }
    }
}

impl std::error::Error for GuestBuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GuestBuildError::Spawn { error, .. } | GuestBuildError::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Makes sure the Rust standard library for `wasm32-wasip2` is installed, installing it with
/// `rustup target add wasm32-wasip2` when it is missing.
///
/// The check asks the compiler that cargo will use (`$RUSTC`, else `rustc`) for its sysroot, so it also works
/// without rustup; it runs in the current directory, where a `rust-toolchain.toml` picks the toolchain.
///
/// # Errors
///
/// [`GuestBuildError::TargetMissing`] when the target is missing and rustup is absent or fails, and
/// [`GuestBuildError::Spawn`] when the compiler cannot be run.
pub fn ensure_wasm_target() -> Result<(), GuestBuildError> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let output = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| GuestBuildError::Spawn {
            program: rustc.clone(),
            purpose: "find its sysroot".to_owned(),
            error,
        })?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let target_lib = sysroot.join("lib").join("rustlib").join(WASM_TARGET);
    if output.status.success() && target_lib.is_dir() {
        return Ok(());
    }

    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .stdout(Stdio::inherit())
        .status();
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(GuestBuildError::TargetMissing {
            detail: format!("`rustup target add {WASM_TARGET}` failed ({status})"),
        }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            Err(GuestBuildError::TargetMissing {
                detail: format!(
                    "`{}` does not exist and rustup is not installed",
                    target_lib.display()
                ),
            })
        }
        Err(error) => Err(GuestBuildError::Spawn {
            program: "rustup".to_owned(),
            purpose: format!("add the `{WASM_TARGET}` target"),
            error,
        }),
    }
}

/// Builds the guest crates of `manifest_path` in release mode for `wasm32-wasip2` and returns the components.
///
/// Runs `cargo build --release --target wasm32-wasip2 --message-format json-render-diagnostics` with
/// `--target-dir target_dir`, from the manifest's directory so that the guests' own `.cargo/config.toml`
/// applies. `packages` selects packages (`-p`); `None` builds what a plain `cargo build` of that manifest
/// would. Progress and compiler diagnostics go to stderr as cargo renders them.
///
/// Inside a build script or another cargo process, the variables that describe the outer build are removed
/// first (see `STRIPPED_ENV`); the jobserver is kept. `target_dir` must not be a directory the outer build
/// uses itself: cargo would wait forever on its own lock.
///
/// # Errors
///
/// [`GuestBuildError::BuildFailed`] when cargo fails (the reason is on stderr), [`GuestBuildError::NoComponent`]
/// when a requested package (or the whole build) produced no `.wasm`, and [`GuestBuildError::Spawn`] or
/// [`GuestBuildError::Io`] when cargo cannot be run or read.
pub fn build_components(
    manifest_path: &Path,
    target_dir: &Path,
    packages: Option<&[String]>,
) -> Result<Vec<BuiltComponent>, GuestBuildError> {
    let manifest = std::path::absolute(manifest_path).unwrap_or_else(|_| manifest_path.to_owned());
    let target_dir = std::path::absolute(target_dir).unwrap_or_else(|_| target_dir.to_owned());
    let io_error = |error| GuestBuildError::Io {
        manifest: manifest.clone(),
        error,
    };

    // `CARGO` is the cargo running us, when there is one: the same version as the outer build.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(&cargo);
    command
        .args([
            "build",
            "--release",
            "--target",
            WASM_TARGET,
            "--message-format",
            "json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir);
    for package in packages.unwrap_or_default() {
        command.args(["-p", package]);
    }
    if let Some(dir) = manifest.parent() {
        command.current_dir(dir);
    }
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_stripped) {
            command.env_remove(&name);
        }
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());

    let mut child = command.spawn().map_err(|error| GuestBuildError::Spawn {
        program: cargo.clone(),
        purpose: format!("build `{}`", manifest.display()),
        error,
    })?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut built: Vec<BuiltComponent> = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(io_error)?;
        match parse_message(&line) {
            Some(Message::Artifact(components)) => {
                for component in components {
                    if !built.iter().any(|known| known.wasm == component.wasm) {
                        built.push(component);
                    }
                }
            }
            Some(Message::Other) => {}
            // Not cargo JSON (a build script printing to stdout?): pass it on rather than lose it.
            None => eprintln!("{line}"),
        }
    }
    let status = child.wait().map_err(io_error)?;
    if !status.success() {
        return Err(GuestBuildError::BuildFailed { manifest, status });
    }

    for package in packages.unwrap_or_default() {
        if !built.iter().any(|component| &component.package == package) {
            return Err(GuestBuildError::NoComponent {
                manifest,
                package: Some(package.clone()),
            });
        }
    }
    if built.is_empty() {
        return Err(GuestBuildError::NoComponent {
            manifest,
            package: None,
        });
    }
    built.sort_by(|a, b| a.package.cmp(&b.package).then_with(|| a.wasm.cmp(&b.wasm)));
    Ok(built)
}

/// What one line of cargo's JSON output means to us.
#[derive(Debug, PartialEq)]
enum Message {
    /// A `compiler-artifact` message; the components it produced (none for an rlib or a build script).
    Artifact(Vec<BuiltComponent>),
    /// Any other JSON message.
    Other,
}

/// Parses one line of `cargo --message-format json*` output; `None` when it is not a JSON object.
fn parse_message(line: &str) -> Option<Message> {
    let value: Value = serde_json::from_str(line).ok()?;
    let object = value.as_object()?;
    if object.get("reason").and_then(Value::as_str) != Some("compiler-artifact") {
        return Some(Message::Other);
    }
    let target_kinds: Vec<&str> = object
        .get("target")
        .and_then(|target| target.get("kind"))
        .and_then(Value::as_array)
        .map(|kinds| kinds.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !target_kinds
        .iter()
        .any(|kind| matches!(*kind, "cdylib" | "bin"))
    {
        return Some(Message::Artifact(Vec::new()));
    }
    let (Some(package), Some(manifest_dir)) = (
        object
            .get("package_id")
            .and_then(Value::as_str)
            .and_then(package_name),
        object
            .get("manifest_path")
            .and_then(Value::as_str)
            .and_then(|path| Path::new(path).parent()),
    ) else {
        return Some(Message::Other);
    };
    let components = object
        .get("filenames")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(PathBuf::from)
        .filter(|path| path.extension() == Some(OsStr::new("wasm")))
        .map(|wasm| BuiltComponent {
            package: package.clone(),
            wasm,
            manifest_dir: manifest_dir.to_owned(),
        })
        .collect();
    Some(Message::Artifact(components))
}

/// The package name in a cargo package ID.
///
/// Cargo 1.77 and later write package ID specs: `path+file:///src/text#0.1.0` (the name is the last path
/// segment when it matches) or `path+file:///src/tools/loop#hostile-loop@0.1.0`; older cargo writes
/// `text 0.1.0 (path+file:///src/text)`.
fn package_name(id: &str) -> Option<String> {
    if let Some((name, rest)) = id.split_once(' ') {
        return rest.ends_with(')').then(|| name.to_owned());
    }
    let (url, fragment) = id.rsplit_once('#')?;
    if let Some((name, _version)) = fragment.split_once('@') {
        return Some(name.to_owned());
    }
    let path = url.split_once('?').map_or(url, |(path, _query)| path);
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(id: &str, kind: &str, filenames: &[&str]) -> String {
        serde_json::json!({
            "reason": "compiler-artifact",
            "package_id": id,
            "manifest_path": "/src/tools/text/Cargo.toml",
            "target": { "kind": [kind], "crate_types": [kind], "name": "text" },
            "filenames": filenames,
            "fresh": false,
        })
        .to_string()
    }

    #[test]
    fn package_names_from_ids() {
        assert_eq!(
            package_name("path+file:///src/tools/text#0.1.0").as_deref(),
            Some("text")
        );
        assert_eq!(
            package_name("path+file:///src/hostile/loop#hostile-loop@0.1.0").as_deref(),
            Some("hostile-loop")
        );
        assert_eq!(
            package_name("registry+https://github.com/rust-lang/crates.io-index#regex@1.13.2")
                .as_deref(),
            Some("regex")
        );
        assert_eq!(
            package_name("git+https://example.com/repo.git?branch=main#tool@0.2.0").as_deref(),
            Some("tool")
        );
        assert_eq!(
            package_name("git+https://example.com/tools/fetch?rev=abc#0.2.0").as_deref(),
            Some("fetch")
        );
        assert_eq!(
            package_name("text 0.1.0 (path+file:///src/tools/text)").as_deref(),
            Some("text")
        );
        assert_eq!(package_name("no-fragment"), None);
    }

    #[test]
    fn collects_wasm_from_cdylib_artifacts() {
        let line = artifact(
            "path+file:///src/tools/text#0.1.0",
            "cdylib",
            &[
                "/t/wasm32-wasip2/release/text.wasm",
                "/t/wasm32-wasip2/release/deps/text.d",
            ],
        );
        assert_eq!(
            parse_message(&line),
            Some(Message::Artifact(vec![BuiltComponent {
                package: "text".to_owned(),
                wasm: PathBuf::from("/t/wasm32-wasip2/release/text.wasm"),
                manifest_dir: PathBuf::from("/src/tools/text"),
            }]))
        );
    }

    #[test]
    fn ignores_libraries_build_scripts_and_other_messages() {
        let rlib = artifact(
            "registry+https://x#regex@1.0.0",
            "lib",
            &["/t/deps/libregex.rlib"],
        );
        assert_eq!(parse_message(&rlib), Some(Message::Artifact(Vec::new())));
        let build_script = artifact(
            "path+file:///src/tools/text#0.1.0",
            "custom-build",
            &["/t/build/build-script"],
        );
        assert_eq!(
            parse_message(&build_script),
            Some(Message::Artifact(Vec::new()))
        );
        assert_eq!(
            parse_message(r#"{"reason":"build-finished","success":true}"#),
            Some(Message::Other)
        );
        assert_eq!(
            parse_message(r#"{"reason":"build-script-executed","package_id":"x"}"#),
            Some(Message::Other)
        );
        assert_eq!(parse_message("   Compiling text v0.1.0"), None);
        assert_eq!(parse_message("[1, 2]"), None);
    }

    #[test]
    fn strips_the_outer_build_but_keeps_the_jobserver() {
        for name in [
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTC_WORKSPACE_WRAPPER",
            "CARGO_TARGET_DIR",
            "CARGO_CFG_UNIX",
        ] {
            assert!(is_stripped(name), "{name}");
        }
        for name in [
            "CARGO_FEATURE_STD",
            "DEP_Z_INCLUDE",
            "__CARGO_FIX_PLZ",
            "CARGO_PKG_NAME",
            "OUT_DIR",
        ] {
            assert!(is_stripped(name), "{name}");
        }
        for name in [
            "CARGO_MAKEFLAGS",
            "MAKEFLAGS",
            "MFLAGS",
            "RUSTC",
            "RUSTUP_TOOLCHAIN",
            "CARGO",
            "CARGO_HOME",
            "PATH",
        ] {
            assert!(!is_stripped(name), "{name}");
        }
    }

    #[test]
    fn errors_say_what_to_do() {
        let missing = GuestBuildError::NoComponent {
            manifest: PathBuf::from("/src/tools/Cargo.toml"),
            package: Some("text".to_owned()),
        };
        let text = missing.to_string();
        assert!(
            text.contains("`text`")
                && text.contains("/src/tools/Cargo.toml")
                && text.contains("cdylib"),
            "{text}"
        );
        let target = GuestBuildError::TargetMissing {
            detail: "rustup is not installed".to_owned(),
        }
        .to_string();
        assert!(
            target.contains("rustup target add wasm32-wasip2"),
            "{target}"
        );
    }
}

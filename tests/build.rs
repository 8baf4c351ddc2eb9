//! Builds every guest crate in `example-tools/` to a `wasm32-wasip2` component and writes
//! `$OUT_DIR/guests.rs`: the table of built components that `src/lib.rs` serves to the tests.
//!
//! The guests build with a nested cargo into `<target>/guests/`, a directory of its own: the outer build holds
//! the lock on its profile directory for as long as this script runs. `ARE_SKIP_GUEST_BUILD=1` skips the build
//! and writes an empty table (for a quick `cargo check`; tests that need a guest then fail saying so).

use are_build as guest_build;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let root = manifest_dir
        .parent()
        .expect("tests/ sits in the workspace root")
        .to_owned();
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let example_tools = root.join("example-tools");
    let table_wat = example_tools.join("hostile").join("table.wat");

    println!("cargo:rerun-if-env-changed=ARE_SKIP_GUEST_BUILD");
    watch(&example_tools);
    watch(&root.join("guest-sdk"));
    // The guest SDK inherits its version and edition from the main workspace manifest.
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.toml").display()
    );

    let skipped = std::env::var_os("ARE_SKIP_GUEST_BUILD").is_some_and(|value| value != "0");
    let guests = if skipped {
        Vec::new()
    } else {
        if let Err(error) = guest_build::ensure_wasm_target() {
            fail(&error);
        }
        let target_dir = main_target_dir(&out_dir).join("guests");
        let guests = match guest_build::build_components(
            &example_tools.join("Cargo.toml"),
            &target_dir,
            None,
        ) {
            Ok(guests) => guests,
            Err(error) => fail(&error),
        };
        stamp(&target_dir);
        guests
    };

    let mut code = String::new();
    code.push_str(
        "/// Every guest component built from `example-tools/`, sorted by package name.\n",
    );
    code.push_str("pub const GUESTS: &[Guest] = &[\n");
    for guest in &guests {
        let wit = guest.manifest_dir.join("wit");
        writeln!(
            code,
            "    Guest {{ name: {:?}, wasm: {:?}, wit: {:?} }},",
            guest.package,
            utf8(&guest.wasm),
            utf8(&wit)
        )
        .expect("writing to a String cannot fail");
    }
    code.push_str("];\n\n");
    code.push_str(
        "/// Whether `ARE_SKIP_GUEST_BUILD` skipped the guest build (then `GUESTS` is empty).\n",
    );
    writeln!(code, "pub const GUEST_BUILD_SKIPPED: bool = {skipped};")
        .expect("writing to a String");
    code.push_str("\n/// The hand-written table-growing component, in WebAssembly text (`example-tools/hostile/table.wat`).\n");
    writeln!(
        code,
        "pub const HOSTILE_TABLE_WAT: &str = {:?};",
        utf8(&table_wat)
    )
    .expect("writing to a String");
    // Rewriting an unchanged table would rebuild this crate and every test binary for nothing.
    let table = out_dir.join("guests.rs");
    if std::fs::read_to_string(&table).ok().as_deref() != Some(code.as_str()) {
        std::fs::write(&table, code).expect("cannot write $OUT_DIR/guests.rs");
    }
}

/// The target directory of the outer build: the nearest ancestor of `OUT_DIR` holding the `CACHEDIR.TAG` cargo
/// writes at the root of every target (and build) directory. `OUT_DIR` is
/// `<target>[/<triple>]/<profile>/build/<package>-<hash>/out`, which gives the fallback.
fn main_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .skip(1)
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .or_else(|| out_dir.ancestors().nth(4))
        .unwrap_or(out_dir)
        .to_owned()
}

/// Asks cargo to rerun this script when anything under `dir` changes, except build output (`target/`) and
/// hidden entries. Subdirectories are watched whole, so new files in them count. (Not `dir` itself: cargo would
/// scan its `target/` too.)
fn watch(dir: &Path) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => panic!("cannot read `{}`: {error}", dir.display()),
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == "target" || name.starts_with('.') {
            continue;
        }
        println!("cargo:rerun-if-changed={}", entry.path().display());
    }
}

/// Leaves a stamp in the guest target directory and watches it, so that deleting that directory (by hand, or
/// by `cargo clean`) rebuilds the guests. The stamp is dated in the past: cargo reruns a script when a watched
/// file is missing or newer than the script's last run, and the stamp must only ever be missing.
fn stamp(target_dir: &Path) {
    let path = target_dir.join("are-tests.stamp");
    let written = std::fs::File::create(&path).and_then(|file| {
        use std::io::Write as _;
        (&file).write_all(
            b"Written by tests/build.rs: the guests here are up to date while this file exists.\n",
        )?;
        file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(86_400))
    });
    if let Err(error) = written {
        panic!("cannot write `{}`: {error}", path.display());
    }
    println!("cargo:rerun-if-changed={}", path.display());
}

fn utf8(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("guest paths must be UTF-8: `{}`", path.display()))
}

fn fail(error: &guest_build::GuestBuildError) -> ! {
    // Cargo prints a failed build script's stderr, where the guest compiler errors already are.
    eprintln!("error: {error}");
    std::process::exit(1);
}

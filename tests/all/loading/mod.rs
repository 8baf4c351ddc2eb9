//! Loading components: a clear error, naming the file and what to do, for everything that is not a loadable
//! component (through the library and through `are call` / `are inspect`); sha256 pins; and the compile cache.
//! This module holds the shared checks; the tests are in its submodules.

use crate::common::{engine, run};
use are_runtime::component::{self, ComponentSpec, LoadError};
use std::path::{Path, PathBuf};

mod cache;
mod refused;

/// A spec for the file at `path`, granted nothing.
fn spec_for(path: &Path) -> ComponentSpec {
    ComponentSpec {
        name: "under-test".into(),
        path: path.to_path_buf(),
        base_dir: PathBuf::from("."),
        ..ComponentSpec::default()
    }
}

/// Load `path` without a cache and return why it failed.
fn load_err(path: &Path) -> LoadError {
    match component::load(engine(), None, spec_for(path)) {
        Ok(_) => panic!("{} loaded, but should not have", path.display()),
        Err(e) => e,
    }
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write test file");
    path
}

/// `are call` (and `are inspect`, when `inspect_too`) refuse `path` with exit code 1 and an `error:` line that names
/// the file and contains `expected`.
fn assert_cli_refuses(path: &Path, expected: &str, inspect_too: bool) {
    let p = path.to_str().expect("utf-8 path");
    let mut commands = vec![vec!["call", p, "some-function", "{}"]];
    if inspect_too {
        commands.push(vec!["inspect", p]);
        commands.push(vec!["inspect", "--json", p]);
    }
    for args in commands {
        let out = run(&args);
        assert_eq!(
            out.code,
            Some(1),
            "are {args:?} should fail with exit code 1\nstdout: {}\nstderr: {}",
            out.stdout,
            out.stderr
        );
        assert!(
            out.stderr.starts_with("error: "),
            "are {args:?}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains(p),
            "are {args:?} does not name {p}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains(expected),
            "are {args:?} does not say {expected:?}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        assert!(
            out.stdout.is_empty(),
            "are {args:?} printed: {}",
            out.stdout
        );
    }
}

//! Arbitrary bytes as a component file: what `are inspect` does (read, validate, describe) and what loading
//! does (`component::load`: read, compile, describe, link against the grants, which are none here).
//!
//! Every step may refuse the bytes, with an error; none may panic. A description, when there is one, must render
//! (`to_json`, which builds every tool's schemas).

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use are_runtime::component::{self, ComponentSpec, LoadError, read_component, validate};
use are_runtime::describe::ComponentDescription;
use are_runtime::engine::{AreEngine, EngineConfig};
use libfuzzer_sys::fuzz_target;

fn engine() -> &'static AreEngine {
    static ENGINE: OnceLock<AreEngine> = OnceLock::new();
    ENGINE.get_or_init(|| AreEngine::new(EngineConfig::default()).expect("engine"))
}

/// The file the bytes are written to: `read_component` and `load` take a path.
fn scratch() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("are-fuzz-load-{}.wasm", std::process::id()))
    })
}

fn describe(bytes: &[u8]) {
    if let Ok(desc) = ComponentDescription::from_bytes(bytes, None) {
        let _ = desc.to_json();
        let _ = desc.capabilities();
    }
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("write scratch file");

    // `are inspect`: read (WebAssembly text is converted), validate with every feature, describe.
    let bytes = match read_component(path, are_policy::Limits::default().max_component_size) {
        Ok(bytes) => bytes,
        Err(
            LoadError::NotWasm { .. } | LoadError::CoreModule { .. } | LoadError::Invalid { .. },
        ) => return,
        Err(e) => panic!("unexpected read error: {e}"),
    };
    // Describing does not depend on validation (a library user may skip it).
    describe(&bytes);
    if validate(path, &bytes).is_err() {
        return;
    }

    // Loading: compile with the host's engine, describe, link with no grants.
    let spec = ComponentSpec {
        name: "fuzz".into(),
        path: path.to_path_buf(),
        ..ComponentSpec::default()
    };
    if let Ok(loaded) = component::load(engine(), None, spec) {
        let _ = loaded.description.to_json();
    }
});

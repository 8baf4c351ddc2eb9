//! Fixtures for the integration tests: the guest components that `build.rs` builds from `example-tools/`.
//!
//! ```ignore
//! let text = are_tests::guest("text");
//! let component = Component::from_file(&engine, text.wasm_path())?;
//! let wit = text.wit_dir(); // the WIT with its doc comments
//! ```
#![deny(missing_docs)]

use std::path::Path;

/// A guest component built from `example-tools/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guest {
    /// The cargo package name: a tool (`text`, `json`, `hash`, `files`, `fetch`) or an attack (`hostile-…`).
    pub name: &'static str,
    /// The absolute path of the component file.
    pub wasm: &'static str,
    /// The absolute path of the package's `wit/` directory, where the doc comments live.
    pub wit: &'static str,
}

impl Guest {
    /// The component file.
    pub fn wasm_path(&self) -> &'static Path {
        Path::new(self.wasm)
    }

    /// The package's `wit/` directory.
    pub fn wit_dir(&self) -> &'static Path {
        Path::new(self.wit)
    }

    /// The component's bytes.
    ///
    /// # Panics
    ///
    /// When the file cannot be read.
    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(self.wasm).unwrap_or_else(|error| {
            panic!(
                "cannot read guest `{}` at {}: {error}; run `touch tests/build.rs` and build again to \
                 rebuild the guests",
                self.name, self.wasm
            )
        })
    }

    /// Whether this guest attacks the sandbox (its package name starts with `hostile-`).
    pub fn is_hostile(&self) -> bool {
        self.name.starts_with("hostile-")
    }
}

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// Every guest, sorted by name.
pub fn guests() -> &'static [Guest] {
    GUESTS
}

/// The guest named `name` (its cargo package name, such as `text` or `hostile-loop`).
///
/// # Panics
///
/// When there is no such guest; the message lists the known names.
pub fn guest(name: &str) -> &'static Guest {
    if let Some(guest) = GUESTS.iter().find(|guest| guest.name == name) {
        return guest;
    }
    if GUEST_BUILD_SKIPPED {
        panic!("unknown guest `{name}`: ARE_SKIP_GUEST_BUILD was set, so no guest was built");
    }
    let known: Vec<&str> = GUESTS.iter().map(|guest| guest.name).collect();
    panic!("unknown guest `{name}`; known guests: {}", known.join(", "));
}

/// The hand-written component that grows a table without end (`example-tools/hostile/table.wat`), in
/// WebAssembly text: `Component::from_file` reads it as is. It exports `hostile:table/attack` with
/// `bomb: func() -> u32`, `grow: func(delta: u32) -> s32` and `size: func() -> u32`.
pub fn hostile_table_wat() -> &'static Path {
    Path::new(HOSTILE_TABLE_WAT)
}

//! Write `are` tools in Rust: a tool is a WIT world plus a few lines of Rust.
//!
//! This crate is the only dependency a guest needs. It re-exports [`wit_bindgen`] (0.63) and wraps its
//! `generate!` macro as [`generate!`](crate::generate), so the generated bindings find their runtime through
//! this crate. Helpers for what tools commonly do sit next to it: [`http`] makes blocking outgoing HTTP
//! requests through `wasi:http`, and [`wasip2`] gives raw access to every WASI 0.2 interface.
//!
//! Guests build for `wasm32-wasip2`, where wit-bindgen emits a component directly:
//! `cargo build --release --target wasm32-wasip2` (or `are build`).
//!
//! # A complete tool
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "greet"
//! version = "0.1.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! are-guest-sdk = "0.1"
//! ```
//!
//! `wit/world.wit`. The host reads the `///` comments to describe the tool and its arguments, so document
//! every function, parameter, field and case:
//!
//! ```wit
//! package example:greet@0.1.0;
//!
//! /// Greetings.
//! interface greet {
//!     /// Greets someone by name.
//!     ///
//!     /// - `name`: who to greet.
//!     hello: func(name: string) -> string;
//! }
//!
//! world greet-tool {
//!     export greet;
//! }
//! ```
//!
//! `src/lib.rs`:
//!
//! ```ignore
//! are_guest_sdk::generate!({ world: "greet-tool" });
//!
//! struct Greet;
//!
//! impl exports::example::greet::greet::Guest for Greet {
//!     fn hello(name: String) -> String {
//!         format!("hello, {name}")
//!     }
//! }
//!
//! export!(Greet);
//! ```
//!
//! Build it with `are build` (or the cargo command above) and hand the `.wasm` to the `are` host.
//!
//! # Errors and traps
//!
//! Return expected failures as WIT `result`s (they reach the caller as data). A panic aborts the call: the host
//! reports a trap with the panic message printed to stderr.

pub mod agent;
pub mod http;

// Lets bindings generated inside this crate name it by its public path, as guests do.
extern crate self as are_guest_sdk;

/// The `wit-bindgen` crate (0.63), re-exported so that a guest depends on this crate only.
pub use wit_bindgen;

/// Raw bindings to the WASI 0.2 interfaces (`wasi:filesystem`, `wasi:sockets`, `wasi:http`, …), for what
/// Rust's `std` and the helpers here do not cover.
pub use wasip2;

/// Generates bindings for a WIT world, like [`wit_bindgen::generate!`], with the runtime found through this
/// crate.
///
/// Takes the same options as `wit_bindgen::generate!` in braces, except `runtime_path`, which it sets. With
/// no `path`, the WIT is read from the `wit/` directory next to the guest's `Cargo.toml`.
/// The guest must name this crate `are_guest_sdk` (the default for the `are-guest-sdk` package).
///
/// ```ignore
/// are_guest_sdk::generate!({ world: "text-tool" });
/// ```
#[macro_export]
macro_rules! generate {
    ({ $($options:tt)* }) => {
        $crate::wit_bindgen::generate!({
            runtime_path: "::are_guest_sdk::wit_bindgen::rt",
            $($options)*
        });
    };
}

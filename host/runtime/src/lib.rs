//! The runtime of `are`, the Agent Runtime Environment: runs untrusted WebAssembly components as tools.
//!
//! Every component gets nothing by default. A policy (`are.toml`, parsed by `are-policy`) names what it may
//! reach, and every call is metered by fuel, an epoch deadline and a memory limiter.
//!
//! The path of a call: [`component::load`] reads (or fetches, [`source`]), pins, compiles (through [`cache`]),
//! describes ([`describe`]) and links a component against its [`caps`]; [`component::LoadedComponent::call`]
//! ([`invoke`]) converts JSON arguments ([`value`]), runs the function in a fresh [`sandbox`] and reports
//! the result with its cost. [`catalog`] turns the components of a policy into named tools, and [`host`]
//! assembles engine, cache, audit trail and catalog once for every front end (CLI, MCP server, agents).
#![deny(missing_docs)]

pub mod audit;
pub mod cache;
pub mod caps;
pub mod catalog;
pub mod component;
pub mod describe;
pub mod descriptors;
pub mod engine;
pub mod host;
pub mod invoke;
pub mod review;
pub mod sandbox;
pub mod schema;
pub mod source;
pub mod terminal;
pub mod tls;
pub mod value;

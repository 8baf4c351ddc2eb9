//! `are`, the Agent Runtime Environment: runs untrusted WebAssembly components as tools and agents.
//!
//! Every component gets nothing by default. A policy (`are.toml`) names what it may reach, and every call is
//! metered by fuel, an epoch deadline and a memory limiter.
//!
//! The path of a call: [`component::load`] reads (or fetches, [`source`]), pins, compiles (through [`cache`]),
//! describes ([`describe`]) and links a component against its [`caps`]; [`component::LoadedComponent::call`]
//! ([`invoke`]) converts JSON arguments ([`value`]), runs the function in a fresh [`sandbox`] and reports
//! the result with its cost.
#![deny(missing_docs)]

pub mod agent;
pub mod audit;
pub mod cache;
pub mod caps;
pub mod catalog;
pub mod component;
pub mod describe;
pub mod descriptors;
pub mod engine;
pub mod guest_build;
pub mod invoke;
pub mod mcp;
pub mod policy;
pub mod review;
pub mod sandbox;
pub mod schema;
pub mod source;
pub mod terminal;
pub mod value;

//! `are serve`: every tool of a policy over the Model Context Protocol (rmcp), on stdio or Streamable HTTP,
//! with the grants and meters of the policy applied to every call. The only crate of the host that speaks MCP: the
//! catalog's tool definitions become rmcp tools here ([`server::mcp_tool`]).
#![deny(missing_docs)]

pub mod connection;
mod direct;
pub mod guest_threads;
pub mod http;
pub mod http_sessions;
pub mod metrics;
pub mod server;
pub mod sessions;
pub mod stdio;
pub mod tasks;
pub mod watch;

pub use server::{Handler, McpServer, serve_stdio};

/// Lock `mutex`, taking it over from a thread that panicked while holding it (the data it guards stays usable).
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

//! `are serve`: every tool of a policy over the Model Context Protocol (rmcp), on stdio or Streamable HTTP,
//! with the grants and meters of the policy applied to every call.

pub mod connection;
pub mod guest_threads;
pub mod http;
pub mod http_sessions;
pub mod metrics;
pub mod server;
pub mod sessions;
pub mod stdio;
pub mod watch;

pub use server::{Handler, McpServer, serve_stdio};

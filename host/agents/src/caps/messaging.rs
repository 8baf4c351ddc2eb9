//! `allow.messaging` (agents): whom an agent may send to, which topics it may publish on, and which topics it
//! subscribes to.
//!
//! ```toml
//! allow.messaging = { send = ["writer/*"], publish = ["findings"], subscribe = ["tasks"] }
//! ```
//!
//! `send` patterns match agent ids (`type/key`, a trailing `*` matches any rest). A message published on a topic
//! reaches, for each agent type subscribed to it, the agent `TYPE/TOPIC`. Denials, loops, the hop limit, the
//! per-activation message budget, payloads and replies over `[agents] max_payload` (`too-large`) and a recipient
//! type without room in the store (`quota-exceeded`) come back to the guest as `messaging.error` values, never
//! traps.

use crate::AgentState as _;
use crate::bindings::are::agent::messaging::{self, Error};
use are_runtime::sandbox::HostState;

impl messaging::Host for HostState {
    async fn send(
        &mut self,
        to: String,
        payload: String,
    ) -> wasmtime::Result<Result<String, Error>> {
        Ok(self.agent()?.send(&to, payload).await)
    }

    async fn publish(
        &mut self,
        topic: String,
        payload: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        Ok(self.agent()?.publish(&topic, payload).await)
    }
}

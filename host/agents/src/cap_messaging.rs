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

use super::Capability;
use crate::agent::bindings::are::agent::messaging::{self, Error};
use crate::sandbox::{HostState, InstanceBuilder};
use serde::Deserialize;
use wasmtime::component::{HasSelf, Linker};

/// The messaging granted to an agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagingGrant {
    /// Agent ids it may send to (`writer/*`, `coordinator/main`).
    #[serde(default)]
    pub send: Vec<String>,
    /// Topics it may publish on.
    #[serde(default)]
    pub publish: Vec<String>,
    /// Topics it receives.
    #[serde(default)]
    pub subscribe: Vec<String>,
}

impl MessagingGrant {
    /// Whether sending to `agent` is allowed.
    pub fn may_send(&self, agent: &str) -> bool {
        self.send.iter().any(|p| super::matches_pattern(p, agent))
    }

    /// Whether publishing on `topic` is allowed.
    pub fn may_publish(&self, topic: &str) -> bool {
        self.publish
            .iter()
            .any(|p| super::matches_pattern(p, topic))
    }
}

impl Capability for MessagingGrant {
    fn name(&self) -> &'static str {
        "messaging"
    }

    fn is_granted(&self) -> bool {
        !(self.send.is_empty() && self.publish.is_empty() && self.subscribe.is_empty())
    }

    fn entries(&self) -> Vec<String> {
        let mut entries = self.import_entries();
        entries.extend(self.subscribe.iter().map(|t| format!("subscribe {t}")));
        entries
    }

    fn import_entries(&self) -> Vec<String> {
        // Subscribed topics are delivered to the handler: they act without any import.
        let send = self.send.iter().map(|p| format!("send {p}"));
        send.chain(self.publish.iter().map(|t| format!("publish {t}")))
            .collect()
    }

    fn agent_only(&self) -> bool {
        true
    }

    fn link(&self, linker: &mut Linker<HostState>) -> wasmtime::Result<&'static [&'static str]> {
        if self.send.is_empty() && self.publish.is_empty() {
            return Ok(&[]);
        }
        messaging::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
        Ok(&["are:agent/messaging"])
    }

    fn prepare(&self, _builder: &mut InstanceBuilder) -> anyhow::Result<()> {
        Ok(())
    }
}

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

//! `allow.messaging` (agents): whom an agent may send to, which topics it may publish on, and which topics it
//! subscribes to.
//!
//! ```toml
//! allow.messaging = { send = ["writer/*"], publish = ["findings"], subscribe = ["tasks"] }
//! ```
//!
//! `send` patterns match agent ids (`type/key`, a trailing `*` matches any rest). A message published on a topic
//! reaches, for each agent type subscribed to it, the agent `TYPE/TOPIC`.

use super::Grant;
use crate::capability::CapabilityKind;
use serde::Deserialize;

/// The messaging granted to an agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
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

    /// Whether the agent needs `are:agent/messaging` linked: it may send or publish (subscribing needs no import).
    pub fn links_interface(&self) -> bool {
        !(self.send.is_empty() && self.publish.is_empty())
    }
}

/// The JSON Schema of a `MessagingGrant` that grants nothing ([`Grant::is_granted`] is false): every list empty.
pub(crate) fn nothing_granted() -> serde_json::Value {
    let empty = serde_json::json!({ "maxItems": 0 });
    serde_json::json!({ "properties": { "send": empty, "publish": empty, "subscribe": empty } })
}

impl Grant for MessagingGrant {
    fn kind(&self) -> CapabilityKind {
        CapabilityKind::Messaging
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
}

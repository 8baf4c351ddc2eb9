//! Grant reports: what a component imports, set against what its policy grants.
//!
//! For every capability (see [`CapabilityKind`]) a [`GrantReport`] says whether the component *needs* it (imports one
//! of its interfaces) and whether it *has* it (the policy grants it, or it needs no grant). Two findings stand out:
//!
//! - **not granted**: imported but not granted. Calls of those imports fail with `capability not granted`
//!   ([`Effect::Denied`]), except `fs` and `env`, which are always linked and then find nothing:
//!   no mounted directory, no variable ([`Effect::Empty`]).
//! - **over-granted**: granted but never imported. The grant does nothing for this component and can be removed
//!   from the policy; left in place, a later version of the component that starts importing the interface gets
//!   it without anyone reviewing that.
//!
//! `are inspect COMPONENT --policy are.toml` shows the report of one component, `are policy review` the reports
//! of every component and agent type of a policy; with `--deny-overgrant` both exit with
//! [`OVERGRANT_EXIT_CODE`] when any over-grant is found.

use crate::capability::{CapabilityKind, ImportedInterface, Provision};
use crate::grants::{Grant, Grants};
use crate::{Policy, Sha256Pin};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The exit code of `--deny-overgrant` when an over-grant was found (1 is any other error, 2 a usage error).
pub const OVERGRANT_EXIT_CODE: u8 = 3;

/// Whether a policy entry is a component (`[component.NAME]`) or an agent type (`[agent.TYPE]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    /// A tool component: never gets the agent capabilities.
    Component,
    /// An agent type: also gets `are:agent/identity` and `log`, and may be granted tools, llm, memory, messaging.
    Agent,
}

impl SubjectKind {
    /// `component` or `agent`.
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Component => "component",
            SubjectKind::Agent => "agent",
        }
    }
}

/// What calls of imports that are not granted get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// They fail with `capability not granted`.
    Denied,
    /// They work and find nothing: no mounted directory (`fs`), no variable (`env`).
    Empty,
}

/// The verdict on one capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Imported and granted (or granted and acting without imports, like an agent's subscriptions).
    Granted,
    /// Imported, and provided without a grant: the baseline, or the agent base for an agent.
    NoGrantNeeded,
    /// Imported and not granted; [`CapabilityReport::without_grant`] says what the calls get.
    NotGranted,
    /// Granted and never imported: the grant can be removed.
    OverGranted,
}

/// One capability of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CapabilityReport {
    /// The capability.
    pub capability: CapabilityKind,
    /// How the host provides it.
    pub provision: Provision,
    /// The policy key that grants it (`allow.http`), if any does.
    pub policy_key: Option<&'static str>,
    /// Whether the component imports it.
    pub needed: bool,
    /// Whether it is available: granted by the policy, or needing no grant.
    pub granted: bool,
    /// The verdict.
    pub status: Status,
    /// What calls of the imports get, when not granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub without_grant: Option<Effect>,
    /// The imported interfaces (full names), in import order.
    pub imports: Vec<String>,
    /// What the policy grants, as [`Grant::entries`] (variable names, never values).
    pub entries: Vec<String>,
}

/// Imports that are not granted: the calls that will be denied (or find nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotGranted {
    /// The capability.
    pub capability: CapabilityKind,
    /// The key that would grant it, if any.
    pub policy_key: Option<&'static str>,
    /// What the calls get.
    pub effect: Effect,
    /// The imported interfaces.
    pub imports: Vec<String>,
    /// Why, and what to do, in words.
    pub hint: String,
}

/// A grant the component never uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverGrant {
    /// The capability.
    pub capability: CapabilityKind,
    /// The policy key to remove (or trim).
    pub policy_key: String,
    /// The entries that do nothing for this component.
    pub entries: Vec<String>,
}

/// What one component needs and has, capability by capability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantReport {
    /// Every capability the component imports or is granted, in [`CapabilityKind`] order.
    pub capabilities: Vec<CapabilityReport>,
    /// Imported, not granted.
    pub not_granted: Vec<NotGranted>,
    /// Granted, never imported.
    pub over_granted: Vec<OverGrant>,
}

/// The grant behind a capability: the field of [`Grants`] named by its policy key.
pub fn grant_for(grants: &Grants, capability: CapabilityKind) -> Option<&dyn Grant> {
    grants.get(capability)
}

impl GrantReport {
    /// The report of a component with these imports under `grants`.
    pub fn from_imports(
        imports: &[ImportedInterface],
        grants: &Grants,
        kind: SubjectKind,
    ) -> GrantReport {
        let mut report = GrantReport {
            capabilities: Vec::new(),
            not_granted: Vec::new(),
            over_granted: Vec::new(),
        };
        // A kind that extends another (secrets on http) is reported in that one's row.
        for capability in CapabilityKind::ALL
            .into_iter()
            .filter(|c| c.descriptor().extends.is_none())
        {
            let imported: Vec<String> = imports
                .iter()
                .filter(|i| i.capability == capability)
                .map(|i| i.name.clone())
                .collect();
            let grant = grant_for(grants, capability);
            let needed = !imported.is_empty();
            let (granted, entries, import_entries) = match capability.provision() {
                Provision::Baseline => (true, Vec::new(), Vec::new()),
                Provision::AgentBase => (kind == SubjectKind::Agent, Vec::new(), Vec::new()),
                Provision::Unavailable => (false, Vec::new(), Vec::new()),
                Provision::Grant => grant.map_or((false, Vec::new(), Vec::new()), |g| {
                    let mut entries = g.entries();
                    let mut import_entries = g.import_entries();
                    for extra in capability.extended_by().filter_map(|k| grants.get(k)) {
                        entries.extend(extra.entries());
                        import_entries.extend(extra.import_entries());
                    }
                    (g.is_granted(), entries, import_entries)
                }),
            };
            let by_policy = capability.provision() == Provision::Grant;
            if !(needed || by_policy && granted) {
                continue;
            }
            let status = match (needed, granted) {
                (true, true) if by_policy => Status::Granted,
                (true, true) => Status::NoGrantNeeded,
                (true, false) => Status::NotGranted,
                (false, _) if import_entries.is_empty() => Status::Granted,
                (false, _) => Status::OverGranted,
            };
            let key = capability.policy_key();
            let without_grant = (status == Status::NotGranted).then(|| effect(capability));
            if let Some(effect) = without_grant {
                report.not_granted.push(NotGranted {
                    capability,
                    policy_key: key,
                    effect,
                    imports: imported.clone(),
                    hint: hint(capability, kind),
                });
            }
            if let (Status::OverGranted, Some(key), Some(grant)) = (status, key, grant) {
                report.over_granted.push(OverGrant {
                    capability,
                    policy_key: key.to_string(),
                    entries: grant.import_entries(),
                });
                for extra in capability
                    .extended_by()
                    .filter_map(|k| grants.get(k))
                    .filter(|g| g.is_granted())
                {
                    report.over_granted.push(OverGrant {
                        capability,
                        policy_key: extra.kind().policy_key().unwrap_or_default().to_string(),
                        entries: extra.import_entries(),
                    });
                }
            }
            report.capabilities.push(CapabilityReport {
                capability,
                provision: capability.provision(),
                policy_key: key,
                needed,
                granted,
                status,
                without_grant,
                imports: imported,
                entries,
            });
        }
        report
    }

    /// Whether anything is granted that the component never imports.
    pub fn has_over_grant(&self) -> bool {
        !self.over_granted.is_empty()
    }

    /// Whether some imports will be denied.
    pub fn has_denials(&self) -> bool {
        self.not_granted.iter().any(|n| n.effect == Effect::Denied)
    }

    /// The human rendering: one line per capability, then a summary line, each indented by `indent`.
    pub fn render(&self, indent: &str) -> String {
        let mut out = String::new();
        let width = self
            .capabilities
            .iter()
            .map(|c| c.capability.as_str().len())
            .max()
            .unwrap_or(0);
        for c in &self.capabilities {
            let (mark, text) = describe_row(c, self);
            let _ = writeln!(
                out,
                "{indent}{mark} {:<width$}  {text}",
                c.capability.as_str()
            );
        }
        if self.capabilities.is_empty() {
            let _ = writeln!(out, "{indent}  (imports nothing, granted nothing)");
        }
        let _ = writeln!(out, "{indent}{}", self.summary());
        out
    }

    /// One line: `exact` or what is wrong.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.over_granted.is_empty() {
            let keys: Vec<&str> = self
                .over_granted
                .iter()
                .map(|o| o.policy_key.as_str())
                .collect();
            parts.push(format!(
                "{} over-grant(s): remove {}",
                keys.len(),
                keys.join(", ")
            ));
        }
        let of = |effect: Effect| -> Vec<&str> {
            self.not_granted
                .iter()
                .filter(|n| n.effect == effect)
                .map(|n| n.capability.as_str())
                .collect()
        };
        let denied = of(Effect::Denied);
        if !denied.is_empty() {
            parts.push(format!("calls will be denied: {}", denied.join(", ")));
        }
        let empty = of(Effect::Empty);
        if !empty.is_empty() {
            parts.push(format!("sees nothing: {}", empty.join(", ")));
        }
        if parts.is_empty() {
            "= exact: every grant is used, every import is provided".to_string()
        } else {
            format!("= {}", parts.join("; "))
        }
    }
}

fn effect(capability: CapabilityKind) -> Effect {
    match capability {
        CapabilityKind::Fs | CapabilityKind::Env => Effect::Empty,
        _ => Effect::Denied,
    }
}

fn hint(capability: CapabilityKind, kind: SubjectKind) -> String {
    match (capability.provision(), capability.policy_key()) {
        (Provision::AgentBase, _) => "only agents have it: run it as an [agent.TYPE]".into(),
        (Provision::Unavailable, _) | (_, None) => {
            "no grant provides it: its calls are always denied".into()
        }
        (_, Some(key)) if capability.agent_only() && kind == SubjectKind::Component => {
            format!("only agents can be granted `{key}`: run it as an [agent.TYPE]")
        }
        (_, Some(key)) => match capability {
            CapabilityKind::Fs => format!("no mounts: it sees no files; grant with `{key}`"),
            CapabilityKind::Env => {
                format!("it sees no environment variables; grant with `{key}`")
            }
            _ => format!("grant with `{key}`"),
        },
    }
}

/// The mark and text of one row.
fn describe_row(c: &CapabilityReport, report: &GrantReport) -> (&'static str, String) {
    let imports = short_list(&c.imports);
    match c.status {
        Status::Granted if c.needed => (
            "✓",
            format!(
                "granted by {}: {}; imports {imports}",
                c.policy_key.unwrap_or("?"),
                c.entries.join(", ")
            ),
        ),
        Status::Granted => (
            "✓",
            format!(
                "granted by {}: {} (acts without imports)",
                c.policy_key.unwrap_or("?"),
                c.entries.join(", ")
            ),
        ),
        Status::NoGrantNeeded => ("·", format!("no grant needed; imports {imports}")),
        Status::NotGranted => {
            let hint = report
                .not_granted
                .iter()
                .find(|n| n.capability == c.capability)
                .map_or("", |n| n.hint.as_str());
            match c.without_grant {
                Some(Effect::Empty) => (
                    "∅",
                    format!("not granted, finds nothing ({hint}); imports {imports}"),
                ),
                _ => (
                    "✗",
                    format!("NOT GRANTED, calls will be denied ({hint}); imports {imports}"),
                ),
            }
        }
        Status::OverGranted => (
            "!",
            format!(
                "OVER-GRANT: never imported; remove {} ({})",
                c.policy_key.unwrap_or("?"),
                report
                    .over_granted
                    .iter()
                    .find(|o| o.capability == c.capability)
                    .map_or_else(|| c.entries.join(", "), |o| o.entries.join(", "))
            ),
        ),
    }
}

/// Interface names without versions, comma-separated; long lists are cut.
fn short_list(imports: &[String]) -> String {
    const SHOWN: usize = 4;
    let names: Vec<&str> = imports
        .iter()
        .map(|i| i.split_once('@').map_or(i.as_str(), |(name, _)| name))
        .collect();
    if names.len() <= SHOWN {
        names.join(", ")
    } else {
        format!(
            "{}, … ({} in all)",
            names[..SHOWN - 1].join(", "),
            names.len()
        )
    }
}

/// A component or agent type named in a policy.
#[derive(Debug, Clone, Copy)]
pub struct PolicyEntry<'a> {
    /// Its name: `[component.NAME]` or `[agent.TYPE]`.
    pub name: &'a str,
    /// Component or agent.
    pub kind: SubjectKind,
    /// Its source, as written.
    pub source: &'a str,
    /// The `sha256` pin of its source, if any.
    pub pin: Option<&'a Sha256Pin>,
    /// What it is granted.
    pub grants: &'a Grants,
    /// The largest source accepted: its `limits.max_component_size`.
    pub max_size: u64,
}

impl PolicyEntry<'_> {
    /// The source file, resolved against the policy's directory (a remote source as written).
    pub fn source_path(&self, policy: &Policy) -> PathBuf {
        policy.resolve_source(self.source)
    }
}

/// Every component, then every agent type, of `policy`, each by name.
pub fn policy_entries(policy: &Policy) -> Vec<PolicyEntry<'_>> {
    let components = policy.components.iter().map(|(name, c)| PolicyEntry {
        name,
        kind: SubjectKind::Component,
        source: c.source.get_ref(),
        pin: c.sha256.as_ref(),
        grants: &c.allow,
        max_size: policy.limits_for(Some(c)).resolve().max_component_size,
    });
    let agents = policy.agents.iter().map(|(name, a)| PolicyEntry {
        name,
        kind: SubjectKind::Agent,
        source: a.source.get_ref(),
        pin: a.sha256.as_ref(),
        grants: &a.allow,
        max_size: policy
            .defaults
            .overlay(a.limits)
            .resolve()
            .max_component_size,
    });
    components.chain(agents).collect()
}

/// The entry `query` means, as `are call` resolves a component: a component name, else an agent type, else the
/// entry whose source is the file at `query` (components first).
pub fn find_entry<'a>(policy: &'a Policy, query: &str) -> Option<PolicyEntry<'a>> {
    let entries = policy_entries(policy);
    if let Some(entry) = entries.iter().find(|e| e.name == query) {
        return Some(*entry);
    }
    let wanted = std::fs::canonicalize(Path::new(query)).ok()?;
    entries
        .into_iter()
        .find(|e| std::fs::canonicalize(e.source_path(policy)).is_ok_and(|have| have == wanted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imports(names: &[&str]) -> Vec<ImportedInterface> {
        names
            .iter()
            .map(|name| ImportedInterface {
                name: (*name).to_string(),
                capability: crate::capability::classify_import(name),
                functions: Vec::new(),
            })
            .collect()
    }

    fn grants(toml: &str) -> Grants {
        toml::from_str(toml).expect("grants")
    }

    fn row(report: &GrantReport, capability: CapabilityKind) -> Option<&CapabilityReport> {
        report
            .capabilities
            .iter()
            .find(|c| c.capability == capability)
    }

    const FETCH: &[&str] = &[
        "wasi:cli/environment@0.2.6",
        "wasi:cli/stdout@0.2.6",
        "wasi:io/streams@0.2.6",
        "wasi:cli/exit@0.2.6",
        "wasi:http/types@0.2.6",
        "wasi:http/outgoing-handler@0.2.6",
    ];

    #[test]
    fn exact_grant() {
        let report = GrantReport::from_imports(
            &imports(FETCH),
            &grants(r#"http = ["https://api.example.com"]"#),
            SubjectKind::Component,
        );
        let http = row(&report, CapabilityKind::Http).expect("http row");
        assert_eq!(
            (http.needed, http.granted, http.status),
            (true, true, Status::Granted)
        );
        assert_eq!(http.entries, ["https://api.example.com:443"]);
        assert_eq!(http.imports.len(), 2);
        assert!(!report.has_over_grant() && !report.has_denials());
        // Baseline imports need no grant; the environment is imported, not granted, and empty.
        for c in [CapabilityKind::Stdio, CapabilityKind::Io] {
            assert_eq!(row(&report, c).expect("row").status, Status::NoGrantNeeded);
        }
        assert_eq!(report.not_granted.len(), 1);
        assert_eq!(report.not_granted[0].capability, CapabilityKind::Env);
        assert_eq!(report.not_granted[0].effect, Effect::Empty);
        // Capabilities neither imported nor granted are left out.
        assert!(row(&report, CapabilityKind::Sockets).is_none());
        assert!(row(&report, CapabilityKind::Fs).is_none());
    }

    #[test]
    fn under_grant_lists_the_denied_imports() {
        let report =
            GrantReport::from_imports(&imports(FETCH), &grants(""), SubjectKind::Component);
        let http = row(&report, CapabilityKind::Http).expect("http row");
        assert_eq!(
            (http.needed, http.granted, http.status, http.without_grant),
            (true, false, Status::NotGranted, Some(Effect::Denied))
        );
        let denied: Vec<&NotGranted> = report
            .not_granted
            .iter()
            .filter(|n| n.effect == Effect::Denied)
            .collect();
        assert_eq!(denied.len(), 1);
        assert_eq!(denied[0].policy_key, Some("allow.http"));
        assert_eq!(
            denied[0].imports,
            ["wasi:http/types@0.2.6", "wasi:http/outgoing-handler@0.2.6"]
        );
        assert!(report.has_denials() && !report.has_over_grant());
        assert!(report.summary().contains("calls will be denied: http"));
    }

    #[test]
    fn over_grant_names_the_key_and_entries() {
        let report = GrantReport::from_imports(
            &imports(&["wasi:cli/stdout@0.2.6", "wasi:io/streams@0.2.6"]),
            &grants(
                r#"
                http = ["http://127.0.0.1:8080"]
                secrets = [{ host = "127.0.0.1:8080", header = "Authorization", from_env = "TOKEN" }]
                env = { TOKEN = "s3cret" }
                fs = [{ host = ".", guest = "/data", mode = "rw" }]
                "#,
            ),
            SubjectKind::Component,
        );
        let over: Vec<(&str, Vec<String>)> = report
            .over_granted
            .iter()
            .map(|o| (o.policy_key.as_str(), o.entries.clone()))
            .collect();
        assert_eq!(
            over,
            [
                ("allow.fs", vec![". -> /data (rw)".to_string()]),
                ("allow.env", vec!["TOKEN".to_string()]),
                ("allow.http", vec!["http://127.0.0.1:8080".to_string()]),
                (
                    "allow.secrets",
                    vec!["Authorization header for 127.0.0.1:8080 from $TOKEN".to_string()]
                ),
            ]
        );
        let http = row(&report, CapabilityKind::Http).expect("http row");
        assert_eq!(
            (http.needed, http.granted, http.status),
            (false, true, Status::OverGranted)
        );
        let text = report.render("  ");
        assert!(!text.contains("s3cret"), "env values never show: {text}");
        assert!(
            text.contains("! http") && text.contains("remove allow.http"),
            "{text}"
        );
        assert!(report.summary().starts_with(
            "= 4 over-grant(s): remove allow.fs, allow.env, allow.http, allow.secrets"
        ));
        let json = serde_json::to_value(&report).expect("serializes");
        assert_eq!(json["over_granted"][2]["policy_key"], "allow.http");
        assert!(!json.to_string().contains("s3cret"));
    }

    #[test]
    fn agents() {
        let probe = imports(&[
            "are:agent/identity@0.1.0",
            "are:agent/log@0.1.0",
            "are:agent/tools@0.1.0",
            "are:agent/memory@0.1.0",
            "wasi:io/streams@0.2.6",
        ]);
        let granted = grants(
            r#"
            tools = ["text.*"]
            llm = { model = "default" }
            messaging = { subscribe = ["tasks"] }
            "#,
        );
        let report = GrantReport::from_imports(&probe, &granted, SubjectKind::Agent);
        let status = |c| row(&report, c).map(|r| r.status);
        assert_eq!(status(CapabilityKind::Agent), Some(Status::NoGrantNeeded));
        assert_eq!(status(CapabilityKind::Tools), Some(Status::Granted));
        assert_eq!(status(CapabilityKind::Memory), Some(Status::NotGranted));
        assert_eq!(status(CapabilityKind::Llm), Some(Status::OverGranted));
        // Subscriptions act without an import: not an over-grant.
        assert_eq!(status(CapabilityKind::Messaging), Some(Status::Granted));
        assert_eq!(
            report
                .over_granted
                .iter()
                .map(|o| o.policy_key.as_str())
                .collect::<Vec<_>>(),
            ["allow.llm"]
        );
        // Sending without importing messaging is an over-grant of the sends only.
        let sends = grants(r#"messaging = { send = ["a/*"], subscribe = ["t"] }"#);
        let report = GrantReport::from_imports(&probe, &sends, SubjectKind::Agent);
        assert_eq!(report.over_granted[0].entries, ["send a/*"]);

        // The same imports in a tool component: the agent base is denied, with a hint.
        let report = GrantReport::from_imports(&probe, &grants(""), SubjectKind::Component);
        let agent = row(&report, CapabilityKind::Agent).expect("agent row");
        assert_eq!(
            (agent.granted, agent.without_grant),
            (false, Some(Effect::Denied))
        );
        let hints: Vec<&str> = report.not_granted.iter().map(|n| n.hint.as_str()).collect();
        assert!(
            hints.iter().all(|h| h.contains("[agent.TYPE]")),
            "{hints:?}"
        );
    }

    #[test]
    fn unknown_imports_are_always_denied() {
        let report = GrantReport::from_imports(
            &imports(&["example:kv/store@1.0.0", "log"]),
            &grants(""),
            SubjectKind::Component,
        );
        let other = row(&report, CapabilityKind::Other).expect("other row");
        assert_eq!(other.policy_key, None);
        assert_eq!(other.without_grant, Some(Effect::Denied));
        assert_eq!(other.provision, Provision::Unavailable);
    }
}

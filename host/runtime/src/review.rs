//! Reviews of a policy's entries: each component read (or fetched) and described, then its
//! [`GrantReport`](are_policy::review::GrantReport).

use crate::describe::ComponentDescription;
use crate::host::Host;
use crate::source::FetchOptions;
use are_policy::Grants;
use are_policy::Policy;
use are_policy::review::{GrantReport, PolicyEntry, SubjectKind, policy_entries};
use serde::Serialize;
use std::path::Path;

/// The bytes of `entry`'s component: a file as it is; a remote source fetched (or found in the cache) and checked
/// against the entry's pin, like loading it would.
fn read_entry(
    entry: &PolicyEntry<'_>,
    path: &Path,
    host: &Host,
) -> Result<Vec<u8>, crate::component::LoadError> {
    if !are_policy::source::Source::is_remote_text(entry.source) {
        return crate::component::read_component(path, entry.max_size);
    }
    let options = FetchOptions {
        allow_unpinned: host.allows_unpinned(),
        max_size: entry.max_size,
        ..FetchOptions::default()
    };
    crate::component::read_source(entry.name, path, entry.pin, host.cache().dir(), options)
        .map(|(bytes, _)| bytes)
}

/// One reviewed entry: where it comes from and its report, or why there is none.
#[derive(Debug, Clone, Serialize)]
pub struct Review {
    /// The entry's name in the policy; `None` for a component the policy does not name (nothing granted).
    pub name: Option<String>,
    /// Component or agent.
    pub kind: SubjectKind,
    /// The component file.
    pub source: String,
    /// Hex sha256 of the component, when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The report, when the component could be read and described.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub report: Option<GrantReport>,
    /// Why there is no report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Review {
    /// The review of a described component: `entry` is its policy entry, `None` when the policy does not name it
    /// (then nothing is granted, as `are call` would run it).
    pub fn of_description(
        entry: Option<&PolicyEntry<'_>>,
        source: &Path,
        sha256: String,
        desc: &ComponentDescription,
    ) -> Review {
        let none = Grants::default();
        let (grants, kind) = entry.map_or((&none, SubjectKind::Component), |e| (e.grants, e.kind));
        Review {
            name: entry.map(|e| e.name.to_string()),
            kind,
            source: source.display().to_string(),
            sha256: Some(sha256),
            report: Some(GrantReport::from_imports(desc.imports(), grants, kind)),
            error: None,
        }
    }

    /// Whether its report has an over-grant.
    pub fn has_over_grant(&self) -> bool {
        self.report
            .as_ref()
            .is_some_and(GrantReport::has_over_grant)
    }

    /// Read (or fetch, through `host`), describe and report on the entry.
    pub fn of_entry(policy: &Policy, entry: &PolicyEntry<'_>, host: &Host) -> Review {
        let path = entry.source_path(policy);
        let mut review = Review {
            name: Some(entry.name.to_string()),
            kind: entry.kind,
            source: path.display().to_string(),
            sha256: None,
            report: None,
            error: None,
        };
        let described = read_entry(entry, &path, host)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                review.sha256 = Some(are_policy::common::hex(&are_policy::common::sha256(&bytes)));
                ComponentDescription::from_bytes(&bytes, None)
                    .map_err(|e| format!("cannot describe {}: {e}", path.display()))
            });
        match described {
            Ok(desc) => {
                review.report = Some(GrantReport::from_imports(
                    desc.imports(),
                    entry.grants,
                    entry.kind,
                ))
            }
            Err(e) => review.error = Some(e),
        }
        review
    }

    /// What it is: ``component `text` `` or ``agent `probe` ``, or a component the policy does not name.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("{} `{name}`", self.kind.as_str()),
            None => "a component the policy does not name (nothing granted)".to_string(),
        }
    }

    /// The label and the source: ``component `text` (tools/text.wasm)``.
    pub fn heading(&self) -> String {
        format!("{} ({})", self.label(), self.source)
    }
}

/// The review of every entry of a policy.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyReview {
    /// The policy file.
    pub policy: String,
    /// Whether any entry has an over-grant.
    pub over_grant: bool,
    /// Components, then agent types, by name.
    pub entries: Vec<Review>,
}

impl PolicyReview {
    /// Review every entry of `policy`, fetching remote sources through `host`.
    pub fn new(policy: &Policy, host: &Host) -> PolicyReview {
        let entries: Vec<Review> = policy_entries(policy)
            .iter()
            .map(|e| Review::of_entry(policy, e, host))
            .collect();
        PolicyReview {
            policy: policy
                .path
                .as_ref()
                .map_or_else(String::new, |p| p.display().to_string()),
            over_grant: entries.iter().any(Review::has_over_grant),
            entries,
        }
    }

    /// Entries that could not be reviewed.
    pub fn errors(&self) -> usize {
        self.entries.iter().filter(|r| r.error.is_some()).count()
    }
}

//! Generated policies: a model of every table and key of `are.toml`, and its rendering as TOML in several styles.

use super::unique_by_name;
use are_policy::{Fuel, LimitsSection, Size, Timeout};
use proptest::prelude::*;
use proptest::sample::select;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// A TOML string, basic or literal.
pub(super) fn toml_string(s: &str, literal: bool) -> String {
    if literal && !s.chars().any(|c| c == '\'' || c.is_control()) {
        return format!("'{s}'");
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

/// A fuel value and how it is written.
#[derive(Debug, Clone)]
pub(super) enum FuelModel {
    Unlimited,
    Number(i64),
    Text(u64),
}

impl FuelModel {
    fn toml(&self) -> String {
        match self {
            FuelModel::Unlimited => "\"unlimited\"".into(),
            FuelModel::Number(n) => n.to_string(),
            FuelModel::Text(n) => {
                // Thousands separators, as in `"1_000_000"`.
                let digits = n.to_string();
                let mut out = String::new();
                for (i, c) in digits.chars().enumerate() {
                    if i > 0 && (digits.len() - i) % 3 == 0 {
                        out.push('_');
                    }
                    out.push(c);
                }
                format!("\"{out}\"")
            }
        }
    }

    pub(super) fn expected(&self) -> Fuel {
        match self {
            FuelModel::Unlimited => Fuel(None),
            FuelModel::Number(n) => Fuel(Some(*n as u64)),
            FuelModel::Text(n) => Fuel(Some(*n)),
        }
    }
}

pub(super) fn fuel() -> impl Strategy<Value = FuelModel> {
    prop_oneof![
        Just(FuelModel::Unlimited),
        (0..=i64::MAX).prop_map(FuelModel::Number),
        any::<u64>().prop_map(FuelModel::Text),
    ]
}

/// A size and how it is written: bytes as a number, or a number and a unit.
#[derive(Debug, Clone)]
pub(super) struct SizeModel {
    pub(super) count: u32,
    pub(super) unit: Option<(&'static str, u64)>,
    pub(super) space: bool,
}

impl SizeModel {
    fn toml(&self) -> String {
        match self.unit {
            None => self.count.to_string(),
            Some((unit, _)) => {
                let space = if self.space { " " } else { "" };
                format!("\"{}{space}{unit}\"", self.count)
            }
        }
    }

    pub(super) fn expected(&self) -> Size {
        Size(u64::from(self.count) * self.unit.map_or(1, |(_, factor)| factor))
    }
}

fn size() -> impl Strategy<Value = SizeModel> {
    let unit = prop::option::of(select(vec![
        ("B", 1),
        ("KiB", 1 << 10),
        ("MiB", 1 << 20),
        ("GiB", 1 << 30),
        ("KB", 1_000),
        ("MB", 1_000_000),
    ]));
    (0..100_000u32, unit, any::<bool>()).prop_map(|(count, unit, space)| SizeModel {
        count,
        unit,
        space,
    })
}

/// A timeout and how it is written.
#[derive(Debug, Clone)]
pub(super) struct TimeoutModel {
    pub(super) count: u64,
    pub(super) unit: (&'static str, u64),
}

impl TimeoutModel {
    fn toml(&self) -> String {
        format!("\"{}{}\"", self.count, self.unit.0)
    }

    pub(super) fn expected(&self) -> Timeout {
        Timeout(Duration::from_millis(self.count * self.unit.1))
    }
}

pub(super) fn timeout() -> impl Strategy<Value = TimeoutModel> {
    prop_oneof![
        (1..=86_400_000u64).prop_map(|count| TimeoutModel {
            count,
            unit: ("ms", 1)
        }),
        (1..=86_400u64).prop_map(|count| TimeoutModel {
            count,
            unit: ("s", 1_000)
        }),
        (1..=1_440u64).prop_map(|count| TimeoutModel {
            count,
            unit: ("m", 60_000)
        }),
        (1..=24u64).prop_map(|count| TimeoutModel {
            count,
            unit: ("h", 3_600_000)
        }),
    ]
}

#[derive(Debug, Clone)]
pub(super) struct LimitsModel {
    pub(super) fuel: Option<FuelModel>,
    pub(super) memory: Option<SizeModel>,
    pub(super) timeout: Option<TimeoutModel>,
    pub(super) max_output: Option<SizeModel>,
}

impl LimitsModel {
    /// `key = value` lines.
    fn entries(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(fuel) = &self.fuel {
            out.push(("fuel".into(), fuel.toml()));
        }
        if let Some(memory) = &self.memory {
            out.push(("memory".into(), memory.toml()));
        }
        if let Some(timeout) = &self.timeout {
            out.push(("timeout".into(), timeout.toml()));
        }
        if let Some(max_output) = &self.max_output {
            out.push(("max_output".into(), max_output.toml()));
        }
        out
    }

    pub(super) fn expected(&self) -> LimitsSection {
        LimitsSection {
            fuel: self.fuel.as_ref().map(FuelModel::expected),
            memory: self.memory.as_ref().map(SizeModel::expected),
            timeout: self.timeout.as_ref().map(TimeoutModel::expected),
            max_output: self.max_output.as_ref().map(SizeModel::expected),
            ..LimitsSection::default()
        }
    }
}

pub(super) fn limits() -> impl Strategy<Value = LimitsModel> {
    (
        prop::option::of(fuel()),
        prop::option::of(size()),
        prop::option::of(timeout()),
        prop::option::of(size()),
    )
        .prop_map(|(fuel, memory, timeout, max_output)| LimitsModel {
            fuel,
            memory,
            timeout,
            max_output,
        })
}

/// An `allow.http` entry: what is written, and how the parsed origin displays.
fn http_origin() -> impl Strategy<Value = (String, String)> {
    let host = prop_oneof![
        // A DNS name: its last label is not all digits (that would read as an IP address).
        "([a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?\\.){0,2}[a-z0-9]{0,5}[a-z]"
            .prop_map(|h| (h.clone(), h)),
        "[a-z0-9]{1,6}\\.[a-z]{2,4}".prop_map(|h| (format!("*.{h}"), format!("*.{h}"))),
        any::<[u8; 4]>().prop_map(|ip| {
            let ip = std::net::Ipv4Addr::from(ip).to_string();
            (ip.clone(), ip)
        }),
        any::<[u16; 8]>().prop_map(|ip| {
            let ip = format!("[{}]", std::net::Ipv6Addr::from(ip));
            (ip.clone(), ip)
        }),
        Just(("LocalHost".to_owned(), "localhost".to_owned())),
    ];
    (
        select(vec![("http", 80), ("https", 443), ("HTTPS", 443)]),
        host,
        prop::option::of(any::<u16>()),
        any::<bool>(),
    )
        .prop_map(|((scheme, default_port), (written, shown), port, slash)| {
            let port_text = port.map(|p| format!(":{p}")).unwrap_or_default();
            let slash = if slash { "/" } else { "" };
            (
                format!("{scheme}://{written}{port_text}{slash}"),
                format!(
                    "{}://{shown}:{}",
                    scheme.to_lowercase(),
                    port.unwrap_or(default_port)
                ),
            )
        })
}

/// An `allow.sockets` entry: what is written, and how the parsed entry displays.
fn socket_entry() -> impl Strategy<Value = (String, String)> {
    let host = prop_oneof![
        "([a-zA-Z0-9]([a-zA-Z0-9-]{0,3}[a-zA-Z0-9])?\\.){0,2}[a-zA-Z0-9]{0,3}[a-zA-Z]"
            .prop_map(|h| (h.clone(), h.to_ascii_lowercase())),
        any::<[u8; 4]>().prop_map(|ip| {
            let ip = std::net::Ipv4Addr::from(ip).to_string();
            (ip.clone(), ip)
        }),
        any::<[u16; 8]>().prop_map(|ip| {
            let ip = format!("[{}]", std::net::Ipv6Addr::from(ip));
            (ip.clone(), ip)
        }),
    ];
    (select(vec!["tcp://", "udp://", ""]), host, 1..=u16::MAX).prop_map(
        |(protocol, (written, shown), port)| {
            let shown_protocol = if protocol.is_empty() {
                "tcp://"
            } else {
                protocol
            };
            (
                format!("{protocol}{written}:{port}"),
                format!("{shown_protocol}{shown}:{port}"),
            )
        },
    )
}

/// Directories that exist under the base directory of generated policies.
const MOUNT_DIRS: [&str; 3] = ["d0", "d1", "d2"];

#[derive(Debug, Clone)]
pub(super) struct MountModel {
    pub(super) host: String,
    pub(super) guest: String,
    pub(super) mode: Option<&'static str>,
}

fn mounts() -> impl Strategy<Value = Vec<MountModel>> {
    prop::collection::vec(
        (
            select(MOUNT_DIRS.to_vec()),
            any::<bool>(),
            "/[a-z0-9_]{1,6}(/[a-z0-9_]{1,4})?",
            prop::option::of(select(vec!["ro", "rw"])),
        ),
        0..=3,
    )
    .prop_map(|mounts| {
        let mut seen = BTreeSet::new();
        // Mounts of one directory must share a mode: the first one's.
        let mut modes = std::collections::BTreeMap::new();
        mounts
            .into_iter()
            .filter(|(_, _, guest, _)| seen.insert(guest.clone()))
            .filter(|(dir, _, _, mode)| {
                *modes.entry(*dir).or_insert(mode.unwrap_or("ro")) == mode.unwrap_or("ro")
            })
            .map(|(dir, dotted, guest, mode)| MountModel {
                host: if dotted {
                    format!("./{dir}")
                } else {
                    dir.to_owned()
                },
                guest,
                mode,
            })
            .collect()
    })
}

/// The grants that components and agents share.
#[derive(Debug, Clone)]
pub(super) struct GrantsModel {
    pub(super) env: Vec<(String, String)>,
    pub(super) http: Vec<(String, String)>,
    pub(super) sockets: Vec<(String, String)>,
    pub(super) fs: Vec<MountModel>,
}

pub(super) fn grants() -> impl Strategy<Value = GrantsModel> {
    (
        prop::collection::vec(("[^=\\x00]{1,8}", "\\PC{0,8}"), 0..=3),
        prop::collection::vec(http_origin(), 0..=3),
        prop::collection::vec(socket_entry(), 0..=3),
        mounts(),
    )
        .prop_map(|(env, http, sockets, fs)| GrantsModel {
            env: unique_by_name(env)
                .into_iter()
                .filter(|(k, _)| !k.chars().any(char::is_control))
                .collect(),
            http,
            sockets,
            fs,
        })
}

/// Agent-only grants.
#[derive(Debug, Clone)]
pub(super) struct AgentGrantsModel {
    pub(super) tools: Vec<String>,
    pub(super) llm: Option<(String, Option<u32>, Option<u32>)>,
    pub(super) memory: Option<SizeModel>,
    pub(super) send: Vec<String>,
    pub(super) publish: Vec<String>,
    pub(super) subscribe: Vec<String>,
}

pub(super) fn agent_grants() -> impl Strategy<Value = AgentGrantsModel> {
    let names = || prop::collection::vec("[a-z*/._-]{1,10}", 0..=2);
    (
        names(),
        prop::option::of((
            "[a-z0-9.-]{1,10}",
            prop::option::of(any::<u32>()),
            prop::option::of(any::<u32>()),
        )),
        prop::option::of(size()),
        names(),
        names(),
        names(),
    )
        .prop_map(
            |(tools, llm, memory, send, publish, subscribe)| AgentGrantsModel {
                tools,
                llm,
                memory,
                send,
                publish,
                subscribe,
            },
        )
}

#[derive(Debug, Clone)]
pub(super) struct ComponentModel {
    pub(super) source: String,
    pub(super) sha256: Option<([u8; 32], u8)>,
    pub(super) args: Vec<String>,
    pub(super) grants: GrantsModel,
    pub(super) limits: LimitsModel,
    pub(super) mode: Option<&'static str>,
    pub(super) max_concurrency: Option<u32>,
    pub(super) queue: Option<u32>,
    pub(super) idle_timeout: Option<TimeoutModel>,
    /// How the tables are written: 0 dotted keys, 1 sub-tables, 2 inline tables.
    pub(super) style: u8,
}

#[derive(Debug, Clone)]
pub(super) struct AgentModel {
    pub(super) source: String,
    pub(super) sha256: Option<([u8; 32], u8)>,
    pub(super) args: Vec<String>,
    pub(super) grants: GrantsModel,
    pub(super) agent: AgentGrantsModel,
    pub(super) limits: LimitsModel,
    pub(super) idle_timeout: Option<TimeoutModel>,
    pub(super) message_budget: Option<u32>,
    pub(super) style: u8,
}

#[derive(Debug, Clone)]
pub(super) struct PolicyModel {
    pub(super) defaults: Option<LimitsModel>,
    pub(super) components: Vec<(String, ComponentModel)>,
    pub(super) agents: Vec<(String, AgentModel)>,
    pub(super) serve: (Option<u32>, Option<bool>, Option<u32>, Vec<String>),
    pub(super) runtime: (
        Option<String>,
        Option<u32>,
        Option<TimeoutModel>,
        Option<&'static str>,
    ),
    pub(super) llm: (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<TimeoutModel>,
    ),
    pub(super) literal_strings: bool,
}

fn sha256_pin() -> impl Strategy<Value = Option<([u8; 32], u8)>> {
    prop::option::of((any::<[u8; 32]>(), 0..3u8))
}

pub(super) fn source() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9_/.-]{1,16}\\.wasm", "\\PC{1,12}",]
}

pub(super) fn component_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,12}"
}

pub(super) fn component_model() -> impl Strategy<Value = ComponentModel> {
    (
        (
            source(),
            sha256_pin(),
            prop::collection::vec("\\PC{0,6}", 0..=3),
        ),
        grants(),
        limits(),
        (
            prop::option::of(select(vec!["fresh", "session"])),
            prop::option::of(any::<u32>()),
            prop::option::of(any::<u32>()),
            prop::option::of(timeout()),
        ),
        0..3u8,
    )
        .prop_map(
            |(
                (source, sha256, args),
                grants,
                limits,
                (mode, max_concurrency, queue, idle_timeout),
                style,
            )| {
                ComponentModel {
                    source,
                    sha256,
                    args,
                    grants,
                    limits,
                    mode,
                    max_concurrency,
                    queue,
                    idle_timeout,
                    style,
                }
            },
        )
}

fn agent_model() -> impl Strategy<Value = AgentModel> {
    (
        (
            source(),
            sha256_pin(),
            prop::collection::vec("\\PC{0,6}", 0..=2),
        ),
        grants(),
        agent_grants(),
        limits(),
        (prop::option::of(timeout()), prop::option::of(any::<u32>())),
        0..3u8,
    )
        .prop_map(
            |(
                (source, sha256, args),
                grants,
                agent,
                limits,
                (idle_timeout, message_budget),
                style,
            )| {
                AgentModel {
                    source,
                    sha256,
                    args,
                    grants,
                    agent,
                    limits,
                    idle_timeout,
                    message_budget,
                    style,
                }
            },
        )
}

pub(super) fn policy_model() -> impl Strategy<Value = PolicyModel> {
    (
        prop::option::of(limits()),
        prop::collection::vec((component_name(), component_model()), 0..=3),
        prop::collection::vec((component_name(), agent_model()), 0..=2),
        (
            prop::option::of(any::<u32>()),
            prop::option::of(any::<bool>()),
            prop::option::of(any::<u32>()),
            prop::collection::vec("https://[a-z]{1,8}\\.example", 0..=2),
        ),
        (
            prop::option::of("\\PC{1,10}"),
            prop::option::of(any::<u32>()),
            prop::option::of(timeout()),
            prop::option::of(select(vec!["normal", "full"])),
        ),
        (
            prop::option::of("https://[a-z]{1,8}\\.example/v1"),
            prop::option::of("[a-z0-9.-]{1,10}"),
            prop::option::of("[A-Z_]{1,10}"),
            prop::option::of(timeout()),
        ),
        any::<bool>(),
    )
        .prop_map(
            |(defaults, components, agents, serve, runtime, llm, literal_strings)| PolicyModel {
                defaults,
                // Table names are unique (TOML keys are case-sensitive).
                components: dedup_keys(components),
                agents: dedup_keys(agents),
                serve,
                runtime,
                llm,
                literal_strings,
            },
        )
}

fn dedup_keys<T>(items: Vec<(String, T)>) -> Vec<(String, T)> {
    let mut seen = BTreeSet::new();
    items
        .into_iter()
        .filter(|(name, _)| seen.insert(name.clone()))
        .collect()
}

/// Renders TOML tables in one of three styles.
pub(super) struct TomlWriter {
    pub(super) out: String,
    pub(super) literal: bool,
}

impl TomlWriter {
    fn string(&self, s: &str) -> String {
        toml_string(s, self.literal)
    }

    fn strings(&self, items: &[String]) -> String {
        toml_list(&items.iter().map(|s| self.string(s)).collect::<Vec<_>>())
    }

    fn key(&self, key: &str) -> String {
        // Bare keys may use A-Za-z0-9_-; quote the rest (and, for variety, names that start with a digit).
        if !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && !key.starts_with(|c: char| c.is_ascii_digit())
        {
            key.to_owned()
        } else {
            toml_string(key, false)
        }
    }

    fn line(&mut self, key: &str, value: &str) {
        let _ = writeln!(self.out, "{key} = {value}");
    }

    fn header(&mut self, path: &str) {
        let _ = writeln!(self.out, "\n[{path}]");
    }

    fn inline(&self, entries: &[(String, String)]) -> String {
        let entries: Vec<String> = entries.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        format!("{{ {} }}", entries.join(", "))
    }

    /// `allow` entries of the shared grants.
    fn grant_entries(&self, grants: &GrantsModel) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if !grants.env.is_empty() {
            let env: Vec<(String, String)> = grants
                .env
                .iter()
                .map(|(k, v)| (toml_string(k, false), self.string(v)))
                .collect();
            out.push(("env".into(), self.inline(&env)));
        }
        if !grants.http.is_empty() {
            let http: Vec<String> = grants.http.iter().map(|(w, _)| w.clone()).collect();
            out.push(("http".into(), self.strings(&http)));
        }
        if !grants.sockets.is_empty() {
            let sockets: Vec<String> = grants.sockets.iter().map(|(w, _)| w.clone()).collect();
            out.push(("sockets".into(), self.strings(&sockets)));
        }
        if !grants.fs.is_empty() {
            let mounts: Vec<String> = grants
                .fs
                .iter()
                .map(|m| {
                    let mut entries = vec![
                        ("host".to_owned(), self.string(&m.host)),
                        ("guest".to_owned(), self.string(&m.guest)),
                    ];
                    if let Some(mode) = m.mode {
                        entries.push(("mode".into(), self.string(mode)));
                    }
                    self.inline(&entries)
                })
                .collect();
            out.push(("fs".into(), toml_list(&mounts)));
        }
        out
    }

    pub(super) fn agent_grant_entries(&self, agent: &AgentGrantsModel) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if !agent.tools.is_empty() {
            out.push(("tools".into(), self.strings(&agent.tools)));
        }
        if let Some((model, max_tokens, max_turns)) = &agent.llm {
            let mut entries = vec![("model".to_owned(), self.string(model))];
            if let Some(n) = max_tokens {
                entries.push(("max_tokens".into(), n.to_string()));
            }
            if let Some(n) = max_turns {
                entries.push(("max_turns".into(), n.to_string()));
            }
            out.push(("llm".into(), self.inline(&entries)));
        }
        if let Some(quota) = &agent.memory {
            out.push((
                "memory".into(),
                self.inline(&[("quota".into(), quota.toml())]),
            ));
        }
        let mut messaging = Vec::new();
        for (key, list) in [
            ("send", &agent.send),
            ("publish", &agent.publish),
            ("subscribe", &agent.subscribe),
        ] {
            if !list.is_empty() {
                messaging.push((key.to_owned(), self.strings(list)));
            }
        }
        if !messaging.is_empty() {
            out.push(("messaging".into(), self.inline(&messaging)));
        }
        out
    }

    /// A table `[prefix]` with plain entries and the sub-tables `allow` and `limits`, in `style`.
    fn table(
        &mut self,
        prefix: &str,
        plain: Vec<(String, String)>,
        subtables: Vec<(&str, Vec<(String, String)>)>,
        style: u8,
    ) {
        self.header(prefix);
        for (k, v) in &plain {
            self.line(k, v);
        }
        match style {
            0 => {
                for (name, entries) in &subtables {
                    for (k, v) in entries {
                        self.line(&format!("{name}.{k}"), v);
                    }
                }
            }
            1 => {
                for (name, entries) in &subtables {
                    if entries.is_empty() {
                        continue;
                    }
                    self.header(&format!("{prefix}.{name}"));
                    for (k, v) in entries {
                        self.line(k, v);
                    }
                }
            }
            _ => {
                for (name, entries) in &subtables {
                    if !entries.is_empty() {
                        let inline = self.inline(entries);
                        self.line(name, &inline);
                    }
                }
            }
        }
    }

    fn common_plain(
        &self,
        source: &str,
        sha256: &Option<([u8; 32], u8)>,
        args: &[String],
    ) -> Vec<(String, String)> {
        let mut plain = vec![("source".to_owned(), self.string(source))];
        if let Some((digest, form)) = sha256 {
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            let written = match form {
                0 => hex,
                1 => hex.to_uppercase(),
                _ => format!("sha256:{hex}"),
            };
            plain.push(("sha256".into(), self.string(&written)));
        }
        if !args.is_empty() {
            plain.push(("args".into(), self.strings(args)));
        }
        plain
    }
}

pub(super) fn render_policy(model: &PolicyModel) -> String {
    let mut w = TomlWriter {
        out: String::from("# generated\n"),
        literal: model.literal_strings,
    };
    if let Some(defaults) = &model.defaults {
        w.header("defaults.limits");
        for (k, v) in defaults.entries() {
            w.line(&k, &v);
        }
    }
    let (max_instances, pooling, page_size, origins) = &model.serve;
    let mut serve = Vec::new();
    if let Some(n) = max_instances {
        serve.push(("max_instances".to_owned(), n.to_string()));
    }
    if let Some(b) = pooling {
        serve.push(("pooling".to_owned(), b.to_string()));
    }
    if let Some(n) = page_size {
        serve.push(("page_size".to_owned(), n.to_string()));
    }
    if !origins.is_empty() {
        serve.push(("allowed_origins".to_owned(), w.strings(origins)));
    }
    w.table("serve", serve, vec![], 0);

    let (store, hop_limit, reply_timeout, sync) = &model.runtime;
    let mut runtime = Vec::new();
    if let Some(s) = store {
        runtime.push(("store".to_owned(), w.string(s)));
    }
    if let Some(n) = hop_limit {
        runtime.push(("hop_limit".to_owned(), n.to_string()));
    }
    if let Some(t) = reply_timeout {
        runtime.push(("reply_timeout".to_owned(), t.toml()));
    }
    if let Some(s) = sync {
        runtime.push(("sync".to_owned(), w.string(s)));
    }
    w.table("agents", runtime, vec![], 0);

    let (base_url, llm_model, api_key_env, llm_timeout) = &model.llm;
    let mut llm = Vec::new();
    for (key, value) in [
        ("base_url", base_url),
        ("model", llm_model),
        ("api_key_env", api_key_env),
    ] {
        if let Some(v) = value {
            llm.push((key.to_owned(), w.string(v)));
        }
    }
    if let Some(t) = llm_timeout {
        llm.push(("timeout".to_owned(), t.toml()));
    }
    w.table("llm", llm, vec![], 0);

    for (name, c) in &model.components {
        let mut plain = w.common_plain(&c.source, &c.sha256, &c.args);
        if let Some(mode) = c.mode {
            plain.push(("mode".into(), w.string(mode)));
        }
        if let Some(n) = c.max_concurrency {
            plain.push(("max_concurrency".into(), n.to_string()));
        }
        if let Some(n) = c.queue {
            plain.push(("queue".into(), n.to_string()));
        }
        if let Some(t) = &c.idle_timeout {
            plain.push(("idle_timeout".into(), t.toml()));
        }
        let subtables = vec![
            ("allow", w.grant_entries(&c.grants)),
            ("limits", c.limits.entries()),
        ];
        let prefix = format!("component.{}", w.key(name));
        w.table(&prefix, plain, subtables, c.style);
    }
    for (name, a) in &model.agents {
        let mut plain = w.common_plain(&a.source, &a.sha256, &a.args);
        if let Some(t) = &a.idle_timeout {
            plain.push(("idle_timeout".into(), t.toml()));
        }
        if let Some(n) = a.message_budget {
            plain.push(("message_budget".into(), n.to_string()));
        }
        let mut allow = w.grant_entries(&a.grants);
        allow.extend(w.agent_grant_entries(&a.agent));
        let subtables = vec![("allow", allow), ("limits", a.limits.entries())];
        let prefix = format!("agent.{}", w.key(name));
        w.table(&prefix, plain, subtables, a.style);
    }
    w.out
}

/// The base directory of generated policies, with the directories mounts name.
pub(super) fn policy_base_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        for name in MOUNT_DIRS {
            std::fs::create_dir(dir.path().join(name)).expect("mount dir");
        }
        dir
    })
    .path()
}

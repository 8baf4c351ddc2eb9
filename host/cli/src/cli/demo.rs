//! `are demo`: build the example tools, then tell the story in the terminal: inspect a tool, call it, watch a
//! grant allow and deny, watch hostile components get stopped, each with what it cost, and finally run three
//! agents (coordinator, researchers, writer) that use a tool, a model, memory and messages.

use super::call::stats_line;
use anyhow::Context as _;
use are_agents::AgentRuntime;
use are_agents::store::Status;
use are_build::{build_components, ensure_wasm_target};
use are_policy::Grants;
use are_policy::common::fmt_bytes;
use are_policy::{Limits, Policy};
use are_runtime::component::{ComponentSpec, LoadedComponent};
use are_runtime::host::Host;
use are_runtime::invoke::CallReport;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing_subscriber::layer::SubscriberExt as _;

/// Run the demo: `are demo`.
#[derive(clap::Args)]
pub struct Opts {
    /// The example tools workspace.
    #[arg(long, default_value_os_t = repo_path("example-tools"))]
    tools: PathBuf,
    /// Where to build them.
    #[arg(long, default_value_os_t = repo_path("target/guests"))]
    target_dir: PathBuf,
}

/// A path inside the source checkout this binary was built from.
fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

struct Demo {
    host: Host,
    components: BTreeMap<String, PathBuf>,
    scratch: PathBuf,
}

impl Opts {
    pub async fn run(self, globals: super::Globals) -> anyhow::Result<ExitCode> {
        println!(
            "are demo: third-party WebAssembly tools, granted nothing but what a policy names\n"
        );
        let started = Instant::now();
        println!("▸ building the example tools (cargo, wasm32-wasip2) …");
        ensure_wasm_target()?;
        let built = build_components(&self.tools.join("Cargo.toml"), &self.target_dir, None)?;
        let mut components = BTreeMap::new();
        for c in &built {
            let (path, _) = super::build::finish(c, &self.target_dir)?;
            components.insert(c.package.clone(), path);
        }
        println!(
            "  {} components in {:.1?}\n",
            components.len(),
            started.elapsed()
        );
        let scratch = std::env::temp_dir().join(format!("are-demo-{}", std::process::id()));
        std::fs::create_dir_all(scratch.join("data"))
            .context("cannot create the demo's scratch directory")?;
        std::fs::write(
            scratch.join("data/notes.txt"),
            "tools see only what they are granted\n",
        )?;
        let demo = Demo {
            host: globals.host()?,
            components,
            scratch: scratch.clone(),
        };
        let result = demo.tell().await;
        let _ = std::fs::remove_dir_all(&scratch);
        result?;
        println!(
            "\ndone in {:.1?}. Next: `are inspect`, `are call --help`, and the README.",
            started.elapsed()
        );
        Ok(ExitCode::SUCCESS)
    }
}

impl Demo {
    fn path(&self, package: &str) -> anyhow::Result<&Path> {
        self.components
            .get(package)
            .map(PathBuf::as_path)
            .with_context(|| format!("the example tools did not produce `{package}`"))
    }

    fn load(
        &self,
        package: &str,
        grants: Grants,
        limits: Limits,
    ) -> anyhow::Result<LoadedComponent> {
        let spec = ComponentSpec {
            name: package.to_string(),
            path: self.path(package)?.to_path_buf(),
            grants,
            limits,
            base_dir: self.scratch.clone(),
            ..ComponentSpec::default()
        };
        Ok(self.host.load(spec)?)
    }

    async fn call(&self, tool: &LoadedComponent, function: &str, args: Value) -> CallReport {
        let report = tool.call(self.host.engine(), function, &args, None).await;
        match &report.outcome {
            Ok(out) if out.is_err => println!("    ✗ tool error: {}", compact(&out.value, 300)),
            Ok(out) => println!("    ✓ {}", compact(&out.value, 300)),
            Err(e) => println!("    ✗ {e}"),
        }
        println!("      {}", stats_line(&report.stats));
        report
    }

    async fn tell(&self) -> anyhow::Result<()> {
        let limits = Limits::default();

        println!("1 · inspect: what does text.wasm offer, and what does it import?");
        let text = self.load("text", Grants::default(), limits)?;
        for f in text.description.tools() {
            let docs = f
                .docs
                .as_deref()
                .and_then(|d| d.lines().next())
                .unwrap_or("");
            println!("    {:<18} {docs}", f.qualified_name());
        }
        let caps: Vec<String> = text
            .description
            .capabilities()
            .iter()
            .map(|c| c.to_string())
            .collect();
        println!("    imports: {} (no files, no network)", caps.join(", "));
        println!(
            "    loaded in {:.1?} ({:?})\n",
            text.load_stats.duration, text.load_stats.cache
        );

        println!("2 · call a tool: text.word-count");
        println!(
            "    $ are call text.wasm text.word-count '{{\"text\": \"the quick brown fox\\njumps\"}}'"
        );
        self.call(
            &text,
            "text.word-count",
            json!({"text": "the quick brown fox\njumps"}),
        )
        .await;
        println!();

        println!("3 · grants: fetch.get needs `allow.http`");
        let server = DemoServer::start().await?;
        let url = format!("http://127.0.0.1:{}/hello", server.port);
        println!("    without a grant:");
        let fetch = self.load("fetch", Grants::default(), limits)?;
        self.call(&fetch, "fetch.get", json!({ "url": url })).await;
        let grant: Grants =
            toml::from_str(&format!("http = [\"http://127.0.0.1:{}\"]", server.port))?;
        let fetch = self.load("fetch", grant, limits)?;
        println!(
            "    with allow.http = [\"http://127.0.0.1:{}\"]:",
            server.port
        );
        self.call(&fetch, "fetch.get", json!({ "url": url, "max-bytes": 200 }))
            .await;
        println!(
            "    same grant, another origin (http://127.0.0.1:{}):",
            server.port + 1
        );
        let other = format!("http://127.0.0.1:{}/", server.port + 1);
        self.call(&fetch, "fetch.get", json!({ "url": other }))
            .await;
        println!();

        println!("4 · files stay inside their mount");
        let mount: Grants =
            toml::from_str("fs = [{ host = \"data\", guest = \"/data\", mode = \"ro\" }]")?;
        let files = self.load("files", mount.clone(), limits)?;
        println!("    files.read /data/notes.txt with a read-only mount of ./data at /data:");
        self.call(&files, "files.read", json!({"path": "/data/notes.txt"}))
            .await;
        println!("    files.write /data/new.txt on the same read-only mount:");
        self.call(
            &files,
            "files.write",
            json!({"path": "/data/new.txt", "contents": "x"}),
        )
        .await;
        println!(
            "    a hostile component tries `..`, absolute paths and symlinks out of the mount:"
        );
        let escape = self.load("hostile-fs-escape", mount, limits)?;
        for function in ["attack.dot-dot", "attack.absolute"] {
            let report = escape
                .call(self.host.engine(), function, &Value::Null, None)
                .await;
            summarize_attempts(function, &report);
        }
        println!();

        println!("5 · hostile code is stopped, and the host keeps serving");
        let spin = self.load("hostile-loop", Grants::default(), limits)?;
        println!("    an infinite loop, with 200 000 000 fuel:");
        let fuel = Limits {
            fuel: Some(200_000_000),
            ..limits
        };
        let report = spin
            .call(self.host.engine(), "attack.spin", &Value::Null, Some(fuel))
            .await;
        print_outcome(&report);
        println!("    the same loop with unlimited fuel and a 1 s timeout:");
        let timed = Limits {
            fuel: None,
            timeout: Duration::from_secs(1),
            ..limits
        };
        let report = spin
            .call(self.host.engine(), "attack.spin", &Value::Null, Some(timed))
            .await;
        print_outcome(&report);
        println!("    a memory bomb, with a 32 MiB limit:");
        let bomb = self.load("hostile-memory", Grants::default(), limits)?;
        let small = Limits {
            memory: 32 << 20,
            ..limits
        };
        let report = bomb
            .call(self.host.engine(), "attack.bomb", &Value::Null, Some(small))
            .await;
        match &report.outcome {
            Ok(out) => println!(
                "    ✓ contained: the guest grew to {} and every growth past the limit was refused",
                fmt_bytes(out.value.as_u64().unwrap_or(0))
            ),
            Err(e) => println!("    ✓ stopped: {e}"),
        }
        println!("      {}", stats_line(&report.stats));
        println!("    unbounded recursion:");
        let deep = self.load("hostile-recursion", Grants::default(), limits)?;
        print_outcome(
            &deep
                .call(self.host.engine(), "attack.overflow", &Value::Null, None)
                .await,
        );
        println!(
            "    reading the environment (the host has {} variables):",
            std::env::vars_os().count()
        );
        let snoop = self.load("hostile-env-snoop", Grants::default(), limits)?;
        let report = snoop
            .call(self.host.engine(), "attack.vars", &Value::Null, None)
            .await;
        match &report.outcome {
            Ok(out) => println!(
                "    ✓ contained: the guest sees {} variables",
                out.value.as_array().map_or(0, Vec::len)
            ),
            Err(e) => println!("    ✗ {e}"),
        }
        println!("    and after all that, the first tool still answers:");
        self.call(
            &text,
            "text.slugify",
            json!({"text": "Hostile code stopped, host fine"}),
        )
        .await;
        println!();

        let agents = self.agents(server.port).await;
        server.stop();
        agents
    }

    /// Section 6: the coordinator, researcher and writer agents of `example-tools/agents/`, run by the agent
    /// runtime with a store in the scratch directory, against the configured model or the scripted one.
    async fn agents(&self, port: u16) -> anyhow::Result<()> {
        println!(
            "6 · agents: a coordinator fans a job out, researchers fetch and summarise, a writer reports"
        );
        let dir = self.scratch.join("agents");
        std::fs::create_dir_all(&dir)?;
        let wasm = |package: &str| -> anyhow::Result<String> {
            Ok(self.path(package)?.display().to_string())
        };
        // What `are run --policy are.toml` would read. Generous timeouts, for when a real model answers.
        let policy = format!(
            r#"[component.fetch]
source = {fetch:?}
allow.http = ["http://127.0.0.1:{port}"]

[agent.coordinator]
source = {coordinator:?}
allow.messaging = {{ publish = ["tasks"], send = ["writer/*"] }}
allow.memory = {{ quota = "1 MiB" }}
idle_timeout = "1s"
limits.timeout = "5m"

[agent.researcher]
source = {researcher:?}
allow.tools = ["fetch.get"]
allow.llm = {{ model = "default", max_tokens = 20000, max_turns = 4 }}
allow.messaging = {{ subscribe = ["tasks"], send = ["coordinator/*"] }}
idle_timeout = "1s"
limits.timeout = "5m"

[agent.writer]
source = {writer:?}
allow.llm = {{ model = "default", max_tokens = 8000, max_turns = 1 }}
idle_timeout = "1s"
limits.timeout = "5m"

[agents]
store = "agents.db"
reply_timeout = "4m"
"#,
            fetch = wasm("fetch")?,
            coordinator = wasm("agent-coordinator")?,
            researcher = wasm("agent-researcher")?,
            writer = wasm("agent-writer")?,
        );
        let policy_path = dir.join("are.toml");
        std::fs::write(&policy_path, policy)?;
        let policy = Policy::load(&policy_path)?;
        let runtime = AgentRuntime::start(&policy, &self.host)?;
        println!("    policy:");
        println!("      coordinator  publishes on `tasks`, sends to writer/*, 1 MiB of memory");
        println!(
            "      researcher   subscribes to `tasks`, sends to coordinator/*, tool fetch.get, model"
        );
        println!("      writer       model");
        println!("    model: {}", runtime.llm().describe());
        if runtime.llm().is_scripted() {
            println!(
                "      (it calls the first tool that takes a URL, then answers with what it was given: no \
                 intelligence, but\n       the messages, grants, tool calls, budgets and memory are the real ones)"
            );
        }
        let job = json!({
            "topic": "sandboxed AI agents",
            "sources": [
                format!("http://127.0.0.1:{port}/wasm"),
                format!("http://127.0.0.1:{port}/agents"),
            ],
        })
        .to_string();
        println!("    $ are run --policy are.toml --send coordinator/job-1 '{job}'");

        // The runtime runs on a thread of its own, with a subscriber that prints its events as they happen.
        let started = Instant::now();
        let rt = runtime.clone();
        let finished = tokio::task::spawn_blocking(move || {
            let transcript = tracing_subscriber::registry().with(Transcript);
            tracing::subscriber::with_default(transcript, || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(run_job(&rt, &job))
            })
        })
        .await
        .context("the agent runtime thread failed")??;
        println!(
            "    all messages handled in {:.1?}",
            finished.duration_since(started)
        );

        let store = runtime.store();
        let report = store.memory_get("coordinator/job-1", "report/job-1")?;
        if let Some(report) = &report {
            println!("    the report, in coordinator/job-1's memory under report/job-1:");
            for line in report.lines().filter(|l| !l.trim().is_empty()) {
                println!("      │ {}", clip(line, 110));
            }
        }
        println!("    $ are agents list --policy are.toml");
        println!(
            "      {:<20} {:>11} {:>8} {:>8} {:>10}",
            "agent", "activations", "handled", "pending", "memory"
        );
        for a in store.agents()? {
            println!(
                "      {:<20} {:>11} {:>8} {:>8} {:>10}",
                a.id,
                a.activations,
                a.handled,
                a.pending,
                fmt_bytes(u64::try_from(a.memory_bytes).unwrap_or(0))
            );
        }
        let messages = store.messages(None, 1000)?;
        let done = messages.iter().filter(|m| m.status == Status::Done).count();
        println!(
            "    {} messages, {done} done: each was stored before it was accepted, and after a crash `are run` \
             resumes\n    the unfinished ones (at least once, same message id)",
            messages.len()
        );
        anyhow::ensure!(
            report.is_some(),
            "the coordinator stored no report: see the errors above"
        );
        Ok(())
    }
}

/// Send the job to `coordinator/job-1`, print its reply, wait until every message is handled, then give the
/// agents a moment to be deactivated as idle. Returns when the last message was handled.
async fn run_job(runtime: &AgentRuntime, job: &str) -> anyhow::Result<Instant> {
    let (_, reply) = runtime.send("coordinator/job-1", job)?;
    match reply.await {
        Ok(Ok(reply)) => println!(
            "      ↳ coordinator/job-1 replied {}",
            reply.unwrap_or_default()
        ),
        Ok(Err(e)) => println!("      ↳ coordinator/job-1 failed: {e}"),
        Err(_) => anyhow::bail!("the runtime stopped before the coordinator replied"),
    }
    runtime.until_idle().await;
    let finished = Instant::now();
    let deadline = finished + Duration::from_secs(3);
    while runtime.active() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(finished)
}

/// Prints the agent runtime's events, as they happen, while it is a thread's default subscriber: activations
/// and deactivations, model and tool calls, and the agents' own log lines.
struct Transcript;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Transcript {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let meta = event.metadata();
        if !meta.target().starts_with("are::agent") {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let get = |name: &str| fields.0.get(name).map_or("", String::as_str);
        let agent = get("agent");
        let line = match get("message") {
            "activated" => format!("● {agent} activated"),
            "deactivated" => format!("○ {agent} deactivated (idle)"),
            "tool call" => format!("⚙ {agent} called {} ({} fuel)", get("tool"), get("fuel")),
            "model call" => format!(
                "✎ {agent} asked the model (turn {}: {} + {} tokens)",
                get("turn"),
                get("prompt"),
                get("completion")
            ),
            message if *meta.level() <= tracing::Level::WARN => format!("! {agent} {message}"),
            message if !agent.is_empty() && *meta.level() <= tracing::Level::INFO => {
                format!("  {agent}: {message}")
            }
            _ => return,
        };
        println!("      {}", clip(&line, 120));
    }
}

/// An event's fields, as text.
#[derive(Default)]
struct Fields(BTreeMap<&'static str, String>);

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name(), value.to_string());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
}

/// `text` cut to `max` characters, with `…` when cut.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

fn print_outcome(report: &CallReport) {
    match &report.outcome {
        Ok(out) => println!("    ? finished: {}", compact(&out.value, 200)),
        Err(e) => println!("    ✓ stopped: {e}"),
    }
    println!("      {}", stats_line(&report.stats));
}

fn summarize_attempts(function: &str, report: &CallReport) {
    let Ok(out) = &report.outcome else {
        if let Err(e) = &report.outcome {
            println!("    {function}: ✓ stopped: {e}");
        }
        return;
    };
    let attempts = out.value.as_array().cloned().unwrap_or_default();
    let escaped: Vec<&Value> = attempts
        .iter()
        .filter(|a| a["outcome"].get("ok").is_some())
        .collect();
    if escaped.is_empty() {
        println!("    {function}: ✓ all {} attempts refused", attempts.len());
    } else {
        println!(
            "    {function}: ✗ {} of {} attempts got through!",
            escaped.len(),
            attempts.len()
        );
        for a in escaped {
            println!("      {}", compact(a, 200));
        }
    }
}

fn compact(value: &Value, max: usize) -> String {
    let text = value.to_string();
    if text.len() <= max {
        return text;
    }
    let cut = (0..=max)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    format!("{}… ({})", &text[..cut], fmt_bytes(text.len() as u64))
}

/// A tiny local HTTP server for the grant demonstration: answers every request with a short greeting.
struct DemoServer {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl DemoServer {
    async fn start() -> anyhow::Result<DemoServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let path = String::from_utf8_lossy(&request)
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("/")
                        .to_string();
                    let body = page(&path);
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(response.as_bytes()).await;
                });
            }
        });
        Ok(DemoServer { port, task })
    }

    fn stop(self) {
        self.task.abort();
    }
}

/// What the demo server answers at `path`: two short pages for the agents to research, a greeting elsewhere.
fn page(path: &str) -> &'static str {
    match path {
        "/wasm" => {
            "WebAssembly components are portable modules with typed interfaces written in WIT. A host grants each \
             one exactly the capabilities it needs (directories, network origins, environment variables) and \
             nothing else, while fuel, deadlines and memory limits stop runaway code.\n"
        }
        "/agents" => {
            "An agent is a model plus instructions, tools and a runtime. Run as a component, an agent has an \
             identity, handles one message at a time, keeps its memory in a local store that survives crashes, \
             and reaches tools, the model and other agents only through what its policy grants.\n"
        }
        _ => "hello from the demo server\n",
    }
}

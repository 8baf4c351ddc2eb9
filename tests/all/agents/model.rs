//! The model: the tool loop against a scripted OpenAI-compatible endpoint with the key from the environment, and
//! the turn and token budgets the host enforces.

use super::{err_of, runtime_with, write_policy};
use crate::common::{Output, are, ask_agent, output_off_runtime, tempdir};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// A local OpenAI-compatible endpoint with scripted answers: request `n` gets `script[n]` (the last one once
/// the script runs out). It records every request.
struct ScriptedModel {
    port: u16,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Clone)]
struct SeenRequest {
    authorization: Option<String>,
    body: Value,
}

impl ScriptedModel {
    async fn start(script: Vec<Value>) -> ScriptedModel {
        use axum::extract::State;
        use axum::http::HeaderMap;

        type Shared = (Arc<Vec<Value>>, Arc<Mutex<Vec<SeenRequest>>>);
        async fn complete(
            State((script, seen)): State<Shared>,
            headers: HeaderMap,
            axum::Json(body): axum::Json<Value>,
        ) -> axum::Json<Value> {
            let mut seen = seen.lock().unwrap();
            let n = seen.len();
            seen.push(SeenRequest {
                authorization: headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap_or_default().to_string()),
                body,
            });
            axum::Json(script[n.min(script.len() - 1)].clone())
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(complete))
            .with_state((Arc::new(script), seen.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ScriptedModel { port, seen, task }
    }

    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    fn requests(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for ScriptedModel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn completion(message: Value, finish: &str, usage: (u32, u32)) -> Value {
    json!({
        "id": "chatcmpl-test", "object": "chat.completion", "model": "test-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1, "total_tokens": usage.0 + usage.1},
    })
}

fn tool_call(id: &str, wire_name: &str, args: Value, usage: (u32, u32)) -> Value {
    completion(
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": id, "type": "function", "function": {"name": wire_name, "arguments": args.to_string()}}
        ]}),
        "tool_calls",
        usage,
    )
}

fn final_answer(text: &str, usage: (u32, u32)) -> Value {
    completion(json!({"role": "assistant", "content": text}), "stop", usage)
}

/// `are run` with `args`, off the async runtime (the test's servers run on it); `env` is set for the process.
async fn run_are(args: Vec<String>, env: Vec<(String, String)>) -> Output {
    let mut cmd = are();
    cmd.args(&args)
        .envs(env)
        .env_remove("ARE_LLM_BASE_URL")
        .env_remove("ARE_LLM_MODEL")
        .env_remove("ARE_LLM_API_KEY_ENV");
    output_off_runtime(cmd).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_model_loop_runs_tools_with_the_key_from_the_environment() {
    let model = ScriptedModel::start(vec![
        tool_call(
            "call-1",
            "text__word-count",
            json!({"text": "one two three"}),
            (30, 10),
        ),
        final_answer("The text has 3 words.", (50, 5)),
    ])
    .await;
    let dir = tempdir();
    let key_env = format!("ARE_TEST_LLM_KEY_{}", std::process::id());
    let key = format!("sk-test-{:x}", rand_u64());
    let config = write_policy(
        dir.path(),
        &format!(
            r#"
[llm]
base_url = "{}"
model = "test-model"
api_key_env = "{key_env}"

[agent.probe]
source = "{{probe}}"
allow.tools = ["text.*"]
allow.llm = {{ model = "default" }}
"#,
            model.base_url()
        ),
    );
    let config = config.display().to_string();
    let prompt = "How many words are in 'one two three'?";
    let cmd = json!({"op": "ask", "prompt": prompt}).to_string();
    let args: Vec<String> = [
        "run",
        "--config",
        &config,
        "--send",
        "probe/a",
        &cmd,
        "--until-idle",
        "--json",
    ]
    .map(String::from)
    .to_vec();

    let out = run_are(args.clone(), vec![(key_env.clone(), key.clone())]).await;
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&model.base_url()) && out.stderr.contains("test-model"),
        "{}",
        out.stderr
    );
    let line: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(line["to"], "probe/a");
    let reply: Value = serde_json::from_str(line["reply"].as_str().unwrap()).unwrap();
    assert_eq!(
        reply,
        json!({"ok": {"text": "The text has 3 words.", "turns": 2, "tools": [["text.word-count", true]], "tokens": 95}}),
        "the runner called the tool, fed the result back and got the final answer; usage is reported"
    );

    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bearer {key}").as_str()),
            "the key from ${key_env} goes to the endpoint"
        );
        assert_eq!(r.body["model"], "test-model");
        let offered: Vec<&str> = r.body["tools"]
            .as_array()
            .expect("tools are offered")
            .iter()
            .map(|t| {
                assert_eq!(t["type"], "function");
                t["function"]["name"].as_str().unwrap()
            })
            .collect();
        assert!(
            offered.contains(&"text__word-count") && offered.contains(&"text__slugify"),
            "granted tools are offered as functions: {offered:?}"
        );
        // The function-name rule of the model APIs (OpenAI, Anthropic).
        assert!(
            offered.iter().all(|n| (1..=64).contains(&n.len())
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')),
            "{offered:?}"
        );
        let word_count = r.body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["function"]["name"] == "text__word-count")
            .unwrap();
        assert_eq!(word_count["function"]["parameters"]["type"], "object");
        assert!(word_count["function"]["parameters"]["properties"]["text"].is_object());
        assert!(
            !word_count["function"]["description"]
                .as_str()
                .unwrap()
                .is_empty()
        );
    }
    assert_eq!(
        requests[0].body["messages"],
        json!([{"role": "user", "content": prompt}])
    );
    assert_eq!(
        requests[0].body["max_tokens"], 20_000,
        "the host caps a call at the budget left"
    );
    assert_eq!(requests[1].body["max_tokens"], 20_000 - 40);
    let second = requests[1].body["messages"].as_array().unwrap();
    assert_eq!(second.len(), 3, "{second:?}");
    assert_eq!(second[1]["role"], "assistant");
    assert_eq!(second[1]["tool_calls"][0]["id"], "call-1");
    assert_eq!(
        second[1]["tool_calls"][0]["function"]["name"],
        "text__word-count"
    );
    assert_eq!(second[2]["role"], "tool");
    assert_eq!(second[2]["tool_call_id"], "call-1");
    let result: Value = serde_json::from_str(second[2]["content"].as_str().unwrap()).unwrap();
    assert_eq!(result["words"], 3, "the tool's result is fed back");

    // The key is nowhere the agent could see or leave it: not in its replies, output, or the store.
    assert!(!out.stdout.contains(&key) && !out.stderr.contains(&key));
    for r in &requests {
        assert!(
            !r.body.to_string().contains(&key),
            "the agent never had the key"
        );
    }
    for entry in std::fs::read_dir(dir.path().join(".are")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
            "the store holds the key"
        );
    }

    // Without the variable, `are run` refuses to start and names it.
    let out = run_are(args, vec![]).await;
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr
            .contains(&format!("api_key_env names ${key_env}, which is not set")),
        "{}",
        out.stderr
    );
    assert_eq!(model.requests().len(), 2);
}

/// Some randomness without a dependency: the hash of a fresh `RandomState`.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_host_enforces_the_models_turn_and_token_budgets() {
    // A model that always wants another tool call, at 80 + 40 tokens a call.
    let model = ScriptedModel::start(vec![tool_call(
        "call-n",
        "text__word-count",
        json!({"text": "again"}),
        (80, 40),
    )])
    .await;
    let dir = tempdir();
    let rt = runtime_with(
        dir.path(),
        &format!(
            r#"
[llm]
base_url = "{}"

[agent.turns]
source = "{{probe}}"
allow.tools = ["text.word-count"]
allow.llm = {{ model = "default", max_turns = 2 }}

[agent.tokens]
source = "{{probe}}"
allow.tools = ["text.word-count"]
allow.llm = {{ model = "default", max_tokens = 100 }}

[agent.runner]
source = "{{probe}}"
allow.tools = ["text.word-count"]
allow.llm = {{ model = "default" }}
"#,
            model.base_url()
        ),
    );

    let reply = ask_agent(&rt, "turns/a", json!({"op": "ask", "prompt": "loop"}))
        .await
        .unwrap();
    let e = err_of(&reply);
    assert!(
        e.contains("BudgetExhausted")
            && e.contains("2 model calls")
            && e.contains("allow.llm.max_turns"),
        "{e}"
    );
    assert_eq!(
        model.requests().len(),
        2,
        "the third call never reached the model"
    );
    // The budget is per message: the next message gets its turns again.
    let reply = ask_agent(&rt, "turns/a", json!({"op": "ask", "prompt": "loop"}))
        .await
        .unwrap();
    assert!(err_of(&reply).contains("allow.llm.max_turns"));
    assert_eq!(model.requests().len(), 4);

    let reply = ask_agent(&rt, "tokens/a", json!({"op": "ask", "prompt": "loop"}))
        .await
        .unwrap();
    let e = err_of(&reply);
    assert!(
        e.contains("BudgetExhausted")
            && e.contains("100 tokens")
            && e.contains("allow.llm.max_tokens"),
        "{e}"
    );
    let requests = model.requests();
    assert_eq!(requests.len(), 5, "one call spent the 100-token budget");
    assert_eq!(
        requests[4].body["max_tokens"], 100,
        "a call asks for at most the tokens left"
    );

    // The guest runner's own limit.
    let reply = ask_agent(
        &rt,
        "runner/a",
        json!({"op": "ask", "prompt": "loop", "max_turns": 3}),
    )
    .await
    .unwrap();
    let e = err_of(&reply);
    assert!(
        e.contains("BudgetExhausted") && e.contains("after 3 turns"),
        "{e}"
    );
    assert_eq!(model.requests().len(), 8);
}

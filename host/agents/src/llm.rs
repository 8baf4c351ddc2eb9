//! The model behind `are:agent/llm`: an OpenAI-compatible chat-completions endpoint, or, when none is
//! configured, a small built-in scripted model that works offline (for demos and tests; it says so).
//!
//! The API key is read by the host from the environment variable the config names and is sent only to the
//! configured endpoint; agents never see it.

use are_policy::LlmSection;
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions.
    System,
    /// The user (or the agent speaking for its task).
    User,
    /// The model.
    Assistant,
    /// A tool's result.
    Tool,
}

/// A tool call the model asks for. `name` is the tool's name (`component.function`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    /// The model's id for the call.
    pub id: String,
    /// The tool.
    pub name: String,
    /// JSON arguments.
    pub arguments: String,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Who said it.
    pub role: Role,
    /// Its text.
    pub content: String,
    /// Tool calls (assistant messages).
    pub tool_calls: Vec<ToolCall>,
    /// The call this answers (tool messages).
    pub tool_call_id: Option<String>,
}

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDefinition {
    /// `component.function`.
    pub name: String,
    /// The name the model sees: the catalog's portable spelling (`component__function`, see
    /// [`are_runtime::catalog::portable_name`]).
    pub wire_name: String,
    /// What it does.
    pub description: String,
    /// JSON Schema of its arguments.
    pub parameters: Value,
}

/// The model's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatResponse {
    /// Its message.
    pub message: ChatMessage,
    /// `stop`, `tool_calls`, `length`…
    pub finish_reason: String,
    /// Prompt tokens spent.
    pub prompt_tokens: u32,
    /// Completion tokens spent.
    pub completion_tokens: u32,
}

/// A configured model.
#[derive(Debug, Clone)]
pub struct LlmClient {
    endpoint: Option<Endpoint>,
    timeout: Duration,
}

#[derive(Debug, Clone)]
struct Endpoint {
    url: String,
    model: String,
    key: Option<String>,
}

/// Why the model could not be set up or asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    /// `[llm] api_key_env` (or `$ARE_LLM_API_KEY_ENV`) names a variable that is not set.
    #[error("[llm] api_key_env names ${0}, which is not set; export it or remove api_key_env")]
    KeyUnset(String),
    /// No answer within `[llm] timeout`.
    #[error("the model did not answer within {0:?}")]
    Timeout(Duration),
    /// The request did not reach the model: the URL, the connection, TLS or HTTP (the message says which).
    #[error("{0}")]
    Transport(String),
    /// The model answered, but with an HTTP error or something that is not a chat completion.
    #[error("{0}")]
    Answer(String),
}

impl LlmClient {
    /// The model of `[llm]`, with `$ARE_LLM_BASE_URL`, `$ARE_LLM_MODEL` and `$ARE_LLM_API_KEY_ENV` taking
    /// precedence. Without a base URL, the built-in scripted model.
    ///
    /// # Errors
    /// When the key's environment variable is named but not set.
    pub fn from_config(section: &LlmSection) -> Result<LlmClient, LlmError> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let base = env("ARE_LLM_BASE_URL").or_else(|| section.base_url.clone());
        let timeout = section.timeout.map_or(Duration::from_secs(60), |t| t.0);
        let Some(base) = base else {
            return Ok(LlmClient {
                endpoint: None,
                timeout,
            });
        };
        let model = env("ARE_LLM_MODEL")
            .or_else(|| section.model.clone())
            .unwrap_or_else(|| "gpt-4o-mini".to_string());
        let key_env = env("ARE_LLM_API_KEY_ENV").or_else(|| section.api_key_env.clone());
        let key = match key_env {
            Some(name) => Some(std::env::var(&name).map_err(|_| LlmError::KeyUnset(name.clone()))?),
            None => None,
        };
        Ok(LlmClient {
            endpoint: Some(Endpoint {
                url: format!("{}/chat/completions", base.trim_end_matches('/')),
                model,
                key,
            }),
            timeout,
        })
    }

    /// The built-in scripted model.
    pub fn scripted() -> LlmClient {
        LlmClient {
            endpoint: None,
            timeout: Duration::from_secs(60),
        }
    }

    /// Whether this is the built-in scripted model (no endpoint configured).
    pub fn is_scripted(&self) -> bool {
        self.endpoint.is_none()
    }

    /// A one-line description: the endpoint and model, or the scripted model.
    pub fn describe(&self) -> String {
        match &self.endpoint {
            Some(e) => format!("{} (model {})", e.url, e.model),
            None => "the built-in scripted model (offline; set ARE_LLM_BASE_URL to use a real one)"
                .to_string(),
        }
    }

    /// Ask the model.
    ///
    /// # Errors
    /// A message saying what failed: connection, HTTP status (with the body's error message), or an answer
    /// that is not a chat completion.
    pub async fn chat(
        &self,
        messages: &[ChatMessage],
        tools: &[ToolDefinition],
        max_tokens: Option<u32>,
    ) -> Result<ChatResponse, LlmError> {
        let Some(endpoint) = &self.endpoint else {
            return Ok(scripted(messages, tools));
        };
        let mut body = json!({
            "model": endpoint.model,
            "messages": messages.iter().map(|m| message_json(m, tools)).collect::<Vec<_>>(),
        });
        if !tools.is_empty() {
            body["tools"] = tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "function": {
                        "name": t.wire_name, "description": t.description, "parameters": t.parameters,
                    }})
                })
                .collect();
        }
        if let Some(n) = max_tokens {
            body["max_tokens"] = n.into();
        }
        let response = tokio::time::timeout(
            self.timeout,
            post_json(&endpoint.url, endpoint.key.as_deref(), &body),
        )
        .await
        .map_err(|_| LlmError::Timeout(self.timeout))??;
        parse_completion(&response, tools)
    }
}

/// The name the model used for a tool, back as the tool's own name (an unknown one stays as it is, and fails as
/// an unknown tool).
fn tool_name(wire: &str, tools: &[ToolDefinition]) -> String {
    tools
        .iter()
        .find(|t| t.wire_name == wire)
        .map_or_else(|| wire.to_string(), |t| t.name.clone())
}

/// A tool's name as the model knows it.
fn wire_name(name: &str, tools: &[ToolDefinition]) -> String {
    tools.iter().find(|t| t.name == name).map_or_else(
        || are_runtime::catalog::portable_name(name),
        |t| t.wire_name.clone(),
    )
}

fn message_json(m: &ChatMessage, tools: &[ToolDefinition]) -> Value {
    let mut v = json!({ "role": m.role, "content": m.content });
    if !m.tool_calls.is_empty() {
        v["tool_calls"] = m
            .tool_calls
            .iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": wire_name(&c.name, tools), "arguments": c.arguments}}))
            .collect();
    }
    if let Some(id) = &m.tool_call_id {
        v["tool_call_id"] = id.clone().into();
    }
    v
}

fn parse_completion(v: &Value, tools: &[ToolDefinition]) -> Result<ChatResponse, LlmError> {
    let choice = v["choices"].get(0).ok_or_else(|| {
        LlmError::Answer(format!(
            "the model's answer has no choices: {}",
            truncate(&v.to_string(), 300)
        ))
    })?;
    let msg = &choice["message"];
    let tool_calls = msg["tool_calls"]
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .map(|c| ToolCall {
                    id: c["id"].as_str().unwrap_or_default().to_string(),
                    name: tool_name(c["function"]["name"].as_str().unwrap_or_default(), tools),
                    arguments: c["function"]["arguments"]
                        .as_str()
                        .unwrap_or("{}")
                        .to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    let token = |k: &str| u32::try_from(v["usage"][k].as_u64().unwrap_or(0)).unwrap_or(u32::MAX);
    Ok(ChatResponse {
        message: ChatMessage {
            role: Role::Assistant,
            content: msg["content"].as_str().unwrap_or_default().to_string(),
            tool_calls,
            tool_call_id: None,
        },
        finish_reason: choice["finish_reason"]
            .as_str()
            .unwrap_or("stop")
            .to_string(),
        prompt_tokens: token("prompt_tokens"),
        completion_tokens: token("completion_tokens"),
    })
}

fn truncate(s: &str, max: usize) -> &str {
    let end = (0..=max.min(s.len()))
        .rev()
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(0);
    &s[..end]
}

/// POST `body` as JSON to `url` (http or https) and parse the JSON answer.
async fn post_json(url: &str, bearer: Option<&str>, body: &Value) -> Result<Value, LlmError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| LlmError::Transport(format!("invalid model URL {url:?}: {e}")))?;
    let https = uri.scheme_str() == Some("https");
    let host = uri
        .host()
        .ok_or_else(|| LlmError::Transport(format!("model URL {url:?} has no host")))?
        .to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp =
        tokio::net::TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port))
            .await
            .map_err(|e| {
                LlmError::Transport(format!("cannot connect to the model at {host}:{port}: {e}"))
            })?;
    let io: Box<dyn are_runtime::caps::http::IoStream> = if https {
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| LlmError::Transport(format!("bad host {host}: {e}")))?;
        let tls = tokio_rustls::TlsConnector::from(are_runtime::tls::client_config())
            .connect(name, tcp)
            .await
            .map_err(|e| LlmError::Transport(format!("TLS with the model at {host}: {e}")))?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(io))
            .await
            .map_err(|e| LlmError::Transport(format!("HTTP handshake with the model: {e}")))?;
    tokio::spawn(conn);
    let authority = uri.authority().map_or(host.clone(), |a| a.to_string());
    let mut request = http::Request::post(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(http::header::HOST, authority)
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(key) = bearer {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let request = request
        .body(Full::new(bytes::Bytes::from(body.to_string())))
        .map_err(|e| LlmError::Transport(format!("cannot build the model request: {e}")))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| LlmError::Transport(format!("model request failed: {e}")))?;
    let status = response.status();
    let bytes = http_body_util::Limited::new(response.into_body(), 16 << 20)
        .collect()
        .await
        .map_err(|e| LlmError::Transport(format!("reading the model's answer: {e}")))?
        .to_bytes();
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| {
        LlmError::Answer(format!(
            "the model answered HTTP {status} with something that is not JSON: {}",
            truncate(&String::from_utf8_lossy(&bytes), 300)
        ))
    })?;
    if !status.is_success() {
        let detail = value["error"]["message"]
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string);
        return Err(LlmError::Answer(format!(
            "the model answered HTTP {status}: {}",
            truncate(&detail, 500)
        )));
    }
    Ok(value)
}

/// The built-in scripted model: offline and deterministic. With tools offered and no tool result yet, it calls
/// the first tool that takes a `url` with the first URL in the last user message; after tool results, or
/// without tools, it answers with a summary of what it was given.
fn scripted(messages: &[ChatMessage], tools: &[ToolDefinition]) -> ChatResponse {
    let prompt_tokens = messages.iter().map(|m| approx_tokens(&m.content)).sum();
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map_or("", |m| m.content.as_str());
    let tool_results: Vec<&ChatMessage> =
        messages.iter().filter(|m| m.role == Role::Tool).collect();
    let url = last_user
        .split_whitespace()
        .find(|w| w.starts_with("http://") || w.starts_with("https://"))
        .map(|w| w.trim_end_matches(['.', ',', ')', '"', '\'']));
    let url_tool = tools
        .iter()
        .find(|t| t.parameters["properties"].get("url").is_some());
    if let (true, Some(url), Some(tool)) = (tool_results.is_empty(), url, url_tool) {
        let call = ToolCall {
            id: "call-1".to_string(),
            name: tool.name.clone(),
            arguments: json!({ "url": url }).to_string(),
        };
        return ChatResponse {
            message: ChatMessage {
                role: Role::Assistant,
                content: String::new(),
                tool_calls: vec![call],
                tool_call_id: None,
            },
            finish_reason: "tool_calls".to_string(),
            prompt_tokens,
            completion_tokens: 12,
        };
    }
    let mut content = format!("[scripted model] On: {}", truncate(last_user.trim(), 1000));
    for result in tool_results {
        content.push_str(&format!(
            "\nFrom a tool: {}",
            truncate(&tool_text(&result.content), 300)
        ));
    }
    ChatResponse {
        completion_tokens: approx_tokens(&content),
        message: ChatMessage {
            role: Role::Assistant,
            content,
            tool_calls: Vec::new(),
            tool_call_id: None,
        },
        finish_reason: "stop".to_string(),
        prompt_tokens,
    }
}

/// What a tool result says, on one line: the `body` or `text` of a JSON object (what fetch-like tools return),
/// else the result as it is.
fn tool_text(content: &str) -> String {
    let value: Option<Value> = serde_json::from_str(content).ok();
    let text = value
        .as_ref()
        .and_then(|v| ["body", "text"].iter().find_map(|k| v.get(*k)?.as_str()))
        .unwrap_or(content);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Roughly four characters a token.
fn approx_tokens(text: &str) -> u32 {
    u32::try_from(text.len().div_ceil(4)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(text: &str) -> ChatMessage {
        ChatMessage {
            role: Role::User,
            content: text.into(),
            tool_calls: vec![],
            tool_call_id: None,
        }
    }

    #[test]
    fn the_scripted_model_calls_a_url_tool_then_summarises() {
        let tools = vec![ToolDefinition {
            name: "fetch.get".into(),
            wire_name: "fetch__get".into(),
            description: "GET a URL".into(),
            parameters: json!({"type": "object", "properties": {"url": {"type": "string"}}}),
        }];
        let first = scripted(&[user("Research https://example.com/page.")], &tools);
        assert_eq!(first.finish_reason, "tool_calls");
        assert_eq!(first.message.tool_calls[0].name, "fetch.get");
        assert_eq!(
            first.message.tool_calls[0].arguments,
            r#"{"url":"https://example.com/page"}"#
        );
        let answer = ChatMessage {
            role: Role::Tool,
            content: "page text".into(),
            tool_calls: vec![],
            tool_call_id: Some("call-1".into()),
        };
        let second = scripted(
            &[
                user("Research https://example.com/page."),
                first.message,
                answer,
            ],
            &tools,
        );
        assert_eq!(second.finish_reason, "stop");
        assert!(second.message.content.contains("page text"));
    }

    #[test]
    fn completions_parse_and_tool_names_map_back() {
        let tools = vec![ToolDefinition {
            name: "fetch.get".into(),
            wire_name: "fetch__get".into(),
            description: String::new(),
            parameters: json!({}),
        }];
        let v = json!({"choices": [{"message": {"content": null, "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "fetch__get", "arguments": "{\"url\":\"x\"}"}}]}, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5}});
        let r = parse_completion(&v, &tools).unwrap();
        assert_eq!(r.message.tool_calls[0].name, "fetch.get");
        assert_eq!((r.prompt_tokens, r.completion_tokens), (10, 5));
        assert!(
            parse_completion(&json!({"error": "x"}), &tools)
                .unwrap_err()
                .to_string()
                .contains("no choices")
        );
        assert_eq!(
            message_json(&user("hi"), &tools),
            json!({"role": "user", "content": "hi"})
        );
    }
}

//! The JSON Schema of `are.toml`, derived from the policy types, so that editors can check a policy as it is
//! written (the repository commits it as `schema/are.schema.json`).
//!
//! It describes what [`Policy::parse`](crate::Policy::parse) accepts, as far as a schema can: every table refuses
//! unknown keys (`additionalProperties: false`), values have their types, defaults and descriptions (the doc
//! comments of the types), and strings that the parser reads (sizes, durations, origins, sockets, digests) carry a
//! `pattern` that only values the parser certainly refuses fail. What needs the file system or several values at
//! once (mounted directories exist, mounts do not overlap, a secret's host is allowed by `allow.http`) is left to
//! `are policy check`.
//!
//! The schema is draft-07, the draft editor integrations support most widely (Taplo / Even Better TOML, VS Code,
//! JetBrains); it uses nothing of later drafts.

use crate::Grants;
use crate::capability::CapabilityKind;
use crate::grants::{llm, memory, messaging, tools};
use schemars::generate::SchemaSettings;
use schemars::transform::{Transform, transform_subschemas};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};
use std::borrow::Cow;

/// How to regenerate the committed schema, which says so at its top.
pub const REGENERATE: &str = "ARE_BLESS=1 cargo test -p are-policy --test schema";

/// The JSON Schema of an `are.toml` file.
pub fn json_schema() -> Value {
    let mut settings = SchemaSettings::draft07();
    // First, so that the draft-07 transforms (a `$ref` with siblings goes into an `allOf`) see its result.
    settings.transforms.insert(0, Box::new(TomlValues));
    let Value::Object(mut generated) = settings
        .into_generator()
        .into_root_schema_for::<crate::PolicyFile>()
        .to_value()
    else {
        unreachable!("the schema of a struct is an object")
    };
    // What a reader of the file needs first.
    let mut root = Map::new();
    for key in ["$schema", "title", "description"] {
        if let Some(value) = generated.shift_remove(key) {
            root.insert(key.into(), value);
        }
    }
    root.insert(
        "$comment".into(),
        format!(
            "Generated from the types of the are-policy crate: do not edit, run `{REGENERATE}`."
        )
        .into(),
    );
    root.extend(generated);
    Value::Object(root)
}

/// [`json_schema`] as the repository commits it: pretty JSON with a final newline.
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).expect("a schema is JSON");
    text.push('\n');
    text
}

/// The names of `[component.NAME]` and `[agent.TYPE]` tables.
pub(crate) fn component_name() -> Value {
    json!({ "pattern": "^[A-Za-z0-9_-]{1,64}$" })
}

/// `allow` of a component: the grants of [`Grants`], where those only agents can use must grant nothing (the
/// policy refuses a component that is granted one).
pub(crate) struct ComponentGrants;

impl JsonSchema for ComponentGrants {
    fn schema_name() -> Cow<'static, str> {
        "ComponentGrants".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = Grants::json_schema(generator);
        schema.insert(
            "description".into(),
            "What the component may reach (`allow.*`), one entry per capability. `tools`, `llm`, `memory` and \
             `messaging` are for agents only: on a component they must grant nothing."
                .into(),
        );
        let properties = schema
            .get_mut("properties")
            .and_then(Value::as_object_mut)
            .expect("Grants has properties");
        for kind in CapabilityKind::granted().filter(|k| k.agent_only()) {
            let key = kind
                .policy_key()
                .and_then(|k| k.strip_prefix("allow."))
                .expect("a granted kind has an `allow.` key");
            let nothing = nothing_granted(kind).unwrap_or_else(|| {
                panic!("agent-only grant `allow.{key}` has no schema for granting nothing")
            });
            let property = properties
                .get_mut(key)
                .unwrap_or_else(|| panic!("Grants has no property `{key}`"));
            let mut grant = property.take();
            let description = grant
                .as_object_mut()
                .and_then(|g| g.shift_remove("description"));
            let description = description.as_ref().and_then(Value::as_str).unwrap_or("");
            *property = json!({
                "description": format!("{description} Agents only: a component must grant nothing here."),
                "allOf": [grant, nothing],
            });
        }
        schema
    }
}

/// What a grant that grants nothing looks like (see each grant's `is_granted`), for the kinds only agents can be
/// granted; `None` for the others.
fn nothing_granted(kind: CapabilityKind) -> Option<Value> {
    use CapabilityKind as K;
    match kind {
        K::Tools => Some(tools::nothing_granted()),
        K::Llm => Some(llm::nothing_granted()),
        K::Memory => Some(memory::nothing_granted()),
        K::Messaging => Some(messaging::nothing_granted()),
        K::Fs
        | K::Env
        | K::Http
        | K::Sockets
        | K::Secrets
        | K::Clocks
        | K::Random
        | K::Stdio
        | K::Io
        | K::Agent
        | K::Other => None,
    }
}

/// Shapes the generated schema for TOML and for reading: TOML has no `null`, so the `null` that schemars allows
/// for every `Option` (and the `null` defaults of absent options) goes; a `u32` gets its maximum; descriptions are
/// doc comments, so their hard line breaks are joined, intra-doc links become plain code, and they come first.
#[derive(Debug, Clone)]
struct TomlValues;

impl Transform for TomlValues {
    fn transform(&mut self, schema: &mut Schema) {
        transform_subschemas(self, schema);
        let Some(object) = schema.as_object_mut() else {
            return;
        };
        if let Some(Value::Array(types)) = object.get_mut("type") {
            types.retain(|t| t != "null");
            if let [only] = types.as_mut_slice() {
                let only = only.take();
                object.insert("type".into(), only);
            }
        }
        if let Some(Value::Array(values)) = object.get_mut("enum") {
            values.retain(|v| !v.is_null());
        }
        if let Some(Value::Array(any_of)) = object.get_mut("anyOf") {
            any_of.retain(|s| s != &json!({ "type": "null" }));
            if let [Value::Object(only)] = any_of.as_mut_slice() {
                let only = std::mem::take(only);
                object.shift_remove("anyOf");
                for (key, value) in only {
                    object.entry(key).or_insert(value);
                }
            }
        }
        if let Some(default) = object.get_mut("default") {
            drop_nulls(default);
            if default.is_null() || default.as_object().is_some_and(Map::is_empty) {
                object.shift_remove("default");
            }
        }
        if object.get("format").is_some_and(|f| f == "uint32") && !object.contains_key("maximum") {
            object.insert("maximum".into(), u32::MAX.into());
        }
        if let Some(Value::String(description)) = object.shift_remove("description") {
            object.shift_insert(
                0,
                "description".into(),
                plain_description(&description).into(),
            );
        }
    }
}

/// `value` without the `null` members of its objects, at every depth.
fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(members) => {
            members.retain(|_, v| !v.is_null());
            members.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// A doc comment as a description: each paragraph on one line, and ``[`x`]`` or ``[`x`](path)`` as `` `x` ``.
fn plain_description(doc: &str) -> String {
    let paragraphs: Vec<String> = doc
        .split("\n\n")
        .map(|p| p.lines().map(str::trim).collect::<Vec<_>>().join(" "))
        .collect();
    let mut text = paragraphs.join("\n\n");
    let mut out = String::with_capacity(text.len());
    while let Some(start) = text.find("[`") {
        let Some(len) = text[start..].find("`]") else {
            break;
        };
        out.push_str(&text[..start]);
        out.push_str(&text[start + 1..start + len + 1]);
        let mut rest = start + len + 2;
        if text[rest..].starts_with('(')
            && let Some(close) = text[rest..].find(')')
        {
            rest += close + 1;
        }
        text = text.split_off(rest);
    }
    out.push_str(&text);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_read_as_plain_text() {
        assert_eq!(
            plain_description(
                "One line\nand the next.\n\nSee [`Grants`] and [`entries`](Self::entries)."
            ),
            "One line and the next.\n\nSee `Grants` and `entries`."
        );
        assert_eq!(plain_description("a [b] and [`c"), "a [b] and [`c");
    }

    #[test]
    fn every_agent_only_grant_can_grant_nothing() {
        for kind in CapabilityKind::granted() {
            assert_eq!(nothing_granted(kind).is_some(), kind.agent_only(), "{kind}");
        }
    }
}

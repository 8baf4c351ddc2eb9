//! The `json` tool: JSONPath queries, pretty-printing and minifying (see `wit/world.wit`).

are_guest_sdk::generate!({ world: "json-tool" });

use exports::example::json::json::{Guest, JsonType, Node};
use serde::Serialize;
use serde_json::Value;
use serde_json::ser::{PrettyFormatter, Serializer};
use serde_json_path::JsonPath;

/// The widest indent `pretty` accepts.
const MAX_INDENT: u8 = 16;

struct Json;

impl Guest for Json {
    fn query(document: String, path: String) -> Result<Vec<Node>, String> {
        query(&document, &path)
    }

    fn get(document: String, path: String) -> Result<Option<String>, String> {
        let value = parse(&document)?;
        let path = parse_path(&path)?;
        Ok(path.query(&value).first().map(Value::to_string))
    }

    fn pretty(document: String, indent: Option<u8>) -> Result<String, String> {
        pretty(&document, indent.unwrap_or(2))
    }

    fn minify(document: String) -> Result<String, String> {
        Ok(parse(&document)?.to_string())
    }

    fn type_of(document: String) -> Result<JsonType, String> {
        Ok(match parse(&document)? {
            Value::Null => JsonType::Null,
            Value::Bool(_) => JsonType::Boolean,
            Value::Number(_) => JsonType::Number,
            Value::String(_) => JsonType::String,
            Value::Array(_) => JsonType::Array,
            Value::Object(_) => JsonType::Object,
        })
    }
}

export!(Json);

fn parse(document: &str) -> Result<Value, String> {
    serde_json::from_str(document)
        .map_err(|error| format!("the document is not valid JSON: {error}"))
}

/// Parses a JSONPath query; a path without the leading `$` starts at the root.
fn parse_path(path: &str) -> Result<JsonPath, String> {
    let trimmed = path.trim();
    let full = if trimmed.starts_with('$') {
        trimmed.to_owned()
    } else if trimmed.starts_with('[') {
        format!("${trimmed}")
    } else if trimmed.is_empty() {
        "$".to_owned()
    } else {
        format!("$.{trimmed}")
    };
    JsonPath::parse(&full).map_err(|error| format!("invalid path `{path}`: {error}"))
}

fn query(document: &str, path: &str) -> Result<Vec<Node>, String> {
    let value = parse(document)?;
    let path = parse_path(path)?;
    let nodes = path
        .query_located(&value)
        .iter()
        .map(|node| Node {
            location: node.location().to_string(),
            value: node.node().to_string(),
        })
        .collect();
    Ok(nodes)
}

fn pretty(document: &str, indent: u8) -> Result<String, String> {
    if indent > MAX_INDENT {
        return Err(format!(
            "indent {indent} is too wide: at most {MAX_INDENT} spaces"
        ));
    }
    let value = parse(document)?;
    let spaces = vec![b' '; usize::from(indent)];
    let mut out = Vec::with_capacity(document.len() * 2);
    let mut serializer =
        Serializer::with_formatter(&mut out, PrettyFormatter::with_indent(&spaces));
    value
        .serialize(&mut serializer)
        .map_err(|error| format!("cannot format the document: {error}"))?;
    Ok(String::from_utf8(out).expect("serde_json writes UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORE: &str = r#"{"store": {"book": [
        {"title": "Sayings of the Century", "price": 8.95},
        {"title": "Moby Dick", "price": 22.99}
    ], "bicycle": {"color": "red"}}}"#;

    #[test]
    fn queries_with_locations() {
        let nodes = query(STORE, "$.store.book[0].title").unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].location, "$['store']['book'][0]['title']");
        assert_eq!(nodes[0].value, r#""Sayings of the Century""#);

        let cheap = query(STORE, "$.store.book[?@.price < 10].title").unwrap();
        assert_eq!(
            cheap.iter().map(|n| n.value.as_str()).collect::<Vec<_>>(),
            [r#""Sayings of the Century""#]
        );
        assert!(query(STORE, "$.nothing").unwrap().is_empty());
    }

    #[test]
    fn dotted_paths_start_at_the_root() {
        assert_eq!(
            query(STORE, "store.bicycle.color").unwrap()[0].value,
            r#""red""#
        );
        assert_eq!(query("[1, 2, 3]", "[-1]").unwrap()[0].value, "3");
        assert_eq!(query("[1]", "").unwrap()[0].value, "[1]");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let error = query("{not json", "$").unwrap_err();
        assert!(
            error.starts_with("the document is not valid JSON") && error.contains("line 1"),
            "{error}"
        );
        let error = query("{}", "$.[").unwrap_err();
        assert!(error.starts_with("invalid path `$.[`"), "{error}");
        assert!(pretty("{}", 17).unwrap_err().contains("at most 16"));
    }

    #[test]
    fn formats_and_keeps_key_order() {
        assert_eq!(
            pretty(r#"{"b":1,"a":[true,null]}"#, 2).unwrap(),
            "{\n  \"b\": 1,\n  \"a\": [\n    true,\n    null\n  ]\n}"
        );
        assert_eq!(
            parse(" { \"z\" : 1 , \"a\" : 2.5 } ").unwrap().to_string(),
            r#"{"z":1,"a":2.5}"#
        );
    }
}

//! JSON ⇄ WIT values over generated types: values round-trip through JSON their schemas accept, and the schemas
//! and the converter agree on JSON near a valid value.

use super::wit_gen::{client_json, render_world, world_and_values};
use super::{Choices, config, validator};
use crate::common::component_from_wit;
use are_runtime::describe::{ComponentDescription, ExportedFunction};
use are_runtime::schema::{Direction, input_schema, output_schema, type_schema};
use are_runtime::value::{args_to_vals, json_to_val, result_to_json, val_to_json};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value, json};
use wasmtime::component::Val;
use wit_parser::Type;

/// The function `api.f{i}` of a generated world, its type, and validators of its schemas.
struct Probe<'a> {
    f: &'a ExportedFunction,
    ty: Type,
    /// Schemas of the type itself, input and output.
    input: jsonschema::Validator,
    output: jsonschema::Validator,
    /// Schemas of the function: arguments object and result.
    args: jsonschema::Validator,
    result: jsonschema::Validator,
}

fn probe(desc: &ComponentDescription, i: usize) -> Probe<'_> {
    let f = desc.find(&format!("api.f{i}")).expect("generated function");
    assert!(f.is_tool(), "api.f{i} is no tool: {:?}", f.unsupported);
    let ty = f.params[0].1;
    assert_eq!(f.result, Some(ty), "parameter and result have one type");
    let schema = |direction| type_schema(desc.resolve(), &ty, direction).expect("has a schema");
    Probe {
        f,
        ty,
        input: validator(&schema(Direction::Input)),
        output: validator(&schema(Direction::Output)),
        args: validator(&input_schema(desc, f)),
        result: validator(&output_schema(desc, f).expect("has a result")),
    }
}

/// JSON text, as a client sees it.
fn through_text(json: &Value) -> Value {
    serde_json::from_str(&serde_json::to_string(json).expect("serialises")).expect("parses")
}

fn check_round_trip(
    desc: &ComponentDescription,
    p: &Probe<'_>,
    val: &Val,
) -> Result<Value, TestCaseError> {
    let resolve = desc.resolve();
    let json = val_to_json(resolve, &p.ty, val)
        .map_err(|e| TestCaseError::fail(format!("{val:?} does not convert: {e}")))?;
    prop_assert!(p.output.is_valid(&json), "{json} fails the output schema");
    prop_assert!(p.input.is_valid(&json), "{json} fails the input schema");
    prop_assert!(p.result.is_valid(&json), "{json} fails the result schema");
    prop_assert_eq!(
        result_to_json(desc, p.f, std::slice::from_ref(val)),
        Ok(Some(json.clone()))
    );

    let text = through_text(&json);
    let back = json_to_val(resolve, &p.ty, &text, "x")
        .map_err(|e| TestCaseError::fail(format!("{text} does not convert back: {e}")))?;
    prop_assert_eq!(&back, val, "{} does not round-trip", text);

    let named = json!({ "x": text });
    prop_assert!(
        p.args.is_valid(&named),
        "{named} fails the arguments schema"
    );
    prop_assert_eq!(args_to_vals(desc, p.f, &named), Ok(vec![val.clone()]));
    prop_assert_eq!(
        args_to_vals(desc, p.f, &json!([text])),
        Ok(vec![val.clone()])
    );
    Ok(json)
}

proptest! {
    #![proptest_config(config(48))]

    /// Values of generated types convert to JSON that their schemas accept, and back to the same value, directly,
    /// through JSON text, as named and as positional arguments. JSON written the ways a client may write it
    /// converts to the same value too.
    #[test]
    fn json_and_wit_values_round_trip((types, values, seed) in world_and_values()) {
        let wit = render_world(&types);
        let desc = ComponentDescription::from_bytes(&component_from_wit(&wit), None)
            .unwrap_or_else(|e| panic!("generated component does not describe: {e}\n{wit}"));
        let mut choices = Choices(seed);
        for (i, (ty, vals)) in types.iter().zip(&values).enumerate() {
            let p = probe(&desc, i);
            for val in vals {
                check_round_trip(&desc, &p, val)?;

                let mut strict = true;
                let written = client_json(ty, val, &mut choices, &mut strict);
                let converted = json_to_val(desc.resolve(), &p.ty, &written, "x");
                prop_assert_eq!(converted.as_ref(), Ok(val), "client JSON {} in\n{}", written, wit);
                if strict {
                    prop_assert!(p.input.is_valid(&written), "{written} fails the input schema");
                }
                if *val == Val::Option(None) {
                    // Optional parameters may be left out.
                    prop_assert_eq!(args_to_vals(&desc, p.f, &json!({})), Ok(vec![val.clone()]));
                }
            }
        }
    }

    /// JSON near a valid value (one node replaced by something else): the converter accepts everything the input
    /// schema accepts, and whatever it accepts converts back to JSON the schemas accept, and to the same value.
    #[test]
    fn schema_and_converter_agree_near_valid_values(
        (types, values, _) in world_and_values(),
        at in any::<Index>(),
        replacement in odd_json(),
    ) {
        let wit = render_world(&types);
        let desc = ComponentDescription::from_bytes(&component_from_wit(&wit), None)
            .expect("generated component describes");
        let resolve = desc.resolve();
        for (i, vals) in values.iter().enumerate() {
            let p = probe(&desc, i);
            for val in vals {
                let mut json = val_to_json(resolve, &p.ty, val).expect("converts");
                let nodes = count_nodes(&json);
                replace_node(&mut json, at.index(nodes), replacement.clone());
                match json_to_val(resolve, &p.ty, &json, "x") {
                    Ok(val) => {
                        let back = val_to_json(resolve, &p.ty, &val).expect("converts back");
                        prop_assert!(p.output.is_valid(&back), "{back} fails the output schema");
                        let again = json_to_val(resolve, &p.ty, &back, "x").expect("converts again");
                        prop_assert_eq!(again, val);
                    }
                    Err(e) => prop_assert!(
                        !p.input.is_valid(&json),
                        "the input schema accepts {} but conversion fails: {}\n{}", json, e, wit
                    ),
                }
            }
        }
    }
}

fn count_nodes(json: &Value) -> usize {
    1 + match json {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(map) => map.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Replaces the node at pre-order position `at` (which is less than the node count).
fn replace_node(json: &mut Value, at: usize, with: Value) {
    fn walk(json: &mut Value, at: &mut usize, with: &mut Option<Value>) {
        if *at == 0 {
            if let Some(with) = with.take() {
                *json = with;
            }
            return;
        }
        *at -= 1;
        match json {
            Value::Array(items) => items.iter_mut().for_each(|item| walk(item, at, with)),
            Value::Object(map) => map.values_mut().for_each(|item| walk(item, at, with)),
            _ => {}
        }
    }
    walk(json, &mut { at }, &mut Some(with));
}

/// JSON values at the edges of what the conventions give meaning to.
fn odd_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        select(vec![
            json!(0),
            json!(-1),
            json!(1.5),
            json!(3.0),
            json!(255),
            json!(256),
            json!(-129),
            json!(65536),
            json!(4_294_967_296_u64),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(18_446_744_073_709_551_616.0),
            json!(9_223_372_036_854_775_808.0),
            json!(-9_223_372_036_854_775_809.0),
            json!(1e300),
            json!(3.402_823_567_797_336_6e38),
            json!(-0.0),
            json!(5e-324),
        ]),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|x| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)),
        select(vec![
            "",
            "a",
            "ab",
            "🦀",
            "NaN",
            "Infinity",
            "-Infinity",
            "nan",
            "A",
            "AB",
            "AB=",
            "AQ",
            "AQ=",
            "AQ==",
            "AQI",
            "AQID",
            "aGk",
            "aGk=",
            "====",
            "ok",
            "err",
            "some",
        ])
        .prop_map(|s| json!(s)),
        "\\PC{0,3}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..=3).prop_map(Value::Array),
            prop::collection::vec((select(vec!["ok", "err", "some", "x", "a"]), inner), 0..=2)
                .prop_map(|entries| Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>()
                )),
        ]
    })
}

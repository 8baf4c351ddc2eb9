//! Property tests (proptest): JSON ⇄ WIT values over generated WIT types and values, the policy parser over
//! generated policies and arbitrary text, and loading arbitrary bytes as a component.
//!
//! The case counts are small so that `cargo test` stays fast. `PROPTEST_CASES` sets the count of every property
//! here for a longer run: `PROPTEST_CASES=5000 cargo test -p are-cli --test all properties`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::common::component_from_wit;
use are::component::{LoadError, read_component, validate};
use are::describe::{ComponentDescription, ExportedFunction};
use are::policy::{
    Fuel, InstanceMode, LimitsSection, Policy, PolicyError, Size, SyncMode, Timeout,
};
use are::schema::{Direction, input_schema, output_schema, type_schema};
use are::value::{args_to_vals, json_to_val, result_to_json, val_to_json};
use base64::Engine as _;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value, json};
use wasmtime::component::Val;
use wit_parser::Type;

/// `default_cases` cases, unless `PROPTEST_CASES` says otherwise; failures are reported, not persisted (a found
/// case becomes a named regression test instead).
fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A small deterministic generator for choices inside one generated case (which form a value takes).
struct Choices(u64);

impl Choices {
    fn next(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Generated WIT types and values.

/// A WIT type, as generated.
#[derive(Debug, Clone)]
enum Ty {
    Bool,
    U8,
    U16,
    U32,
    U64,
    S8,
    S16,
    S32,
    S64,
    F32,
    F64,
    Char,
    String,
    List(Box<Ty>),
    Tuple(Vec<Ty>),
    Option(Box<Ty>),
    Result(Option<Box<Ty>>, Option<Box<Ty>>),
    Record(Vec<(String, Ty)>),
    Variant(Vec<(String, Option<Ty>)>),
    Enum(Vec<String>),
    Flags(Vec<String>),
    /// `type tN = T;`
    Alias(Box<Ty>),
}

/// A WIT identifier: kebab-case words, each all lowercase or all uppercase. Rendered with `%`, so keywords
/// (`type`, `u8`, `result`) are fine.
fn wit_name() -> impl Strategy<Value = String> {
    "([a-z][a-z0-9]{0,4}|[A-Z][A-Z0-9]{0,2})(-([a-z][a-z0-9]{0,3}|[A-Z][A-Z0-9]{0,2})){0,2}"
}

/// Names are unique ignoring case, as WIT requires.
fn unique_by_name<T>(items: Vec<(String, T)>) -> Vec<(String, T)> {
    let mut seen = BTreeSet::new();
    items
        .into_iter()
        .filter(|(name, _)| seen.insert(name.to_lowercase()))
        .collect()
}

fn wit_names(max: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(wit_name(), 1..=max).prop_map(|names| {
        unique_by_name(names.into_iter().map(|n| (n, ())).collect())
            .into_iter()
            .map(|(n, ())| n)
            .collect()
    })
}

fn wit_type() -> impl Strategy<Value = Ty> {
    let leaf = prop_oneof![
        Just(Ty::Bool),
        Just(Ty::U8),
        Just(Ty::U16),
        Just(Ty::U32),
        Just(Ty::U64),
        Just(Ty::S8),
        Just(Ty::S16),
        Just(Ty::S32),
        Just(Ty::S64),
        Just(Ty::F32),
        Just(Ty::F64),
        Just(Ty::Char),
        Just(Ty::String),
        Just(Ty::List(Box::new(Ty::U8))),
        Just(Ty::List(Box::new(Ty::Alias(Box::new(Ty::U8))))),
        wit_names(5).prop_map(Ty::Enum),
        // Up to 32 flags (more need a WebAssembly feature that is off by default).
        prop::collection::vec(wit_name(), 1..=40).prop_map(|names| {
            let mut names = unique_by_name(names.into_iter().map(|n| (n, ())).collect());
            names.truncate(32);
            Ty::Flags(names.into_iter().map(|(n, ())| n).collect())
        }),
    ];
    leaf.prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| Ty::List(Box::new(t))),
            prop::collection::vec(inner.clone(), 1..=4).prop_map(Ty::Tuple),
            inner.clone().prop_map(|t| Ty::Option(Box::new(t))),
            inner
                .clone()
                .prop_map(|t| Ty::Option(Box::new(Ty::Option(Box::new(t))))),
            (
                prop::option::of(inner.clone()),
                prop::option::of(inner.clone())
            )
                .prop_map(|(ok, err)| Ty::Result(ok.map(Box::new), err.map(Box::new))),
            prop::collection::vec((wit_name(), inner.clone()), 1..=5)
                .prop_map(|fields| Ty::Record(unique_by_name(fields))),
            prop::collection::vec((wit_name(), prop::option::of(inner.clone())), 1..=5)
                .prop_map(|cases| Ty::Variant(unique_by_name(cases))),
            inner.prop_map(|t| Ty::Alias(Box::new(t))),
        ]
    })
}

/// Renders generated types as WIT: anonymous types inline, named ones as definitions of an interface.
#[derive(Default)]
struct WitWriter {
    definitions: Vec<String>,
}

impl WitWriter {
    fn define(&mut self, body: impl FnOnce(&str) -> String) -> String {
        let name = format!("t{}", self.definitions.len());
        let definition = body(&name);
        self.definitions.push(definition);
        format!("%{name}")
    }

    fn ty(&mut self, ty: &Ty) -> String {
        match ty {
            Ty::Bool => "bool".into(),
            Ty::U8 => "u8".into(),
            Ty::U16 => "u16".into(),
            Ty::U32 => "u32".into(),
            Ty::U64 => "u64".into(),
            Ty::S8 => "s8".into(),
            Ty::S16 => "s16".into(),
            Ty::S32 => "s32".into(),
            Ty::S64 => "s64".into(),
            Ty::F32 => "f32".into(),
            Ty::F64 => "f64".into(),
            Ty::Char => "char".into(),
            Ty::String => "string".into(),
            Ty::List(elem) => format!("list<{}>", self.ty(elem)),
            Ty::Tuple(items) => {
                let items: Vec<String> = items.iter().map(|t| self.ty(t)).collect();
                format!("tuple<{}>", items.join(", "))
            }
            Ty::Option(inner) => format!("option<{}>", self.ty(inner)),
            Ty::Result(ok, err) => {
                let ok = ok.as_ref().map(|t| self.ty(t));
                let err = err.as_ref().map(|t| self.ty(t));
                match (ok, err) {
                    (None, None) => "result".into(),
                    (Some(ok), None) => format!("result<{ok}>"),
                    (None, Some(err)) => format!("result<_, {err}>"),
                    (Some(ok), Some(err)) => format!("result<{ok}, {err}>"),
                }
            }
            Ty::Record(fields) => {
                let fields: Vec<String> = fields
                    .iter()
                    .map(|(name, t)| format!("%{name}: {}", self.ty(t)))
                    .collect();
                self.define(|name| format!("record %{name} {{ {} }}", fields.join(", ")))
            }
            Ty::Variant(cases) => {
                let cases: Vec<String> = cases
                    .iter()
                    .map(|(name, t)| match t {
                        Some(t) => format!("%{name}({})", self.ty(t)),
                        None => format!("%{name}"),
                    })
                    .collect();
                self.define(|name| format!("variant %{name} {{ {} }}", cases.join(", ")))
            }
            Ty::Enum(cases) => {
                let cases: Vec<String> = cases.iter().map(|c| format!("%{c}")).collect();
                self.define(|name| format!("enum %{name} {{ {} }}", cases.join(", ")))
            }
            Ty::Flags(flags) => {
                let flags: Vec<String> = flags.iter().map(|f| format!("%{f}")).collect();
                self.define(|name| format!("flags %{name} {{ {} }}", flags.join(", ")))
            }
            Ty::Alias(inner) => {
                let inner = self.ty(inner);
                self.define(|name| format!("type %{name} = {inner};"))
            }
        }
    }
}

/// A package whose world exports `api` with `fN: func(x: TN) -> TN` for every type.
fn render_world(types: &[Ty]) -> String {
    let mut writer = WitWriter::default();
    let functions: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, ty)| {
            let ty = writer.ty(ty);
            format!("    f{i}: func(x: {ty}) -> {ty};")
        })
        .collect();
    let mut wit = String::from("package gen:props;\n\ninterface api {\n");
    for definition in &writer.definitions {
        let _ = writeln!(wit, "    {definition}");
    }
    for function in &functions {
        let _ = writeln!(wit, "{function}");
    }
    wit.push_str("}\n\nworld props {\n    export api;\n}\n");
    wit
}

fn boxed(val: Val) -> Box<Val> {
    Box::new(val)
}

fn float32() -> impl Strategy<Value = f32> {
    prop_oneof![
        4 => any::<f32>(),
        1 => select(vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0, f32::MAX, f32::MIN,
                         f32::MIN_POSITIVE, 1.0e-45, 0.1, 16_777_217.0]),
    ]
}

fn float64() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<f64>(),
        1 => select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.0, f64::MAX, f64::MIN,
                         f64::MIN_POSITIVE, 5e-324, 0.1, 9_007_199_254_740_993.0]),
    ]
}

/// A value of type `ty`.
fn value(ty: &Ty) -> BoxedStrategy<Val> {
    match ty {
        Ty::Bool => any::<bool>().prop_map(Val::Bool).boxed(),
        Ty::U8 => any::<u8>().prop_map(Val::U8).boxed(),
        Ty::U16 => any::<u16>().prop_map(Val::U16).boxed(),
        Ty::U32 => any::<u32>().prop_map(Val::U32).boxed(),
        Ty::U64 => any::<u64>().prop_map(Val::U64).boxed(),
        Ty::S8 => any::<i8>().prop_map(Val::S8).boxed(),
        Ty::S16 => any::<i16>().prop_map(Val::S16).boxed(),
        Ty::S32 => any::<i32>().prop_map(Val::S32).boxed(),
        Ty::S64 => any::<i64>().prop_map(Val::S64).boxed(),
        Ty::F32 => float32().prop_map(Val::Float32).boxed(),
        Ty::F64 => float64().prop_map(Val::Float64).boxed(),
        Ty::Char => any::<char>().prop_map(Val::Char).boxed(),
        Ty::String => any::<String>().prop_map(Val::String).boxed(),
        Ty::List(elem) => prop::collection::vec(value(elem), 0..=4)
            .prop_map(Val::List)
            .boxed(),
        Ty::Tuple(items) => items
            .iter()
            .map(value)
            .collect::<Vec<_>>()
            .prop_map(Val::Tuple)
            .boxed(),
        Ty::Option(inner) => prop::option::of(value(inner))
            .prop_map(|v| Val::Option(v.map(boxed)))
            .boxed(),
        Ty::Result(ok, err) => {
            let side = |t: &Option<Box<Ty>>| match t {
                Some(t) => value(t).prop_map(|v| Some(boxed(v))).boxed(),
                None => Just(None).boxed(),
            };
            prop_oneof![
                side(ok).prop_map(|v| Val::Result(Ok(v))),
                side(err).prop_map(|v| Val::Result(Err(v))),
            ]
            .boxed()
        }
        Ty::Record(fields) => {
            let names: Vec<String> = fields.iter().map(|(n, _)| n.clone()).collect();
            fields
                .iter()
                .map(|(_, t)| value(t))
                .collect::<Vec<_>>()
                .prop_map(move |vals| Val::Record(names.iter().cloned().zip(vals).collect()))
                .boxed()
        }
        Ty::Variant(cases) => {
            let cases: Vec<BoxedStrategy<Val>> = cases
                .iter()
                .map(|(name, t)| {
                    let name = name.clone();
                    match t {
                        Some(t) => value(t)
                            .prop_map(move |v| Val::Variant(name.clone(), Some(boxed(v))))
                            .boxed(),
                        None => Just(Val::Variant(name, None)).boxed(),
                    }
                })
                .collect();
            proptest::strategy::Union::new(cases).boxed()
        }
        Ty::Enum(cases) => select(cases.clone()).prop_map(Val::Enum).boxed(),
        Ty::Flags(flags) => {
            let flags = flags.clone();
            prop::collection::vec(any::<bool>(), flags.len())
                .prop_map(move |on| {
                    let set = flags.iter().zip(on).filter(|(_, on)| *on);
                    Val::Flags(set.map(|(name, _)| name.clone()).collect())
                })
                .boxed()
        }
        Ty::Alias(inner) => value(inner),
    }
}

/// Whether `ty` is (an alias of) an option.
fn is_option(ty: &Ty) -> bool {
    match ty {
        Ty::Option(_) => true,
        Ty::Alias(inner) => is_option(inner),
        _ => false,
    }
}

fn is_byte(ty: &Ty) -> bool {
    match ty {
        Ty::U8 => true,
        Ty::Alias(inner) => is_byte(inner),
        _ => false,
    }
}

/// The JSON form of `val` as a client may write it: keys with `_` for `-`, integers as `3.0`, bytes as arrays or
/// unpadded base64, flags as lists of names, optional fields left out, keys in any order. `strict` is cleared
/// when a form is used that the schema does not describe (the `_` spellings).
fn client_json(ty: &Ty, val: &Val, choices: &mut Choices, strict: &mut bool) -> Value {
    fn key(name: &str, choices: &mut Choices, strict: &mut bool) -> String {
        if name.contains('-') && choices.below(4) == 0 {
            *strict = false;
            name.replace('-', "_")
        } else {
            name.to_owned()
        }
    }
    fn whole<T: Into<i128> + Copy>(n: T, choices: &mut Choices) -> Value {
        let wide: i128 = n.into();
        if wide.unsigned_abs() < (1 << 53) && choices.below(4) == 0 {
            json!(wide as f64)
        } else if let Ok(n) = i64::try_from(wide) {
            json!(n)
        } else {
            json!(u64::try_from(wide).expect("fits u64"))
        }
    }
    fn float(x: f64) -> Value {
        match serde_json::Number::from_f64(x) {
            Some(n) => Value::Number(n),
            None if x.is_nan() => json!("NaN"),
            None if x > 0.0 => json!("Infinity"),
            None => json!("-Infinity"),
        }
    }
    match (ty, val) {
        (Ty::Alias(inner), _) => client_json(inner, val, choices, strict),
        (Ty::Bool, Val::Bool(b)) => json!(b),
        (Ty::U8, Val::U8(n)) => whole(*n, choices),
        (Ty::U16, Val::U16(n)) => whole(*n, choices),
        (Ty::U32, Val::U32(n)) => whole(*n, choices),
        (Ty::U64, Val::U64(n)) => whole(*n, choices),
        (Ty::S8, Val::S8(n)) => whole(*n, choices),
        (Ty::S16, Val::S16(n)) => whole(*n, choices),
        (Ty::S32, Val::S32(n)) => whole(*n, choices),
        (Ty::S64, Val::S64(n)) => whole(*n, choices),
        // The shortest decimal form of an f32, read as f64, narrows back to the same f32.
        (Ty::F32, Val::Float32(x)) => float(x.to_string().parse().unwrap_or(f64::from(*x))),
        (Ty::F64, Val::Float64(x)) => float(*x),
        (Ty::Char, Val::Char(c)) => json!(c.to_string()),
        (Ty::String, Val::String(s)) => json!(s),
        (Ty::List(elem), Val::List(items)) if is_byte(elem) && choices.coin() => {
            let bytes: Vec<u8> = items
                .iter()
                .map(|v| match v {
                    Val::U8(b) => *b,
                    other => panic!("byte list holds {other:?}"),
                })
                .collect();
            let text = base64::engine::general_purpose::STANDARD.encode(bytes);
            match choices.coin() {
                true => json!(text.trim_end_matches('=')),
                false => json!(text),
            }
        }
        (Ty::List(elem), Val::List(items)) => Value::Array(
            items
                .iter()
                .map(|item| client_json(elem, item, choices, strict))
                .collect(),
        ),
        (Ty::Tuple(types), Val::Tuple(items)) => Value::Array(
            types
                .iter()
                .zip(items)
                .map(|(t, item)| client_json(t, item, choices, strict))
                .collect(),
        ),
        (Ty::Option(_), Val::Option(None)) => Value::Null,
        (Ty::Option(inner), Val::Option(Some(some))) => {
            let json = client_json(inner, some, choices, strict);
            match is_option(inner) {
                true => json!({ "some": json }),
                false => json,
            }
        }
        (Ty::Result(ok, err), Val::Result(outcome)) => {
            let (key, ty, payload) = match outcome {
                Ok(payload) => ("ok", ok, payload),
                Err(payload) => ("err", err, payload),
            };
            let json = match (ty, payload) {
                (Some(ty), Some(payload)) => client_json(ty, payload, choices, strict),
                _ => Value::Null,
            };
            json!({ key: json })
        }
        (Ty::Record(fields), Val::Record(vals)) => {
            let mut entries: Vec<(String, Value)> = Vec::new();
            for ((field, t), (_, v)) in fields.iter().zip(vals) {
                // Optional fields that are none may be left out.
                if is_option(t) && *v == Val::Option(None) && choices.coin() {
                    continue;
                }
                let name = key(field, choices, strict);
                entries.push((name, client_json(t, v, choices, strict)));
            }
            // Any key order.
            for i in (1..entries.len()).rev() {
                entries.swap(i, choices.below(i + 1));
            }
            Value::Object(entries.into_iter().collect())
        }
        (Ty::Variant(cases), Val::Variant(case, payload)) => {
            let ty = cases
                .iter()
                .find(|(n, _)| n == case)
                .and_then(|(_, t)| t.as_ref());
            let name = key(case, choices, strict);
            match (ty, payload) {
                (Some(ty), Some(payload)) => {
                    json!({ name: client_json(ty, payload, choices, strict) })
                }
                _ => json!(name),
            }
        }
        (Ty::Enum(_), Val::Enum(case)) => json!(key(case, choices, strict)),
        (Ty::Flags(flags), Val::Flags(on)) => {
            let mut entries = Vec::new();
            match choices.below(3) {
                0 => {
                    for flag in on {
                        entries.push(json!(key(flag, choices, strict)));
                    }
                    Value::Array(entries)
                }
                1 => {
                    let mut map = Map::new();
                    for flag in on {
                        map.insert(key(flag, choices, strict), json!(true));
                    }
                    Value::Object(map)
                }
                _ => {
                    let mut map = Map::new();
                    for flag in flags {
                        map.insert(key(flag, choices, strict), json!(on.contains(flag)));
                    }
                    Value::Object(map)
                }
            }
        }
        (ty, val) => panic!("generated value {val:?} does not have type {ty:?}"),
    }
}

/// A generated world: its types, and values of each.
fn world_and_values() -> impl Strategy<Value = (Vec<Ty>, Vec<Vec<Val>>, u64)> {
    prop::collection::vec(wit_type(), 1..=3).prop_flat_map(|types| {
        let values: Vec<_> = types
            .iter()
            .map(|t| prop::collection::vec(value(t), 1..=3))
            .collect();
        (Just(types), values, any::<u64>())
    })
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::validator_for(schema).unwrap_or_else(|e| panic!("invalid schema {schema}: {e}"))
}

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

/// Every WIT integer type, with its bounds.
const INTEGER_TYPES: [(&str, i128, i128); 8] = [
    ("u8", 0, u8::MAX as i128),
    ("u16", 0, u16::MAX as i128),
    ("u32", 0, u32::MAX as i128),
    ("u64", 0, u64::MAX as i128),
    ("s8", i8::MIN as i128, i8::MAX as i128),
    ("s16", i16::MIN as i128, i16::MAX as i128),
    ("s32", i32::MIN as i128, i32::MAX as i128),
    ("s64", i64::MIN as i128, i64::MAX as i128),
];

/// A world with `api.f-<type>: func(x: <type>) -> <type>` for every integer type.
fn integer_world() -> ComponentDescription {
    let mut wit = String::from("package test:ints;\n\ninterface api {\n");
    for (name, _, _) in INTEGER_TYPES {
        writeln!(wit, "    f-{name}: func(x: {name}) -> {name};").expect("writing to a String");
    }
    wit.push_str("}\n\nworld ints {\n    export api;\n}\n");
    ComponentDescription::from_bytes(&component_from_wit(&wit), None).expect("the world describes")
}

/// How a client writes an integer `n` in JSON text.
#[derive(Debug, Clone, Copy)]
enum Written {
    /// `128`
    Plain,
    /// `128.0`: whole, in float form.
    PointZero,
    /// `1280e-1`: whole, with an exponent.
    Exponent,
    /// `128.5`: never whole.
    Fraction,
}

fn written(n: i128, form: Written) -> String {
    match form {
        Written::Plain => n.to_string(),
        Written::PointZero => format!("{n}.0"),
        Written::Exponent if n == 0 => "0e3".to_string(),
        Written::Exponent => format!("{n}0e-1"),
        Written::Fraction => format!("{n}.5"),
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Integers are exact: JSON text for a number at, inside or just outside an integer type's bounds converts to
    /// exactly that number when it is whole and in range, and is refused with the path and the range otherwise
    /// (never rounded or clamped); the arguments schema accepts exactly what the converter accepts.
    #[test]
    fn integers_convert_exactly_at_their_bounds(
        which in 0..INTEGER_TYPES.len(),
        near_max in any::<bool>(),
        offset in -3i128..=3,
        form in prop_oneof![
            Just(Written::Plain),
            Just(Written::PointZero),
            Just(Written::Exponent),
            Just(Written::Fraction),
        ],
    ) {
        let (name, min, max) = INTEGER_TYPES[which];
        let desc = integer_world();
        let f = desc.find(&format!("api.f-{name}")).expect("generated function");
        let n = if near_max { max + offset } else { min + offset };
        let text = format!("{{\"x\": {}}}", written(n, form));
        let args: Value = serde_json::from_str(&text).expect("valid JSON");
        let schema = validator(&input_schema(&desc, f));
        let whole = !matches!(form, Written::Fraction);
        match args_to_vals(&desc, f, &args) {
            Ok(vals) => {
                prop_assert!(whole && (min..=max).contains(&n), "{} accepted as {}", text, name);
                let got: i128 = match vals.as_slice() {
                    [Val::U8(v)] => (*v).into(),
                    [Val::U16(v)] => (*v).into(),
                    [Val::U32(v)] => (*v).into(),
                    [Val::U64(v)] => (*v).into(),
                    [Val::S8(v)] => (*v).into(),
                    [Val::S16(v)] => (*v).into(),
                    [Val::S32(v)] => (*v).into(),
                    [Val::S64(v)] => (*v).into(),
                    other => return Err(TestCaseError::fail(format!("{other:?}"))),
                };
                prop_assert_eq!(got, n, "{} is not converted exactly", text);
                if max <= i128::from(u32::MAX) {
                    prop_assert!(schema.is_valid(&args), "{} converts but fails the schema", text);
                }
            }
            Err(e) => {
                prop_assert!(!whole || !(min..=max).contains(&n), "{} refused: {}", text, e);
                prop_assert_eq!(e.to_string(), format!("args.x: expected {name}, got {}", args["x"]));
                // A validator comparing as f64 (jsonschema here, and JavaScript clients) cannot tell a 64-bit
                // bound from its neighbours; for the narrower types it agrees both ways.
                if max <= i128::from(u32::MAX) {
                    prop_assert!(!schema.is_valid(&args), "{} fails to convert but the schema accepts it", text);
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

// ---------------------------------------------------------------------------------------------------------------
// Policies.

/// A TOML string, basic or literal.
fn toml_string(s: &str, literal: bool) -> String {
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
enum FuelModel {
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

    fn expected(&self) -> Fuel {
        match self {
            FuelModel::Unlimited => Fuel(None),
            FuelModel::Number(n) => Fuel(Some(*n as u64)),
            FuelModel::Text(n) => Fuel(Some(*n)),
        }
    }
}

fn fuel() -> impl Strategy<Value = FuelModel> {
    prop_oneof![
        Just(FuelModel::Unlimited),
        (0..=i64::MAX).prop_map(FuelModel::Number),
        any::<u64>().prop_map(FuelModel::Text),
    ]
}

/// A size and how it is written: bytes as a number, or a number and a unit.
#[derive(Debug, Clone)]
struct SizeModel {
    count: u32,
    unit: Option<(&'static str, u64)>,
    space: bool,
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

    fn expected(&self) -> Size {
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
struct TimeoutModel {
    count: u64,
    unit: (&'static str, u64),
}

impl TimeoutModel {
    fn toml(&self) -> String {
        format!("\"{}{}\"", self.count, self.unit.0)
    }

    fn expected(&self) -> Timeout {
        Timeout(Duration::from_millis(self.count * self.unit.1))
    }
}

fn timeout() -> impl Strategy<Value = TimeoutModel> {
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
struct LimitsModel {
    fuel: Option<FuelModel>,
    memory: Option<SizeModel>,
    timeout: Option<TimeoutModel>,
    max_output: Option<SizeModel>,
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

    fn expected(&self) -> LimitsSection {
        LimitsSection {
            fuel: self.fuel.as_ref().map(FuelModel::expected),
            memory: self.memory.as_ref().map(SizeModel::expected),
            timeout: self.timeout.as_ref().map(TimeoutModel::expected),
            max_output: self.max_output.as_ref().map(SizeModel::expected),
            ..LimitsSection::default()
        }
    }
}

fn limits() -> impl Strategy<Value = LimitsModel> {
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
struct MountModel {
    host: String,
    guest: String,
    mode: Option<&'static str>,
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
struct GrantsModel {
    env: Vec<(String, String)>,
    http: Vec<(String, String)>,
    sockets: Vec<(String, String)>,
    fs: Vec<MountModel>,
}

fn grants() -> impl Strategy<Value = GrantsModel> {
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
struct AgentGrantsModel {
    tools: Vec<String>,
    llm: Option<(String, Option<u32>, Option<u32>)>,
    memory: Option<SizeModel>,
    send: Vec<String>,
    publish: Vec<String>,
    subscribe: Vec<String>,
}

fn agent_grants() -> impl Strategy<Value = AgentGrantsModel> {
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
struct ComponentModel {
    source: String,
    sha256: Option<([u8; 32], u8)>,
    args: Vec<String>,
    grants: GrantsModel,
    limits: LimitsModel,
    mode: Option<&'static str>,
    max_concurrency: Option<u32>,
    queue: Option<u32>,
    idle_timeout: Option<TimeoutModel>,
    /// How the tables are written: 0 dotted keys, 1 sub-tables, 2 inline tables.
    style: u8,
}

#[derive(Debug, Clone)]
struct AgentModel {
    source: String,
    sha256: Option<([u8; 32], u8)>,
    args: Vec<String>,
    grants: GrantsModel,
    agent: AgentGrantsModel,
    limits: LimitsModel,
    idle_timeout: Option<TimeoutModel>,
    message_budget: Option<u32>,
    style: u8,
}

#[derive(Debug, Clone)]
struct PolicyModel {
    defaults: Option<LimitsModel>,
    components: Vec<(String, ComponentModel)>,
    agents: Vec<(String, AgentModel)>,
    serve: (Option<u32>, Option<bool>, Option<u32>, Vec<String>),
    runtime: (
        Option<String>,
        Option<u32>,
        Option<TimeoutModel>,
        Option<&'static str>,
    ),
    llm: (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<TimeoutModel>,
    ),
    literal_strings: bool,
}

fn sha256_pin() -> impl Strategy<Value = Option<([u8; 32], u8)>> {
    prop::option::of((any::<[u8; 32]>(), 0..3u8))
}

fn source() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9_/.-]{1,16}\\.wasm", "\\PC{1,12}",]
}

fn component_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,12}"
}

fn component_model() -> impl Strategy<Value = ComponentModel> {
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

fn policy_model() -> impl Strategy<Value = PolicyModel> {
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
struct TomlWriter {
    out: String,
    literal: bool,
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

    fn agent_grant_entries(&self, agent: &AgentGrantsModel) -> Vec<(String, String)> {
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

fn render_policy(model: &PolicyModel) -> String {
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
fn policy_base_dir() -> &'static Path {
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

fn parse_policy(text: &str) -> Result<Policy, PolicyError> {
    Policy::parse(text, Path::new("are.toml"), policy_base_dir())
}

fn sha256_of(pin: &Option<([u8; 32], u8)>) -> Option<[u8; 32]> {
    pin.as_ref().map(|(digest, _)| *digest)
}

/// The parsed grants are the generated ones.
fn check_grants(grants: &are::caps::Grants, model: &GrantsModel) -> Result<(), TestCaseError> {
    let env: Vec<(String, String)> = grants
        .env
        .0
        .iter()
        .map(|(k, v)| (k.get_ref().clone(), v.clone()))
        .collect();
    let mut expected_env = model.env.clone();
    expected_env.sort();
    prop_assert_eq!(env, expected_env);
    let http: Vec<String> = grants.http.0.iter().map(ToString::to_string).collect();
    let expected: Vec<String> = model.http.iter().map(|(_, shown)| shown.clone()).collect();
    prop_assert_eq!(http, expected);
    let sockets: Vec<String> = grants.sockets.0.iter().map(ToString::to_string).collect();
    let expected: Vec<String> = model
        .sockets
        .iter()
        .map(|(_, shown)| shown.clone())
        .collect();
    prop_assert_eq!(sockets, expected);
    let fs: Vec<(String, String, are::caps::fs::Mode)> = grants
        .fs
        .0
        .iter()
        .map(|m| (m.host.get_ref().clone(), m.guest.get_ref().clone(), m.mode))
        .collect();
    let expected: Vec<(String, String, are::caps::fs::Mode)> = model
        .fs
        .iter()
        .map(|m| {
            let mode = match m.mode {
                Some("rw") => are::caps::fs::Mode::Rw,
                _ => are::caps::fs::Mode::Ro,
            };
            (m.host.clone(), m.guest.clone(), mode)
        })
        .collect();
    prop_assert_eq!(fs, expected);
    Ok(())
}

fn check_policy(policy: &Policy, model: &PolicyModel) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        policy.defaults,
        model
            .defaults
            .as_ref()
            .map(LimitsModel::expected)
            .unwrap_or_default()
    );
    let names: Vec<&String> = policy.components.keys().collect();
    let mut expected: Vec<&String> = model.components.iter().map(|(n, _)| n).collect();
    expected.sort();
    prop_assert_eq!(names, expected);
    for (name, m) in &model.components {
        let c = &policy.components[name];
        prop_assert_eq!(c.source.get_ref(), &m.source);
        prop_assert_eq!(c.sha256.as_ref().map(|p| p.0), sha256_of(&m.sha256));
        prop_assert_eq!(&c.args, &m.args);
        check_grants(&c.allow, &m.grants)?;
        prop_assert_eq!(c.limits, m.limits.expected());
        let mode = match m.mode {
            Some("session") => InstanceMode::Session,
            _ => InstanceMode::Fresh,
        };
        prop_assert_eq!(c.mode, mode);
        prop_assert_eq!(c.max_concurrency, m.max_concurrency.unwrap_or(16));
        prop_assert_eq!(c.queue, m.queue.unwrap_or(64));
        prop_assert_eq!(
            c.idle_timeout,
            m.idle_timeout.as_ref().map(TimeoutModel::expected)
        );
        prop_assert_eq!(
            policy.limits_for(Some(c)),
            policy.defaults.overlay(m.limits.expected())
        );
    }
    let names: Vec<&String> = policy.agents.keys().collect();
    let mut expected: Vec<&String> = model.agents.iter().map(|(n, _)| n).collect();
    expected.sort();
    prop_assert_eq!(names, expected);
    for (name, m) in &model.agents {
        let a = &policy.agents[name];
        prop_assert_eq!(a.source.get_ref(), &m.source);
        prop_assert_eq!(a.sha256.as_ref().map(|p| p.0), sha256_of(&m.sha256));
        prop_assert_eq!(&a.args, &m.args);
        check_grants(&a.allow, &m.grants)?;
        prop_assert_eq!(&a.allow.tools.0, &m.agent.tools);
        let llm = &a.allow.llm;
        prop_assert_eq!(
            (llm.model.clone(), llm.max_tokens, llm.max_turns),
            m.agent
                .llm
                .clone()
                .map_or((None, None, None), |(model, t, n)| (Some(model), t, n))
        );
        prop_assert_eq!(
            a.allow.memory.quota,
            m.agent.memory.as_ref().map(SizeModel::expected)
        );
        prop_assert_eq!(&a.allow.messaging.send, &m.agent.send);
        prop_assert_eq!(&a.allow.messaging.publish, &m.agent.publish);
        prop_assert_eq!(&a.allow.messaging.subscribe, &m.agent.subscribe);
        prop_assert_eq!(a.limits, m.limits.expected());
        prop_assert_eq!(
            a.idle_timeout,
            m.idle_timeout.as_ref().map(TimeoutModel::expected)
        );
        prop_assert_eq!(a.message_budget, m.message_budget);
    }
    let (max_instances, pooling, page_size, origins) = &model.serve;
    prop_assert_eq!(policy.serve.max_instances, *max_instances);
    prop_assert_eq!(policy.serve.pooling, *pooling);
    prop_assert_eq!(policy.serve.page_size, *page_size);
    prop_assert_eq!(&policy.serve.allowed_origins, origins);
    let (store, hop_limit, reply_timeout, sync) = &model.runtime;
    let runtime = &policy.agent_runtime;
    prop_assert_eq!(&runtime.store, store);
    prop_assert_eq!(runtime.hop_limit, *hop_limit);
    prop_assert_eq!(
        runtime.reply_timeout,
        reply_timeout.as_ref().map(TimeoutModel::expected)
    );
    let sync = sync.map(|s| {
        if s == "full" {
            SyncMode::Full
        } else {
            SyncMode::Normal
        }
    });
    prop_assert_eq!(runtime.sync, sync);
    let (base_url, llm_model, api_key_env, llm_timeout) = &model.llm;
    prop_assert_eq!(&policy.llm.base_url, base_url);
    prop_assert_eq!(&policy.llm.model, llm_model);
    prop_assert_eq!(&policy.llm.api_key_env, api_key_env);
    prop_assert_eq!(
        policy.llm.timeout,
        llm_timeout.as_ref().map(TimeoutModel::expected)
    );
    Ok(())
}

/// A parse error points inside the text and says something.
fn check_error(text: &str, error: &PolicyError) -> Result<(), TestCaseError> {
    let PolicyError::Invalid {
        line,
        column,
        message,
        ..
    } = error
    else {
        return Err(TestCaseError::fail(format!(
            "parsing text failed to read: {error}"
        )));
    };
    let lines: Vec<&str> = text.split('\n').collect();
    prop_assert!(
        (1..=lines.len()).contains(line),
        "line {} of {}: {}",
        line,
        lines.len(),
        message
    );
    let columns = lines[line - 1].chars().count() + 1;
    prop_assert!(
        (1..=columns).contains(column),
        "column {} of {}: {}",
        column,
        columns,
        message
    );
    prop_assert!(!message.trim().is_empty());
    prop_assert!(error.to_string().starts_with("are.toml:"));
    Ok(())
}

/// Text that looks like a policy: known headers and keys, values of every TOML kind, and some garbage.
fn tomlish() -> impl Strategy<Value = String> {
    let header = select(vec![
        "[component.a]",
        "[component.b.allow]",
        "[component.a.limits]",
        "[defaults.limits]",
        "[defaults]",
        "[serve]",
        "[agents]",
        "[llm]",
        "[agent.x]",
        "[agent.x.allow]",
        "[agent.x.allow.llm]",
        "[[component]]",
        "[component.\"é\"]",
        "[component.'a b']",
        "[component]",
        "[agent.x.allow.messaging]",
        "[",
        "[component.a.allow.fs]",
        "[[component.a.allow.fs]]",
    ])
    .prop_map(str::to_owned);
    let key = select(vec![
        "source",
        "sha256",
        "args",
        "allow.fs",
        "allow.env",
        "allow.http",
        "allow.sockets",
        "allow.tools",
        "allow.llm.model",
        "allow.memory.quota",
        "allow.messaging.send",
        "limits.fuel",
        "limits.memory",
        "limits.timeout",
        "limits.max_output",
        "mode",
        "max_concurrency",
        "queue",
        "idle_timeout",
        "message_budget",
        "fuel",
        "memory",
        "timeout",
        "max_output",
        "max_instances",
        "pooling",
        "page_size",
        "allowed_origins",
        "store",
        "hop_limit",
        "reply_timeout",
        "sync",
        "base_url",
        "model",
        "api_key_env",
        "component.a.source",
        "allow.env.\"\"",
        "allow.env.\"A=B\"",
        "\"\"",
        "a.b.c",
        "host",
        "guest",
    ]);
    let value = prop_oneof![
        select(vec![
            "\"a.wasm\"",
            "\"64 MiB\"",
            "\"5s\"",
            "\"0s\"",
            "\"25h\"",
            "\"unlimited\"",
            "\"1_000\"",
            "\"-1\"",
            "\"18446744073709551616\"",
            "\"1e400 B\"",
            "\"99999999999999999999 EiB\"",
            "\"1.5 KiB\"",
            "\"NaN B\"",
            "\"inf MiB\"",
            "\"-5 MiB\"",
            "\"584942417355y\"",
            "\"99999999999999999999s\"",
            "\"1ns\"",
            "\"fresh\"",
            "\"session\"",
            "\"full\"",
            "\"ro\"",
            "\"rw\"",
            "\"http://x\"",
            "\"https://*.a.b:99999\"",
            "\"tcp://h:0\"",
            "\"udp://[::1]:53\"",
            "\"[\"",
            "\"http://[::1\"",
            "\"sha256:\"",
            "\"abababababababababababababababababababababababababababababababab\"",
            "\"ébébébébébébébébébébébébébébébébébébébébébébébébébébébébébébébé\"",
            "0",
            "-1",
            "9223372036854775807",
            "-9223372036854775808",
            "4294967296",
            "1.5",
            "inf",
            "nan",
            "-0.0",
            "true",
            "false",
            "1979-05-27T07:32:00Z",
            "07:32:00",
            "[]",
            "[1, \"a\"]",
            "{}",
            "{ host = \"d0\", guest = \"/d\" }",
            "[{ host = \"d0\", guest = \"/d\", mode = \"rw\" }]",
            "[{ host = \"nope\", guest = \"d\" }]",
            "{ A = \"1\" }",
            "{ model = \"m\", max_tokens = -1 }",
            "\"\"\"\nmulti\"\"\"",
            "'''\nraw'''",
            "0x10",
            "0o7",
            "0b1",
            "1_000",
            "+1",
            "1e3",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,12}".prop_map(|s| toml_string(&s, false)),
    ];
    let line = prop_oneof![
        3 => header,
        6 => (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => "\\PC{0,16}",
        1 => "[\\[\\]{}=\"',.#\\\\ a-z0-9\n]{0,12}",
    ];
    (prop::collection::vec(line, 0..12), any::<bool>())
        .prop_map(|(lines, crlf)| lines.join(if crlf { "\r\n" } else { "\n" }))
}

/// Small edits of a text: characters that matter to TOML inserted, characters removed, lines duplicated.
fn mutate_text(text: &str, edits: &[(Index, u8, char)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for (at, op, c) in edits {
        let i = at.index(chars.len() + 1);
        match op % 3 {
            0 => chars.insert(i, *c),
            1 if i < chars.len() => {
                chars.remove(i);
            }
            _ => {
                let start = chars[..i]
                    .iter()
                    .rposition(|&c| c == '\n')
                    .map_or(0, |p| p + 1);
                let end = chars[i..]
                    .iter()
                    .position(|&c| c == '\n')
                    .map_or(chars.len(), |p| i + p);
                let line: Vec<char> = chars[start..end].to_vec();
                chars.splice(end..end, std::iter::once('\n').chain(line));
            }
        }
    }
    chars.into_iter().collect()
}

fn toml_char() -> impl Strategy<Value = char> {
    prop_oneof![
        select(vec![
            '[', ']', '{', '}', '=', '"', '\'', ',', '.', '#', '\\', '\n', ' ', '_', '-', '0', 'a',
            'é', '\r', '\t'
        ]),
        any::<char>(),
    ]
}

proptest! {
    #![proptest_config(config(64))]

    /// Generated policies, rendered as TOML in several styles, parse back to what was generated.
    #[test]
    fn generated_policies_round_trip(model in policy_model()) {
        let text = render_policy(&model);
        match parse_policy(&text) {
            Ok(policy) => check_policy(&policy, &model)?,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n{text}"))),
        }
    }

    /// Agent-only grants in a component table are refused, pointing at the component.
    #[test]
    fn agent_only_grants_are_refused_for_components(
        (name, component) in (component_name(), component_model()),
        agent in agent_grants(),
    ) {
        let model = PolicyModel {
            defaults: None,
            components: vec![(name.clone(), component)],
            agents: vec![],
            serve: (None, None, None, vec![]),
            runtime: (None, None, None, None),
            llm: (None, None, None, None),
            literal_strings: false,
        };
        let mut text = render_policy(&model);
        let w = TomlWriter { out: String::new(), literal: false };
        let entries = w.agent_grant_entries(&agent);
        // A second table header for the same component is a TOML error, so the grants go in a new component.
        if !entries.is_empty() {
            let _ = write!(text, "\n[component.extra-agentish]\nsource = \"x.wasm\"\n");
            for (k, v) in &entries {
                let _ = writeln!(text, "allow.{k} = {v}");
            }
            let error = parse_policy(&text).expect_err("agent-only grant in a component");
            check_error(&text, &error)?;
            prop_assert!(error.to_string().contains("only for agents"), "{}", error);
        }
    }

    /// Text that looks like a policy parses or fails with an error that points inside it; it never panics.
    #[test]
    fn policy_parser_survives_tomlish_text(text in tomlish()) {
        if let Err(e) = parse_policy(&text) {
            check_error(&text, &e)?;
        }
    }

    /// Generated policies with small edits parse or fail cleanly.
    #[test]
    fn policy_parser_survives_edited_policies(
        model in policy_model(),
        edits in prop::collection::vec((any::<Index>(), any::<u8>(), toml_char()), 1..=4),
    ) {
        let text = mutate_text(&render_policy(&model), &edits);
        if let Err(e) = parse_policy(&text) {
            check_error(&text, &e)?;
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Loading arbitrary bytes.

/// An edit of a component's bytes.
#[derive(Debug, Clone)]
enum ByteEdit {
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    Truncate(Index),
    Duplicate(Index, usize),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    // Bytes that matter to the binary format: LEB128 continuation, section ids, type constructors, max values.
    let special = prop_oneof![
        select(vec![
            0x00, 0x01, 0x7f, 0x80, 0xff, 0x0b, 0x60, 0x40, 0x41, 0x42, 0x3f, 0x70, 0x6f, 0x00
        ]),
        any::<u8>(),
    ];
    prop_oneof![
        3 => (any::<Index>(), 0..8u8).prop_map(|(at, bit)| ByteEdit::Flip(at, bit)),
        3 => (any::<Index>(), special.clone()).prop_map(|(at, b)| ByteEdit::Set(at, b)),
        2 => (any::<Index>(), prop::collection::vec(special, 1..=6)).prop_map(|(at, b)| ByteEdit::Insert(at, b)),
        1 => (any::<Index>(), 1..64usize).prop_map(|(at, n)| ByteEdit::Remove(at, n)),
        1 => any::<Index>().prop_map(ByteEdit::Truncate),
        1 => (any::<Index>(), 1..64usize).prop_map(|(at, n)| ByteEdit::Duplicate(at, n)),
    ]
}

fn apply_edits(bytes: &mut Vec<u8>, edits: &[ByteEdit]) {
    for edit in edits {
        let len = bytes.len();
        match edit {
            ByteEdit::Flip(at, bit) if len > 0 => bytes[at.index(len)] ^= 1 << bit,
            ByteEdit::Set(at, b) if len > 0 => bytes[at.index(len)] = *b,
            ByteEdit::Insert(at, new) => {
                let i = at.index(len + 1);
                bytes.splice(i..i, new.iter().copied());
            }
            ByteEdit::Remove(at, n) if len > 0 => {
                let i = at.index(len);
                bytes.drain(i..(i + n).min(len));
            }
            ByteEdit::Truncate(at) => bytes.truncate(at.index(len + 1)),
            ByteEdit::Duplicate(at, n) if len > 0 => {
                let i = at.index(len);
                let copy: Vec<u8> = bytes[i..(i + n).min(len)].to_vec();
                bytes.splice(i..i, copy);
            }
            _ => {}
        }
    }
}

/// Components to mutate: small real guests and a generated one with a rich signature.
fn seed_components() -> &'static [Vec<u8>] {
    static SEEDS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut seeds: Vec<Vec<u8>> = ["hostile-recursion", "kv"]
            .into_iter()
            .map(|name| are_tests::guest(name).bytes())
            .collect();
        seeds.push(component_from_wit(
            "package gen:seed;
             interface api {
                 record r { a: u8, b-c: option<string> }
                 variant v { x(r), y }
                 flags f { p, q }
                 resource h;
                 call: func(r: r, v: v, f: f, l: list<u8>) -> result<tuple<s64, f32>, string>;
                 use-handle: func(h: borrow<h>);
             }
             world seed { export api; export top: func(c: char) -> option<option<bool>>; }",
        ));
        seeds
    })
}

/// Reading, validating and describing bytes fails with an error or succeeds; it never panics.
fn load_bytes(bytes: &[u8], dir: &Path, name: &str) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write component");
    match read_component(&path, are::policy::DEFAULT_MAX_COMPONENT_SIZE) {
        Ok(read) => {
            let _ = validate(&path, &read);
            if let Ok(desc) = ComponentDescription::from_bytes(&read, None) {
                let _ = desc.to_json();
            }
        }
        Err(
            LoadError::NotWasm { .. } | LoadError::CoreModule { .. } | LoadError::Invalid { .. },
        ) => {}
        Err(e) => panic!("unexpected read error: {e}"),
    }
}

proptest! {
    #![proptest_config(config(48))]

    /// Edited components are refused with an error, or read, validated and described; nothing panics.
    #[test]
    fn edited_components_load_or_fail_cleanly(
        seed in any::<Index>(),
        edits in prop::collection::vec(byte_edit(), 1..=6),
    ) {
        let seeds = seed_components();
        let mut bytes = seeds[seed.index(seeds.len())].clone();
        apply_edits(&mut bytes, &edits);
        let dir = tempfile::tempdir().expect("temp dir");
        load_bytes(&bytes, dir.path(), "edited.wasm");
    }

    /// Edited WebAssembly text (the hand-written table attack) is refused or read like a binary.
    #[test]
    fn edited_component_text_loads_or_fails_cleanly(
        edits in prop::collection::vec((any::<Index>(), any::<u8>(), toml_char()), 1..=4),
    ) {
        let text = std::fs::read_to_string(are_tests::hostile_table_wat()).expect("table.wat");
        let edited = mutate_text(&text, &edits);
        let dir = tempfile::tempdir().expect("temp dir");
        load_bytes(edited.as_bytes(), dir.path(), "edited.wat");
    }

    /// Arbitrary bytes, with or without a WebAssembly header, are refused cleanly.
    #[test]
    fn arbitrary_bytes_are_refused_cleanly(
        header in select(vec![&b""[..], b"\0asm", b"\0asm\x0d\x00\x01\x00", b"\0asm\x01\x00\x00\x00", b"(component", b";;"]),
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let bytes: Vec<u8> = header.iter().copied().chain(body).collect();
        let dir = tempfile::tempdir().expect("temp dir");
        load_bytes(&bytes, dir.path(), "arbitrary.wasm");
    }
}

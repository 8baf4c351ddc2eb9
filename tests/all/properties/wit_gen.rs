//! Generated WIT types, worlds that use them, their values, and the JSON a client may write for a value.

use super::{Choices, unique_by_name};
use base64::Engine as _;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};
use std::fmt::Write as _;
use wasmtime::component::Val;

/// A WIT type, as generated.
#[derive(Debug, Clone)]
pub(super) enum Ty {
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
pub(super) fn render_world(types: &[Ty]) -> String {
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
pub(super) fn value(ty: &Ty) -> BoxedStrategy<Val> {
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
pub(super) fn client_json(ty: &Ty, val: &Val, choices: &mut Choices, strict: &mut bool) -> Value {
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
pub(super) fn world_and_values() -> impl Strategy<Value = (Vec<Ty>, Vec<Vec<Val>>, u64)> {
    prop::collection::vec(wit_type(), 1..=3).prop_flat_map(|types| {
        let values: Vec<_> = types
            .iter()
            .map(|t| prop::collection::vec(value(t), 1..=3))
            .collect();
        (Just(types), values, any::<u64>())
    })
}

//! Integers convert exactly at the bounds of every WIT integer type, whatever form the JSON number takes.

use super::{config, validator};
use crate::common::component_from_wit;
use are_runtime::describe::ComponentDescription;
use are_runtime::schema::input_schema;
use are_runtime::value::args_to_vals;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::Value;
use std::fmt::Write as _;
use wasmtime::component::Val;

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

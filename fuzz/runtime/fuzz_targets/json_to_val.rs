//! JSON → component values → JSON over a fixed rich WIT world ([`are_fuzz::RICH_WIT`]).
//!
//! Input: one byte choosing the function, then either JSON text or, when the rest is not JSON, bytes from which a
//! JSON value is built (with the world's field, case and flag names). The value goes through `args_to_vals` as
//! the function's arguments and through `json_to_val` for every parameter and result type. Whatever converts must
//! convert back with `val_to_json`, to JSON that both schemas accept and that converts to the same value again;
//! JSON that the input schema accepts must convert.

#![no_main]

use std::sync::OnceLock;

use arbitrary::Unstructured;
use are_fuzz::{JsonBuilder, RICH_WIT, component_from_wit, names};
use are_runtime::describe::{ComponentDescription, ExportedFunction};
use are_runtime::schema::{Direction, input_schema, type_schema};
use are_runtime::value::{args_to_vals, json_to_val, result_to_json, val_to_json};
use jsonschema::Validator;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use wit_parser::Type;

struct Fixture {
    desc: ComponentDescription,
    names: Vec<String>,
    functions: Vec<Function>,
}

struct Function {
    index: usize,
    /// The input schema of the arguments object, for tools.
    args: Option<Validator>,
    /// Every parameter type and the result type, with their input and output schemas when they have one.
    types: Vec<(Type, Option<(Validator, Validator)>)>,
}

fn validator(schema: &Value) -> Validator {
    jsonschema::validator_for(schema).expect("schema compiles")
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let desc = ComponentDescription::from_bytes(&component_from_wit(RICH_WIT), None)
            .expect("rich world describes");
        let resolve = desc.resolve();
        let functions = desc
            .exports()
            .iter()
            .enumerate()
            .map(|(index, f)| {
                let types = f
                    .params
                    .iter()
                    .map(|(_, ty)| *ty)
                    .chain(f.result)
                    .map(|ty| {
                        let input = type_schema(resolve, &ty, Direction::Input).ok();
                        let output = type_schema(resolve, &ty, Direction::Output).ok();
                        let schemas = input
                            .zip(output)
                            .map(|(i, o)| (validator(&i), validator(&o)));
                        (ty, schemas)
                    })
                    .collect();
                let args = f.is_tool().then(|| validator(&input_schema(&desc, f)));
                Function { index, args, types }
            })
            .collect();
        let names = names(resolve);
        Fixture {
            desc,
            names,
            functions,
        }
    })
}

/// `val` (converted from some JSON with type `ty`) converts back to JSON that the schemas accept and that
/// converts to the same value.
fn check_back(
    fx: &Fixture,
    ty: &Type,
    schemas: Option<&(Validator, Validator)>,
    val: &wasmtime::component::Val,
) {
    let resolve = fx.desc.resolve();
    let back = val_to_json(resolve, ty, val)
        .unwrap_or_else(|e| panic!("a converted value does not convert back: {e}; {val:?}"));
    if let Some((input, output)) = schemas {
        assert!(
            output.is_valid(&back),
            "output {back} fails the output schema"
        );
        assert!(
            input.is_valid(&back),
            "output {back} fails the input schema"
        );
    }
    // Through JSON text, as a client would see it.
    let text = serde_json::to_string(&back).expect("serialises");
    let reparsed: Value = serde_json::from_str(&text).expect("parses");
    let again = json_to_val(resolve, ty, &reparsed, "again")
        .unwrap_or_else(|e| panic!("output {text} does not convert again: {e}"));
    assert_eq!(&again, val, "{text} does not round-trip");
}

fn check_function(fx: &Fixture, f: &Function, json: &Value) {
    let desc = &fx.desc;
    let resolve = desc.resolve();
    let exported: &ExportedFunction = &desc.exports()[f.index];

    let converted = args_to_vals(desc, exported, json);
    if let (Some(args), Err(e)) = (&f.args, &converted) {
        assert!(
            !args.is_valid(json),
            "the input schema accepts {json} but conversion fails: {e}"
        );
    }
    if let Ok(vals) = &converted {
        assert_eq!(vals.len(), exported.params.len());
        for (i, val) in vals.iter().enumerate() {
            check_back(fx, &f.types[i].0, f.types[i].1.as_ref(), val);
        }
    }

    // The same JSON as a value of each parameter and result type.
    for (ty, schemas) in &f.types {
        let converted = json_to_val(resolve, ty, json, "x");
        if let (Some((input, _)), Err(e)) = (schemas, &converted) {
            assert!(
                !input.is_valid(json),
                "the input schema accepts {json} but conversion fails: {e}"
            );
        }
        if let Ok(val) = converted {
            check_back(fx, ty, schemas.as_ref(), &val);
        }
    }
    if let Some(ty) = &exported.result
        && let Ok(val) = json_to_val(resolve, ty, json, "result")
    {
        let expected = val_to_json(resolve, ty, &val).ok();
        let reported = result_to_json(desc, exported, std::slice::from_ref(&val))
            .expect("a result value converts");
        assert_eq!(reported, expected);
    }
}

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let f = &fx.functions[usize::from(selector) % fx.functions.len()];
    let json = match serde_json::from_slice::<Value>(rest) {
        Ok(json) => json,
        Err(_) => {
            let builder = JsonBuilder { names: &fx.names };
            let mut u = Unstructured::new(rest);
            match builder.value(&mut u, 5) {
                Ok(json) => json,
                Err(_) => json!(null),
            }
        }
    };
    check_function(fx, f, &json);
});

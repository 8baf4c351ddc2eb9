//! Shared fixtures of the fuzz targets: a WIT world with every type that has a JSON form, components built from
//! WIT text, and JSON values built from fuzzer bytes.

use std::collections::BTreeSet;

use arbitrary::Unstructured;
use serde_json::{Map, Number, Value};
use wit_parser::{Resolve, TypeDefKind};

/// A world with every kind of WIT type that has a JSON form (and one function that has none).
pub const RICH_WIT: &str = r#"package fuzz:rich@1.0.0;

interface types {
    record point { x: f64, y: f32 }
    variant shape { circle(f32), polygon(list<point>), empty, named(string), tagged(tuple<u8, color>) }
    enum color { red, green, blue, dark-red }
    flags perms { read, write, exec, admin-only, f4, f5, f6, f7, f8, f9, f10, last-flag }
    type bytes = list<u8>;
    type byte = u8;
    type maybe-u8 = option<u8>;
    type label = string;
    record item {
        id: u64,
        label: label,
        color: color,
        perms: perms,
        data: list<u8>,
        blob: bytes,
        raw: list<byte>,
        at: option<point>,
        maybe: option<option<s16>>,
        deep: option<option<option<bool>>>,
        alias-opt: option<maybe-u8>,
        pair: tuple<char, bool>,
        signed: tuple<s8, s16, s32, s64>,
        unsigned: tuple<u8, u16, u32, u64>,
        outcome: result<u8, string>,
        empty-ok: result<_, color>,
        empty-err: result<shape>,
        bare: result,
        %type: string,
        kebab-case-name: option<u32>,
    }
    resource blob-handle;
}

interface api {
    use types.{point, shape, color, perms, bytes, maybe-u8, item, blob-handle};
    draw: func(shape: shape, color: color) -> result<list<point>, string>;
    store: func(item: item, tags: list<string>, limit: option<u32>) -> item;
    checksum: func(data: list<u8>) -> tuple<u32, list<u8>>;
    check: func(p: perms) -> result<_, string>;
    floats: func(a: f32, b: f64, c: list<f32>) -> list<f64>;
    chars: func(c: char, s: list<char>) -> option<char>;
    nested: func(x: list<list<option<item>>>) -> list<tuple<item, shape>>;
    options: func(a: option<option<u8>>, b: maybe-u8, c: option<bytes>) -> option<option<option<string>>>;
    nothing: func();
    handle: func(h: borrow<blob-handle>) -> u32;
}

world rich {
    export api;
    export version: func() -> string;
    export add: func(a: s64, b: u64, c: s8) -> s64;
}
"#;

/// A component implementing the single world of `wit` with trapping function bodies.
///
/// # Panics
/// When the WIT does not parse or the component does not encode.
pub fn component_from_wit(wit: &str) -> Vec<u8> {
    let mut resolve = Resolve::default();
    let package = resolve.push_str("fuzz.wit", wit).expect("WIT parses");
    let world = resolve.select_world(&[package], None).expect("one world");
    let mut module =
        wit_component::dummy_module(&resolve, world, wit_parser::ManglingAndAbi::Standard32);
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .expect("metadata embeds");
    wit_component::ComponentEncoder::default()
        .module(&module)
        .expect("module is valid")
        .validate(true)
        .encode()
        .expect("component encodes")
}

/// Every name that JSON objects and strings of `resolve`'s types use: fields, cases, flags, parameters, also
/// spelt with `_` for `-`, plus the fixed keys and strings of the JSON conventions.
pub fn names(resolve: &Resolve) -> Vec<String> {
    let mut names: BTreeSet<String> = ["ok", "err", "some", "NaN", "Infinity", "-Infinity"]
        .into_iter()
        .map(String::from)
        .collect();
    for (_, def) in resolve.types.iter() {
        match &def.kind {
            TypeDefKind::Record(r) => names.extend(r.fields.iter().map(|f| f.name.clone())),
            TypeDefKind::Variant(v) => names.extend(v.cases.iter().map(|c| c.name.clone())),
            TypeDefKind::Enum(e) => names.extend(e.cases.iter().map(|c| c.name.clone())),
            TypeDefKind::Flags(f) => names.extend(f.flags.iter().map(|f| f.name.clone())),
            _ => {}
        }
    }
    for (_, interface) in resolve.interfaces.iter() {
        for f in interface.functions.values() {
            names.extend(f.params.iter().map(|p| p.name.clone()));
        }
    }
    let snake: Vec<String> = names
        .iter()
        .filter(|n| n.contains('-') && !n.starts_with('-'))
        .map(|n| n.replace('-', "_"))
        .collect();
    names.extend(snake);
    names.into_iter().collect()
}

/// Numbers at the edges of the WIT number types.
const EDGE_NUMBERS: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    2.5,
    3.0,
    127.0,
    128.0,
    -128.0,
    -129.0,
    255.0,
    256.0,
    32767.0,
    -32769.0,
    65535.0,
    65536.0,
    2147483647.0,
    -2147483649.0,
    4294967295.0,
    4294967296.0,
    9007199254740993.0,
    9223372036854775807.0,
    18446744073709551615.0,
    18446744073709551616.0,
    3.4028234663852886e38,
    3.4028235677973366e38,
    3.402823567797337e38,
    1e300,
    -1e300,
    1.401298464324817e-45,
    7e-46,
    5e-324,
];

/// Strings that the JSON conventions give meaning to (base64, non-finite floats, one character).
const EDGE_STRINGS: &[&str] = &[
    "", "a", "é", "🦀", "ab", "A", "AB", "AB=", "AQ", "AQ==", "AQ=", "AQI", "AQID", "aGk=", "aGk",
    "aGk==", "====", "A===", "+/+/", "-_-_", "nan", "inf", "-inf", "\u{0}", "\u{ffff}",
];

/// Builds JSON values out of fuzzer bytes, preferring the names and numbers that matter to a WIT type.
pub struct JsonBuilder<'a> {
    /// Object keys and strings to pick from.
    pub names: &'a [String],
}

impl JsonBuilder<'_> {
    /// A JSON value at most `depth` levels deep.
    pub fn value(&self, u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<Value> {
        let kinds = if depth == 0 { 6 } else { 8 };
        Ok(match u.choose_index(kinds)? {
            0 => Value::Null,
            1 => Value::Bool(u.arbitrary()?),
            2 => self.number(u)?,
            3 => Value::String(self.name(u)?),
            4 => Value::String(u.arbitrary()?),
            5 => Value::String((*u.choose(EDGE_STRINGS)?).to_owned()),
            6 => {
                let len = u.int_in_range(0..=5)?;
                let items = (0..len)
                    .map(|_| self.value(u, depth - 1))
                    .collect::<arbitrary::Result<_>>()?;
                Value::Array(items)
            }
            _ => {
                let len = u.int_in_range(0..=4)?;
                let mut map = Map::new();
                for _ in 0..len {
                    let key = if u.ratio(1, 8)? {
                        u.arbitrary()?
                    } else {
                        self.name(u)?
                    };
                    map.insert(key, self.value(u, depth - 1)?);
                }
                Value::Object(map)
            }
        })
    }

    fn name(&self, u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
        Ok(u.choose(self.names)?.clone())
    }

    fn number(&self, u: &mut Unstructured<'_>) -> arbitrary::Result<Value> {
        Ok(match u.choose_index(5)? {
            0 => Value::from(u.arbitrary::<i8>()?),
            1 => Value::from(u.arbitrary::<i64>()?),
            2 => Value::from(u.arbitrary::<u64>()?),
            3 => Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number),
            _ => Number::from_f64(*u.choose(EDGE_NUMBERS)?).map_or(Value::Null, Value::Number),
        })
    }
}

//! WIT types as JSON Schema (draft 2020-12).
//!
//! This module and [`crate::value`] together define how a tool's WIT signature looks in JSON. The schema produced
//! here describes exactly the JSON that [`crate::value::json_to_val`] accepts (direction [`Direction::Input`]) and
//! that [`crate::value::val_to_json`] produces (direction [`Direction::Output`]).
//!
//! # Conventions
//!
//! | WIT | JSON |
//! |-----|------|
//! | `bool` | `true` / `false` |
//! | `u8` … `u64`, `s8` … `s64` | integer, range-checked (`3.0` is accepted, `3.5` is not) |
//! | `f32`, `f64` | number, or one of the strings `"NaN"`, `"Infinity"`, `"-Infinity"` |
//! | `char` | string of exactly one Unicode scalar value |
//! | `string` | string |
//! | `list<T>` | array |
//! | `list<u8>` | input: base64 string (standard alphabet, padding optional) or array of integers 0‥255; output: always a base64 string |
//! | `list<T, N>` | array of exactly `N` items |
//! | `tuple<A, B>` | array of exactly 2 items (`prefixItems`, and `minItems`/`maxItems` so that draft-07 validators, which ignore `prefixItems`, check the length) |
//! | `record` | object, one property per field in WIT order; all fields required except `option<…>` ones; no other properties |
//! | `variant` | a case without payload is the string `"case"`; a case with payload is the object `{"case": payload}` |
//! | `enum` | string, one of the case names |
//! | `option<T>` | `null` for none, the value of `T` for some |
//! | `option<option<T>>` | `null` for none; `{"some": …}` for some, so that `some(none)` stays distinct from `none` |
//! | `result<T, E>` | `{"ok": T}` or `{"err": E}`; a missing payload is `null` (`{"ok": null}`) |
//! | `flags` | object of booleans, one property per flag, none required (missing means `false`); input also accepts an array of flag names |
//! | type aliases | the aliased type, with the alias name as `title` |
//!
//! Named types get their name as `title`, and their WIT doc comments as `description` (field, case and flag docs
//! go on the matching sub-schema). A type used once is written where it is used. A type used more than once in
//! one schema, when it is named (or anonymous but large), is written once under the schema's root `$defs` and
//! referred to as `{"$ref": "#/$defs/iface.name"}`: WIT types cannot be recursive, but they can share one
//! another, and written out in full `type t1 = tuple<t0, t0>; type t2 = tuple<t1, t1>; …` would double in size
//! at every step. So each type is written out at most once per schema (anonymous ones of up to [`INLINE_LIMIT`]
//! nodes aside), and a schema is never larger than linear in the component's type definitions.
//!
//! Resources (`own<T>`, `borrow<T>`), `future`, `stream`, `error-context` and `map` have no JSON form:
//! [`type_schema`] returns an [`UnsupportedType`] saying why, and functions using them are not tools.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;

use serde_json::{Map, Value, json};
use wit_parser::{
    Case, Enum, Flags, Handle, Record, Resolve, Result_, Tuple, Type, TypeDefKind, TypeId,
    TypeOwner, Variant,
};

use crate::describe::{ComponentDescription, ExportedFunction};

/// The `$schema` URI of the JSON Schema dialect produced here.
pub const JSON_SCHEMA_DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Most bytes one tool schema (the JSON Schema of a function's arguments, or of its result, written compactly)
/// may take: a component with a larger one is refused when it is described, naming the function.
pub const MAX_TOOL_SCHEMA: usize = 256 * 1024;

/// Most bytes the tool schemas of one component may take together (see [`MAX_TOOL_SCHEMA`]).
pub const MAX_COMPONENT_SCHEMAS: usize = 2 * 1024 * 1024;

/// The smallest magnitude that rounds to infinity as an `f32` (2¹²⁸ − 2¹⁰³, halfway between `f32::MAX` and 2¹²⁸):
/// larger numbers do not fit an `f32`.
const F32_LIMIT: f64 = 340_282_356_779_733_661_637_539_395_458_142_568_448.0;

/// Regular expression that exactly the base64 strings the converter decodes match: standard alphabet, groups of
/// four, then two characters and up to two `=`, or three and up to one, with zero bits past the last byte
/// (so `"A"` and `"AB"` are refused by both the schema and the converter).
const BASE64_PATTERN: &str =
    "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]={0,2}|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=?)?$";

/// The schema of a base64-encoded `list<u8>` argument. Without `contentEncoding`: padding is optional here, and
/// draft-07 validators that check `contentEncoding` (jsonschema-rs does) would refuse unpadded strings.
pub(crate) fn base64_input_schema() -> Value {
    json!({"type": "string", "pattern": BASE64_PATTERN})
}

/// The schema of a base64-encoded `list<u8>` result: always padded, so `contentEncoding` holds under every draft.
fn base64_output_schema() -> Value {
    json!({"type": "string", "contentEncoding": "base64", "pattern": BASE64_PATTERN})
}

/// Which way a value travels: the two directions differ only for `list<u8>` and `flags`, where inputs accept a
/// second, more convenient form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Arguments sent to the component.
    Input,
    /// Results returned by the component.
    Output,
}

/// A WIT type that has no JSON form, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedType {
    /// The offending type in WIT syntax, e.g. `own<blob>`.
    pub wit_type: String,
    /// What the offending type is, e.g. "a resource handle".
    pub what: &'static str,
    /// Why it cannot be used, e.g. "resources cannot be passed as JSON".
    pub why: &'static str,
    /// Whether the offending type sits inside the type that was asked about (rather than being that type).
    pub nested: bool,
}

impl fmt::Display for UnsupportedType {
    /// Renders as a sentence predicate: `is a resource handle (own<blob>); resources cannot be passed as JSON`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.nested { "contains" } else { "is" };
        write!(f, "{verb} {} ({}); {}", self.what, self.wit_type, self.why)
    }
}

impl std::error::Error for UnsupportedType {}

/// The JSON Schema of one WIT type (with the `$defs` it refers to), or the reason it has none.
pub fn type_schema(
    resolve: &Resolve,
    ty: &Type,
    direction: Direction,
) -> Result<Value, UnsupportedType> {
    let builder = SchemaBuilder::new(resolve, direction, &[*ty]);
    let schema = builder.schema(ty, false)?;
    Ok(builder.finish(schema))
}

/// The schema `outer` builds around `inner` (a schema from this module), with the `$defs` of `inner` moved to
/// the root, where its `$ref`s (`#/$defs/…`) point.
pub fn nest(mut inner: Value, outer: impl FnOnce(Value) -> Value) -> Value {
    let defs = inner.as_object_mut().and_then(|map| map.remove("$defs"));
    let mut schema = outer(inner);
    if let (Some(defs), Value::Object(map)) = (defs, &mut schema) {
        map.insert("$defs".into(), defs);
    }
    schema
}

/// The JSON Schema of a function's arguments: an object with one property per parameter.
///
/// Every parameter is required except `option<…>` ones. A parameter whose type has no JSON form (see
/// [`ExportedFunction::unsupported`]) gets the schema `false`, which nothing satisfies.
pub fn input_schema(desc: &ComponentDescription, f: &ExportedFunction) -> Value {
    let resolve = desc.resolve();
    let mut properties = Map::new();
    let mut required = Vec::new();
    let docs = f.docs.as_deref().map(param_docs).unwrap_or_default();
    let types: Vec<Type> = f.params.iter().map(|(_, ty)| *ty).collect();
    let builder = SchemaBuilder::new(resolve, Direction::Input, &types);
    for (name, ty) in &f.params {
        let mut schema = builder.schema(ty, false).unwrap_or(Value::Bool(false));
        if let (Some(doc), Value::Object(map)) = (docs.get(name.as_str()), &mut schema) {
            let described = match map.get("description").and_then(Value::as_str) {
                Some(type_doc) => format!("{doc}\n\n{type_doc}"),
                None => doc.clone(),
            };
            map.insert("description".into(), described.into());
        }
        if !is_option(resolve, ty) {
            required.push(Value::String(name.clone()));
        }
        properties.insert(name.clone(), schema);
    }
    builder.finish(json!({
        "$schema": JSON_SCHEMA_DIALECT,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    }))
}

/// Parameter descriptions from a function's doc comment. WIT has no doc comments on parameters, so the
/// convention is a list item per parameter: ``- `name`: what it means`` (continuation lines indented).
pub fn param_docs(docs: &str) -> std::collections::BTreeMap<&str, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut current: Option<(&str, String)> = None;
    for line in docs.lines() {
        let item = line
            .trim_start()
            .strip_prefix("- `")
            .and_then(|rest| rest.split_once('`'))
            .and_then(|(name, rest)| Some((name, rest.trim_start().strip_prefix(':')?.trim())));
        match item {
            Some((name, text)) => {
                out.extend(current.take());
                current = Some((name, text.to_string()));
            }
            None => match &mut current {
                Some((_, text)) if line.starts_with([' ', '\t']) && !line.trim().is_empty() => {
                    text.push(' ');
                    text.push_str(line.trim());
                }
                _ => out.extend(current.take()),
            },
        }
    }
    out.extend(current);
    out
}

/// The JSON Schema of a function's result, or `None` when the function returns nothing.
///
/// A result type with no JSON form (see [`ExportedFunction::unsupported`]) gets the schema `false`.
pub fn output_schema(desc: &ComponentDescription, f: &ExportedFunction) -> Option<Value> {
    let ty = f.result.as_ref()?;
    let mut schema =
        type_schema(desc.resolve(), ty, Direction::Output).unwrap_or(Value::Bool(false));
    if let Value::Object(map) = &mut schema {
        map.insert("$schema".into(), JSON_SCHEMA_DIALECT.into());
    }
    Some(schema)
}

/// The length of `schema` written as compact JSON, counted without keeping the text.
pub fn json_size(schema: &Value) -> usize {
    /// Counts what is written to it.
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a `Value` to a writer that never fails cannot fail.
    serde_json::to_writer(&mut counter, schema).map_or(usize::MAX, |()| counter.0)
}

/// Longest name [`wit_type_name`] renders, in bytes, before it cuts the name short with `…`: an anonymous type
/// that nests shared anonymous types (`tuple<a, a>` with `a` = `tuple<b, b>`, …) would otherwise spell out an
/// exponentially long name.
pub const MAX_TYPE_NAME: usize = 256;

/// Renders a type in WIT syntax: `u8`, `list<string>`, `option<user>`, `own<blob>`. Named types render as their
/// name; a rendering longer than [`MAX_TYPE_NAME`] is cut short with `…`.
pub fn wit_type_name(resolve: &Resolve, ty: &Type) -> String {
    let mut name = String::new();
    write_type_name(resolve, ty, &mut name);
    if name.len() > MAX_TYPE_NAME {
        name.truncate(name.floor_char_boundary(MAX_TYPE_NAME));
        name.push('…');
    }
    name
}

/// Appends the WIT rendering of `ty` to `out`, stopping once `out` is longer than [`MAX_TYPE_NAME`].
fn write_type_name(resolve: &Resolve, ty: &Type, out: &mut String) {
    if out.len() > MAX_TYPE_NAME {
        return;
    }
    let id = match ty {
        Type::Bool => return out.push_str("bool"),
        Type::U8 => return out.push_str("u8"),
        Type::U16 => return out.push_str("u16"),
        Type::U32 => return out.push_str("u32"),
        Type::U64 => return out.push_str("u64"),
        Type::S8 => return out.push_str("s8"),
        Type::S16 => return out.push_str("s16"),
        Type::S32 => return out.push_str("s32"),
        Type::S64 => return out.push_str("s64"),
        Type::F32 => return out.push_str("f32"),
        Type::F64 => return out.push_str("f64"),
        Type::Char => return out.push_str("char"),
        Type::String => return out.push_str("string"),
        Type::ErrorContext => return out.push_str("error-context"),
        Type::Id(id) => *id,
    };
    let def = &resolve.types[id];
    if let Some(name) = &def.name {
        return out.push_str(name);
    }
    let generic = |out: &mut String, base: &str, args: &[&Type], len: Option<u32>| {
        out.push_str(base);
        out.push('<');
        for (i, arg) in args.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            write_type_name(resolve, arg, out);
        }
        if let Some(len) = len {
            out.push_str(&format!(", {len}"));
        }
        out.push('>');
    };
    let resource_name = |id: &TypeId| {
        let def = &resolve.types[*id];
        def.name.as_deref().unwrap_or("resource")
    };
    match &def.kind {
        TypeDefKind::Type(inner) => write_type_name(resolve, inner, out),
        TypeDefKind::List(elem) => generic(out, "list", &[elem], None),
        TypeDefKind::FixedLengthList(elem, len) => generic(out, "list", &[elem], Some(*len)),
        TypeDefKind::Option(inner) => generic(out, "option", &[inner], None),
        TypeDefKind::Result(Result_ { ok, err }) => match (ok, err) {
            (Some(ok), Some(err)) => generic(out, "result", &[ok, err], None),
            (None, Some(err)) => {
                out.push_str("result<_, ");
                write_type_name(resolve, err, out);
                out.push('>');
            }
            (Some(ok), None) => generic(out, "result", &[ok], None),
            (None, None) => out.push_str("result"),
        },
        TypeDefKind::Tuple(Tuple { types }) => {
            let types: Vec<&Type> = types.iter().collect();
            generic(out, "tuple", &types, None);
        }
        TypeDefKind::Handle(Handle::Own(resource)) => {
            out.push_str(&format!("own<{}>", resource_name(resource)));
        }
        TypeDefKind::Handle(Handle::Borrow(resource)) => {
            out.push_str(&format!("borrow<{}>", resource_name(resource)));
        }
        TypeDefKind::Future(Some(inner)) => generic(out, "future", &[inner], None),
        TypeDefKind::Future(None) => out.push_str("future"),
        TypeDefKind::Stream(Some(inner)) => generic(out, "stream", &[inner], None),
        TypeDefKind::Stream(None) => out.push_str("stream"),
        TypeDefKind::Map(key, value) => generic(out, "map", &[key, value], None),
        other => out.push_str(other.as_str()),
    }
}

/// Follows type aliases (`type a = b;`) down to the type they name.
pub(crate) fn dealias(resolve: &Resolve, ty: &Type) -> Type {
    let mut ty = *ty;
    while let Type::Id(id) = ty {
        match &resolve.types[id].kind {
            TypeDefKind::Type(inner) => ty = *inner,
            _ => break,
        }
    }
    ty
}

/// Whether `ty` is (an alias of) `option<…>`: such parameters and record fields may be left out.
pub(crate) fn is_option(resolve: &Resolve, ty: &Type) -> bool {
    option_inner(resolve, ty).is_some()
}

/// The payload type of `ty` if it is (an alias of) `option<…>`.
pub(crate) fn option_inner(resolve: &Resolve, ty: &Type) -> Option<Type> {
    match dealias(resolve, ty) {
        Type::Id(id) => match &resolve.types[id].kind {
            TypeDefKind::Option(inner) => Some(*inner),
            _ => None,
        },
        _ => None,
    }
}

/// Whether `ty` is (an alias of) `u8`, which makes `list<ty>` a byte string.
pub(crate) fn is_byte(resolve: &Resolve, ty: &Type) -> bool {
    dealias(resolve, ty) == Type::U8
}

/// The reason why `ty` (which must be one of the types without JSON form) is unsupported.
pub(crate) fn unsupported(resolve: &Resolve, ty: &Type, nested: bool) -> UnsupportedType {
    const RESOURCES: &str = "resources cannot be passed as JSON";
    const ASYNC: &str =
        "futures and streams need the async component model, which tools do not support";
    let (what, why) = match ty {
        Type::ErrorContext => (
            "an error-context",
            "error contexts cannot be passed as JSON",
        ),
        Type::Id(id) => match &resolve.types[*id].kind {
            TypeDefKind::Handle(Handle::Own(_)) => ("a resource handle", RESOURCES),
            TypeDefKind::Handle(Handle::Borrow(_)) => ("a borrowed resource handle", RESOURCES),
            TypeDefKind::Resource => ("a resource", RESOURCES),
            TypeDefKind::Future(_) => ("a future", ASYNC),
            TypeDefKind::Stream(_) => ("a stream", ASYNC),
            TypeDefKind::Map(..) => ("a map", "maps are not supported yet"),
            _ => ("an unresolved type", "its definition is missing"),
        },
        _ => ("an unresolved type", "its definition is missing"),
    };
    UnsupportedType {
        wit_type: wit_type_name(resolve, ty),
        what,
        why,
        nested,
    }
}

/// Largest anonymous type (`tuple<…>`, `list<…>`, `option<…>`, `result<…>`), in nodes of its WIT definition with
/// named types counted as one, that is written out at every use: a larger one used more than once goes under
/// `$defs`.
pub const INLINE_LIMIT: u64 = 32;

/// Decides which of the types reachable from `roots` are written once under `$defs` (see the
/// [module docs](self)), and under which key: `iface.name` for a type of an interface, `name` for one of a world,
/// the kind (`tuple`) for an anonymous one, with `-2`, `-3`, … added to keep keys unique.
///
/// Linear in the number of reachable types and the references between them: each type is visited once.
fn plan_defs(resolve: &Resolve, roots: &[Type]) -> HashMap<TypeId, String> {
    // Every reachable type after all the types that contain it.
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    for root in roots {
        post_order(resolve, *root, &mut seen, &mut order);
    }
    order.reverse();

    // Size of each type written out in full, children first; named types count as one (they may be refs).
    let mut size: HashMap<TypeId, u64> = HashMap::new();
    for &id in order.iter().rev() {
        let inner: u64 = contained(&resolve.types[id].kind)
            .iter()
            .map(|ty| match ty {
                Type::Id(child) if resolve.types[*child].name.is_none() => size[child],
                _ => 1,
            })
            .fold(0, u64::saturating_add);
        size.insert(id, inner.saturating_add(1));
    }

    // How often each type occurs in the schema, parents first: a type under `$defs` occurs once, whatever the
    // number of its own uses.
    let mut uses: HashMap<TypeId, u64> = HashMap::new();
    for root in roots {
        if let Type::Id(id) = root {
            *uses.entry(*id).or_default() += 1;
        }
    }
    let mut keys = HashMap::new();
    let (mut taken, mut suffixes) = (HashSet::new(), HashMap::new());
    for &id in &order {
        let def = &resolve.types[id];
        let count = uses.get(&id).copied().unwrap_or(0);
        let shared = count > 1 && (def.name.is_some() || size[&id] > INLINE_LIMIT);
        if shared {
            keys.insert(id, def_key(resolve, id, &mut taken, &mut suffixes));
        }
        let occurrences = if shared { 1 } else { count };
        for ty in contained(&def.kind) {
            if let Type::Id(child) = ty {
                let entry = uses.entry(child).or_default();
                *entry = entry.saturating_add(occurrences);
            }
        }
    }
    keys
}

/// Appends the types reachable from `ty` that are not in `seen` to `order`, each after the types it contains.
/// Recursion is as deep as type nesting, which component validation caps (at 100).
fn post_order(resolve: &Resolve, ty: Type, seen: &mut HashSet<TypeId>, order: &mut Vec<TypeId>) {
    let Type::Id(id) = ty else { return };
    if !seen.insert(id) {
        return;
    }
    for child in contained(&resolve.types[id].kind) {
        post_order(resolve, child, seen, order);
    }
    order.push(id);
}

/// The types a type's schema is made of. Types without JSON form contain none: their schema is an error.
fn contained(kind: &TypeDefKind) -> Vec<Type> {
    match kind {
        TypeDefKind::Type(ty)
        | TypeDefKind::Option(ty)
        | TypeDefKind::List(ty)
        | TypeDefKind::FixedLengthList(ty, _) => vec![*ty],
        TypeDefKind::Record(record) => record.fields.iter().map(|f| f.ty).collect(),
        TypeDefKind::Tuple(tuple) => tuple.types.clone(),
        TypeDefKind::Variant(variant) => variant.cases.iter().filter_map(|c| c.ty).collect(),
        TypeDefKind::Result(result) => result.ok.into_iter().chain(result.err).collect(),
        TypeDefKind::Flags(_)
        | TypeDefKind::Enum(_)
        | TypeDefKind::Resource
        | TypeDefKind::Handle(_)
        | TypeDefKind::Future(_)
        | TypeDefKind::Stream(_)
        | TypeDefKind::Map(..)
        | TypeDefKind::Unknown => Vec::new(),
    }
}

/// A `$defs` key for `id` not yet in `taken` (see [`plan_defs`]); `suffixes` holds the last suffix given to each
/// base name.
fn def_key(
    resolve: &Resolve,
    id: TypeId,
    taken: &mut HashSet<String>,
    suffixes: &mut HashMap<String, usize>,
) -> String {
    let def = &resolve.types[id];
    let interface = match def.owner {
        TypeOwner::Interface(interface) => resolve.interfaces[interface].name.as_deref(),
        TypeOwner::World(_) | TypeOwner::None => None,
    };
    let base = match (interface, &def.name) {
        (Some(interface), Some(name)) => format!("{interface}.{name}"),
        (None, Some(name)) => name.clone(),
        (_, None) => def.kind.as_str().to_owned(),
    };
    let suffix = suffixes.entry(base.clone()).or_insert(1);
    let mut key = base.clone();
    while !taken.insert(key.clone()) {
        *suffix += 1;
        key = format!("{base}-{suffix}");
    }
    key
}

/// Builds schemas for one direction: one root schema, and the `$defs` it refers to.
struct SchemaBuilder<'a> {
    resolve: &'a Resolve,
    direction: Direction,
    /// The `$defs` key of each type written once (see [`plan_defs`]).
    keys: HashMap<TypeId, String>,
    /// The `$defs` written so far.
    defs: RefCell<Map<String, Value>>,
}

impl<'a> SchemaBuilder<'a> {
    /// A builder for a schema made of the types `roots` (one, or a function's parameters).
    fn new(resolve: &'a Resolve, direction: Direction, roots: &[Type]) -> Self {
        SchemaBuilder {
            resolve,
            direction,
            keys: plan_defs(resolve, roots),
            defs: RefCell::default(),
        }
    }

    /// `root` with the `$defs` its sub-schemas refer to.
    fn finish(self, mut root: Value) -> Value {
        let defs = self.defs.into_inner();
        if let (false, Value::Object(map)) = (defs.is_empty(), &mut root) {
            map.insert("$defs".into(), defs.into());
        }
        root
    }
    /// The schema of `ty`; `nested` says whether `ty` sits inside the type originally asked about.
    fn schema(&self, ty: &Type, nested: bool) -> Result<Value, UnsupportedType> {
        Ok(match ty {
            Type::Bool => json!({"type": "boolean"}),
            Type::U8 => integer(u8::MIN, u8::MAX),
            Type::U16 => integer(u16::MIN, u16::MAX),
            Type::U32 => integer(u32::MIN, u32::MAX),
            Type::U64 => integer(u64::MIN, u64::MAX),
            Type::S8 => integer(i8::MIN, i8::MAX),
            Type::S16 => integer(i16::MIN, i16::MAX),
            Type::S32 => integer(i32::MIN, i32::MAX),
            Type::S64 => integer(i64::MIN, i64::MAX),
            Type::F32 => float(Some(F32_LIMIT)),
            Type::F64 => float(None),
            Type::Char => json!({"type": "string", "minLength": 1, "maxLength": 1}),
            Type::String => json!({"type": "string"}),
            Type::ErrorContext => return Err(unsupported(self.resolve, ty, nested)),
            Type::Id(id) => return self.reference(*id, nested),
        })
    }

    /// The schema of `id`, or a `$ref` to it when it is written once under `$defs`.
    fn reference(&self, id: TypeId, nested: bool) -> Result<Value, UnsupportedType> {
        let Some(key) = self.keys.get(&id) else {
            return self.typedef(id, nested);
        };
        if !self.defs.borrow().contains_key(key) {
            let schema = self.typedef(id, nested)?;
            self.defs.borrow_mut().insert(key.clone(), schema);
        }
        Ok(json!({"$ref": format!("#/$defs/{key}")}))
    }

    fn typedef(&self, id: TypeId, nested: bool) -> Result<Value, UnsupportedType> {
        let def = &self.resolve.types[id];
        let mut schema = match &def.kind {
            TypeDefKind::Type(inner) => self.schema(inner, nested)?,
            TypeDefKind::Record(record) => self.record(record)?,
            TypeDefKind::Tuple(tuple) => self.tuple(tuple)?,
            TypeDefKind::Flags(flags) => self.flags(flags),
            TypeDefKind::Variant(variant) => self.variant(variant)?,
            TypeDefKind::Enum(enum_) => enum_schema(enum_),
            TypeDefKind::Option(inner) => self.option(inner)?,
            TypeDefKind::Result(result) => self.result(result)?,
            TypeDefKind::List(elem) => self.list(elem)?,
            TypeDefKind::FixedLengthList(elem, len) => json!({
                "type": "array",
                "items": self.schema(elem, true)?,
                "minItems": len,
                "maxItems": len,
            }),
            TypeDefKind::Resource
            | TypeDefKind::Handle(_)
            | TypeDefKind::Future(_)
            | TypeDefKind::Stream(_)
            | TypeDefKind::Map(..)
            | TypeDefKind::Unknown => return Err(unsupported(self.resolve, &Type::Id(id), nested)),
        };
        if let (Some(name), Value::Object(map)) = (&def.name, &mut schema) {
            map.insert("title".into(), name.clone().into());
        }
        add_description(&mut schema, def.docs.contents.as_deref());
        Ok(schema)
    }

    fn record(&self, record: &Record) -> Result<Value, UnsupportedType> {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for field in &record.fields {
            let mut schema = self.schema(&field.ty, true)?;
            add_description(&mut schema, field.docs.contents.as_deref());
            if !is_option(self.resolve, &field.ty) {
                required.push(Value::String(field.name.clone()));
            }
            properties.insert(field.name.clone(), schema);
        }
        Ok(json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        }))
    }

    fn tuple(&self, tuple: &Tuple) -> Result<Value, UnsupportedType> {
        let items = tuple
            .types
            .iter()
            .map(|ty| self.schema(ty, true))
            .collect::<Result<Vec<_>, _>>()?;
        let len = items.len();
        // No `"items": false` beside `prefixItems`: a draft-07 validator (the TypeScript SDK's) reads that as "no
        // items at all". `minItems`/`maxItems` bound the length under every draft.
        let mut schema = json!({"type": "array", "minItems": len, "maxItems": len});
        // `prefixItems` must not be empty, so an (invalid in WIT anyway) empty tuple is just an empty array.
        if let (false, Value::Object(map)) = (items.is_empty(), &mut schema) {
            map.insert("prefixItems".into(), items.into());
        }
        Ok(schema)
    }

    fn flags(&self, flags: &Flags) -> Value {
        let mut properties = Map::new();
        for flag in &flags.flags {
            let mut schema = json!({"type": "boolean"});
            add_description(&mut schema, flag.docs.contents.as_deref());
            properties.insert(flag.name.clone(), schema);
        }
        let object =
            json!({"type": "object", "properties": properties, "additionalProperties": false});
        match self.direction {
            Direction::Output => object,
            Direction::Input => {
                let names: Vec<&str> = flags.flags.iter().map(|f| f.name.as_str()).collect();
                json!({"anyOf": [
                    object,
                    {"type": "array", "items": {"enum": names}, "uniqueItems": true},
                ]})
            }
        }
    }

    fn variant(&self, variant: &Variant) -> Result<Value, UnsupportedType> {
        let cases = variant
            .cases
            .iter()
            .map(|case| self.case(case))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(json!({"oneOf": cases}))
    }

    fn case(&self, case: &Case) -> Result<Value, UnsupportedType> {
        let mut schema = match &case.ty {
            None => json!({"const": case.name}),
            Some(ty) => single_key_object(&case.name, self.schema(ty, true)?),
        };
        add_description(&mut schema, case.docs.contents.as_deref());
        Ok(schema)
    }

    fn option(&self, inner: &Type) -> Result<Value, UnsupportedType> {
        let some = self.schema(inner, true)?;
        let some = if is_option(self.resolve, inner) {
            single_key_object("some", some)
        } else {
            some
        };
        Ok(json!({"anyOf": [some, {"type": "null"}]}))
    }

    fn result(&self, result: &Result_) -> Result<Value, UnsupportedType> {
        let payload = |ty: &Option<Type>| match ty {
            Some(ty) => self.schema(ty, true),
            None => Ok(json!({"type": "null"})),
        };
        Ok(json!({"oneOf": [
            single_key_object("ok", payload(&result.ok)?),
            single_key_object("err", payload(&result.err)?),
        ]}))
    }

    fn list(&self, elem: &Type) -> Result<Value, UnsupportedType> {
        Ok(match (is_byte(self.resolve, elem), self.direction) {
            (true, Direction::Output) => base64_output_schema(),
            (true, Direction::Input) => json!({"anyOf": [
                base64_input_schema(),
                {"type": "array", "items": integer(u8::MIN, u8::MAX)},
            ]}),
            (false, _) => json!({"type": "array", "items": self.schema(elem, true)?}),
        })
    }
}

fn integer(min: impl Into<Value>, max: impl Into<Value>) -> Value {
    json!({"type": "integer", "minimum": min.into(), "maximum": max.into()})
}

/// A float: any number (strictly within `±limit` when given), or one of the strings naming a non-finite value.
fn float(limit: Option<f64>) -> Value {
    let mut number = json!({"type": "number"});
    if let (Some(limit), Value::Object(map)) = (limit, &mut number) {
        map.insert("exclusiveMinimum".into(), json!(-limit));
        map.insert("exclusiveMaximum".into(), json!(limit));
    }
    json!({"anyOf": [number, {"enum": ["NaN", "Infinity", "-Infinity"]}]})
}

fn enum_schema(enum_: &Enum) -> Value {
    let names: Vec<&str> = enum_.cases.iter().map(|c| c.name.as_str()).collect();
    let mut schema = json!({"type": "string", "enum": names});
    let documented: Vec<String> = enum_
        .cases
        .iter()
        .filter_map(|c| Some(format!("- {}: {}", c.name, c.docs.contents.as_deref()?)))
        .collect();
    if !documented.is_empty() {
        add_description(&mut schema, Some(&documented.join("\n")));
    }
    schema
}

/// `{"type": "object"}` with exactly the one property `key`.
fn single_key_object(key: &str, schema: Value) -> Value {
    json!({
        "type": "object",
        "properties": {key: schema},
        "required": [key],
        "additionalProperties": false,
    })
}

/// Puts `docs` in front of the schema's description (outer docs first: a field's docs, then its type's).
fn add_description(schema: &mut Value, docs: Option<&str>) {
    let (Some(docs), Value::Object(map)) = (docs.map(str::trim), schema) else {
        return;
    };
    if docs.is_empty() {
        return;
    }
    let description = match map.get("description").and_then(Value::as_str) {
        Some(existing) => format!("{docs}\n\n{existing}"),
        None => docs.to_owned(),
    };
    map.insert("description".into(), description.into());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::describe::testing;

    #[test]
    fn reads_parameter_list_items() {
        let docs = "Finds matches.\n\n- `pattern`: the regular expression,\n  in Rust syntax.\n- `limit`: at most this many.\nTrailing prose.";
        let parsed = param_docs(docs);
        assert_eq!(parsed["pattern"], "the regular expression, in Rust syntax.");
        assert_eq!(parsed["limit"], "at most this many.");
        assert_eq!(parsed.len(), 2);
    }

    /// Resolves `ty_src` (a WIT type expression) inside a small interface with named types.
    fn schema_of(ty_src: &str, direction: Direction) -> Result<Value, UnsupportedType> {
        let (resolve, ty) = testing::type_in(ty_src);
        type_schema(&resolve, &ty, direction)
    }

    fn input(ty_src: &str) -> Value {
        schema_of(ty_src, Direction::Input).expect("supported type")
    }

    fn output(ty_src: &str) -> Value {
        schema_of(ty_src, Direction::Output).expect("supported type")
    }

    #[test]
    fn primitives() {
        assert_eq!(input("bool"), json!({"type": "boolean"}));
        assert_eq!(
            input("u8"),
            json!({"type": "integer", "minimum": 0, "maximum": 255})
        );
        assert_eq!(
            input("s64"),
            json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX})
        );
        assert_eq!(
            input("u64"),
            json!({"type": "integer", "minimum": 0, "maximum": u64::MAX})
        );
        assert_eq!(
            input("f64"),
            json!({"anyOf": [{"type": "number"}, {"enum": ["NaN", "Infinity", "-Infinity"]}]})
        );
        assert_eq!(
            input("f32")["anyOf"][0]["exclusiveMaximum"],
            json!(F32_LIMIT)
        );
        // Everything below the limit narrows to a finite f32, the limit itself does not.
        assert!((F32_LIMIT as f32).is_infinite());
        let below = f64::from_bits(F32_LIMIT.to_bits() - 1);
        assert_eq!(below as f32, f32::MAX);
        assert_eq!(
            input("char"),
            json!({"type": "string", "minLength": 1, "maxLength": 1})
        );
        assert_eq!(input("string"), json!({"type": "string"}));
    }

    #[test]
    fn lists_and_bytes_differ_by_direction() {
        assert_eq!(
            input("list<string>"),
            json!({"type": "array", "items": {"type": "string"}})
        );
        let bytes_out = output("list<u8>");
        assert_eq!(bytes_out["type"], "string");
        assert_eq!(bytes_out["contentEncoding"], "base64");
        let bytes_in = input("list<u8>");
        assert_eq!(bytes_in["anyOf"][0]["pattern"], bytes_out["pattern"]);
        assert_eq!(bytes_in["anyOf"][1]["items"]["maximum"], 255);
        // An alias of u8 still makes a byte string; the alias name is the title.
        assert_eq!(output("bytes")["contentEncoding"], "base64");
        assert_eq!(output("bytes")["title"], "bytes");
        assert_eq!(
            input("list<u8, 4>"),
            json!({"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 255},
                   "minItems": 4, "maxItems": 4})
        );
    }

    #[test]
    fn records_keep_wit_order_docs_and_optional_fields() {
        let schema = input("user");
        assert_eq!(schema["title"], "user");
        assert_eq!(schema["description"], "A person.");
        assert_eq!(schema["additionalProperties"], false);
        let order: Vec<&String> = schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .collect();
        assert_eq!(order, ["name", "age", "nick"]);
        assert_eq!(schema["required"], json!(["name", "age"]));
        assert_eq!(schema["properties"]["age"]["description"], "Age in years.");
        assert_eq!(
            schema["properties"]["nick"],
            json!({"anyOf": [{"type": "string"}, {"type": "null"}]})
        );
    }

    #[test]
    fn tuples_variants_enums_results() {
        assert_eq!(
            input("tuple<u8, string>"),
            json!({"type": "array", "minItems": 2, "maxItems": 2,
                   "prefixItems": [{"type": "integer", "minimum": 0, "maximum": 255}, {"type": "string"}]})
        );
        let shape = input("shape");
        assert_eq!(shape["title"], "shape");
        assert_eq!(
            shape["oneOf"][0]["properties"]["circle"]["anyOf"][0]["type"],
            "number"
        );
        assert_eq!(shape["oneOf"][0]["required"], json!(["circle"]));
        assert_eq!(shape["oneOf"][0]["description"], "A circle of this radius.");
        assert_eq!(shape["oneOf"][2], json!({"const": "dot"}));
        let color = input("color");
        assert_eq!(color["enum"], json!(["red", "green", "blue"]));
        assert_eq!(color["description"], "A color.\n\n- red: Warm.");
        assert_eq!(
            input("result<u8, string>"),
            json!({"oneOf": [
                {"type": "object", "properties": {"ok": {"type": "integer", "minimum": 0, "maximum": 255}},
                 "required": ["ok"], "additionalProperties": false},
                {"type": "object", "properties": {"err": {"type": "string"}},
                 "required": ["err"], "additionalProperties": false},
            ]})
        );
        assert_eq!(
            input("result")["oneOf"][0]["properties"]["ok"],
            json!({"type": "null"})
        );
    }

    #[test]
    fn options_nest_with_some_wrapper() {
        assert_eq!(input("option<u8>")["anyOf"][1], json!({"type": "null"}));
        let nested = input("option<option<string>>");
        assert_eq!(
            nested["anyOf"][0],
            json!({"type": "object", "properties": {"some": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
                   "required": ["some"], "additionalProperties": false})
        );
    }

    #[test]
    fn flags_accept_names_on_input_only() {
        let out = output("perms");
        assert_eq!(out["type"], "object");
        assert!(out.get("required").is_none());
        assert_eq!(out["properties"]["read"]["description"], "May read.");
        let input = input("perms");
        assert_eq!(input["anyOf"][0]["properties"], out["properties"]);
        assert_eq!(
            input["anyOf"][1]["items"]["enum"],
            json!(["read", "write", "exec"])
        );
    }

    #[test]
    fn unsupported_types_say_why() {
        let err = schema_of("own<blob>", Direction::Input).expect_err("resource");
        assert_eq!(
            err.to_string(),
            "is a resource handle (own<blob>); resources cannot be passed as JSON"
        );
        let err = schema_of("list<borrow<blob>>", Direction::Input).expect_err("borrow");
        assert_eq!(
            err.to_string(),
            "contains a borrowed resource handle (borrow<blob>); resources cannot be passed as JSON"
        );
        for (src, what) in [
            ("future<u8>", "a future"),
            ("stream<u8>", "a stream"),
            ("error-context", "an error-context"),
            ("option<future>", "a future"),
        ] {
            let err = schema_of(src, Direction::Output).expect_err(src);
            assert_eq!(err.what, what, "{src}");
        }
    }

    #[test]
    fn types_used_more_than_once_are_written_once_under_defs() {
        let desc = testing::describe(
            "package test:deep;
             interface shapes {
                 record point { x: s32, y: s32 }
                 record line { start: point, end: point }
                 type pair = tuple<line, line>;
                 draw: func(p: pair, q: option<point>) -> line;
             }
             world w { export shapes; }",
        );
        let f = desc.find("draw").expect("found");
        let args = input_schema(&desc, f);
        // `pair` occurs once: written in place; `line` twice and `point` three times: under `$defs`.
        let pair = &args["properties"]["p"];
        assert_eq!(pair["title"], "pair");
        assert_eq!(
            pair["prefixItems"],
            json!([{"$ref": "#/$defs/shapes.line"}, {"$ref": "#/$defs/shapes.line"}])
        );
        assert_eq!(
            args["properties"]["q"]["anyOf"][0],
            json!({"$ref": "#/$defs/shapes.point"})
        );
        let defs: Vec<&String> = args["$defs"].as_object().expect("$defs").keys().collect();
        assert_eq!(defs, ["shapes.point", "shapes.line"]);
        assert_eq!(args["$defs"]["shapes.point"]["title"], "point");
        assert_eq!(
            args["$defs"]["shapes.line"]["properties"]["start"],
            json!({"$ref": "#/$defs/shapes.point"})
        );
        // The result's `line` occurs once: in place, with its two `point`s under the result schema's own `$defs`.
        let output = output_schema(&desc, f).expect("a result");
        assert_eq!(output["title"], "line");
        assert_eq!(
            output["properties"]["end"],
            json!({"$ref": "#/$defs/shapes.point"})
        );
        assert_eq!(output["$defs"].as_object().map(Map::len), Some(1));
        // A schema without shared types has no `$defs`.
        assert!(input("user").get("$defs").is_none());
    }

    #[test]
    fn nest_moves_defs_to_the_root() {
        let (resolve, ty) = testing::type_in("tuple<user, user>");
        let inner = type_schema(&resolve, &ty, Direction::Output).expect("supported");
        assert!(inner["$defs"].get("probe.user").is_some(), "{inner}");
        let nested = nest(inner, |inner| json!({"properties": {"result": inner}}));
        assert!(nested["properties"]["result"].get("$defs").is_none());
        assert!(nested["$defs"].get("probe.user").is_some(), "{nested}");
    }

    /// `type t0 = tuple<u8, u8>; type t1 = tuple<t0, t0>; …`: written out in full, `t63` would have 2⁶⁴ nodes.
    #[test]
    fn deeply_shared_named_types_stay_linear() {
        let mut wit = String::from("package test:deep; interface deep { type t0 = tuple<u8, u8>;");
        for i in 1..64 {
            wit.push_str(&format!(" type t{i} = tuple<t{p}, t{p}>;", p = i - 1));
        }
        wit.push_str(" }");
        let mut resolve = Resolve::default();
        let package = resolve.push_str("deep.wit", &wit).expect("parses");
        let interface = resolve.packages[package].interfaces["deep"];
        let top = Type::Id(resolve.interfaces[interface].types["t63"]);
        let schema = type_schema(&resolve, &top, Direction::Input).expect("supported");
        assert_eq!(schema["$defs"].as_object().map(Map::len), Some(63));
        assert!(json_size(&schema) < 16 * 1024, "{}", json_size(&schema));
        assert_eq!(wit_type_name(&resolve, &top), "t63");
    }

    /// Only a hand-made binary shares anonymous types like this (WIT text names them): large ones go under
    /// `$defs` too, and their names are cut short.
    #[test]
    fn deeply_shared_anonymous_types_stay_linear() {
        let mut resolve = Resolve::default();
        let mut ty = Type::U8;
        for _ in 0..64 {
            let id = resolve.types.alloc(wit_parser::TypeDef {
                name: None,
                kind: TypeDefKind::Tuple(Tuple {
                    types: vec![ty, ty],
                }),
                owner: TypeOwner::None,
                docs: Default::default(),
                stability: Default::default(),
                span: Default::default(),
                external_id: None,
            });
            ty = Type::Id(id);
        }
        let schema = type_schema(&resolve, &ty, Direction::Output).expect("supported");
        let defs = schema["$defs"].as_object().expect("$defs");
        // The 60 tuples larger than `INLINE_LIMIT` nodes, but the outermost, which occurs once.
        assert_eq!(defs.len(), 59);
        assert!(defs.contains_key("tuple") && defs.contains_key("tuple-59"));
        assert!(json_size(&schema) < 256 * 1024, "{}", json_size(&schema));
        let name = wit_type_name(&resolve, &ty);
        assert!(
            name.starts_with("tuple<tuple<") && name.ends_with('…'),
            "{name}"
        );
        assert_eq!(name.len(), MAX_TYPE_NAME + '…'.len_utf8());
    }

    #[test]
    fn wit_type_names() {
        for src in [
            "list<string>",
            "option<user>",
            "result<u8, string>",
            "result<_, string>",
            "result<u8>",
            "result",
            "tuple<u8, char>",
            "own<blob>",
            "borrow<blob>",
            "future<u8>",
            "stream",
            "list<u8, 4>",
        ] {
            let (resolve, ty) = testing::type_in(src);
            assert_eq!(wit_type_name(&resolve, &ty), src);
        }
    }
}

//! JSON ⇄ component values ([`wasmtime::component::Val`]), driven by the WIT types of a [`Resolve`].
//!
//! The JSON forms follow the conventions listed in [`crate::schema`]; a value accepted here is valid against the
//! input schema, and a value produced here is valid against the output schema.
//!
//! Errors name where the problem is and what was expected, e.g. `args.user.age: expected u8, got -1`. Integers are read exactly from the number's text (serde_json's `arbitrary_precision`): a number out of
//! range or with a fractional part is refused, never rounded or clamped; a whole number written with a fraction or
//! an exponent (`3.0`, `1e3`) is that integer, as JSON Schema's `integer` has it. Object keys may spell a WIT name's
//! `-` as `_` (`first_name` for `first-name`).
//!
//! Both directions can run within a budget of host bytes ([`args_to_vals_within`], [`result_to_json_within`]), so
//! that a small input cannot make the host build a huge tree of values.

use std::cell::Cell;
use std::fmt;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use serde_json::{Map, Number, Value};
use wasmtime::component::Val;
use wit_parser::{Case, Enum, Flags, Record, Resolve, Result_, Type, TypeDefKind, TypeId, Variant};

use crate::describe::{ComponentDescription, ExportedFunction};
use crate::schema::{is_byte, is_option, option_inner, unsupported, wit_type_name};

/// Base64 decoding for `list<u8>` inputs: standard alphabet, padding optional.
const BASE64_INPUT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A JSON value that does not fit its WIT type (or a component value that does not fit its type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError {
    path: String,
    message: String,
    over_budget: bool,
}

impl ValueError {
    fn new(path: &Path<'_>, message: impl Into<String>) -> Self {
        ValueError {
            path: path.to_string(),
            message: message.into(),
            over_budget: false,
        }
    }

    /// Whether the conversion stopped because it would have built more than its budget of host bytes (the value
    /// itself may be fine).
    pub fn is_over_budget(&self) -> bool {
        self.over_budget
    }

    /// Where the problem is, e.g. `args.items[2]`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong, e.g. `expected string, got number 3`.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for ValueError {}

/// Converts `json` to a value of type `ty`; `path` names `json` in error messages (e.g. `args.user`).
pub fn json_to_val(
    resolve: &Resolve,
    ty: &Type,
    json: &Value,
    path: &str,
) -> Result<Val, ValueError> {
    FromJson {
        resolve,
        budget: Budget::unlimited(),
    }
    .convert(ty, json, &Path::Root(path))
}

/// What one component value costs the host, in bytes: wasmtime charges `size_of::<Val>()` for each value, list
/// item and payload it lifts (plus the bytes of strings and names), and the budgets here count the same way.
pub const VAL_BYTES: usize = size_of::<Val>();

/// What one JSON value costs the host, in bytes (plus the bytes of its strings and keys).
const JSON_VALUE_BYTES: usize = size_of::<Value>();

/// Converts a tool call's arguments to the function's parameters.
///
/// `args` is an object keyed by parameter name, or an array of arguments by position. Parameters of type
/// `option<…>` may be left out (they become none); `null` stands for no arguments at all.
pub fn args_to_vals(
    desc: &ComponentDescription,
    f: &ExportedFunction,
    args: &Value,
) -> Result<Vec<Val>, ValueError> {
    args_to_vals_within(desc, f, args, usize::MAX)
}

/// [`args_to_vals`] building at most `budget` host bytes of component values (counted as [`VAL_BYTES`] per value
/// plus the bytes of strings); past that it stops with an error for which [`ValueError::is_over_budget`] holds.
pub fn args_to_vals_within(
    desc: &ComponentDescription,
    f: &ExportedFunction,
    args: &Value,
    budget: usize,
) -> Result<Vec<Val>, ValueError> {
    let convert = FromJson {
        resolve: desc.resolve(),
        budget: Budget::new(budget, "the arguments take"),
    };
    let root = Path::Root("args");
    let names: Vec<&str> = f.params.iter().map(|(name, _)| name.as_str()).collect();
    let mut given: Vec<Option<&Value>> = vec![None; f.params.len()];
    match args {
        Value::Null => {}
        Value::Object(map) => {
            for (key, value) in map {
                let Some(index) = match_name(&names, key) else {
                    let message = if names.is_empty() {
                        format!("unknown parameter {key:?}; the function takes no parameters")
                    } else {
                        format!(
                            "unknown parameter {key:?}; expected one of: {}",
                            names.join(", ")
                        )
                    };
                    return Err(ValueError::new(&root, message));
                };
                if given[index].replace(value).is_some() {
                    let message = format!("parameter {:?} is given twice", names[index]);
                    return Err(ValueError::new(&root, message));
                }
            }
        }
        Value::Array(items) => {
            if items.len() > names.len() {
                let message = format!(
                    "expected at most {} arguments, got {}",
                    names.len(),
                    items.len()
                );
                return Err(ValueError::new(&root, message));
            }
            for (slot, item) in given.iter_mut().zip(items) {
                *slot = Some(item);
            }
        }
        other => {
            let message = format!(
                "expected an object of named arguments or an array of arguments, got {}",
                describe_json(other)
            );
            return Err(ValueError::new(&root, message));
        }
    }
    f.params
        .iter()
        .zip(given)
        .map(|((name, ty), value)| match value {
            Some(value) => convert.convert(ty, value, &Path::Key(&root, name)),
            None if is_option(desc.resolve(), ty) => Ok(Val::Option(None)),
            None => Err(ValueError::new(
                &root,
                format!("missing required parameter {name:?}"),
            )),
        })
        .collect()
}

/// Converts a value of type `ty` to JSON. Fails only when `val` does not have type `ty`, or `ty` has no JSON form.
pub fn val_to_json(resolve: &Resolve, ty: &Type, val: &Val) -> Result<Value, ValueError> {
    ToJson {
        resolve,
        budget: Budget::unlimited(),
    }
    .convert(ty, val, &Path::Root("result"))
}

/// Converts what a call of `f` returned to JSON: `None` for a function without result.
pub fn result_to_json(
    desc: &ComponentDescription,
    f: &ExportedFunction,
    results: &[Val],
) -> Result<Option<Value>, ValueError> {
    result_to_json_within(desc, f, results, usize::MAX)
}

/// [`result_to_json`] building at most `budget` host bytes of JSON values (counted as the size of a
/// [`serde_json::Value`] per value plus the bytes of strings and keys); past that it stops with an error for which
/// [`ValueError::is_over_budget`] holds.
pub fn result_to_json_within(
    desc: &ComponentDescription,
    f: &ExportedFunction,
    results: &[Val],
    budget: usize,
) -> Result<Option<Value>, ValueError> {
    let convert = ToJson {
        resolve: desc.resolve(),
        budget: Budget::new(budget, "the result takes"),
    };
    match (&f.result, results) {
        (None, []) => Ok(None),
        (Some(ty), [val]) => convert.convert(ty, val, &Path::Root("result")).map(Some),
        (ty, _) => Err(ValueError::new(
            &Path::Root("result"),
            format!(
                "expected {} result value(s), got {}",
                usize::from(ty.is_some()),
                results.len()
            ),
        )),
    }
}

/// A location inside a JSON value, rendered only when an error needs it.
enum Path<'a> {
    Root(&'a str),
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root(root) => f.write_str(root),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// Host bytes a conversion may still build.
struct Budget {
    left: Cell<usize>,
    limit: usize,
    /// What is being converted, for the error: `the arguments take`, `the result takes`.
    what: &'static str,
}

impl Budget {
    fn new(limit: usize, what: &'static str) -> Budget {
        Budget {
            left: Cell::new(limit),
            limit,
            what,
        }
    }

    fn unlimited() -> Budget {
        Budget::new(usize::MAX, "the value takes")
    }

    /// Takes `bytes` from the budget, or fails at `path` when they are not left.
    fn charge(&self, bytes: usize, path: &Path<'_>) -> Result<(), ValueError> {
        match self.left.get().checked_sub(bytes) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => {
                let message = format!(
                    "{} more than {} of host memory to convert (about {VAL_BYTES} bytes per value, list \
                     item or byte, plus the text of strings); the limit is max_output (limits.max_output)",
                    self.what,
                    are_policy::common::fmt_bytes(self.limit as u64),
                );
                Err(ValueError {
                    over_budget: true,
                    ..ValueError::new(path, message)
                })
            }
        }
    }
}

/// Finds `key` among `names`, exactly or with `_` standing for `-`.
fn match_name(names: &[&str], key: &str) -> Option<usize> {
    names.iter().position(|name| *name == key).or_else(|| {
        if !key.contains('_') {
            return None;
        }
        let kebab = key.replace('_', "-");
        names.iter().position(|name| *name == kebab)
    })
}

/// How a JSON value appears in error messages: `number 3`, `string "abc"`, `array of 2 items`.
fn describe_json(json: &Value) -> String {
    const MAX_CHARS: usize = 40;
    match json {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) if s.chars().count() > MAX_CHARS => {
            let head: String = s.chars().take(MAX_CHARS).collect();
            format!("string {head:?}…")
        }
        Value::String(s) => format!("string {s:?}"),
        Value::Array(items) => match items.len() {
            0 => "empty array".into(),
            1 => "array of 1 item".into(),
            n => format!("array of {n} items"),
        },
        Value::Object(map) => match map.len() {
            0 => "empty object".into(),
            1 => "object with 1 key".into(),
            n => format!("object with {n} keys"),
        },
    }
}

/// The name of a type in "expected …" messages: `u8`, `list<string>`, `record user`, `variant shape`.
fn expected_name(resolve: &Resolve, ty: &Type) -> String {
    if let Type::Id(id) = ty {
        let def = &resolve.types[*id];
        if let Some(name) = &def.name {
            let kind = match def.kind {
                TypeDefKind::Record(_) => "record ",
                TypeDefKind::Variant(_) => "variant ",
                TypeDefKind::Enum(_) => "enum ",
                TypeDefKind::Flags(_) => "flags ",
                _ => "",
            };
            return format!("{kind}{name}");
        }
    }
    wit_type_name(resolve, ty)
}

fn one_of(names: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let names: Vec<String> = names.into_iter().map(|n| n.as_ref().to_owned()).collect();
    format!("expected one of: {}", names.join(", "))
}

/// Error for a type without JSON form.
fn unsupported_error(resolve: &Resolve, ty: &Type, path: &Path<'_>) -> ValueError {
    let reason = unsupported(resolve, ty, false);
    ValueError::new(
        path,
        format!("{} is {}; {}", reason.wit_type, reason.what, reason.why),
    )
}

/// The only key of a one-key object.
fn single_entry(map: &Map<String, Value>) -> Option<(&String, &Value)> {
    let mut entries = map.iter();
    match (entries.next(), entries.next()) {
        (Some(entry), None) => Some(entry),
        _ => None,
    }
}

/// JSON → [`Val`].
struct FromJson<'a> {
    resolve: &'a Resolve,
    budget: Budget,
}

impl FromJson<'_> {
    fn mismatch(&self, ty: &Type, json: &Value, path: &Path<'_>) -> ValueError {
        let expected = expected_name(self.resolve, ty);
        ValueError::new(
            path,
            format!("expected {expected}, got {}", describe_json(json)),
        )
    }

    fn convert(&self, ty: &Type, json: &Value, path: &Path<'_>) -> Result<Val, ValueError> {
        if !is_alias(self.resolve, ty) {
            self.budget.charge(VAL_BYTES, path)?;
        }
        Ok(match ty {
            Type::Bool => match json {
                Value::Bool(b) => Val::Bool(*b),
                _ => return Err(self.mismatch(ty, json, path)),
            },
            Type::U8 => Val::U8(self.integer(ty, json, path)?),
            Type::U16 => Val::U16(self.integer(ty, json, path)?),
            Type::U32 => Val::U32(self.integer(ty, json, path)?),
            Type::U64 => Val::U64(self.integer(ty, json, path)?),
            Type::S8 => Val::S8(self.integer(ty, json, path)?),
            Type::S16 => Val::S16(self.integer(ty, json, path)?),
            Type::S32 => Val::S32(self.integer(ty, json, path)?),
            Type::S64 => Val::S64(self.integer(ty, json, path)?),
            Type::F32 => {
                let value = self.float(ty, json, path)?;
                // Narrowing loses precision by design, but a finite value must stay finite.
                let narrow = value as f32;
                if value.is_finite() && !narrow.is_finite() {
                    return Err(ValueError::new(path, format!("expected f32, got {json}")));
                }
                Val::Float32(narrow)
            }
            Type::F64 => Val::Float64(self.float(ty, json, path)?),
            Type::Char => match json {
                Value::String(s) => {
                    let mut chars = s.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c), None) => Val::Char(c),
                        _ => {
                            return Err(ValueError::new(
                                path,
                                format!(
                                    "expected char (exactly one character), got {}",
                                    describe_json(json)
                                ),
                            ));
                        }
                    }
                }
                _ => return Err(self.mismatch(ty, json, path)),
            },
            Type::String => match json {
                Value::String(s) => {
                    self.budget.charge(s.len(), path)?;
                    Val::String(s.clone())
                }
                _ => return Err(self.mismatch(ty, json, path)),
            },
            Type::ErrorContext => return Err(unsupported_error(self.resolve, ty, path)),
            Type::Id(id) => return self.typedef(*id, json, path),
        })
    }

    /// An integer of type `T`: a JSON number whose exact value is whole and within `T`'s range. The number's text
    /// is read exactly, so `-9223372036854775809` is out of range for `s64` rather than rounded into it.
    fn integer<T: TryFrom<i128>>(
        &self,
        ty: &Type,
        json: &Value,
        path: &Path<'_>,
    ) -> Result<T, ValueError> {
        let Value::Number(number) = json else {
            return Err(self.mismatch(ty, json, path));
        };
        let text = number.to_string();
        whole_number(&text)
            .and_then(|whole| T::try_from(whole).ok())
            .ok_or_else(|| {
                let expected = wit_type_name(self.resolve, ty);
                ValueError::new(path, format!("expected {expected}, got {text}"))
            })
    }

    fn float(&self, ty: &Type, json: &Value, path: &Path<'_>) -> Result<f64, ValueError> {
        match json {
            Value::Number(n) => n.as_f64().ok_or_else(|| self.mismatch(ty, json, path)),
            Value::String(s) if s == "NaN" => Ok(f64::NAN),
            Value::String(s) if s == "Infinity" => Ok(f64::INFINITY),
            Value::String(s) if s == "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => Err(self.mismatch(ty, json, path)),
        }
    }

    fn typedef(&self, id: TypeId, json: &Value, path: &Path<'_>) -> Result<Val, ValueError> {
        let ty = Type::Id(id);
        match &self.resolve.types[id].kind {
            TypeDefKind::Type(inner) => self.convert(inner, json, path),
            TypeDefKind::Record(record) => self.record(&ty, record, json, path),
            TypeDefKind::Tuple(tuple) => {
                let items = self.array(&ty, json, path, Some(tuple.types.len()))?;
                let vals = tuple
                    .types
                    .iter()
                    .zip(items)
                    .enumerate()
                    .map(|(i, (ty, item))| self.convert(ty, item, &Path::Index(path, i)))
                    .collect::<Result<_, _>>()?;
                Ok(Val::Tuple(vals))
            }
            TypeDefKind::Flags(flags) => self.flags(&ty, flags, json, path),
            TypeDefKind::Variant(variant) => self.variant(&ty, variant, json, path),
            TypeDefKind::Enum(enum_) => self.enum_(&ty, enum_, json, path),
            TypeDefKind::Option(inner) => self.option(&ty, inner, json, path),
            TypeDefKind::Result(result) => self.result(&ty, result, json, path),
            TypeDefKind::List(elem) => self.list(&ty, elem, json, path),
            TypeDefKind::FixedLengthList(elem, len) => {
                let len = usize::try_from(*len).unwrap_or(usize::MAX);
                let items = self.array(&ty, json, path, Some(len))?;
                Ok(Val::FixedLengthList(self.elements(elem, items, path)?))
            }
            TypeDefKind::Resource
            | TypeDefKind::Handle(_)
            | TypeDefKind::Future(_)
            | TypeDefKind::Stream(_)
            | TypeDefKind::Map(..)
            | TypeDefKind::Unknown => Err(unsupported_error(self.resolve, &ty, path)),
        }
    }

    /// The items of a JSON array, of exactly `len` items when given.
    fn array<'j>(
        &self,
        ty: &Type,
        json: &'j Value,
        path: &Path<'_>,
        len: Option<usize>,
    ) -> Result<&'j [Value], ValueError> {
        let Value::Array(items) = json else {
            return Err(self.mismatch(ty, json, path));
        };
        match len {
            Some(len) if items.len() != len => {
                let expected = expected_name(self.resolve, ty);
                Err(ValueError::new(
                    path,
                    format!(
                        "expected {expected} (an array of exactly {len} items), got {}",
                        describe_json(json)
                    ),
                ))
            }
            _ => Ok(items),
        }
    }

    fn elements(
        &self,
        elem: &Type,
        items: &[Value],
        path: &Path<'_>,
    ) -> Result<Vec<Val>, ValueError> {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| self.convert(elem, item, &Path::Index(path, i)))
            .collect()
    }

    fn list(
        &self,
        ty: &Type,
        elem: &Type,
        json: &Value,
        path: &Path<'_>,
    ) -> Result<Val, ValueError> {
        if let (Value::String(text), true) = (json, is_byte(self.resolve, elem)) {
            let bytes = BASE64_INPUT.decode(text).map_err(|err| {
                ValueError::new(
                    path,
                    format!(
                        "expected base64 for {}, got {err}",
                        expected_name(self.resolve, ty)
                    ),
                )
            })?;
            self.budget
                .charge(bytes.len().saturating_mul(VAL_BYTES), path)?;
            return Ok(Val::List(bytes.into_iter().map(Val::U8).collect()));
        }
        let items = self.array(ty, json, path, None)?;
        Ok(Val::List(self.elements(elem, items, path)?))
    }

    fn record(
        &self,
        ty: &Type,
        record: &Record,
        json: &Value,
        path: &Path<'_>,
    ) -> Result<Val, ValueError> {
        let Value::Object(map) = json else {
            return Err(self.mismatch(ty, json, path));
        };
        let names: Vec<&str> = record.fields.iter().map(|f| f.name.as_str()).collect();
        let mut given: Vec<Option<&Value>> = vec![None; names.len()];
        for (key, value) in map {
            let Some(index) = match_name(&names, key) else {
                let message = format!("unknown field {key:?}; {}", one_of(&names));
                return Err(ValueError::new(path, message));
            };
            if given[index].replace(value).is_some() {
                let message = format!("field {:?} is given twice", names[index]);
                return Err(ValueError::new(path, message));
            }
        }
        let fields = record
            .fields
            .iter()
            .zip(given)
            .map(|(field, value)| {
                let val = match value {
                    Some(value) => self.convert(&field.ty, value, &Path::Key(path, &field.name))?,
                    None if is_option(self.resolve, &field.ty) => Val::Option(None),
                    None => {
                        let message = format!("missing required field {:?}", field.name);
                        return Err(ValueError::new(path, message));
                    }
                };
                self.budget.charge(field.name.len(), path)?;
                Ok((field.name.clone(), val))
            })
            .collect::<Result<_, _>>()?;
        Ok(Val::Record(fields))
    }

    fn flags(
        &self,
        ty: &Type,
        flags: &Flags,
        json: &Value,
        path: &Path<'_>,
    ) -> Result<Val, ValueError> {
        let names: Vec<&str> = flags.flags.iter().map(|f| f.name.as_str()).collect();
        let mut set = vec![false; names.len()];
        let find = |name: &str| {
            match_name(&names, name).ok_or_else(|| {
                ValueError::new(path, format!("unknown flag {name:?}; {}", one_of(&names)))
            })
        };
        match json {
            Value::Object(map) => {
                for (key, value) in map {
                    let index = find(key)?;
                    match value {
                        Value::Bool(on) => set[index] = *on,
                        other => {
                            return Err(self.mismatch(&Type::Bool, other, &Path::Key(path, key)));
                        }
                    }
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(name) => set[find(name)?] = true,
                        other => {
                            let message =
                                format!("expected a flag name, got {}", describe_json(other));
                            return Err(ValueError::new(&Path::Index(path, i), message));
                        }
                    }
                }
            }
            _ => return Err(self.mismatch(ty, json, path)),
        }
        let on: Vec<&str> = names
            .iter()
            .zip(set)
            .filter(|(_, on)| *on)
            .map(|(name, _)| *name)
            .collect();
        self.budget
            .charge(on.iter().map(|name| name.len()).sum(), path)?;
        Ok(Val::Flags(on.into_iter().map(str::to_owned).collect()))
    }

    fn variant(
        &self,
        ty: &Type,
        variant: &Variant,
        json: &Value,
        path: &Path<'_>,
    ) -> Result<Val, ValueError> {
        let names: Vec<&str> = variant.cases.iter().map(|c| c.name.as_str()).collect();
        let find = |name: &str| -> Result<&Case, ValueError> {
            match_name(&names, name)
                .map(|index| &variant.cases[index])
                .ok_or_else(|| {
                    let message = format!("unknown variant case {name:?}; {}", one_of(&names));
                    ValueError::new(path, message)
                })
        };
        match json {
            Value::String(name) => {
                let case = find(name)?;
                if case.ty.is_some() {
                    let message = format!(
                        "variant case {:?} needs a payload: {{{:?}: …}}",
                        case.name, case.name
                    );
                    return Err(ValueError::new(path, message));
                }
                self.budget.charge(case.name.len(), path)?;
                Ok(Val::Variant(case.name.clone(), None))
            }
            Value::Object(map) => {
                let Some((key, payload)) = single_entry(map) else {
                    let message = format!(
                        "expected {} (a case name, or an object with exactly one case key), got {}",
                        expected_name(self.resolve, ty),
                        describe_json(json)
                    );
                    return Err(ValueError::new(path, message));
                };
                let case = find(key)?;
                let Some(payload_ty) = &case.ty else {
                    let message = format!(
                        "variant case {:?} has no payload; pass the string {:?}",
                        case.name, case.name
                    );
                    return Err(ValueError::new(path, message));
                };
                self.budget.charge(case.name.len(), path)?;
                let payload = self.convert(payload_ty, payload, &Path::Key(path, &case.name))?;
                Ok(Val::Variant(case.name.clone(), Some(Box::new(payload))))
            }
            _ => Err(self.mismatch(ty, json, path)),
        }
    }

    fn enum_(
        &self,
        ty: &Type,
        enum_: &Enum,
        json: &Value,
        path: &Path<'_>,
    ) -> Result<Val, ValueError> {
        let Value::String(name) = json else {
            return Err(self.mismatch(ty, json, path));
        };
        let names: Vec<&str> = enum_.cases.iter().map(|c| c.name.as_str()).collect();
        match match_name(&names, name) {
            Some(index) => {
                self.budget.charge(names[index].len(), path)?;
                Ok(Val::Enum(names[index].to_owned()))
            }
            None => {
                let message = format!("unknown enum case {name:?}; {}", one_of(&names));
                Err(ValueError::new(path, message))
            }
        }
    }

    fn option(
        &self,
        ty: &Type,
        inner: &Type,
        json: &Value,
        path: &Path<'_>,
    ) -> Result<Val, ValueError> {
        if json.is_null() {
            return Ok(Val::Option(None));
        }
        if !is_option(self.resolve, inner) {
            let some = self.convert(inner, json, path)?;
            return Ok(Val::Option(Some(Box::new(some))));
        }
        // A nested option: `some(x)` is `{"some": x}` so that `some(none)` differs from `none`.
        match json.as_object().and_then(single_entry) {
            Some((key, value)) if key == "some" => {
                let some = self.convert(inner, value, &Path::Key(path, "some"))?;
                Ok(Val::Option(Some(Box::new(some))))
            }
            _ => {
                let message = format!(
                    "expected {} (null or {{\"some\": …}}), got {}",
                    expected_name(self.resolve, ty),
                    describe_json(json)
                );
                Err(ValueError::new(path, message))
            }
        }
    }

    fn result(
        &self,
        ty: &Type,
        result: &Result_,
        json: &Value,
        path: &Path<'_>,
    ) -> Result<Val, ValueError> {
        let entry = json.as_object().and_then(single_entry);
        let (key, payload_ty, payload) = match entry {
            Some((key, payload)) if key == "ok" => ("ok", &result.ok, payload),
            Some((key, payload)) if key == "err" => ("err", &result.err, payload),
            _ => {
                let message = format!(
                    "expected {} ({{\"ok\": …}} or {{\"err\": …}}), got {}",
                    expected_name(self.resolve, ty),
                    describe_json(json)
                );
                return Err(ValueError::new(path, message));
            }
        };
        let inner_path = Path::Key(path, key);
        let payload = match (payload_ty, payload) {
            (Some(ty), payload) => Some(Box::new(self.convert(ty, payload, &inner_path)?)),
            (None, Value::Null) => None,
            (None, other) => {
                let message = format!("expected null (no payload), got {}", describe_json(other));
                return Err(ValueError::new(&inner_path, message));
            }
        };
        Ok(Val::Result(if key == "ok" {
            Ok(payload)
        } else {
            Err(payload)
        }))
    }
}

/// [`Val`] → JSON.
struct ToJson<'a> {
    resolve: &'a Resolve,
    budget: Budget,
}

impl ToJson<'_> {
    fn mismatch(&self, ty: &Type, val: &Val, path: &Path<'_>) -> ValueError {
        let expected = expected_name(self.resolve, ty);
        ValueError::new(
            path,
            format!("expected {expected}, got {} value", val_kind(val)),
        )
    }

    fn convert(&self, ty: &Type, val: &Val, path: &Path<'_>) -> Result<Value, ValueError> {
        if !is_alias(self.resolve, ty) {
            self.budget.charge(JSON_VALUE_BYTES, path)?;
        }
        Ok(match (ty, val) {
            (Type::Bool, Val::Bool(b)) => Value::Bool(*b),
            (Type::U8, Val::U8(n)) => Value::from(*n),
            (Type::U16, Val::U16(n)) => Value::from(*n),
            (Type::U32, Val::U32(n)) => Value::from(*n),
            (Type::U64, Val::U64(n)) => Value::from(*n),
            (Type::S8, Val::S8(n)) => Value::from(*n),
            (Type::S16, Val::S16(n)) => Value::from(*n),
            (Type::S32, Val::S32(n)) => Value::from(*n),
            (Type::S64, Val::S64(n)) => Value::from(*n),
            // Going through the shortest decimal form keeps 0.1f32 as 0.1 rather than 0.10000000149011612.
            (Type::F32, Val::Float32(x)) => {
                float_json(x.to_string().parse().unwrap_or(f64::from(*x)))
            }
            (Type::F64, Val::Float64(x)) => float_json(*x),
            (Type::Char, Val::Char(c)) => Value::String(c.to_string()),
            (Type::String, Val::String(s)) => {
                self.budget.charge(s.len(), path)?;
                Value::String(s.clone())
            }
            (Type::ErrorContext, _) => return Err(unsupported_error(self.resolve, ty, path)),
            (Type::Id(id), _) => return self.typedef(*id, val, path),
            _ => return Err(self.mismatch(ty, val, path)),
        })
    }

    fn typedef(&self, id: TypeId, val: &Val, path: &Path<'_>) -> Result<Value, ValueError> {
        let ty = Type::Id(id);
        let mismatch = || self.mismatch(&ty, val, path);
        Ok(match (&self.resolve.types[id].kind, val) {
            (TypeDefKind::Type(inner), _) => self.convert(inner, val, path)?,
            (TypeDefKind::Record(record), Val::Record(fields)) => {
                if fields.len() != record.fields.len() {
                    return Err(mismatch());
                }
                let mut map = Map::new();
                for field in &record.fields {
                    let Some((_, value)) = fields.iter().find(|(name, _)| *name == field.name)
                    else {
                        let message = format!("missing field {:?}", field.name);
                        return Err(ValueError::new(path, message));
                    };
                    let json = self.convert(&field.ty, value, &Path::Key(path, &field.name))?;
                    self.budget.charge(field.name.len(), path)?;
                    map.insert(field.name.clone(), json);
                }
                Value::Object(map)
            }
            (TypeDefKind::Tuple(tuple), Val::Tuple(items)) if items.len() == tuple.types.len() => {
                self.elements(tuple.types.iter(), items, path)?
            }
            (TypeDefKind::Flags(flags), Val::Flags(on)) => {
                if let Some(unknown) = on
                    .iter()
                    .find(|n| !flags.flags.iter().any(|f| f.name == **n))
                {
                    let names = flags.flags.iter().map(|f| &f.name);
                    let message = format!("unknown flag {unknown:?}; {}", one_of(names));
                    return Err(ValueError::new(path, message));
                }
                // Every flag becomes a member, set or not: charge them all before building any.
                let members = flags.flags.iter().map(|f| JSON_VALUE_BYTES + f.name.len());
                self.budget.charge(members.sum(), path)?;
                let map = flags
                    .flags
                    .iter()
                    .map(|f| (f.name.clone(), Value::Bool(on.contains(&f.name))))
                    .collect();
                Value::Object(map)
            }
            (TypeDefKind::Variant(variant), Val::Variant(name, payload)) => {
                let Some(case) = variant.cases.iter().find(|c| c.name == *name) else {
                    let names = variant.cases.iter().map(|c| &c.name);
                    let message = format!("unknown variant case {name:?}; {}", one_of(names));
                    return Err(ValueError::new(path, message));
                };
                self.budget.charge(name.len(), path)?;
                match (&case.ty, payload) {
                    (None, None) => Value::String(name.clone()),
                    (Some(ty), Some(payload)) => {
                        let json = self.convert(ty, payload, &Path::Key(path, name))?;
                        Value::Object(Map::from_iter([(name.clone(), json)]))
                    }
                    _ => return Err(mismatch()),
                }
            }
            (TypeDefKind::Enum(enum_), Val::Enum(name)) => {
                if !enum_.cases.iter().any(|c| c.name == *name) {
                    let names = enum_.cases.iter().map(|c| &c.name);
                    let message = format!("unknown enum case {name:?}; {}", one_of(names));
                    return Err(ValueError::new(path, message));
                }
                self.budget.charge(name.len(), path)?;
                Value::String(name.clone())
            }
            (TypeDefKind::Option(_), Val::Option(None)) => Value::Null,
            (TypeDefKind::Option(inner), Val::Option(Some(some))) => {
                if option_inner(self.resolve, inner).is_some() {
                    let json = self.convert(inner, some, &Path::Key(path, "some"))?;
                    Value::Object(Map::from_iter([("some".to_owned(), json)]))
                } else {
                    self.convert(inner, some, path)?
                }
            }
            (TypeDefKind::Result(result), Val::Result(outcome)) => {
                let (key, ty, payload) = match outcome {
                    Ok(payload) => ("ok", &result.ok, payload),
                    Err(payload) => ("err", &result.err, payload),
                };
                let json = match (ty, payload) {
                    (None, None) => Value::Null,
                    (Some(ty), Some(payload)) => {
                        self.convert(ty, payload, &Path::Key(path, key))?
                    }
                    _ => return Err(mismatch()),
                };
                Value::Object(Map::from_iter([(key.to_owned(), json)]))
            }
            (TypeDefKind::List(elem), Val::List(items)) if is_byte(self.resolve, elem) => {
                let bytes = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| match item {
                        Val::U8(byte) => Ok(*byte),
                        other => Err(self.mismatch(elem, other, &Path::Index(path, i))),
                    })
                    .collect::<Result<Vec<u8>, _>>()?;
                self.budget.charge(
                    base64::encoded_len(bytes.len(), true).unwrap_or(usize::MAX),
                    path,
                )?;
                Value::String(STANDARD.encode(bytes))
            }
            (TypeDefKind::List(elem), Val::List(items)) => {
                self.elements(std::iter::repeat(elem), items, path)?
            }
            (TypeDefKind::FixedLengthList(elem, len), Val::FixedLengthList(items))
                if usize::try_from(*len).is_ok_and(|len| len == items.len()) =>
            {
                self.elements(std::iter::repeat(elem), items, path)?
            }
            (
                TypeDefKind::Resource
                | TypeDefKind::Handle(_)
                | TypeDefKind::Future(_)
                | TypeDefKind::Stream(_)
                | TypeDefKind::Map(..)
                | TypeDefKind::Unknown,
                _,
            ) => return Err(unsupported_error(self.resolve, &ty, path)),
            _ => return Err(mismatch()),
        })
    }

    /// A JSON array of `items`, each with the next type from `types`.
    fn elements<'t>(
        &self,
        types: impl Iterator<Item = &'t Type>,
        items: &[Val],
        path: &Path<'_>,
    ) -> Result<Value, ValueError> {
        types
            .zip(items)
            .enumerate()
            .map(|(i, (ty, item))| self.convert(ty, item, &Path::Index(path, i)))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array)
    }
}

/// The integer that JSON number text (`-?int(.frac)?([eE][+-]?exp)?`) stands for, read exactly without going
/// through a float: `None` when it has a fractional part (`1.5`, `1e-1`) or is beyond every WIT integer type.
fn whole_number(text: &str) -> Option<i128> {
    // i128 holds up to 39 digits (checked below); every WIT integer fits in 20.
    const MAX_DIGITS: i64 = 39;
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        // An exponent too large for i64 only matters by its sign.
        Some((mantissa, exp)) => (
            mantissa,
            exp.parse::<i64>().unwrap_or(if exp.starts_with('-') {
                i64::MIN / 2
            } else {
                i64::MAX / 2
            }),
        ),
        None => (unsigned, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: String = int_part.chars().chain(frac_part.chars()).collect();
    let leading = digits.trim_start_matches('0');
    if leading.is_empty() {
        return Some(0);
    }
    let significant = leading.trim_end_matches('0');
    let trailing_zeros = (leading.len() - significant.len()) as i64;
    // The value is `significant × 10^scale`, and `significant` ends in a non-zero digit.
    let scale = exponent
        .saturating_sub(frac_part.len() as i64)
        .saturating_add(trailing_zeros);
    if scale < 0 || (significant.len() as i64).saturating_add(scale) > MAX_DIGITS {
        return None;
    }
    let magnitude =
        (0..scale).try_fold(significant.parse::<i128>().ok()?, |n, _| n.checked_mul(10))?;
    Some(if negative { -magnitude } else { magnitude })
}

/// Whether `ty` only names another type (converting it converts that type: no value of its own).
fn is_alias(resolve: &Resolve, ty: &Type) -> bool {
    matches!(ty, Type::Id(id) if matches!(resolve.types[*id].kind, TypeDefKind::Type(_)))
}

/// A float as JSON: a number, or `"NaN"`, `"Infinity"`, `"-Infinity"`.
fn float_json(x: f64) -> Value {
    match Number::from_f64(x) {
        Some(n) => Value::Number(n),
        None if x.is_nan() => Value::String("NaN".into()),
        None if x > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

/// The kind of a component value, for "got … value" messages.
fn val_kind(val: &Val) -> &'static str {
    match val {
        Val::Bool(_) => "bool",
        Val::S8(_) => "s8",
        Val::U8(_) => "u8",
        Val::S16(_) => "s16",
        Val::U16(_) => "u16",
        Val::S32(_) => "s32",
        Val::U32(_) => "u32",
        Val::S64(_) => "s64",
        Val::U64(_) => "u64",
        Val::Float32(_) => "f32",
        Val::Float64(_) => "f64",
        Val::Char(_) => "char",
        Val::String(_) => "string",
        Val::List(_) => "list",
        Val::Map(_) => "map",
        Val::Record(_) => "record",
        Val::Tuple(_) => "tuple",
        Val::Variant(..) => "variant",
        Val::Enum(_) => "enum",
        Val::Option(_) => "option",
        Val::Result(_) => "result",
        Val::Flags(_) => "flags",
        Val::Resource(_) => "resource",
        Val::Future(_) => "future",
        Val::Stream(_) => "stream",
        Val::ErrorContext(_) => "error-context",
        Val::FixedLengthList(_) => "fixed-length list",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::describe::testing::{describe, type_in};
    use crate::schema::{Direction, input_schema, output_schema, type_schema};

    fn to_val(src: &str, json: Value) -> Result<Val, String> {
        let (resolve, ty) = type_in(src);
        json_to_val(&resolve, &ty, &json, "args.x").map_err(|e| e.to_string())
    }

    fn to_json(src: &str, val: Val) -> Result<Value, String> {
        let (resolve, ty) = type_in(src);
        val_to_json(&resolve, &ty, &val).map_err(|e| e.to_string())
    }

    fn validator(schema: &Value) -> jsonschema::Validator {
        jsonschema::validator_for(schema).expect("schema is valid JSON Schema")
    }

    /// Checks that the input schema of `src` accepts `json` exactly when `json_to_val` does, and that a converted
    /// value comes back as JSON that both schemas accept and that converts to the same value.
    fn check_agreement(src: &str, json: Value) {
        let (resolve, ty) = type_in(src);
        let input = validator(&type_schema(&resolve, &ty, Direction::Input).expect("supported"));
        let output = validator(&type_schema(&resolve, &ty, Direction::Output).expect("supported"));
        let converted = json_to_val(&resolve, &ty, &json, "x");
        assert_eq!(
            input.is_valid(&json),
            converted.is_ok(),
            "{src} {json}: schema and conversion disagree ({converted:?})"
        );
        if let Ok(val) = converted {
            let back = val_to_json(&resolve, &ty, &val).expect("converts back");
            assert!(
                output.is_valid(&back),
                "{src}: output {back} fails the output schema"
            );
            assert!(
                input.is_valid(&back),
                "{src}: output {back} fails the input schema"
            );
            let again = json_to_val(&resolve, &ty, &back, "x").expect("output converts again");
            assert_eq!(again, val, "{src}: {json} does not round-trip");
        }
    }

    #[test]
    fn primitives_convert_both_ways() {
        let cases = [
            ("bool", json!(true), Val::Bool(true)),
            ("u8", json!(255), Val::U8(255)),
            ("u16", json!(65535), Val::U16(65535)),
            ("u32", json!(3.0), Val::U32(3)),
            ("u64", json!(u64::MAX), Val::U64(u64::MAX)),
            ("s8", json!(-128), Val::S8(-128)),
            ("s16", json!(-2), Val::S16(-2)),
            ("s32", json!(i32::MIN), Val::S32(i32::MIN)),
            ("s64", json!(i64::MIN), Val::S64(i64::MIN)),
            ("f32", json!(0.1), Val::Float32(0.1)),
            ("f64", json!(-2.5), Val::Float64(-2.5)),
            ("f64", json!("NaN"), Val::Float64(f64::NAN)),
            ("f32", json!("Infinity"), Val::Float32(f32::INFINITY)),
            ("f64", json!("-Infinity"), Val::Float64(f64::NEG_INFINITY)),
            ("char", json!("é"), Val::Char('é')),
            ("char", json!("🦀"), Val::Char('🦀')),
            ("string", json!("hi"), Val::String("hi".into())),
        ];
        for (src, json, val) in cases {
            assert_eq!(to_val(src, json.clone()), Ok(val.clone()), "{src} {json}");
            let expected = if json == json!(3.0) { json!(3) } else { json };
            assert_eq!(to_json(src, val), Ok(expected), "{src}");
        }
    }

    #[test]
    fn integers_are_range_checked() {
        assert_eq!(
            to_val("u8", json!(-1)).unwrap_err(),
            "args.x: expected u8, got -1"
        );
        assert_eq!(
            to_val("u8", json!(256)).unwrap_err(),
            "args.x: expected u8, got 256"
        );
        assert_eq!(
            to_val("s8", json!(128)).unwrap_err(),
            "args.x: expected s8, got 128"
        );
        assert_eq!(
            to_val("u32", json!(3.5)).unwrap_err(),
            "args.x: expected u32, got 3.5"
        );
        assert_eq!(
            to_val("u64", json!(1e20)).unwrap_err(),
            "args.x: expected u64, got 1e+20"
        );
        assert_eq!(
            to_val("s64", json!(u64::MAX)).unwrap_err(),
            format!("args.x: expected s64, got {}", u64::MAX)
        );
        assert_eq!(
            to_val("u16", json!("3")).unwrap_err(),
            "args.x: expected u16, got string \"3\""
        );
        assert_eq!(
            to_val("bool", json!(1)).unwrap_err(),
            "args.x: expected bool, got number 1"
        );
    }

    /// JSON text as a client sends it (numbers keep their text).
    fn parsed(text: &str) -> Value {
        serde_json::from_str(text).expect("valid JSON")
    }

    #[test]
    fn integers_are_read_exactly_from_their_text() {
        // One past each end of s64 and u64: refused, not rounded into range.
        for (ty, text) in [
            ("s64", "-9223372036854775809"),
            ("s64", "9223372036854775808"),
            ("u64", "18446744073709551616"),
            ("u64", "-1"),
            ("s64", "-9223372036854775808.5"),
            ("u64", "18446744073709551615.000000000000000001"),
            ("u32", "1e-1"),
            ("u8", "1e400"),
            ("s8", "-1e99999999999999999999"),
        ] {
            // serde_json keeps the text, with its exponent written `e+400`.
            let json = parsed(text);
            assert_eq!(
                to_val(ty, json.clone()).unwrap_err(),
                format!("args.x: expected {ty}, got {json}"),
            );
        }
        // Whole numbers in any notation are that integer, exactly.
        for (ty, text, val) in [
            ("s64", "-9223372036854775808", Val::S64(i64::MIN)),
            ("s64", "-9223372036854775808.000", Val::S64(i64::MIN)),
            ("u64", "18446744073709551615", Val::U64(u64::MAX)),
            ("u64", "1.8446744073709551615e19", Val::U64(u64::MAX)),
            ("u16", "1e3", Val::U16(1000)),
            ("u16", "1.5e1", Val::U16(15)),
            ("u8", "2550E-1", Val::U8(255)),
            ("s8", "-0", Val::S8(0)),
            ("u8", "0.0e7", Val::U8(0)),
            ("u32", "1.0", Val::U32(1)),
        ] {
            assert_eq!(to_val(ty, parsed(text)), Ok(val), "{ty} {text}");
        }
    }

    #[test]
    fn whole_numbers_from_text() {
        assert_eq!(whole_number("0"), Some(0));
        assert_eq!(whole_number("-12.50e1"), Some(-125));
        assert_eq!(whole_number("12.5"), None);
        assert_eq!(whole_number("1e38"), Some(10i128.pow(38)));
        assert_eq!(whole_number("1e39"), None);
        assert_eq!(whole_number("100000e-5"), Some(1));
        assert_eq!(whole_number("100000e-6"), None);
    }

    #[test]
    fn conversions_stop_at_their_budget() {
        let desc = describe(
            "package t:b;\ninterface api {\n  f: func(data: list<u8>, names: list<string>) -> list<string>;\n}\nworld w { export api; }\n",
        );
        let f = desc.find("api.f").expect("f");
        let args = json!({"data": "AAAA", "names": ["a", "bc"]});
        // Three bytes and two strings: a value each, plus the list values, the parameters and the text.
        let needed = 3 * VAL_BYTES + 2 * (VAL_BYTES + 2) + 2 * VAL_BYTES;
        assert!(args_to_vals_within(&desc, f, &args, needed).is_ok());
        let refused = args_to_vals_within(&desc, f, &args, 3 * VAL_BYTES).unwrap_err();
        assert!(refused.is_over_budget());
        assert_eq!(refused.path(), "args.data");
        assert!(
            refused.message().starts_with(&format!(
                "the arguments take more than {} of host memory",
                are_policy::common::fmt_bytes(3 * VAL_BYTES as u64)
            )) && refused.message().contains("limits.max_output"),
            "{refused}"
        );
        let result = [Val::List(vec![Val::String("abc".into()); 10])];
        assert!(result_to_json_within(&desc, f, &result, usize::MAX).is_ok());
        let refused = result_to_json_within(&desc, f, &result, 100).unwrap_err();
        assert!(refused.is_over_budget() && refused.message().starts_with("the result takes"));
        // A value that does not fit its type is no budget error.
        let wrong = [Val::Bool(true)];
        assert!(
            !result_to_json_within(&desc, f, &wrong, 100)
                .unwrap_err()
                .is_over_budget()
        );
    }

    #[test]
    fn floats_and_chars() {
        assert_eq!(
            to_val("f32", json!(1e300)).unwrap_err(),
            "args.x: expected f32, got 1e+300"
        );
        assert_eq!(
            to_val("f64", json!("nan")).unwrap_err(),
            "args.x: expected f64, got string \"nan\""
        );
        assert_eq!(to_json("f32", Val::Float32(f32::NAN)), Ok(json!("NaN")));
        assert_eq!(
            to_json("f64", Val::Float64(f64::NEG_INFINITY)),
            Ok(json!("-Infinity"))
        );
        assert_eq!(
            to_val("char", json!("ab")).unwrap_err(),
            "args.x: expected char (exactly one character), got string \"ab\""
        );
        assert_eq!(
            to_val("char", json!("")).unwrap_err(),
            "args.x: expected char (exactly one character), got string \"\""
        );
    }

    #[test]
    fn bytes_are_base64() {
        let bytes = Val::List(vec![Val::U8(0), Val::U8(255), Val::U8(1)]);
        assert_eq!(to_val("list<u8>", json!("AP8B")), Ok(bytes.clone()));
        assert_eq!(to_val("bytes", json!([0, 255, 1])), Ok(bytes.clone()));
        assert_eq!(to_json("list<u8>", bytes.clone()), Ok(json!("AP8B")));
        let two = Val::List(vec![Val::U8(0), Val::U8(255)]);
        assert_eq!(to_val("list<u8>", json!("AP8=")), Ok(two.clone()));
        assert_eq!(to_val("list<u8>", json!("AP8")), Ok(two));
        assert_eq!(to_val("list<u8>", json!("")), Ok(Val::List(vec![])));
        assert!(
            to_val("list<u8>", json!("A!"))
                .unwrap_err()
                .starts_with("args.x: expected base64 for list<u8>, got")
        );
        assert_eq!(
            to_val("list<u8>", json!([1, 300])).unwrap_err(),
            "args.x[1]: expected u8, got 300"
        );
    }

    #[test]
    fn the_schema_accepts_exactly_the_base64_the_converter_decodes() {
        let schema = crate::schema::base64_input_schema();
        let validator = jsonschema::validator_for(&schema).expect("a valid schema");
        for text in [
            "", "A", "AA", "AB", "AQ", "AQ=", "AQ==", "AAA", "AAB", "AAE", "AAE=", "AAAA", "AAAA=",
            "AP8B", "AP8B/w", "AP8B/w==", "AAE==", "AP8B/w=", "A===", "====", "AP8B\n", " AP8",
        ] {
            assert_eq!(
                validator.is_valid(&json!(text)),
                to_val("list<u8>", json!(text)).is_ok(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn lists_tuples_and_fixed_lists() {
        let list = Val::List(vec![Val::String("a".into()), Val::String("b".into())]);
        assert_eq!(to_val("list<string>", json!(["a", "b"])), Ok(list.clone()));
        assert_eq!(to_json("list<string>", list), Ok(json!(["a", "b"])));
        assert_eq!(
            to_val("list<string>", json!(["a", "b", 3])).unwrap_err(),
            "args.x[2]: expected string, got number 3"
        );
        let tuple = Val::Tuple(vec![Val::U8(1), Val::String("a".into())]);
        assert_eq!(
            to_val("tuple<u8, string>", json!([1, "a"])),
            Ok(tuple.clone())
        );
        assert_eq!(to_json("tuple<u8, string>", tuple), Ok(json!([1, "a"])));
        assert_eq!(
            to_val("tuple<u8, string>", json!([1])).unwrap_err(),
            "args.x: expected tuple<u8, string> (an array of exactly 2 items), got array of 1 item"
        );
        let fixed = Val::FixedLengthList(vec![Val::U8(1), Val::U8(2)]);
        assert_eq!(to_val("list<u8, 2>", json!([1, 2])), Ok(fixed.clone()));
        assert_eq!(to_json("list<u8, 2>", fixed), Ok(json!([1, 2])));
        assert!(to_val("list<u8, 2>", json!([1, 2, 3])).is_err());
        assert!(to_json("list<u8, 2>", Val::FixedLengthList(vec![Val::U8(1)])).is_err());
    }

    #[test]
    fn records() {
        let user = |nick: Option<Val>| {
            Val::Record(vec![
                ("name".into(), Val::String("Ada".into())),
                ("age".into(), Val::U8(36)),
                ("nick".into(), Val::Option(nick.map(Box::new))),
            ])
        };
        assert_eq!(
            to_val("user", json!({"name": "Ada", "age": 36})),
            Ok(user(None))
        );
        assert_eq!(
            to_val("user", json!({"name": "Ada", "age": 36, "nick": "ada"})),
            Ok(user(Some(Val::String("ada".into()))))
        );
        assert_eq!(
            to_json("user", user(None)),
            Ok(json!({"name": "Ada", "age": 36, "nick": null}))
        );
        let order: Vec<String> = to_json("user", user(None))
            .expect("json")
            .as_object()
            .expect("object")
            .keys()
            .cloned()
            .collect();
        assert_eq!(order, ["name", "age", "nick"]);
        assert_eq!(
            to_val("user", json!({"name": "Ada", "age": -1})).unwrap_err(),
            "args.x.age: expected u8, got -1"
        );
        assert_eq!(
            to_val("user", json!({"name": "Ada"})).unwrap_err(),
            "args.x: missing required field \"age\""
        );
        assert_eq!(
            to_val("user", json!({"name": "Ada", "age": 1, "email": "a@b"})).unwrap_err(),
            "args.x: unknown field \"email\"; expected one of: name, age, nick"
        );
        assert_eq!(
            to_val("user", json!(["Ada", 36])).unwrap_err(),
            "args.x: expected record user, got array of 2 items"
        );
    }

    #[test]
    fn variants_and_enums() {
        assert_eq!(
            to_val("shape", json!("dot")),
            Ok(Val::Variant("dot".into(), None))
        );
        let circle = Val::Variant("circle".into(), Some(Box::new(Val::Float32(1.5))));
        assert_eq!(to_val("shape", json!({"circle": 1.5})), Ok(circle.clone()));
        assert_eq!(to_json("shape", circle), Ok(json!({"circle": 1.5})));
        assert_eq!(
            to_json("shape", Val::Variant("dot".into(), None)),
            Ok(json!("dot"))
        );
        assert_eq!(
            to_val("shape", json!({"hexagon": 1})).unwrap_err(),
            "args.x: unknown variant case \"hexagon\"; expected one of: circle, rect, dot"
        );
        assert_eq!(
            to_val("shape", json!("circle")).unwrap_err(),
            "args.x: variant case \"circle\" needs a payload: {\"circle\": …}"
        );
        assert_eq!(
            to_val("shape", json!({"dot": null})).unwrap_err(),
            "args.x: variant case \"dot\" has no payload; pass the string \"dot\""
        );
        assert_eq!(
            to_val("shape", json!({"rect": [1, -2]})).unwrap_err(),
            "args.x.rect[1]: expected u32, got -2"
        );
        assert_eq!(
            to_val("shape", json!({"dot": null, "circle": 1})).unwrap_err(),
            "args.x: expected variant shape (a case name, or an object with exactly one case key), got object with 2 keys"
        );
        assert_eq!(
            to_val("color", json!("green")),
            Ok(Val::Enum("green".into()))
        );
        assert_eq!(
            to_json("color", Val::Enum("blue".into())),
            Ok(json!("blue"))
        );
        assert_eq!(
            to_val("color", json!("pink")).unwrap_err(),
            "args.x: unknown enum case \"pink\"; expected one of: red, green, blue"
        );
        assert_eq!(
            to_json("color", Val::Enum("pink".into())).unwrap_err(),
            "result: unknown enum case \"pink\"; expected one of: red, green, blue"
        );
    }

    #[test]
    fn options_and_results() {
        assert_eq!(to_val("option<u8>", json!(null)), Ok(Val::Option(None)));
        let some = Val::Option(Some(Box::new(Val::U8(1))));
        assert_eq!(to_val("option<u8>", json!(1)), Ok(some.clone()));
        assert_eq!(to_json("option<u8>", some.clone()), Ok(json!(1)));
        let nested = "option<option<u8>>";
        let some_none = Val::Option(Some(Box::new(Val::Option(None))));
        let some_some = Val::Option(Some(Box::new(some)));
        assert_eq!(to_val(nested, json!(null)), Ok(Val::Option(None)));
        assert_eq!(to_val(nested, json!({"some": null})), Ok(some_none.clone()));
        assert_eq!(to_val(nested, json!({"some": 1})), Ok(some_some.clone()));
        assert_eq!(to_json(nested, some_none), Ok(json!({"some": null})));
        assert_eq!(to_json(nested, some_some), Ok(json!({"some": 1})));
        assert_eq!(
            to_val(nested, json!(1)).unwrap_err(),
            "args.x: expected option<option<u8>> (null or {\"some\": …}), got number 1"
        );

        let ok = Val::Result(Ok(Some(Box::new(Val::U8(1)))));
        let err = Val::Result(Err(Some(Box::new(Val::String("no".into())))));
        assert_eq!(
            to_val("result<u8, string>", json!({"ok": 1})),
            Ok(ok.clone())
        );
        assert_eq!(
            to_val("result<u8, string>", json!({"err": "no"})),
            Ok(err.clone())
        );
        assert_eq!(to_json("result<u8, string>", ok), Ok(json!({"ok": 1})));
        assert_eq!(to_json("result<u8, string>", err), Ok(json!({"err": "no"})));
        assert_eq!(
            to_val("result", json!({"ok": null})),
            Ok(Val::Result(Ok(None)))
        );
        assert_eq!(
            to_json("result<_, string>", Val::Result(Ok(None))),
            Ok(json!({"ok": null}))
        );
        assert_eq!(
            to_val("result", json!({"err": 1})).unwrap_err(),
            "args.x.err: expected null (no payload), got number 1"
        );
        assert_eq!(
            to_val("result<u8, string>", json!({"ok": 1, "err": "x"})).unwrap_err(),
            "args.x: expected result<u8, string> ({\"ok\": …} or {\"err\": …}), got object with 2 keys"
        );
    }

    #[test]
    fn flags() {
        let read_exec = Val::Flags(vec!["read".into(), "exec".into()]);
        assert_eq!(
            to_val("perms", json!({"exec": true, "read": true, "write": false})),
            Ok(read_exec.clone())
        );
        assert_eq!(
            to_val("perms", json!(["exec", "read"])),
            Ok(read_exec.clone())
        );
        assert_eq!(to_val("perms", json!({})), Ok(Val::Flags(vec![])));
        assert_eq!(
            to_json("perms", read_exec),
            Ok(json!({"read": true, "write": false, "exec": true}))
        );
        assert_eq!(
            to_val("perms", json!(["read", "fly"])).unwrap_err(),
            "args.x: unknown flag \"fly\"; expected one of: read, write, exec"
        );
        assert_eq!(
            to_val("perms", json!({"read": 1})).unwrap_err(),
            "args.x.read: expected bool, got number 1"
        );
        assert_eq!(
            to_val("perms", json!([1])).unwrap_err(),
            "args.x[0]: expected a flag name, got number 1"
        );
    }

    #[test]
    fn unsupported_types_and_mismatched_values_fail_cleanly() {
        assert_eq!(
            to_val("own<blob>", json!(1)).unwrap_err(),
            "args.x: own<blob> is a resource handle; resources cannot be passed as JSON"
        );
        assert!(to_val("future<u8>", json!(1)).is_err());
        assert!(to_val("error-context", json!(1)).is_err());
        assert_eq!(
            to_json("u8", Val::S32(1)).unwrap_err(),
            "result: expected u8, got s32 value"
        );
        assert_eq!(
            to_json(
                "user",
                Val::Record(vec![("name".into(), Val::String("a".into()))])
            )
            .unwrap_err(),
            "result: expected record user, got record value"
        );
        assert!(to_json("shape", Val::Variant("circle".into(), None)).is_err());
        assert!(to_json("result", Val::Result(Ok(Some(Box::new(Val::U8(1)))))).is_err());
        assert!(to_json("perms", Val::Flags(vec!["fly".into()])).is_err());
        assert_eq!(
            to_json("list<u8>", Val::List(vec![Val::U8(1), Val::S8(1)])).unwrap_err(),
            "result[1]: expected u8, got s8 value"
        );
    }

    #[test]
    fn keys_may_use_underscores() {
        let desc = describe(
            "package test:snake;
             world w {
                 record opts { max-depth: u8 }
                 export walk: func(root-dir: string, opts: opts, limit: option<u32>) -> u32;
             }",
        );
        let walk = desc.find("walk").expect("found");
        let expected = vec![
            Val::String("/".into()),
            Val::Record(vec![("max-depth".into(), Val::U8(2))]),
            Val::Option(None),
        ];
        let args = json!({"root_dir": "/", "opts": {"max_depth": 2}});
        assert_eq!(args_to_vals(&desc, walk, &args), Ok(expected.clone()));
        let args = json!({"root-dir": "/", "opts": {"max-depth": 2}, "limit": null});
        assert_eq!(args_to_vals(&desc, walk, &args), Ok(expected));
        let twice = json!({"root-dir": "/", "root_dir": "/", "opts": {"max-depth": 2}});
        assert_eq!(
            args_to_vals(&desc, walk, &twice).unwrap_err().to_string(),
            "args: parameter \"root-dir\" is given twice"
        );
    }

    #[test]
    fn arguments_by_name_position_or_nothing() {
        let desc = describe(
            "package test:args;
             world w {
                 export add: func(a: s32, b: s32, label: option<string>) -> s32;
                 export ping: func();
             }",
        );
        let add = desc.find("add").expect("found");
        let ping = desc.find("ping").expect("found");
        let three = vec![Val::S32(1), Val::S32(2), Val::Option(None)];
        assert_eq!(
            args_to_vals(&desc, add, &json!({"a": 1, "b": 2})),
            Ok(three.clone())
        );
        assert_eq!(args_to_vals(&desc, add, &json!([1, 2])), Ok(three));
        assert_eq!(args_to_vals(&desc, ping, &json!(null)), Ok(vec![]));
        assert_eq!(args_to_vals(&desc, ping, &json!({})), Ok(vec![]));
        let err = |f: &ExportedFunction, args: Value| {
            args_to_vals(&desc, f, &args).unwrap_err().to_string()
        };
        assert_eq!(
            err(add, json!({"a": 1})),
            "args: missing required parameter \"b\""
        );
        assert_eq!(
            err(add, json!(null)),
            "args: missing required parameter \"a\""
        );
        assert_eq!(
            err(add, json!({"a": 1, "b": 2, "c": 3})),
            "args: unknown parameter \"c\"; expected one of: a, b, label"
        );
        assert_eq!(
            err(add, json!([1, 2, "x", 4])),
            "args: expected at most 3 arguments, got 4"
        );
        assert_eq!(
            err(add, json!({"a": 1, "b": "2"})),
            "args.b: expected s32, got string \"2\""
        );
        assert_eq!(
            err(add, json!("1, 2")),
            "args: expected an object of named arguments or an array of arguments, got string \"1, 2\""
        );
        assert_eq!(
            err(ping, json!({"x": 1})),
            "args: unknown parameter \"x\"; the function takes no parameters"
        );

        assert_eq!(
            result_to_json(&desc, add, &[Val::S32(3)]),
            Ok(Some(json!(3)))
        );
        assert_eq!(result_to_json(&desc, ping, &[]), Ok(None));
        assert_eq!(
            result_to_json(&desc, add, &[]).unwrap_err().to_string(),
            "result: expected 1 result value(s), got 0"
        );
    }

    #[test]
    fn schemas_and_conversions_agree() {
        let samples: &[(&str, &[Value])] = &[
            ("bool", &[json!(true), json!(0), json!(null)]),
            (
                "u8",
                &[
                    json!(0),
                    json!(255),
                    json!(256),
                    json!(-1),
                    json!(2.0),
                    json!(2.5),
                    json!("1"),
                ],
            ),
            ("s64", &[json!(i64::MIN), json!(i64::MAX), json!(u64::MAX)]),
            ("u64", &[json!(u64::MAX), json!(-1)]),
            (
                "f32",
                &[
                    json!(1.5),
                    json!("NaN"),
                    json!("Infinity"),
                    json!("-Infinity"),
                    json!("inf"),
                    json!(1e300),
                ],
            ),
            ("f64", &[json!(1e300), json!(-0.0), json!(true)]),
            (
                "char",
                &[json!("a"), json!("🦀"), json!("ab"), json!(""), json!(97)],
            ),
            ("string", &[json!(""), json!("x"), json!(null)]),
            (
                "list<string>",
                &[json!([]), json!(["a"]), json!([1]), json!("a")],
            ),
            (
                "list<u8>",
                &[
                    json!("AP8B"),
                    json!("AP8"),
                    json!([1, 2]),
                    json!([256]),
                    json!({}),
                ],
            ),
            ("bytes", &[json!("aGk="), json!([104, 105])]),
            ("list<u8, 2>", &[json!([1, 2]), json!([1]), json!("AQI=")]),
            (
                "tuple<u8, string>",
                &[json!([1, "a"]), json!([1]), json!([1, "a", 2])],
            ),
            (
                "user",
                &[
                    json!({"name": "a", "age": 1}),
                    json!({"name": "a", "age": 1, "nick": null}),
                    json!({"name": "a", "age": 1, "nick": "b"}),
                    json!({"name": "a"}),
                    json!({"name": "a", "age": 1, "x": 1}),
                ],
            ),
            (
                "shape",
                &[
                    json!("dot"),
                    json!({"circle": 2.5}),
                    json!({"rect": [1, 2]}),
                    json!("circle"),
                    json!({"dot": null}),
                    json!({"square": 1}),
                    json!({}),
                ],
            ),
            ("color", &[json!("red"), json!("pink"), json!(0)]),
            (
                "perms",
                &[
                    json!({}),
                    json!({"read": true}),
                    json!(["write"]),
                    json!({"read": 1}),
                    json!(["fly"]),
                ],
            ),
            ("option<u8>", &[json!(null), json!(1), json!("1")]),
            (
                "option<option<u8>>",
                &[
                    json!(null),
                    json!({"some": null}),
                    json!({"some": 1}),
                    json!(1),
                ],
            ),
            ("option<list<option<u8>>>", &[json!(null), json!([null, 1])]),
            (
                "result<u8, string>",
                &[
                    json!({"ok": 1}),
                    json!({"err": "e"}),
                    json!({"ok": "e"}),
                    json!({}),
                ],
            ),
            (
                "result",
                &[json!({"ok": null}), json!({"err": null}), json!({"ok": 1})],
            ),
            (
                "result<_, color>",
                &[json!({"ok": null}), json!({"err": "red"})],
            ),
            (
                "list<tuple<user, option<shape>>>",
                &[json!([[{"name": "a", "age": 3}, null], [{"name": "b", "age": 4}, "dot"]])],
            ),
        ];
        for (src, values) in samples {
            for value in *values {
                check_agreement(src, value.clone());
            }
        }
    }

    const RICH_WIT: &str = "package example:rich@1.0.0;
        interface types {
            record point { x: f64, y: f64 }
            variant shape { circle(f32), polygon(list<point>), empty }
            enum color { red, green, blue }
            flags perms { read, write, exec }
            record item {
                id: u64,
                label: string,
                color: color,
                perms: perms,
                data: list<u8>,
                at: option<point>,
                maybe: option<option<s16>>,
                pair: tuple<char, bool>,
            }
        }
        interface api {
            use types.{point, shape, color, perms, item};
            draw: func(shape: shape, color: color) -> result<list<point>, string>;
            store: func(item: item, tags: list<string>, limit: option<u32>) -> item;
            checksum: func(data: list<u8>) -> tuple<u32, list<u8>>;
            check: func(p: perms) -> result<_, string>;
            nothing: func();
        }
        world rich {
            export api;
            export version: func() -> string;
        }";

    /// Sample arguments per function of `RICH_WIT`.
    fn rich_samples() -> Vec<(&'static str, Value)> {
        vec![
            (
                "api.draw",
                json!({"shape": {"circle": 1.0}, "color": "red"}),
            ),
            (
                "api.draw",
                json!({"shape": {"polygon": [{"x": 0, "y": 1.5}]}, "color": "blue"}),
            ),
            ("api.draw", json!({"shape": "empty", "color": "green"})),
            (
                "api.store",
                json!({
                    "item": {
                        "id": u64::MAX, "label": "x", "color": "green", "perms": ["read", "exec"],
                        "data": "aGVsbG8", "at": {"x": "NaN", "y": 2}, "maybe": {"some": null},
                        "pair": ["é", true],
                    },
                    "tags": ["a", "b"],
                }),
            ),
            (
                "api.store",
                json!({
                    "item": {
                        "id": 0, "label": "", "color": "red", "perms": {"write": true},
                        "data": [1, 2, 3], "maybe": {"some": -5}, "pair": ["z", false],
                    },
                    "tags": [],
                    "limit": 10,
                }),
            ),
            ("api.checksum", json!({"data": "AAEC"})),
            ("api.check", json!({"p": {}})),
            ("api.nothing", json!({})),
            ("version", json!({})),
        ]
    }

    #[test]
    fn rich_world_values_validate_against_schemas() {
        let desc = describe(RICH_WIT);
        assert_eq!(desc.tools().count(), 6);
        for (name, args) in rich_samples() {
            let f = desc.find(name).expect(name);
            let schema = input_schema(&desc, f);
            let input = validator(&schema);
            assert!(input.is_valid(&args), "{name}: {args} fails {schema}");
            let vals = args_to_vals(&desc, f, &args).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(vals.len(), f.params.len());

            // Every parameter value, turned back into JSON, satisfies the parameter's input schema.
            let mut named = Map::new();
            for ((param, ty), val) in f.params.iter().zip(&vals) {
                named.insert(
                    param.clone(),
                    val_to_json(desc.resolve(), ty, val).expect("back to JSON"),
                );
            }
            let named = Value::Object(named);
            assert!(input.is_valid(&named), "{name}: {named} fails {schema}");
            assert_eq!(
                args_to_vals(&desc, f, &named).expect("converts again"),
                vals
            );

            // Results of every shape the function can return satisfy its output schema.
            if let (Some(result_ty), Some(schema)) = (&f.result, output_schema(&desc, f)) {
                let output = validator(&schema);
                for val in sample_results(&desc, result_ty, &vals) {
                    let json =
                        val_to_json(desc.resolve(), result_ty, &val).expect("result to JSON");
                    assert!(output.is_valid(&json), "{name}: {json} fails {schema}");
                }
            }
        }
    }

    /// Result values of `ty` for the rich world's functions.
    fn sample_results(desc: &ComponentDescription, ty: &Type, args: &[Val]) -> Vec<Val> {
        let point = |x: f64, y: f64| {
            Val::Record(vec![
                ("x".into(), Val::Float64(x)),
                ("y".into(), Val::Float64(y)),
            ])
        };
        match wit_type_name(desc.resolve(), ty).as_str() {
            "string" => vec![Val::String("1.0".into())],
            "item" => args.iter().take(1).cloned().collect(),
            "result<list<point>, string>" => vec![
                Val::Result(Ok(Some(Box::new(Val::List(vec![
                    point(1.0, f64::NAN),
                    point(0.0, -0.0),
                ]))))),
                Val::Result(Err(Some(Box::new(Val::String("bad".into()))))),
            ],
            "tuple<u32, list<u8>>" => vec![Val::Tuple(vec![
                Val::U32(7),
                Val::List(vec![Val::U8(9), Val::U8(0)]),
            ])],
            "result<_, string>" => vec![
                Val::Result(Ok(None)),
                Val::Result(Err(Some(Box::new(Val::String("denied".into()))))),
            ],
            other => panic!("no sample result for {other}"),
        }
    }
}

//! What a component exports (its tools) and imports (the capabilities it asks for).
//!
//! [`ComponentDescription::from_bytes`] decodes a component's WIT world. Every exported function becomes an
//! [`ExportedFunction`]; the ones whose signature has no JSON form are kept but marked
//! [`unsupported`](ExportedFunction::unsupported). Imports are grouped by
//! [`CapabilityKind`](are_policy::CapabilityKind).
//!
//! A normal build drops WIT doc comments, so tool and schema descriptions need the WIT source:
//! [`embed_wit_docs`] stores the encoded WIT package in a custom section named [`WIT_DOCS_SECTION`], which
//! `from_bytes` reads back. A WIT directory given to `from_bytes` takes precedence over that section.
//!
//! # Function names
//!
//! An exported function is addressed (see [`ComponentDescription::find`]) by any of:
//! - its [qualified name](ExportedFunction::qualified_name), which is also its tool name: `upper` for a world-level
//!   function, `text.upper` for function `upper` of exported interface `example:text/text@0.1.0`;
//! - its full name `example:text/text@0.1.0.upper`, or wasmtime's `example:text/text@0.1.0#upper`;
//! - its bare name `upper`, when only one exported function has that name.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};
use wasm_encoder::{ComponentSection as _, Encode as _};
use wasmparser::{BinaryReader, CustomSectionReader};
use wit_component::DecodedWasm;
use wit_parser::{
    Docs, Function, FunctionKind, InterfaceId, PackageId, Resolve, Type, TypeDef, TypeDefKind,
    WorldId, WorldItem, WorldKey,
};

use crate::schema::{self, Direction};
use are_policy::{CapabilityKind, ImportedInterface, classify_import};

/// Name of the custom section in which [`embed_wit_docs`] stores the component's WIT package (with its docs).
pub const WIT_DOCS_SECTION: &str = "are-wit-package";

/// Why a component could not be described, or its docs not embedded.
#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    /// The bytes are not a WebAssembly component.
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(&'static str),
    /// The component's type information could not be decoded.
    #[error("cannot decode the component's WIT world: {0}")]
    Decode(String),
    /// The `--wit` directory could not be loaded.
    #[error("cannot load WIT from {}: {message}", path.display())]
    Wit {
        /// The WIT directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The embedded [`WIT_DOCS_SECTION`] is unreadable.
    #[error("the `{WIT_DOCS_SECTION}` section is invalid (embed the docs again): {0}")]
    DocsSection(String),
    /// The WIT package could not be encoded.
    #[error("cannot encode the WIT package: {0}")]
    Encode(String),
    /// The JSON Schema of a function's arguments or result is larger than [`schema::MAX_TOOL_SCHEMA`].
    #[error(
        "the JSON Schema of the {part} of `{function}` takes {}, more than the {} one tool schema may take; \
         give the function fewer or smaller parameter and result types",
        fmt_bytes(*size), fmt_bytes(schema::MAX_TOOL_SCHEMA)
    )]
    ToolSchemaTooLarge {
        /// The function's qualified name.
        function: String,
        /// `arguments` or `result`.
        part: &'static str,
        /// The schema's size in bytes (compact JSON).
        size: usize,
    },
    /// The tool schemas of the component together are larger than [`schema::MAX_COMPONENT_SCHEMAS`].
    #[error(
        "the JSON Schemas of the component's tools take more than the {} a component's may take together \
         (the {part} of `{function}` brings them to {}); export fewer functions, or give them smaller types",
        fmt_bytes(schema::MAX_COMPONENT_SCHEMAS), fmt_bytes(*total)
    )]
    SchemasTooLarge {
        /// The qualified name of the function whose schema went over the budget.
        function: String,
        /// `arguments` or `result`.
        part: &'static str,
        /// The size of the schemas up to and including that one, in bytes.
        total: usize,
    },
}

fn fmt_bytes(bytes: usize) -> String {
    are_policy::common::fmt_bytes(u64::try_from(bytes).unwrap_or(u64::MAX))
}

/// Why [`ComponentDescription::find`] found no single function.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// No exported function has that name.
    #[error("no exported function `{query}`; available: {}", list_names(.available))]
    NotFound {
        /// The name asked for.
        query: String,
        /// Qualified names of all exported functions.
        available: Vec<String>,
    },
    /// Several exported functions have that name.
    #[error("`{query}` is ambiguous; it may be: {}", list_names(.candidates))]
    Ambiguous {
        /// The name asked for.
        query: String,
        /// Qualified names of the matching functions.
        candidates: Vec<String>,
    },
}

fn list_names(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// An exported function: a tool, unless [`unsupported`](Self::unsupported) says why not.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedFunction {
    /// Full name of the exported interface (`example:text/text@0.1.0`); `None` for a world-level function.
    pub interface: Option<String>,
    /// Short name of the exported interface (`text`); `None` for a world-level function.
    pub short_interface: Option<String>,
    /// The function's WIT name, e.g. `upper` (or `[method]blob.size` for a resource method).
    pub name: String,
    /// The function's doc comment, when docs are available.
    pub docs: Option<String>,
    /// Parameter names and types, in order.
    pub params: Vec<(String, Type)>,
    /// The result type, if any.
    pub result: Option<Type>,
    /// Why the function cannot be a tool (resources, streams, futures, async), if it cannot.
    pub unsupported: Option<String>,
    qualified_name: String,
}

impl ExportedFunction {
    /// The tool name: `name` for a world-level function, `interface.name` otherwise. When two exported interfaces
    /// share a short name, their functions use the full interface name with `:`, `/`, `@` and `.` turned into `-`.
    pub fn qualified_name(&self) -> &str {
        &self.qualified_name
    }

    /// The full name, `example:text/text@0.1.0.upper`, or just `name` for a world-level function.
    pub fn full_name(&self) -> String {
        match &self.interface {
            Some(interface) => format!("{interface}.{}", self.name),
            None => self.name.clone(),
        }
    }

    /// Whether the function can be called as a tool.
    pub fn is_tool(&self) -> bool {
        self.unsupported.is_none()
    }
}

/// Where tool and type descriptions came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DocsSource {
    /// The component's [`WIT_DOCS_SECTION`].
    Embedded,
    /// A WIT directory given by the user.
    WitDir {
        /// The directory.
        path: PathBuf,
    },
    /// Nowhere: the component has no docs.
    #[serde(rename = "none")]
    Unavailable,
}

impl fmt::Display for DocsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocsSource::Embedded => write!(f, "embedded `{WIT_DOCS_SECTION}` section"),
            DocsSource::WitDir { path } => write!(f, "WIT directory {}", path.display()),
            DocsSource::Unavailable => f.write_str("none"),
        }
    }
}

/// A decoded component: its world, exported functions and imports, with docs when available.
#[derive(Debug, Clone)]
pub struct ComponentDescription {
    resolve: Resolve,
    world: WorldId,
    world_name: String,
    package: Option<String>,
    docs_source: DocsSource,
    exports: Vec<ExportedFunction>,
    imports: Vec<ImportedInterface>,
}

impl ComponentDescription {
    /// Decodes a component. Docs come from `wit_dir` when given, else from the [`WIT_DOCS_SECTION`] if present.
    pub fn from_bytes(bytes: &[u8], wit_dir: Option<&Path>) -> Result<Self, DescribeError> {
        ensure_component(bytes)?;
        let (mut resolve, world) = match wit_component::decode(bytes) {
            Ok(DecodedWasm::Component(resolve, world)) => (resolve, world),
            Ok(DecodedWasm::WitPackage(..)) => {
                return Err(DescribeError::NotAComponent(
                    "this is an encoded WIT package, not a component",
                ));
            }
            Err(err) => return Err(DescribeError::Decode(format!("{err:#}"))),
        };

        let docs = match wit_dir {
            Some(dir) => {
                let (docs, package) = load_wit_dir(dir)?;
                let source = DocsSource::WitDir {
                    path: dir.to_path_buf(),
                };
                Some((docs, package, source))
            }
            None => match find_custom_section(bytes, WIT_DOCS_SECTION)? {
                Some(section) => {
                    let (docs, package) = decode_docs_section(section)?;
                    Some((docs, package, DocsSource::Embedded))
                }
                None => None,
            },
        };

        let mut world_name = resolve.worlds[world].name.clone();
        let mut package = None;
        let mut docs_source = DocsSource::Unavailable;
        if let Some((docs, docs_package, source)) = docs {
            let docs_world = pick_docs_world(&resolve, world, &docs, docs_package);
            if let Some(docs_world) = docs_world {
                world_name = docs.worlds[docs_world].name.clone();
            }
            package = Some(docs.packages[docs_package].name.to_string());
            inject_docs(&mut resolve, world, &docs, docs_world);
            docs_source = source;
        }

        let exports = collect_exports(&resolve, world);
        let imports = collect_imports(&resolve, world);
        let description = ComponentDescription {
            resolve,
            world,
            world_name,
            package,
            docs_source,
            exports,
            imports,
        };
        description.check_schema_sizes()?;
        Ok(description)
    }

    /// Checks every tool's schemas against [`schema::MAX_TOOL_SCHEMA`], and all of them together against
    /// [`schema::MAX_COMPONENT_SCHEMAS`]. Each schema is built (in time linear in its size), measured and dropped.
    fn check_schema_sizes(&self) -> Result<(), DescribeError> {
        let mut total = 0usize;
        for f in self.tools() {
            let arguments = || Some(schema::input_schema(self, f));
            let result = || schema::output_schema(self, f);
            let parts: [(&'static str, &dyn Fn() -> Option<Value>); 2] =
                [("arguments", &arguments), ("result", &result)];
            for (part, build) in parts {
                let Some(size) = build().map(|schema| schema::json_size(&schema)) else {
                    continue;
                };
                let function = || f.qualified_name().to_owned();
                if size > schema::MAX_TOOL_SCHEMA {
                    return Err(DescribeError::ToolSchemaTooLarge {
                        function: function(),
                        part,
                        size,
                    });
                }
                total = total.saturating_add(size);
                if total > schema::MAX_COMPONENT_SCHEMAS {
                    return Err(DescribeError::SchemasTooLarge {
                        function: function(),
                        part,
                        total,
                    });
                }
            }
        }
        tracing::debug!(bytes = total, "tool schemas measured");
        Ok(())
    }

    /// The decoded WIT, with docs attached when available; it gives meaning to the [`Type`]s of the exports.
    pub fn resolve(&self) -> &Resolve {
        &self.resolve
    }

    /// The component's world inside [`resolve`](Self::resolve).
    pub fn world_id(&self) -> WorldId {
        self.world
    }

    /// The world name from the WIT source when docs are available, else the decoded name (`root`).
    pub fn world_name(&self) -> &str {
        &self.world_name
    }

    /// The world's doc comment, when docs are available.
    pub fn world_docs(&self) -> Option<&str> {
        self.resolve.worlds[self.world].docs.contents.as_deref()
    }

    /// The WIT package the docs came from (`example:text@0.1.0`), when docs are available.
    pub fn package_name(&self) -> Option<&str> {
        self.package.as_deref()
    }

    /// Where docs came from.
    pub fn docs_source(&self) -> &DocsSource {
        &self.docs_source
    }

    /// Every exported function, tools and unsupported ones alike, in export order.
    pub fn exports(&self) -> &[ExportedFunction] {
        &self.exports
    }

    /// The exported functions that can be called as tools.
    pub fn tools(&self) -> impl Iterator<Item = &ExportedFunction> {
        self.exports.iter().filter(|f| f.is_tool())
    }

    /// Every import, in import order.
    pub fn imports(&self) -> &[ImportedInterface] {
        &self.imports
    }

    /// The capabilities the component's imports ask for, without [`CapabilityKind::Io`] (streams and exit, which
    /// nearly every component imports) and [`CapabilityKind::Other`].
    pub fn capabilities(&self) -> BTreeSet<CapabilityKind> {
        self.imports
            .iter()
            .map(|i| i.capability)
            .filter(|c| !matches!(c, CapabilityKind::Other | CapabilityKind::Io))
            .collect()
    }

    /// The doc comment of an interface, by full name (`example:text/text@0.1.0`), when docs are available.
    pub fn interface_docs(&self, full_name: &str) -> Option<&str> {
        let world = &self.resolve.worlds[self.world];
        world
            .imports
            .iter()
            .chain(&world.exports)
            .find_map(|(key, item)| match item {
                WorldItem::Interface { id, .. } if key_name(&self.resolve, key) == full_name => {
                    self.resolve.interfaces[*id].docs.contents.as_deref()
                }
                _ => None,
            })
    }

    /// Finds an exported function by qualified, full or bare name (see the [module docs](self)).
    pub fn find(&self, query: &str) -> Result<&ExportedFunction, LookupError> {
        let by_qualified: Vec<&ExportedFunction> = self
            .exports
            .iter()
            .filter(|f| f.qualified_name == query)
            .collect();
        if !by_qualified.is_empty() {
            return single_match(query, by_qualified);
        }
        if let Some(f) = self.exports.iter().find(|f| {
            f.interface.as_deref().is_some_and(|interface| {
                query
                    .strip_prefix(interface)
                    .and_then(|rest| rest.strip_prefix(['.', '#']))
                    == Some(f.name.as_str())
            })
        }) {
            return Ok(f);
        }
        if let Some((interface, name)) = query.split_once('.') {
            let matches: Vec<&ExportedFunction> = self
                .exports
                .iter()
                .filter(|f| f.short_interface.as_deref() == Some(interface) && f.name == name)
                .collect();
            if !matches.is_empty() {
                return single_match(query, matches);
            }
        }
        let by_name: Vec<&ExportedFunction> =
            self.exports.iter().filter(|f| f.name == query).collect();
        if !by_name.is_empty() {
            return single_match(query, by_name);
        }
        Err(LookupError::NotFound {
            query: query.to_owned(),
            available: self
                .exports
                .iter()
                .map(|f| f.qualified_name.clone())
                .collect(),
        })
    }

    /// The JSON rendering of `are inspect --json`: world, docs source, tools with schemas, imports by capability.
    pub fn to_json(&self) -> Value {
        let tools: Vec<Value> = self.exports.iter().map(|f| self.tool_json(f)).collect();
        let mut imports: BTreeMap<CapabilityKind, Vec<&ImportedInterface>> = BTreeMap::new();
        for import in &self.imports {
            imports.entry(import.capability).or_default().push(import);
        }
        json!({
            "world": self.world_name,
            "package": self.package,
            "description": self.world_docs(),
            "docs_source": self.docs_source,
            "tools": tools,
            "imports": imports,
        })
    }

    fn tool_json(&self, f: &ExportedFunction) -> Value {
        let mut tool = json!({
            "name": f.name,
            "qualified_name": f.qualified_name,
            "full_name": f.full_name(),
            "interface": f.interface,
            "description": f.docs,
        });
        if let Value::Object(map) = &mut tool {
            match &f.unsupported {
                Some(reason) => {
                    map.insert("unsupported".into(), reason.clone().into());
                }
                None => {
                    map.insert("input_schema".into(), schema::input_schema(self, f));
                    let output = schema::output_schema(self, f).unwrap_or(Value::Null);
                    map.insert("output_schema".into(), output);
                }
            }
        }
        tool
    }
}

/// The one function in `matches`, or an ambiguity error listing them all.
fn single_match<'a>(
    query: &str,
    matches: Vec<&'a ExportedFunction>,
) -> Result<&'a ExportedFunction, LookupError> {
    match matches.as_slice() {
        [f] => Ok(f),
        _ => Err(LookupError::Ambiguous {
            query: query.to_owned(),
            candidates: matches.iter().map(|f| f.qualified_name.clone()).collect(),
        }),
    }
}

impl Serialize for ComponentDescription {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// Returns `component` with `wit_dir`'s WIT package (docs included) in the [`WIT_DOCS_SECTION`] custom section,
/// replacing any earlier one. The result still loads and decodes like the original.
pub fn embed_wit_docs(component: &[u8], wit_dir: &Path) -> Result<Vec<u8>, DescribeError> {
    ensure_component(component)?;
    let (resolve, package) = load_wit_dir(wit_dir)?;
    let encoded = wit_component::encode(&resolve, package)
        .map_err(|err| DescribeError::Encode(format!("{err:#}")))?;

    let mut out = Vec::with_capacity(component.len() + encoded.len() + 32);
    let mut copied = 0;
    for section in custom_sections(component)? {
        if section.name == WIT_DOCS_SECTION {
            out.extend_from_slice(&component[copied..section.range.start]);
            copied = section.range.end;
        }
    }
    out.extend_from_slice(&component[copied..]);
    let section = wasm_encoder::CustomSection {
        name: Cow::Borrowed(WIT_DOCS_SECTION),
        data: Cow::Borrowed(&encoded),
    };
    out.push(section.id());
    section.encode(&mut out);
    Ok(out)
}

fn ensure_component(bytes: &[u8]) -> Result<(), DescribeError> {
    if wasmparser::Parser::is_component(bytes) {
        // The WIT decoder reserves as much memory as a section header claims before reading the section, so a
        // forged size would cost gigabytes (found by `fuzz/load_component`). Walking the sections first, with
        // all the bytes at hand, refuses any section that claims more than the file holds.
        for payload in wasmparser::Parser::new(0).parse_all(bytes) {
            payload.map_err(|err| DescribeError::Decode(format!("{err:#}")))?;
        }
        Ok(())
    } else if wasmparser::Parser::is_core_wasm(bytes) {
        Err(DescribeError::NotAComponent(
            "this is a core WebAssembly module; build for wasm32-wasip2 or run `wasm-tools component new`",
        ))
    } else {
        Err(DescribeError::NotAComponent(
            "the file does not start with the WebAssembly magic number",
        ))
    }
}

fn load_wit_dir(dir: &Path) -> Result<(Resolve, PackageId), DescribeError> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve.push_dir(dir).map_err(|err| DescribeError::Wit {
        path: dir.to_path_buf(),
        message: format!("{err:#}"),
    })?;
    Ok((resolve, package))
}

fn decode_docs_section(data: &[u8]) -> Result<(Resolve, PackageId), DescribeError> {
    match wit_component::decode(data) {
        Ok(DecodedWasm::WitPackage(resolve, package)) => Ok((resolve, package)),
        Ok(DecodedWasm::Component(..)) => Err(DescribeError::DocsSection(
            "it holds a component, not a WIT package".into(),
        )),
        Err(err) => Err(DescribeError::DocsSection(format!("{err:#}"))),
    }
}

/// A top-level custom section of a component.
struct CustomSection<'a> {
    name: &'a str,
    data: &'a [u8],
    /// The whole section, header included.
    range: Range<usize>,
}

/// The top-level custom sections of a component (not those of nested modules and components).
fn custom_sections(bytes: &[u8]) -> Result<Vec<CustomSection<'_>>, DescribeError> {
    const HEADER_LEN: usize = 8;
    const CUSTOM_SECTION_ID: u8 = 0;
    let malformed = |err: wasmparser::BinaryReaderError| DescribeError::Decode(err.to_string());
    let mut reader = BinaryReader::new(bytes, 0);
    reader.read_bytes(HEADER_LEN).map_err(malformed)?;
    let mut sections = Vec::new();
    while !reader.eof() {
        let start = reader.original_position();
        let id = reader.read_u8().map_err(malformed)?;
        let len = reader.read_var_u32().map_err(malformed)? as usize;
        let content_start = reader.original_position();
        let content = reader.read_bytes(len).map_err(malformed)?;
        if id == CUSTOM_SECTION_ID {
            let custom = CustomSectionReader::new(BinaryReader::new(content, content_start))
                .map_err(malformed)?;
            sections.push(CustomSection {
                name: custom.name(),
                data: custom.data(),
                range: start..reader.original_position(),
            });
        }
    }
    Ok(sections)
}

fn find_custom_section<'a>(bytes: &'a [u8], name: &str) -> Result<Option<&'a [u8]>, DescribeError> {
    Ok(custom_sections(bytes)?
        .into_iter()
        .find(|s| s.name == name)
        .map(|s| s.data))
}

/// The name of a world item: the kebab name, or the full interface name (`wasi:cli/environment@0.2.6`).
fn key_name(resolve: &Resolve, key: &WorldKey) -> String {
    match key {
        WorldKey::Name(name) => name.clone(),
        WorldKey::Interface(id) => resolve.id_of(*id).unwrap_or_default(),
    }
}

/// A world item name without its version, to match names across WIT versions.
fn unversioned(name: &str) -> &str {
    name.split_once('@').map_or(name, |(base, _)| base)
}

fn collect_exports(resolve: &Resolve, world: WorldId) -> Vec<ExportedFunction> {
    let mut exports = Vec::new();
    for (key, item) in &resolve.worlds[world].exports {
        match item {
            WorldItem::Function(function) => exports.push(exported(resolve, None, function)),
            WorldItem::Interface { id, .. } => {
                let full = key_name(resolve, key);
                let short = match key {
                    WorldKey::Name(name) => name.clone(),
                    WorldKey::Interface(_) => resolve.interfaces[*id]
                        .name
                        .clone()
                        .unwrap_or_else(|| full.clone()),
                };
                for function in resolve.interfaces[*id].functions.values() {
                    let interface = Some((full.clone(), short.clone()));
                    exports.push(exported(resolve, interface, function));
                }
            }
            WorldItem::Type { .. } => {}
        }
    }
    disambiguate(&mut exports);
    exports
}

fn exported(
    resolve: &Resolve,
    interface: Option<(String, String)>,
    function: &Function,
) -> ExportedFunction {
    let (interface, short_interface) = interface.unzip();
    let qualified_name = match &short_interface {
        Some(short) => format!("{short}.{}", function.name),
        None => function.name.clone(),
    };
    ExportedFunction {
        interface,
        short_interface,
        name: function.name.clone(),
        docs: function.docs.contents.clone(),
        params: function
            .params
            .iter()
            .map(|p| (p.name.clone(), p.ty))
            .collect(),
        result: function.result,
        unsupported: unsupported_reason(resolve, function),
        qualified_name,
    }
}

/// Gives functions of exported interfaces that share a short name a qualified name built from the full name.
fn disambiguate(exports: &mut [ExportedFunction]) {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for f in exports.iter() {
        *counts.entry(f.qualified_name.clone()).or_default() += 1;
    }
    for f in exports.iter_mut() {
        if let (Some(interface), Some(&count)) = (&f.interface, counts.get(&f.qualified_name))
            && count > 1
        {
            let safe: String = interface
                .chars()
                .map(|c| {
                    if matches!(c, ':' | '/' | '@' | '.') {
                        '-'
                    } else {
                        c
                    }
                })
                .collect();
            f.qualified_name = format!("{safe}.{}", f.name);
        }
    }
}

/// Why `function` cannot be a tool, if it cannot.
fn unsupported_reason(resolve: &Resolve, function: &Function) -> Option<String> {
    let resource = |id: &wit_parser::TypeId| {
        resolve.types[*id]
            .name
            .clone()
            .unwrap_or_else(|| "?".into())
    };
    match &function.kind {
        kind if kind.is_async() => return Some("async functions are not supported".into()),
        FunctionKind::Method(id) => {
            return Some(format!(
                "it is a method of resource `{}`; resources cannot be passed as JSON",
                resource(id)
            ));
        }
        FunctionKind::Constructor(id) => {
            return Some(format!(
                "it is the constructor of resource `{}`; resources cannot be passed as JSON",
                resource(id)
            ));
        }
        FunctionKind::Static(id) => {
            return Some(format!(
                "it is a static function of resource `{}`; resource functions are not tools",
                resource(id)
            ));
        }
        _ => {}
    }
    for param in &function.params {
        if let Err(reason) = schema::type_schema(resolve, &param.ty, Direction::Input) {
            return Some(format!("parameter `{}` {reason}", param.name));
        }
    }
    if let Some(result) = &function.result
        && let Err(reason) = schema::type_schema(resolve, result, Direction::Output)
    {
        return Some(format!("the result {reason}"));
    }
    None
}

fn collect_imports(resolve: &Resolve, world: WorldId) -> Vec<ImportedInterface> {
    resolve.worlds[world]
        .imports
        .iter()
        .filter_map(|(key, item)| match item {
            WorldItem::Interface { id, .. } => {
                let name = key_name(resolve, key);
                Some(ImportedInterface {
                    capability: classify_import(&name),
                    functions: resolve.interfaces[*id].functions.keys().cloned().collect(),
                    name,
                })
            }
            WorldItem::Function(function) => Some(ImportedInterface {
                name: function.name.clone(),
                capability: CapabilityKind::Other,
                functions: vec![function.name.clone()],
            }),
            WorldItem::Type { .. } => None,
        })
        .collect()
}

/// The world of the docs package that best matches the component's exports (the only world, if there is one).
fn pick_docs_world(
    resolve: &Resolve,
    world: WorldId,
    docs: &Resolve,
    docs_package: PackageId,
) -> Option<WorldId> {
    let exported: BTreeSet<String> = resolve.worlds[world]
        .exports
        .keys()
        .map(|key| unversioned(&key_name(resolve, key)).to_owned())
        .collect();
    let candidates = &docs.packages[docs_package].worlds;
    let score = |id: &WorldId| {
        docs.worlds[*id]
            .exports
            .keys()
            .filter(|key| exported.contains(unversioned(&key_name(docs, key))))
            .count()
    };
    let (best, best_score) = candidates.values().map(|id| (*id, score(id))).fold(
        None,
        |best: Option<(WorldId, usize)>, (id, score)| match best {
            Some((_, best_score)) if best_score >= score => best,
            _ => Some((id, score)),
        },
    )?;
    (best_score > 0 || candidates.len() == 1).then_some(best)
}

/// Copies docs from the WIT source (`docs`) onto the decoded component (`resolve`), matching packages by
/// namespace and name (any version), then interfaces, functions, types, fields and cases by name.
fn inject_docs(resolve: &mut Resolve, world: WorldId, docs: &Resolve, docs_world: Option<WorldId>) {
    let mut pairs: Vec<(InterfaceId, InterfaceId)> = resolve
        .interfaces
        .iter()
        .filter_map(|(id, interface)| {
            let package = &resolve.packages[interface.package?].name;
            let name = interface.name.as_deref()?;
            Some((id, find_docs_interface(docs, package, name)?))
        })
        .collect();

    if let Some(docs_world) = docs_world {
        let docs_world = &docs.worlds[docs_world];
        let component_world = &mut resolve.worlds[world];
        copy_docs(&mut component_world.docs, &docs_world.docs);
        let mut types = Vec::new();
        for (items, docs_items) in [
            (&mut component_world.imports, &docs_world.imports),
            (&mut component_world.exports, &docs_world.exports),
        ] {
            match_world_items(items, docs_items, &mut pairs, &mut types);
        }
        for (id, docs_id) in types {
            copy_type_docs(&mut resolve.types[id], &docs.types[docs_id]);
        }
    }

    for (id, docs_id) in pairs {
        let docs_interface = &docs.interfaces[docs_id];
        let interface = &mut resolve.interfaces[id];
        copy_docs(&mut interface.docs, &docs_interface.docs);
        for (name, function) in interface.functions.iter_mut() {
            if let Some(d) = docs_interface.functions.get(name) {
                copy_docs(&mut function.docs, &d.docs);
            }
        }
        for (name, type_id) in &interface.types {
            if let Some(d) = docs_interface.types.get(name) {
                copy_type_docs(&mut resolve.types[*type_id], &docs.types[*d]);
            }
        }
    }
}

/// Copies the docs of world-level functions, and pairs up world-level (kebab-named) interfaces and types, which
/// can only be matched through the world.
fn match_world_items(
    items: &mut wit_parser::IndexMap<WorldKey, WorldItem>,
    docs_items: &wit_parser::IndexMap<WorldKey, WorldItem>,
    interfaces: &mut Vec<(InterfaceId, InterfaceId)>,
    types: &mut Vec<(wit_parser::TypeId, wit_parser::TypeId)>,
) {
    for (key, item) in items.iter_mut() {
        let WorldKey::Name(name) = key else { continue };
        let Some(docs_item) = docs_items.get(&WorldKey::Name(name.clone())) else {
            continue;
        };
        match (item, docs_item) {
            (WorldItem::Function(f), WorldItem::Function(d)) => copy_docs(&mut f.docs, &d.docs),
            (WorldItem::Interface { id, .. }, WorldItem::Interface { id: d, .. }) => {
                interfaces.push((*id, *d));
            }
            (WorldItem::Type { id, .. }, WorldItem::Type { id: d, .. }) => types.push((*id, *d)),
            _ => {}
        }
    }
}

/// The interface `name` of the docs package with the same namespace and name as `package`, preferring the same
/// version.
fn find_docs_interface(
    docs: &Resolve,
    package: &wit_parser::PackageName,
    name: &str,
) -> Option<InterfaceId> {
    let mut fallback = None;
    for (_, candidate) in docs.packages.iter() {
        if candidate.name.namespace != package.namespace || candidate.name.name != package.name {
            continue;
        }
        if let Some(id) = candidate.interfaces.get(name) {
            if candidate.name.version == package.version {
                return Some(*id);
            }
            fallback.get_or_insert(*id);
        }
    }
    fallback
}

fn copy_docs(target: &mut Docs, source: &Docs) {
    if !source.is_empty() {
        target.clone_from(source);
    }
}

fn copy_type_docs(target: &mut TypeDef, source: &TypeDef) {
    copy_docs(&mut target.docs, &source.docs);
    match (&mut target.kind, &source.kind) {
        (TypeDefKind::Record(t), TypeDefKind::Record(s)) => {
            for field in &mut t.fields {
                if let Some(d) = s.fields.iter().find(|d| d.name == field.name) {
                    copy_docs(&mut field.docs, &d.docs);
                }
            }
        }
        (TypeDefKind::Variant(t), TypeDefKind::Variant(s)) => {
            for case in &mut t.cases {
                if let Some(d) = s.cases.iter().find(|d| d.name == case.name) {
                    copy_docs(&mut case.docs, &d.docs);
                }
            }
        }
        (TypeDefKind::Enum(t), TypeDefKind::Enum(s)) => {
            for case in &mut t.cases {
                if let Some(d) = s.cases.iter().find(|d| d.name == case.name) {
                    copy_docs(&mut case.docs, &d.docs);
                }
            }
        }
        (TypeDefKind::Flags(t), TypeDefKind::Flags(s)) => {
            for flag in &mut t.flags {
                if let Some(d) = s.flags.iter().find(|d| d.name == flag.name) {
                    copy_docs(&mut flag.docs, &d.docs);
                }
            }
        }
        _ => {}
    }
}

/// Test helpers shared by the `describe`, `schema` and `value` tests: components built from WIT text.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Minimal WASI packages, enough to import from: file name and source.
    pub(crate) const WASI: &[(&str, &str)] = &[
        (
            "cli.wit",
            "package wasi:cli@0.2.6;
             interface environment { get-environment: func() -> list<tuple<string, string>>; }
             interface stdout { flush: func(); }
             interface terminal-input { resource terminal-input; }
             interface exit { exit: func(status: result); }",
        ),
        (
            "filesystem.wit",
            "package wasi:filesystem@0.2.6;
             interface types { resource descriptor; }
             interface preopens { use types.{descriptor}; get-directories: func() -> list<tuple<descriptor, string>>; }",
        ),
        (
            "clocks.wit",
            "package wasi:clocks@0.2.6; interface monotonic-clock { now: func() -> u64; }",
        ),
        (
            "random.wit",
            "package wasi:random@0.2.6; interface random { get-random-u64: func() -> u64; }",
        ),
        (
            "http.wit",
            "package wasi:http@0.2.6; interface outgoing-handler { handle: func(url: string) -> u32; }",
        ),
        (
            "sockets.wit",
            "package wasi:sockets@0.2.6; interface tcp { connect: func(addr: string); }",
        ),
        (
            "io.wit",
            "package wasi:io@0.2.6; interface streams { resource output-stream; }",
        ),
    ];

    /// Named types that [`type_in`] can refer to.
    pub(crate) const TYPES_WIT: &str = "package test:types;
        interface types {
            /// A person.
            record user {
                name: string,
                /// Age in years.
                age: u8,
                nick: option<string>,
            }
            /// A shape.
            variant shape {
                /// A circle of this radius.
                circle(f32),
                rect(tuple<u32, u32>),
                dot,
            }
            /// A color.
            enum color {
                /// Warm.
                red,
                green,
                blue,
            }
            flags perms {
                /// May read.
                read,
                write,
                exec,
            }
            type bytes = list<u8>;
            resource blob;
        }";

    /// A resolve holding the WASI stubs and `wit`, and the world of `wit`.
    pub(crate) fn resolve_world(wit: &str) -> (Resolve, WorldId) {
        let mut resolve = Resolve::default();
        for (path, source) in WASI {
            resolve.push_str(path, source).expect("WASI stub parses");
        }
        let package = resolve.push_str("test.wit", wit).expect("test WIT parses");
        let world = resolve
            .select_world(&[package], None)
            .expect("test WIT has one world");
        (resolve, world)
    }

    /// A component implementing the (single) world of `wit`, with trapping bodies.
    pub(crate) fn component(wit: &str) -> Vec<u8> {
        let (resolve, world) = resolve_world(wit);
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

    /// The description of a component implementing `wit`.
    pub(crate) fn describe(wit: &str) -> ComponentDescription {
        ComponentDescription::from_bytes(&component(wit), None).expect("component describes")
    }

    /// The type `src` (WIT syntax, may name the types of [`TYPES_WIT`]) and the resolve it lives in.
    pub(crate) fn type_in(src: &str) -> (Resolve, Type) {
        let mut resolve = Resolve::default();
        resolve
            .push_str("types.wit", TYPES_WIT)
            .expect("types parse");
        let wit = format!(
            "package test:probe;
             interface probe {{
                 use test:types/types.{{user, shape, color, perms, bytes, blob}};
                 probe: func(x: {src});
             }}"
        );
        resolve.push_str("probe.wit", &wit).expect("probe parses");
        let interface = resolve
            .interfaces
            .iter()
            .find(|(_, i)| i.name.as_deref() == Some("probe"))
            .map(|(_, i)| i)
            .expect("probe interface");
        let ty = interface.functions["probe"].params[0].ty;
        (resolve, ty)
    }

    /// A fresh directory under the system temp dir, removed when dropped.
    pub(crate) struct TempDir(pub(crate) PathBuf);

    impl TempDir {
        pub(crate) fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!("are-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).expect("temp dir");
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    const TEXT_WIT: &str = "package example:text@0.1.0;
        /// Text utilities.
        interface text {
            /// Uppercases `s`.
            upper: func(s: string) -> string;
            resource blob {
                constructor();
                size: func() -> u32;
                open: static func() -> blob;
            }
            take: func(b: blob) -> u32;
            peek: func(b: borrow<blob>);
            make: func() -> list<blob>;
        }
        interface other {
            upper: func(s: string) -> string;
            lower: func(s: string) -> string;
        }
        /// A text tool.
        world tool {
            import wasi:filesystem/preopens@0.2.6;
            import wasi:cli/environment@0.2.6;
            import wasi:cli/stdout@0.2.6;
            import wasi:cli/terminal-input@0.2.6;
            import wasi:cli/exit@0.2.6;
            import wasi:clocks/monotonic-clock@0.2.6;
            import wasi:random/random@0.2.6;
            import wasi:http/outgoing-handler@0.2.6;
            import wasi:sockets/tcp@0.2.6;
            import wasi:io/streams@0.2.6;
            import log: func(msg: string);
            export text;
            export other;
            /// Says hello.
            export hello: func(name: string) -> string;
            export lower: func(s: string) -> string;
        }";

    #[test]
    fn a_section_claiming_more_than_the_file_is_refused_without_allocating_it() {
        // A component header, then a custom section claiming 2 GiB, then a few bytes.
        let mut bytes = vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
        bytes.extend([0x00, 0x80, 0x80, 0x80, 0x80, 0x08, 0x01, b'x']);
        let err = ComponentDescription::from_bytes(&bytes, None).expect_err("refused");
        assert!(matches!(err, DescribeError::Decode(_)), "{err}");
    }

    #[test]
    fn exports_are_listed_with_names_and_reasons() {
        let desc = describe(TEXT_WIT);
        assert_eq!(desc.world_name(), "root");
        assert_eq!(desc.docs_source(), &DocsSource::Unavailable);
        let names: Vec<&str> = desc.exports().iter().map(|f| f.qualified_name()).collect();
        assert_eq!(
            names,
            [
                "hello",
                "lower",
                "text.[constructor]blob",
                "text.[method]blob.size",
                "text.[static]blob.open",
                "text.upper",
                "text.take",
                "text.peek",
                "text.make",
                "other.upper",
                "other.lower",
            ]
        );
        let upper = desc.find("text.upper").expect("found");
        assert_eq!(upper.interface.as_deref(), Some("example:text/text@0.1.0"));
        assert_eq!(upper.short_interface.as_deref(), Some("text"));
        assert_eq!(upper.full_name(), "example:text/text@0.1.0.upper");
        assert_eq!(upper.params, [("s".to_owned(), Type::String)]);
        assert_eq!(upper.result, Some(Type::String));
        assert!(upper.is_tool());
        assert_eq!(desc.find("hello").expect("found").full_name(), "hello");

        let reason = |name: &str| desc.find(name).expect(name).unsupported.clone();
        assert_eq!(
            reason("text.take").as_deref(),
            Some(
                "parameter `b` is a resource handle (own<blob>); resources cannot be passed as JSON"
            )
        );
        assert_eq!(
            reason("text.peek").as_deref(),
            Some(
                "parameter `b` is a borrowed resource handle (borrow<blob>); resources cannot be passed as JSON"
            )
        );
        assert_eq!(
            reason("text.make").as_deref(),
            Some(
                "the result contains a resource handle (own<blob>); resources cannot be passed as JSON"
            )
        );
        assert_eq!(
            reason("text.[method]blob.size").as_deref(),
            Some("it is a method of resource `blob`; resources cannot be passed as JSON")
        );
        assert!(reason("text.[constructor]blob").is_some());
        assert!(reason("text.[static]blob.open").is_some());
        assert_eq!(desc.tools().count(), 5);
    }

    #[test]
    fn lookup_by_every_name_form() {
        let desc = describe(TEXT_WIT);
        let qualified = |q: &str| desc.find(q).map(|f| f.qualified_name().to_owned());
        assert_eq!(qualified("hello").as_deref(), Ok("hello"));
        assert_eq!(qualified("text.upper").as_deref(), Ok("text.upper"));
        assert_eq!(
            qualified("example:text/text@0.1.0.upper").as_deref(),
            Ok("text.upper")
        );
        assert_eq!(
            qualified("example:text/other@0.1.0#upper").as_deref(),
            Ok("other.upper")
        );
        assert_eq!(qualified("size").ok(), None);
        // An exact qualified name wins over bare-name matches in interfaces.
        assert_eq!(qualified("lower").as_deref(), Ok("lower"));
        assert_eq!(
            desc.find("upper"),
            Err(LookupError::Ambiguous {
                query: "upper".into(),
                candidates: vec!["text.upper".into(), "other.upper".into()],
            })
        );
        assert_eq!(
            desc.find("upper").expect_err("ambiguous").to_string(),
            "`upper` is ambiguous; it may be: text.upper, other.upper"
        );
        let Err(LookupError::NotFound { query, available }) = desc.find("nope") else {
            panic!("expected not found");
        };
        assert_eq!(query, "nope");
        assert_eq!(available.len(), desc.exports().len());
        assert!(
            desc.find("text.nope")
                .expect_err("missing")
                .to_string()
                .starts_with("no exported function `text.nope`; available: hello, lower, text.[constructor]blob,")
        );
    }

    #[test]
    fn clashing_short_interface_names_get_full_qualified_names() {
        let desc = describe(
            "package example:a@1.0.0;
             package example:b@2.0.0 { interface util { run: func(); } }
             interface util { run: func(); }
             world w {
                 export util;
                 export example:b/util@2.0.0;
             }",
        );
        let names: Vec<&str> = desc.exports().iter().map(|f| f.qualified_name()).collect();
        assert_eq!(
            names,
            ["example-a-util-1-0-0.run", "example-b-util-2-0-0.run"]
        );
        assert!(matches!(
            desc.find("util.run"),
            Err(LookupError::Ambiguous { candidates, .. }) if candidates.len() == 2
        ));
        assert_eq!(
            desc.find("example:b/util@2.0.0#run")
                .expect("found")
                .qualified_name(),
            "example-b-util-2-0-0.run"
        );
    }

    #[test]
    fn imports_are_grouped_by_capability() {
        let desc = describe(TEXT_WIT);
        let imports: Vec<(&str, CapabilityKind)> = desc
            .imports()
            .iter()
            .map(|i| (i.name.as_str(), i.capability))
            .collect();
        assert!(imports.contains(&("wasi:filesystem/preopens@0.2.6", CapabilityKind::Fs)));
        assert!(imports.contains(&("wasi:filesystem/types@0.2.6", CapabilityKind::Fs)));
        assert!(imports.contains(&("wasi:cli/environment@0.2.6", CapabilityKind::Env)));
        assert!(imports.contains(&("wasi:cli/stdout@0.2.6", CapabilityKind::Stdio)));
        assert!(imports.contains(&("wasi:cli/terminal-input@0.2.6", CapabilityKind::Stdio)));
        assert!(imports.contains(&("wasi:cli/exit@0.2.6", CapabilityKind::Io)));
        assert!(imports.contains(&("wasi:io/streams@0.2.6", CapabilityKind::Io)));
        assert!(imports.contains(&("log", CapabilityKind::Other)));
        let preopens = desc
            .imports()
            .iter()
            .find(|i| i.name == "wasi:filesystem/preopens@0.2.6")
            .expect("preopens");
        assert_eq!(preopens.functions, ["get-directories"]);
        assert_eq!(
            desc.capabilities().into_iter().collect::<Vec<_>>(),
            [
                CapabilityKind::Fs,
                CapabilityKind::Env,
                CapabilityKind::Clocks,
                CapabilityKind::Random,
                CapabilityKind::Stdio,
                CapabilityKind::Http,
                CapabilityKind::Sockets,
            ]
        );
    }

    /// Writes `TEXT_WIT` plus the WASI stubs as a WIT directory with `deps/`.
    fn text_wit_dir(dir: &Path) {
        let deps = dir.join("deps");
        std::fs::create_dir_all(&deps).expect("deps dir");
        std::fs::write(dir.join("tool.wit"), TEXT_WIT).expect("write wit");
        for (file, source) in WASI {
            std::fs::write(deps.join(file), source).expect("write dep");
        }
    }

    #[test]
    fn embedded_docs_round_trip() {
        let dir = TempDir::new("embed-docs");
        text_wit_dir(&dir.0);
        let plain = component(TEXT_WIT);
        let embedded = embed_wit_docs(&plain, &dir.0).expect("embeds");
        let twice = embed_wit_docs(&embedded, &dir.0).expect("embeds again");
        assert_eq!(twice, embedded, "embedding again replaces the section");
        let sections = custom_sections(&twice).expect("sections");
        assert_eq!(
            sections
                .iter()
                .filter(|s| s.name == WIT_DOCS_SECTION)
                .count(),
            1
        );

        let engine = wasmtime::Engine::default();
        wasmtime::component::Component::new(&engine, &embedded).expect("wasmtime loads it");

        let desc = ComponentDescription::from_bytes(&embedded, None).expect("describes");
        assert_eq!(desc.docs_source(), &DocsSource::Embedded);
        assert_eq!(desc.world_name(), "tool");
        assert_eq!(desc.package_name(), Some("example:text@0.1.0"));
        assert_eq!(desc.world_docs(), Some("A text tool."));
        assert_eq!(
            desc.find("text.upper").expect("found").docs.as_deref(),
            Some("Uppercases `s`.")
        );
        assert_eq!(
            desc.find("hello").expect("found").docs.as_deref(),
            Some("Says hello.")
        );
        assert_eq!(
            desc.interface_docs("example:text/text@0.1.0"),
            Some("Text utilities.")
        );

        // A --wit directory gives the same docs.
        let from_dir = ComponentDescription::from_bytes(&plain, Some(&dir.0)).expect("describes");
        assert_eq!(
            from_dir.docs_source(),
            &DocsSource::WitDir {
                path: dir.0.clone()
            }
        );
        assert_eq!(from_dir.world_name(), "tool");
        assert_eq!(
            from_dir.find("hello").expect("found").docs.as_deref(),
            Some("Says hello.")
        );
    }

    #[test]
    fn docs_match_across_versions_and_world_level_items() {
        let wit = "package example:text@0.1.0;
            world tool {
                /// Inline helpers.
                export helpers: interface {
                    /// Trims.
                    trim: func(s: string) -> string;
                }
                /// Counts.
                export count: func(s: string) -> u32;
            }";
        let dir = TempDir::new("versioned-docs");
        std::fs::write(dir.0.join("tool.wit"), wit.replace("@0.1.0", "@0.2.0")).expect("write wit");
        let desc =
            ComponentDescription::from_bytes(&component(wit), Some(&dir.0)).expect("describes");
        assert_eq!(desc.world_name(), "tool");
        assert_eq!(desc.package_name(), Some("example:text@0.2.0"));
        let trim = desc.find("helpers.trim").expect("found");
        assert_eq!(trim.interface.as_deref(), Some("helpers"));
        assert_eq!(trim.docs.as_deref(), Some("Trims."));
        assert_eq!(desc.interface_docs("helpers"), Some("Inline helpers."));
        assert_eq!(
            desc.find("count").expect("found").docs.as_deref(),
            Some("Counts.")
        );
    }

    #[test]
    fn type_docs_reach_schemas() {
        let wit = format!(
            "{TYPES_WIT}
             world w {{
                 use types.{{user}};
                 export types;
                 export greet: func(u: user) -> string;
             }}"
        );
        let dir = TempDir::new("type-docs");
        std::fs::write(dir.0.join("w.wit"), &wit).expect("write wit");
        let plain = component(&wit);
        let desc = ComponentDescription::from_bytes(&plain, None).expect("describes");
        let schema = schema::input_schema(&desc, desc.find("greet").expect("found"));
        assert_eq!(schema["properties"]["u"]["title"], "user");
        assert!(schema["properties"]["u"].get("description").is_none());

        let embedded = embed_wit_docs(&plain, &dir.0).expect("embeds");
        let desc = ComponentDescription::from_bytes(&embedded, None).expect("describes");
        let schema = schema::input_schema(&desc, desc.find("greet").expect("found"));
        let user = &schema["properties"]["u"];
        assert_eq!(user["title"], "user");
        assert_eq!(user["description"], "A person.");
        assert_eq!(user["properties"]["age"]["description"], "Age in years.");
    }

    #[test]
    fn inspect_json_lists_tools_and_imports() {
        let desc = describe(TEXT_WIT);
        let json = serde_json::to_value(&desc).expect("serializes");
        assert_eq!(json["world"], "root");
        assert_eq!(json["docs_source"], json!({"kind": "none"}));
        let hello = &json["tools"][0];
        assert_eq!(hello["qualified_name"], "hello");
        assert_eq!(hello["input_schema"]["required"], json!(["name"]));
        assert_eq!(hello["output_schema"]["type"], "string");
        let take = json["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .find(|t| t["qualified_name"] == "text.take")
            .expect("take");
        assert!(take.get("input_schema").is_none());
        assert!(
            take["unsupported"]
                .as_str()
                .expect("reason")
                .contains("own<blob>")
        );
        assert_eq!(
            json["imports"]["fs"][0]["name"],
            "wasi:filesystem/types@0.2.6"
        );
        assert_eq!(json["imports"]["io"].as_array().map(Vec::len), Some(2));
        assert_eq!(json["imports"]["other"][0]["name"], "log");
        assert_eq!(json["imports"]["other"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn rejects_what_is_not_a_component() {
        let err = |bytes: &[u8]| {
            ComponentDescription::from_bytes(bytes, None)
                .expect_err("rejected")
                .to_string()
        };
        assert!(err(b"").contains("magic number"));
        assert!(err(b"\0asm\x01\0\0\0").contains("core WebAssembly module"));
        let (resolve, world) = resolve_world(TEXT_WIT);
        let package = resolve.worlds[world].package.expect("package");
        let wit_package = wit_component::encode(&resolve, package).expect("encodes");
        assert!(err(&wit_package).contains("encoded WIT package"));
        // A truncated component fails cleanly.
        let component = component(TEXT_WIT);
        assert!(err(&component[..component.len() / 2]).starts_with("cannot decode"));
        let missing = Path::new("/nonexistent/are-wit");
        assert!(
            ComponentDescription::from_bytes(&component, Some(missing))
                .expect_err("missing dir")
                .to_string()
                .starts_with("cannot load WIT from /nonexistent/are-wit")
        );
    }
}

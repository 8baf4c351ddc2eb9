//! Host bindings of the `are:agent` WIT package (`wit/agent/agent.wit`).
#![allow(missing_docs)] // generated code

wasmtime::component::bindgen!({
    path: "../../wit/agent",
    world: "agent-with-lifecycle",
    imports: { default: async | trappable },
    exports: { default: async },
});

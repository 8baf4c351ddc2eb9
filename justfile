# Shortcuts; the README commands work without `just`.

# The demo: build the example tools, call them, show grants enforced and hostile code stopped.
demo:
    cargo run --release -p are-cli -- demo

# Every test: installs the pinned MCP interop tools into .tools/, then cargo test --workspace.
test:
    scripts/test

# What CI runs: fmt, clippy, tests.
ci:
    .ci/run

# Build the example tools to target/guests.
guests:
    cargo run -p are-cli -- build example-tools --target-dir target/guests

fmt:
    cargo fmt --all
    cargo fmt --manifest-path example-tools/Cargo.toml --all

clippy:
    cargo clippy --workspace --all-targets -- -D warnings
    cargo clippy --manifest-path example-tools/Cargo.toml --target wasm32-wasip2 --target-dir target/guests -- -D warnings

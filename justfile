# Shortcuts; the README commands are plain cargo and work without `just`.

# The demo: build the example tools, call them, show grants enforced and hostile code stopped.
demo:
    cargo run --release -p are-cli -- demo

# Every test (builds the guest components first).
test:
    cargo test --workspace

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

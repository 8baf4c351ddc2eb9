//! The native baselines of the compute figures: SHA-256 of the data the guest (`example-tools/hash`,
//! `sha256-repeat`) hashes, run natively.
//!
//! [`sha256_portable`] is the baseline the metered-vs-native ratios divide by, so it must run the same Rust
//! code as the guest: the ratio should measure metering and the wasm compiler, not two implementations. Both
//! the guest and this baseline hash with the published `hmac-sha256` crate, pinned to the same version in both
//! workspaces (`host/bench/Cargo.toml`, `example-tools/Cargo.toml`; a test below checks both lock files). It is
//! portable Rust with no architecture-specific path (no SIMD, no SHA instructions, no runtime detection), so
//! the native build and the wasm32 build compile the same source.
//!
//! Why not the `sha2` crate: natively it uses the CPU's SHA instructions, and on wasm32 its portable backend.
//! Forcing that backend natively takes its `force-soft` feature, which cargo's feature unification would turn
//! on for the `are` binary's own hashing (pins, cache keys, audit chain) too; building the baseline as a
//! separate program in a workspace of its own would avoid that, at the cost of a nested cargo build and a
//! child process per measurement. A portable crate in both places is simpler and compares identical code.
//!
//! [`sha256_sha2`] is the `sha2` crate as the host runs it (with SHA instructions where the CPU has them): what
//! the same work costs natively at best (`compute.native.sha2`).

use are_policy::Limits;
use are_policy::common::hex;
use serde_json::{Value, json};
use sha2::Digest as _;
use std::time::Duration;

/// Bytes of data the compute guest hashes, `times` times over.
pub const COMPUTE_CHUNK: usize = 64 << 10;

/// One compute workload, shared by `are bench` and the criterion benches: the data, the arguments of
/// `hash.sha256-repeat`, the limits it runs under, and the digest it must return.
pub struct ComputeCase {
    /// [`COMPUTE_CHUNK`] bytes of a fixed pattern.
    pub data: Vec<u8>,
    /// How many times the data is hashed.
    pub times: u32,
    /// The guest's arguments: the data (base64) and `times`.
    pub args: Value,
    /// No fuel limit, a long timeout, and room for the data's component values.
    pub limits: Limits,
    /// The digest, hex, from [`sha256_portable`].
    pub expected: String,
}

impl ComputeCase {
    /// The workload that hashes the data `times` times.
    pub fn new(times: u32) -> ComputeCase {
        let data: Vec<u8> = (0..COMPUTE_CHUNK).map(|i| (i * 31 + 7) as u8).collect();
        let args = json!({
            "data": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &data),
            "times": times,
        });
        let limits = Limits {
            fuel: None,
            timeout: Duration::from_secs(120),
            // 64 KiB of bytes are 64 Ki component values, ~40 bytes each on the host (see `max_output`).
            max_output: 8 << 20,
            ..Limits::default()
        };
        let expected = hex(&sha256_portable(&data, times));
        ComputeCase {
            data,
            times,
            args,
            limits,
            expected,
        }
    }

    /// The bytes hashed in all.
    pub fn total_bytes(&self) -> u64 {
        COMPUTE_CHUNK as u64 * u64::from(self.times)
    }
}

/// SHA-256 of `data` repeated `times` times, with the portable code the guest runs.
pub fn sha256_portable(data: &[u8], times: u32) -> [u8; 32] {
    let mut hasher = hmac_sha256::Hash::new();
    for _ in 0..times {
        hasher.update(data);
    }
    hasher.finalize()
}

/// SHA-256 of `data` repeated `times` times, with the `sha2` crate as it runs on this machine.
pub fn sha256_sha2(data: &[u8], times: u32) -> [u8; 32] {
    let mut hasher = sha2::Sha256::new();
    for _ in 0..times {
        hasher.update(data);
    }
    hasher.finalize().into()
}

/// Whether this CPU has the SHA-256 instructions that the `sha2` crate uses when it finds them.
pub fn cpu_has_sha_instructions() -> bool {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        std::arch::is_x86_feature_detected!("sha")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("sha2")
    }
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_baselines_agree_at_every_length() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 200, 300] {
            for times in [0, 1, 3] {
                assert_eq!(
                    sha256_portable(&data[..len], times),
                    sha256_sha2(&data[..len], times),
                    "length {len}, {times} times"
                );
            }
        }
        let hex: String = sha256_portable(b"abc", 1)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    /// The version of `package` in the lock file at `path` (relative to the repository root).
    fn locked_version(path: &str, package: &str) -> String {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let lock = std::fs::read_to_string(root.join(path)).expect("the lock file");
        let lock: toml::Value = toml::from_str(&lock).expect("a TOML lock file");
        let versions: Vec<&str> = lock["package"]
            .as_array()
            .expect("packages")
            .iter()
            .filter(|p| p["name"].as_str() == Some(package))
            .map(|p| p["version"].as_str().expect("a version"))
            .collect();
        assert_eq!(versions.len(), 1, "{path} holds {package} {versions:?}");
        versions[0].to_string()
    }

    #[test]
    fn the_guest_and_the_baseline_lock_the_same_portable_crate() {
        assert_eq!(
            locked_version("Cargo.lock", "hmac-sha256"),
            locked_version("example-tools/Cargo.lock", "hmac-sha256"),
            "the native baseline must run the code the guest runs"
        );
    }
}

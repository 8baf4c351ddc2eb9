//! The `hash` tool: SHA-256 of text, bytes or files, and base64 (see `wit/world.wit`).

are_guest_sdk::generate!({ world: "hash-tool" });

use std::fs::File;
use std::io::{self, Read};

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use exports::example::hash::hash::{Alphabet, Digest, Encodings, Guest, Input};
// Portable SHA-256 (no architecture-specific code): `are bench` runs this same crate natively as the baseline
// of its metered-vs-native figures (host/bench/src/native.rs), so keep the two at one version.
use hmac_sha256::Hash as Sha256;

/// Standard alphabet, padding optional: what `base64-decode` uses after mapping URL-safe characters.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

struct Hash;

impl Guest for Hash {
    fn sha256(input: Input, encodings: Encodings) -> Result<Digest, String> {
        if encodings.is_empty() {
            return Err("no encoding asked for: set `hex`, `base64` or both".to_owned());
        }
        let (digest, size) = match input {
            Input::Text(text) => (Sha256::hash(text.as_bytes()), text.len() as u64),
            Input::Bytes(bytes) => (Sha256::hash(&bytes), bytes.len() as u64),
            Input::File(path) => {
                sha256_file(&path).map_err(|error| format!("cannot read `{path}`: {error}"))?
            }
        };
        Ok(Digest {
            hex: encodings.contains(Encodings::HEX).then(|| hex(&digest)),
            base64: encodings
                .contains(Encodings::BASE64)
                .then(|| STANDARD.encode(digest)),
            size,
        })
    }

    fn sha256_hex(text: String) -> String {
        hex(&Sha256::hash(text.as_bytes()))
    }

    fn sha256_repeat(data: Vec<u8>, times: u32) -> String {
        hex(&sha256_repeat(&data, times))
    }

    fn base64_encode(data: Vec<u8>, alphabet: Option<Alphabet>) -> String {
        match alphabet.unwrap_or(Alphabet::Standard) {
            Alphabet::Standard => STANDARD.encode(data),
            Alphabet::UrlSafe => URL_SAFE_NO_PAD.encode(data),
        }
    }

    fn base64_decode(text: String) -> Result<Vec<u8>, String> {
        base64_decode(&text)
    }
}

export!(Hash);

/// Hashes a file in chunks, so that its size is not limited by the tool's memory.
fn sha256_file(path: &str) -> io::Result<([u8; 32], u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 64 * 1024];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok((hasher.finalize(), size));
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
}

/// SHA-256 of `data` repeated `times` times.
fn sha256_repeat(data: &[u8], times: u32) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for _ in 0..times {
        hasher.update(data);
    }
    hasher.finalize()
}

fn hex(digest: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let normalized: String = text
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    LENIENT
        .decode(normalized.as_bytes())
        .map_err(|error| format!("not base64: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digests_in_both_encodings() {
        let digest = Hash::sha256(Input::Text("abc".to_owned()), Encodings::all()).unwrap();
        assert_eq!(
            digest.hex.unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            digest.base64.unwrap(),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
        assert_eq!(digest.size, 3);

        let bytes = Hash::sha256(Input::Bytes(Vec::new()), Encodings::HEX).unwrap();
        assert_eq!(
            (bytes.hex.as_deref(), bytes.base64),
            (Some(EMPTY_SHA256), None)
        );
        assert_eq!(Hash::sha256_hex(String::new()), EMPTY_SHA256);
    }

    #[test]
    fn hashes_files() {
        let path = std::env::temp_dir().join(format!("hash-tool-test-{}", std::process::id()));
        std::fs::write(&path, vec![7u8; 200_000]).unwrap();
        let input = Input::File(path.to_str().unwrap().to_owned());
        let digest = Hash::sha256(input, Encodings::HEX).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(digest.hex.unwrap(), hex(&Sha256::hash(&[7u8; 200_000])));
        assert_eq!(digest.size, 200_000);

        let error =
            Hash::sha256(Input::File("/no/such/file".to_owned()), Encodings::HEX).unwrap_err();
        assert!(error.starts_with("cannot read `/no/such/file`"), "{error}");
        assert!(Hash::sha256(Input::Text(String::new()), Encodings::empty()).is_err());
    }

    #[test]
    fn hashes_repeated_data_without_building_it() {
        let data = b"0123456789abcdef".repeat(64);
        let whole = data.repeat(3);
        assert_eq!(sha256_repeat(&data, 3), Sha256::hash(&whole));
        assert_eq!(Hash::sha256_repeat(data, 0), EMPTY_SHA256);
    }

    #[test]
    fn base64_round_trips() {
        let data = vec![0xfb, 0xff, 0x00, 0x41];
        assert_eq!(Hash::base64_encode(data.clone(), None), "+/8AQQ==");
        assert_eq!(
            Hash::base64_encode(data.clone(), Some(Alphabet::UrlSafe)),
            "-_8AQQ"
        );
        assert_eq!(base64_decode("+/8AQQ==").unwrap(), data);
        assert_eq!(base64_decode("-_8A QQ\n").unwrap(), data);
        assert!(base64_decode("a*b").unwrap_err().starts_with("not base64"));
    }
}

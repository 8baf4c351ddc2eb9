//! Hostile: floods stdout, stderr and its return values (see `wit/world.wit`).

are_guest_sdk::generate!({ world: "hostile" });

use std::io::{self, Write};

const MIB: usize = 1024 * 1024;

/// One line of filler, 64 bytes with the newline.
const LINE: &[u8; 64] = b"hostile-output floods this stream with the same line, for ever!\n";

struct Output;

impl exports::hostile::output::attack::Guest for Output {
    fn stdout_flood(mib: u32) -> Result<u64, String> {
        flood(&mut io::stdout().lock(), mib)
    }

    fn stderr_flood(mib: u32) -> Result<u64, String> {
        flood(&mut io::stderr().lock(), mib)
    }

    fn huge_string(mib: u32) -> String {
        let lines = mib as usize * MIB / LINE.len();
        let mut text = String::with_capacity(lines * LINE.len());
        for _ in 0..lines {
            text.push_str(std::str::from_utf8(LINE).expect("the line is ASCII"));
        }
        text
    }

    fn huge_bytes(mib: u32) -> Vec<u8> {
        (0..mib as usize * MIB).map(|i| i as u8).collect()
    }

    fn many_strings(count: u32) -> Vec<String> {
        (0..count).map(|i| format!("s{i}")).collect()
    }

    fn forge_terminal(text: String) {
        let mut stdout = io::stdout();
        let _ = stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush());
        let _ = io::stderr().write_all(text.as_bytes());
    }
}

export!(Output);

/// Writes 64 KiB blocks until `mib` MiB are out (never, when `mib` is 0) or a write fails.
fn flood(out: &mut impl Write, mib: u32) -> Result<u64, String> {
    let block: Vec<u8> = LINE.iter().copied().cycle().take(64 * 1024).collect();
    let target = u64::from(mib) * MIB as u64;
    let mut written = 0u64;
    while mib == 0 || written < target {
        if let Err(error) = out.write_all(&block) {
            return Err(format!("wrote {written} bytes, then: {error}"));
        }
        written += block.len() as u64;
    }
    out.flush()
        .map_err(|error| format!("wrote {written} bytes, then flushing: {error}"))?;
    Ok(written)
}

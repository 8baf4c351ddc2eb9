//! `are bench`: the one-run table of figures (in-process, MCP load, agents) in its quick mode, and the
//! compute-bound guest function the metering figures use.

use crate::common::{call, load, run};
use serde_json::{Value, json};

/// Every figure `are bench` measures, by id.
const FIGURES: &[&str] = &[
    "compile",
    "load.cache",
    "process.cold_start",
    "instantiate.on_demand",
    "instantiate.pooling",
    "call.fresh.on_demand",
    "call.fresh.pooling",
    "call.warm",
    "call.fresh.throughput",
    "call.payload_1mib",
    "audit.off",
    "audit.on",
    "compute.wasm.none",
    "compute.wasm.epoch",
    "compute.wasm.fuel_epoch",
    "compute.native.portable",
    "compute.native.sha2",
    "runaway.stopped",
    "agents.activation",
    "agents.message_warm",
    "agents.messages_per_s",
    "agents.memory_per_idle",
    "agents.idle_in_budget",
];

/// Figures that are a value with a unit rather than latency percentiles.
const VALUES: &[&str] = &[
    "call.fresh.throughput",
    "agents.messages_per_s",
    "agents.memory_per_idle",
    "agents.idle_in_budget",
];

const RATIOS: &[&str] = &[
    "metered_vs_native.fuel_epoch",
    "metered_vs_native.epoch",
    "metered_vs_native.none",
    "pooling_vs_on_demand.instantiate",
    "pooling_vs_on_demand.call",
    "mcp_vs_inproc.stdio",
    "mcp_vs_inproc.http",
    "audit.on_vs_off",
];

const TARGETS: &[&str] = &[
    "call.fresh.p50",
    "call.fresh.throughput",
    "metered.fuel_epoch",
    "metered.epoch",
    "runaway.stopped",
    "process.cold_start",
    "agents.idle_in_budget",
];

fn by_id<'a>(list: &'a Value, id: &str) -> &'a Value {
    list.as_array()
        .expect("a list")
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no `{id}` in {list:#}"))
}

#[test]
fn quick_bench_reports_every_figure_ratio_and_target() {
    let tools = are_tests::guest("text")
        .wasm_path()
        .parent()
        .expect("the guests' directory")
        .to_str()
        .expect("UTF-8 path");
    let out = run(&["bench", "--quick", "--json", "--tools-dir", tools]);
    assert_eq!(out.code, Some(0), "are bench failed:\n{}", out.stderr);
    let doc = out.json();
    assert_eq!(doc["quick"], true);
    assert!(doc["machine"]["cpus"].as_u64().unwrap() >= 1, "{doc:#}");
    assert!(doc["load_average"]["before"].is_array(), "{doc:#}");

    for id in FIGURES {
        let f = by_id(&doc["figures"], id);
        assert!(f["samples"].as_u64().unwrap() >= 1, "{f:#}");
        assert!(f["label"].as_str().is_some_and(|l| !l.is_empty()), "{f:#}");
        if VALUES.contains(id) {
            assert!(f["value"].as_f64().unwrap() > 0.0, "{f:#}");
            assert!(f["unit"].is_string(), "{f:#}");
        } else {
            let (p50, p99) = (f["p50_us"].as_f64().unwrap(), f["p99_us"].as_f64().unwrap());
            assert!(p50 > 0.0 && p99 >= p50, "{f:#}");
        }
    }
    // The runaway loop ends at its timeout, not before.
    let runaway = by_id(&doc["figures"], "runaway.stopped");
    assert!(
        runaway["p50_us"].as_f64().unwrap() >= 20_000.0,
        "{runaway:#}"
    );

    for id in RATIOS {
        let r = by_id(&doc["ratios"], id);
        assert!(r["ratio"].as_f64().unwrap() > 0.0, "{r:#}");
    }
    for id in TARGETS {
        let t = by_id(&doc["targets"], id);
        assert!(t["met"].is_boolean() && t["goal"].is_string(), "{t:#}");
    }

    // MCP load: both transports, 1, 16 and 64 clients, in a session and stateless, against `are serve` (with
    // and without hostile calls) and against the floor; no benign failure; a floor ratio for every calm run.
    let runs = doc["mcp"]["runs"].as_array().expect("mcp runs");
    let ratios = doc["mcp"]["floor_ratios"].as_array().expect("floor ratios");
    for transport in ["stdio", "http"] {
        for clients in [1, 16, 64] {
            for protocol in ["session", "stateless"] {
                for (server, load) in [("are", "none"), ("are", "hostile"), ("floor", "none")] {
                    let r = runs
                        .iter()
                        .find(|r| {
                            r["server"] == server
                                && r["protocol"] == protocol
                                && r["transport"] == transport
                                && r["clients"] == clients
                                && r["load"] == load
                        })
                        .unwrap_or_else(|| {
                            panic!("no {server} {protocol} {transport} run with {clients} clients ({load})")
                        });
                    assert!(r["calls"].as_u64().unwrap() > 0, "{r:#}");
                    assert_eq!(r["errors"], 0, "{r:#}");
                    assert!(r["latency_us"]["p99_us"].as_f64().unwrap() > 0.0, "{r:#}");
                }
                let ratio = ratios
                    .iter()
                    .find(|f| {
                        f["transport"] == transport
                            && f["clients"] == clients
                            && f["protocol"] == protocol
                    })
                    .unwrap_or_else(|| {
                        panic!("no floor ratio for {protocol} {transport} {clients}")
                    });
                assert!(ratio["calls_per_s"].as_f64().unwrap() > 0.0, "{ratio:#}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sha256_repeat_hashes_repeated_data_like_sha256_of_the_whole() {
    use sha2::Digest as _;
    let hash = load("hash", "");
    let data = b"are bench".repeat(1000);
    let times = 37u32;
    let whole = data.repeat(times as usize);
    let expected = are_policy::common::hex(&sha2::Sha256::digest(&whole));
    let report = call(
        &hash,
        "sha256-repeat",
        json!({ "data": data.iter().map(|b| u32::from(*b)).collect::<Vec<_>>(), "times": times }),
    )
    .await;
    assert_eq!(report.outcome.expect("call").value, expected);
    let report = call(&hash, "sha256-repeat", json!({ "data": [], "times": 0 })).await;
    assert_eq!(
        report.outcome.expect("call").value,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

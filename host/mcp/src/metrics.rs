//! Prometheus metrics of `are serve`: calls by tool and outcome, errors by kind, fuel, a duration histogram per
//! tool, and the number of session instances, rendered in the text exposition format at `/metrics`.

use are_runtime::catalog::ToolCall;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolOutcome {
    tool: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabel {
    tool: String,
}

/// Counters and histograms of tool calls.
pub struct Metrics {
    registry: Registry,
    calls: Family<ToolOutcome, Counter>,
    errors: Family<ToolOutcome, Counter>,
    fuel: Family<ToolLabel, Counter>,
    duration: Family<ToolLabel, Histogram, fn() -> Histogram>,
    session_instances: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let calls = Family::<ToolOutcome, Counter>::default();
        let errors = Family::<ToolOutcome, Counter>::default();
        let fuel = Family::<ToolLabel, Counter>::default();
        // 10 µs to ~42 s in 23 doubling buckets.
        let duration: Family<ToolLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.000_01, 2.0, 23)));
        let mut registry = Registry::with_prefix("are");
        registry.register(
            "tool_calls",
            "Tool calls by tool and outcome (ok, err, or a failure kind)",
            calls.clone(),
        );
        registry.register(
            "tool_errors",
            "Failed tool calls by tool and failure kind",
            errors.clone(),
        );
        registry.register(
            "tool_fuel_consumed",
            "Fuel consumed by tool calls",
            fuel.clone(),
        );
        registry.register(
            "tool_call_duration_seconds",
            "Wall time of tool calls",
            duration.clone(),
        );
        let session_instances = Gauge::default();
        registry.register(
            "session_instances",
            "Instances kept for MCP sessions (components with mode = \"session\")",
            session_instances.clone(),
        );
        Metrics {
            registry,
            calls,
            errors,
            fuel,
            duration,
            session_instances,
        }
    }
}

impl Metrics {
    /// Count one call of `tool` (one refused as busy too) and what it cost.
    pub fn record(&self, tool: &str, call: &ToolCall, elapsed: Duration) {
        self.count(tool, call.outcome());
        let Some(stats) = &call.stats else {
            return;
        };
        let label = ToolLabel {
            tool: tool.to_string(),
        };
        if let Some(fuel) = stats.fuel_consumed {
            self.fuel.get_or_create(&label).inc_by(fuel);
        }
        self.duration
            .get_or_create(&label)
            .observe(elapsed.as_secs_f64());
    }

    fn count(&self, tool: &str, outcome: &str) {
        let labels = ToolOutcome {
            tool: tool.to_string(),
            outcome: outcome.to_string(),
        };
        self.calls.get_or_create(&labels).inc();
        if outcome != "ok" && outcome != "err" {
            self.errors.get_or_create(&labels).inc();
        }
    }

    /// Record how many session instances exist now.
    pub fn set_session_instances(&self, n: usize) {
        self.session_instances
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

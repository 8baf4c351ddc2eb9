//! What the server reports: log notifications at the level the client sets, `/healthz` and `/metrics`.

use super::{Serve, Transport, http_request, sample, text_and_loop};
use rmcp::model::{LoggingLevel, SetLevelRequestParams};
use serde_json::json;

over_both_transports!(log_notifications_follow_the_level,);

async fn log_notifications_follow_the_level(transport: Transport) {
    let serve = Serve::for_policy(transport, &text_and_loop()).await;
    let mut client = serve.connect().await;
    // At `error`, a failed call (logged as a warning) sends nothing…
    client
        .service
        .set_level(SetLevelRequestParams::new(LoggingLevel::Error))
        .await
        .expect("logging/setLevel");
    client
        .tool_error("text.find", json!({"pattern": "(", "text": "x"}))
        .await;
    // …at `info` it does.
    client
        .service
        .set_level(SetLevelRequestParams::new(LoggingLevel::Info))
        .await
        .expect("logging/setLevel");
    client.tool_error("loop.spin", json!({})).await;
    let log = client.next_log().await;
    assert_eq!(log.level, LoggingLevel::Warning);
    assert_eq!(log.logger.as_deref(), Some("are"));
    assert_eq!(log.data["tool"], "loop.spin", "{:?}", log.data);
    assert_eq!(log.data["kind"], "fuel_exhausted");
    let message = log.data["message"].as_str().unwrap_or_default();
    assert!(message.contains("out of fuel"), "{message}");
    // Successful calls log nothing.
    client.ok("text.slugify", json!({"text": "fine"})).await;
    client
        .tool_error(
            "text.replace",
            json!({"pattern": ")", "text": "x", "replacement": ""}),
        )
        .await;
    let log = client.next_log().await;
    assert_eq!(log.data["tool"], "text.replace");
    assert_eq!(log.data["kind"], "tool_error");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_health_and_metrics() {
    let serve = Serve::for_policy(Transport::Http, &text_and_loop()).await;
    let (status, _, body) = http_request(serve.addr(), "GET", "/healthz", &[], None).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let client = serve.connect().await;
    client.ok("text.word-count", json!({"text": "a b"})).await;
    client.ok("text.word-count", json!({"text": "c"})).await;
    client
        .tool_error("text.find", json!({"pattern": "(", "text": "x"}))
        .await;
    client.tool_error("loop.spin", json!({})).await;
    let (status, head, metrics) = http_request(serve.addr(), "GET", "/metrics", &[], None).await;
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    let count = |name: &str| {
        sample(&metrics, name).unwrap_or_else(|| panic!("no sample {name} in\n{metrics}"))
    };
    assert_eq!(
        count(r#"are_tool_calls_total{tool="text.word-count",outcome="ok"}"#),
        2.0
    );
    assert_eq!(
        count(r#"are_tool_calls_total{tool="text.find",outcome="err"}"#),
        1.0
    );
    assert_eq!(
        count(r#"are_tool_calls_total{tool="loop.spin",outcome="fuel_exhausted"}"#),
        1.0
    );
    assert_eq!(
        count(r#"are_tool_errors_total{tool="loop.spin",outcome="fuel_exhausted"}"#),
        1.0
    );
    assert!(count(r#"are_tool_fuel_consumed_total{tool="text.word-count"}"#) > 0.0);
    assert!(count(r#"are_tool_fuel_consumed_total{tool="loop.spin"}"#) >= 1_000_000.0);
    assert_eq!(
        count(r#"are_tool_call_duration_seconds_count{tool="text.word-count"}"#),
        2.0
    );
    assert!(count(r#"are_tool_call_duration_seconds_sum{tool="text.word-count"}"#) > 0.0);
    assert_eq!(
        count(r#"are_tool_call_duration_seconds_bucket{le="+Inf",tool="text.word-count"}"#),
        2.0,
    );
    assert!(metrics.contains("# TYPE are_tool_call_duration_seconds histogram"));
    assert_eq!(count("are_session_instances"), 0.0);
    client.close().await;
}

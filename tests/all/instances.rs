//! Instances kept across calls (what MCP session mode uses): state persists between calls on one instance,
//! never across fresh-instance calls, and an instance that failed is not reused.

use crate::common::{call_ok, engine, load};
use are_policy::Limits;
use are_runtime::invoke::CallError;
use serde_json::json;

#[tokio::test]
async fn state_persists_on_one_instance_and_not_across_fresh_calls() {
    let kv = load("kv", "");
    let limits = Limits::default();
    let mut instance = kv
        .instantiate(engine(), &limits)
        .await
        .expect("instantiate");
    for (key, value, count) in [("a", "1", 1), ("b", "2", 2), ("a", "3", 2)] {
        let report = instance
            .call(
                &kv,
                engine(),
                "kv.set",
                &json!({"key": key, "value": value}),
                &limits,
            )
            .await;
        assert_eq!(report.outcome.expect("set").value, json!(count));
    }
    let report = instance
        .call(&kv, engine(), "kv.get", &json!({"key": "a"}), &limits)
        .await;
    assert_eq!(report.outcome.expect("get").value, json!("3"));
    let report = instance
        .call(&kv, engine(), "kv.keys", &json!(null), &limits)
        .await;
    assert_eq!(report.outcome.expect("keys").value, json!(["a", "b"]));
    assert!(!instance.is_dead());

    // A fresh instance per call starts empty every time.
    call_ok(&kv, "kv.set", json!({"key": "a", "value": "1"})).await;
    assert_eq!(
        call_ok(&kv, "kv.get", json!({"key": "a"})).await,
        json!(null)
    );
    assert_eq!(
        call_ok(&kv, "kv.increment", json!({"name": "n"})).await,
        json!(1)
    );
    assert_eq!(
        call_ok(&kv, "kv.increment", json!({"name": "n"})).await,
        json!(1)
    );
}

#[tokio::test]
async fn each_call_on_an_instance_gets_its_own_fuel_and_deadline() {
    let kv = load("kv", "");
    let limits = Limits {
        fuel: Some(2_000_000),
        ..Limits::default()
    };
    let mut instance = kv
        .instantiate(engine(), &limits)
        .await
        .expect("instantiate");
    // Many cheap calls whose total far exceeds one call's fuel: the budget is per call, not per instance.
    for expected in 1..=200u64 {
        let report = instance
            .call(
                &kv,
                engine(),
                "kv.increment",
                &json!({"name": "n"}),
                &limits,
            )
            .await;
        assert_eq!(report.outcome.expect("increment").value, json!(expected));
        assert!(report.stats.fuel_consumed.expect("metered") < 2_000_000);
    }
}

#[tokio::test]
async fn an_instance_that_failed_is_not_reused() {
    let panic = load("hostile-panic", "");
    let limits = Limits::default();
    let mut instance = panic
        .instantiate(engine(), &limits)
        .await
        .expect("instantiate");
    let report = instance
        .call(
            &panic,
            engine(),
            "attack.divide",
            &json!({"a": 6, "b": 3}),
            &limits,
        )
        .await;
    assert_eq!(report.outcome.expect("divide").value, json!(2));
    let report = instance
        .call(
            &panic,
            engine(),
            "attack.panic",
            &json!({"message": "boom"}),
            &limits,
        )
        .await;
    assert!(matches!(report.outcome, Err(CallError::Panic { .. })));
    assert!(instance.is_dead());
    let report = instance
        .call(
            &panic,
            engine(),
            "attack.divide",
            &json!({"a": 6, "b": 3}),
            &limits,
        )
        .await;
    let error = report.outcome.expect_err("a dead instance refuses calls");
    assert!(error.to_string().contains("failed earlier"), "{error}");
    // Argument errors are caught before the guest runs, so they do not kill an instance.
    let mut fresh = panic
        .instantiate(engine(), &limits)
        .await
        .expect("instantiate");
    let report = fresh
        .call(
            &panic,
            engine(),
            "attack.divide",
            &json!({"a": "x"}),
            &limits,
        )
        .await;
    assert!(matches!(
        report.outcome,
        Err(CallError::InvalidArguments(_))
    ));
    assert!(!fresh.is_dead());
}

//! The filesystem: a symbolic link swapped during reads never leads out of the mount.

use super::still_serves;
use crate::common::{call_limited, load_spec, spec, tempdir};
use are_policy::Limits;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_swapped_during_reads_never_leads_out() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let dir = tempdir();
    let base = dir.path().to_path_buf();
    let secret = format!("ARE-PLANTED-SECRET-race-{}", std::process::id());
    std::fs::create_dir_all(base.join("data/inside")).unwrap();
    std::fs::create_dir_all(base.join("outside")).unwrap();
    std::fs::write(base.join("data/inside/secret.txt"), "inside").unwrap();
    std::fs::write(base.join("outside/secret.txt"), &secret).unwrap();
    // So that a listing of the outside differs from one of the inside.
    std::fs::write(base.join("outside/host-only.txt"), "host only").unwrap();
    std::os::unix::fs::symlink("inside", base.join("data/swap")).unwrap();
    let race = load_spec(spec(
        "hostile-symlink-race",
        r#"fs = [{ host = "data", guest = "/data" }]"#,
        &base,
    ));

    // Flip `data/swap` between `inside` and `../outside` as fast as rename allows, while the guest reads.
    let stop = Arc::new(AtomicBool::new(false));
    let flips = Arc::new(AtomicUsize::new(0));
    let flipper = std::thread::spawn({
        let (stop, flips, data) = (stop.clone(), flips.clone(), base.join("data"));
        move || {
            let mut n = 0usize;
            let tmp = data.join("swap.tmp");
            // Ends when told to, or when the directory is gone (the test failed and dropped it).
            while !stop.load(Ordering::Relaxed) {
                let target = ["../outside", "inside"][n % 2];
                let _ = std::fs::remove_file(&tmp);
                let flipped = std::os::unix::fs::symlink(target, &tmp)
                    .and_then(|()| std::fs::rename(&tmp, data.join("swap")));
                if flipped.is_err() {
                    break;
                }
                n += 1;
                flips.store(n, Ordering::Relaxed);
            }
        }
    });
    // The flipper takes a core: allow for a slow, busy machine.
    let slow = Limits {
        timeout: Duration::from_secs(60),
        fuel: None,
        ..Limits::default()
    };
    let read = call_limited(
        &race,
        "attack.read-file",
        json!({"path": "/data/swap/secret.txt", "rounds": 10_000}),
        slow,
    )
    .await;
    let listed = call_limited(
        &race,
        "attack.list-dir",
        json!({"path": "/data/swap", "rounds": 2_000}),
        slow,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    flipper.join().unwrap();
    let (reads, listings) = match (read.outcome, listed.outcome) {
        (Ok(read), Ok(listed)) => (read.value, listed.value),
        (read, listed) => panic!("the race calls failed: {read:?} {listed:?}"),
    };
    let flips = flips.load(Ordering::Relaxed);
    eprintln!("symlink race: {flips} flips; reads {reads}; listings {listings}");

    for (what, out, inside) in [
        ("read", &reads, "inside"),
        ("list", &listings, "secret.txt"),
    ] {
        let text = out.to_string();
        assert!(!text.contains(&secret), "{what}: the secret leaked: {text}");
        for pair in out["contents"].as_array().unwrap() {
            assert_eq!(
                pair[0], inside,
                "{what}: read something other than the inside: {text}"
            );
        }
        assert!(
            out["reads"].as_u64().unwrap() > 0,
            "{what}: never read the inside: {text}"
        );
    }
    assert!(flips > 100, "the link barely moved: {flips} flips");
    assert!(
        reads["failures"].as_u64().unwrap() > 0,
        "no read ever met the link pointing out, the race did not happen: {reads}"
    );
    // Each refusal is the host's: the link leads out of the mount.
    for out in [&reads, &listings] {
        for pair in out["errors"].as_array().unwrap() {
            let e = pair[0].as_str().unwrap();
            assert!(e.contains("not permitted"), "an unexpected error: {out}");
        }
    }

    // Settled on the inside, the same component reads it again.
    std::fs::remove_file(base.join("data/swap")).unwrap();
    std::os::unix::fs::symlink("inside", base.join("data/swap")).unwrap();
    still_serves(
        &race,
        "attack.read-file",
        json!({"path": "/data/swap/secret.txt", "rounds": 1}),
        json!({"reads": 1, "failures": 0, "contents": [["inside", 1]], "errors": []}),
    )
    .await;
}

//! Hostile: sleeps past any timeout (see `wit/world.wit`).

are_guest_sdk::generate!({ world: "hostile" });

use std::time::{Duration, Instant};

use are_guest_sdk::wasip2::clocks::monotonic_clock;

struct Sleep;

impl exports::hostile::sleep::attack::Guest for Sleep {
    fn sleep(ms: u64) -> u64 {
        let start = Instant::now();
        std::thread::sleep(Duration::from_millis(ms));
        start.elapsed().as_millis() as u64
    }

    fn sleep_forever() {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }

    fn block_forever() {
        loop {
            monotonic_clock::subscribe_duration(u64::MAX).block();
        }
    }
}

export!(Sleep);

//! Hostile: burns CPU forever, or for a given time (see `wit/world.wit`).

are_guest_sdk::generate!({ world: "hostile" });

use std::hint::black_box;
use std::time::{Duration, Instant};

struct Loop;

impl exports::hostile::busy_loop::attack::Guest for Loop {
    fn spin() {
        // `black_box` keeps the loop: an empty infinite loop is allowed to be compiled to anything.
        let mut counter = 0u64;
        loop {
            counter = black_box(counter.wrapping_add(1));
        }
    }

    fn spin_for(ms: u64) -> u64 {
        let until = Instant::now() + Duration::from_millis(ms);
        let mut iterations = 0u64;
        while Instant::now() < until {
            iterations = black_box(iterations + 1);
        }
        iterations
    }

    fn churn() -> u64 {
        let mut state = vec![0u64; 4096];
        let len = state.len();
        let mut i = 0usize;
        loop {
            let next = state[(i + 1) % len]
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state[i % len] ^= next;
            i = black_box(i.wrapping_add(1));
            if black_box(state[0]) == u64::MAX && black_box(i) == 0 {
                return state[0];
            }
        }
    }
}

export!(Loop);

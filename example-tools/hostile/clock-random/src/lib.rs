//! Hostile: abuses the clocks and the random source (see `wit/world.wit`).

are_guest_sdk::generate!({ world: "hostile" });

use std::hint::black_box;

use are_guest_sdk::wasip2::clocks::{monotonic_clock, wall_clock};
use are_guest_sdk::wasip2::io::poll::poll;
use are_guest_sdk::wasip2::random::{insecure, random};
use exports::hostile::clock_random::attack::Guest;

struct ClockRandom;

impl Guest for ClockRandom {
    fn random_bytes(len: u64) -> u64 {
        random::get_random_bytes(len).len() as u64
    }

    fn insecure_random_bytes(len: u64) -> u64 {
        insecure::get_insecure_random_bytes(len).len() as u64
    }

    fn random_churn(len: u64, count: u32) -> u64 {
        (0..count)
            .map(|_| black_box(random::get_random_bytes(len)).len() as u64)
            .sum()
    }

    fn wait(ns: u64) {
        monotonic_clock::subscribe_duration(ns).block();
    }

    fn wait_until(instant: u64) {
        monotonic_clock::subscribe_instant(instant).block();
    }

    fn poll_storm(count: u32) -> u64 {
        let fired = monotonic_clock::subscribe_duration(0);
        let mut polls = 0u64;
        while count == 0 || polls < u64::from(count) {
            black_box(poll(&[&fired]));
            polls += 1;
        }
        polls
    }

    fn poll_many(count: u32) -> u32 {
        let timers: Vec<_> = (0..count)
            .map(|i| monotonic_clock::subscribe_duration(u64::from(i % 2) * 60_000_000_000))
            .collect();
        let refs: Vec<_> = timers.iter().collect();
        poll(&refs).len() as u32
    }

    fn clock_spin() -> u64 {
        let mut sum = 0u64;
        loop {
            sum = black_box(sum.wrapping_add(monotonic_clock::now()));
            sum = black_box(sum.wrapping_add(wall_clock::now().seconds));
        }
    }
}

export!(ClockRandom);

//! Hostile: recurses until the stack runs out (see `wit/world.wit`).

are_guest_sdk::generate!({ world: "hostile" });

use std::hint::black_box;

struct Recursion;

impl exports::hostile::recursion::attack::Guest for Recursion {
    fn overflow() -> u64 {
        thin(0, u64::MAX)
    }

    fn overflow_fat() -> u64 {
        fat(0)
    }

    fn recurse(depth: u64) -> u64 {
        thin(0, depth)
    }
}

export!(Recursion);

/// One small frame per level; the work after the call keeps it from becoming a loop.
#[inline(never)]
fn thin(depth: u64, limit: u64) -> u64 {
    if black_box(depth) >= limit {
        return depth;
    }
    black_box(thin(depth + 1, limit)).max(black_box(depth))
}

/// A 4 KiB array per level lives on the shadow stack in linear memory.
#[inline(never)]
fn fat(depth: u64) -> u64 {
    let mut frame = [0u8; 4096];
    frame[(depth % 4096) as usize] = depth as u8;
    let frame = black_box(frame);
    if black_box(depth) == u64::MAX {
        return depth;
    }
    fat(depth + 1) + u64::from(frame[(depth % 4096) as usize])
}

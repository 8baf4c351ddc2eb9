//! Hostile: takes all the memory it can get (see `wit/world.wit`).

are_guest_sdk::generate!({ world: "hostile" });

use std::hint::black_box;

const PAGE: usize = 64 * 1024;
const MIB: usize = 1024 * 1024;

struct Memory;

impl exports::hostile::memory::attack::Guest for Memory {
    fn bomb() -> u64 {
        grow_until_refused()
    }

    fn hoard() -> u64 {
        let mut blocks: Vec<Vec<u8>> = Vec::new();
        let mut held = 0u64;
        loop {
            let mut block = Vec::new();
            if block.try_reserve_exact(MIB).is_err() || blocks.try_reserve(1).is_err() {
                return black_box(&blocks).len() as u64 * MIB as u64;
            }
            block.resize(MIB, 0);
            touch(&mut block);
            blocks.push(block);
            held += MIB as u64;
            black_box(held);
        }
    }

    fn allocate(mib: u32) -> u64 {
        let mut block = vec![0u8; mib as usize * MIB];
        touch(&mut block);
        block
            .iter()
            .step_by(PAGE)
            .map(|&byte| u64::from(byte))
            .sum()
    }
}

export!(Memory);

/// Writes one byte per page so the memory is really used, not just reserved.
fn touch(block: &mut [u8]) {
    for (i, byte) in block.iter_mut().enumerate().step_by(PAGE) {
        *byte = black_box((i / PAGE) as u8 | 1);
    }
}

#[cfg(target_arch = "wasm32")]
fn grow_until_refused() -> u64 {
    use core::arch::wasm32::{memory_grow, memory_size};
    while memory_grow(0, 1) != usize::MAX {}
    memory_size(0) as u64 * PAGE as u64
}

#[cfg(not(target_arch = "wasm32"))]
fn grow_until_refused() -> u64 {
    unimplemented!("linear memory exists only on wasm32")
}

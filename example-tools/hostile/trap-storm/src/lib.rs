//! Hostile: traps in every way it can (see `wit/world.wit`).

are_guest_sdk::generate!({ world: "hostile" });

use std::hint::black_box;
use std::io::Write as _;
use std::mem::ManuallyDrop;

use are_guest_sdk::wasip2::cli::stdout::get_stdout;
use are_guest_sdk::wasip2::clocks::monotonic_clock::subscribe_duration;
use exports::hostile::trap_storm::attack::{Guest, Kind};

struct TrapStorm;

impl Guest for TrapStorm {
    fn trap(kind: Kind) {
        match kind {
            Kind::Unreachable => unreachable_instruction(),
            Kind::OutOfBounds => {
                let address = black_box(0xffff_fff0usize) as *const u8;
                // SAFETY: none; the load is meant to trap.
                black_box(unsafe { address.read_volatile() });
            }
            Kind::DivideByZero => {
                let (a, b) = (black_box(7i32), black_box(0i32));
                // SAFETY: none; the assumption removes Rust's zero check so that `i32.div_s` traps.
                unsafe { std::hint::assert_unchecked(b != 0) };
                black_box(a / b);
            }
            Kind::StackOverflow => {
                black_box(deeper(0));
            }
            Kind::BadIndirectCall => {
                // A table index far past the table's end.
                let index = black_box(0x00de_ad00usize);
                // SAFETY: none; the call is meant to trap (`call_indirect` checks the index).
                let function: fn() -> u32 = unsafe { std::mem::transmute(index) };
                black_box(function());
            }
            Kind::IndirectTypeMismatch => {
                let real: fn() -> u32 = black_box(answer);
                // SAFETY: none; the call is meant to trap (`call_indirect` checks the signature).
                let wrong: fn(u64, u64, u64) -> u64 = unsafe { std::mem::transmute(real) };
                black_box(wrong(1, 2, 3));
            }
            Kind::Panic => panic!("trap storm: a panic, as asked"),
            Kind::AfterOutput => {
                let block = [b'x'; 1024];
                for _ in 0..64 {
                    let _ = std::io::stdout().write_all(&block);
                    let _ = std::io::stderr().write_all(&block);
                }
                let _ = std::io::stdout().flush();
                unreachable_instruction();
            }
            Kind::HoldingHandles => {
                for _ in 0..500 {
                    let _ = ManuallyDrop::new(subscribe_duration(60_000_000_000));
                    let _ = ManuallyDrop::new(get_stdout());
                }
                unreachable_instruction();
            }
            Kind::AfterAllocating => {
                let mut block = vec![0u8; 8 << 20];
                for page in block.chunks_mut(4096) {
                    page[0] = 1;
                }
                black_box(&block);
                unreachable_instruction();
            }
        }
        // Every arm above traps; reaching here would be a bug of this component.
        unreachable_instruction();
    }

    fn ok(n: u32) -> u32 {
        n.wrapping_add(1)
    }
}

export!(TrapStorm);

fn unreachable_instruction() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

#[inline(never)]
fn answer() -> u32 {
    42
}

/// One frame per level, forever; the work after the call keeps it from becoming a loop.
#[inline(never)]
fn deeper(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return depth;
    }
    black_box(deeper(black_box(depth) + 1)).wrapping_add(depth)
}

//! Hostile: panics, traps and exits (see `wit/world.wit`).

are_guest_sdk::generate!({ world: "hostile" });

use std::hint::black_box;

struct Panic;

impl exports::hostile::panic::attack::Guest for Panic {
    fn panic(message: String) {
        panic!("{message}");
    }

    fn trap_unreachable() {
        #[cfg(target_arch = "wasm32")]
        core::arch::wasm32::unreachable();
        #[cfg(not(target_arch = "wasm32"))]
        std::process::abort();
    }

    fn divide(a: i32, b: i32) -> i32 {
        // `black_box` hides the values from the optimizer.
        let (a, b) = (black_box(a), black_box(b));
        // SAFETY: none; this is the point. The assumptions remove Rust's zero and overflow checks so that the
        // division compiles to a bare `i32.div_s`, which traps on exactly those inputs.
        unsafe {
            std::hint::assert_unchecked(b != 0);
            // Split by `a` so that each assumption is a single comparison, which the optimizer can use.
            if a == i32::MIN {
                std::hint::assert_unchecked(b != -1);
            }
        }
        a / b
    }

    fn exit(code: u8) {
        std::process::exit(i32::from(code));
    }

    fn abort() {
        std::process::abort();
    }

    fn out_of_bounds() -> u8 {
        // On wasm32 every address is in the 4 GiB space; this one is past any memory the host will grant.
        let address = black_box(0xffff_fff0usize) as *const u8;
        // SAFETY: none; the read is meant to trap.
        unsafe { address.read_volatile() }
    }
}

export!(Panic);

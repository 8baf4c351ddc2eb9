//! Hostile: exhausts the host's resource table (see `wit/world.wit`).

are_guest_sdk::generate!({ world: "hostile" });

use std::mem::ManuallyDrop;

use are_guest_sdk::wasip2::cli::stdout::get_stdout;
use are_guest_sdk::wasip2::clocks::monotonic_clock::subscribe_duration;
use are_guest_sdk::wasip2::filesystem::preopens::get_directories;

struct Handles;

impl exports::hostile::handles::attack::Guest for Handles {
    fn pollables(count: u32) -> u64 {
        hoard(count, || vec![subscribe_duration(1_000_000_000)])
    }

    fn streams(count: u32) -> u64 {
        hoard(count, || vec![get_stdout()])
    }

    fn descriptors(count: u32) -> u64 {
        if get_directories().is_empty() {
            return 0;
        }
        hoard(count, || {
            get_directories()
                .into_iter()
                .map(|(descriptor, _)| descriptor)
                .collect()
        })
    }
}

export!(Handles);

/// Calls `make` `count` times (forever when 0), leaking every handle so the host must keep it.
fn hoard<T>(count: u32, mut make: impl FnMut() -> Vec<T>) -> u64 {
    let mut created = 0u64;
    let mut round = 0u32;
    while count == 0 || round < count {
        for handle in make() {
            // Never dropped: the handle stays in the host's table until the instance goes away.
            let _ = ManuallyDrop::new(handle);
            created += 1;
        }
        round += 1;
    }
    created
}

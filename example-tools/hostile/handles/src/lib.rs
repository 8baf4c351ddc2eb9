//! Hostile: exhausts the host's resource table (see `wit/world.wit`).

are_guest_sdk::generate!({ world: "hostile" });

use std::mem::ManuallyDrop;

use are_guest_sdk::wasip2::cli::stdout::get_stdout;
use are_guest_sdk::wasip2::clocks::monotonic_clock::subscribe_duration;
use are_guest_sdk::wasip2::filesystem::preopens::get_directories;
use are_guest_sdk::wasip2::filesystem::types::{Descriptor, DescriptorFlags, OpenFlags, PathFlags};
use are_guest_sdk::wasip2::http::outgoing_handler::{OutgoingRequest, handle};
use are_guest_sdk::wasip2::http::types::{Fields, Scheme};
use are_guest_sdk::wasip2::sockets::network::IpAddressFamily;
use are_guest_sdk::wasip2::sockets::tcp_create_socket::create_tcp_socket;
use exports::hostile::handles::attack::Hoard;

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

    fn files(dir: String, file: String, count: u32, hold_ms: u32) -> Hoard {
        let Some(root) = granted(&dir) else {
            return not_granted(&dir);
        };
        let hoard = hoard_until_refused(count, || open(&root, &file));
        hold(hold_ms);
        hoard
    }

    fn sockets(count: u32, hold_ms: u32) -> Hoard {
        let hoard = hoard_until_refused(count, || {
            create_tcp_socket(IpAddressFamily::Ipv4).map_err(|code| code.name().to_string())
        });
        hold(hold_ms);
        hoard
    }

    fn requests(authority: String, path: String, count: u32, hold_ms: u32) -> Hoard {
        let hoard = hoard_until_refused(count, || {
            let request = OutgoingRequest::new(Fields::new());
            let _ = request.set_scheme(Some(&Scheme::Http));
            let _ = request.set_authority(Some(&authority));
            let _ = request.set_path_with_query(Some(&path));
            let response = handle(request, None).map_err(|code| format!("{code:?}"))?;
            response.subscribe().block();
            match response.get() {
                Some(Ok(Ok(response))) => Ok(response),
                Some(Ok(Err(code))) => Err(format!("{code:?}")),
                other => Err(format!("no response: {other:?}")),
            }
        });
        hold(hold_ms);
        hoard
    }

    fn churn(dir: String, file: String, count: u32) -> Hoard {
        let Some(root) = granted(&dir) else {
            return not_granted(&dir);
        };
        let mut done = 0;
        while done < u64::from(count) {
            let opened = open(&root, &file).and_then(|file| {
                let socket = create_tcp_socket(IpAddressFamily::Ipv4)
                    .map_err(|code| code.name().to_string())?;
                Ok((file, socket))
            });
            if let Err(code) = opened {
                return Hoard {
                    held: done,
                    refused: Some(code),
                };
            }
            done += 1;
        }
        Hoard {
            held: done,
            refused: None,
        }
    }
}

export!(Handles);

/// The preopened directory the guest knows as `dir`.
fn granted(dir: &str) -> Option<Descriptor> {
    get_directories()
        .into_iter()
        .find(|(_, name)| name == dir)
        .map(|(descriptor, _)| descriptor)
}

fn not_granted(dir: &str) -> Hoard {
    Hoard {
        held: 0,
        refused: Some(format!("{dir} is not a granted directory")),
    }
}

/// Open `file` in `root` for reading: one host file descriptor.
fn open(root: &Descriptor, file: &str) -> Result<Descriptor, String> {
    root.open_at(
        PathFlags::empty(),
        file,
        OpenFlags::empty(),
        DescriptorFlags::READ,
    )
    .map_err(|code| code.name().to_string())
}

/// Calls `make` `count` times (until it fails when 0), leaking every handle it makes.
fn hoard_until_refused<T>(count: u32, mut make: impl FnMut() -> Result<T, String>) -> Hoard {
    let mut held = 0u64;
    while count == 0 || held < u64::from(count) {
        match make() {
            Ok(handle) => {
                let _ = ManuallyDrop::new(handle);
                held += 1;
            }
            Err(code) => {
                return Hoard {
                    held,
                    refused: Some(code),
                };
            }
        }
    }
    Hoard {
        held,
        refused: None,
    }
}

/// Waits `ms` milliseconds without giving anything back.
fn hold(ms: u32) {
    if ms > 0 {
        subscribe_duration(u64::from(ms) * 1_000_000).block();
    }
}

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

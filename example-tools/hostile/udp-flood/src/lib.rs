//! Hostile: floods and sprays UDP datagrams (see `wit/world.wit`).

are_guest_sdk::generate!({ world: "hostile" });

use std::net::SocketAddr;

use are_guest_sdk::wasip2::sockets::instance_network::instance_network;
use are_guest_sdk::wasip2::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
};
use are_guest_sdk::wasip2::sockets::udp::{OutgoingDatagram, OutgoingDatagramStream, UdpSocket};
use are_guest_sdk::wasip2::sockets::udp_create_socket::create_udp_socket;
use exports::hostile::udp_flood::attack::{FloodReport, Guest};

/// The most datagrams put in one `send` call.
const BATCH: u64 = 64;

struct UdpFlood;

impl Guest for UdpFlood {
    fn flood(target: String, count: u32, size: u32) -> FloodReport {
        let mut report = FloodReport {
            sent: 0,
            error: None,
        };
        let result = (|| {
            let address = parse(&target)?;
            let udp = open(&address, None)?;
            let payload = vec![b'U'; size as usize];
            while count == 0 || report.sent < u64::from(count) {
                let left = if count == 0 {
                    BATCH
                } else {
                    u64::from(count) - report.sent
                };
                let batch: Vec<OutgoingDatagram> = (0..left.min(BATCH))
                    .map(|_| OutgoingDatagram {
                        data: payload.clone(),
                        remote_address: Some(address),
                    })
                    .collect();
                let (sent, error) = send(&udp.outgoing, batch);
                report.sent += sent;
                if let Some(error) = error {
                    return Err(error);
                }
            }
            Ok(())
        })();
        report.error = result.err();
        report
    }

    fn mixed_batch(granted: String, other: String, count: u32) -> FloodReport {
        let result = (|| {
            let (granted, other) = (parse(&granted)?, parse(&other)?);
            let udp = open(&granted, None)?;
            let batch = (0..count)
                .map(|i| OutgoingDatagram {
                    data: format!("mixed datagram {i}").into_bytes(),
                    remote_address: Some(if i % 2 == 0 { granted } else { other }),
                })
                .collect();
            Ok(send(&udp.outgoing, batch))
        })();
        match result {
            Ok((sent, error)) => FloodReport { sent, error },
            Err(error) => FloodReport {
                sent: 0,
                error: Some(error),
            },
        }
    }

    fn spray(targets: Vec<String>) -> Vec<(String, Result<String, String>)> {
        let mut socket = None;
        targets
            .into_iter()
            .map(|target| {
                let result = (|| {
                    let address = parse(&target)?;
                    if socket.is_none() {
                        socket = Some(open(&address, None)?);
                    }
                    let udp = socket.as_ref().ok_or("no socket")?;
                    let datagram = OutgoingDatagram {
                        data: b"sprayed".to_vec(),
                        remote_address: Some(address),
                    };
                    match send(&udp.outgoing, vec![datagram]) {
                        (_, Some(error)) => Err(error),
                        (n, None) => Ok(format!("sent {n}")),
                    }
                })();
                (target, result)
            })
            .collect()
    }

    fn redirect(granted: String, other: String) -> Result<String, String> {
        let (granted, other) = (parse(&granted)?, parse(&other)?);
        let udp = open(&granted, Some(granted))?;
        let datagram = OutgoingDatagram {
            data: b"redirected".to_vec(),
            remote_address: Some(other),
        };
        match send(&udp.outgoing, vec![datagram]) {
            (_, Some(error)) => Err(error),
            (n, None) => Ok(format!("sent {n}")),
        }
    }
}

export!(UdpFlood);

/// A bound socket and its outgoing stream. The stream is a child of the socket and must go first: fields drop in
/// order.
struct Udp {
    outgoing: OutgoingDatagramStream,
    _socket: UdpSocket,
}

/// A socket bound to the wildcard address of `address`'s family, and its outgoing stream (connected to
/// `remote` when given).
fn open(address: &IpSocketAddress, remote: Option<IpSocketAddress>) -> Result<Udp, String> {
    let (family, local) = match address {
        IpSocketAddress::Ipv4(_) => (
            IpAddressFamily::Ipv4,
            IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port: 0,
                address: (0, 0, 0, 0),
            }),
        ),
        IpSocketAddress::Ipv6(_) => (
            IpAddressFamily::Ipv6,
            IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port: 0,
                flow_info: 0,
                address: (0, 0, 0, 0, 0, 0, 0, 0),
                scope_id: 0,
            }),
        ),
    };
    let socket = create_udp_socket(family).map_err(|e| describe("create", e))?;
    socket
        .start_bind(&instance_network(), local)
        .map_err(|e| describe("start-bind", e))?;
    let pollable = socket.subscribe();
    loop {
        match socket.finish_bind() {
            Err(ErrorCode::WouldBlock) => pollable.block(),
            result => break result.map_err(|e| describe("finish-bind", e))?,
        }
    }
    let (_incoming, outgoing) = socket.stream(remote).map_err(|e| describe("stream", e))?;
    Ok(Udp {
        outgoing,
        _socket: socket,
    })
}

/// Sends `batch`, as the stream permits, until all went or the host refused one: how many went, and the
/// refusal.
fn send(
    outgoing: &OutgoingDatagramStream,
    mut batch: Vec<OutgoingDatagram>,
) -> (u64, Option<String>) {
    let mut sent = 0;
    while !batch.is_empty() {
        let permitted = match outgoing.check_send() {
            Ok(0) => {
                outgoing.subscribe().block();
                continue;
            }
            Ok(permitted) => permitted,
            Err(e) => return (sent, Some(describe("check-send", e))),
        };
        let now = (permitted as usize).min(batch.len());
        // A refusal after the first datagram of a call ends the call early without an error; the next call,
        // which starts at the refused datagram, reports it.
        match outgoing.send(&batch[..now]) {
            Ok(n) => {
                sent += n;
                batch.drain(..n as usize);
            }
            Err(e) => return (sent, Some(describe("send", e))),
        }
    }
    (sent, None)
}

fn parse(target: &str) -> Result<IpSocketAddress, String> {
    let address: SocketAddr = target
        .parse()
        .map_err(|e| format!("`{target}` is not ip:port: {e}"))?;
    Ok(match address {
        SocketAddr::V4(v4) => {
            let [a, b, c, d] = v4.ip().octets();
            IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port: v4.port(),
                address: (a, b, c, d),
            })
        }
        SocketAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.ip().segments();
            IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port: v6.port(),
                flow_info: 0,
                address: (a, b, c, d, e, f, g, h),
                scope_id: 0,
            })
        }
    })
}

fn describe(step: &str, error: ErrorCode) -> String {
    format!("{step}: {}", error.name())
}

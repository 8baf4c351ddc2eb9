//! Hostile: reaches the network by HTTP, TCP, UDP and DNS (see `wit/world.wit`).

are_guest_sdk::generate!({ world: "hostile" });

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use are_guest_sdk::wasip2::sockets::instance_network::instance_network;
use are_guest_sdk::wasip2::sockets::ip_name_lookup::resolve_addresses;
use are_guest_sdk::wasip2::sockets::network::{
    ErrorCode, IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
};
use are_guest_sdk::wasip2::sockets::udp::OutgoingDatagram;
use are_guest_sdk::wasip2::sockets::{tcp_create_socket, udp_create_socket};

/// How long a connection attempt may take before it counts as failed.
const TIMEOUT: Duration = Duration::from_secs(5);

/// What a successful connection sends.
const PAYLOAD: &[u8] = b"EXFILTRATED by hostile-net\r\n";

struct Net;

impl exports::hostile::net::attack::Guest for Net {
    fn http_get(url: String) -> Result<String, String> {
        let response = are_guest_sdk::http::Request::get(&url)
            .max_body_bytes(512)
            .timeout(TIMEOUT)
            .send()
            .map_err(|error| error.to_string())?;
        Ok(format!("status {}: {}", response.status, response.text()))
    }

    fn tcp_connect(host: String, port: u16) -> Result<String, String> {
        let addresses: Vec<SocketAddr> = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|error| format!("lookup of `{host}`: {error}"))?
            .collect();
        let mut errors = Vec::new();
        for address in &addresses {
            match TcpStream::connect_timeout(address, TIMEOUT) {
                Ok(mut stream) => {
                    let sent = stream
                        .write(PAYLOAD)
                        .map_err(|error| format!("connected to {address}, then {error}"))?;
                    return Ok(format!("connected to {address} and sent {sent} bytes"));
                }
                Err(error) => errors.push(format!("{address}: {error}")),
            }
        }
        Err(if errors.is_empty() {
            format!("`{host}` has no addresses")
        } else {
            errors.join("; ")
        })
    }

    fn tcp_connect_raw(ip: String, port: u16) -> Result<String, String> {
        let address = socket_address(&ip, port)?;
        let socket = tcp_create_socket::create_tcp_socket(family(&address))
            .map_err(|e| describe("create", e))?;
        let network = instance_network();
        socket
            .start_connect(&network, address)
            .map_err(|e| describe("start-connect", e))?;
        let pollable = socket.subscribe();
        let (_input, output) = loop {
            match socket.finish_connect() {
                Err(ErrorCode::WouldBlock) => pollable.block(),
                result => break result.map_err(|e| describe("finish-connect", e))?,
            }
        };
        output
            .blocking_write_and_flush(PAYLOAD)
            .map_err(|error| format!("connected, then {error}"))?;
        Ok(format!(
            "connected to {ip}:{port} and sent {} bytes",
            PAYLOAD.len()
        ))
    }

    fn udp_send(host: String, port: u16, payload: String) -> Result<String, String> {
        let socket = UdpSocket::bind("0.0.0.0:0").map_err(|error| format!("bind: {error}"))?;
        let sent = socket
            .send_to(payload.as_bytes(), (host.as_str(), port))
            .map_err(|error| format!("send: {error}"))?;
        Ok(format!("sent {sent} bytes to {host}:{port}"))
    }

    fn udp_send_raw(ip: String, port: u16, payload: String) -> Result<String, String> {
        let address = socket_address(&ip, port)?;
        let socket = udp_create_socket::create_udp_socket(family(&address))
            .map_err(|e| describe("create", e))?;
        let network = instance_network();
        let local = match address {
            IpSocketAddress::Ipv4(_) => IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port: 0,
                address: (0, 0, 0, 0),
            }),
            IpSocketAddress::Ipv6(_) => IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port: 0,
                flow_info: 0,
                address: (0, 0, 0, 0, 0, 0, 0, 0),
                scope_id: 0,
            }),
        };
        socket
            .start_bind(&network, local)
            .map_err(|e| describe("start-bind", e))?;
        let pollable = socket.subscribe();
        loop {
            match socket.finish_bind() {
                Err(ErrorCode::WouldBlock) => pollable.block(),
                result => break result.map_err(|e| describe("finish-bind", e))?,
            }
        }
        let (_incoming, outgoing) = socket.stream(None).map_err(|e| describe("stream", e))?;
        let permitted = outgoing
            .check_send()
            .map_err(|e| describe("check-send", e))?;
        if permitted == 0 {
            outgoing.subscribe().block();
        }
        let datagram = OutgoingDatagram {
            data: payload.into_bytes(),
            remote_address: Some(address),
        };
        let sent = outgoing
            .send(&[datagram])
            .map_err(|e| describe("send", e))?;
        Ok(format!("sent {sent} datagram(s) to {ip}:{port}"))
    }

    fn dns_lookup(name: String) -> Result<Vec<String>, String> {
        let network = instance_network();
        let stream =
            resolve_addresses(&network, &name).map_err(|e| describe("resolve-addresses", e))?;
        let pollable = stream.subscribe();
        let mut addresses = Vec::new();
        loop {
            match stream.resolve_next_address() {
                Ok(Some(address)) => addresses.push(ip_text(address)),
                Ok(None) => return Ok(addresses),
                Err(ErrorCode::WouldBlock) => pollable.block(),
                Err(error) => return Err(describe("resolve-next-address", error)),
            }
        }
    }

    fn std_dns_lookup(name: String) -> Result<Vec<String>, String> {
        let addresses = (name.as_str(), 0)
            .to_socket_addrs()
            .map_err(|error| format!("lookup of `{name}`: {error}"))?;
        Ok(addresses.map(|address| address.ip().to_string()).collect())
    }
}

export!(Net);

fn describe(step: &str, error: ErrorCode) -> String {
    format!("{step}: {}", error.name())
}

fn socket_address(ip: &str, port: u16) -> Result<IpSocketAddress, String> {
    match ip
        .parse::<IpAddr>()
        .map_err(|error| format!("`{ip}` is not an IP address: {error}"))?
    {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            Ok(IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port,
                address: (a, b, c, d),
            }))
        }
        IpAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.segments();
            Ok(IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port,
                flow_info: 0,
                address: (a, b, c, d, e, f, g, h),
                scope_id: 0,
            }))
        }
    }
}

fn family(address: &IpSocketAddress) -> IpAddressFamily {
    match address {
        IpSocketAddress::Ipv4(_) => IpAddressFamily::Ipv4,
        IpSocketAddress::Ipv6(_) => IpAddressFamily::Ipv6,
    }
}

fn ip_text(address: IpAddress) -> String {
    match address {
        IpAddress::Ipv4((a, b, c, d)) => IpAddr::from([a, b, c, d]).to_string(),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
            IpAddr::from([a, b, c, d, e, f, g, h]).to_string()
        }
    }
}

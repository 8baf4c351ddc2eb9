//! `allow.sockets`: outbound TCP and UDP (`wasi:sockets`) to named `host:port` pairs, and name lookup for
//! exactly those hosts.
//!
//! Entries are `tcp://host:port`, `udp://host:port`, or `host:port` (TCP). A connect or send is allowed when the
//! address is an entry's IP literal, or an address that a lookup of an entry's host name returned during this
//! instance. Name lookup of any other name fails with `access-denied` before any DNS query is made, so a guest
//! cannot leak data through lookups. Listening and accepting are never allowed; binding is allowed only to the
//! wildcard address that an outbound connect uses implicitly.
//!
//! ```toml
//! allow.sockets = ["tcp://db.internal:5432", "udp://10.0.0.53:53"]
//! ```

use super::Capability;
use crate::sandbox::{HostState, InstanceBuilder};
use serde::Deserialize;
use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress};
use wasmtime_wasi::p2::bindings::sockets::{
    instance_network, network, tcp, tcp_create_socket, udp, udp_create_socket,
};
use wasmtime_wasi::p2::{DynPollable, Network, Pollable};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSockets, WasiSocketsView};

/// The hosts and ports a component may open sockets to.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct SocketsGrant(pub Vec<SocketEntry>);

/// One allowed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketEntry {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// A host name (lowercase) or an IP literal.
    pub host: String,
    /// The destination port.
    pub port: u16,
}

/// A transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `tcp://`, the default.
    Tcp,
    /// `udp://`.
    Udp,
}

impl FromStr for SocketEntry {
    type Err = String;

    fn from_str(entry: &str) -> Result<SocketEntry, String> {
        let bad = |why: &str| {
            format!("invalid socket entry {entry:?}: {why} (expected [tcp://|udp://]host:port)")
        };
        let (protocol, rest) = match entry.split_once("://") {
            Some(("tcp", rest)) => (Protocol::Tcp, rest),
            Some(("udp", rest)) => (Protocol::Udp, rest),
            Some((other, _)) => return Err(bad(&format!("protocol {other:?} is not tcp or udp"))),
            None => (Protocol::Tcp, entry),
        };
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad("missing port"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| bad(&format!("port {port:?} is not a number 1-65535")))?;
        if port == 0 {
            return Err(bad("port 0 is not a destination"));
        }
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let valid_name = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if host.parse::<IpAddr>().is_err() && !valid_name {
            return Err(bad(&format!(
                "{host:?} is not a host name or IP address (no wildcards)"
            )));
        }
        Ok(SocketEntry {
            protocol,
            host,
            port,
        })
    }
}

impl<'de> Deserialize<'de> for SocketEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for SocketEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => write!(f, "{proto}://[{ip}]:{}", self.port),
            _ => write!(f, "{proto}://{}:{}", self.host, self.port),
        }
    }
}

/// The socket rules of one instance: the grant plus the addresses its allowed lookups returned.
#[derive(Debug, Default)]
pub struct SocketRules {
    entries: Vec<SocketEntry>,
    resolved: Mutex<HashSet<(Protocol, SocketAddr)>>,
}

impl SocketRules {
    /// Rules for `grant`, with nothing resolved yet.
    pub fn new(grant: &SocketsGrant) -> SocketRules {
        SocketRules {
            entries: grant.0.clone(),
            resolved: Mutex::default(),
        }
    }

    /// Whether the guest may look up `name`.
    pub fn may_lookup(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.entries.iter().any(|e| e.host == name)
    }

    /// Remember what a lookup of an allowed `name` returned, so connects to those addresses pass.
    pub fn record_lookup(&self, name: &str, ips: &[IpAddr]) {
        let name = name.to_ascii_lowercase();
        let mut resolved = self.resolved.lock().unwrap_or_else(|e| e.into_inner());
        for entry in self.entries.iter().filter(|e| e.host == name) {
            for ip in ips {
                resolved.insert((entry.protocol, SocketAddr::new(*ip, entry.port)));
            }
        }
    }

    /// Whether `protocol` traffic to `addr` is allowed.
    pub fn allows(&self, protocol: Protocol, addr: SocketAddr) -> bool {
        let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
        let literal = self.entries.iter().any(|e| {
            e.protocol == protocol
                && e.port == addr.port()
                && e.host.parse::<IpAddr>().ok() == Some(addr.ip())
        });
        literal
            || self
                .resolved
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&(protocol, addr))
    }

    /// The decision for one socket operation.
    pub fn check(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        let wildcard = addr.ip().is_unspecified() && addr.port() == 0;
        let allowed = match usage {
            SocketAddrUse::TcpBind => wildcard,
            SocketAddrUse::TcpConnect => self.allows(Protocol::Tcp, addr),
            SocketAddrUse::UdpBind => wildcard,
            SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => self.allows(Protocol::Udp, addr),
            SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => false,
        };
        if !allowed {
            tracing::info!(%addr, ?usage, "socket use denied");
        }
        allowed
    }
}

impl Capability for SocketsGrant {
    fn name(&self) -> &'static str {
        "sockets"
    }

    fn is_granted(&self) -> bool {
        !self.0.is_empty()
    }

    fn entries(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    fn link(&self, linker: &mut Linker<HostState>) -> wasmtime::Result<&'static [&'static str]> {
        if self.0.is_empty() {
            return Ok(&[]);
        }
        fn view(s: &mut HostState) -> wasmtime_wasi::sockets::WasiSocketsCtxView<'_> {
            s.sockets()
        }
        tcp::add_to_linker::<HostState, WasiSockets>(linker, view)?;
        udp::add_to_linker::<HostState, WasiSockets>(linker, view)?;
        tcp_create_socket::add_to_linker::<HostState, WasiSockets>(linker, view)?;
        udp_create_socket::add_to_linker::<HostState, WasiSockets>(linker, view)?;
        instance_network::add_to_linker::<HostState, WasiSockets>(linker, view)?;
        network::add_to_linker::<HostState, WasiSockets>(linker, &Default::default(), view)?;
        link_name_lookup(linker)?;
        Ok(&[
            "wasi:sockets/tcp",
            "wasi:sockets/udp",
            "wasi:sockets/tcp-create-socket",
            "wasi:sockets/udp-create-socket",
            "wasi:sockets/instance-network",
            "wasi:sockets/network",
            "wasi:sockets/ip-name-lookup",
        ])
    }

    fn prepare(&self, builder: &mut InstanceBuilder) -> anyhow::Result<()> {
        let rules = Arc::new(SocketRules::new(self));
        let check = rules.clone();
        builder
            .wasi
            .allow_tcp(self.0.iter().any(|e| e.protocol == Protocol::Tcp))
            .allow_udp(self.0.iter().any(|e| e.protocol == Protocol::Udp))
            .socket_addr_check(move |addr, usage| {
                let allowed = check.check(addr, usage);
                Box::pin(async move { allowed })
            });
        builder.socket_rules = rules;
        Ok(())
    }
}

/// The version of `wasi:sockets` our name-lookup implementation is defined at; 0.2.x imports resolve to it.
const IP_NAME_LOOKUP: &str = "wasi:sockets/ip-name-lookup@0.2.12";

/// A name lookup in flight or finished: the host side of `resolve-address-stream`.
pub struct NameLookup {
    state: LookupState,
}

enum LookupState {
    Pending(tokio::task::JoinHandle<Result<Vec<IpAddr>, ErrorCode>>),
    Done(Result<VecDeque<IpAddr>, ErrorCode>),
}

#[wasmtime_wasi::async_trait]
impl Pollable for NameLookup {
    async fn ready(&mut self) {
        if let LookupState::Pending(task) = &mut self.state {
            let result = task.await.unwrap_or(Err(ErrorCode::Unknown));
            self.state = LookupState::Done(result.map(VecDeque::from));
        }
    }
}

/// Our own `wasi:sockets/ip-name-lookup`: it refuses names the grant does not list before any DNS query, and
/// records what allowed names resolve to so that connects to them pass the address check.
fn link_name_lookup(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let mut inst = linker.instance(IP_NAME_LOOKUP)?;
    inst.resource(
        "resolve-address-stream",
        ResourceType::host::<NameLookup>(),
        |mut store, rep| {
            store
                .data_mut()
                .table
                .delete(Resource::<NameLookup>::new_own(rep))?;
            Ok(())
        },
    )?;
    inst.func_wrap(
        "resolve-addresses",
        |mut store, (network, name): (Resource<Network>, String)| {
            let state = store.data_mut();
            state.table.get(&network)?;
            let result = match start_lookup(&state.socket_rules, name) {
                Ok(lookup) => Ok(state.table.push(lookup)?),
                Err(code) => Err(code),
            };
            Ok((result,))
        },
    )?;
    inst.func_wrap(
        "[method]resolve-address-stream.resolve-next-address",
        |mut store, (this,): (Resource<NameLookup>,)| {
            let lookup = store.data_mut().table.get_mut(&this)?;
            if let LookupState::Pending(task) = &lookup.state {
                if !task.is_finished() {
                    return Ok((Err(ErrorCode::WouldBlock),));
                }
                let LookupState::Pending(task) =
                    std::mem::replace(&mut lookup.state, LookupState::Done(Ok(VecDeque::new())))
                else {
                    unreachable!("checked above");
                };
                let result = futures_now(task).unwrap_or(Err(ErrorCode::Unknown));
                lookup.state = LookupState::Done(result.map(VecDeque::from));
            }
            let next = match &mut lookup.state {
                LookupState::Done(Ok(ips)) => Ok(ips.pop_front().map(IpAddress::from)),
                LookupState::Done(Err(code)) => Err(*code),
                LookupState::Pending(_) => Err(ErrorCode::WouldBlock),
            };
            Ok((next,))
        },
    )?;
    inst.func_wrap(
        "[method]resolve-address-stream.subscribe",
        |mut store, (this,): (Resource<NameLookup>,)| {
            let pollable: Resource<DynPollable> =
                wasmtime_wasi::p2::subscribe(&mut store.data_mut().table, this)?;
            Ok((pollable,))
        },
    )?;
    Ok(())
}

/// Begin a lookup of `name`, or refuse it. IP literals resolve to themselves without any query.
fn start_lookup(rules: &Arc<SocketRules>, name: String) -> Result<NameLookup, ErrorCode> {
    let literal = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>();
    if let Ok(ip) = literal {
        return Ok(NameLookup {
            state: LookupState::Done(Ok(VecDeque::from([ip]))),
        });
    }
    if !rules.may_lookup(&name) {
        tracing::info!(%name, "name lookup denied: host not in allow.sockets");
        return Err(ErrorCode::AccessDenied);
    }
    let rules = rules.clone();
    let task = tokio::spawn(async move {
        let ips: Vec<IpAddr> = tokio::net::lookup_host((name.as_str(), 0))
            .await
            .map_err(|_| ErrorCode::NameUnresolvable)?
            .map(|a| a.ip().to_canonical())
            .collect();
        rules.record_lookup(&name, &ips);
        Ok(ips)
    });
    Ok(NameLookup {
        state: LookupState::Pending(task),
    })
}

/// The output of a finished task, without awaiting.
fn futures_now<T>(task: tokio::task::JoinHandle<T>) -> Option<T> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut task = std::pin::pin!(task);
    match task.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Ok(value)) => Some(value),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries() {
        let e: SocketEntry = "db.internal:5432".parse().unwrap();
        assert_eq!(
            (e.protocol, e.host.as_str(), e.port),
            (Protocol::Tcp, "db.internal", 5432)
        );
        let e: SocketEntry = "udp://[::1]:53".parse().unwrap();
        assert_eq!(
            (e.protocol, e.host.as_str(), e.port),
            (Protocol::Udp, "::1", 53)
        );
        for bad in ["db", "ftp://a:1", "a:0", "*.x:1", "a:port"] {
            assert!(
                bad.parse::<SocketEntry>()
                    .unwrap_err()
                    .starts_with("invalid socket entry"),
                "{bad}"
            );
        }
    }

    #[test]
    fn checks_addresses_against_literals_and_lookups() {
        let grant = SocketsGrant(vec![
            "127.0.0.1:7000".parse().unwrap(),
            "tcp://db.test:5432".parse().unwrap(),
        ]);
        let rules = SocketRules::new(&grant);
        let local: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        assert!(rules.check(local, SocketAddrUse::TcpConnect));
        assert!(!rules.check("127.0.0.1:7001".parse().unwrap(), SocketAddrUse::TcpConnect));
        assert!(!rules.check(local, SocketAddrUse::UdpSend));
        assert!(rules.check("0.0.0.0:0".parse().unwrap(), SocketAddrUse::TcpBind));
        assert!(!rules.check("0.0.0.0:8080".parse().unwrap(), SocketAddrUse::TcpBind));
        assert!(!rules.check(local, SocketAddrUse::TcpListen));
        let db: SocketAddr = "10.0.0.9:5432".parse().unwrap();
        assert!(!rules.check(db, SocketAddrUse::TcpConnect));
        assert!(rules.may_lookup("DB.test") && !rules.may_lookup("evil.test"));
        rules.record_lookup("db.test", &[db.ip()]);
        assert!(rules.check(db, SocketAddrUse::TcpConnect));
    }
}

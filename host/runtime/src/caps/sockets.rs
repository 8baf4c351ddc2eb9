//! `allow.sockets`: outbound TCP and UDP (`wasi:sockets`) to named `host:port` pairs, and name lookup for
//! exactly those hosts.
//!
//! Entries are `tcp://host:port`, `udp://host:port`, or `host:port` (TCP). A connect or send is allowed when the
//! address is an entry's IP literal, or an address that a lookup of an entry's host name returned during this
//! instance. Name lookup of any other name fails with `access-denied` before any DNS query is made, so a guest
//! cannot leak data through lookups. Listening and accepting are never allowed; binding is allowed only to the
//! wildcard address that an outbound connect uses implicitly.
//!
//! With an audit trail, every TCP connect and the first UDP send to each address are recorded as
//! `socket.connect` events, refused binds and listens as `socket.bind` and `socket.listen`, and every name
//! lookup as `dns.lookup`, allowed or denied (see [`crate::audit`]).
//!
//! ```toml
//! allow.sockets = ["tcp://db.internal:5432", "udp://10.0.0.53:53"]
//! ```

use super::{PrepareError, Provide};
use crate::sandbox::{HostState, InstanceBuilder};
use are_policy::common::ip_literal;
use are_policy::grants::sockets::{Protocol, SocketEntry, SocketsGrant};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress};
use wasmtime_wasi::p2::bindings::sockets::{
    instance_network, network, tcp, tcp_create_socket, udp, udp_create_socket,
};
use wasmtime_wasi::p2::{DynPollable, Network, Pollable, SocketResult, TcpSocket, UdpSocket};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSockets, WasiSocketsView};

/// The sockets capability's state in one instance.
#[derive(Default)]
pub struct SocketState {
    /// What the instance may bind, connect to and look up.
    pub rules: Arc<SocketRules>,
    /// The permit (against `limits.connections`) of each socket the guest holds, by its handle.
    pub(crate) permits: HashMap<u32, crate::descriptors::ConnectionPermit>,
}

/// The socket rules of one instance: the grant plus the addresses its allowed lookups returned.
#[derive(Debug, Default)]
pub struct SocketRules {
    entries: Vec<SocketEntry>,
    /// Addresses allowed through a lookup, with the name that resolved to them.
    resolved: Mutex<HashMap<(Protocol, SocketAddr), String>>,
    /// UDP destinations already recorded in the audit trail (a send is checked per datagram).
    audited_udp: Mutex<HashSet<SocketAddr>>,
}

impl SocketRules {
    /// Rules for `grant`, with nothing resolved yet.
    pub fn new(grant: &SocketsGrant) -> SocketRules {
        SocketRules {
            entries: grant.0.clone(),
            resolved: Mutex::default(),
            audited_udp: Mutex::default(),
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
                resolved.insert(
                    (entry.protocol, SocketAddr::new(*ip, entry.port)),
                    name.clone(),
                );
            }
        }
    }

    /// Whether `protocol` traffic to `addr` is allowed.
    pub fn allows(&self, protocol: Protocol, addr: SocketAddr) -> bool {
        let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
        let literal = self.entries.iter().any(|e| {
            e.protocol == protocol
                && e.port == addr.port()
                && ip_literal(&e.host).map(|ip| ip.to_canonical()) == Some(addr.ip())
        });
        literal
            || self
                .resolved
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&(protocol, addr))
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

    /// Record the decision [`check`](Self::check) made for one socket operation: every TCP connect, the first
    /// allowed UDP send to each address and every refused one, and refused binds, listens and accepts. Implicit
    /// wildcard binds and UDP receives are not recorded.
    pub fn audit(
        &self,
        audit: &crate::audit::AuditScope,
        addr: SocketAddr,
        usage: SocketAddrUse,
        allowed: bool,
    ) {
        let (event, protocol) = match usage {
            SocketAddrUse::TcpConnect => ("socket.connect", Protocol::Tcp),
            SocketAddrUse::UdpSend => {
                // Only allowed destinations are remembered: they are few (the grant's), refused ones are not.
                let first = || {
                    self.audited_udp
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(addr)
                };
                if allowed && !first() {
                    return;
                }
                ("socket.connect", Protocol::Udp)
            }
            SocketAddrUse::TcpBind if !allowed => ("socket.bind", Protocol::Tcp),
            SocketAddrUse::UdpBind if !allowed => ("socket.bind", Protocol::Udp),
            SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => ("socket.listen", Protocol::Tcp),
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind | SocketAddrUse::UdpReceive => return,
        };
        let mut detail = serde_json::json!({
            "protocol": match protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
            },
            "addr": addr.ip().to_canonical().to_string(),
            "port": addr.port(),
        });
        match usage {
            SocketAddrUse::TcpListen => detail["use"] = "listen".into(),
            SocketAddrUse::TcpAccept => detail["use"] = "accept".into(),
            SocketAddrUse::TcpBind
            | SocketAddrUse::TcpConnect
            | SocketAddrUse::UdpBind
            | SocketAddrUse::UdpSend
            | SocketAddrUse::UdpReceive => {}
        }
        let canonical = SocketAddr::new(addr.ip().to_canonical(), addr.port());
        if let Some(name) = self
            .resolved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(protocol, canonical))
        {
            detail["host"] = name.clone().into();
        }
        audit.record(event, if allowed { "ok" } else { "denied" }, detail);
    }
}

impl Provide for SocketsGrant {
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
        linker.allow_shadowing(true);
        let counted = link_counted_sockets(linker);
        linker.allow_shadowing(false);
        counted?;
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

    fn prepare(&self, builder: &mut InstanceBuilder) -> Result<(), PrepareError> {
        let rules = Arc::new(SocketRules::new(self));
        let check = rules.clone();
        let audit = builder.audit.clone();
        builder
            .wasi
            .allow_tcp(self.0.iter().any(|e| e.protocol == Protocol::Tcp))
            .allow_udp(self.0.iter().any(|e| e.protocol == Protocol::Udp))
            .socket_addr_check(move |addr, usage| {
                let allowed = check.check(addr, usage);
                if let Some(audit) = &audit {
                    check.audit(audit, addr, usage, allowed);
                }
                Box::pin(async move { allowed })
            });
        builder.sockets.rules = rules;
        Ok(())
    }
}

/// The version of `wasi:sockets` our name-lookup implementation is defined at; 0.2.x imports resolve to it.
const IP_NAME_LOOKUP: &str = "wasi:sockets/ip-name-lookup@0.2.12";
/// See [`IP_NAME_LOOKUP`].
const TCP: &str = "wasi:sockets/tcp@0.2.12";
/// See [`IP_NAME_LOOKUP`].
const UDP: &str = "wasi:sockets/udp@0.2.12";
/// See [`IP_NAME_LOOKUP`].
const TCP_CREATE_SOCKET: &str = "wasi:sockets/tcp-create-socket@0.2.12";
/// See [`IP_NAME_LOOKUP`].
const UDP_CREATE_SOCKET: &str = "wasi:sockets/udp-create-socket@0.2.12";

/// Replace socket creation and the sockets' destructors with versions that count each socket against the
/// instance's `limits.connections` (see [`crate::descriptors`]) from its creation until the guest drops it. A
/// socket's streams are its children, so the socket outlives them: its descriptor is closed when it is dropped.
/// A refused creation is `new-socket-limit`, as when the system runs out of descriptors.
fn link_counted_sockets(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.instance(TCP)?.resource(
        "tcp-socket",
        ResourceType::host::<TcpSocket>(),
        |mut store, rep| {
            let state = store.data_mut();
            state.table.delete(Resource::<TcpSocket>::new_own(rep))?;
            state.sockets.permits.remove(&rep);
            Ok(())
        },
    )?;
    linker.instance(UDP)?.resource(
        "udp-socket",
        ResourceType::host::<UdpSocket>(),
        |mut store, rep| {
            let state = store.data_mut();
            state.table.delete(Resource::<UdpSocket>::new_own(rep))?;
            state.sockets.permits.remove(&rep);
            Ok(())
        },
    )?;
    linker.instance(TCP_CREATE_SOCKET)?.func_wrap(
        "create-tcp-socket",
        |mut store, (family,): (network::IpAddressFamily,)| {
            let state = store.data_mut();
            let permit = match state.connections.acquire() {
                Ok(permit) => permit,
                Err(refusal) => return Ok((Err(refused(state, Protocol::Tcp, refusal)),)),
            };
            let created = tcp_create_socket::Host::create_tcp_socket(&mut state.sockets(), family);
            let created = socket_result(created)?;
            if let Ok(socket) = &created {
                state.sockets.permits.insert(socket.rep(), permit);
            }
            Ok((created,))
        },
    )?;
    linker.instance(UDP_CREATE_SOCKET)?.func_wrap_async(
        "create-udp-socket",
        |mut store, (family,): (network::IpAddressFamily,)| {
            Box::new(async move {
                let state = store.data_mut();
                let permit = match state.connections.acquire() {
                    Ok(permit) => permit,
                    Err(refusal) => return Ok((Err(refused(state, Protocol::Udp, refusal)),)),
                };
                let created =
                    udp_create_socket::Host::create_udp_socket(&mut state.sockets(), family).await;
                let created = socket_result(created)?;
                if let Ok(socket) = &created {
                    state.sockets.permits.insert(socket.rep(), permit);
                }
                Ok((created,))
            })
        },
    )?;
    Ok(())
}

/// Log and record a socket the instance may not create, and the error the guest gets for it.
fn refused(
    state: &HostState,
    protocol: Protocol,
    refusal: crate::descriptors::Refusal,
) -> ErrorCode {
    let protocol = match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    };
    tracing::info!(protocol, "socket refused: {refusal}");
    if let Some(audit) = &state.audit {
        let detail = serde_json::json!({ "protocol": protocol, "reason": refusal.reason() });
        audit.record("socket.create", "denied", detail);
    }
    ErrorCode::NewSocketLimit
}

/// A sockets result as the guest sees it: an error code, or a trap.
fn socket_result<T>(result: SocketResult<T>) -> wasmtime::Result<Result<T, ErrorCode>> {
    match result {
        Ok(v) => Ok(Ok(v)),
        Err(e) => e.downcast().map(Err),
    }
}

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
            let result = match start_lookup(&state.sockets.rules, state.audit.as_ref(), name) {
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

/// Begin a lookup of `name`, or refuse it. IP literals resolve to themselves without any query (and are not
/// recorded); every other name is recorded in `audit` as a `dns.lookup`, refused or with what it resolved to.
fn start_lookup(
    rules: &Arc<SocketRules>,
    audit: Option<&crate::audit::AuditScope>,
    name: String,
) -> Result<NameLookup, ErrorCode> {
    if let Some(ip) = ip_literal(&name) {
        return Ok(NameLookup {
            state: LookupState::Done(Ok(VecDeque::from([ip]))),
        });
    }
    // A name the guest chose may carry data it tries to smuggle out: kept, but cut to a sane length.
    let recorded = || crate::audit::truncate(name.clone(), crate::audit::MAX_FIELD);
    if !rules.may_lookup(&name) {
        tracing::info!(%name, "name lookup denied: host not in allow.sockets");
        if let Some(audit) = audit {
            audit.record(
                "dns.lookup",
                "denied",
                serde_json::json!({ "name": recorded() }),
            );
        }
        return Err(ErrorCode::AccessDenied);
    }
    let rules = rules.clone();
    let audit = audit.map(|a| (a.clone(), recorded()));
    let task = tokio::spawn(async move {
        let looked_up = tokio::net::lookup_host((name.as_str(), 0)).await;
        let ips: Vec<IpAddr> = match looked_up {
            Ok(addrs) => addrs.map(|a| a.ip().to_canonical()).collect(),
            Err(_) => {
                if let Some((audit, name)) = &audit {
                    let detail = serde_json::json!({ "name": name });
                    audit.record("dns.lookup", "error:name_unresolvable", detail);
                }
                return Err(ErrorCode::NameUnresolvable);
            }
        };
        rules.record_lookup(&name, &ips);
        if let Some((audit, name)) = &audit {
            let addresses: Vec<String> = ips.iter().map(ToString::to_string).collect();
            let detail = serde_json::json!({ "name": name, "addresses": addresses });
            audit.record("dns.lookup", "ok", detail);
        }
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
        for bad in [
            "db",
            "ftp://a:1",
            "a:0",
            "*.x:1",
            "a:port",
            "10.1:53",
            "tcp://1.2.3:80",
            "a..b:1",
            "-db.internal:5432",
        ] {
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

    #[test]
    fn audits_connects_first_udp_sends_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let scope = crate::audit::AuditScope {
            log: Arc::new(crate::audit::AuditLog::open(&path, are_policy::Fsync::Never).unwrap()),
            component: "net".into(),
            sha256: "00".into(),
            caller: "test".into(),
        };
        let grant = SocketsGrant(vec![
            "tcp://db.test:5432".parse().unwrap(),
            "udp://127.0.0.1:53".parse().unwrap(),
        ]);
        let rules = SocketRules::new(&grant);
        let db: SocketAddr = "10.0.0.9:5432".parse().unwrap();
        rules.record_lookup("db.test", &[db.ip()]);
        let dns: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let uses = [
            (db, SocketAddrUse::TcpBind),
            ("0.0.0.0:0".parse().unwrap(), SocketAddrUse::TcpBind),
            (db, SocketAddrUse::TcpConnect),
            ("10.0.0.9:22".parse().unwrap(), SocketAddrUse::TcpConnect),
            (dns, SocketAddrUse::UdpSend),
            (dns, SocketAddrUse::UdpSend),
            (dns, SocketAddrUse::UdpReceive),
            ("127.0.0.1:54".parse().unwrap(), SocketAddrUse::UdpSend),
            ("127.0.0.1:54".parse().unwrap(), SocketAddrUse::UdpSend),
            ("0.0.0.0:8080".parse().unwrap(), SocketAddrUse::TcpListen),
        ];
        for (addr, usage) in uses {
            let allowed = rules.check(addr, usage);
            rules.audit(&scope, addr, usage, allowed);
        }
        let records = crate::audit::read(&path).unwrap();
        let seen: Vec<(String, String, u64, Option<String>)> = records
            .iter()
            .map(|r| {
                (
                    r["event"].as_str().unwrap().to_string(),
                    r["outcome"].as_str().unwrap().to_string(),
                    r["detail"]["port"].as_u64().unwrap(),
                    r["detail"]["host"].as_str().map(str::to_string),
                )
            })
            .collect();
        let row = |e: &str, o: &str, p: u64, h: Option<&str>| {
            (e.to_string(), o.to_string(), p, h.map(str::to_string))
        };
        assert_eq!(
            seen,
            [
                // A bind to a named address is refused; the implicit wildcard bind is not recorded.
                row("socket.bind", "denied", 5432, Some("db.test")),
                row("socket.connect", "ok", 5432, Some("db.test")),
                row("socket.connect", "denied", 22, None),
                // Allowed UDP sends once per address, refused ones every time; receives never.
                row("socket.connect", "ok", 53, None),
                row("socket.connect", "denied", 54, None),
                row("socket.connect", "denied", 54, None),
                row("socket.listen", "denied", 8080, None),
            ]
        );
    }
}

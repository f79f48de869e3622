//! Ports for exercises: finding one that is free, and seeing when a server has
//! bound it without connecting (a server that accepts one connection must
//! still get the client's).

use std::collections::HashSet;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::Mutex;

/// Ports leased by this process right now, so exercises running side by
/// side cannot meet on one even where no lock folder can be used. A lease
/// takes its port out again when it ends.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// Whether `port` can be bound on `addr` for both TCP and UDP. An address the
/// machine does not have (no IPv6 loopback) does not count against it.
fn free_on(addr: std::net::IpAddr, port: u16) -> bool {
    let sa = SocketAddr::new(addr, port);
    let ok = |r: std::io::Result<()>| match r {
        Ok(()) => true,
        Err(e) => e.kind() == ErrorKind::AddrNotAvailable,
    };
    ok(TcpListener::bind(sa).map(drop)) && ok(UdpSocket::bind(sa).map(drop))
}

/// A port held for one exercise. Other `aula` processes skip it while the
/// lease lives: they share a folder of lock files, one per port, and the
/// lease holds an exclusive `flock` on its port's file (released by the
/// kernel even if this process dies).
#[derive(Debug)]
pub struct Lease {
    pub port: u16,
    _lock: Option<std::fs::File>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(set) = HANDED_OUT
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            set.remove(&self.port);
        }
    }
}

/// `None`: another process holds the port. `Some(None)`: no shared lock
/// folder could be used, so only this process's own bookkeeping protects it.
fn lock_port(port: u16) -> Option<Option<std::fs::File>> {
    use rustix::fs::{FlockOperation, flock};
    let dir = crate::exec::lifecycle::base_temp_dir().join("aula-ports");
    if std::fs::create_dir_all(&dir).is_err() {
        return Some(None);
    }
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(port.to_string()))
    else {
        return Some(None);
    };
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Some(Some(file)),
        Err(_) => None,
    }
}

/// A port free on 127.0.0.1 and ::1 for TCP and UDP, as LESSON-FORMAT.md
/// promises. The kernel picks it from the ephemeral range; it is checked on
/// every address and protocol a cell might use, and leased so that no other
/// exercise, in this process or another `aula`, is handed it meanwhile.
pub fn allocate() -> std::io::Result<Lease> {
    for _ in 0..200 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        let handed = handed.get_or_insert_with(HashSet::new);
        if handed.contains(&port) {
            continue;
        }
        let Some(lock) = lock_port(port) else {
            continue;
        };
        if free_on(Ipv4Addr::LOCALHOST.into(), port) && free_on(Ipv6Addr::LOCALHOST.into(), port) {
            handed.insert(port);
            return Ok(Lease { port, _lock: lock });
        }
    }
    Err(std::io::Error::new(
        ErrorKind::AddrInUse,
        "no free port on the loopback addresses after 200 tries",
    ))
}

/// One network namespace's socket tables, asked through the kernel's
/// `sock_diag` netlink interface: nothing connects to the server.
///
/// Readiness asks every few milliseconds, so the question must be cheap.
/// Reading `/proc/net/tcp` walks the whole established-connections hash
/// table (262,144 buckets on a 24 GiB machine, about 5 ms of kernel time a
/// read), while a netlink dump of listening TCP sockets walks only the
/// listeners: about 0.13 ms for all four tables. Where netlink is refused,
/// the `/proc` tables answer instead.
pub struct Tables {
    socket: Option<Mutex<Diag>>,
    /// A process in the namespace, for the `/proc` fallback; `None`: ours.
    proc_pid: Option<i32>,
}

struct Diag {
    fd: std::os::fd::OwnedFd,
    sequence: u32,
}

/// How long one answer may take: the kernel answers a dump at once, but a
/// wait must have a bound.
const DIAG_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// A `NETLINK_SOCK_DIAG` socket in this thread's network namespace.
pub fn diag_socket() -> std::io::Result<std::os::fd::OwnedFd> {
    use rustix::net::{AddressFamily, SocketType, netlink, socket};
    Ok(socket(
        AddressFamily::NETLINK,
        SocketType::RAW,
        Some(netlink::SOCK_DIAG),
    )?)
}

impl Tables {
    /// This process's own namespace.
    pub fn here() -> Tables {
        Tables::with(diag_socket().ok(), None)
    }

    /// Another namespace: `socket` was made in it (see `diag_socket`), and
    /// `pid` is a process there, for the fallback.
    pub fn with(socket: Option<std::os::fd::OwnedFd>, pid: Option<i32>) -> Tables {
        let socket = socket.and_then(|fd| {
            rustix::net::sockopt::set_socket_timeout(
                &fd,
                rustix::net::sockopt::Timeout::Recv,
                Some(DIAG_TIMEOUT),
            )
            .ok()?;
            Some(Mutex::new(Diag { fd, sequence: 0 }))
        });
        Tables {
            socket,
            proc_pid: pid,
        }
    }

    /// Whether some socket is bound to `port` as a TCP listener or a UDP
    /// socket.
    pub fn is_bound(&self, port: u16) -> bool {
        !self.bound_addresses(port).is_empty()
    }

    /// The addresses something listens on at `port` (TCP listeners and UDP
    /// sockets), so a relay can stand where the server does, and nowhere
    /// else. `true` marks TCP.
    pub fn bound_addresses(&self, port: u16) -> Vec<(bool, SocketAddr)> {
        self.bound_sockets(port)
            .into_iter()
            .map(|b| (b.tcp, b.local))
            .collect()
    }

    /// Whether a socket bound to `port` belongs to one of `pids`: the
    /// server's own bind, not another program's that took the port after
    /// aula found it free. Where a process's descriptors cannot be read
    /// (another user's, under some confinements), its sockets are taken to
    /// be its own, as they were before this could be asked.
    /// `pids` is asked only once something is bound: readiness asks every
    /// few milliseconds while the server starts.
    pub fn bound_by(&self, port: u16, pids: impl FnOnce() -> Vec<i32>) -> bool {
        let inodes: Vec<u64> = self.bound_sockets(port).iter().map(|b| b.inode).collect();
        !inodes.is_empty() && pids().iter().any(|&pid| holds_any(pid, &inodes))
    }

    fn bound_sockets(&self, port: u16) -> Vec<BoundSocket> {
        if let Some(diag) = &self.socket {
            let mut diag = diag.lock().unwrap_or_else(|e| e.into_inner());
            if let Ok(found) = diag.bound(port) {
                return found;
            }
        }
        proc_bound(port, self.proc_pid)
    }

    /// The TCP connections a server at `port` holds open (established, or
    /// closed by the peer but not yet by the server, or still being
    /// accepted), with the bytes each has received that the server has not
    /// read yet. `None` when neither way of asking answers: the caller
    /// must then assume the worst.
    pub fn open_connections(&self, port: u16) -> Option<Vec<Open>> {
        if let Some(diag) = &self.socket {
            let mut diag = diag.lock().unwrap_or_else(|e| e.into_inner());
            if let Ok(found) = diag.open(port) {
                return Some(found);
            }
        }
        proc_open(port, self.proc_pid)
    }
}

impl Tables {
    /// Bytes the server's end of one TCP connection (at `server`, from
    /// `client`) has received and not read yet; `None` if no such
    /// connection is known. An exact lookup, not a walk of the table: a
    /// relay asks it after each piece it sends.
    pub fn unread(&self, server: SocketAddr, client: SocketAddr) -> Option<u32> {
        if let Some(diag) = &self.socket {
            let mut diag = diag.lock().unwrap_or_else(|e| e.into_inner());
            if let Ok(found) = diag.one(server, client) {
                return found;
            }
        }
        let tables = match self.proc_pid {
            None => [procfs::net::tcp(), procfs::net::tcp6()],
            Some(pid) => {
                let p = procfs::process::Process::new(pid).ok()?;
                [p.tcp(), p.tcp6()]
            }
        };
        tables
            .into_iter()
            .flatten()
            .flatten()
            .find(|e| e.local_address == server && e.remote_address == client)
            .map(|e| e.rx_queue)
    }
}

/// One connection a server holds open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Open {
    /// The other end's address: which client (or relay) it is.
    pub peer: SocketAddr,
    /// Bytes received that the server has not read yet.
    pub unread: u32,
}

impl Diag {
    fn open(&mut self, port: u16) -> std::io::Result<Vec<Open>> {
        use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
        use netlink_packet_sock_diag::inet::StateFlags;
        let states = StateFlags::ESTABLISHED | StateFlags::SYN_RECV | StateFlags::CLOSE_WAIT;
        let mut found = Vec::new();
        for family in [AF_INET, AF_INET6] {
            for seen in self.dump(family, IPPROTO_TCP, states.clone())? {
                if seen.local.port() == port {
                    found.push(Open {
                        peer: seen.remote,
                        unread: seen.unread,
                    });
                }
            }
        }
        Ok(found)
    }

    /// The server's end of one connection, looked up by its addresses:
    /// `Ok(None)` when the kernel has no such socket.
    fn one(&mut self, server: SocketAddr, client: SocketAddr) -> std::io::Result<Option<u32>> {
        use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
        use netlink_packet_sock_diag::inet::{SocketId, StateFlags};
        let family = if server.is_ipv4() { AF_INET } else { AF_INET6 };
        let id = SocketId {
            source_port: server.port(),
            destination_port: client.port(),
            source_address: server.ip(),
            destination_address: client.ip(),
            interface_id: 0,
            // INET_DIAG_NOCOOKIE: any socket with these addresses.
            cookie: [0xff; 8],
        };
        match self.ask(family, IPPROTO_TCP, StateFlags::all(), Some(id)) {
            // The kernel's lookup falls back to the listener of the
            // server's port: that is not the connection asked about.
            Ok(found) => Ok(found.iter().find(|s| s.remote == client).map(|s| s.unread)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn bound(&mut self, port: u16) -> std::io::Result<Vec<BoundSocket>> {
        use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP};
        use netlink_packet_sock_diag::inet::StateFlags;
        let mut found = Vec::new();
        for (tcp, protocol, states) in [
            // Listeners only: the kernel then skips the established table.
            (true, IPPROTO_TCP, StateFlags::LISTEN),
            (false, IPPROTO_UDP, StateFlags::all()),
        ] {
            for family in [AF_INET, AF_INET6] {
                for seen in self.dump(family, protocol, states.clone())? {
                    if seen.local.port() == port {
                        found.push(BoundSocket {
                            tcp,
                            local: seen.local,
                            inode: seen.inode,
                        });
                    }
                }
            }
        }
        Ok(found)
    }

    /// One table's sockets in `states`.
    fn dump(
        &mut self,
        family: u8,
        protocol: u8,
        states: netlink_packet_sock_diag::inet::StateFlags,
    ) -> std::io::Result<Vec<Seen>> {
        self.ask(family, protocol, states, None)
    }

    /// A dump of one table's sockets in `states`, or with `one`, the
    /// socket of those addresses only.
    fn ask(
        &mut self,
        family: u8,
        protocol: u8,
        states: netlink_packet_sock_diag::inet::StateFlags,
        one: Option<netlink_packet_sock_diag::inet::SocketId>,
    ) -> std::io::Result<Vec<Seen>> {
        use netlink_packet_core::{
            NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
        };
        use netlink_packet_sock_diag::SockDiagMessage;
        use netlink_packet_sock_diag::constants::AF_INET;
        use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId};
        let invalid = |e: String| std::io::Error::new(ErrorKind::InvalidData, e);

        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        let dump = one.is_none();
        header.flags = if dump {
            NLM_F_REQUEST | NLM_F_DUMP
        } else {
            NLM_F_REQUEST
        };
        header.sequence_number = self.sequence;
        let socket_id = match one {
            Some(id) => id,
            None if family == AF_INET => SocketId::new_v4(),
            None => SocketId::new_v6(),
        };
        let mut request = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol,
                extensions: ExtensionFlags::empty(),
                states,
                socket_id,
            })
            .into(),
        );
        request.finalize();
        let mut bytes = vec![0; request.buffer_len()];
        request.serialize(&mut bytes);
        rustix::net::send(&self.fd, &bytes, rustix::net::SendFlags::empty())?;

        let mut found = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        // Bounded: the dump ends with `Done` or an error, and each receive
        // with an answer or the socket's timeout.
        loop {
            let (n, _) = rustix::net::recv(&self.fd, &mut buf, rustix::net::RecvFlags::empty())?;
            if n == 0 {
                return Err(invalid("empty netlink answer".into()));
            }
            let mut at = 0;
            while at < n {
                let message = NetlinkMessage::<SockDiagMessage>::deserialize(&buf[at..n])
                    .map_err(|e| invalid(e.to_string()))?;
                let length = message.header.length as usize;
                // What is left of an earlier, abandoned question.
                let ours = message.header.sequence_number == self.sequence;
                match message.payload {
                    NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) if ours => {
                        let id = &r.header.socket_id;
                        found.push(Seen {
                            local: SocketAddr::new(id.source_address, id.source_port),
                            remote: SocketAddr::new(id.destination_address, id.destination_port),
                            unread: r.header.recv_queue,
                            inode: u64::from(r.header.inode),
                        });
                        // An exact lookup has one answer and no `Done`.
                        if !dump {
                            return Ok(found);
                        }
                    }
                    NetlinkPayload::Done(_) if ours => return Ok(found),
                    NetlinkPayload::Error(e) if ours => {
                        return Err(match e.code {
                            Some(code) => std::io::Error::from_raw_os_error(-code.get()),
                            None => invalid(format!("netlink: {e:?}")),
                        });
                    }
                    _ => {}
                }
                if length == 0 {
                    break;
                }
                at += length;
            }
        }
    }
}

/// A socket bound to a port: by TCP (listening) or UDP, where, and its
/// inode.
struct BoundSocket {
    tcp: bool,
    local: SocketAddr,
    inode: u64,
}

/// Whether `pid` holds a descriptor of one of the sockets `inodes`; true
/// when its descriptors cannot be read (see [`Tables::bound_by`]).
fn holds_any(pid: i32, inodes: &[u64]) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return std::path::Path::new(&format!("/proc/{pid}")).exists();
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| {
            let target = target.to_string_lossy();
            target
                .strip_prefix("socket:[")
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| inodes.contains(&n))
        })
    })
}

/// A socket as a netlink dump shows it.
struct Seen {
    local: SocketAddr,
    remote: SocketAddr,
    unread: u32,
    /// The socket's inode: what `/proc/PID/fd` links name (`socket:[N]`).
    inode: u64,
}

/// [`Tables::open_connections`] through `/proc/PID/net/tcp*`.
fn proc_open(port: u16, pid: Option<i32>) -> Option<Vec<Open>> {
    use procfs::net::TcpState;
    let tables = match pid {
        None => [procfs::net::tcp(), procfs::net::tcp6()],
        Some(pid) => {
            let p = procfs::process::Process::new(pid).ok()?;
            [p.tcp(), p.tcp6()]
        }
    };
    let mut found = Vec::new();
    let [v4, v6] = tables;
    // IPv4's table is always there; IPv6's only where IPv6 is.
    for e in v4.ok()?.into_iter().chain(v6.into_iter().flatten()) {
        {
            let open = matches!(
                e.state,
                TcpState::Established | TcpState::SynRecv | TcpState::CloseWait
            );
            if open && e.local_address.port() == port {
                found.push(Open {
                    peer: e.remote_address,
                    unread: e.rx_queue,
                });
            }
        }
    }
    Some(found)
}

/// The same question through `/proc/PID/net/*` (or this process's own).
fn proc_bound(port: u16, pid: Option<i32>) -> Vec<BoundSocket> {
    use procfs::net::{TcpNetEntry, TcpState, UdpNetEntry};
    type Tables = (
        Vec<procfs::ProcResult<Vec<TcpNetEntry>>>,
        Vec<procfs::ProcResult<Vec<UdpNetEntry>>>,
    );
    let (tcp, udp): Tables = match pid {
        None => (
            vec![procfs::net::tcp(), procfs::net::tcp6()],
            vec![procfs::net::udp(), procfs::net::udp6()],
        ),
        Some(pid) => match procfs::process::Process::new(pid) {
            Ok(p) => (vec![p.tcp(), p.tcp6()], vec![p.udp(), p.udp6()]),
            Err(_) => return Vec::new(),
        },
    };
    let mut found = Vec::new();
    for e in tcp.into_iter().flatten().flatten() {
        if e.local_address.port() == port && e.state == TcpState::Listen {
            found.push(BoundSocket {
                tcp: true,
                local: e.local_address,
                inode: e.inode,
            });
        }
    }
    for e in udp.into_iter().flatten().flatten() {
        if e.local_address.port() == port {
            found.push(BoundSocket {
                tcp: false,
                local: e.local_address,
                inode: e.inode,
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocated_ports_are_distinct_and_free() {
        let a = allocate().unwrap();
        let b = allocate().unwrap();
        assert_ne!(a.port, b.port);
        // Another process sees the port as leased.
        assert!(lock_port(a.port).is_none());
        let in_use = |p| {
            HANDED_OUT
                .lock()
                .unwrap()
                .as_ref()
                .is_some_and(|s| s.contains(&p))
        };
        assert!(in_use(b.port));
        let b_port = b.port;
        drop(b);
        // The lease ended: the port is neither held nor locked any more.
        assert!(!in_use(b_port));
        assert!(lock_port(b_port).is_some());
        let a = a.port;
        assert!(!Tables::here().is_bound(a));
        TcpListener::bind((Ipv4Addr::LOCALHOST, a)).unwrap();
        UdpSocket::bind((Ipv4Addr::LOCALHOST, a)).unwrap();
    }

    /// Both ways of asking, so the fallback stays right too.
    fn both_ways() -> [Tables; 2] {
        let netlink = Tables::here();
        assert!(netlink.socket.is_some(), "sock_diag netlink refused here");
        [netlink, Tables::with(None, Some(std::process::id() as i32))]
    }

    #[test]
    fn a_bound_socket_belongs_to_the_process_that_holds_it_not_to_another() {
        let other = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let ours = [std::process::id() as i32];
        let theirs = [other.id() as i32];
        for tables in both_ways() {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            let port = listener.local_addr().unwrap().port();
            assert!(tables.bound_by(port, || ours.to_vec()));
            assert!(
                !tables.bound_by(port, || theirs.to_vec()),
                "sleep holds no socket"
            );
            drop(listener);
            assert!(!tables.bound_by(port, || ours.to_vec()), "nothing is bound");
            let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            let port = udp.local_addr().unwrap().port();
            assert!(tables.bound_by(port, || ours.to_vec()));
            assert!(!tables.bound_by(port, || theirs.to_vec()));
        }
        let mut other = other;
        let _ = other.kill();
        let _ = other.wait();
    }

    #[test]
    fn a_tcp_listener_or_udp_socket_counts_as_bound_a_connection_does_not() {
        for tables in both_ways() {
            let port = allocate().unwrap().port;
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
            assert_eq!(
                tables.bound_addresses(port),
                vec![(true, listener.local_addr().unwrap())]
            );
            drop(listener);
            assert!(!tables.is_bound(port));

            let port = allocate().unwrap().port;
            let socket = UdpSocket::bind((Ipv6Addr::LOCALHOST, port));
            if let Ok(socket) = socket {
                assert_eq!(
                    tables.bound_addresses(port),
                    vec![(false, socket.local_addr().unwrap())]
                );
                drop(socket);
            }
            let udp4 = UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
            assert!(tables.is_bound(port));
            drop(udp4);
            assert!(!tables.is_bound(port));

            // A client's socket uses an ephemeral local port; it is not a
            // server, and neither is the accepted connection.
            let server = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            let client = std::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
            let _accepted = server.accept().unwrap();
            let client_port = client.local_addr().unwrap().port();
            assert!(!tables.is_bound(client_port));
            assert!(tables.is_bound(server.local_addr().unwrap().port()));
        }
    }

    #[test]
    fn many_questions_on_one_socket_each_get_their_own_answer() {
        let tables = Tables::here();
        let listeners: Vec<TcpListener> = (0..50)
            .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap())
            .collect();
        for l in &listeners {
            let addr = l.local_addr().unwrap();
            assert_eq!(tables.bound_addresses(addr.port()), vec![(true, addr)]);
        }
    }

    #[test]
    fn what_a_server_has_not_read_is_seen_connection_by_connection() {
        use std::io::{Read as _, Write as _};
        for tables in both_ways() {
            let server = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            let at = server.local_addr().unwrap();
            let mut client = std::net::TcpStream::connect(at).unwrap();
            let (mut accepted, from) = server.accept().unwrap();
            client.write_all(b"hello").unwrap();
            let end = std::time::Instant::now() + std::time::Duration::from_secs(2);
            while tables.unread(at, from) != Some(5) && std::time::Instant::now() < end {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            assert_eq!(tables.unread(at, from), Some(5));
            assert_eq!(
                tables.open_connections(at.port()),
                Some(vec![Open {
                    peer: from,
                    unread: 5
                }])
            );
            let mut b = [0u8; 5];
            accepted.read_exact(&mut b).unwrap();
            assert_eq!(tables.unread(at, from), Some(0));
            // No such connection: the client's end seen as a server's.
            let nobody: SocketAddr = (Ipv4Addr::LOCALHOST, 1).into();
            assert_eq!(tables.unread(at, nobody), None);
        }
    }
}

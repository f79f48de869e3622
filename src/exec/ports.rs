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
    let dir = super::lifecycle::base_temp_dir().join("aula-ports");
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

/// Whether some socket is bound to `port` as a TCP listener or a UDP socket,
/// read from the kernel's socket tables, so nothing connects to the server.
///
/// `netns`: a process in the network namespace to look in (`--isolate`);
/// `None` for this process's own.
pub fn is_bound(port: u16, netns: Option<i32>) -> bool {
    match netns {
        Some(pid) => is_bound_in(port, pid),
        None => !bound_addresses(port).is_empty(),
    }
}

/// The addresses something listens on at `port` in this process's network
/// namespace (TCP listeners and UDP sockets), so a relay can stand where
/// the server does, and nowhere else.
pub fn bound_addresses(port: u16) -> Vec<(bool, std::net::SocketAddr)> {
    use procfs::net::{TcpState, tcp, tcp6, udp, udp6};
    let mut found = Vec::new();
    for e in [tcp(), tcp6()].into_iter().flatten().flatten() {
        if e.local_address.port() == port && e.state == TcpState::Listen {
            found.push((true, e.local_address));
        }
    }
    for e in [udp(), udp6()].into_iter().flatten().flatten() {
        if e.local_address.port() == port {
            found.push((false, e.local_address));
        }
    }
    found
}

fn is_bound_in(port: u16, pid: i32) -> bool {
    use procfs::net::TcpState;
    let Ok(p) = procfs::process::Process::new(pid) else {
        return false;
    };
    let tcp_listening = [p.tcp(), p.tcp6()]
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.local_address.port() == port && e.state == TcpState::Listen);
    tcp_listening
        || [p.udp(), p.udp6()]
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.local_address.port() == port)
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
        assert!(!is_bound(a, None));
        TcpListener::bind((Ipv4Addr::LOCALHOST, a)).unwrap();
        UdpSocket::bind((Ipv4Addr::LOCALHOST, a)).unwrap();
    }

    #[test]
    fn a_tcp_listener_or_udp_socket_counts_as_bound_a_connection_does_not() {
        let port = allocate().unwrap().port;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
        assert!(is_bound(port, None));
        // Read through a process's own tables, as `--isolate` does.
        assert!(is_bound(port, Some(std::process::id() as i32)));
        drop(listener);
        assert!(!is_bound(port, None));

        let port = allocate().unwrap().port;
        let socket = UdpSocket::bind((Ipv6Addr::LOCALHOST, port));
        if let Ok(socket) = socket {
            assert!(is_bound(port, None));
            drop(socket);
        }
        let udp4 = UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
        assert!(is_bound(port, None));
        drop(udp4);

        // A client's socket uses an ephemeral local port; it is not a server.
        let server = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let client = std::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let client_port = client.local_addr().unwrap().port();
        assert!(!is_bound(client_port, None));
    }
}

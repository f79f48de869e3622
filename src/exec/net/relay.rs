//! A relay between an exercise's clients and its server, for `--trace`
//! and for faults on the wire (`wire=`, LESSON-FORMAT 1.2). It records the
//! bytes of each connection both ways, TCP and UDP, so a student whose
//! client hangs sees what was sent and what came back; and it applies a
//! client's faults to what that client sends, the same way on every run.
//!
//! Each route is a port of its own with its faults: a client with faults
//! is given its route's port, the others share one without faults.
//!
//! The server binds its own port; clients are given the relay's. The relay
//! is aula itself, run again as a process, so it joins the lane's network
//! namespace the way students' processes do (a thread of the host could
//! not, without privileges). It says `ready` once listening, and writes
//! what it saw to a file when its stdin closes.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket,
};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::lesson::WireFault;
use crate::observation::{Chunk, ChunkFault, Connection, Side};

/// Set on the relay process: its settings, as JSON.
pub const RELAY_ENV: &str = "AULA_RELAY";

/// How often blocked reads look up to see whether the relay is stopping.
const TICK: Duration = Duration::from_millis(20);

#[derive(Debug, Serialize, Deserialize)]
struct Settings {
    routes: Vec<Route>,
    upstream: u16,
    out: PathBuf,
}

/// A port the relay listens on, and the faults it applies to what comes in
/// there.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Route {
    pub listen: u16,
    pub faults: Vec<WireFault>,
}

impl Route {
    fn split(&self) -> Option<usize> {
        self.faults.iter().find_map(|f| match f {
            WireFault::Split(n) => Some(*n as usize),
            _ => None,
        })
    }

    fn delay(&self) -> Option<Duration> {
        self.faults.iter().find_map(|f| match f {
            WireFault::Delay(ms) => Some(Duration::from_millis(u64::from(*ms))),
            _ => None,
        })
    }

    /// Whether the pieces are recorded one by one: a trace shows what the
    /// server was given.
    fn pieces(&self) -> bool {
        !self.faults.is_empty()
    }
}

/// A running relay, owned by the exercise that started it.
pub struct Relay {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<BufReader<std::process::ChildStdout>>,
    out: PathBuf,
}

impl Relay {
    /// Starts a relay from each route to `upstream` on both loopback
    /// addresses, in `netns` when given; returns once it runs.
    pub fn start(
        routes: Vec<Route>,
        upstream: u16,
        dir: &Path,
        netns: Option<&super::netns::Netns>,
    ) -> Result<Relay> {
        use std::os::unix::process::CommandExt as _;
        std::fs::create_dir_all(dir)?;
        let out = dir.join("wire.json");
        let settings = serde_json::to_string(&Settings {
            routes,
            upstream,
            out: out.clone(),
        })?;
        let mut command = Command::new(std::env::current_exe()?);
        command
            .env(RELAY_ENV, settings)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0);
        // SAFETY: one prctl(2): async-signal-safe, nothing allocated.
        unsafe {
            command.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::KILL,
                ))
                .map_err(Into::into)
            });
        }
        if let Some(ns) = netns {
            ns.enter_in(&mut command)?;
        }
        let mut child = command.spawn().context("starting the --trace relay")?;
        // The relay answers at once, or exits (end of file).
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        stdout.read_line(&mut line)?;
        if line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the --trace relay did not start: {}", line.trim());
        }
        let stdin = child.stdin.take();
        Ok(Relay {
            child,
            stdin,
            stdout: Some(stdout),
            out,
        })
    }

    /// Once the server is bound: the relay listens where the server does
    /// (TCP or UDP, IPv4 or IPv6), so a client that tries another address
    /// is refused as it would be without the relay. Returns once listening.
    pub fn listen(&mut self) -> Result<()> {
        let (Some(stdin), Some(stdout)) = (self.stdin.as_mut(), self.stdout.as_mut()) else {
            bail!("the --trace relay is gone");
        };
        stdin.write_all(b"listen\n")?;
        stdin.flush()?;
        // The relay answers at once, or exits (end of file).
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        if line.trim() != "listening" {
            bail!("the --trace relay could not listen: {}", line.trim());
        }
        Ok(())
    }

    /// Stops the relay and returns what it recorded.
    pub fn finish(mut self) -> Vec<Connection> {
        drop(self.stdin.take());
        let begun = Instant::now();
        while begun.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read(&self.out)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One connection's record, shared by the threads that move its bytes.
#[derive(Clone)]
struct Record {
    connection: Arc<Mutex<Connection>>,
    /// Each write is a chunk of its own (the pieces faults made), rather
    /// than reads of one side in a row making one.
    pieces: bool,
}

/// Now, in microseconds since the Unix epoch.
fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl Record {
    fn new(protocol: &str, client: SocketAddr, server: SocketAddr, pieces: bool) -> Record {
        let connection = Connection {
            protocol: protocol.to_owned(),
            client: client.to_string(),
            server: server.to_string(),
            chunks: Vec::new(),
            sent: 0,
            received: 0,
            cut: false,
        };
        Record {
            connection: Arc::new(Mutex::new(connection)),
            pieces,
        }
    }

    fn add(&self, from: Side, data: &[u8]) {
        self.add_marked(from, data, None);
    }

    /// Like [`Record::add`], with what a fault made of it: a marked
    /// datagram is always a chunk of its own.
    fn add_marked(&self, from: Side, data: &[u8], fault: Option<ChunkFault>) {
        let mut c = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        let total = match from {
            Side::Client => &mut c.sent,
            Side::Server => &mut c.received,
        };
        let offset = *total;
        *total += data.len() as u64;
        let room = usize::try_from((Connection::KEEP as u64).saturating_sub(offset)).unwrap_or(0);
        if data.len() > room {
            c.cut = true;
        }
        let data = &data[..data.len().min(room)];
        if data.is_empty() {
            return;
        }
        match c.chunks.last_mut() {
            // Reads of one side in a row are one chunk.
            Some(last)
                if !self.pieces
                    && fault.is_none()
                    && last.fault.is_none()
                    && last.from == from
                    && last.offset + last.data.len() as u64 == offset =>
            {
                last.data.extend_from_slice(data)
            }
            _ => c.chunks.push(Chunk {
                from,
                offset,
                data: data.to_vec(),
                at_us: now_us(),
                fault,
            }),
        }
    }

    /// An empty datagram is a message too.
    fn add_empty_datagram(&self, from: Side, fault: Option<ChunkFault>) {
        let mut c = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        let offset = match from {
            Side::Client => c.sent,
            Side::Server => c.received,
        };
        c.chunks.push(Chunk {
            from,
            offset,
            data: Vec::new(),
            at_us: now_us(),
            fault,
        });
    }
}

/// In the relay process: relays until stdin closes, then writes the record.
pub fn relay_main(settings: &str) -> ! {
    let code = match serde_json::from_str::<Settings>(settings) {
        Ok(s) => match relay(&s) {
            Ok(()) => 0,
            Err(e) => {
                println!("error: {e:#}");
                1
            }
        },
        Err(e) => {
            println!("error: {e}");
            1
        }
    };
    std::process::exit(code)
}

fn relay(settings: &Settings) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let records: Arc<Mutex<Vec<Record>>> = Arc::default();
    let mut threads = Vec::new();
    println!("ready");
    std::io::stdout().flush()?;
    // Each line asks to listen where the server now is; the end of stdin
    // (the host closed it, or died and took us with it) is the end.
    let mut lines = BufReader::new(std::io::stdin()).lines();
    let tables = super::ports::Tables::here();
    while let Some(Ok(line)) = lines.next() {
        if line.trim() != "listen" {
            continue;
        }
        let bound = tables.bound_addresses(settings.upstream);
        for ((is_tcp, server), route) in bound
            .iter()
            .flat_map(|b| settings.routes.iter().map(move |r| (*b, r)))
        {
            for ip in mirrored(server.ip()) {
                let upstream = SocketAddr::new(ip, settings.upstream);
                let (stop, records) = (Arc::clone(&stop), Arc::clone(&records));
                let route = route.clone();
                if is_tcp {
                    let Ok(listener) = TcpListener::bind((ip, route.listen)) else {
                        continue;
                    };
                    listener.set_nonblocking(true)?;
                    threads.push(std::thread::spawn(move || {
                        tcp(listener, upstream, &route, &stop, &records)
                    }));
                } else {
                    let Ok(socket) = UdpSocket::bind((ip, route.listen)) else {
                        continue;
                    };
                    socket.set_read_timeout(Some(TICK))?;
                    threads.push(std::thread::spawn(move || {
                        udp(socket, upstream, &route, &stop, &records)
                    }));
                }
            }
        }
        println!("listening");
        std::io::stdout().flush()?;
    }
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    let connections: Vec<Connection> = records
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|r| {
            r.connection
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        })
        .collect();
    std::fs::write(&settings.out, serde_json::to_vec(&connections)?)?;
    Ok(())
}

/// The loopback addresses a server bound at `ip` answers on: both for an
/// unspecified IPv6 address (dual stack), IPv4's for `0.0.0.0`.
fn mirrored(ip: IpAddr) -> Vec<IpAddr> {
    let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    match ip {
        IpAddr::V6(a) if a.is_unspecified() => vec![v4, v6],
        IpAddr::V6(_) => vec![v6],
        IpAddr::V4(_) => vec![v4],
    }
}

fn tcp(
    listener: TcpListener,
    upstream: SocketAddr,
    route: &Route,
    stop: &Arc<AtomicBool>,
    records: &Mutex<Vec<Record>>,
) {
    let here = listener.local_addr().unwrap_or(upstream);
    let mut pumps = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let (client, addr) = match listener.accept() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            Err(_) => continue,
        };
        let record = Record::new("tcp", addr, here, route.pieces());
        records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record.clone());
        let _ = client.set_nonblocking(false);
        // A server that is not there: the client sees its connection closed.
        let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(2)) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        // Each piece goes out in a segment of its own.
        let _ = server.set_nodelay(true);
        for (from, to, side) in [
            (client.try_clone(), server.try_clone(), Side::Client),
            (server.try_clone(), client.try_clone(), Side::Server),
        ] {
            let (Ok(from), Ok(to)) = (from, to) else {
                continue;
            };
            let (stop, record) = (Arc::clone(stop), record.clone());
            // Faults apply to what the client sends.
            let faults = match side {
                Side::Client => route.clone(),
                Side::Server => Route {
                    listen: route.listen,
                    faults: Vec::new(),
                },
            };
            pumps.push(std::thread::spawn(move || {
                pump(from, to, side, &faults, &stop, &record)
            }));
        }
    }
    for p in pumps {
        let _ = p.join();
    }
}

/// Moves one direction of a TCP connection, recording it and applying
/// `route`'s faults; passes the end of the stream on as a half close, as
/// the peer did.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    side: Side,
    route: &Route,
    stop: &AtomicBool,
    record: &Record,
) {
    let _ = from.set_read_timeout(Some(TICK));
    let mut buf = vec![0u8; 64 * 1024];
    let mut pieces = Pieces::new(route, &to);
    while !stop.load(Ordering::SeqCst) {
        match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if pieces.send(&mut to, &buf[..n], side, record).is_err() {
                    let _ = from.shutdown(Shutdown::Read);
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(_) => {
                // A reset: the other side sees one too.
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

/// How a TCP direction's bytes are written on: whole, or in pieces each
/// written on its own once the server has read the one before (so that a
/// server's `read` returns one piece, on every run), each held for the
/// delay first.
struct Pieces {
    split: Option<usize>,
    delay: Option<Duration>,
    /// The server's end and ours, to ask the kernel what it has not read.
    ends: Option<(SocketAddr, SocketAddr)>,
    tables: Option<super::ports::Tables>,
}

/// How long the relay waits for the server to read a piece before it sends
/// the next anyway: a server that stopped reading is not waited for again.
const PIECE_READ: Duration = Duration::from_millis(200);

impl Pieces {
    fn new(route: &Route, to: &TcpStream) -> Pieces {
        let split = route.split();
        let ends = to.peer_addr().ok().zip(to.local_addr().ok());
        Pieces {
            split,
            delay: route.delay(),
            ends,
            tables: split.map(|_| super::ports::Tables::here()),
        }
    }

    fn send(
        &mut self,
        to: &mut TcpStream,
        data: &[u8],
        side: Side,
        record: &Record,
    ) -> std::io::Result<()> {
        if self.split.is_none() && self.delay.is_none() {
            record.add(side, data);
            return to.write_all(data);
        }
        for piece in data.chunks(self.split.unwrap_or(data.len()).max(1)) {
            if let Some(delay) = self.delay {
                std::thread::sleep(delay);
            }
            record.add(side, piece);
            to.write_all(piece)?;
            if self.split.is_some() && !self.read_by_server() {
                // It stopped reading: the rest goes as fast as it can.
                self.tables = None;
            }
        }
        Ok(())
    }

    /// Waits, bounded, until the server has read all it was sent.
    fn read_by_server(&self) -> bool {
        let (Some(tables), Some((server, ours))) = (&self.tables, self.ends) else {
            return false;
        };
        let begun = Instant::now();
        let mut pause = Duration::from_micros(50);
        while begun.elapsed() < PIECE_READ {
            match tables.unread(server, ours) {
                Some(0) => return true,
                Some(_) => {}
                None => return false,
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
        false
    }
}

/// What becomes of a UDP client's datagrams under its route's faults,
/// counted from 1: the datagrams to send now, in order.
struct Datagrams {
    faults: Vec<WireFault>,
    count: u32,
    /// A datagram held by `swap`, until the next one comes (or, bounded,
    /// the relay gives up waiting).
    held: Option<(Vec<u8>, Instant)>,
}

/// How long a swapped datagram waits for the one it is swapped with.
const SWAP_WAIT: Duration = Duration::from_millis(500);

impl Datagrams {
    fn new(route: &Route) -> Datagrams {
        Datagrams {
            faults: route.faults.clone(),
            count: 0,
            held: None,
        }
    }

    /// What to record, in order, each with what its fault made of it; all
    /// but the dropped go on to the server.
    fn arrive(&mut self, data: &[u8]) -> Vec<Datagram> {
        self.count += 1;
        let k = self.count;
        let mut out = Vec::new();
        for f in &self.faults {
            match *f {
                WireFault::Drop(n) if n == k => {
                    out.push(Datagram::marked(data, ChunkFault::Dropped));
                    return self.release(out);
                }
                WireFault::Dup(n) if n == k => out.push(Datagram::plain(data)),
                WireFault::Swap(n) if n == k => {
                    self.held = Some((data.to_vec(), Instant::now()));
                    return out;
                }
                _ => {}
            }
        }
        let duplicated = !out.is_empty();
        out.push(match duplicated {
            true => Datagram::marked(data, ChunkFault::Duplicate),
            false => Datagram::plain(data),
        });
        self.release(out)
    }

    /// `out`, then the held datagram if there is one: it goes after the one
    /// that came next.
    fn release(&mut self, mut out: Vec<Datagram>) -> Vec<Datagram> {
        if let Some((held, _)) = self.held.take() {
            out.push(Datagram::marked(&held, ChunkFault::Late));
        }
        out
    }

    /// The held datagram, once it has waited long enough for a next one.
    fn overdue(&mut self) -> Option<Datagram> {
        match &self.held {
            Some((_, since)) if since.elapsed() >= SWAP_WAIT => self
                .held
                .take()
                .map(|(d, _)| Datagram::marked(&d, ChunkFault::Late)),
            _ => None,
        }
    }
}

/// A datagram the relay records, and sends on unless it was dropped.
struct Datagram {
    data: Vec<u8>,
    fault: Option<ChunkFault>,
}

impl Datagram {
    fn plain(data: &[u8]) -> Datagram {
        Datagram {
            data: data.to_vec(),
            fault: None,
        }
    }

    fn marked(data: &[u8], fault: ChunkFault) -> Datagram {
        Datagram {
            data: data.to_vec(),
            fault: Some(fault),
        }
    }
}

/// One UDP client of the relay: its own socket towards the server, so
/// replies find their client.
struct Peer {
    client: SocketAddr,
    up: Arc<UdpSocket>,
    record: Record,
    datagrams: Datagrams,
}

impl Peer {
    /// Records and sends on what the client's faults make of its datagrams.
    fn forward(&self, datagrams: Vec<Datagram>) {
        for d in datagrams {
            if d.data.is_empty() {
                self.record.add_empty_datagram(Side::Client, d.fault);
            } else {
                self.record.add_marked(Side::Client, &d.data, d.fault);
            }
            if d.fault != Some(ChunkFault::Dropped) {
                let _ = self.up.send(&d.data);
            }
        }
    }
}

fn udp(
    socket: UdpSocket,
    upstream: SocketAddr,
    route: &Route,
    stop: &Arc<AtomicBool>,
    records: &Mutex<Vec<Record>>,
) {
    let socket = Arc::new(socket);
    let mut peers: Vec<Peer> = Vec::new();
    let mut replies = Vec::new();
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        for peer in &mut peers {
            if let Some(late) = peer.datagrams.overdue() {
                peer.forward(vec![late]);
            }
        }
        let Ok((n, client)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let at = match peers.iter().position(|p| p.client == client) {
            Some(i) => i,
            None => {
                let Some((peer, reply)) = open_peer(&socket, client, upstream, route, stop) else {
                    continue;
                };
                records
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(peer.record.clone());
                replies.push(reply);
                peers.push(peer);
                peers.len() - 1
            }
        };
        let peer = &mut peers[at];
        let out = peer.datagrams.arrive(&buf[..n]);
        peer.forward(out);
    }
    for r in replies {
        let _ = r.join();
    }
}

/// A new client's socket towards the server, and the thread that passes
/// the server's replies back to it.
fn open_peer(
    socket: &Arc<UdpSocket>,
    client: SocketAddr,
    upstream: SocketAddr,
    route: &Route,
    stop: &Arc<AtomicBool>,
) -> Option<(Peer, std::thread::JoinHandle<()>)> {
    let here = socket.local_addr().unwrap_or(upstream);
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::LOCALHOST, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::LOCALHOST, 0).into(),
    };
    let up = UdpSocket::bind(local)
        .and_then(|s| s.connect(upstream).map(|()| s))
        .ok()?;
    let _ = up.set_read_timeout(Some(TICK));
    let up = Arc::new(up);
    let record = Record::new("udp", client, here, route.pieces());
    let (stop, back, up2, rec2) = (
        Arc::clone(stop),
        Arc::clone(socket),
        Arc::clone(&up),
        record.clone(),
    );
    let reply = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while !stop.load(Ordering::SeqCst) {
            if let Ok(n) = up2.recv(&mut buf) {
                if n == 0 {
                    rec2.add_empty_datagram(Side::Server, None);
                } else {
                    rec2.add(Side::Server, &buf[..n]);
                }
                let _ = back.send_to(&buf[..n], client);
            }
        }
    });
    let peer = Peer {
        client,
        up,
        record,
        datagrams: Datagrams::new(route),
    };
    Some((peer, reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_keeps_the_first_bytes_of_each_side_in_order_and_says_when_it_cut() {
        let r = Record::new(
            "tcp",
            "127.0.0.1:5000".parse().unwrap(),
            "127.0.0.1:4000".parse().unwrap(),
            false,
        );
        r.add(Side::Client, b"Hello, ");
        r.add(Side::Client, b"world");
        r.add(Side::Server, b"Hello");
        r.add(Side::Client, &vec![b'x'; Connection::KEEP]);
        let c = r.connection.lock().unwrap().clone();
        assert_eq!(c.chunks.len(), 3);
        assert_eq!(c.chunks[0].data, b"Hello, world");
        assert_eq!((c.chunks[1].from, c.chunks[1].offset), (Side::Server, 0));
        assert_eq!(c.chunks[2].offset, 12);
        assert_eq!(c.chunks[2].data.len(), Connection::KEEP - 12);
        assert_eq!((c.sent, c.received), (12 + Connection::KEEP as u64, 5));
        assert!(c.cut);
    }

    #[test]
    fn a_udp_clients_faults_drop_double_and_swap_the_datagrams_they_name() {
        let route = |faults| Route { listen: 0, faults };
        let run = |faults: Vec<WireFault>| {
            let mut d = Datagrams::new(&route(faults));
            let mut out = Vec::new();
            for m in [b"a", b"b", b"c", b"d"] {
                out.extend(d.arrive(m));
            }
            // Each as it is recorded: `-` dropped (never sent on), `+` the
            // relay's duplicate, `~` held back and sent late.
            out.into_iter()
                .map(|d| {
                    let mark = match d.fault {
                        None => "",
                        Some(ChunkFault::Dropped) => "-",
                        Some(ChunkFault::Duplicate) => "+",
                        Some(ChunkFault::Late) => "~",
                    };
                    format!("{mark}{}", String::from_utf8(d.data).unwrap())
                })
                .collect::<String>()
        };
        assert_eq!(run(vec![]), "abcd");
        assert_eq!(run(vec![WireFault::Drop(2)]), "a-bcd");
        assert_eq!(run(vec![WireFault::Dup(1)]), "a+abcd");
        assert_eq!(run(vec![WireFault::Swap(2)]), "ac~bd");
        assert_eq!(run(vec![WireFault::Swap(1), WireFault::Drop(3)]), "b~a-cd");
        // The last datagram swapped with none: it goes once the wait is over.
        let mut d = Datagrams::new(&route(vec![WireFault::Swap(1)]));
        assert!(d.arrive(b"x").is_empty());
        assert!(d.overdue().is_none());
        std::thread::sleep(SWAP_WAIT);
        let late = d.overdue().map(|d| (d.data, d.fault));
        assert_eq!(late, Some((b"x".to_vec(), Some(ChunkFault::Late))));
    }
}

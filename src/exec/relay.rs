//! `--trace`: a relay between an exercise's clients and its server that
//! records the bytes of each connection both ways, TCP and UDP, so a
//! student whose client hangs sees what was sent and what came back.
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

use crate::observation::{Chunk, Connection, Side};

/// Set on the relay process: its settings, as JSON.
pub const RELAY_ENV: &str = "AULA_RELAY";

/// How often blocked reads look up to see whether the relay is stopping.
const TICK: Duration = Duration::from_millis(20);

#[derive(Debug, Serialize, Deserialize)]
struct Settings {
    listen: u16,
    upstream: u16,
    out: PathBuf,
}

/// A running relay, owned by the exercise that started it.
pub struct Relay {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<BufReader<std::process::ChildStdout>>,
    out: PathBuf,
}

impl Relay {
    /// Starts a relay from `listen` to `upstream` on both loopback
    /// addresses, in `netns` when given; returns once it listens.
    pub fn start(
        listen: u16,
        upstream: u16,
        dir: &Path,
        netns: Option<&super::netns::Netns>,
    ) -> Result<Relay> {
        use std::os::unix::process::CommandExt as _;
        std::fs::create_dir_all(dir)?;
        let out = dir.join("wire.json");
        let settings = serde_json::to_string(&Settings {
            listen,
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
struct Record(Arc<Mutex<Connection>>);

impl Record {
    fn new(protocol: &str, client: SocketAddr) -> Record {
        Record(Arc::new(Mutex::new(Connection {
            protocol: protocol.to_owned(),
            client: client.to_string(),
            // Not recorded yet: a capture falls back to loopback.
            server: String::new(),
            chunks: Vec::new(),
            sent: 0,
            received: 0,
            cut: false,
        })))
    }

    fn add(&self, from: Side, data: &[u8]) {
        let mut c = self.0.lock().unwrap_or_else(|e| e.into_inner());
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
            Some(last) if last.from == from && last.offset + last.data.len() as u64 == offset => {
                last.data.extend_from_slice(data)
            }
            _ => c.chunks.push(Chunk {
                from,
                offset,
                data: data.to_vec(),
                // Not recorded yet: a capture makes times up.
                at_us: 0,
            }),
        }
    }

    /// An empty datagram is a message too.
    fn add_empty_datagram(&self, from: Side) {
        let mut c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let offset = match from {
            Side::Client => c.sent,
            Side::Server => c.received,
        };
        c.chunks.push(Chunk {
            from,
            offset,
            data: Vec::new(),
            at_us: 0,
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
        for (is_tcp, server) in tables.bound_addresses(settings.upstream) {
            for ip in mirrored(server.ip()) {
                let upstream = SocketAddr::new(ip, settings.upstream);
                let (stop, records) = (Arc::clone(&stop), Arc::clone(&records));
                if is_tcp {
                    let Ok(listener) = TcpListener::bind((ip, settings.listen)) else {
                        continue;
                    };
                    listener.set_nonblocking(true)?;
                    threads.push(std::thread::spawn(move || {
                        tcp(listener, upstream, &stop, &records)
                    }));
                } else {
                    let Ok(socket) = UdpSocket::bind((ip, settings.listen)) else {
                        continue;
                    };
                    socket.set_read_timeout(Some(TICK))?;
                    threads.push(std::thread::spawn(move || {
                        udp(socket, upstream, &stop, &records)
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
        .map(|r| r.0.lock().unwrap_or_else(|e| e.into_inner()).clone())
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
    stop: &Arc<AtomicBool>,
    records: &Mutex<Vec<Record>>,
) {
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
        let record = Record::new("tcp", addr);
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
        for (from, to, side) in [
            (client.try_clone(), server.try_clone(), Side::Client),
            (server.try_clone(), client.try_clone(), Side::Server),
        ] {
            let (Ok(from), Ok(to)) = (from, to) else {
                continue;
            };
            let (stop, record) = (Arc::clone(stop), record.clone());
            pumps.push(std::thread::spawn(move || {
                pump(from, to, side, &stop, &record)
            }));
        }
    }
    for p in pumps {
        let _ = p.join();
    }
}

/// Moves one direction of a TCP connection, recording it; passes the end
/// of the stream on as a half close, as the peer did.
fn pump(mut from: TcpStream, mut to: TcpStream, side: Side, stop: &AtomicBool, record: &Record) {
    let _ = from.set_read_timeout(Some(TICK));
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::SeqCst) {
        match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                record.add(side, &buf[..n]);
                if to.write_all(&buf[..n]).is_err() {
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

fn udp(
    socket: UdpSocket,
    upstream: SocketAddr,
    stop: &Arc<AtomicBool>,
    records: &Mutex<Vec<Record>>,
) {
    let socket = Arc::new(socket);
    // One upstream socket per client address, so replies find their client.
    let mut peers: Vec<(SocketAddr, Arc<UdpSocket>, Record)> = Vec::new();
    let mut replies = Vec::new();
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        let Ok((n, client)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let known = peers.iter().position(|(a, _, _)| *a == client);
        let at = match known {
            Some(i) => i,
            None => {
                let local: SocketAddr = match upstream {
                    SocketAddr::V4(_) => (Ipv4Addr::LOCALHOST, 0).into(),
                    SocketAddr::V6(_) => (Ipv6Addr::LOCALHOST, 0).into(),
                };
                let Ok(up) = UdpSocket::bind(local).and_then(|s| s.connect(upstream).map(|()| s))
                else {
                    continue;
                };
                let _ = up.set_read_timeout(Some(TICK));
                let up = Arc::new(up);
                let record = Record::new("udp", client);
                records
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(record.clone());
                let (stop, back, up2, rec2) = (
                    Arc::clone(stop),
                    Arc::clone(&socket),
                    Arc::clone(&up),
                    record.clone(),
                );
                replies.push(std::thread::spawn(move || {
                    let mut buf = vec![0u8; 65536];
                    while !stop.load(Ordering::SeqCst) {
                        if let Ok(n) = up2.recv(&mut buf) {
                            if n == 0 {
                                rec2.add_empty_datagram(Side::Server);
                            } else {
                                rec2.add(Side::Server, &buf[..n]);
                            }
                            let _ = back.send_to(&buf[..n], client);
                        }
                    }
                }));
                peers.push((client, up, record));
                peers.len() - 1
            }
        };
        let (_, up, record) = &peers[at];
        if n == 0 {
            record.add_empty_datagram(Side::Client);
        } else {
            record.add(Side::Client, &buf[..n]);
        }
        let _ = up.send(&buf[..n]);
    }
    for r in replies {
        let _ = r.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_keeps_the_first_bytes_of_each_side_in_order_and_says_when_it_cut() {
        let r = Record::new("tcp", "127.0.0.1:5000".parse().unwrap());
        r.add(Side::Client, b"Hello, ");
        r.add(Side::Client, b"world");
        r.add(Side::Server, b"Hello");
        r.add(Side::Client, &vec![b'x'; Connection::KEEP]);
        let c = r.0.lock().unwrap().clone();
        assert_eq!(c.chunks.len(), 3);
        assert_eq!(c.chunks[0].data, b"Hello, world");
        assert_eq!((c.chunks[1].from, c.chunks[1].offset), (Side::Server, 0));
        assert_eq!(c.chunks[2].offset, 12);
        assert_eq!(c.chunks[2].data.len(), Connection::KEEP - 12);
        assert_eq!((c.sent, c.received), (12 + Connection::KEEP as u64, 5));
        assert!(c.cut);
    }
}

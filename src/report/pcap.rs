//! Captures: what `--trace` recorded of one exercise, as a pcapng file that
//! Wireshark and `tshark -r` open. This module owns the translation from
//! [`Connection`]s (bytes, offsets, times) to packets; the file format is
//! `pcap-file`'s and the IP, TCP and UDP headers (checksums included) are
//! `etherparse`'s.
//!
//! - Link type: raw IP (`LINKTYPE_RAW`, 101), one interface for the whole
//!   file. Each packet starts at its IPv4 or IPv6 header; readers tell the
//!   two apart by the version nibble.
//! - Addresses: [`Connection::client`] and [`Connection::server`], as
//!   `ip:port`. IPv4-mapped IPv6 addresses are written as IPv4. When the
//!   server's address is missing (records from before it was kept) or is
//!   not an IP address, it is the loopback address of the client's family,
//!   with the port given or else port 0; likewise when the two families
//!   differ. A client address that does not parse is `127.0.0.1:0`.
//! - TCP: the relay records bytes, not packets, so the handshake, the ACKs
//!   and the FINs are made up: SYN, SYN-ACK, ACK; then each chunk is one
//!   segment (chunks over [`SEGMENT`] bytes are several), acknowledged at
//!   once by the other side; then FIN, ACK, FIN, ACK, the client closing
//!   first. Sequence numbers follow [`Chunk::offset`]. Each chunk stays its
//!   own segment, so a `split:1` fault shows as 1-byte segments. The FINs
//!   sit at the totals ([`Connection::sent`], [`Connection::received`]):
//!   for a connection that was cut, Wireshark reports the bytes the relay
//!   did not keep as not captured, which is what happened.
//! - UDP (protocol `udp`; anything else is taken for TCP): one datagram
//!   per chunk; an empty chunk is an empty datagram. A datagram a `wire=`
//!   fault dropped, duplicated or held back is there with a packet comment
//!   saying so (`aula: dropped by the relay ...`).
//! - Times: [`Chunk::at_us`]; the handshake a few microseconds before the
//!   first chunk. Where a time is missing (0, in older records) or would go
//!   back, packets are 1 µs apart. Packets of all connections are then put
//!   in time order, so concurrent connections interleave as they went.

use std::borrow::Cow;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use etherparse::{IpHeaders, PacketBuilder, PacketBuilderStep, TcpHeader};
use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};

use crate::observation::{Chunk, Connection, Side};

/// Most payload bytes in one packet: with the headers, well within the
/// 65535 bytes an IPv4 packet (and an IPv6 payload) may have.
pub const SEGMENT: usize = 65_000;

/// Initial sequence numbers. Any will do: Wireshark shows them relative.
const CLIENT_ISN: u32 = 1_000_000;
const SERVER_ISN: u32 = 2_000_000;

/// The TCP window advertised. No segment is ever in flight unacknowledged
/// beyond one, and [`SEGMENT`] fits, so it is never full.
const WINDOW: u16 = 65_535;

/// How long before its first chunk a connection's handshake goes, in µs.
const LEAD_US: u64 = 3;

const TTL: u8 = 64;

/// What Wireshark shows on each TCP connection's first packet, so that
/// nobody takes the made-up packets for observed ones.
const MADE_UP: &str = "aula made up this handshake, and the ACKs and FINs: \
    the relay recorded payloads and times only";

/// On the last packet of a connection that was cut.
fn cut_note() -> String {
    format!(
        "aula: bytes beyond the first {} of a direction were not recorded",
        Connection::KEEP
    )
}

/// One packet: when, its bytes from the IP header on, and a comment.
struct Packet {
    at_us: u64,
    data: Vec<u8>,
    comment: Option<String>,
}

/// Hands out times for one connection's packets: the wanted time, unless it
/// is missing or earlier than the last one, then 1 µs after the last.
struct Clock {
    next: u64,
}

impl Clock {
    fn at(&mut self, wanted_us: u64) -> u64 {
        let t = wanted_us.max(self.next);
        self.next = t + 1;
        t
    }
}

/// The capture of an exercise's connections, as the bytes of a pcapng file.
pub fn pcapng(connections: &[Connection]) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to memory does not fail, and no payload is too large for its
    // headers (see SEGMENT): an error here is a bug.
    write(connections, &mut out).expect("a capture written to memory");
    out
}

/// Writes the capture of an exercise's connections to `out` as pcapng.
pub fn write(connections: &[Connection], out: impl Write) -> io::Result<()> {
    let mut packets = Vec::new();
    // Where connections without times go: after what came before.
    let mut after = 0;
    for c in connections {
        let first = c.chunks.iter().map(|k| k.at_us).find(|&t| t > 0);
        let mut clock = Clock {
            next: first.map_or(after, |t| t.saturating_sub(LEAD_US)),
        };
        let start = packets.len();
        let ends = endpoints(c);
        if c.protocol.eq_ignore_ascii_case("udp") {
            udp(c, ends, &mut clock, &mut packets)?;
        } else {
            tcp(c, ends, &mut clock, &mut packets)?;
            packets[start].comment = Some(MADE_UP.into());
        }
        if c.cut
            && let Some(p) = packets.last_mut()
        {
            p.comment = Some(cut_note());
        }
        after = after.max(clock.next);
    }
    // Stable: a connection's own packets already go forward in time.
    packets.sort_by_key(|p| p.at_us);
    file(&packets, out)
}

/// The pcapng blocks: section, one raw-IP interface, then the packets.
fn file(packets: &[Packet], out: impl Write) -> io::Result<()> {
    let section = SectionHeaderBlock {
        options: vec![SectionHeaderOption::UserApplication("aula".into())],
        ..Default::default()
    };
    let mut w = PcapNgWriter::with_section_header(out, section).map_err(io::Error::other)?;
    let interface = InterfaceDescriptionBlock {
        linktype: DataLink::RAW,
        snaplen: 0,
        options: vec![
            InterfaceDescriptionOption::IfName("aula relay".into()),
            // pcap-file 2.0 writes timestamps in nanoseconds whatever the
            // interface says, while pcapng's default is microseconds:
            // without this, every time would read 1000 times too large.
            InterfaceDescriptionOption::IfTsResol(9),
        ],
    };
    w.write_pcapng_block(interface).map_err(io::Error::other)?;
    for p in packets {
        let block = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_micros(p.at_us),
            original_len: p.data.len() as u32,
            data: Cow::Borrowed(&p.data),
            options: p
                .comment
                .iter()
                .map(|c| EnhancedPacketOption::Comment(Cow::Borrowed(c.as_str())))
                .collect(),
        };
        w.write_pcapng_block(block).map_err(io::Error::other)?;
    }
    w.into_inner().flush()
}

/// The client's and the server's addresses, of one family (see the module
/// documentation for what stands in for missing ones).
fn endpoints(c: &Connection) -> (SocketAddr, SocketAddr) {
    let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let client = c
        .client
        .parse()
        .map(canonical)
        .unwrap_or((Ipv4Addr::LOCALHOST, 0).into());
    let loopback = match client.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    let server = match c.server.parse::<SocketAddr>().map(canonical) {
        Ok(s) if s.is_ipv4() == client.is_ipv4() => s,
        Ok(s) => SocketAddr::new(loopback, s.port()),
        // A host name (`localhost:7000`), or nothing.
        Err(_) => {
            let port = c.server.rsplit_once(':').and_then(|(_, p)| p.parse().ok());
            SocketAddr::new(loopback, port.unwrap_or(0))
        }
    };
    (client, server)
}

/// The IP layer of a packet from `from` to `to`.
fn ip(from: SocketAddr, to: SocketAddr) -> PacketBuilderStep<IpHeaders> {
    let v6 = |a: IpAddr| match a {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    };
    match (from.ip(), to.ip()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => PacketBuilder::ipv4(a.octets(), b.octets(), TTL),
        // endpoints() gives both one family; were it not so, IPv6 holds both.
        (a, b) => PacketBuilder::ipv6(v6(a).octets(), v6(b).octets(), TTL),
    }
}

/// Writes a built packet to bytes.
fn bytes<F>(size: usize, write: F) -> io::Result<Vec<u8>>
where
    F: FnOnce(&mut Vec<u8>) -> Result<(), etherparse::err::packet::BuildWriteError>,
{
    let mut out = Vec::with_capacity(size);
    write(&mut out).map_err(io::Error::other)?;
    Ok(out)
}

/// One UDP datagram per chunk, in either direction.
fn udp(
    c: &Connection,
    (client, server): (SocketAddr, SocketAddr),
    clock: &mut Clock,
    packets: &mut Vec<Packet>,
) -> io::Result<()> {
    for chunk in &c.chunks {
        let (from, to) = match chunk.from {
            Side::Client => (client, server),
            Side::Server => (server, client),
        };
        // A datagram is one message: past what fits, it is cut, not split.
        // The relay keeps far less than this of a direction anyway.
        let payload = &chunk.data[..chunk.data.len().min(SEGMENT)];
        let b = ip(from, to).udp(from.port(), to.port());
        let data = bytes(b.size(payload.len()), |v| b.write(v, payload))?;
        packets.push(Packet {
            at_us: clock.at(chunk.at_us),
            data,
            // Wireshark shows a packet comment beside the packet: a
            // dropped datagram is there, and says the server never got it.
            comment: chunk
                .fault
                .map(|f| format!("aula: {}", super::wire::fault_words(f, "en"))),
        });
    }
    Ok(())
}

/// TCP flags beyond ACK, which every segment but the first carries.
#[derive(Clone, Copy)]
struct Flags {
    syn: bool,
    fin: bool,
    psh: bool,
}

const PLAIN: Flags = Flags {
    syn: false,
    fin: false,
    psh: false,
};

/// A TCP segment from `from` to `to`; `ack` is `None` only for the SYN.
fn segment(
    from: SocketAddr,
    to: SocketAddr,
    seq: u32,
    ack: Option<u32>,
    flags: Flags,
    payload: &[u8],
) -> io::Result<Vec<u8>> {
    let mut header = TcpHeader::new(from.port(), to.port(), seq, WINDOW);
    header.syn = flags.syn;
    header.fin = flags.fin;
    header.psh = flags.psh;
    if let Some(n) = ack {
        header.ack = true;
        header.acknowledgment_number = n;
    }
    let b = ip(from, to).tcp_header(header);
    bytes(b.size(payload.len()), |v| b.write(v, payload))
}

/// One side of a TCP connection: its address, its initial sequence number,
/// and how many of its bytes the capture has gone through.
struct End {
    addr: SocketAddr,
    isn: u32,
    sent: u64,
}

impl End {
    /// The sequence number of the byte at `offset` (the SYN takes one).
    /// TCP's numbers wrap; offsets are cut to 32 bits on purpose.
    fn seq(&self, offset: u64) -> u32 {
        self.isn.wrapping_add(1).wrapping_add(offset as u32)
    }

    /// The sequence number of its next byte.
    fn next(&self) -> u32 {
        self.seq(self.sent)
    }
}

/// Which of [`Tcp::ends`] is which.
const CLIENT: usize = 0;
const SERVER: usize = 1;

/// A made-up TCP connection around the recorded chunks, as it is written.
struct Tcp<'a> {
    /// The client's end, then the server's.
    ends: [End; 2],
    clock: &'a mut Clock,
    packets: &'a mut Vec<Packet>,
}

/// Writes one TCP connection: handshake, chunks, close.
fn tcp(
    c: &Connection,
    (client, server): (SocketAddr, SocketAddr),
    clock: &mut Clock,
    packets: &mut Vec<Packet>,
) -> io::Result<()> {
    let end = |addr, isn| End { addr, isn, sent: 0 };
    let mut t = Tcp {
        ends: [end(client, CLIENT_ISN), end(server, SERVER_ISN)],
        clock,
        packets,
    };
    t.handshake()?;
    for chunk in &c.chunks {
        t.chunk(chunk)?;
    }
    t.close(c.sent, c.received)
}

impl Tcp<'_> {
    /// A segment from end `from` to the other, at `at_us` (0: next).
    fn send(
        &mut self,
        from: usize,
        (seq, ack): (u32, Option<u32>),
        flags: Flags,
        payload: &[u8],
        at_us: u64,
    ) -> io::Result<()> {
        let (me, peer) = (self.ends[from].addr, self.ends[1 - from].addr);
        let data = segment(me, peer, seq, ack, flags, payload)?;
        self.packets.push(Packet {
            at_us: self.clock.at(at_us),
            data,
            comment: None,
        });
        Ok(())
    }

    fn handshake(&mut self) -> io::Result<()> {
        let syn = Flags { syn: true, ..PLAIN };
        let (c_isn, s_isn) = (self.ends[CLIENT].isn, self.ends[SERVER].isn);
        let (c_next, s_next) = (self.ends[CLIENT].next(), self.ends[SERVER].next());
        self.send(CLIENT, (c_isn, None), syn, &[], 0)?;
        self.send(SERVER, (s_isn, Some(c_next)), syn, &[], 0)?;
        self.send(CLIENT, (c_next, Some(s_next)), PLAIN, &[], 0)
    }

    /// A chunk as segments of at most [`SEGMENT`] bytes, each acknowledged
    /// by the other side. An empty chunk has none: TCP sends no empty
    /// messages (and the relay records none).
    fn chunk(&mut self, chunk: &Chunk) -> io::Result<()> {
        let me = usize::from(chunk.from == Side::Server);
        let peer = 1 - me;
        let data = Flags { psh: true, ..PLAIN };
        for (i, piece) in chunk.data.chunks(SEGMENT).enumerate() {
            let offset = chunk.offset + (i * SEGMENT) as u64;
            let seq = self.ends[me].seq(offset);
            let peer_next = self.ends[peer].next();
            self.send(me, (seq, Some(peer_next)), data, piece, chunk.at_us)?;
            let sent = &mut self.ends[me].sent;
            *sent = (*sent).max(offset + piece.len() as u64);
            let acked = self.ends[me].next();
            self.send(peer, (peer_next, Some(acked)), PLAIN, &[], 0)?;
        }
        Ok(())
    }

    /// FIN, ACK, FIN, ACK, the client first. Each FIN sits at the total
    /// its side sent, so that bytes a cut left out show as not captured.
    fn close(&mut self, sent: u64, received: u64) -> io::Result<()> {
        let fin = Flags { fin: true, ..PLAIN };
        self.ends[CLIENT].sent = self.ends[CLIENT].sent.max(sent);
        self.ends[SERVER].sent = self.ends[SERVER].sent.max(received);
        let (c_fin, s_fin) = (self.ends[CLIENT].next(), self.ends[SERVER].next());
        let (c_done, s_done) = (c_fin.wrapping_add(1), s_fin.wrapping_add(1));
        self.send(CLIENT, (c_fin, Some(s_fin)), fin, &[], 0)?;
        self.send(SERVER, (s_fin, Some(c_done)), PLAIN, &[], 0)?;
        self.send(SERVER, (s_fin, Some(c_done)), fin, &[], 0)?;
        self.send(CLIENT, (c_done, Some(s_done)), PLAIN, &[], 0)
    }
}

/// The `--pcap DIR` reporter: each exercise that ran through the relay is
/// written to `DIR/LESSON-EXERCISE.pcapng` as it finishes, passed or not.
pub struct Captures {
    dir: std::path::PathBuf,
}

impl Captures {
    /// Makes `dir` if it is not there.
    pub fn new(dir: std::path::PathBuf) -> io::Result<Captures> {
        std::fs::create_dir_all(&dir)?;
        Ok(Captures { dir })
    }
}

impl super::Reporter for Captures {
    fn event(&mut self, event: &super::Event<'_>) {
        let super::Event::ExerciseFinished(lesson, e) = event else {
            return;
        };
        let Some(connections) = &e.wire else {
            return;
        };
        let stem = lesson
            .path
            .file_stem()
            .map_or_else(|| "lesson".into(), |s| s.to_string_lossy());
        let path = self.dir.join(format!("{stem}-{}.pcapng", e.id));
        if let Err(err) = crate::fs::write_atomically(&path, pcapng(connections)) {
            eprintln!("warning: could not write {}: {err}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::*;

    fn chunk(from: Side, offset: u64, data: &[u8], at_us: u64) -> Chunk {
        Chunk {
            from,
            offset,
            data: data.to_vec(),
            at_us,
            fault: None,
        }
    }

    fn connection(protocol: &str, client: &str, server: &str, chunks: Vec<Chunk>) -> Connection {
        let total = |side| {
            chunks
                .iter()
                .filter(|k| k.from == side)
                .map(|k| k.data.len() as u64)
                .sum()
        };
        Connection {
            protocol: protocol.into(),
            client: client.into(),
            server: server.into(),
            sent: total(Side::Client),
            received: total(Side::Server),
            chunks,
            cut: false,
        }
    }

    /// The fields every test reads, in this order (see [`Row`]).
    const FIELDS: [&str; 18] = [
        "frame.time_epoch",
        "ip.src",
        "ip.dst",
        "ipv6.src",
        "ipv6.dst",
        "tcp.srcport",
        "tcp.dstport",
        "tcp.seq",
        "tcp.len",
        "tcp.payload",
        "udp.srcport",
        "udp.dstport",
        "udp.payload",
        "tcp.checksum.status",
        "udp.checksum.status",
        "ip.checksum.status",
        "_ws.expert.severity",
        "_ws.expert.message",
    ];

    /// One packet as tshark decoded it: [`FIELDS`] by name.
    struct Row(Vec<String>);

    impl Row {
        fn get(&self, field: &str) -> &str {
            let i = FIELDS.iter().position(|f| *f == field).unwrap();
            &self.0[i]
        }

        /// Who sent it and to whom, as `ip port` pairs, either family.
        fn route(&self) -> (String, String) {
            let ip = |v4, v6| format!("{}{}", self.get(v4), self.get(v6));
            let port = |tcp, udp| format!("{}{}", self.get(tcp), self.get(udp));
            (
                format!(
                    "{} {}",
                    ip("ip.src", "ipv6.src"),
                    port("tcp.srcport", "udp.srcport")
                ),
                format!(
                    "{} {}",
                    ip("ip.dst", "ipv6.dst"),
                    port("tcp.dstport", "udp.dstport")
                ),
            )
        }

        /// Its payload, TCP's or UDP's, as bytes.
        fn payload(&self) -> Vec<u8> {
            let hex = format!("{}{}", self.get("tcp.payload"), self.get("udp.payload"));
            // Some tshark versions print bytes as `aa:bb`.
            hex::decode(hex.replace(':', "")).unwrap()
        }

        /// Expert notes of warning or error severity (a malformed packet
        /// is one), but for those whose message starts as one `allowed`.
        fn alarms(&self, allowed: &[&str]) -> Vec<String> {
            let severities = self.get("_ws.expert.severity").split(';');
            let messages = self.get("_ws.expert.message").split(';');
            severities
                .zip(messages)
                .filter(|(s, _)| match s.parse::<u32>() {
                    // PI_WARN and PI_ERROR.
                    Ok(n) => n >= 0x0060_0000,
                    Err(_) => matches!(*s, "Warning" | "Warn" | "Error"),
                })
                .filter(|(_, m)| !allowed.iter().any(|a| m.starts_with(a)))
                .map(|(s, m)| format!("{s}: {m}"))
                .collect()
        }
    }

    /// The capture of `connections`, read back by tshark with checksums
    /// checked. `None` when tshark is missing, except under CI.
    fn read_back(connections: &[Connection]) -> Option<Vec<Row>> {
        if let Err(e) = Command::new("tshark").arg("--version").output() {
            assert!(
                std::env::var_os("CI").is_none(),
                "tshark must be installed where CI runs, to read captures back \
                 (apt-get install tshark; .ci/run does): {e}"
            );
            eprintln!("note: tshark is missing ({e}): captures are not read back");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("exercise.pcapng");
        std::fs::write(&file, pcapng(connections)).unwrap();
        Some(tshark(&file))
    }

    fn tshark(file: &Path) -> Vec<Row> {
        let mut cmd = Command::new("tshark");
        cmd.arg("-r").arg(file).arg("-n");
        for check in ["ip", "tcp", "udp"] {
            cmd.args(["-o", &format!("{check}.check_checksum:TRUE")]);
        }
        // The tests' server ports as plain data: what Wireshark's dissector
        // for a port would make of the tests' bytes is not theirs to judge.
        for (protocol, port) in [("tcp", 7000), ("udp", 7001), ("udp", 9)] {
            cmd.args(["-d", &format!("{protocol}.port=={port},data")]);
        }
        cmd.args(["-T", "fields", "-E", "separator=|", "-E", "aggregator=;"]);
        for f in FIELDS {
            cmd.args(["-e", f]);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "tshark failed: {stderr}");
        stdout
            .lines()
            .map(|l| Row(l.split('|').map(str::to_owned).collect()))
            .inspect(|r| assert_eq!(r.0.len(), FIELDS.len(), "{stdout}"))
            .collect()
    }

    /// Every checksum tshark could check was right, and it saw nothing
    /// wrong but what `allowed` says.
    fn assert_sound(rows: &[Row], allowed: &[&str]) {
        for (n, r) in rows.iter().enumerate() {
            for status in ["tcp.checksum.status", "udp.checksum.status"] {
                assert!(
                    ["", "1", "Good"].contains(&r.get(status)),
                    "packet {}: {status} {}",
                    n + 1,
                    r.get(status)
                );
            }
            let transport = format!(
                "{}{}",
                r.get("tcp.checksum.status"),
                r.get("udp.checksum.status")
            );
            assert!(
                matches!(transport.as_str(), "1" | "Good"),
                "packet {}",
                n + 1
            );
            if !r.get("ip.src").is_empty() {
                assert!(
                    matches!(r.get("ip.checksum.status"), "1" | "Good"),
                    "packet {}",
                    n + 1
                );
            }
            assert_eq!(r.alarms(allowed), Vec::<String>::new(), "packet {}", n + 1);
        }
    }

    /// What the data segments (or datagrams) carried: route and bytes.
    fn payloads(rows: &[Row]) -> Vec<(String, String, Vec<u8>)> {
        rows.iter()
            .filter(|r| r.get("tcp.len") != "0")
            .map(|r| {
                let (from, to) = r.route();
                (from, to, r.payload())
            })
            .collect()
    }

    const C4: &str = "192.0.2.10 40000";
    const S4: &str = "127.0.0.1 7000";

    /// A `split:1` fault: the client's line went over in 1-byte pieces,
    /// two of them in the same microsecond; then the server replied.
    #[test]
    fn tcp_pieces_stay_separate_segments() {
        let t = 1_700_000_000_000_100;
        let c = connection(
            "tcp",
            "192.0.2.10:40000",
            "127.0.0.1:7000",
            vec![
                chunk(Side::Client, 0, b"h", t),
                chunk(Side::Client, 1, b"i", t),
                chunk(Side::Client, 2, b"\n", t + 1),
                chunk(Side::Server, 0, b"HI\n", t + 100),
            ],
        );
        let Some(rows) = read_back(&[c]) else { return };
        // Handshake, each piece and its ACK, the closing four.
        assert_eq!(rows.len(), 3 + 2 * 4 + 4);
        assert_sound(&rows, &[]);
        let (c4, s4) = (C4.to_owned(), S4.to_owned());
        assert_eq!(
            payloads(&rows),
            vec![
                (c4.clone(), s4.clone(), b"h".to_vec()),
                (c4.clone(), s4.clone(), b"i".to_vec()),
                (c4.clone(), s4.clone(), b"\n".to_vec()),
                (s4.clone(), c4.clone(), b"HI\n".to_vec()),
            ]
        );
        let data: Vec<_> = rows.iter().filter(|r| r.get("tcp.len") != "0").collect();
        // Relative sequence numbers: the offsets, plus the SYN's one.
        let seqs: Vec<_> = data.iter().map(|r| r.get("tcp.seq")).collect();
        assert_eq!(seqs, ["1", "2", "3", "1"]);
        // The recorded times, but that the second piece of a microsecond
        // moves on (by the ACK between, and itself).
        let times: Vec<_> = data.iter().map(|r| r.get("frame.time_epoch")).collect();
        assert_eq!(times[0], "1700000000.000100000");
        assert_eq!(times[3], "1700000000.000200000");
        assert!(rows[0].get("frame.time_epoch") < times[0]);
        assert_eq!(rows[0].route(), (c4, s4));
    }

    /// A chunk larger than a packet holds goes as several segments; and a
    /// record without times gets times 1 µs apart.
    #[test]
    fn tcp_chunks_beyond_a_segment_are_split() {
        let big: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
        let c = connection(
            "tcp",
            "[::1]:40010",
            "[::1]:7000",
            vec![
                chunk(Side::Client, 0, b"get", 0),
                chunk(Side::Server, 0, &big, 0),
            ],
        );
        let Some(rows) = read_back(&[c]) else { return };
        assert_eq!(rows.len(), 3 + 2 * 3 + 4);
        assert_sound(&rows, &[]);
        let lens: Vec<_> = rows
            .iter()
            .map(|r| r.get("tcp.len"))
            .filter(|l| *l != "0")
            .collect();
        assert_eq!(lens, ["3", "65000", "5000"]);
        let got: Vec<u8> = payloads(&rows)[1..]
            .iter()
            .flat_map(|p| p.2.clone())
            .collect();
        assert_eq!(got, big);
        assert_eq!(payloads(&rows)[1].0, "::1 7000");
        let times: Vec<_> = rows.iter().map(|r| r.get("frame.time_epoch")).collect();
        assert_eq!(times[0], "0.000000000");
        assert_eq!(times[12], "0.000012000");
    }

    /// Datagrams both ways over IPv6, one of them empty.
    #[test]
    fn udp_datagrams_one_per_chunk() {
        let t = 1_700_000_000_000_000;
        let c = connection(
            "udp",
            "[::1]:40001",
            "[::1]:7001",
            vec![
                chunk(Side::Client, 0, b"ping", t),
                chunk(Side::Client, 4, b"", t + 5),
                chunk(Side::Server, 0, b"pong", t + 9),
            ],
        );
        let Some(rows) = read_back(&[c]) else { return };
        assert_eq!(rows.len(), 3);
        assert_sound(&rows, &[]);
        let (c6, s6) = ("::1 40001".to_owned(), "::1 7001".to_owned());
        assert_eq!(
            payloads(&rows),
            vec![
                (c6.clone(), s6.clone(), b"ping".to_vec()),
                (c6.clone(), s6.clone(), Vec::new()),
                (s6, c6, b"pong".to_vec()),
            ]
        );
        assert_eq!(rows[1].get("frame.time_epoch"), "1700000000.000005000");
    }

    /// A connection the relay cut, from a record older than the server's
    /// address: what was kept is there, and Wireshark says what was not.
    #[test]
    fn a_cut_connection_shows_what_was_kept() {
        let kept = vec![b'x'; Connection::KEEP];
        let mut c = connection(
            "tcp",
            "192.0.2.10:40000",
            "",
            vec![
                chunk(Side::Client, 0, &kept, 0),
                chunk(Side::Server, 0, b"ok", 0),
            ],
        );
        c.sent = 5000;
        c.cut = true;
        let Some(rows) = read_back(&[c]) else { return };
        assert_eq!(rows.len(), 3 + 2 * 2 + 4);
        let not_captured = [
            "Previous segment(s) not captured",
            "ACKed segment that wasn't captured",
        ];
        assert_sound(&rows, &not_captured);
        let (c4, s4) = (C4.to_owned(), "127.0.0.1 0".to_owned());
        assert_eq!(
            payloads(&rows),
            vec![(c4.clone(), s4.clone(), kept), (s4, c4, b"ok".to_vec())]
        );
        assert!(
            rows.last()
                .unwrap()
                .get("_ws.expert.message")
                .contains("4096")
        );
    }

    /// Connections that went at the same time interleave in the capture.
    #[test]
    fn packets_go_in_time_order() {
        let t = 1_700_000_000_000_000;
        let a = connection(
            "udp",
            "127.0.0.1:1",
            "127.0.0.1:9",
            vec![
                chunk(Side::Client, 0, b"a1", t),
                chunk(Side::Client, 2, b"a2", t + 20),
            ],
        );
        let b = connection(
            "udp",
            "127.0.0.1:2",
            "127.0.0.1:9",
            vec![chunk(Side::Client, 0, b"b1", t + 10)],
        );
        let Some(rows) = read_back(&[a, b]) else {
            return;
        };
        let got: Vec<_> = payloads(&rows).into_iter().map(|p| p.2).collect();
        assert_eq!(got, [b"a1", b"b1", b"a2"]);
    }

    #[test]
    fn missing_or_odd_addresses_fall_back_to_loopback() {
        let ends = |client: &str, server: &str| {
            let (c, s) = endpoints(&connection("tcp", client, server, Vec::new()));
            (c.to_string(), s.to_string())
        };
        let v4 = |s: &str| ("10.0.0.1:5".to_owned(), s.to_owned());
        assert_eq!(ends("10.0.0.1:5", ""), v4("127.0.0.1:0"));
        assert_eq!(ends("10.0.0.1:5", "localhost:7000"), v4("127.0.0.1:7000"));
        assert_eq!(ends("10.0.0.1:5", "[::1]:7000"), v4("127.0.0.1:7000"));
        assert_eq!(
            ends("[::ffff:10.0.0.1]:5", "127.0.0.1:7000"),
            v4("127.0.0.1:7000")
        );
        assert_eq!(ends("[::2]:5", ""), ("[::2]:5".into(), "[::1]:0".into()));
        assert_eq!(ends("", ""), ("127.0.0.1:0".into(), "127.0.0.1:0".into()));
    }
}

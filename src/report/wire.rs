//! What `--trace` recorded, for people (a hex dump per chunk) and for
//! scripts (JSON with hex and printable text).

use std::fmt::Write as _;

use rust_i18n::t;
use serde_json::{Value, json};

use crate::observation::{Chunk, ChunkFault, Connection, Side};

/// Bytes of a chunk shown before the dump is cut.
const SHOWN: usize = 512;

/// The printable text of bytes: ASCII as it is, the rest as `.`.
fn printable(data: &[u8]) -> String {
    data.iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect()
}

/// `hexdump -C`'s layout: offset, sixteen bytes in hex, their text.
fn dump(out: &mut String, offset: u64, data: &[u8]) {
    for (i, row) in data.chunks(16).enumerate() {
        let mut hex = String::new();
        for (j, b) in row.iter().enumerate() {
            if j == 8 {
                hex.push(' ');
            }
            let _ = write!(hex, "{b:02x} ");
        }
        let _ = writeln!(
            out,
            "      {:08x}  {hex:<49} |{}|",
            offset + (i * 16) as u64,
            printable(row)
        );
    }
}

/// Every connection with its chunks in the order they went.
pub fn text(connections: &[Connection], lang: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", t!("wire.title", locale = lang));
    if connections.is_empty() {
        let _ = writeln!(out, "  {}", t!("wire.none", locale = lang));
    }
    for (n, c) in connections.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {}",
            t!(
                "wire.connection",
                locale = lang,
                n = n + 1,
                protocol = c.protocol.to_uppercase(),
                client = c.client,
                sent = c.sent,
                received = c.received
            )
        );
        if c.chunks.is_empty() {
            let _ = writeln!(out, "    {}", t!("wire.nothing", locale = lang));
        }
        for chunk in &c.chunks {
            let key = match chunk.from {
                Side::Client => "wire.from_client",
                Side::Server => "wire.from_server",
            };
            let _ = writeln!(
                out,
                "    {}",
                t!(
                    key,
                    locale = lang,
                    n = chunk.data.len(),
                    offset = chunk.offset
                )
            );
            if let Some(fault) = chunk.fault {
                let _ = writeln!(out, "      {}", fault_words(fault, lang));
            }
            dump(
                &mut out,
                chunk.offset,
                &chunk.data[..chunk.data.len().min(SHOWN)],
            );
            if chunk.data.len() > SHOWN {
                let _ = writeln!(
                    out,
                    "      {}",
                    t!("wire.more", locale = lang, n = chunk.data.len() - SHOWN)
                );
            }
        }
        if c.cut {
            let _ = writeln!(
                out,
                "    {}",
                t!("wire.cut", locale = lang, n = Connection::KEEP)
            );
        }
    }
    out
}

/// What a `wire=` fault did to a datagram, in words.
pub fn fault_words(fault: ChunkFault, lang: &str) -> String {
    let key = match fault {
        ChunkFault::Dropped => "wire.dropped",
        ChunkFault::Duplicate => "wire.duplicate",
        ChunkFault::Late => "wire.late",
    };
    t!(key, locale = lang).into_owned()
}

/// The JSON of REPORT-FORMAT.md's extension: each chunk's bytes in hex,
/// and as text where they are printable.
pub fn json(connections: &[Connection]) -> Value {
    Value::Array(
        connections
            .iter()
            .map(|c| {
                json!({
                    "protocol": c.protocol,
                    "client": c.client,
                    "server": c.server,
                    "sent": c.sent,
                    "received": c.received,
                    "cut": c.cut,
                    "chunks": c.chunks.iter().map(chunk_json).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

/// One chunk in the report; `fault` only where a fault marked it.
fn chunk_json(k: &Chunk) -> Value {
    let mut v = json!({
        "from": k.from,
        "offset": k.offset,
        "bytes": k.data.len(),
        "at_us": k.at_us,
        "hex": hex::encode(&k.data),
        "text": printable(&k.data),
    });
    if let Some(fault) = k.fault {
        v["fault"] = json!(fault);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_dumped_with_offsets_hex_and_text() {
        let c = Connection {
            protocol: "tcp".into(),
            client: "127.0.0.1:5000".into(),
            server: "127.0.0.1:4000".into(),
            chunks: vec![
                Chunk {
                    from: Side::Client,
                    offset: 0,
                    data: b"Hello, world\n".to_vec(),
                    at_us: 1,
                    fault: None,
                },
                Chunk {
                    from: Side::Server,
                    offset: 0,
                    data: b"Hello".to_vec(),
                    at_us: 2,
                    fault: None,
                },
            ],
            sent: 13,
            received: 5,
            cut: false,
        };
        let text = text(std::slice::from_ref(&c), "en");
        assert!(
            text.contains("00000000  48 65 6c 6c 6f 2c 20 77  6f 72 6c 64 0a"),
            "{text}"
        );
        assert!(text.contains("|Hello, world.|"), "{text}");
        assert!(text.contains("server → client, 5 bytes"), "{text}");
        let j = json(&[c]);
        assert_eq!(j[0]["chunks"][1]["hex"], "48656c6c6f");
        assert_eq!(j[0]["chunks"][0]["text"], "Hello, world.");
    }

    #[test]
    fn a_datagram_a_fault_acted_on_says_so_in_words_and_in_json() {
        let c = Connection {
            protocol: "udp".into(),
            client: "127.0.0.1:5000".into(),
            server: "127.0.0.1:4000".into(),
            chunks: vec![
                Chunk {
                    from: Side::Client,
                    offset: 0,
                    data: b"4".to_vec(),
                    at_us: 1,
                    fault: Some(ChunkFault::Dropped),
                },
                Chunk {
                    from: Side::Client,
                    offset: 1,
                    data: b"fim".to_vec(),
                    at_us: 2,
                    fault: None,
                },
            ],
            sent: 4,
            received: 0,
            cut: false,
        };
        let text = super::text(std::slice::from_ref(&c), "en");
        assert!(text.contains("dropped by the relay (wire=drop)"), "{text}");
        let pt = super::text(std::slice::from_ref(&c), "pt");
        assert!(pt.contains("o servidor nunca o recebeu"), "{pt}");
        let v = json(&[c]);
        assert_eq!(v[0]["chunks"][0]["fault"], "dropped");
        // Unmarked chunks are written as before: no `fault` at all.
        assert!(v[0]["chunks"][1].get("fault").is_none(), "{v:#}");
    }
}

//! Sharding a run across machines, with cargo-nextest's syntax and meaning:
//! `hash:M/N` puts a unit in shard M by a hash of its qualified name, so a
//! unit stays in its shard as others are added; `slice:M/N` deals units out
//! round-robin in plan order.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    Hash { shard: u64, total: u64 },
    Slice { shard: u64, total: u64 },
}

impl FromStr for Partition {
    type Err = String;

    fn from_str(s: &str) -> Result<Partition, String> {
        let usage = || format!("`{s}`: a partition is `hash:M/N` or `slice:M/N`, with 1 ≤ M ≤ N");
        let (kind, rest) = s.split_once(':').ok_or_else(usage)?;
        let (m, n) = rest.split_once('/').ok_or_else(usage)?;
        let shard: u64 = m.parse().map_err(|_| usage())?;
        let total: u64 = n.parse().map_err(|_| usage())?;
        if shard == 0 || total == 0 || shard > total {
            return Err(usage());
        }
        match kind {
            "hash" => Ok(Partition::Hash { shard, total }),
            "slice" => Ok(Partition::Slice { shard, total }),
            _ => Err(usage()),
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Partition::Hash { shard, total } => write!(f, "hash:{shard}/{total}"),
            Partition::Slice { shard, total } => write!(f, "slice:{shard}/{total}"),
        }
    }
}

fn hash(name: &str) -> u64 {
    let digest = Sha256::digest(name.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("a digest has 32 bytes"))
}

impl Partition {
    pub fn total(&self) -> u64 {
        match self {
            Partition::Hash { total, .. } | Partition::Slice { total, .. } => *total,
        }
    }

    /// The `items` this shard takes, `names` naming them in the same
    /// order; all of them without a partition.
    pub fn shard<T>(
        partition: Option<Partition>,
        items: Vec<T>,
        names: &[impl AsRef<str>],
    ) -> Vec<T> {
        match partition {
            Some(p) => items
                .into_iter()
                .zip(p.select(names))
                .filter(|(_, keep)| *keep)
                .map(|(item, _)| item)
                .collect(),
            None => items,
        }
    }

    /// Which of `units` (qualified names, in plan order) this shard runs.
    /// Any text will do: units' IDs are `plan`'s, a layer above this one.
    pub fn select(&self, units: &[impl AsRef<str>]) -> Vec<bool> {
        units
            .iter()
            .enumerate()
            .map(|(i, name)| match *self {
                Partition::Hash { shard, total } => hash(name.as_ref()) % total == shard - 1,
                Partition::Slice { shard, total } => i as u64 % total == shard - 1,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_is_in_exactly_one_shard() {
        let units: Vec<String> = (0..23).map(|i| format!("lessons/l.md::ex-{i}")).collect();
        for total in [1, 2, 3, 5] {
            for kind in ["hash", "slice"] {
                let mut count = vec![0; units.len()];
                for shard in 1..=total {
                    let p: Partition = format!("{kind}:{shard}/{total}").parse().unwrap();
                    for (i, chosen) in p.select(&units).into_iter().enumerate() {
                        count[i] += usize::from(chosen);
                    }
                }
                assert!(count.iter().all(|&c| c == 1), "{kind} {total}: {count:?}");
            }
        }
    }

    #[test]
    fn hash_shards_do_not_move_as_units_are_added_and_slices_deal_in_turn() {
        let p: Partition = "hash:2/3".parse().unwrap();
        let few: Vec<String> = (0..5).map(|i| format!("u{i}")).collect();
        let more: Vec<String> = (0..9).map(|i| format!("u{i}")).collect();
        assert_eq!(p.select(&few)[..], p.select(&more)[..5]);
        let s: Partition = "slice:2/3".parse().unwrap();
        assert_eq!(s.select(&few), vec![false, true, false, false, true]);
        for bad in ["hash:0/3", "slice:4/3", "hash:1", "mod:1/2", "slice:a/b"] {
            assert!(bad.parse::<Partition>().is_err(), "{bad}");
        }
        assert_eq!(p.to_string(), "hash:2/3");
    }
}

//! `wire=` on a client cell (LESSON-FORMAT 1.2): the faults the runner's
//! relay applies to what that client sends, written `split:1+delay:20`.
//! Parsed here once; the relay applies them and reports name them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One fault on the wire. TCP's apply to a TCP client's bytes, UDP's to a
/// UDP client's datagrams (counted from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireFault {
    /// The bytes reach the server in pieces of this many, each written on
    /// its own.
    Split(u32),
    /// Each piece is held this many milliseconds.
    Delay(u32),
    /// This datagram is lost.
    Drop(u32),
    /// This datagram arrives twice.
    Dup(u32),
    /// This datagram and the next one arrive in the other order.
    Swap(u32),
}

/// The longest `delay:` a lesson may ask: a piece held longer would only
/// run the exercise into its timeout.
const MAX_DELAY_MS: u32 = 10_000;

impl WireFault {
    fn name(self) -> &'static str {
        match self {
            WireFault::Split(_) => "split",
            WireFault::Delay(_) => "delay",
            WireFault::Drop(_) => "drop",
            WireFault::Dup(_) => "dup",
            WireFault::Swap(_) => "swap",
        }
    }

    fn value(self) -> u32 {
        match self {
            WireFault::Split(n)
            | WireFault::Delay(n)
            | WireFault::Drop(n)
            | WireFault::Dup(n)
            | WireFault::Swap(n) => n,
        }
    }

    /// Whether it applies to TCP (else to UDP).
    pub fn is_tcp(self) -> bool {
        matches!(self, WireFault::Split(_) | WireFault::Delay(_))
    }

    /// In a student's words, for reports: "bytes split into pieces of 1".
    pub fn describe(self, lang: &str) -> String {
        let n = self.value();
        let pt = lang.starts_with("pt");
        match (self, pt) {
            (WireFault::Split(_), false) => format!("bytes split into pieces of {n}"),
            (WireFault::Split(_), true) => format!("bytes divididos em pedaços de {n}"),
            (WireFault::Delay(_), false) => format!("each piece held {n} ms"),
            (WireFault::Delay(_), true) => format!("cada pedaço retido {n} ms"),
            (WireFault::Drop(_), false) => format!("datagram {n} lost"),
            (WireFault::Drop(_), true) => format!("datagrama {n} perdido"),
            (WireFault::Dup(_), false) => format!("datagram {n} delivered twice"),
            (WireFault::Dup(_), true) => format!("datagrama {n} entregue duas vezes"),
            (WireFault::Swap(_), false) => {
                format!("datagrams {n} and {} swapped", n.saturating_add(1))
            }
            (WireFault::Swap(_), true) => {
                format!("datagramas {n} e {} trocados", n.saturating_add(1))
            }
        }
    }
}

impl fmt::Display for WireFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name(), self.value())
    }
}

/// Parses the value of `wire=`: faults joined with `+`, each kind once.
pub fn parse(value: &str) -> Result<Vec<WireFault>, String> {
    let usage = "faults are `split:N`, `delay:MS` (TCP), `drop:K`, `dup:K`, `swap:K` (UDP), joined with `+`, as in `wire=split:1+delay:20`";
    let mut faults: Vec<WireFault> = Vec::new();
    for part in value.split('+') {
        let Some((name, number)) = part.split_once(':') else {
            return Err(format!("`wire={value}`: `{part}` has no number; {usage}"));
        };
        let n: u32 = number
            .parse()
            .map_err(|_| format!("`wire={value}`: `{number}` is not a whole number; {usage}"))?;
        let fault = match name {
            "split" => WireFault::Split(n),
            "delay" => WireFault::Delay(n),
            "drop" => WireFault::Drop(n),
            "dup" => WireFault::Dup(n),
            "swap" => WireFault::Swap(n),
            other => {
                let hint = super::suggest(other, &["split", "delay", "drop", "dup", "swap"])
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                return Err(format!(
                    "`wire={value}`: unknown fault `{other}`{hint}; {usage}"
                ));
            }
        };
        let least = u32::from(!matches!(fault, WireFault::Delay(_)));
        if n < least || (matches!(fault, WireFault::Delay(_)) && n > MAX_DELAY_MS) {
            return Err(match fault {
                WireFault::Delay(_) => {
                    format!("`wire={value}`: a delay is 0 to {MAX_DELAY_MS} milliseconds")
                }
                WireFault::Split(_) => format!("`wire={value}`: pieces are at least 1 byte"),
                _ => format!("`wire={value}`: datagrams are counted from 1"),
            });
        }
        if faults.iter().any(|f| f.name() == fault.name()) {
            return Err(format!("`wire={value}`: `{}` is given twice", fault.name()));
        }
        faults.push(fault);
    }
    Ok(faults)
}

/// The faults as a lesson writes them: `split:1+delay:20`.
pub fn to_string(faults: &[WireFault]) -> String {
    faults
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("+")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_read_as_written_and_written_back_the_same() {
        let faults = parse("split:1+delay:20").unwrap();
        assert_eq!(faults, vec![WireFault::Split(1), WireFault::Delay(20)]);
        assert_eq!(to_string(&faults), "split:1+delay:20");
        assert_eq!(parse("swap:2").unwrap(), vec![WireFault::Swap(2)]);
        assert_eq!(
            WireFault::Split(1).describe("en"),
            "bytes split into pieces of 1"
        );
        assert_eq!(WireFault::Drop(2).describe("pt-BR"), "datagrama 2 perdido");
    }

    #[test]
    fn a_wrong_fault_is_an_error_that_says_what_is_known() {
        for (value, says) in [
            ("splt:1", "did you mean `split`?"),
            ("split", "has no number"),
            ("split:0", "at least 1 byte"),
            ("drop:0", "counted from 1"),
            ("delay:99999", "0 to 10000"),
            ("split:a", "not a whole number"),
            ("split:1+split:2", "given twice"),
        ] {
            let e = parse(value).unwrap_err();
            assert!(e.contains(says), "{value}: {e}");
        }
    }
}

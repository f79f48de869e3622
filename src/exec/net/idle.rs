//! Whether a server is only waiting: blocked until a new connection or
//! datagram comes, with no connection open. LESSON-FORMAT 1.2 lets such a
//! server be stopped at once after the last client, instead of after the
//! whole grace time: most servers loop on `accept` and never end by
//! themselves, so the grace was a wait every such exercise paid.
//!
//! Two signals, both read from the kernel without touching the server:
//!
//! - the socket tables: the server holds no TCP connection on its port
//!   (none established, none closed by the client but not yet by the
//!   server, none waiting to be accepted);
//! - each thread's `/proc/PID/task/TID/syscall`: every thread of every
//!   process the server started is blocked in a call that only a new
//!   connection, a datagram or another of its threads can end (`accept`,
//!   `recv`, `poll` and `epoll_wait` with no timeout, a futex with no
//!   timeout, ...): nothing but a client, or another of its blocked
//!   threads, can wake it.
//!
//! A thread that sleeps, waits with a timeout, runs, or cannot be read
//! makes the server busy: the grace applies as before. The caller asks
//! twice, some milliseconds apart, so a thread caught between two calls
//! is not taken for a waiting one.

use super::ports::Tables;

/// What one thread of the server is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Blocked until something else happens: a connection or a datagram
    /// (`accept`, `recv`, `poll`, ...), another of its threads or processes
    /// (a futex, `wait4`), a read on a pipe or socket.
    Waiting,
    /// Running, sleeping, waiting with a timeout, or unknown: it may do
    /// something by itself.
    Busy,
}

/// Whether the server whose processes are `pids` is only waiting for a new
/// client on `port`, seen through `tables` (the server's namespace).
pub fn only_waiting(pids: &[i32], tables: &Tables, port: u16) -> bool {
    match tables.open_connections(port) {
        Some(open) if open.is_empty() => {}
        _ => return false,
    }
    for &pid in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            // Gone meanwhile: it no longer waits for anything.
            continue;
        };
        for task in tasks.flatten() {
            let Ok(text) = std::fs::read_to_string(task.path().join("syscall")) else {
                // A thread that ended between the listing and the read.
                if task.path().exists() {
                    return false;
                }
                continue;
            };
            if wait_of(&text) == Wait::Busy {
                return false;
            }
        }
    }
    true
}

/// The processes a cell runs as now: its pids group's where it has one
/// (what left its process tree included), else `pid` and its descendants.
pub fn processes_of(pid: i32, group: Option<&crate::exec::sandbox::confine::Group>) -> Vec<i32> {
    match group {
        Some(group) => group.members(),
        None => with_descendants(pid),
    }
}

/// `pid` and every process it started that is still its descendant, from
/// each thread's `children` file; bounded by what `/proc` lists.
fn with_descendants(pid: i32) -> Vec<i32> {
    let mut all = vec![pid];
    let mut at = 0;
    while at < all.len() && all.len() < 4096 {
        let p = all[at];
        at += 1;
        for c in crate::exec::sandbox::children_of(p) {
            if !all.contains(&c) {
                all.push(c);
            }
        }
    }
    all
}

/// Reads one line of `/proc/PID/task/TID/syscall`: the call's number and
/// its six arguments in hex, `running`, or `-1 ...` outside a call.
fn wait_of(text: &str) -> Wait {
    let mut fields = text.split_whitespace();
    let Some(Ok(nr)) = fields.next().map(str::parse::<i64>) else {
        return Wait::Busy;
    };
    let args: Vec<u64> = fields
        .take(6)
        .filter_map(|f| u64::from_str_radix(f.trim_start_matches("0x"), 16).ok())
        .collect();
    if args.len() < 6 {
        return Wait::Busy;
    }
    classify(nr, &args)
}

/// A timeout in milliseconds given as an `int` argument: only -1 (no
/// timeout) waits for good.
fn forever_ms(arg: u64) -> bool {
    arg as u32 as i32 == -1
}

/// The call `nr` with arguments `a`, as [`Wait`]. The numbers are the
/// machine's own (libc's `SYS_*`); calls one machine lacks are left out
/// there.
#[allow(non_upper_case_globals)] // libc names them so
fn classify(nr: i64, a: &[u64]) -> Wait {
    use libc::*;
    // A pointer to a timeout: none (0) waits for good.
    let untimed = |arg: u64| arg == 0;
    let network = match nr {
        SYS_accept | SYS_accept4 | SYS_recvfrom | SYS_recvmsg => true,
        SYS_recvmmsg => untimed(a[4]),
        SYS_ppoll => untimed(a[2]),
        SYS_pselect6 => untimed(a[4]),
        SYS_epoll_pwait => forever_ms(a[3]),
        SYS_epoll_pwait2 => untimed(a[3]),
        #[cfg(target_arch = "x86_64")]
        SYS_poll => forever_ms(a[2]),
        #[cfg(target_arch = "x86_64")]
        SYS_select => untimed(a[4]),
        #[cfg(target_arch = "x86_64")]
        SYS_epoll_wait => forever_ms(a[3]),
        _ => false,
    };
    if network {
        return Wait::Waiting;
    }
    let op = (a[1] as u32 as i32) & FUTEX_CMD_MASK;
    let futex_forever =
        matches!(op, FUTEX_WAIT | FUTEX_WAIT_BITSET | FUTEX_LOCK_PI2) || op == FUTEX_LOCK_PI;
    match nr {
        SYS_futex if futex_forever && untimed(a[3]) => Wait::Waiting,
        SYS_wait4 | SYS_waitid | SYS_read | SYS_readv => Wait::Waiting,
        _ => Wait::Busy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};
    use std::net::{Ipv4Addr, TcpStream};
    use std::time::{Duration, Instant};

    #[test]
    fn lines_of_the_syscall_file_are_read_as_waits() {
        assert_eq!(wait_of("running"), Wait::Busy);
        assert_eq!(wait_of("-1 0x7ffd 0x7f00"), Wait::Busy);
        let line = |nr: i64, args: [u64; 6]| {
            let args: Vec<String> = args.iter().map(|a| format!("{a:#x}")).collect();
            format!("{nr} {} 0x7ffd 0x7f00", args.join(" "))
        };
        assert_eq!(
            wait_of(&line(libc::SYS_accept4, [3, 0, 0, 0x80000, 0, 0])),
            Wait::Waiting
        );
        // A futex with no timeout: a worker waiting for work, a join.
        let wait = (libc::FUTEX_WAIT_BITSET | libc::FUTEX_PRIVATE_FLAG) as u64;
        assert_eq!(
            wait_of(&line(libc::SYS_futex, [0x55, wait, 0xffff_ffff, 0, 0, 0])),
            Wait::Waiting
        );
        // With one, it wakes by itself: a `recv_timeout`.
        assert_eq!(
            wait_of(&line(libc::SYS_futex, [0x55, wait, 0, 0x7ffd, 0, 0])),
            Wait::Busy
        );
        assert_eq!(
            wait_of(&line(
                libc::SYS_epoll_pwait,
                [3, 0x7ffd, 1024, u64::MAX, 0, 8]
            )),
            Wait::Waiting
        );
        assert_eq!(
            wait_of(&line(libc::SYS_epoll_pwait, [3, 0x7ffd, 1024, 250, 0, 8])),
            Wait::Busy
        );
        assert_eq!(
            wait_of(&line(libc::SYS_clock_nanosleep, [0, 0, 0x7ffd, 0, 0, 0])),
            Wait::Busy
        );
        assert_eq!(
            wait_of(&line(libc::SYS_write, [1, 0x7ffd, 5, 0, 0, 0])),
            Wait::Busy
        );
    }

    /// A Python server in a process of its own: it accepts, echoes four
    /// bytes, reads until the client closes, then `after` (Python code)
    /// before it accepts again. Its port is its first line.
    fn python_server(after: &str) -> (std::process::Child, u16) {
        let code = format!(
            "import socket,sys,time\n\
             l=socket.socket();l.bind(('127.0.0.1',0));l.listen()\n\
             print(l.getsockname()[1],flush=True)\n\
             while True:\n c,_=l.accept();c.sendall(c.recv(4))\n \
             while c.recv(10):pass\n c.close()\n {after}\n"
        );
        let mut child = std::process::Command::new("python3")
            .args(["-c", &code])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        let out = child.stdout.take().unwrap();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
        (child, line.trim().parse().unwrap())
    }

    fn settles(want: bool, child: &std::process::Child, port: u16, tables: &Tables) -> bool {
        let pid = child.id() as i32;
        let end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < end {
            if only_waiting(&[pid], tables, port) == want {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn a_server_in_accept_is_waiting_one_with_a_connection_open_or_asleep_is_not() {
        let tables = Tables::here();
        let (mut server, port) = python_server("time.sleep(0.6)");
        assert!(settles(true, &server, port, &tables), "in accept: waiting");
        let mut client = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        client.write_all(b"ping").unwrap();
        let mut b = [0u8; 4];
        client.read_exact(&mut b).unwrap();
        // Blocked in `recv` on a connection it holds: not only waiting.
        std::thread::sleep(Duration::from_millis(50));
        assert!(!only_waiting(&[server.id() as i32], &tables, port));
        drop(client);
        // Asleep after the client left: it may print something yet.
        assert!(settles(false, &server, port, &tables));
        assert!(!only_waiting(&[server.id() as i32], &tables, port));
        // Back in accept once the sleep is over.
        assert!(settles(true, &server, port, &tables));
        server.kill().unwrap();
        server.wait().unwrap();
    }
}

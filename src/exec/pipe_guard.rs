//! The guard on a confined context's pipes to evcxr.
//!
//! evcxr reads its child's standard output and error a line at a time, with
//! no bound on a line's length, in the host. A cell's own output goes to its
//! capture files, but the pipes themselves stay reachable from students'
//! code (the runtime keeps them open to restore them, and evcxr's protocol
//! runs on them): a cell that writes one endless line to them would grow
//! the grader's memory without end. So a confined context's child starts,
//! before anything else, a small relay process that holds evcxr's pipes and
//! hands the child pipes of its own; it copies bytes through and breaks a
//! line that grows past the cap, so no line the host reads is longer.
//!
//! The relay is forked while the child is still the host's user, before it
//! confines itself: students' code, running as a sandbox user after, can
//! neither signal nor trace it, and reaches it only through the bytes it
//! writes. It dies with the child (`PR_SET_PDEATHSIG`), with its process
//! group and with its cgroup, and ends when both pipes are closed.

use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

/// Set by the host on a confined context's child: the longest line, in
/// bytes, the relay lets through unbroken.
pub const LINE_CAP_ENV: &str = "AULA_PIPE_LINE_CAP";

/// The relay's name (its `comm`), by which the host knows its zombie.
const RELAY_NAME: &std::ffi::CStr = c"aula-relay";

/// Reaps the relays that outlived their child and were left to aula, the
/// subreaper: after a quick kill (a process group's) nothing waits for them,
/// and a zombie keeps its place in its pids group's budget until reaped.
/// Only zombies, only aula's own children, only by that name: a process
/// that names itself so can only have its own zombie reaped.
pub fn reap_orphaned_relays() {
    let me = std::process::id() as i32;
    let Ok(all) = procfs::process::all_processes() else {
        return;
    };
    for p in all.flatten() {
        let Ok(stat) = p.stat() else {
            continue;
        };
        let relay =
            stat.ppid == me && stat.state == 'Z' && stat.comm.as_bytes() == RELAY_NAME.to_bytes();
        if let Some(pid) = rustix::process::Pid::from_raw(p.pid).filter(|_| relay) {
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG);
        }
    }
}

/// Set by evcxr on the child that runs compiled cells.
const EVCXR_RUNTIME_ENV: &str = "EVCXR_IS_RUNTIME";

/// In `main`, first: in a confined context's child, puts the relay between
/// its standard output and error and evcxr's pipes. Elsewhere, nothing.
pub fn guard_from_env() {
    if std::env::var_os(EVCXR_RUNTIME_ENV).is_none() {
        return;
    }
    let Some(cap) = std::env::var(LINE_CAP_ENV)
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
    else {
        return;
    };
    if let Err(e) = start(cap.max(1)) {
        // Without the guard the child must not run students' code.
        eprintln!("aula: cannot guard the context's pipes: {e}");
        std::process::exit(125);
    }
}

fn start(cap: usize) -> std::io::Result<()> {
    let (out_read, out_write) = std::io::pipe()?;
    let (err_read, err_write) = std::io::pipe()?;
    let parent = std::process::id();
    // SAFETY: called first in `main`, while the process has one thread, so
    // the child may do anything the parent could.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => {
            drop((out_write, err_write));
            relay(parent, out_read.into(), err_read.into(), cap)
        }
        _ => {
            drop((out_read, err_read));
            for (pipe, fd) in [(out_write.as_raw_fd(), 1), (err_write.as_raw_fd(), 2)] {
                // SAFETY: both fds are open; 1 and 2 are replaced in place.
                if unsafe { libc::dup2(pipe, fd) } < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        }
    }
}

/// The relay's whole life: copies both pipes until each is closed, then
/// exits without returning to `main`.
fn relay(parent: u32, out: OwnedFd, err: OwnedFd, cap: usize) -> ! {
    // SAFETY: plain system calls with integer arguments and a string
    // that lives as long as the call.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::prctl(libc::PR_SET_NAME, RELAY_NAME.as_ptr());
        libc::close(0);
    }
    // The child may have died before the signal was asked for.
    if rustix::process::getppid().map(|p| p.as_raw_nonzero().get() as u32) != Some(parent) {
        std::process::exit(0);
    }
    let copies = [(out, 1), (err, 2)].map(|(from, to)| {
        std::thread::spawn(move || {
            // SAFETY: fds 1 and 2 are evcxr's pipes, held by this process
            // alone now; each thread writes its own.
            let to = unsafe { std::fs::File::from_raw_fd(to) };
            copy_breaking_lines(std::fs::File::from(from), to, cap)
        })
    });
    for copy in copies {
        let _ = copy.join();
    }
    std::process::exit(0)
}

/// Copies `from` to `to`, writing a line break after every `cap` bytes
/// without one, until `from` ends or `to` is gone.
fn copy_breaking_lines(
    mut from: impl std::io::Read,
    mut to: impl std::io::Write,
    cap: usize,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    // Bytes since the last line break.
    let mut run = 0usize;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let room = cap - run;
            // A line of `cap` bytes may still end with its own break.
            let take = match rest.iter().take(room + 1).position(|&b| b == b'\n') {
                Some(i) => {
                    run = 0;
                    i + 1
                }
                None if rest.len() <= room => {
                    run += rest.len();
                    rest.len()
                }
                None => {
                    run = 0;
                    to.write_all(&rest[..room])?;
                    to.write_all(b"\n")?;
                    rest = &rest[room..];
                    continue;
                }
            };
            to.write_all(&rest[..take])?;
            rest = &rest[take..];
        }
        to.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(input: &[u8], cap: usize) -> Vec<u8> {
        let mut out = Vec::new();
        copy_breaking_lines(input, &mut out, cap).unwrap();
        out
    }

    #[test]
    fn lines_within_the_cap_pass_unchanged() {
        let text = b"EVCXR_EXECUTION_COMPLETE\nola\n\nsem fim";
        assert_eq!(through(text, 24), text);
    }

    #[test]
    fn a_line_past_the_cap_is_broken_every_cap_bytes() {
        assert_eq!(through(b"abcdefgh\nij", 3), b"abc\ndef\ngh\nij");
        assert_eq!(through(b"abc\n", 3), b"abc\n");
        let long = vec![b'x'; 200_000];
        let out = through(&long, 1000);
        assert!(out.split(|&b| b == b'\n').all(|l| l.len() <= 1000));
        assert_eq!(out.iter().filter(|&&b| b == b'x').count(), 200_000);
    }
}

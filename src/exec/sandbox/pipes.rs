//! The warden of evcxr's pipes: a small process between the grader and a
//! confined context's child, which passes evcxr's commands down and the
//! child's output up with every line cut at [`LINE_CAP`] bytes.
//!
//! evcxr reads its child's standard output and error a line at a time,
//! each line into memory whole. Students' code can write on those pipes
//! (aula's runtime keeps them on saved descriptors while a cell runs), so a
//! line that never ends would take the grader's memory, a gigabyte a
//! second. The cut is made here, in a process the child cannot reach (it
//! stays the grader's user, with no descriptor of the child's but the
//! pipes), because inside the child anything can be bypassed.
//!
//! The warden forks before anything else happens in the process (see
//! `main`): the child goes on to confine itself and run evcxr's runtime;
//! the warden copies bytes until the child's pipes close, then ends as the
//! child ended, so evcxr reports a child that died of a signal as it would
//! without the warden.

use std::os::fd::{AsRawFd as _, OwnedFd, RawFd};

/// Set in the environment of a context's child by the grader: split off a
/// warden first.
pub const ENV: &str = "AULA_PIPE_WARDEN";

/// The longest line evcxr is handed. Its own messages are a few dozen
/// bytes; a cell's output goes to capture files, not here.
pub const LINE_CAP: usize = 64 * 1024;

/// Cuts a stream of bytes into lines of at most [`LINE_CAP`] bytes: the
/// first `LINE_CAP` bytes of a longer line, a newline, and nothing more of
/// it. Bytes that are not a whole line yet are passed on as they come, so
/// the warden holds at most one read's worth.
#[derive(Debug, Default)]
pub struct Cutter {
    /// Bytes of the current line passed on so far.
    in_line: usize,
    /// Past the cap: dropping until the line's end.
    dropping: bool,
}

impl Cutter {
    /// Appends to `out` what of `input` goes on.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut rest = input;
        while !rest.is_empty() {
            let end = rest.iter().position(|&b| b == b'\n');
            let piece = &rest[..end.map_or(rest.len(), |e| e + 1)];
            rest = &rest[piece.len()..];
            if self.dropping {
                if end.is_some() {
                    // The newline went on when the line was cut.
                    self.dropping = false;
                    self.in_line = 0;
                }
                continue;
            }
            let room = LINE_CAP - self.in_line;
            if piece.len() <= room || (end.is_some() && piece.len() == room + 1) {
                out.extend_from_slice(piece);
                self.in_line = if end.is_some() {
                    0
                } else {
                    self.in_line + piece.len()
                };
            } else {
                out.extend_from_slice(&piece[..room]);
                out.push(b'\n');
                self.in_line = 0;
                self.dropping = end.is_none();
            }
        }
    }
}

/// In a context's child started with [`ENV`]: forks. The child returns and
/// goes on with pipes of the warden's as its standard streams; the warden
/// never returns. Does nothing without [`ENV`].
pub fn split_from_env() {
    if std::env::var_os(ENV).is_none() {
        return;
    }
    match split() {
        Ok(Side::Child) => {}
        Ok(Side::Warden(warden)) => std::process::exit(warden.run()),
        Err(e) => {
            eprintln!("aula: cannot start the pipes' warden: {e}");
            std::process::exit(125);
        }
    }
}

enum Side {
    Child,
    Warden(Warden),
}

/// One pipe in each direction per standard stream, and the fork. Runs while
/// the process has one thread, before the runtime starts any.
fn split() -> std::io::Result<Side> {
    use rustix::pipe::{PipeFlags, pipe_with};
    // Whatever the grader inherited without close-on-exec (a CI runner's
    // pipe or socket) is not students' code's to write to; neither the
    // warden nor the runtime needs any descriptor but the three standard
    // ones.
    // SAFETY: closing descriptors nothing in this process uses yet.
    if unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let (in_r, in_w) = pipe_with(PipeFlags::CLOEXEC)?;
    let (out_r, out_w) = pipe_with(PipeFlags::CLOEXEC)?;
    let (err_r, err_w) = pipe_with(PipeFlags::CLOEXEC)?;
    let grader = std::env::var(super::PARENT_ENV)
        .ok()
        .and_then(|p| p.parse::<i32>().ok());
    let warden = std::process::id();
    // SAFETY: one thread here; the child only calls dup2 and returns to
    // ordinary code, as after any fork of a single-threaded process.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid == 0 {
        for (from, to) in [(&in_r, 0), (&out_w, 1), (&err_w, 2)] {
            // dup2 clears close-on-exec on the copy.
            // SAFETY: both descriptors are open.
            if unsafe { libc::dup2(from.as_raw_fd(), to) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        // The child's parent is the warden now, whose end it watches (see
        // `watch_parent`); the warden watches the grader. One thread: no
        // other reads the environment meanwhile.
        // SAFETY: single-threaded, see above.
        unsafe { std::env::set_var(super::PARENT_ENV, warden.to_string()) };
        unsafe { std::env::remove_var(ENV) };
        return Ok(Side::Child);
    }
    drop((in_r, out_w, err_w));
    Ok(Side::Warden(Warden {
        child: pid,
        grader: grader.and_then(pidfd_of),
        to_child: Some(in_w),
        from_child: [Some(out_r), Some(err_r)],
    }))
}

fn pidfd_of(pid: i32) -> Option<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid)?;
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .ok()
        .filter(|_| {
            rustix::process::getppid().map(|p| p.as_raw_nonzero().get())
                == Some(pid.as_raw_nonzero().get())
        })
}

struct Warden {
    child: i32,
    /// The grader's pidfd: readable once it ended.
    grader: Option<OwnedFd>,
    /// The child's standard input, until evcxr closes ours.
    to_child: Option<OwnedFd>,
    /// The child's standard output and error, until they close.
    from_child: [Option<OwnedFd>; 2],
}

impl Warden {
    /// Copies until the child's output ends, then ends as the child did.
    /// Blocking copies are safe: evcxr writes commands and reads output on
    /// different threads, and its commands are a few lines each.
    fn run(mut self) -> i32 {
        let mut cutters = [Cutter::default(), Cutter::default()];
        let mut buf = vec![0u8; 64 * 1024];
        let mut out = Vec::with_capacity(LINE_CAP + 1);
        while self.from_child.iter().any(Option::is_some) {
            let mut fds = Vec::with_capacity(4);
            let stdin = self.to_child.is_some().then_some(0);
            fds.extend(stdin.map(poll_in));
            for f in self.from_child.iter().flatten() {
                fds.push(poll_in(f.as_raw_fd()));
            }
            fds.extend(self.grader.as_ref().map(|g| poll_in(g.as_raw_fd())));
            // SAFETY: `fds` is a valid array of its length. No timeout: the
            // warden must look idle to `exec::net::idle` while it waits.
            if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) } < 0 {
                continue;
            }
            if self.grader_gone(&fds) {
                // As `watch_parent` does: nothing outlives the grader.
                let _ = rustix::process::kill_process_group(
                    rustix::process::getpid(),
                    rustix::process::Signal::KILL,
                );
                return 137;
            }
            let ready = |fd: RawFd| {
                fds.iter().any(|p| {
                    p.fd == fd && p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
                })
            };
            if ready(0) && stdin.is_some() {
                self.pass_down(&mut buf);
            }
            for (i, cutter) in cutters.iter_mut().enumerate() {
                let Some(fd) = self.from_child[i].as_ref().map(|f| f.as_raw_fd()) else {
                    continue;
                };
                if ready(fd) {
                    out.clear();
                    match read(fd, &mut buf) {
                        0 => self.from_child[i] = None,
                        n => {
                            cutter.feed(&buf[..n], &mut out);
                            let _ = write_all(i as RawFd + 1, &out);
                        }
                    }
                }
            }
        }
        drop(self.to_child.take());
        self.mirror_child_end()
    }

    fn grader_gone(&self, fds: &[libc::pollfd]) -> bool {
        self.grader
            .as_ref()
            .is_some_and(|g| fds.iter().any(|p| p.fd == g.as_raw_fd() && p.revents != 0))
    }

    /// evcxr's commands, down to the child; its end of them ends the
    /// child's standard input.
    fn pass_down(&mut self, buf: &mut [u8]) {
        let n = read(0, buf);
        let sent = self
            .to_child
            .as_ref()
            .is_some_and(|to| n > 0 && write_all(to.as_raw_fd(), &buf[..n]));
        if !sent {
            self.to_child = None;
        }
    }

    /// Waits for the child and ends the same way: its exit code, or its
    /// signal, raised again here.
    fn mirror_child_end(self) -> i32 {
        let mut status = 0;
        // SAFETY: waiting for our own child, into a valid int.
        while unsafe { libc::waitpid(self.child, &mut status, 0) } < 0 {
            if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                return 125;
            }
        }
        if libc::WIFEXITED(status) {
            return libc::WEXITSTATUS(status);
        }
        let signal = libc::WTERMSIG(status);
        // SAFETY: restoring the default action and raising a signal on
        // ourselves; no core file (the child made none either: the limits
        // are the same).
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::raise(signal);
        }
        128 + signal
    }
}

fn poll_in(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// One read: the bytes read, 0 at the end or on an error other than EINTR.
fn read(fd: RawFd, buf: &mut [u8]) -> usize {
    loop {
        // SAFETY: `buf` is valid for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return n as usize;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return 0;
        }
    }
}

fn write_all(fd: RawFd, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is valid for its length.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n > 0 {
            bytes = &bytes[n as usize..];
        } else if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(chunks: &[&[u8]]) -> Vec<u8> {
        let mut c = Cutter::default();
        let mut out = Vec::new();
        for chunk in chunks {
            c.feed(chunk, &mut out);
        }
        out
    }

    #[test]
    fn short_lines_pass_whole_however_they_arrive() {
        let text = b"EVCXR_EXECUTION_COMPLETE\nola\nmun";
        assert_eq!(cut(&[text]), text);
        assert_eq!(cut(&[&text[..5], &text[5..30], &text[30..]]), text);
    }

    #[test]
    fn a_line_at_the_cap_passes_and_a_longer_one_is_cut_once() {
        let mut exact = vec![b'a'; LINE_CAP];
        exact.push(b'\n');
        assert_eq!(cut(&[&exact]), exact);

        let long = vec![b'b'; LINE_CAP * 3 + 7];
        let out = cut(&[&long[..100], &long[100..], b"\nnext\n"]);
        let mut want = vec![b'b'; LINE_CAP];
        want.extend_from_slice(b"\nnext\n");
        assert_eq!(out, want);
    }

    #[test]
    fn a_line_with_no_end_is_held_to_the_cap() {
        let mut c = Cutter::default();
        let mut passed = 0;
        let chunk = vec![b'x'; 65_536];
        for _ in 0..64 {
            let mut out = Vec::new();
            c.feed(&chunk, &mut out);
            passed += out.len();
        }
        assert_eq!(passed, LINE_CAP + 1);
    }
}

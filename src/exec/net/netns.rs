//! `--isolate`: students' code in a private network namespace with only
//! loopback up, so it cannot reach other hosts, and exercises of different
//! runs can never meet on a port.
//!
//! A server and its client run in different processes, so they must share
//! one namespace: a small holder process (aula itself, in holder mode)
//! creates a user and a network namespace and stays in it; every context's
//! child joins both before it starts. Unprivileged users can do this where
//! the kernel allows user namespaces; elsewhere `create` fails and the run
//! goes on without isolation, saying so.

use std::io::{BufRead as _, BufReader, Read as _};
use std::os::fd::{AsFd as _, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};

use anyhow::{Context as _, Result, bail};

/// Set in the environment of the holder process.
pub const HOLDER_ENV: &str = "AULA_NETNS_HOLDER";

/// `struct ifreq` as SIOCGIFFLAGS and SIOCSIFFLAGS read and write it.
#[repr(C)]
struct IfReq {
    name: [u8; 16],
    flags: i16,
    _pad: [u8; 22],
}

const SIOCGIFFLAGS: rustix::ioctl::Opcode = 0x8913;
const SIOCSIFFLAGS: rustix::ioctl::Opcode = 0x8914;
const IFF_UP: i16 = 1;

fn loopback_up() -> std::io::Result<()> {
    use rustix::net::{AddressFamily, SocketType, socket};
    let sock = socket(AddressFamily::INET, SocketType::DGRAM, None)?;
    let mut req = IfReq {
        name: [0; 16],
        flags: 0,
        _pad: [0; 22],
    };
    req.name[..2].copy_from_slice(b"lo");
    // SAFETY: both opcodes take a `struct ifreq`, which `IfReq` lays out.
    unsafe {
        rustix::ioctl::ioctl(
            &sock,
            rustix::ioctl::Updater::<SIOCGIFFLAGS, IfReq>::new(&mut req),
        )?;
        req.flags |= IFF_UP;
        rustix::ioctl::ioctl(
            &sock,
            rustix::ioctl::Updater::<SIOCSIFFLAGS, IfReq>::new(&mut req),
        )?;
    }
    Ok(())
}

/// The holder: enters new namespaces, brings loopback up, says `ready`, and
/// stays until its parent closes its stdin (or dies).
pub fn holder_main() -> ! {
    use rustix::thread::{UnshareFlags, unshare_unsafe};
    // SAFETY: the holder is single-threaded here; nothing shares its state.
    // Root makes a network namespace as it is; anyone else needs a user
    // namespace to own it. Under root, a user namespace would make the
    // children root inside it, over every file root owns.
    let flags = if rustix::process::geteuid().is_root() {
        UnshareFlags::NEWNET
    } else {
        UnshareFlags::NEWUSER | UnshareFlags::NEWNET
    };
    let entered = unsafe { unshare_unsafe(flags) };
    if let Err(e) = entered
        .map_err(std::io::Error::from)
        .and_then(|()| loopback_up())
    {
        println!("error: {e}");
        std::process::exit(1);
    }
    // A socket-tables socket made here belongs to this namespace; the host
    // takes a copy of it (`pidfd_getfd`) to see when servers are bound.
    let diag = super::ports::diag_socket()
        .map(|fd| std::os::fd::IntoRawFd::into_raw_fd(fd).to_string())
        .unwrap_or_default();
    println!("ready {diag}");
    let mut sink = Vec::new();
    let _ = std::io::stdin().take(1 << 20).read_to_end(&mut sink);
    std::process::exit(0);
}

pub struct Netns {
    holder: Child,
    pid: i32,
    /// The holder's socket-tables socket, by its number there.
    diag_fd: Option<i32>,
    /// The holder's user namespace, when it needed one (not under root).
    user: Option<OwnedFd>,
    net: OwnedFd,
}

impl Netns {
    pub fn create() -> Result<Netns> {
        let exe = std::env::current_exe()?;
        let mut holder = Command::new(exe)
            .env(HOLDER_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the namespace holder")?;
        // The holder answers at once, or exits (end of file): no wait here
        // can outlast it.
        let mut line = String::new();
        let stdout = holder.stdout.take().expect("piped");
        BufReader::new(stdout).read_line(&mut line)?;
        let mut words = line.split_whitespace();
        if words.next() != Some("ready") {
            let _ = holder.kill();
            let _ = holder.wait();
            bail!(
                "user and network namespaces are not available here ({})",
                line.trim().trim_start_matches("error: ")
            );
        }
        let diag_fd = words.next().and_then(|w| w.parse::<i32>().ok());
        let pid = holder.id() as i32;
        let open = |name: &str| -> Result<OwnedFd> {
            Ok(std::fs::File::open(format!("/proc/{pid}/ns/{name}"))?.into())
        };
        let user = if rustix::process::geteuid().is_root() {
            None
        } else {
            Some(open("user")?)
        };
        Ok(Netns {
            user,
            net: open("net")?,
            pid,
            diag_fd,
            holder,
        })
    }

    /// The holder's pid: its `/proc/PID/net/*` tables are the namespace's.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The namespace's socket tables: through a copy of the holder's
    /// netlink socket where the kernel lets us take it, else through the
    /// holder's `/proc` tables.
    pub fn tables(&self) -> super::ports::Tables {
        use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, pidfd_getfd, pidfd_open};
        let socket = self.diag_fd.and_then(|fd| {
            let pidfd = pidfd_open(Pid::from_raw(self.pid)?, PidfdFlags::empty()).ok()?;
            pidfd_getfd(&pidfd, fd, PidfdGetfdFlags::empty()).ok()
        });
        super::ports::Tables::with(socket, Some(self.pid))
    }

    /// Makes the command's process join the namespaces before it starts.
    pub fn enter_in(&self, command: &mut Command) -> Result<()> {
        use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
        let user = self.user.as_ref().map(OwnedFd::try_clone).transpose()?;
        let net = self.net.try_clone()?;
        // SAFETY: only setns runs between fork and exec: raw system calls on
        // descriptors opened beforehand, no allocation.
        unsafe {
            command.pre_exec(move || {
                if let Some(user) = &user {
                    move_into_link_name_space(user.as_fd(), Some(LinkNameSpaceType::User))?;
                }
                move_into_link_name_space(net.as_fd(), Some(LinkNameSpaceType::Network))?;
                Ok(())
            });
        }
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

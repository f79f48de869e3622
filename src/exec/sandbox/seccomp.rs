//! The system calls students' code may not make when grading, refused by a
//! seccomp filter (built with `seccompiler`, as Firecracker does) that a
//! confined child installs on itself after Landlock.
//!
//! A deny list, as the Rust Playground's Docker profile and nsjail's
//! defaults are: what a networked lesson's program needs (threads, sockets
//! on the network, files, `fork` and `exec`) stays allowed, and what only
//! reaches beyond the sandbox is refused with `EPERM`: mounting, tracing
//! other processes, the kernel's keyring, BPF, namespaces, modules,
//! rebooting, performance counters, io_uring (which bypasses this filter's
//! view of calls), and UNIX sockets, which Landlock does not mediate and
//! which reach the host's services (a container engine's socket, say).
//! Pairs of UNIX sockets (`socketpair`) stay allowed: they connect to
//! nothing outside the program.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
};

/// Calls refused whatever their arguments.
const DENIED: &[i64] = &[
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_fsopen,
    libc::SYS_fsmount,
    libc::SYS_fsconfig,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_bpf,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_reboot,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_perf_event_open,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_userfaultfd,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    // System V IPC and POSIX message queues outlive the processes that made
    // them, and are not namespaced here: one check could leave a message
    // (a hidden input) for the next.
    libc::SYS_shmget,
    libc::SYS_shmat,
    libc::SYS_shmctl,
    libc::SYS_msgget,
    libc::SYS_msgsnd,
    libc::SYS_msgrcv,
    libc::SYS_msgctl,
    libc::SYS_semget,
    libc::SYS_semop,
    libc::SYS_semtimedop,
    libc::SYS_semctl,
    libc::SYS_mq_open,
    libc::SYS_mq_unlink,
    // Another process's priority, not one's own, is the only use here.
    libc::SYS_setpriority,
    libc::SYS_ioprio_set,
];

/// Calls refused when they name another process (their first argument is
/// a pid, 0 meaning the caller): a check's code may change its own limits,
/// scheduling and CPUs, not those of another check running as the same
/// user.
const ON_OTHERS: &[i64] = &[
    libc::SYS_prlimit64,
    libc::SYS_sched_setaffinity,
    libc::SYS_sched_setscheduler,
    libc::SYS_sched_setparam,
    libc::SYS_sched_setattr,
];

/// Namespace flags that `clone` may not be given.
const NEW_NAMESPACES: &[u64] = &[
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWCGROUP as u64,
];

fn rules() -> Result<BTreeMap<i64, Vec<SeccompRule>>> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&call| (call, Vec::new())).collect();
    // socket(AF_UNIX, ...): the first argument.
    let unix = SeccompCondition::new(
        0,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::Eq,
        libc::AF_UNIX as u64,
    )?;
    rules.insert(libc::SYS_socket, vec![SeccompRule::new(vec![unix])?]);
    for &call in ON_OTHERS {
        let other = SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, 0)?;
        rules.insert(call, vec![SeccompRule::new(vec![other])?]);
    }
    // clone with any namespace flag: one rule a flag, as a rule's
    // conditions must all hold.
    let clone = NEW_NAMESPACES
        .iter()
        .map(|&flag| {
            let cond = SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(flag),
                flag,
            )?;
            Ok(SeccompRule::new(vec![cond])?)
        })
        .collect::<Result<Vec<_>>>()?;
    rules.insert(libc::SYS_clone, clone);
    Ok(rules)
}

/// Installs the filter on this thread and those it starts. Needs
/// `no_new_privs`, which Landlock has set by then.
pub fn install() -> Result<()> {
    let filter = SeccompFilter::new(
        rules()?,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        std::env::consts::ARCH
            .try_into()
            .context("this architecture has no seccomp filter here")?,
    )?;
    let program: seccompiler::BpfProgram = filter.try_into()?;
    seccompiler::apply_filter(&program)?;
    // `clone3` passes its flags in memory, where a filter cannot look:
    // refused as unknown, so that libc falls back to `clone`, which the
    // filter above sees (as Docker's profile does).
    let clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        std::env::consts::ARCH.try_into()?,
    )?;
    let program: seccompiler::BpfProgram = clone3.try_into()?;
    seccompiler::apply_filter(&program)?;
    Ok(())
}

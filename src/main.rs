fn main() -> std::process::ExitCode {
    // A confined context's child first splits off the warden of evcxr's
    // pipes, which stays outside the confinement and bounds every line.
    aula::exec::sandbox::pipes::split_from_env();
    // In a context's child, end with aula: must start before the runtime
    // hook, which never returns there.
    // A confined child confines itself while it has one thread, so
    // every thread it starts later is bound too.
    aula::exec::sandbox::confine::enter_from_env();
    aula::exec::sandbox::confine::seccomp_probe_from_env();
    // As the compiler of students' code when grading: limited, then rustc.
    aula::exec::sandbox::wrap_rustc_from_env();
    // A confined Python peer: aula confined itself for it, and becomes it.
    aula::exec::peer::exec_from_env();
    aula::exec::sandbox::watch_parent();
    // Must come first otherwise: evcxr runs this same binary as the child
    // that loads and runs compiled cells, and as a rustc wrapper.
    evcxr::runtime_hook();
    aula::cli::main()
}

fn main() -> std::process::ExitCode {
    // Must come first: evcxr runs this same binary as the child that loads
    // and runs compiled cells, and as a rustc wrapper.
    evcxr::runtime_hook();
    aula::cli::main()
}

fn main() -> std::process::ExitCode {
    quorumlab::cli::main()
}

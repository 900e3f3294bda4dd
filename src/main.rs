fn main() -> std::process::ExitCode {
    shadowdraft::cli::main()
}

fn main() -> std::process::ExitCode {
    isovec::cli::main()
}

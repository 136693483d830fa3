fn main() -> std::process::ExitCode {
    // The CLI owns its process: make the encoder's speed settings before any thread starts.
    isovec::encoder::tune_process();
    isovec::cli::main()
}

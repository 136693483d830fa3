fn main() -> std::process::ExitCode {
    // The CLI owns its process: make the encoder's speed settings before any thread starts.
    // No other thread runs yet, so they apply; declined, encoding would only be slower.
    let _ = isovec::encoder::tune_process();
    isovec::cli_main()
}

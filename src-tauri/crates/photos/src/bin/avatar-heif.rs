//! Reads one HEIC or AVIF file from stdin in a process of its own, under memory and CPU limits;
//! see `photos::heif`. Started by the app and the CLI, not by people.

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    photos::serve_heif_child(&args)
}

//! The `steward` binary: a thin shim over the library, so tests and tools reuse it.

fn main() -> std::process::ExitCode {
    steward_server::main()
}

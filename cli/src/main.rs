//! `synth`: the platform on one machine (`synth serve`) and the engine from a shell
//! (`generate`, `evaluate`, `optimize`, `profile`).

mod admin;
mod evaluate;
mod generate;
mod input;
mod optimize;
mod profile;
mod serve;
mod worker;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// Training allocates and frees the same large buffers every step; mimalloc keeps and reuses
// them where the system allocator returns them to the kernel and faults them back in.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "synth",
    version,
    about = "Synthetic tabular data: learn a table, generate a synthetic one"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole platform in this process: API, storage, queue and workers.
    Serve(serve::ServeArgs),
    /// Learn a table with CTGAN, TVAE or argn and write a synthetic one.
    Generate(Box<generate::GenerateArgs>),
    /// Score a synthetic table against the real one: quality, diagnostic, privacy, ML efficacy.
    Evaluate(Box<evaluate::EvaluateArgs>),
    /// Search a model's hyperparameters (grid, random or Bayesian) and keep the best model.
    Optimize(Box<optimize::OptimizeArgs>),
    /// Profile a table: column types (SDV metadata) and statistics.
    Profile(profile::ProfileArgs),
    /// Administer accounts.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Analyse one upload in a process of its own (what `synth serve` runs per upload).
    #[command(name = "analyze-upload", hide = true)]
    AnalyzeUpload(serve::AnalyzeUploadArgs),
}

/// A command that prints its result ends quietly when the reader goes (`| head`), as
/// command-line tools do, instead of panicking on the write: the default action of SIGPIPE,
/// which Rust ignores. Not for `serve`, whose clients may go at any time.
fn stop_quietly_on_a_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called before any other thread exists; restores the signal's default action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    // candle runs large elementwise ops on a pool whose workers spin between ops. The engine
    // does its heavy elementwise work in its own kernels and keeps the cores for the matrix
    // products and its drawing thread, so candle's pool only competes with them: keep it to
    // the calling thread unless the user chose otherwise.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: no other thread exists yet (the runtime is built below), so nothing can
        // read the environment concurrently.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
    let cli = Cli::parse();
    if matches!(cli.command, Command::Evaluate(_) | Command::Profile(_)) {
        stop_quietly_on_a_closed_pipe();
    }
    if let Command::AnalyzeUpload(args) = &cli.command {
        return serve::analyze_upload(args);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Stated rather than inherited: nothing on these threads recurses on user input
        // (uploads are analysed in a child process; JSON depth is bounded before parsing).
        .thread_stack_size(8 * 1024 * 1024)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match cli.command {
        Command::Serve(args) => {
            let served = runtime.block_on(serve::run(args));
            // Not a plain drop, which would wait for a training step still running on a
            // blocking thread however long it takes.
            runtime.shutdown_timeout(serve::RUNTIME_SHUTDOWN_WAIT);
            served
        }
        Command::Admin(cmd) => runtime.block_on(admin::run(cmd)),
        Command::Profile(args) => profile::run(args),
        Command::Generate(args) => generate::run(*args),
        Command::Evaluate(args) => evaluate::run(*args),
        Command::Optimize(args) => optimize::run(*args),
        Command::AnalyzeUpload(_) => unreachable!("run before the runtime starts"),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

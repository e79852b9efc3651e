//! Runs `quorum …` standalone, for trying the command before the main binary dispatches to it:
//! `cargo run -p quorumlab-quorum --example quorum -- explain etcd-2-2-1`.

use clap::Parser;

#[derive(Parser)]
#[command(name = "quorum")]
struct Cli {
    #[command(flatten)]
    args: quorumlab_quorum::cli::Args,
}

fn main() {
    let cli = Cli::parse();
    let code = quorumlab_quorum::cli::run(cli.args, &mut std::io::stdout(), &mut std::io::stderr());
    std::process::exit(code);
}

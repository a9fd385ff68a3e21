//! The `stoa` command: `serve` runs the server, `token` mints an access token.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use stoa::auth::TokenKeys;
use stoa::config::{ServeArgs, Settings};
use stoa_proto::{Grants, RoomName};

#[derive(Parser)]
#[command(
    name = "stoa",
    version,
    about = "Self-hosted video conferencing: web app, signaling and SFU in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Run the server (web app, API, signaling, WHIP/WHEP, SFU)
    Serve(ServeArgs),
    /// Print an access token for a room (the token alone is the last line of output)
    Token(TokenArgs),
}

#[derive(clap::Args)]
struct TokenArgs {
    /// Config file to read the data dir and signing secret from
    #[arg(long, env = "STOA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory holding the signing key [default: ./stoa-data]
    #[arg(long, env = "STOA_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Signing secret, if the server uses one instead of the key file
    #[arg(
        long,
        env = "STOA_JWT_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    jwt_secret: Option<String>,
    /// Room the token is valid for
    #[arg(long)]
    room: String,
    /// Identity of the participant (unique within the room)
    #[arg(long)]
    identity: String,
    /// Display name [default: the identity]
    #[arg(long)]
    name: Option<String>,
    /// Lifetime, e.g. 30m, 1h, 7d
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// Do not allow publishing audio/video
    #[arg(long)]
    no_publish: bool,
    /// Do not allow receiving audio/video
    #[arg(long)]
    no_subscribe: bool,
    /// Allow moderating the room and reading its statistics
    #[arg(long)]
    admin: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Commands::Serve(args) => serve(args),
        Commands::Token(args) => token(args),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let settings = match Settings::resolve(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&settings.log);
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
    runtime.block_on(async {
        let running = match stoa::start(&settings).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(
            http = %running.http_addr, media_udp = %running.media_udp_addr, media_tcp = %running.media_tcp_addr,
            data_dir = %settings.data_dir.display(), "Stoa is ready"
        );
        println!("Stoa is ready: open http://{}/ in a browser", running.http_addr);
        match running.serve.await {
            Ok(Ok(())) => ExitCode::SUCCESS,
            Ok(Err(e)) => {
                tracing::error!("HTTP server failed: {e}");
                ExitCode::FAILURE
            }
            Err(e) => {
                tracing::error!("HTTP server task failed: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

fn token(args: TokenArgs) -> ExitCode {
    let room = match RoomName::new(args.room) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let settings = match Settings::resolve(ServeArgs {
        config: args.config,
        data_dir: args.data_dir,
        jwt_secret: args.jwt_secret,
        ..Default::default()
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let keys = match TokenKeys::load(&settings.data_dir, settings.jwt_secret.as_deref()) {
        Ok(k) => k,
        Err(e) => {
            eprintln!(
                "error: cannot load the signing key from {}: {e}",
                settings.data_dir.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let grants = Grants {
        publish: !args.no_publish,
        subscribe: !args.no_subscribe,
        publish_data: !args.no_publish,
        room_admin: args.admin,
    };
    let name = args.name.unwrap_or_else(|| args.identity.clone());
    println!(
        "{}",
        keys.mint(&room, &args.identity, &name, grants, args.ttl)
    );
    ExitCode::SUCCESS
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|e| {
        eprintln!("warning: invalid log filter {filter:?} ({e}); using info");
        tracing_subscriber::EnvFilter::new("info")
    });
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

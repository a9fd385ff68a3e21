//! The `stoa` command: `serve` runs the server, `token` mints an access token, `load-test`
//! simulates participants against a server.

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
    Serve(Box<ServeArgs>),
    /// Print an access token for a room (the token alone is the last line of output)
    Token(TokenArgs),
    /// Load-test a server with simulated WebRTC participants and report what they received
    #[command(long_about = LOAD_TEST_ABOUT)]
    LoadTest(LoadTestArgs),
}

const LOAD_TEST_ABOUT: &str = "\
Load-test a server with simulated WebRTC participants and report what they received.

Without --room, a new ad-hoc meeting is created (POST {url}/api/v1/meetings). Each
participant gets a guest token from POST {url}/api/v1/rooms/{room}/join, joins over the
WebSocket signaling at ws://host/ws and connects a real str0m peer (ICE, DTLS-SRTP, RTP over
UDP). Publishers send synthetic Opus (50 frames/s) and VP8 (30 frames/s, ~600 kbit/s);
subscribers publish nothing and receive every publisher. Joins start at --ramp-rate per
second; the run lasts --duration after the last join started. Progress goes to stderr, the
report (a table, or JSON with --json) to stdout.

Latency is one-way: publishers stamp their wall-clock send time into each frame and
receivers subtract it from their own wall clock. Within one load-test process sender and
receiver share this machine's clock, so that is exact against a remote server too; but when
load-test processes on several machines share a room, each also measures the others'
publishers, and those machines' clocks must be synchronised (NTP/PTP) or the latencies are off
by the clock difference. Packet loss counts RTP packets missing from the sequence-number span
of the frames delivered on each received stream.

Exits with status 1 if any participant hit an error or a track was not received.";

#[derive(clap::Args)]
struct LoadTestArgs {
    /// The server's base URL
    #[arg(long, default_value = "http://127.0.0.1:8800")]
    url: String,
    /// Room to join: a meeting's or ad-hoc room's name, or any room with --token
    /// [default: a new ad-hoc meeting]
    #[arg(long)]
    room: Option<String>,
    /// Participants that publish audio and video (or audio only)
    #[arg(long, default_value_t = 2)]
    publishers: usize,
    /// Participants that publish nothing and receive every publisher
    #[arg(long, default_value_t = 10)]
    subscribers: usize,
    /// How long to run after the last participant started joining, e.g. 30s, 2m
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Publishers send audio only
    #[arg(long)]
    audio_only: bool,
    /// Print the report as one JSON object
    #[arg(long)]
    json: bool,
    /// Joins started per second
    #[arg(long, default_value_t = 10.0)]
    ramp_rate: f64,
    /// Count a participant as failed if ICE+DTLS is not connected this long after its join
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    connect_timeout: Duration,
    /// Publish over WHIP and subscribe over WHEP instead of Stoa's signaling
    #[arg(long)]
    whip: bool,
    /// Bearer token for every participant [default: a guest token per participant from
    /// Stoa's join endpoint]
    #[arg(long, env = "STOA_LOAD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// WHIP endpoint, for servers other than Stoa [default: URL/whip/ROOM]
    #[arg(long, value_name = "URL", requires = "whip")]
    whip_url: Option<String>,
    /// WHEP endpoint, for servers other than Stoa [default: URL/whep/ROOM]
    #[arg(long, value_name = "URL", requires = "whip")]
    whep_url: Option<String>,
    /// Publishers send three simulcast video layers (320x180, 640x360, 1280x720)
    #[arg(long)]
    simulcast: bool,
    /// Receivers lay out video like a screen would and report the sizes, so the server
    /// forwards fitting layers: speaker (one large, five thumbnails), 3x3 or 4x4; videos
    /// beyond the layout are hidden [default: every video shown, no sizes reported]
    #[arg(long, value_name = "LAYOUT", value_parser = clap::value_parser!(stoa_loadtest::VideoLayout), conflicts_with = "whip")]
    video_layout: Option<stoa_loadtest::VideoLayout>,
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
        Commands::Serve(args) => serve(*args),
        Commands::Token(args) => token(args),
        Commands::LoadTest(args) => load_test(args),
    }
}

fn load_test(args: LoadTestArgs) -> ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
    let room = match args.room {
        Some(room) => room,
        None => match runtime.block_on(stoa_loadtest::new_meeting(&args.url)) {
            Ok(room) => {
                eprintln!("room: {room}");
                room
            }
            Err(e) => {
                eprintln!("error: cannot create a meeting to load: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let mut cfg = stoa_loadtest::Config::new(args.url, room);
    cfg.publishers = args.publishers;
    cfg.subscribers = args.subscribers;
    cfg.duration = args.duration;
    cfg.audio_only = args.audio_only;
    cfg.ramp_rate = args.ramp_rate;
    cfg.connect_timeout = args.connect_timeout;
    cfg.progress = true;
    if args.whip {
        cfg.transport = stoa_loadtest::Transport::WhipWhep;
    }
    cfg.token = args.token;
    cfg.whip_url = args.whip_url;
    cfg.whep_url = args.whep_url;
    cfg.simulcast = args.simulcast;
    cfg.video_layout = args.video_layout;
    let report = match runtime.block_on(stoa_loadtest::run(&cfg)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(j) => println!("{j}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", stoa_loadtest::stats::render_table(&report));
    }
    if report.errors > 0 || report.tracks_received < report.tracks_expected {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
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
    raise_descriptor_limit();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
    runtime.block_on(async {
        let running = match stoa::start(&settings).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let url = stoa::open_url(running.http_addr);
        tracing::info!(
            http = %running.http_addr, media_udp = %running.media_udp_addr, media_tcp = %running.media_tcp_addr, media_workers = settings.media_workers,
            data_dir = %settings.data_dir.display(), "Stoa is ready: open {url} in a browser"
        );
        println!("Stoa is ready: open {url} in a browser");
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

/// Lifts the soft limit on open descriptors to the hard one: every participant, connection and
/// relay holds sockets, and the usual soft limit of 1,024 is reached long before memory or CPU.
fn raise_descriptor_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        let before = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        if limit.rlim_cur > before && libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
            tracing::debug!(
                from = before,
                to = limit.rlim_cur,
                "raised the open-file limit"
            );
        } else if limit.rlim_cur < 4096 {
            tracing::warn!(
                limit = before,
                "the open-file limit is low; raise it (ulimit -n) for more than a few hundred participants"
            );
        }
    }
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

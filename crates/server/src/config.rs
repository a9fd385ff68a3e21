//! Settings of `stoa serve`: command-line flags, then `STOA_*` environment variables, then an
//! optional TOML file, then defaults. Clap resolves flags and environment; the file fills
//! whatever neither set.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
pub use stoa_media::TurnSettings;

use clap::Args;
use serde::Deserialize;
use stoa_sfu::RoomLimits;

/// Flags of `stoa serve`; each also reads a `STOA_*` environment variable.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML config file; its keys are the flag names with `_` for `-` (see docs/operations.md)
    #[arg(long, env = "STOA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Directory for the token signing key and other state [default: ./stoa-data]
    #[arg(long, env = "STOA_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Address of the web app, API, WebSocket signaling, WHIP and WHEP [default: 127.0.0.1:8800]
    #[arg(long, env = "STOA_HTTP_ADDR", value_name = "HOST:PORT")]
    pub http_addr: Option<SocketAddr>,

    /// UDP address shared by all media sessions [default: 0.0.0.0:8801]
    #[arg(long, env = "STOA_MEDIA_UDP_ADDR", value_name = "HOST:PORT")]
    pub media_udp_addr: Option<SocketAddr>,

    /// TCP address for ICE-TCP, for networks that block UDP [default: 0.0.0.0:8802]
    #[arg(long, env = "STOA_MEDIA_TCP_ADDR", value_name = "HOST:PORT")]
    pub media_tcp_addr: Option<SocketAddr>,

    /// Address to advertise to clients in addition to the local interfaces, e.g. the public
    /// IP of a server behind a 1:1 NAT (cloud instances)
    #[arg(long, env = "STOA_PUBLIC_IP", value_name = "IP")]
    pub public_ip: Option<IpAddr>,

    /// Secret for signing access tokens (HS256); by default a key generated into the data dir
    #[arg(
        long,
        env = "STOA_JWT_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,

    /// Database: `sqlite://PATH` or `postgres://USER@HOST/DB`
    /// [default: sqlite://<data-dir>/stoa.db]
    #[arg(
        long,
        env = "STOA_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Log filter in tracing's EnvFilter syntax, e.g. `info,stoa_sfu=debug` [default: info]
    #[arg(long, env = "STOA_LOG", value_name = "FILTER")]
    pub log: Option<String>,

    /// Most video bitrate a subscriber receives of each video track, bits/s; every room
    /// starts with it and its hosts may change it (API) [default: unlimited]
    #[arg(long, env = "STOA_MAX_VIDEO_BITRATE", value_name = "BPS")]
    pub max_video_bitrate: Option<u64>,

    /// Video bitrate floor per track, bits/s: when bandwidth is short, each track is first
    /// given the lowest layer reaching it before others are raised [default: none]
    #[arg(long, env = "STOA_MIN_VIDEO_BITRATE", value_name = "BPS")]
    pub min_video_bitrate: Option<u64>,

    /// Media worker threads: rooms are spread over them, each room on one; all share the
    /// media ports [default: one per CPU core]
    #[arg(long, env = "STOA_MEDIA_WORKERS", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub media_workers: Option<u16>,

    /// Origin whose web pages may use WHIP/WHEP, e.g. https://player.example.org, or `*`
    /// for any (repeatable; comma-separated in the env) [default: none]
    #[arg(
        long,
        env = "STOA_CORS_ORIGIN",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub cors_origin: Vec<String>,

    #[command(flatten)]
    pub turn: TurnArgs,

    #[command(flatten)]
    pub security: SecurityArgs,
}

/// Operator credentials and the bounds on what strangers can hold open.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Security and limits")]
pub struct SecurityArgs {
    /// Server-wide admin token: `Authorization: Bearer <token>` is a room admin of every room
    /// (statistics, limits, counters) and may read /metrics [default: none]
    #[arg(
        long,
        env = "STOA_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,

    /// Require `Authorization: Bearer <token>` (this one or the admin token) on /metrics
    /// [default: /metrics is open]
    #[arg(
        long,
        env = "STOA_METRICS_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub metrics_token: Option<String>,

    /// Open HTTP connections (WebSockets included) from one client address [default: 256]
    #[arg(long, env = "STOA_MAX_CONNECTIONS_PER_IP", value_name = "N")]
    pub max_connections_per_ip: Option<usize>,

    /// Open HTTP connections in all [default: 8192]
    #[arg(long, env = "STOA_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,

    /// Accounts that may be created from one client address per hour [default: 20]
    #[arg(long, env = "STOA_SIGNUPS_PER_HOUR", value_name = "N")]
    pub signups_per_hour: Option<usize>,
}

/// STUN/TURN settings of `stoa serve`.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "STUN/TURN server")]
pub struct TurnArgs {
    /// STUN/TURN listener, UDP and TCP [default: 0.0.0.0:3478]
    #[arg(long, env = "STOA_TURN_ADDR", value_name = "HOST:PORT")]
    pub turn_addr: Option<SocketAddr>,

    /// Second address (another IP, and the port is also used +1 alongside) for RFC 5780 NAT
    /// behaviour discovery, e.g. 203.0.113.11:3479
    #[arg(long, env = "STOA_TURN_ALT_ADDR", value_name = "HOST:PORT")]
    pub turn_alt_addr: Option<SocketAddr>,

    /// TURN over TLS listener [default: 0.0.0.0:5349]; uses --turn-tls-cert/--turn-tls-key,
    /// or a self-signed certificate generated into the data dir
    #[arg(long, env = "STOA_TURN_TLS_ADDR", value_name = "HOST:PORT")]
    pub turn_tls_addr: Option<SocketAddr>,

    /// PEM certificate chain for TURN over TLS
    #[arg(long, env = "STOA_TURN_TLS_CERT", value_name = "FILE")]
    pub turn_tls_cert: Option<PathBuf>,

    /// PEM private key for TURN over TLS
    #[arg(long, env = "STOA_TURN_TLS_KEY", value_name = "FILE")]
    pub turn_tls_key: Option<PathBuf>,

    /// Realm of the long-term credentials [default: stoa]
    #[arg(long, env = "STOA_TURN_REALM", value_name = "REALM")]
    pub turn_realm: Option<String>,

    /// Shared secret of the time-limited credential scheme (coturn's use-auth-secret); by
    /// default a secret generated into the data dir. Participants get credentials from it.
    #[arg(
        long,
        env = "STOA_TURN_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub turn_secret: Option<String>,

    /// A long-term credential user, NAME:PASSWORD (repeatable; comma-separated in the env)
    #[arg(
        long,
        env = "STOA_TURN_USER",
        value_name = "NAME:PASSWORD",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub turn_user: Vec<String>,

    /// Allow relaying to a range denied by default, e.g. 127.0.0.0/8 (repeatable)
    #[arg(
        long,
        env = "STOA_TURN_ALLOW_PEER",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    pub turn_allow_peer: Vec<String>,

    /// Never relay to this range (repeatable)
    #[arg(
        long,
        env = "STOA_TURN_DENY_PEER",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    pub turn_deny_peer: Vec<String>,

    /// Address put in relayed candidates [default: --public-ip, else the TURN address, else
    /// the first non-loopback interface address]
    #[arg(long, env = "STOA_TURN_RELAY_IP", value_name = "IP")]
    pub turn_relay_ip: Option<IpAddr>,

    /// Host name or IP that clients should use for STUN/TURN [default: the host the client
    /// reached the web server at]
    #[arg(long, env = "STOA_TURN_HOST", value_name = "HOST")]
    pub turn_host: Option<String>,

    /// Hand out this external TURN server (e.g. turn:turn.example.org:3478) instead of the
    /// built-in one; it must use the same --turn-secret (repeatable)
    #[arg(long, env = "STOA_TURN_URL", value_name = "URL", value_delimiter = ',')]
    pub turn_url: Vec<String>,

    /// Most relay allocations one user may hold at once [default: 10]
    #[arg(long, env = "STOA_TURN_MAX_ALLOCATIONS", value_name = "N")]
    pub turn_max_allocations: Option<usize>,

    /// Cap on relayed bytes per second per allocation, both directions [default: none]
    #[arg(long, env = "STOA_TURN_MAX_BANDWIDTH", value_name = "BYTES_PER_SECOND")]
    pub turn_max_bandwidth: Option<u64>,

    /// Do not run the built-in STUN/TURN server
    #[arg(long, env = "STOA_NO_TURN")]
    pub no_turn: bool,
}

/// The same settings as they may appear in the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    http_addr: Option<SocketAddr>,
    media_udp_addr: Option<SocketAddr>,
    media_tcp_addr: Option<SocketAddr>,
    public_ip: Option<IpAddr>,
    jwt_secret: Option<String>,
    database_url: Option<String>,
    log: Option<String>,
    max_video_bitrate: Option<u64>,
    min_video_bitrate: Option<u64>,
    media_workers: Option<u16>,
    #[serde(default)]
    cors_origin: Vec<String>,
    turn_addr: Option<SocketAddr>,
    turn_alt_addr: Option<SocketAddr>,
    turn_tls_addr: Option<SocketAddr>,
    turn_tls_cert: Option<PathBuf>,
    turn_tls_key: Option<PathBuf>,
    turn_realm: Option<String>,
    turn_secret: Option<String>,
    #[serde(default)]
    turn_user: Vec<String>,
    #[serde(default)]
    turn_allow_peer: Vec<String>,
    #[serde(default)]
    turn_deny_peer: Vec<String>,
    turn_relay_ip: Option<IpAddr>,
    turn_host: Option<String>,
    #[serde(default)]
    turn_url: Vec<String>,
    turn_max_allocations: Option<usize>,
    turn_max_bandwidth: Option<u64>,
    #[serde(default)]
    no_turn: bool,
    admin_token: Option<String>,
    metrics_token: Option<String>,
    max_connections_per_ip: Option<usize>,
    max_connections: Option<usize>,
    signups_per_hour: Option<usize>,
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub http_addr: SocketAddr,
    pub media_udp_addr: SocketAddr,
    pub media_tcp_addr: SocketAddr,
    pub public_ip: Option<IpAddr>,
    pub jwt_secret: Option<String>,
    pub database_url: String,
    pub log: String,
    /// The video bitrate limits every room starts with.
    pub room_limits: RoomLimits,
    pub media_workers: usize,
    /// Origins whose pages may use WHIP/WHEP (`*`: any).
    pub cors_origins: Vec<String>,
    pub turn: TurnSettings,
    pub admin_token: Option<String>,
    pub metrics_token: Option<String>,
    pub connections: crate::listener::ConnectionLimits,
    pub signups_per_hour: usize,
}

impl Settings {
    pub fn resolve(args: ServeArgs) -> Result<Self, String> {
        let mut file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let turn = resolve_turn(args.turn, &mut file)?;
        let sec = args.security;
        let positive = |name: &str, v: Option<usize>, default: usize| match v {
            Some(0) => Err(format!("--{name} must be at least 1")),
            Some(n) => Ok(n),
            None => Ok(default),
        };
        let defaults = crate::listener::ConnectionLimits::default();
        let connections = crate::listener::ConnectionLimits {
            per_address: positive(
                "max-connections-per-ip",
                sec.max_connections_per_ip.or(file.max_connections_per_ip),
                defaults.per_address,
            )?,
            total: positive(
                "max-connections",
                sec.max_connections.or(file.max_connections),
                defaults.total,
            )?,
            ..defaults
        };
        let signups_per_hour = positive(
            "signups-per-hour",
            sec.signups_per_hour.or(file.signups_per_hour),
            crate::guard::SIGNUPS_PER_ADDRESS,
        )?;
        let admin_token = nonempty("admin-token", sec.admin_token.or(file.admin_token.take()))?;
        let metrics_token = nonempty(
            "metrics-token",
            sec.metrics_token.or(file.metrics_token.take()),
        )?;
        let cors_origins = cors_origins(list_or(
            args.cors_origin,
            std::mem::take(&mut file.cors_origin),
        ))?;
        let data_dir: PathBuf = args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| "stoa-data".into());
        let database_url = args
            .database_url
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("stoa.db").display()));
        let room_limits = video_limits(
            args.max_video_bitrate.or(file.max_video_bitrate),
            args.min_video_bitrate.or(file.min_video_bitrate),
        )?;
        let media_workers = match args.media_workers.or(file.media_workers) {
            Some(0) => return Err("media_workers must be at least 1".into()),
            Some(n) => n as usize,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        Ok(Self {
            data_dir,
            database_url,
            room_limits,
            media_workers,
            cors_origins,
            http_addr: args
                .http_addr
                .or(file.http_addr)
                .unwrap_or_else(|| ([127, 0, 0, 1], 8800).into()),
            media_udp_addr: args
                .media_udp_addr
                .or(file.media_udp_addr)
                .unwrap_or_else(|| ([0, 0, 0, 0], 8801).into()),
            media_tcp_addr: args
                .media_tcp_addr
                .or(file.media_tcp_addr)
                .unwrap_or_else(|| ([0, 0, 0, 0], 8802).into()),
            public_ip: args.public_ip.or(file.public_ip),
            jwt_secret: args.jwt_secret.or(file.jwt_secret),
            log: args.log.or(file.log).unwrap_or_else(|| "info".into()),
            turn,
            admin_token,
            metrics_token,
            connections,
            signups_per_hour,
        })
    }
}

/// The default room limits, checked as the API checks a room's.
fn video_limits(max: Option<u64>, min: Option<u64>) -> Result<RoomLimits, String> {
    let limits = RoomLimits {
        max_video_bitrate_bps: max,
        min_video_bitrate_bps: min,
    };
    crate::api::limits::check_room(&limits)
        .map_err(|(field, message)| format!("--{}: {message}", field.replace('_', "-")))?;
    Ok(limits)
}

/// An operator token must be long enough not to be guessed.
fn nonempty(name: &str, token: Option<String>) -> Result<Option<String>, String> {
    match token {
        Some(t) if t.len() < 16 => Err(format!("--{name} must be at least 16 characters")),
        other => Ok(other),
    }
}

/// CORS origins as browsers send them: `*`, or `scheme://host[:port]` without a path.
fn cors_origins(origins: Vec<String>) -> Result<Vec<String>, String> {
    for o in &origins {
        let valid = o == "*"
            || ["http://", "https://"].iter().any(|scheme| {
                o.strip_prefix(scheme)
                    .is_some_and(|host| !host.is_empty() && !host.contains('/'))
            });
        if !valid {
            return Err(format!(
                "--cors-origin {o:?} must be `*` or like https://host[:port], without a path"
            ));
        }
    }
    Ok(origins)
}

/// `a` unless empty, else `b`: list settings from flags/env replace the file's.
fn list_or(a: Vec<String>, b: Vec<String>) -> Vec<String> {
    if a.is_empty() {
        b
    } else {
        a
    }
}

fn resolve_turn(args: TurnArgs, file: &mut FileConfig) -> Result<TurnSettings, String> {
    let users = list_or(args.turn_user, std::mem::take(&mut file.turn_user))
        .into_iter()
        .map(|u| match u.split_once(':') {
            Some((name, password)) if !name.is_empty() && !password.is_empty() => {
                Ok((name.to_string(), password.to_string()))
            }
            _ => Err(format!("--turn-user {u:?} must be NAME:PASSWORD")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tls_cert = match (
        args.turn_tls_cert.or(file.turn_tls_cert.take()),
        args.turn_tls_key.or(file.turn_tls_key.take()),
    ) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err("--turn-tls-cert and --turn-tls-key must be given together".into()),
    };
    Ok(TurnSettings {
        enabled: !(args.no_turn || file.no_turn),
        addr: args
            .turn_addr
            .or(file.turn_addr)
            .unwrap_or_else(|| ([0, 0, 0, 0], 3478).into()),
        alt_addr: args.turn_alt_addr.or(file.turn_alt_addr),
        tls_addr: args
            .turn_tls_addr
            .or(file.turn_tls_addr)
            .unwrap_or_else(|| ([0, 0, 0, 0], 5349).into()),
        tls_cert,
        realm: args
            .turn_realm
            .or(file.turn_realm.take())
            .unwrap_or_else(|| "stoa".into()),
        secret: args.turn_secret.or(file.turn_secret.take()),
        users,
        allow_peers: list_or(
            args.turn_allow_peer,
            std::mem::take(&mut file.turn_allow_peer),
        ),
        deny_peers: list_or(
            args.turn_deny_peer,
            std::mem::take(&mut file.turn_deny_peer),
        ),
        relay_ip: args.turn_relay_ip.or(file.turn_relay_ip),
        host: args.turn_host.or(file.turn_host.take()),
        external_urls: list_or(args.turn_url, std::mem::take(&mut file.turn_url)),
        max_allocations: args
            .turn_max_allocations
            .or(file.turn_max_allocations)
            .unwrap_or(10),
        max_bandwidth: args.turn_max_bandwidth.or(file.turn_max_bandwidth),
    })
}

fn read_file(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("invalid config file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file_and_file_over_defaults() {
        let dir = std::env::temp_dir().join(format!("stoa-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stoa.toml");
        std::fs::write(
            &path,
            "http_addr = \"127.0.0.1:9000\"\ndata_dir = \"/tmp/from-file\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            data_dir: Some("/tmp/from-flag".into()),
            ..Default::default()
        };
        let s = Settings::resolve(args).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/tmp/from-flag"));
        assert_eq!(s.http_addr, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(s.media_udp_addr, "0.0.0.0:8801".parse().unwrap());

        std::fs::write(&path, "http_adr = \"127.0.0.1:9000\"\n").unwrap();
        let err = Settings::resolve(ServeArgs {
            config: Some(path.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.contains("unknown field"), "{err}");

        std::fs::write(
            &path,
            "max_video_bitrate = 800000\nmin_video_bitrate = 100000\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            min_video_bitrate: Some(200_000),
            ..Default::default()
        };
        let limits = Settings::resolve(args).unwrap().room_limits;
        assert_eq!(limits.max_video_bitrate_bps, Some(800_000));
        assert_eq!(limits.min_video_bitrate_bps, Some(200_000));
        let err = Settings::resolve(ServeArgs {
            config: Some(path.clone()),
            min_video_bitrate: Some(900_000),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.starts_with("--min-video-bitrate"), "{err}");

        std::fs::write(&path, "cors_origin = [\"https://a.example\"]\n").unwrap();
        let cors = |cors_origin: Vec<String>| {
            Settings::resolve(ServeArgs {
                config: Some(path.clone()),
                cors_origin,
                ..Default::default()
            })
        };
        assert_eq!(cors(vec![]).unwrap().cors_origins, ["https://a.example"]);
        assert_eq!(cors(vec!["*".into()]).unwrap().cors_origins, ["*"]);
        assert!(cors(vec!["https://b.example/".into()]).is_err());
        assert!(cors(vec!["b.example".into()]).is_err());

        std::fs::write(&path, "media_workers = 3\n").unwrap();
        let from_file = |media_workers| {
            Settings::resolve(ServeArgs {
                config: Some(path.clone()),
                media_workers,
                ..Default::default()
            })
        };
        assert_eq!(from_file(None).unwrap().media_workers, 3);
        assert_eq!(from_file(Some(5)).unwrap().media_workers, 5);
        std::fs::write(&path, "media_workers = 0\n").unwrap();
        assert!(from_file(None).unwrap_err().contains("media_workers"));
        std::fs::write(&path, "").unwrap();
        assert!(
            from_file(None).unwrap().media_workers >= 1,
            "one per core by default"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}

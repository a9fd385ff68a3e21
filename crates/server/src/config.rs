//! Settings of `stoa serve`: command-line flags, then `STOA_*` environment variables, then an
//! optional TOML file, then defaults. Clap resolves flags and environment; the file fills
//! whatever neither set.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

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

    /// Log filter in tracing's EnvFilter syntax, e.g. `info,stoa_sfu=debug` [default: info]
    #[arg(long, env = "STOA_LOG", value_name = "FILTER")]
    pub log: Option<String>,
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
    log: Option<String>,
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
    pub log: String,
}

impl Settings {
    pub fn resolve(args: ServeArgs) -> Result<Self, String> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        Ok(Self {
            data_dir: args
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| "stoa-data".into()),
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
        })
    }
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
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

//! The ICE servers handed to each participant: Stoa's own STUN/TURN (or an external coturn
//! sharing the secret), with short-lived credentials in coturn's shared-secret scheme.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use stoa_proto::IceServer;
use utoipa::ToSchema;

use crate::config::TurnSettings;

/// How long handed-out TURN credentials stay valid.
const CREDENTIAL_TTL: Duration = Duration::from_secs(12 * 3600);
/// The network test runs for a minute at most: its credentials need not outlive that by much.
const NETTEST_CREDENTIAL_TTL: Duration = Duration::from_secs(10 * 60);

/// What the network test page is told to try (`GET /api/v1/nettest`).
#[derive(Debug, Serialize, ToSchema)]
pub struct NettestConfig {
    /// The host name or address clients reach the server at.
    pub host: String,
    /// The built-in STUN server, absent with an external TURN server.
    pub stun: Option<String>,
    /// The RFC 5780 alternate STUN address, when configured.
    pub stun_alt: Option<String>,
    /// TURN URLs by transport, absent when TURN is off.
    pub turn: Option<TurnUrls>,
    pub username: Option<String>,
    pub credential: Option<String>,
    pub media: MediaPorts,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TurnUrls {
    pub udp: Option<String>,
    pub tcp: Option<String>,
    pub tls: Option<String>,
}

/// The ports of the media server (ICE over UDP and over TCP).
#[derive(Debug, Serialize, ToSchema)]
pub struct MediaPorts {
    pub udp_port: u16,
    pub tcp_port: u16,
}

/// What clients are told about STUN/TURN.
#[derive(Clone)]
pub struct IceAdvert {
    secret: String,
    host: Option<String>,
    port: u16,
    /// The RFC 5780 alternate port, also answered on the primary IP.
    alt_port: Option<u16>,
    tls_port: Option<u16>,
    external: Vec<String>,
    enabled: bool,
    media_ports: (u16, u16),
}

impl IceAdvert {
    /// `port`/`tls_port`: where the built-in server actually listens (`tls_port` only when a
    /// trusted certificate is configured: browsers reject self-signed ones).
    pub fn new(settings: &TurnSettings, secret: String, ports: AdvertPorts) -> Self {
        Self {
            secret,
            host: settings.host.clone(),
            port: ports.turn,
            alt_port: ports.turn_alt,
            tls_port: ports.turn_tls,
            external: settings.external_urls.clone(),
            enabled: settings.enabled || !settings.external_urls.is_empty(),
            media_ports: (ports.media_udp, ports.media_tcp),
        }
    }

    /// The configuration of the pre-call network test page (`GET /api/v1/nettest`).
    pub fn nettest(&self, request_host: Option<&str>) -> NettestConfig {
        let host = self
            .host
            .as_deref()
            .or(request_host.map(host_only))
            .unwrap_or("");
        // Each visitor gets an identity of its own: one visitor's quota is not everyone's.
        let identity = format!("nettest-{:012x}", rand::random::<u64>() >> 16);
        let servers = self.servers_for(request_host, &identity, NETTEST_CREDENTIAL_TTL);
        let turn = servers.iter().find(|s| s.username.is_some());
        let url = |wanted: &dyn Fn(&str) -> bool| {
            turn.and_then(|t| t.urls.iter().find(|u| wanted(u)).cloned())
        };
        let builtin = self.enabled && self.external.is_empty();
        NettestConfig {
            host: host.to_string(),
            stun: builtin.then(|| format!("stun:{}:{}", bracket(host), self.port)),
            stun_alt: self
                .alt_port
                .filter(|_| builtin)
                .map(|p| format!("stun:{}:{p}", bracket(host))),
            turn: turn.map(|_| TurnUrls {
                udp: url(&|u| u.starts_with("turn:") && u.ends_with("transport=udp"))
                    .or_else(|| url(&|u| u.starts_with("turn:"))),
                tcp: url(&|u| u.starts_with("turn:") && u.ends_with("transport=tcp")),
                tls: url(&|u| u.starts_with("turns:")),
            }),
            username: turn.and_then(|t| t.username.clone()),
            credential: turn.and_then(|t| t.credential.clone()),
            media: MediaPorts {
                udp_port: self.media_ports.0,
                tcp_port: self.media_ports.1,
            },
        }
    }

    /// ICE servers for `identity`, reaching the server at `request_host` (the HTTP Host).
    pub fn servers(&self, request_host: Option<&str>, identity: &str) -> Vec<IceServer> {
        self.servers_for(request_host, identity, CREDENTIAL_TTL)
    }

    fn servers_for(
        &self,
        request_host: Option<&str>,
        identity: &str,
        ttl: Duration,
    ) -> Vec<IceServer> {
        if !self.enabled {
            return Vec::new();
        }
        let expiry = crate::clock::unix_secs() + ttl.as_secs();
        let (username, credential) = stoa_turn::rest_credentials(&self.secret, identity, expiry);
        if !self.external.is_empty() {
            return vec![IceServer {
                urls: self.external.clone(),
                username: Some(username),
                credential: Some(credential),
            }];
        }
        let Some(host) = self
            .host
            .as_deref()
            .or(request_host.map(host_only))
            .filter(|h| !h.is_empty())
        else {
            return Vec::new();
        };
        let host = bracket(host);
        let mut turn = vec![
            format!("turn:{host}:{}?transport=udp", self.port),
            format!("turn:{host}:{}?transport=tcp", self.port),
        ];
        if let Some(tls) = self.tls_port {
            turn.push(format!("turns:{host}:{tls}?transport=tcp"));
        }
        vec![
            IceServer {
                urls: vec![format!("stun:{host}:{}", self.port)],
                username: None,
                credential: None,
            },
            IceServer {
                urls: turn,
                username: Some(username),
                credential: Some(credential),
            },
        ]
    }

    /// RFC 9725 `Link` header values for WHIP/WHEP responses.
    pub fn link_headers(&self, request_host: Option<&str>, identity: &str) -> Vec<String> {
        let mut out = Vec::new();
        for server in self.servers(request_host, identity) {
            for url in &server.urls {
                let mut link = format!("<{url}>; rel=\"ice-server\"");
                if let (Some(u), Some(c)) = (&server.username, &server.credential) {
                    link.push_str(&format!(
                        "; username=\"{u}\"; credential=\"{c}\"; credential-type=\"password\""
                    ));
                }
                out.push(link);
            }
        }
        out
    }
}

/// Where the built-in servers listen, as advertised.
pub struct AdvertPorts {
    pub turn: u16,
    pub turn_alt: Option<u16>,
    pub turn_tls: Option<u16>,
    pub media_udp: u16,
    pub media_tcp: u16,
}

/// An IPv6 literal in URL form.
fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// The host part of a `Host` header value (`example.org:8800` → `example.org`, `[::1]:80` → `::1`).
fn host_only(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}

/// The configured TURN secret, or one kept in `<data-dir>/turn.secret` (created if missing).
pub fn load_secret(data_dir: &Path, configured: Option<&str>) -> std::io::Result<String> {
    if let Some(s) = configured {
        return Ok(s.to_string());
    }
    let path = data_dir.join("turn.secret");
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(s.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir)?;
            let secret = hex::encode(rand::random::<[u8; 24]>());
            crate::auth::write_private(&path, secret.as_bytes())?;
            Ok(secret)
        }
        Err(e) => Err(e),
    }
}

/// A self-signed certificate for TURN over TLS, generated once into the data dir (used when
/// none is configured; browsers do not trust it, tools may).
pub fn self_signed_turn_cert(
    data_dir: &std::path::Path,
) -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    let cert = data_dir.join("turn-tls.crt");
    let key = data_dir.join("turn-tls.key");
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let generated =
        rcgen::generate_simple_self_signed(vec!["stoa".to_string(), "localhost".to_string()])
            .map_err(|e| format!("cannot generate a TLS certificate: {e}"))?;
    std::fs::create_dir_all(data_dir).map_err(|e| e.to_string())?;
    std::fs::write(&cert, generated.cert.pem()).map_err(|e| e.to_string())?;
    crate::auth::write_private(&key, generated.signing_key.serialize_pem().as_bytes())
        .map_err(|e| e.to_string())?;
    Ok((cert, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_forms() {
        assert_eq!(host_only("example.org:8800"), "example.org");
        assert_eq!(host_only("example.org"), "example.org");
        assert_eq!(host_only("[::1]:8800"), "::1");
        assert_eq!(host_only("127.0.0.1:1"), "127.0.0.1");
    }
}

//! Before binding anything: which of the configured ports are already taken, all reported in
//! one message that names the setting to change for each, instead of one port per attempt.

use std::net::{SocketAddr, TcpListener, UdpSocket};

use crate::config::Settings;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Proto {
    Tcp,
    Udp,
}

/// One listening address: what it is for and the flag that moves it.
struct Port {
    addr: SocketAddr,
    proto: Proto,
    what: &'static str,
    flag: &'static str,
}

fn wanted(settings: &Settings) -> Vec<Port> {
    let port = |addr, proto, what, flag| Port {
        addr,
        proto,
        what,
        flag,
    };
    let mut ports = vec![
        port(
            settings.http_addr,
            Proto::Tcp,
            "HTTP (the web app)",
            "--http-addr",
        ),
        port(
            settings.media_udp_addr,
            Proto::Udp,
            "media",
            "--media-udp-addr",
        ),
        port(
            settings.media_tcp_addr,
            Proto::Tcp,
            "media over TCP",
            "--media-tcp-addr",
        ),
    ];
    let t = &settings.turn;
    if t.enabled {
        ports.push(port(t.addr, Proto::Udp, "STUN/TURN", "--turn-addr"));
        ports.push(port(t.addr, Proto::Tcp, "TURN over TCP", "--turn-addr"));
        ports.push(port(
            t.tls_addr,
            Proto::Tcp,
            "TURN over TLS",
            "--turn-tls-addr",
        ));
        if let Some(alt) = t.alt_addr {
            // The RFC 5780 sockets: both ports on both addresses (stoa_turn's discovery_sockets).
            for addr in [
                SocketAddr::new(t.addr.ip(), alt.port()),
                SocketAddr::new(alt.ip(), t.addr.port()),
                alt,
            ] {
                ports.push(port(
                    addr,
                    Proto::Udp,
                    "STUN for NAT discovery",
                    "--turn-alt-addr",
                ));
            }
        }
    }
    ports
}

fn free(p: &Port) -> bool {
    match p.proto {
        Proto::Tcp => TcpListener::bind(p.addr).is_ok(),
        Proto::Udp => UdpSocket::bind(p.addr).is_ok(),
    }
}

/// `Err` with one message listing every configured address that cannot be bound (port 0,
/// "any free port", never conflicts).
pub fn check_free(settings: &Settings) -> Result<(), String> {
    let mut taken: Vec<String> = Vec::new();
    for p in wanted(settings) {
        if p.addr.port() == 0 || free(&p) {
            continue;
        }
        let proto = if p.proto == Proto::Tcp { "TCP" } else { "UDP" };
        let hint = if p.flag.starts_with("--turn") {
            format!(
                "change it with {}, or run without the built-in STUN/TURN server with --no-turn",
                p.flag
            )
        } else {
            format!("change it with {}", p.flag)
        };
        let line = format!("  {} {proto} {}: {hint}", p.what, p.addr);
        if !taken.contains(&line) {
            taken.push(line);
        }
    }
    if taken.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} already in use (is another Stoa running?); each flag also has a STOA_… environment variable and a config-file key:\n{}",
        if taken.len() == 1 { "an address is" } else { "addresses are" },
        taken.join("\n")
    ))
}

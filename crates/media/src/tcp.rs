//! ICE-TCP (RFC 6544, passive): each connection carries RFC 4571 framed STUN, DTLS and RTP of
//! one participant. The connection's first STUN check names the participant's ufrag, which
//! picks the worker that gets the connection's frames and writes its replies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use stoa_sfu::demux::stun_local_ufrag;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::{Command, MediaHandle};
use crate::occupancy::Occupancy;

/// Largest RFC 4571 frame accepted (the 16-bit length field's maximum).
const MAX_FRAME: usize = u16::MAX as usize;
/// A new connection must send its first frame (a STUN check) this soon.
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// A connected client sends ICE consent checks every few seconds (RFC 7675): silence this
/// long means it is gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Open ICE-TCP connections per client address, and in all.
const PER_ADDRESS: usize = 64;
const TOTAL: usize = 4096;

/// Accepts ICE-TCP connections for as long as the listener lives.
pub(super) async fn accept(listener: TcpListener, media: MediaHandle) {
    let occupancy = Arc::new(Occupancy::default());
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Some(slot) = occupancy.enter(peer.ip(), PER_ADDRESS, TOTAL) else {
                    tracing::debug!(%peer, "ICE-TCP connection refused: too many open");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let media = media.clone();
                tokio::spawn(async move {
                    connection(stream, peer, media).await;
                    drop(slot);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "ICE-TCP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(stream: TcpStream, peer: SocketAddr, media: MediaHandle) {
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(256);
    let write_task = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            let Ok(len) = u16::try_from(frame.len()) else {
                continue;
            };
            if writer.write_all(&len.to_be_bytes()).await.is_err()
                || writer.write_all(&frame).await.is_err()
            {
                break;
            }
        }
    });
    let mut writer = Some(tx);
    let mut worker = 0;
    let mut frame = vec![0u8; MAX_FRAME];
    loop {
        let wait = if writer.is_some() {
            FIRST_FRAME_TIMEOUT
        } else {
            IDLE_TIMEOUT
        };
        let mut len = [0u8; 2];
        if !matches!(timeout(wait, reader.read_exact(&mut len)).await, Ok(Ok(_))) {
            break;
        }
        let len = u16::from_be_bytes(len) as usize;
        if !matches!(
            timeout(wait, reader.read_exact(&mut frame[..len])).await,
            Ok(Ok(_))
        ) {
            break;
        }
        let data = frame[..len].to_vec();
        if let Some(writer) = writer.take() {
            worker = stun_local_ufrag(&data)
                .and_then(|u| media.directory.worker_of(u))
                .unwrap_or(0);
            media.send_to(worker, Command::TcpOpen { peer, writer });
        }
        media.send_to(worker, Command::TcpFrame { peer, local, data });
    }
    media.send_to(worker, Command::TcpClosed { peer });
    write_task.abort();
}

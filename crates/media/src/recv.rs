//! A UDP socket a media worker reads: `recvmmsg` batches (with GRO and the destination address,
//! via quinn-udp) and readiness from the worker's event loop for reading only. Sending goes
//! through another handle of the media port, so a datagram sent by one worker never wakes
//! another that waits on the same socket for input.

use std::io::IoSliceMut;
use std::net::UdpSocket;
use std::task::Context;

use futures_util::FutureExt;
use quinn_udp::{RecvMeta, UdpSocketState};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Room for one GRO-coalesced run of datagrams.
pub const RECV_SLOT: usize = 65536;
/// Slots filled by one `recvmmsg`.
pub const RECV_BATCH: usize = 32;

pub struct RecvSocket {
    fd: AsyncFd<UdpSocket>,
    state: UdpSocketState,
}

impl RecvSocket {
    /// Registers a non-blocking socket for read readiness with the current runtime.
    pub fn new(socket: UdpSocket) -> std::io::Result<Self> {
        let state = UdpSocketState::new((&socket).into())?;
        let fd = AsyncFd::with_interest(socket, Interest::READABLE)?;
        Ok(Self { fd, state })
    }

    pub async fn readable(&self) -> std::io::Result<()> {
        self.fd.readable().await.map(|_| ())
    }

    pub fn poll_readable(&self, cx: &mut Context<'_>) -> bool {
        self.fd.poll_read_ready(cx).is_ready()
    }

    /// One `recvmmsg` into `buf`'s [`RECV_SLOT`]-sized slots (up to [`RECV_BATCH`] of them);
    /// `None` once the socket has nothing more (its readiness is then cleared).
    pub fn recv(&self, buf: &mut [u8], meta: &mut [RecvMeta]) -> Option<usize> {
        let mut guard = self.fd.readable().now_or_never()?.ok()?;
        let mut slots = buf.chunks_mut(RECV_SLOT);
        let mut slices: [IoSliceMut; RECV_BATCH] =
            std::array::from_fn(|_| IoSliceMut::new(slots.next().unwrap_or_default()));
        match guard.try_io(|fd| self.state.recv(fd.get_ref().into(), &mut slices, meta)) {
            Ok(Ok(n)) => Some(n),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "UDP receive error");
                None
            }
            Err(_would_block) => None,
        }
    }
}

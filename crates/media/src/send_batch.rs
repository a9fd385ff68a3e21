//! Outgoing UDP datagrams gathered during one turn of the media loop and handed to the kernel
//! together: one `sendmmsg` call for up to [`MAX_BATCH`] datagrams to any mix of destinations,
//! instead of one `sendmsg` each. The source address of each datagram is kept (`IP_PKTINFO`)
//! when the socket is bound to a wildcard address on a host with several addresses.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

/// Datagrams per `sendmmsg` call (the kernel caps one call at `UIO_MAXIOV`, 1024).
pub const MAX_BATCH: usize = 64;

/// Room for one `IP_PKTINFO` or `IPV6_PKTINFO` control message.
const CMSG_SPACE: usize = 64;

/// What became of the datagrams of one [`SendBatch::send`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sent {
    pub sent: usize,
    /// Datagrams the kernel refused (full buffer, unreachable destination, wrong family).
    pub failed: usize,
}

struct Queued {
    source: Option<IpAddr>,
    destination: SocketAddr,
    contents: Vec<u8>,
}

/// A queue of datagrams for one UDP socket, sent with [`SendBatch::send`].
pub struct SendBatch {
    queued: Vec<Queued>,
    /// Whether datagrams carry their source address: only a wildcard-bound socket needs it.
    with_source: bool,
    /// The socket is IPv6: IPv4 destinations are written as IPv4-mapped addresses.
    ipv6_socket: bool,
}

impl SendBatch {
    /// A batch for a socket bound to `local`.
    pub fn new(local: SocketAddr) -> Self {
        Self {
            queued: Vec::with_capacity(MAX_BATCH),
            with_source: local.ip().is_unspecified(),
            ipv6_socket: local.is_ipv6(),
        }
    }

    /// Queues a datagram; `source` is the local address it must leave from.
    pub fn push(&mut self, source: IpAddr, destination: SocketAddr, contents: Vec<u8>) {
        self.queued.push(Queued {
            source: (self.with_source && !source.is_unspecified()).then_some(source),
            destination,
            contents,
        });
    }

    pub fn is_full(&self) -> bool {
        self.queued.len() >= MAX_BATCH
    }

    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Sends everything queued and empties the queue. A datagram the kernel refuses is
    /// counted and skipped; a full socket buffer drops the rest of the batch (media is
    /// real-time: a datagram that cannot leave now is better lost than late).
    pub fn send(&mut self, socket: &impl AsRawFd) -> Sent {
        let mut result = Sent::default();
        let mut start = 0;
        while start < self.queued.len() {
            match self.send_from(socket.as_raw_fd(), start) {
                Ok(n) => {
                    result.sent += n;
                    start += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    result.failed += self.queued.len() - start;
                    break;
                }
                Err(e) => {
                    tracing::trace!(error = %e, destination = %self.queued[start].destination, "UDP send failed");
                    result.failed += 1;
                    start += 1;
                }
            }
        }
        self.queued.clear();
        result
    }

    /// One `sendmmsg` call for the datagrams from `start` on; how many the kernel took.
    fn send_from(&self, fd: std::os::fd::RawFd, start: usize) -> io::Result<usize> {
        let batch = &self.queued[start..];
        let mut addrs: Vec<socket2::SockAddr> = Vec::with_capacity(batch.len());
        let mut iovecs: Vec<libc::iovec> = Vec::with_capacity(batch.len());
        let mut controls = vec![Control([0; CMSG_SPACE]); batch.len()];
        for q in batch {
            addrs.push(socket2::SockAddr::from(
                self.destination_for_socket(q.destination),
            ));
            iovecs.push(libc::iovec {
                iov_base: q.contents.as_ptr() as *mut libc::c_void,
                iov_len: q.contents.len(),
            });
        }
        let mut headers: Vec<libc::mmsghdr> = Vec::with_capacity(batch.len());
        for (i, q) in batch.iter().enumerate() {
            // SAFETY: an all-zero msghdr is a valid "no name, no data, no control" header.
            let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
            hdr.msg_name = addrs[i].as_ptr() as *mut libc::c_void;
            hdr.msg_namelen = addrs[i].len();
            hdr.msg_iov = &mut iovecs[i];
            hdr.msg_iovlen = 1;
            if let Some(source) = q.source {
                write_source(&mut hdr, &mut controls[i], source, self.ipv6_socket);
            }
            headers.push(libc::mmsghdr {
                msg_hdr: hdr,
                msg_len: 0,
            });
        }
        // SAFETY: every header points at an address, an iovec and a control buffer that live
        // until this call returns, with their true lengths; the count matches `headers`.
        let n = unsafe {
            libc::sendmmsg(
                fd,
                headers.as_mut_ptr(),
                headers.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    fn destination_for_socket(&self, destination: SocketAddr) -> SocketAddr {
        match destination {
            SocketAddr::V4(v4) if self.ipv6_socket => {
                SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
            }
            other => other,
        }
    }
}

/// A control-message buffer aligned as `cmsghdr` requires.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Control([u8; CMSG_SPACE]);

/// Puts the source address in `hdr`'s control message (`IP_PKTINFO` / `IPV6_PKTINFO`).
fn write_source(hdr: &mut libc::msghdr, control: &mut Control, source: IpAddr, ipv6_socket: bool) {
    let source = match source {
        IpAddr::V4(v4) if ipv6_socket => IpAddr::V6(v4.to_ipv6_mapped()),
        other => other,
    };
    hdr.msg_control = control.0.as_mut_ptr() as *mut libc::c_void;
    match source {
        IpAddr::V4(v4) => {
            let info = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.octets()),
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            put_cmsg(hdr, libc::IPPROTO_IP, libc::IP_PKTINFO, info);
        }
        IpAddr::V6(v6) => {
            let info = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: v6.octets(),
                },
                ipi6_ifindex: 0,
            };
            put_cmsg(hdr, libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, info);
        }
    }
}

fn put_cmsg<T: Copy>(hdr: &mut libc::msghdr, level: libc::c_int, kind: libc::c_int, value: T) {
    let size = std::mem::size_of::<T>() as libc::c_uint;
    // SAFETY: `msg_control` points at a `Control` buffer of CMSG_SPACE bytes, aligned for
    // cmsghdr, and CMSG_SPACE(size) of a pktinfo struct (at most 36 bytes) fits in it.
    unsafe {
        let space = libc::CMSG_SPACE(size) as usize;
        debug_assert!(space <= CMSG_SPACE);
        hdr.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(hdr);
        (*cmsg).cmsg_level = level;
        (*cmsg).cmsg_type = kind;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut T, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    fn receiver() -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s
    }

    fn receive(s: &UdpSocket) -> (Vec<u8>, SocketAddr) {
        let mut buf = [0u8; 2048];
        let (n, from) = s.recv_from(&mut buf).unwrap();
        (buf[..n].to_vec(), from)
    }

    #[test]
    fn one_call_reaches_several_destinations_in_order() {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (a, b) = (receiver(), receiver());
        let mut batch = SendBatch::new(sender.local_addr().unwrap());
        let here = sender.local_addr().unwrap().ip();
        for i in 0..10u8 {
            let to = if i % 2 == 0 { &a } else { &b };
            batch.push(here, to.local_addr().unwrap(), vec![i; 100 + i as usize]);
        }
        assert_eq!(
            batch.send(&sender),
            Sent {
                sent: 10,
                failed: 0
            }
        );
        assert!(batch.is_empty());
        for i in (0..10u8).step_by(2) {
            let (data, from) = receive(&a);
            assert_eq!(data, vec![i; 100 + i as usize]);
            assert_eq!(from, sender.local_addr().unwrap());
            assert_eq!(receive(&b).0, vec![i + 1; 101 + i as usize]);
        }
    }

    #[test]
    fn a_wildcard_socket_sends_from_the_requested_address() {
        let sender = UdpSocket::bind("0.0.0.0:0").unwrap();
        let port = sender.local_addr().unwrap().port();
        let to = receiver();
        let mut batch = SendBatch::new(sender.local_addr().unwrap());
        batch.push(
            "127.0.0.1".parse().unwrap(),
            to.local_addr().unwrap(),
            b"hi".to_vec(),
        );
        assert_eq!(batch.send(&sender).sent, 1);
        let (data, from) = receive(&to);
        assert_eq!(
            (data.as_slice(), from),
            (&b"hi"[..], SocketAddr::from(([127, 0, 0, 1], port)))
        );
    }

    #[test]
    fn a_refused_datagram_is_counted_and_the_rest_still_leave() {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = receiver();
        let here = sender.local_addr().unwrap().ip();
        let mut batch = SendBatch::new(sender.local_addr().unwrap());
        batch.push(here, to.local_addr().unwrap(), b"one".to_vec());
        // An IPv6 destination cannot be reached from an IPv4 socket.
        batch.push(here, "[::1]:9".parse().unwrap(), b"lost".to_vec());
        batch.push(here, to.local_addr().unwrap(), b"two".to_vec());
        assert_eq!(batch.send(&sender), Sent { sent: 2, failed: 1 });
        assert_eq!(receive(&to).0, b"one");
        assert_eq!(receive(&to).0, b"two");
    }
}

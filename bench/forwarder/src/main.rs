//! The physical limit of forwarding on this machine, for comparison with Stoa's SFU: one
//! thread receives 1200-byte datagrams and sends each to K receivers (plain `recv`/`send_to`,
//! no crypto, no allocation), while a sender thread feeds it at a fixed rate and K receivers
//! count. Prints forwarded packets per CPU-second of the forwarding thread.
//!
//! Usage: stoa-bench-forwarder [fan-out K=20] [input packets per second=5000] [seconds=10]

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn thread_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own; RUSAGE_THREAD is valid on Linux.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

fn main() -> std::io::Result<()> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let fan_out = *args.first().unwrap_or(&20) as usize;
    let rate = *args.get(1).unwrap_or(&5000);
    let seconds = *args.get(2).unwrap_or(&10);

    let forwarder = UdpSocket::bind("127.0.0.1:0")?;
    let target = forwarder.local_addr()?;
    forwarder.set_read_timeout(Some(Duration::from_millis(100)))?;
    let running = Arc::new(AtomicBool::new(true));
    let received = Arc::new(AtomicU64::new(0));

    let mut receivers = Vec::new();
    let mut destinations = Vec::new();
    for _ in 0..fan_out {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        destinations.push(socket.local_addr()?);
        let (running, received) = (running.clone(), received.clone());
        receivers.push(std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while running.load(Ordering::Relaxed) {
                if socket.recv(&mut buf).is_ok() {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }

    let sender_running = running.clone();
    let sender = std::thread::spawn(move || -> std::io::Result<u64> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        let packet = [0x80u8; 1200];
        let start = Instant::now();
        let mut sent = 0u64;
        while sender_running.load(Ordering::Relaxed) {
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
            while sent < due {
                socket.send_to(&packet, target)?;
                sent += 1;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(sent)
    });

    let forward_running = running.clone();
    let forward = std::thread::spawn(move || {
        let cpu0 = thread_cpu_seconds();
        let mut buf = [0u8; 2048];
        let mut forwarded = 0u64;
        while forward_running.load(Ordering::Relaxed) {
            let Ok(n) = forwarder.recv(&mut buf) else {
                continue;
            };
            for d in &destinations {
                if forwarder.send_to(&buf[..n], d).is_ok() {
                    forwarded += 1;
                }
            }
        }
        (forwarded, thread_cpu_seconds() - cpu0)
    });

    std::thread::sleep(Duration::from_secs(seconds));
    running.store(false, Ordering::Relaxed);
    let sent = sender.join().expect("sender thread")?;
    let (forwarded, cpu) = forward.join().expect("forwarder thread");
    for r in receivers {
        let _ = r.join();
    }
    let got = received.load(Ordering::Relaxed);
    println!(
        "bare forwarder: fan-out {fan_out}, {sent} packets in, {forwarded} out, {got} received, \
         CPU {cpu:.2} s, {:.0} forwarded packets per CPU-second",
        forwarded as f64 / cpu.max(1e-9)
    );
    Ok(())
}

//! A flood of concurrent sign-ups (each an argon2 hash of about 19 MiB) keeps the server's
//! memory bounded: hashes run on a fixed pool and the overflow is answered 503 at once.
//! Alone in its test binary, so the process's memory is the server's and this client's.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_signup_flood_keeps_memory_bounded() {
    let mut settings = common::settings();
    // The per-address limit would refuse most of them before hashing: lift it to test the pool.
    settings.signups_per_hour = 10_000;
    let server = common::start_with(&settings).await;
    let url = format!("http://{}/api/v1/auth/signup", server.http_addr);
    let http = reqwest::Client::new();
    // Warm up: one hash, so the pool's threads and allocator arenas exist in the baseline.
    let res = http
        .post(&url)
        .json(&serde_json::json!({"email": "warm@example.org", "password": "correct horse", "display_name": "W"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let baseline = rss_kib();
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let flood: Vec<_> = (0..64)
        .map(|i| {
            let http = http.clone();
            let url = url.clone();
            tokio::spawn(async move {
                http.post(&url)
                    .json(&serde_json::json!({"email": format!("u{i}@example.org"), "password": "correct horse", "display_name": "U"}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut created = 0;
    let mut busy = 0;
    for f in flood {
        match f.await.unwrap() {
            201 => created += 1,
            503 => busy += 1,
            other => panic!("a sign-up got {other}"),
        }
    }
    sampler.abort();
    let peak = peak.load(Ordering::Relaxed).max(rss_kib());
    println!(
        "64 concurrent sign-ups: {created} created, {busy} answered 503; RSS {} MiB before, {} MiB at the peak",
        baseline / 1024,
        peak / 1024
    );
    assert!(created > 0, "the pool hashed nothing");
    assert_eq!(created + busy, 64);
    let grown_mib = peak.saturating_sub(baseline) / 1024;
    assert!(grown_mib < 128, "RSS grew by {grown_mib} MiB");
}

//! Long-term credentials (RFC 8489 §9.2): static users and coturn's TURN REST API secret
//! (`use-auth-secret`), the MESSAGE-INTEGRITY key `MD5(username ":" realm ":" password)`,
//! [`rest_credentials`] for handing out time-limited logins, and the nonces.
//!
//! Passwords are used as given (no SASLprep), like coturn.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::Mac;
use md5::{Digest, Md5};

use crate::stun::hmac_sha1;

/// The long-term credential key: MD5(username ":" realm ":" password).
pub type Key = [u8; 16];

/// The MESSAGE-INTEGRITY key of a long-term credential.
pub fn long_term_key(username: &[u8], realm: &[u8], password: &[u8]) -> Key {
    let mut md5 = Md5::new();
    for part in [username, b":", realm, b":", password] {
        md5.update(part);
    }
    md5.finalize().into()
}

/// Time-limited TURN REST API credentials for `user`, valid until `expiry_unix` (seconds):
/// username `<expiry>:<user>` and password base64(HMAC-SHA1(secret, username)).
pub fn rest_credentials(secret: &str, user: &str, expiry_unix: u64) -> (String, String) {
    let username = if user.is_empty() {
        expiry_unix.to_string()
    } else {
        format!("{expiry_unix}:{user}")
    };
    let mut password = [0u8; 28];
    let len = rest_password(secret.as_bytes(), username.as_bytes(), &mut password);
    let password = String::from_utf8_lossy(&password[..len]).into_owned();
    (username, password)
}

/// Writes base64(HMAC-SHA1(secret, username)) (28 characters) and returns its length.
fn rest_password(secret: &[u8], username: &[u8], out: &mut [u8; 28]) -> usize {
    let mut mac = hmac_sha1(secret);
    mac.update(username);
    let tag = mac.finalize().into_bytes();
    BASE64.encode_slice(tag, out).unwrap_or(0)
}

/// The expiry of a REST API username: `<unix-seconds>` or `<unix-seconds>:<user>`.
fn rest_expiry(username: &[u8]) -> Option<u64> {
    let digits = username.split(|&b| b == b':').next()?;
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The user a REST API username stands for (after the expiry), for quotas; the whole
/// username for static users and bare-expiry names.
pub(crate) fn quota_user(username: &[u8]) -> &[u8] {
    match username.iter().position(|&b| b == b':') {
        Some(i) if rest_expiry(username).is_some() => &username[i + 1..],
        _ => username,
    }
}

/// Who may authenticate: static users (their keys precomputed) and the REST API secret.
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    realm: Vec<u8>,
    users: BTreeMap<Vec<u8>, Key>,
    secret: Option<Vec<u8>>,
}

impl Credentials {
    pub fn new(realm: &str, users: &[(String, String)], secret: Option<&str>) -> Self {
        let realm = realm.as_bytes().to_vec();
        let users = users
            .iter()
            .map(|(name, password)| {
                let key = long_term_key(name.as_bytes(), &realm, password.as_bytes());
                (name.as_bytes().to_vec(), key)
            })
            .collect();
        Self {
            realm,
            users,
            secret: secret.map(|s| s.as_bytes().to_vec()),
        }
    }

    pub fn realm(&self) -> &[u8] {
        &self.realm
    }

    /// The key for `username` at `unix_secs`; `None` for unknown users and expired REST names.
    pub fn key(&self, username: &[u8], unix_secs: u64) -> Option<Key> {
        if let Some(key) = self.users.get(username) {
            return Some(*key);
        }
        let secret = self.secret.as_deref()?;
        if rest_expiry(username)? < unix_secs {
            return None;
        }
        let mut password = [0u8; 28];
        let len = rest_password(secret, username, &mut password);
        Some(long_term_key(username, &self.realm, &password[..len]))
    }
}

/// Length of a nonce: 16 hex digits of issue time, 20 of MAC.
const NONCE_LEN: usize = 36;
/// Bytes of the HMAC kept in a nonce.
const NONCE_MAC_LEN: usize = 10;

/// Stateless nonces: the issue time (milliseconds since the first nonce) and a truncated
/// HMAC, under a random key, of that time and the client's address. Unguessable without the
/// key, valid only for the address they were issued to, stale after `lifetime`.
#[derive(Debug, Clone)]
pub(crate) struct Nonces {
    key: [u8; 32],
    epoch: Option<Instant>,
    lifetime: Duration,
}

impl Nonces {
    pub fn new(key: [u8; 32], lifetime: Duration) -> Self {
        Self {
            key,
            epoch: None,
            lifetime,
        }
    }

    /// A fresh nonce for `client`.
    pub fn issue(&mut self, now: Instant, client: SocketAddr) -> [u8; NONCE_LEN] {
        let epoch = *self.epoch.get_or_insert(now);
        let millis = now.saturating_duration_since(epoch).as_millis() as u64;
        let mut nonce = [0u8; NONCE_LEN];
        hex(&millis.to_be_bytes(), &mut nonce[..16]);
        hex(&self.mac(millis, client)[..NONCE_MAC_LEN], &mut nonce[16..]);
        nonce
    }

    /// Whether `nonce` was issued to `client` by this server less than `lifetime` ago.
    pub fn is_valid(&self, now: Instant, client: SocketAddr, nonce: &[u8]) -> bool {
        let (Some(epoch), Some(millis), true) = (
            self.epoch,
            nonce.get(..16).and_then(parse_hex_u64),
            nonce.len() == NONCE_LEN,
        ) else {
            return false;
        };
        let Some(issued) = epoch.checked_add(Duration::from_millis(millis)) else {
            return false;
        };
        let fresh = issued <= now && now.duration_since(issued) < self.lifetime;
        let mut mac = [0u8; 2 * NONCE_MAC_LEN];
        hex(&self.mac(millis, client)[..NONCE_MAC_LEN], &mut mac);
        fresh && constant_time_eq(&mac, &nonce[16..])
    }

    fn mac(&self, millis: u64, client: SocketAddr) -> [u8; 20] {
        let mut mac = hmac_sha1(&self.key);
        mac.update(&millis.to_be_bytes());
        match client.ip().to_canonical() {
            std::net::IpAddr::V4(ip) => mac.update(&ip.octets()),
            std::net::IpAddr::V6(ip) => mac.update(&ip.octets()),
        }
        mac.update(&client.port().to_be_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// Lowercase hex of `bytes` into `out` (twice as long).
fn hex(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xF)];
    }
}

fn parse_hex_u64(digits: &[u8]) -> Option<u64> {
    if !digits
        .iter()
        .all(|d| matches!(d, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computed independently with Python's hmac, hashlib and base64 modules.
    #[test]
    fn rest_credentials_match_coturn_scheme() {
        let (user, pass) = rest_credentials("north", "my_user_name", 1433895918506);
        assert_eq!(user, "1433895918506:my_user_name");
        assert_eq!(pass, "+8A4l7VX6yTmEzUg7ltAn+0+I8E=");
        let (user, pass) = rest_credentials("s3cr3t", "alice", 1735689600);
        assert_eq!(user, "1735689600:alice");
        assert_eq!(pass, "tz2A3l9G/+Rt6NppqnPJCJ220Ig=");
        let key = long_term_key(user.as_bytes(), b"stoa", pass.as_bytes());
        assert_eq!(key, hex_key("ea97f33bd3e870555c861486ed1b0273"));
    }

    fn hex_key(s: &str) -> Key {
        let mut k = [0u8; 16];
        for (i, b) in k.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        k
    }

    #[test]
    fn credentials_know_static_and_rest_users() {
        let users = [("bob".to_owned(), "pw".to_owned())];
        let creds = Credentials::new("stoa", &users, Some("s3cr3t"));
        assert_eq!(
            creds.key(b"bob", 0),
            Some(long_term_key(b"bob", b"stoa", b"pw"))
        );
        assert_eq!(creds.key(b"eve", 0), None);
        let (user, pass) = rest_credentials("s3cr3t", "alice", 1000);
        let expected = long_term_key(user.as_bytes(), b"stoa", pass.as_bytes());
        assert_eq!(creds.key(user.as_bytes(), 1000), Some(expected));
        assert_eq!(creds.key(user.as_bytes(), 1001), None, "expired");
        let (bare, pass) = rest_credentials("s3cr3t", "", 2000);
        assert_eq!(bare, "2000");
        let expected = long_term_key(bare.as_bytes(), b"stoa", pass.as_bytes());
        assert_eq!(creds.key(bare.as_bytes(), 5), Some(expected));
        let no_secret = Credentials::new("stoa", &users, None);
        assert_eq!(no_secret.key(user.as_bytes(), 0), None);
    }

    #[test]
    fn rest_usernames_parse() {
        assert_eq!(rest_expiry(b"123:x"), Some(123));
        assert_eq!(rest_expiry(b"123"), Some(123));
        assert_eq!(rest_expiry(b"12a:x"), None);
        assert_eq!(rest_expiry(b":x"), None);
        assert_eq!(rest_expiry(b"99999999999999999999999:x"), None);
        assert_eq!(quota_user(b"123:alice"), b"alice");
        assert_eq!(quota_user(b"bob"), b"bob");
        assert_eq!(quota_user(b"bo:b"), b"bo:b");
    }

    #[test]
    fn nonces_expire_and_are_bound_to_the_client() {
        let t0 = Instant::now();
        let client: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let mut nonces = Nonces::new([9; 32], Duration::from_secs(600));
        assert!(!nonces.is_valid(t0, client, b"0000000000000000aaaaaaaaaaaaaaaaaaaa"));
        let later = t0 + Duration::from_secs(5);
        let nonce = nonces.issue(t0, client);
        let nonce2 = nonces.issue(later, client);
        assert_ne!(nonce, nonce2);
        assert!(nonces.is_valid(later, client, &nonce));
        assert!(!nonces.is_valid(later, "192.0.2.1:5001".parse().unwrap(), &nonce));
        assert!(!nonces.is_valid(t0 + Duration::from_secs(600), client, &nonce));
        let mut forged = nonce;
        forged[35] = if forged[35] == b'0' { b'1' } else { b'0' };
        assert!(!nonces.is_valid(later, client, &forged));
        let other_key = Nonces {
            key: [8; 32],
            ..nonces.clone()
        };
        assert!(!other_key.is_valid(later, client, &nonce));
        assert!(!nonces.is_valid(later, client, &nonce[..20]));
    }
}

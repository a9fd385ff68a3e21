//! Access tokens: HS256 JWTs naming a room, an identity, a display name and grants.
//!
//! The signing key is the configured secret, or 32 random bytes kept in `<data-dir>/jwt.key`
//! (created on first use, readable by the owner only). The same key signs the names of ad-hoc
//! rooms (so only rooms this server created hand out guest tokens) and their host keys.

use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use stoa_proto::{Grants, RoomName};

const ISSUER: &str = "stoa";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    /// The participant's identity.
    pub sub: String,
    pub name: String,
    pub room: String,
    pub iat: u64,
    pub exp: u64,
    pub grants: Grants,
}

/// Why a token was refused; `code()` is the machine-readable error.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("an access token is required")]
    Missing,
    #[error("the access token has expired")]
    Expired,
    #[error("the access token's signature is invalid")]
    BadSignature,
    #[error("the access token is malformed: {0}")]
    Malformed(String),
    #[error("the access token is for another room")]
    WrongRoom,
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    signing: Hmac<Sha256>,
}

/// Letters of room-name tags and host keys: no look-alikes (0/o, 1/l/i).
const TAG_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// Characters of an ad-hoc room's tag: 31^6, about 30 bits, behind the join rate limits.
const ROOM_TAG_LEN: usize = 6;
const HOST_KEY_LEN: usize = 24;

impl TokenKeys {
    pub fn from_secret(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            signing: Hmac::new_from_slice(secret).expect("HMAC takes keys of any length"),
        }
    }

    /// The keyed hash (HMAC-SHA256 under the server's key) of `purpose` and `parts`, each
    /// ended by a zero byte so that no two different lists hash alike.
    pub fn mac(&self, purpose: &str, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.signing.clone();
        for part in std::iter::once(purpose.as_bytes()).chain(parts.iter().copied()) {
            mac.update(part);
            mac.update(&[0]);
        }
        mac.finalize().into_bytes().into()
    }

    /// `len` tag letters of the keyed hash of `purpose` and `text`.
    fn tag(&self, purpose: &str, text: &str, len: usize) -> String {
        self.mac(purpose, &[text.as_bytes()])
            .iter()
            .take(len)
            .map(|b| TAG_ALPHABET[*b as usize % TAG_ALPHABET.len()] as char)
            .collect()
    }

    /// An ad-hoc room name: `base` followed by this server's tag of it.
    pub fn sign_room(&self, base: &str) -> String {
        format!("{base}-{}", self.tag("room", base, ROOM_TAG_LEN))
    }

    /// Whether this server made `room` with [`Self::sign_room`].
    pub fn is_signed_room(&self, room: &str) -> bool {
        room.rsplit_once('-')
            .is_some_and(|(base, tag)| constant_time_eq(tag, &self.tag("room", base, ROOM_TAG_LEN)))
    }

    /// The key that makes its holder a host of an ad-hoc room (given to its creator).
    pub fn host_key(&self, room: &RoomName) -> String {
        self.tag("host", room.as_str(), HOST_KEY_LEN)
    }

    pub fn is_host_key(&self, room: &RoomName, key: &str) -> bool {
        constant_time_eq(key, &self.host_key(room))
    }

    /// The configured secret, or the key in the data dir (generated if missing).
    pub fn load(data_dir: &Path, configured: Option<&str>) -> std::io::Result<Self> {
        if let Some(secret) = configured {
            return Ok(Self::from_secret(secret.as_bytes()));
        }
        let path = data_dir.join("jwt.key");
        let secret = match std::fs::read_to_string(&path) {
            Ok(text) => hex::decode(text.trim()).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is not a hex key: {e}", path.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir)?;
                let key: [u8; 32] = rand::random();
                write_private(&path, hex::encode(key).as_bytes())?;
                tracing::info!(path = %path.display(), "generated a new token signing key");
                key.to_vec()
            }
            Err(e) => return Err(e),
        };
        Ok(Self::from_secret(&secret))
    }

    pub fn mint(
        &self,
        room: &RoomName,
        identity: &str,
        name: &str,
        grants: Grants,
        ttl: Duration,
    ) -> String {
        let iat = crate::clock::unix_secs();
        let claims = Claims {
            iss: ISSUER.into(),
            sub: identity.into(),
            name: name.into(),
            room: room.to_string(),
            iat,
            exp: iat + ttl.as_secs().max(1),
            grants,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of a serializable claim set cannot fail")
    }

    /// Checks signature, issuer, expiry and, when given, the room.
    pub fn verify(&self, token: &str, room: Option<&RoomName>) -> Result<Claims, TokenError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    ErrorKind::InvalidSignature => TokenError::BadSignature,
                    _ => TokenError::Malformed(e.to_string()),
                }
            })?;
        let claims = data.claims;
        if RoomName::new(claims.room.clone()).is_err() {
            return Err(TokenError::Malformed("invalid room claim".into()));
        }
        if room.is_some_and(|r| r.as_str() != claims.room) {
            return Err(TokenError::WrongRoom);
        }
        Ok(claims)
    }
}

/// Equality that takes as long whatever the first differing byte (for secrets and tags).
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub(crate) fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents)
}

/// The identity a signed-in user has in calls.
pub fn user_identity(user_id: &str) -> String {
    format!("user-{user_id}")
}

/// The user id of a call identity made by [`user_identity`].
pub fn identity_user(identity: &str) -> Option<&str> {
    identity.strip_prefix("user-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(s: &str) -> RoomName {
        RoomName::new(s).unwrap()
    }

    #[test]
    fn a_minted_token_verifies_for_its_room_only() {
        let keys = TokenKeys::from_secret(b"test-secret");
        let t = keys.mint(
            &room("r1"),
            "alice",
            "Alice",
            Grants::default(),
            Duration::from_secs(60),
        );
        let c = keys.verify(&t, Some(&room("r1"))).unwrap();
        assert_eq!(
            (c.sub.as_str(), c.name.as_str(), c.room.as_str()),
            ("alice", "Alice", "r1")
        );
        assert_eq!(
            keys.verify(&t, Some(&room("r2"))),
            Err(TokenError::WrongRoom)
        );
    }

    #[test]
    fn tampered_foreign_expired_and_garbage_tokens_are_refused() {
        let keys = TokenKeys::from_secret(b"test-secret");
        let t = keys.mint(
            &room("r1"),
            "alice",
            "Alice",
            Grants::default(),
            Duration::from_secs(60),
        );
        let other = TokenKeys::from_secret(b"other");
        assert_eq!(other.verify(&t, None), Err(TokenError::BadSignature));

        // Flip the payload to claim admin rights, keeping the old signature.
        let mut parts: Vec<String> = t.split('.').map(String::from).collect();
        let forged = keys.mint(
            &room("r1"),
            "alice",
            "Alice",
            Grants {
                room_admin: true,
                ..Grants::default()
            },
            Duration::from_secs(60),
        );
        parts[1] = forged.split('.').nth(1).unwrap().to_string();
        assert_eq!(
            keys.verify(&parts.join("."), None),
            Err(TokenError::BadSignature)
        );

        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                iss: ISSUER.into(),
                sub: "a".into(),
                name: "a".into(),
                room: "r1".into(),
                iat: 1,
                exp: 2,
                grants: Grants::default(),
            },
            &EncodingKey::from_secret(b"test-secret"),
        )
        .unwrap();
        assert_eq!(keys.verify(&expired, None), Err(TokenError::Expired));
        assert_eq!(keys.verify("", None), Err(TokenError::Missing));
        assert!(matches!(
            keys.verify("a.b.c", None),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn only_this_servers_room_names_and_host_keys_are_recognised() {
        let keys = TokenKeys::from_secret(b"test-secret");
        let other = TokenKeys::from_secret(b"other");
        let signed = keys.sign_room("abc-defg-hjk");
        assert!(keys.is_signed_room(&signed));
        assert!(!other.is_signed_room(&signed));
        for forged in ["abc-defg-hjk", "standup", "abc-defg-hjk-aaaaaa", ""] {
            assert!(!keys.is_signed_room(forged), "{forged}");
        }
        let r = room(&signed);
        let key = keys.host_key(&r);
        assert!(keys.is_host_key(&r, &key));
        assert!(!keys.is_host_key(&room("other"), &key));
        assert!(!other.is_host_key(&r, &key));
        assert!(!keys.is_host_key(&r, ""));
    }

    #[test]
    fn the_key_file_is_created_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("stoa-auth-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = TokenKeys::load(&dir, None).unwrap();
        let b = TokenKeys::load(&dir, None).unwrap();
        let t = a.mint(
            &room("r"),
            "x",
            "x",
            Grants::default(),
            Duration::from_secs(60),
        );
        assert!(b.verify(&t, None).is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }
}

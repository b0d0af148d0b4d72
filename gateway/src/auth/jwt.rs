//! Access tokens. The algorithm is pinned (HS256): a token whose header
//! says anything else, `none` included, is refused before its signature is
//! looked at. Every token names its key (`kid`) so keys can be rotated.
//!
//! The keys form a ring that can be replaced while the gateway runs
//! ([`JwtKeys::replace_ring`]): new tokens are signed with the active key,
//! any key of the ring verifies the tokens it signed. The ring itself lives
//! in `auth.signing_keys` ([`super::keyring`]); this module only holds it.
//! [`JwtKeys`] also carries the [`SessionGuard`], since whether a token is
//! still honoured (user blocked, sessions revoked) is part of the token
//! policy and every handler reaches it through `AppState.jwt`.

use super::sessions::SessionGuard;
use crate::error::ApiError;
use flashdeal_schemas::UserId;
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode,
};
use serde::{Deserialize, Serialize};
use std::{
    collections::HashMap,
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};
use uuid::Uuid;

/// What a user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "customer" => Some(Self::Customer),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// The claims of a FlashDeal access token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: UserId,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    /// Whole seconds (RFC 7519).
    pub iat: u64,
    /// The issue instant in milliseconds, so a token issued in the same
    /// second as a password change can be told apart. Absent from tokens
    /// minted before it existed; see [`Claims::issued_at_ms`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat_ms: Option<u64>,
    pub exp: u64,
    pub jti: Uuid,
}

impl Claims {
    /// When the token was issued, in ms (`iat` rounded down when there is
    /// no `iat_ms`: such a token counts as older, never as newer).
    pub fn issued_at_ms(&self) -> u64 {
        self.iat_ms.unwrap_or(self.iat.saturating_mul(1000))
    }
}

/// One HS256 key of the ring.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The keys in use: one signs, all verify.
struct KeyRing {
    active_kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
}

impl KeyRing {
    /// A ring whose `active` key signs and whose `active` and `others` verify.
    fn new(active: &SigningKey, others: &[SigningKey]) -> Result<Self, WeakSecret> {
        let mut decoding = HashMap::with_capacity(others.len() + 1);
        for k in others.iter().chain(std::iter::once(active)) {
            if k.secret.len() < 32 {
                return Err(WeakSecret(k.secret.len()));
            }
            decoding.insert(k.kid.clone(), DecodingKey::from_secret(&k.secret));
        }
        Ok(Self {
            active_kid: active.kid.clone(),
            encoding: EncodingKey::from_secret(&active.secret),
            decoding,
        })
    }
}

/// The signing keys and the token policy. Clones share the key ring and
/// the session guard, so a reload is seen by every clone.
#[derive(Clone)]
pub struct JwtKeys {
    ring: Arc<RwLock<KeyRing>>,
    /// The key this process was configured with; it seeds an empty
    /// `auth.signing_keys` ([`super::keyring::bootstrap`]).
    configured: SigningKey,
    sessions: Arc<SessionGuard>,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("active_kid", &self.active_kid())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// Why the JWT settings are unusable.
#[derive(Debug, thiserror::Error)]
#[error("the JWT secret must be at least 32 bytes (got {0})")]
pub struct WeakSecret(usize);

/// Why a key ring cannot be installed.
#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error(transparent)]
    Weak(#[from] WeakSecret),
    #[error("the key ring has no active key")]
    NoActiveKey,
}

impl JwtKeys {
    /// Keys for HS256 with `secret` (≥ 32 bytes), named `kid`.
    pub fn hs256(
        kid: impl Into<String>,
        secret: &[u8],
        issuer: impl Into<String>,
        audience: impl Into<String>,
        ttl: Duration,
    ) -> Result<Self, WeakSecret> {
        let configured = SigningKey {
            kid: kid.into(),
            secret: secret.to_vec(),
        };
        let ring = KeyRing::new(&configured, &[])?;
        let (issuer, audience) = (issuer.into(), audience.into());
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&audience]);
        validation.leeway = 5;
        validation.required_spec_claims = ["exp", "iss", "aud", "sub"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        Ok(Self {
            ring: Arc::new(RwLock::new(ring)),
            configured,
            sessions: Arc::new(SessionGuard::default()),
            validation,
            issuer,
            audience,
            ttl,
        })
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How long after its retirement a key may still be needed: the last
    /// token it signed lives `ttl`, accepted with the validation leeway.
    pub fn retired_key_lifetime(&self) -> Duration {
        self.ttl + Duration::from_secs(self.validation.leeway)
    }

    /// Blocked users and revoked sessions, fed by `auth.events`.
    pub fn sessions(&self) -> &SessionGuard {
        &self.sessions
    }

    /// The key this process was configured with (never logged).
    pub fn configured_key(&self) -> &SigningKey {
        &self.configured
    }

    /// The `kid` new tokens are signed with.
    pub fn active_kid(&self) -> String {
        self.read_ring().active_kid.clone()
    }

    /// `true` when `kid` verifies tokens.
    pub fn knows(&self, kid: &str) -> bool {
        self.read_ring().decoding.contains_key(kid)
    }

    /// Installs a new ring: `active` signs from now on; `active` and
    /// `others` verify. Tokens of keys left out stop verifying.
    pub fn replace_ring(
        &self,
        active: Option<&SigningKey>,
        others: &[SigningKey],
    ) -> Result<(), KeyRingError> {
        let ring = KeyRing::new(active.ok_or(KeyRingError::NoActiveKey)?, others)?;
        *self.ring.write().unwrap_or_else(PoisonError::into_inner) = ring;
        Ok(())
    }

    fn read_ring(&self) -> std::sync::RwLockReadGuard<'_, KeyRing> {
        // A writer only swaps a fully built ring in: a poisoned lock still
        // holds a consistent value.
        self.ring.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Issues a token for `user` with `role`, valid for the configured TTL.
    pub fn issue(&self, user: UserId, role: Role) -> Result<String, ApiError> {
        self.issue_at(user, role, flashdeal_schemas::events::now_millis())
    }

    /// As [`JwtKeys::issue`], issued at `now_ms` (a password change issues
    /// its fresh token at the very instant it revoked the older ones).
    pub fn issue_at(&self, user: UserId, role: Role, now_ms: i64) -> Result<String, ApiError> {
        let now_ms = u64::try_from(now_ms)
            .map_err(|_| ApiError::Internal("the clock is before 1970".to_owned()))?;
        let now = now_ms / 1000;
        let claims = Claims {
            sub: user,
            role,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            iat_ms: Some(now_ms),
            exp: now + self.ttl.as_secs(),
            jti: Uuid::now_v7(),
        };
        let ring = self.read_ring();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(ring.active_kid.clone());
        encode(&header, &claims, &ring.encoding)
            .map_err(|e| ApiError::Internal(format!("signing token: {e}")))
    }

    /// Verifies a bearer token: known `kid`, HS256, signature, `exp`, `iss`, `aud`.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        const BAD: ApiError = ApiError::Unauthenticated("invalid or expired access token");
        let header = decode_header(token).map_err(|_| BAD)?;
        if header.alg != Algorithm::HS256 {
            return Err(BAD);
        }
        let kid = header.kid.ok_or(BAD)?;
        let ring = self.read_ring();
        let key = ring.decoding.get(&kid).ok_or(BAD)?;
        decode::<Claims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| BAD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &[u8]) -> JwtKeys {
        JwtKeys::hs256(
            "k1",
            secret,
            "flashdeal",
            "flashdeal-api",
            Duration::from_secs(60),
        )
        .unwrap()
    }

    #[test]
    fn a_token_verifies_with_its_own_keys_only() {
        let k = keys(&[7; 32]);
        let user = UserId::new_v7();
        let token = k.issue(user, Role::Admin).unwrap();
        let claims = k.verify(&token).unwrap();
        assert_eq!((claims.sub, claims.role), (user, Role::Admin));
        assert!(
            keys(&[8; 32]).verify(&token).is_err(),
            "forged signature accepted"
        );
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let k = keys(&[7; 32]);
        let token = k.issue(UserId::new_v7(), Role::Admin).unwrap();
        let payload = token.split('.').nth(1).unwrap();
        for header in [
            r#"{"alg":"none","kid":"k1"}"#,
            r#"{"alg":"HS512","kid":"k1"}"#,
        ] {
            use base64_url::encode;
            let forged = format!("{}.{payload}.", encode(header));
            assert!(k.verify(&forged).is_err(), "{header} accepted");
        }
    }

    #[test]
    fn after_a_rotation_new_tokens_use_the_new_key_and_old_ones_still_verify() {
        let k = keys(&[7; 32]);
        let before = k.issue(UserId::new_v7(), Role::Customer).unwrap();
        let old = SigningKey {
            kid: "k1".to_owned(),
            secret: vec![7; 32],
        };
        let new = SigningKey {
            kid: "k2".to_owned(),
            secret: vec![9; 32],
        };
        k.replace_ring(Some(&new), std::slice::from_ref(&old))
            .unwrap();
        let after = k.issue(UserId::new_v7(), Role::Customer).unwrap();
        assert_eq!(decode_header(&after).unwrap().kid.as_deref(), Some("k2"));
        assert!(k.verify(&before).is_ok(), "a retired key must still verify");
        assert!(k.verify(&after).is_ok());
        // Once the retired key leaves the ring, its tokens stop verifying.
        k.replace_ring(Some(&new), &[]).unwrap();
        assert!(k.verify(&before).is_err());
        assert!(k.verify(&after).is_ok());
        assert!(
            k.replace_ring(None, &[old]).is_err(),
            "a ring needs an active key"
        );
    }

    #[test]
    fn a_token_carries_its_issue_time_in_milliseconds() {
        let k = keys(&[7; 32]);
        let token = k
            .issue_at(UserId::new_v7(), Role::Customer, 1_700_000_000_123)
            .unwrap();
        let claims = k.verify(&token);
        // Issued in 2023 with a 60 s TTL: expired, so read the claims unverified.
        assert!(claims.is_err());
        let payload = token.split('.').nth(1).unwrap();
        let json = base64_url::decode(payload);
        let claims: Claims = serde_json::from_slice(&json).unwrap();
        assert_eq!(claims.issued_at_ms(), 1_700_000_000_123);
        assert_eq!(claims.iat, 1_700_000_000);
        let legacy = Claims {
            iat_ms: None,
            ..claims
        };
        assert_eq!(legacy.issued_at_ms(), 1_700_000_000_000);
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(JwtKeys::hs256("k", b"short", "i", "a", Duration::from_secs(1)).is_err());
    }

    /// base64url without padding, enough for a forged header in a test.
    mod base64_url {
        pub fn encode(s: &str) -> String {
            const T: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let b = s.as_bytes();
            let mut out = String::new();
            for chunk in b.chunks(3) {
                let n = chunk
                    .iter()
                    .enumerate()
                    .fold(0u32, |acc, (i, &x)| acc | (u32::from(x) << (16 - 8 * i)));
                for i in 0..=chunk.len() {
                    out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
                }
            }
            out
        }

        pub fn decode(s: &str) -> Vec<u8> {
            let val = |c: u8| match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'-' => 62,
                _ => 63,
            };
            let mut out = Vec::new();
            let (mut acc, mut bits) = (0u32, 0);
            for c in s.bytes() {
                acc = (acc << 6) | u32::from(val(c));
                bits += 6;
                if bits >= 8 {
                    bits -= 8;
                    out.push((acc >> bits) as u8);
                }
            }
            out
        }
    }
}

//! Access tokens. The algorithm is pinned (HS256): a token whose header
//! says anything else, `none` included, is refused before its signature is
//! looked at. Every token names its key (`kid`) so keys can be rotated.

use crate::error::ApiError;
use flashdeal_schemas::UserId;
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;
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
    pub iat: u64,
    pub exp: u64,
    pub jti: Uuid,
}

/// The signing key and the token policy.
#[derive(Clone)]
pub struct JwtKeys {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// Why the JWT settings are unusable.
#[derive(Debug, thiserror::Error)]
#[error("the JWT secret must be at least 32 bytes (got {0})")]
pub struct WeakSecret(usize);

impl JwtKeys {
    /// Keys for HS256 with `secret` (≥ 32 bytes), named `kid`.
    pub fn hs256(
        kid: impl Into<String>,
        secret: &[u8],
        issuer: impl Into<String>,
        audience: impl Into<String>,
        ttl: Duration,
    ) -> Result<Self, WeakSecret> {
        if secret.len() < 32 {
            return Err(WeakSecret(secret.len()));
        }
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
            kid: kid.into(),
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer,
            audience,
            ttl,
        })
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Issues a token for `user` with `role`, valid for the configured TTL.
    pub fn issue(&self, user: UserId, role: Role) -> Result<String, ApiError> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user,
            role,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + self.ttl.as_secs(),
            jti: Uuid::now_v7(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        encode(&header, &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("signing token: {e}")))
    }

    /// Verifies a bearer token: known `kid`, HS256, signature, `exp`, `iss`, `aud`.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        const BAD: ApiError = ApiError::Unauthenticated("invalid or expired access token");
        let header = decode_header(token).map_err(|_| BAD)?;
        if header.alg != Algorithm::HS256 || header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(BAD);
        }
        decode::<Claims>(token, &self.decoding, &self.validation)
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
    }
}

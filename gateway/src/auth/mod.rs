//! Authentication: passwords (argon2id), access tokens (JWT, pinned HS256,
//! `kid`, `iss`/`aud`/`exp` checked) and the extractors protected routes use.
//!
//! # Layout
//! - [`password`]: hashing and verifying, off the async runtime.
//! - [`jwt`]: the signing keys and the claims.
//! - [`extract`]: `AuthUser` / `AdminUser` extractors.
//! - [`routes`]: `POST /auth/signup`, `POST /auth/login`.

pub mod extract;
pub mod jwt;
pub mod password;
pub mod routes;

pub use extract::{AdminUser, AuthUser};
pub use jwt::{Claims, JwtKeys, Role};

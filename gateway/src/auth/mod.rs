//! Authentication: passwords (argon2id), access tokens (JWT, pinned HS256,
//! `kid`, `iss`/`aud`/`exp` checked), the extractors protected routes use,
//! and the account changes that other services learn from `auth.events`.
//!
//! # Layout
//! - [`password`]: hashing and verifying, off the async runtime.
//! - [`jwt`]: the reloadable key ring and the claims.
//! - [`keyring`]: the ring in `auth.signing_keys`: bootstrap, load, rotate.
//! - [`sessions`]: the in-memory guard of blocked users and revoked tokens.
//! - [`follower`]: `auth.events` → guard and key ring, on every gateway.
//! - [`users`]: a user's state and its `UserChanged` outbox entry.
//! - [`extract`]: `AuthUser` / `AdminUser` extractors.
//! - [`routes`]: `POST /auth/signup`, `/auth/login`, `/auth/password`.
//! - [`admin`]: block/unblock users, rotate the signing key.

pub mod admin;
pub mod extract;
pub mod follower;
pub mod jwt;
pub mod keyring;
pub mod password;
pub mod routes;
pub mod sessions;
pub mod users;

pub use extract::{AdminUser, AuthUser};
pub use jwt::{Claims, JwtKeys, Role};

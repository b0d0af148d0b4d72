//! Products: what a deal sells. Admins create, rename and delete them;
//! anyone reads one. A delete is soft (`deleted_at`), because ended deals
//! and their orders still name the product, and it is refused while one of
//! its deals has not ended. Every write emits `ProductChanged`.

use super::events;
use crate::{
    auth::AdminUser,
    error::ApiError,
    json::{self, Json},
    state::AppState,
};
use axum::{
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
    response::Response,
};
use chrono::{DateTime, Utc};
use flashdeal_schemas::store_events::product_change;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A product as clients see it (and as its queries return it).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Product {
    pub product_id: Uuid,
    pub name: String,
    pub description: String,
    /// Incremented by every change.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The product name rule; returns the name trimmed.
pub fn valid_name(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.contains('\0') {
        return Err(ApiError::Validation(
            "the product name must be 1 to 200 characters, without NUL".to_owned(),
        ));
    }
    Ok(name)
}

/// The product description rule.
pub fn valid_description(description: &str) -> Result<&str, ApiError> {
    if description.chars().count() > 4000 || description.contains('\0') {
        return Err(ApiError::Validation(
            "the product description must be at most 4000 characters, without NUL".to_owned(),
        ));
    }
    Ok(description)
}

/// Body of `POST /admin/products`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    /// 1 to 200 characters (trimmed).
    #[schema(example = "Espresso machine")]
    pub name: String,
    /// At most 4000 characters.
    #[serde(default)]
    pub description: String,
}

/// Body of `PATCH /admin/products/{id}`: what is present changes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    pub name: Option<String>,
    pub description: Option<String>,
}

impl ProductPatch {
    /// The new name and description (`None`: unchanged); at least one.
    pub fn validate(&self) -> Result<(Option<&str>, Option<&str>), ApiError> {
        if self.name.is_none() && self.description.is_none() {
            return Err(ApiError::Validation(
                "give `name`, `description` or both".to_owned(),
            ));
        }
        let name = self.name.as_deref().map(valid_name).transpose()?;
        let description = self
            .description
            .as_deref()
            .map(valid_description)
            .transpose()?;
        Ok((name, description))
    }
}

/// Inserts a product and its `ProductUpserted` inside `tx`; also used when
/// a deal names its product inline.
pub async fn insert(
    tx: &mut PgConnection,
    name: &str,
    description: &str,
) -> Result<Product, ApiError> {
    let name = valid_name(name)?;
    let description = valid_description(description)?;
    let product = sqlx::query_file_as!(
        Product,
        "../sql/queries/insert_product.sql",
        Uuid::now_v7(),
        name,
        description
    )
    .fetch_one(&mut *tx)
    .await?;
    events::record_product(tx, product_change::UPSERTED, &product, false).await?;
    tracing::info!(product_id = %product.product_id, "product created");
    Ok(product)
}

fn product_id(id: &str) -> Result<Uuid, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound("product"))
}

/// `POST /admin/products`: 201 with `Location: /products/{id}`.
#[utoipa::path(post, path = "/admin/products", tag = "catalog", request_body = NewProduct,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Product created", body = Product, headers(("Location" = String, description = "`/products/{id}`"))),
        crate::auth::extract::AdminRejections,
        crate::json::Rejections,
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    _admin: AdminUser,
    Json(body): Json<NewProduct>,
) -> Result<Response, ApiError> {
    let mut tx = state.db.catalog.begin().await?;
    let product = insert(&mut tx, &body.name, &body.description).await?;
    tx.commit().await?;
    Ok(json::created(
        &format!("/products/{}", product.product_id),
        product,
    ))
}

/// `GET /products/{id}`; a deleted product is a 404.
#[utoipa::path(get, path = "/products/{id}", tag = "catalog",
    params(("id" = uuid::Uuid, Path, description = "The product's id")),
    responses(
        (status = 200, description = "The product", body = Product),
        (status = 404, response = crate::openapi::NotFound),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Product>, ApiError> {
    let id = product_id(&id)?;
    sqlx::query_file_as!(Product, "../sql/queries/product_by_id.sql", id)
        .fetch_optional(&state.db.catalog)
        .await?
        .map(axum::Json)
        .ok_or(ApiError::NotFound("product"))
}

/// Query of `GET /admin/products`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductListParams {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// `GET /admin/products?limit=n`: products not deleted, newest first.
#[utoipa::path(get, path = "/admin/products", tag = "catalog", params(ProductListParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Products, newest first", body = Vec<Product>),
        crate::auth::extract::AdminRejections,
        (status = 422, response = crate::openapi::Invalid),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    params: Result<Query<ProductListParams>, QueryRejection>,
) -> Result<axum::Json<Vec<Product>>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::Validation(e.body_text()))?;
    let limit = super::listing::page_size(params.limit)?;
    let rows = sqlx::query_file_as!(Product, "../sql/queries/list_products.sql", limit)
        .fetch_all(&state.db.catalog)
        .await?;
    Ok(axum::Json(rows))
}

/// `PATCH /admin/products/{id}`: renames and/or redescribes the product.
#[utoipa::path(patch, path = "/admin/products/{id}", tag = "catalog", request_body = ProductPatch,
    params(("id" = uuid::Uuid, Path, description = "The product's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The product as changed", body = Product),
        crate::auth::extract::AdminRejections,
        (status = 404, response = crate::openapi::NotFound),
        crate::json::Rejections,
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
    Json(body): Json<ProductPatch>,
) -> Result<axum::Json<Product>, ApiError> {
    let id = product_id(&id)?;
    let (name, description) = body.validate()?;
    let mut tx = state.db.catalog.begin().await?;
    let product = sqlx::query_file_as!(
        Product,
        "../sql/queries/update_product.sql",
        id,
        name,
        description
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ApiError::NotFound("product"))?;
    events::record_product(&mut tx, product_change::UPSERTED, &product, false).await?;
    tx.commit().await?;
    tracing::info!(product_id = %id, version = product.version, "product updated");
    Ok(axum::Json(product))
}

/// `DELETE /admin/products/{id}`: 204; 409 while one of its deals has not
/// ended.
#[utoipa::path(delete, path = "/admin/products/{id}", tag = "catalog",
    params(("id" = uuid::Uuid, Path, description = "The product's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        crate::auth::extract::AdminRejections,
        (status = 404, response = crate::openapi::NotFound),
        (status = 409, response = crate::openapi::Conflict),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = product_id(&id)?;
    let mut tx = state.db.catalog.begin().await?;
    sqlx::query_file_scalar!("../sql/queries/lock_product.sql", id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ApiError::NotFound("product"))?;
    let open = sqlx::query_file_scalar!("../sql/queries/product_has_open_deal.sql", id)
        .fetch_one(&mut *tx)
        .await?;
    if open {
        return Err(ApiError::Conflict(
            "the product has a deal that has not ended; end the deal first",
        ));
    }
    let product = sqlx::query_file_as!(Product, "../sql/queries/delete_product.sql", id)
        .fetch_one(&mut *tx)
        .await?;
    events::record_product(&mut tx, product_change::DELETED, &product, true).await?;
    tx.commit().await?;
    tracing::info!(product_id = %id, "product deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(valid_name("  Kettle ").unwrap(), "Kettle");
        assert!(valid_name("   ").is_err());
        assert!(valid_name(&"é".repeat(200)).is_ok());
        assert!(valid_name(&"é".repeat(201)).is_err());
        assert!(valid_description(&"x".repeat(4000)).is_ok());
        assert!(valid_description(&"x".repeat(4001)).is_err());
    }

    #[test]
    fn a_patch_changes_something_and_each_field_obeys_its_rule() {
        let patch = |name: Option<&str>, description: Option<&str>| ProductPatch {
            name: name.map(str::to_owned),
            description: description.map(str::to_owned),
        };
        assert!(matches!(
            patch(None, None).validate(),
            Err(ApiError::Validation(_))
        ));
        assert_eq!(
            patch(Some(" New "), None).validate().unwrap(),
            (Some("New"), None)
        );
        assert_eq!(patch(None, Some("")).validate().unwrap(), (None, Some("")));
        assert!(patch(Some(""), Some("ok")).validate().is_err());
        assert!(
            patch(Some("ok"), Some(&"x".repeat(4001)))
                .validate()
                .is_err()
        );
    }
}

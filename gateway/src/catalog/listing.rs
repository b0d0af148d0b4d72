//! `GET /deals`: deals soonest first, optionally searched by product name
//! (`q`, a case-insensitive substring) and filtered by the status clients
//! see (`status`); without `status`, every deal that has not ended.

use super::{
    projection,
    view::{DealDetail, DealRow},
};
use crate::{error::ApiError, state::AppState};
use axum::extract::{Query, State, rejection::QueryRejection};
use chrono::Utc;
use flashdeal_schemas::DealId;
use serde::Deserialize;
use utoipa::IntoParams;

/// Query of `GET /deals`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// Part of the product name, any case; empty means no search.
    pub q: Option<String>,
    /// `upcoming`, `active`, `paused` or `ended`.
    #[param(pattern = "^(upcoming|active|paused|ended)$")]
    pub status: Option<String>,
}

/// The statuses `GET /deals?status=` accepts (those of `display_status`).
pub const STATUSES: [&str; 4] = ["upcoming", "active", "paused", "ended"];

/// The page size rule of every list.
pub fn page_size(limit: Option<i64>) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::Validation(
            "`limit` must be between 1 and 200".to_owned(),
        ));
    }
    Ok(limit)
}

/// A valid list query: (limit, search, status).
#[derive(Debug, PartialEq, Eq)]
pub struct Filter<'a> {
    pub limit: i64,
    pub q: Option<&'a str>,
    pub status: Option<&'static str>,
}

impl ListParams {
    pub fn validate(&self) -> Result<Filter<'_>, ApiError> {
        let limit = page_size(self.limit)?;
        let q = self.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
        if q.is_some_and(|q| q.chars().count() > 200 || q.contains('\0')) {
            return Err(ApiError::Validation(
                "`q` must be at most 200 characters, without NUL".to_owned(),
            ));
        }
        let status = match self.status.as_deref() {
            None => None,
            Some(s) => Some(STATUSES.into_iter().find(|k| *k == s).ok_or_else(|| {
                ApiError::Validation(
                    "`status` must be one of upcoming, active, paused, ended".to_owned(),
                )
            })?),
        };
        Ok(Filter { limit, q, status })
    }
}

/// `GET /deals?limit=n&q=text&status=s`.
#[utoipa::path(get, path = "/deals", tag = "catalog", params(ListParams),
    responses(
        (status = 200, description = "Deals, soonest first", body = Vec<DealDetail>),
        (status = 422, response = crate::openapi::Invalid),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn list_deals(
    State(mut state): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<axum::Json<Vec<DealDetail>>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::Validation(e.body_text()))?;
    let filter = params.validate()?;
    let now = Utc::now();
    let rows = sqlx::query_file_as!(
        DealRow,
        "../sql/queries/list_deals.sql",
        filter.limit,
        filter.q,
        filter.status,
        now
    )
    .fetch_all(&state.db.catalog)
    .await?;
    let ids: Vec<DealId> = rows.iter().map(|r| DealId(r.deal_id)).collect();
    let remaining = projection::remaining(&mut state.redis, &ids).await;
    Ok(axum::Json(
        rows.into_iter()
            .zip(remaining)
            .map(|(row, rem)| DealDetail::new(row, rem, now))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(limit: Option<i64>, q: Option<&str>, status: Option<&str>) -> ListParams {
        ListParams {
            limit,
            q: q.map(str::to_owned),
            status: status.map(str::to_owned),
        }
    }

    #[test]
    fn defaults_and_bounds() {
        let f = ListParams::default();
        assert_eq!(
            f.validate().unwrap(),
            Filter {
                limit: 50,
                q: None,
                status: None
            }
        );
        assert!(params(Some(0), None, None).validate().is_err());
        assert!(params(Some(201), None, None).validate().is_err());
        assert_eq!(params(Some(200), None, None).validate().unwrap().limit, 200);
    }

    #[test]
    fn search_text_is_trimmed_and_bounded() {
        let p = params(None, Some("  Kettle "), None);
        assert_eq!(p.validate().unwrap().q, Some("Kettle"));
        let p = params(None, Some("   "), None);
        assert_eq!(p.validate().unwrap().q, None);
        let long = "é".repeat(201);
        let p = params(None, Some(&long), None);
        assert!(matches!(p.validate(), Err(ApiError::Validation(_))));
        // PostgreSQL text cannot hold NUL: refused here, not a 500 there.
        let p = params(None, Some("a\0b"), None);
        assert!(matches!(p.validate(), Err(ApiError::Validation(_))));
    }

    #[test]
    fn only_the_statuses_clients_see_filter() {
        for s in STATUSES {
            assert_eq!(
                params(None, None, Some(s)).validate().unwrap().status,
                Some(s)
            );
        }
        for bad in ["scheduled", "ACTIVE", "", "sold_out"] {
            assert!(params(None, None, Some(bad)).validate().is_err(), "{bad}");
        }
    }
}

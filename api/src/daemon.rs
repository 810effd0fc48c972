//! The session as a whole: stats, settings, and the login that hands out
//! the session cookie.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bittide_driver::runtime::Runtime;
use serde_json::json;

use crate::config::JSON_BODY_LIMIT;
use crate::error::ApiError;
use crate::extract::json_body;
use crate::guard::{clear_cookie_header, session_cookie_header};
use crate::json::{LoginJson, SettingsJson, SettingsPatchJson, StatsJson};
use crate::App;

/// `GET /api/v1/stats`.
pub(crate) async fn stats<R: Runtime>(
    State(app): State<App<R>>,
) -> Result<Json<StatsJson>, ApiError> {
    let stats = app.session.stats().await?;
    Ok(Json(StatsJson::from(&stats)))
}

/// `GET /api/v1/settings`.
pub(crate) async fn settings<R: Runtime>(
    State(app): State<App<R>>,
) -> Result<Json<SettingsJson>, ApiError> {
    let settings = app.session.settings().await?;
    Ok(Json(SettingsJson::from(&settings)))
}

/// `PATCH /api/v1/settings`: answers the settings as they are now.
pub(crate) async fn patch_settings<R: Runtime>(
    State(app): State<App<R>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<SettingsJson>, ApiError> {
    let request: SettingsPatchJson = json_body(&headers, body, JSON_BODY_LIMIT).await?;
    let patch = request.into_patch().map_err(ApiError::BadRequest)?;
    let settings = app.session.set_settings(patch).await?;
    Ok(Json(SettingsJson::from(&settings)))
}

/// `POST /api/v1/login`: checks the credentials and sets the session
/// cookie (HttpOnly, SameSite=Strict). Without credentials configured
/// there is nothing to log in to, and it says so.
pub(crate) async fn login<R: Runtime>(
    State(app): State<App<R>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let request: LoginJson = json_body(&headers, body, JSON_BODY_LIMIT).await?;
    match app.guard.login(&request.username, &request.password)? {
        Some(token) => Ok((
            [(header::SET_COOKIE, session_cookie_header(&token))],
            Json(json!({ "login_required": true })),
        )
            .into_response()),
        None => Ok(Json(json!({ "login_required": false })).into_response()),
    }
}

/// `GET /api/v1/login`: whether this daemon needs a login and whether the
/// request's cookie is one, so a page knows whether to show its login
/// form (and a log-out button) without trying a password.
pub(crate) async fn login_status<R: Runtime>(
    State(app): State<App<R>>,
    headers: HeaderMap,
) -> Json<serde_json::Value> {
    let required = app.guard.requires_login();
    Json(json!({
        "login_required": required,
        "logged_in": !required || app.guard.cookie_ok(&headers),
    }))
}

/// `POST /api/v1/logout`: forgets the session cookie.
pub(crate) async fn logout<R: Runtime>(State(app): State<App<R>>, headers: HeaderMap) -> Response {
    app.guard.logout(&headers);
    (
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, clear_cookie_header())],
    )
        .into_response()
}

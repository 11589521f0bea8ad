//! What every request passes before it reaches a page: the Host header
//! must name this server (a rebound DNS name of an attacker's site does
//! not), the token must come with it (in the printed URL once, then in an
//! HttpOnly, SameSite=Strict cookie), and a request that changes anything
//! must carry the session header, which a form on another site cannot send.
//! Refusals say what is wrong and carry no data.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cookie::Cookie;
use subtle::ConstantTimeEq;

use super::app::App;

pub(crate) const SESSION_HEADER: &str = "x-snap-session";

/// The cookie's name carries the port: cookies are not kept apart by
/// port, so one name let a second `snap ui` overwrite the first's token,
/// and sent it to whatever else listens on 127.0.0.1.
pub(crate) fn cookie_name(app: &App) -> String {
    format!("snap_token_{}", app.addr.port())
}

fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

fn refuse(status: StatusCode, why: &str) -> Response {
    hardened((status, format!("{}: {why}\n", status.as_u16())).into_response())
}

/// Headers every answer carries, refusals too: never cached, never
/// framed, never sniffed into another type, no referrer.
fn hardened(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// The names this server answers to: its listen address, and localhost
/// with its port when it listens on loopback or on every address.
pub(crate) fn host_allowed(app: &App, host: &str) -> bool {
    let port = app.addr.port();
    let host = host.to_ascii_lowercase();
    if host == app.addr.to_string() {
        return true;
    }
    let local = app.addr.ip().is_loopback() || app.addr.ip().is_unspecified();
    local
        && [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
        ]
        .contains(&host)
}

fn cookie_token(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v.to_string()))
        .filter_map(|c| c.ok())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

fn query_token(req: &Request) -> Option<String> {
    let q = req.uri().query()?;
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

/// The token's cookie, for the browser to send with every later request.
fn token_cookie(app: &App) -> String {
    Cookie::build((cookie_name(app), app.token.clone()))
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .path("/")
        .build()
        .to_string()
}

pub(crate) async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !host_allowed(&app, host) {
        app.log(&format!("refused a request for host {host:?}"));
        return refuse(
            StatusCode::FORBIDDEN,
            "this server answers only to the address snap ui printed",
        );
    }
    if let Some(t) = query_token(&req) {
        if !same(&t, &app.token) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "the token in this address is not this server's: open the address snap ui printed",
            );
        }
        // Into a cookie, and out of the address bar and history; to a
        // path of this server only (`//host/` would be another server).
        let path = req.uri().path();
        let path = if path.starts_with("//") { "/" } else { path };
        return hardened(
            (
                StatusCode::SEE_OTHER,
                [
                    (header::SET_COOKIE, token_cookie(&app)),
                    (header::LOCATION, path.to_string()),
                ],
            )
                .into_response(),
        );
    }
    if !cookie_token(req.headers(), &cookie_name(&app)).is_some_and(|t| same(&t, &app.token)) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "open the address snap ui printed when it started (it has the access token)",
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let session = req
            .headers()
            .get(SESSION_HEADER)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !same(session, &app.session) {
            app.log("refused a request that changes something without the session header");
            return refuse(
                StatusCode::FORBIDDEN,
                "this request did not come from snap's own page",
            );
        }
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|h| h.to_str().ok());
        if let Some(o) = origin
            && !o
                .strip_prefix("http://")
                .is_some_and(|h| host_allowed(&app, h))
        {
            app.log(&format!("refused a request from origin {o:?}"));
            return refuse(StatusCode::FORBIDDEN, "this request came from another site");
        }
    }
    hardened(next.run(req).await)
}

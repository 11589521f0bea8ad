//! What every request passes before it reaches a page: the Host header
//! must name this server (a rebound DNS name of an attacker's site does
//! not), the token must come with it (in the printed URL once, then in an
//! HttpOnly, SameSite=Strict cookie of the page's own host name, which no
//! other server on this computer receives: see [`super::app`]'s
//! `own_name`), and a request that changes anything must carry the
//! session header, which a form on another site cannot send. Refusals say
//! what is wrong and carry no data, nor the page's own name.

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
/// port, and on an address of another machine (`--listen`), where the
/// page has no name of its own, one name let a second `snap ui` there
/// overwrite the first's token.
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

/// What a request's Host header names.
#[derive(Debug, PartialEq)]
enum Named {
    /// The page's own name (on this computer), or the address it listens
    /// on (on another).
    Page,
    /// This computer's loopback address or `localhost`, with this port: the
    /// same server, but a host whose cookies every other local server gets.
    Loopback,
    Other,
}

fn named(app: &App, host: &str) -> Named {
    let host = host.to_ascii_lowercase();
    if host == app.host() {
        return Named::Page;
    }
    let port = app.addr.port();
    if app.own_name.is_some()
        && [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
        ]
        .contains(&host)
    {
        return Named::Loopback;
    }
    Named::Other
}

/// Where the token's address goes once the token is in a cookie: its own
/// path, if a browser reading that path as a `Location` stays on this
/// server, else `/`. Read by the URL standard's rules (the `url` crate), as
/// the browser reads it: `/\host/` and a path with a tab or newline in
/// its first slashes are `//host/`, another server.
fn same_server_path(path: &str) -> String {
    let here = url::Url::parse("http://snap.invalid/").expect("a valid URL");
    match here.join(path) {
        // `//x` is a path here, and another server once in `Location`.
        Ok(u) if u.origin() == here.origin() && !u.path().starts_with("//") => u.path().to_string(),
        _ => "/".to_string(),
    }
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
    match named(&app, host) {
        Named::Page => {}
        // Sent on to the page's name with the token; without the token,
        // refused without saying the name (a local server that learnt it
        // could have the browser visit it under that name, and get the
        // cookie).
        Named::Loopback => {
            if query_token(&req).is_some_and(|t| same(&t, &app.token)) {
                return hardened(
                    (StatusCode::SEE_OTHER, [(header::LOCATION, app.url())]).into_response(),
                );
            }
            return refuse(
                StatusCode::FORBIDDEN,
                "open the address snap ui printed when it started: this server answers to that \
                 name only",
            );
        }
        Named::Other => {
            app.log(&format!("refused a request for host {host:?}"));
            return refuse(
                StatusCode::FORBIDDEN,
                "this server answers only to the address snap ui printed",
            );
        }
    }
    if let Some(t) = query_token(&req) {
        if !same(&t, &app.token) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "the token in this address is not this server's: open the address snap ui printed",
            );
        }
        // Into a cookie, and out of the address bar and history; to a
        // path of this server only.
        return hardened(
            (
                StatusCode::SEE_OTHER,
                [
                    (header::SET_COOKIE, token_cookie(&app)),
                    (header::LOCATION, same_server_path(req.uri().path())),
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
                .is_some_and(|h| named(&app, h) == Named::Page)
        {
            app.log(&format!("refused a request from origin {o:?}"));
            return refuse(StatusCode::FORBIDDEN, "this request came from another site");
        }
    }
    hardened(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::same_server_path;

    #[test]
    fn the_token_address_redirects_to_a_path_of_this_server_only() {
        for (path, want) in [
            ("/manage", "/manage"),
            ("/browse/a%20b", "/browse/a%20b"),
            ("//evil.example/", "/"),
            ("/\\evil.example/", "/"),
            ("/\\/evil.example/", "/"),
            ("/\t/evil.example/", "/"),
            ("/\n/evil.example/", "/"),
            ("/.//evil.example/", "/"),
            // Encoded, they stay a path: a browser does not decode them.
            ("/%5Cevil.example/", "/%5Cevil.example/"),
            ("/%2F/evil.example/", "/%2F/evil.example/"),
            ("/%2F%2Fevil.example", "/%2F%2Fevil.example"),
        ] {
            assert_eq!(same_server_path(path), want, "{path:?}");
        }
    }
}

//! A fault-injecting HTTP proxy on 127.0.0.1 between snap and Garage: it
//! drops connections, answers 500 and 503, and delays responses, on a fixed
//! schedule so that every run injects the same faults. It can also imitate
//! a provider's quirk ([`Quirk`]) in front of Garage, which has none of
//! them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Unavailable,
    InternalError,
    Drop,
    Slow,
}

/// What a provider does differently from Garage, answered by the proxy
/// itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quirk {
    None,
    /// No multi-object delete (`POST ?delete`): this status (501 or 405).
    NoBulkDelete(u16),
    /// B2: `If-None-Match` on a PUT is 501 NotImplemented.
    NoConditionalCreate,
    /// A multi-object delete's answer names a key that was not sent.
    BulkAnswerNamesAnotherKey,
    /// A multi-object delete answers NoSuchKey for every key.
    BulkNoSuchKey,
    /// Listings in ListObjectsV1's shape (Tencent COS, some gateways): a
    /// page of 1,000 with no continuation token.
    ListV1,
    /// The same, and `start-after` is ignored.
    ListV1IgnoresStartAfter,
    /// ListObjectsV1 pages of this many keys (a provider paging by 100).
    ListV1Page(usize),
    /// A multi-object delete answers 200, deleting none and naming no key
    /// it was sent (object_store takes every key for deleted then).
    BulkAnswersNothing,
    /// What stricter providers refuse, so that an object_store upgrade
    /// that starts sending it cannot pass unnoticed: `x-amz-checksum-*`
    /// headers, `aws-chunked` bodies, a multi-object delete without
    /// `Content-MD5`.
    Strict,
    /// R2: a multipart upload whose parts, but the last, differ in size is
    /// refused when completed.
    EqualParts,
    /// Huawei OBS and others: a request without the bucket in the host
    /// name is refused with PathStyleDomainForbidden.
    VirtualOnly,
    /// A key whose policy denies DeleteObject: every DELETE is 403
    /// AccessDenied, and a multi-object delete names every key as denied,
    /// as AWS answers both.
    DenyDelete,
    /// A provider that says its bucket has Object Lock but refuses the
    /// retention headers on a PUT (400 InvalidRequest).
    RefusesLockHeaders,
    /// A broken or hostile server: every ListObjectsV2 page says there is
    /// more, with the same continuation token, and a request with that
    /// token gets the first page again, for ever.
    ListRepeatsToken,
}

pub struct FaultProxy {
    pub endpoint: String,
    /// Every how many requests a fault is injected (0: none).
    every: Arc<AtomicU64>,
    /// While set, every request is cut off after its head: a server that is gone.
    down: Arc<AtomicBool>,
    pub requests: Arc<AtomicU64>,
    pub faults: Arc<AtomicU64>,
    /// The request line (`GET /bucket/key?query HTTP/1.1`) of every
    /// request forwarded, so tests can assert what snap asked for.
    pub log: Arc<Mutex<Vec<String>>>,
    quirk: Arc<Mutex<Quirk>>,
}

const SCHEDULE: [Fault; 4] = [
    Fault::Unavailable,
    Fault::Drop,
    Fault::InternalError,
    Fault::Slow,
];

impl FaultProxy {
    pub fn start(upstream: &str, every: u64) -> FaultProxy {
        let upstream: SocketAddr = upstream.trim_start_matches("http://").parse().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let proxy = FaultProxy {
            endpoint,
            every: Arc::new(AtomicU64::new(every)),
            down: Arc::new(AtomicBool::new(false)),
            requests: Arc::new(AtomicU64::new(0)),
            faults: Arc::new(AtomicU64::new(0)),
            log: Arc::new(Mutex::new(Vec::new())),
            quirk: Arc::new(Mutex::new(Quirk::None)),
        };
        let (every, down, requests, faults, log, quirk) = (
            proxy.every.clone(),
            proxy.down.clone(),
            proxy.requests.clone(),
            proxy.faults.clone(),
            proxy.log.clone(),
            proxy.quirk.clone(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                if down.load(Ordering::SeqCst) {
                    std::thread::spawn(move || hang_up(conn));
                    continue;
                }
                let n = requests.fetch_add(1, Ordering::SeqCst) + 1;
                let e = every.load(Ordering::SeqCst);
                let fault = (e > 0 && n % e == 0).then(|| SCHEDULE[((n / e) % 4) as usize]);
                if fault.is_some() {
                    faults.fetch_add(1, Ordering::SeqCst);
                }
                let log = log.clone();
                let quirk = *quirk.lock().unwrap();
                std::thread::spawn(move || {
                    let _ = serve(conn, upstream, fault, quirk, &log);
                });
            }
        });
        proxy
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn set_quirk(&self, quirk: Quirk) {
        *self.quirk.lock().unwrap() = quirk;
    }

    pub fn set_every(&self, every: u64) {
        self.every.store(every, Ordering::SeqCst);
    }

    /// Empties the log and returns what it held.
    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

/// What a server that is going away does to a request: it takes the head,
/// then closes with the body unread, so the client's next write fails
/// (EPIPE) in the middle of its upload.
fn hang_up(conn: TcpStream) {
    let mut reader = BufReader::new(conn);
    let _ = read_head(&mut reader);
    std::thread::sleep(Duration::from_millis(100));
}

/// Reads an HTTP/1.1 head up to the blank line.
fn read_head(r: &mut BufReader<TcpStream>) -> std::io::Result<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end().to_string();
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line);
    }
}

fn content_length(head: &[String]) -> usize {
    head.iter()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// One request per connection: the head is rewritten with
/// `Connection: close` both ways, so neither side reuses the connection.
fn rewrite(head: &[String]) -> Vec<u8> {
    let mut out = String::new();
    for (i, l) in head.iter().enumerate() {
        if i > 0
            && l.split_once(':')
                .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"))
        {
            continue;
        }
        out.push_str(l);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

/// The proxy's own answer to a request, when the quirk decides it.
fn quirk_answer(quirk: Quirk, head: &[String], body: &[u8]) -> Option<String> {
    let line = head.first()?;
    let bulk_delete = line.starts_with("POST ") && line.contains("?delete");
    let xml = |status: &str, code: &str, message: &str| {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        );
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let deleted = |entries: String| {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteResult>{entries}</DeleteResult>"
        );
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let has = |prefix: &str| {
        head.iter()
            .any(|h| h.to_ascii_lowercase().starts_with(prefix))
    };
    if quirk == Quirk::Strict {
        let refused = if has("x-amz-checksum-") || has("x-amz-sdk-checksum-algorithm") {
            Some("a checksum header")
        } else if has("content-encoding: aws-chunked") || has("x-amz-content-sha256: streaming-") {
            Some("an aws-chunked body")
        } else if bulk_delete && !has("content-md5:") {
            Some("a multi-object delete without Content-MD5")
        } else {
            None
        };
        return refused.map(|what| {
            xml(
                "400 Bad Request",
                "InvalidRequest",
                &format!("strict provider: {what}"),
            )
        });
    }
    if quirk == Quirk::EqualParts {
        return multipart_rule(line, body.len());
    }
    if quirk == Quirk::VirtualOnly && !has(&format!("host: {}.", super::garage::BUCKET)) {
        return Some(xml(
            "403 Forbidden",
            "PathStyleDomainForbidden",
            "The path style domain is forbidden, please use virtual hosted style",
        ));
    }
    match quirk {
        Quirk::RefusesLockHeaders if line.starts_with("GET ") && line.contains("?object-lock") => {
            let body = "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled>\
                        </ObjectLockConfiguration>";
            Some(format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            ))
        }
        Quirk::RefusesLockHeaders if line.starts_with("PUT ") && has("x-amz-object-lock-mode") => {
            Some(xml(
                "400 Bad Request",
                "InvalidRequest",
                "Object Lock headers are not supported by this storage class",
            ))
        }
        Quirk::DenyDelete if line.starts_with("DELETE ") => {
            Some(xml("403 Forbidden", "AccessDenied", "Access Denied"))
        }
        Quirk::DenyDelete if bulk_delete => {
            let text = String::from_utf8_lossy(body);
            let keys = text
                .split("<Key>")
                .skip(1)
                .filter_map(|k| k.split("</Key>").next())
                .map(|k| {
                    format!(
                        "<Error><Key>{k}</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
                    )
                })
                .collect();
            Some(deleted(keys))
        }
        Quirk::NoBulkDelete(501) if bulk_delete => Some(xml(
            "501 Not Implemented",
            "NotImplemented",
            "A header you provided implies functionality that is not implemented",
        )),
        Quirk::NoBulkDelete(_) if bulk_delete => Some(xml(
            "405 Method Not Allowed",
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
        )),
        Quirk::NoConditionalCreate
            if line.starts_with("PUT ")
                && head.iter().any(|h| h.to_ascii_lowercase().starts_with("if-none-match:")) =>
        {
            Some(xml(
                "501 Not Implemented",
                "NotImplemented",
                "A header you provided implies functionality that is not implemented",
            ))
        }
        Quirk::BulkAnswerNamesAnotherKey if bulk_delete => Some(deleted(
            "<Error><Key>a-key-nobody-sent</Key><Code>InternalError</Code><Message>x</Message></Error>"
                .into(),
        )),
        Quirk::BulkAnswersNothing if bulk_delete => Some(deleted(
            "<Deleted><Key>a-key-nobody-sent</Key></Deleted>".into(),
        )),
        Quirk::BulkNoSuchKey if bulk_delete => {
            let text = String::from_utf8_lossy(body);
            let keys = text
                .split("<Key>")
                .skip(1)
                .filter_map(|k| k.split("</Key>").next())
                .map(|k| {
                    format!(
                        "<Error><Key>{k}</Key><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>"
                    )
                })
                .collect();
            Some(deleted(keys))
        }
        _ => None,
    }
}

fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    fault: Option<Fault>,
    quirk: Quirk,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let head = read_head(&mut reader)?;
    if fault.is_none()
        && let Some(line) = head.first()
    {
        log.lock().unwrap().push(line.clone());
    }
    let mut body = vec![0u8; content_length(&head)];
    reader.read_exact(&mut body)?;
    let mut client = client;
    if let Some(answer) = quirk_answer(quirk, &head, &body) {
        client.write_all(answer.as_bytes())?;
        return Ok(());
    }
    match fault {
        Some(Fault::Drop) => return Ok(()),
        Some(Fault::Unavailable) => {
            client.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
            return Ok(());
        }
        Some(Fault::InternalError) => {
            client.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
            return Ok(());
        }
        Some(Fault::Slow) => std::thread::sleep(Duration::from_millis(1500)),
        None => {}
    }
    let is_list = head
        .first()
        .is_some_and(|l| l.starts_with("GET ") && l.contains("list-type=2"));
    if quirk == Quirk::ListRepeatsToken && is_list {
        static PAGE: Mutex<Option<Vec<u8>>> = Mutex::new(None);
        let again = head[0].contains("continuation-token=");
        if again && let Some(answer) = PAGE.lock().unwrap().clone() {
            client.write_all(&answer)?;
            return Ok(());
        }
        let (mut up_reader, response_head) = forward(upstream, &head, &body)?;
        let body = read_body(&mut up_reader, &response_head)?;
        let text = String::from_utf8_lossy(&body)
            .replace(
                "<IsTruncated>false</IsTruncated>",
                "<IsTruncated>true</IsTruncated>",
            )
            .replace(
                "</ListBucketResult>",
                "<NextContinuationToken>again</NextContinuationToken></ListBucketResult>",
            );
        let answer = with_body(&response_head, &text);
        if text.contains("<Key>") {
            *PAGE.lock().unwrap() = Some(answer.clone());
        }
        client.write_all(&answer)?;
        return Ok(());
    }
    let listing = matches!(
        quirk,
        Quirk::ListV1 | Quirk::ListV1IgnoresStartAfter | Quirk::ListV1Page(_)
    ) && is_list;
    // The first page of each listing, answered again to a request that
    // asks to start after a key (a request cannot be altered: it is
    // signed).
    static FIRST_PAGES: Mutex<Vec<(String, Vec<u8>)>> = Mutex::new(Vec::new());
    let page_key = drop_query_param(&head[0], "start-after");
    if listing && quirk == Quirk::ListV1IgnoresStartAfter && page_key != head[0] {
        let pages = FIRST_PAGES.lock().unwrap();
        if let Some((_, answer)) = pages.iter().find(|(k, _)| *k == page_key) {
            client.write_all(answer)?;
            return Ok(());
        }
    }
    let (mut up_reader, response_head) = forward(upstream, &head, &body)?;
    if listing {
        // The V2 answer, less its continuation token: a V1-shaped page.
        let body = read_body(&mut up_reader, &response_head)?;
        let text = String::from_utf8_lossy(&body);
        let mut cut = match (
            text.find("<NextContinuationToken>"),
            text.find("</NextContinuationToken>"),
        ) {
            (Some(a), Some(b)) => format!(
                "{}{}",
                &text[..a],
                &text[b + "</NextContinuationToken>".len()..]
            ),
            _ => text.into_owned(),
        };
        if let Quirk::ListV1Page(n) = quirk {
            // Keep the first n entries: from the (n+1)th <Contents> to the
            // last </Contents> goes.
            let starts: Vec<usize> = cut.match_indices("<Contents>").map(|(i, _)| i).collect();
            if let (Some(&from), Some(end)) = (starts.get(n), cut.rfind("</Contents>")) {
                cut.replace_range(from..end + "</Contents>".len(), "");
            }
        }
        let answer = with_body(&response_head, &cut);
        client.write_all(&answer)?;
        if page_key == head[0] {
            FIRST_PAGES.lock().unwrap().push((page_key, answer));
        }
        return Ok(());
    }
    client.write_all(&rewrite(&response_head))?;
    std::io::copy(&mut up_reader, &mut client)?;
    Ok(())
}

/// Sends the request on to Garage; returns the reader of its answer, past
/// the answer's head, and that head.
fn forward(
    upstream: SocketAddr,
    head: &[String],
    body: &[u8],
) -> std::io::Result<(BufReader<TcpStream>, Vec<String>)> {
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(&rewrite(head))?;
    up.write_all(body)?;
    let mut up_reader = BufReader::new(up);
    let response_head = read_head(&mut up_reader)?;
    Ok((up_reader, response_head))
}

/// An upstream answer's head with a body of the proxy's own in place of
/// the upstream one.
fn with_body(response_head: &[String], body: &str) -> Vec<u8> {
    let kept: Vec<String> = response_head
        .iter()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            !l.starts_with("content-length:") && !l.starts_with("transfer-encoding:")
        })
        .cloned()
        .chain([format!("Content-Length: {}", body.len())])
        .collect();
    let mut answer = rewrite(&kept);
    answer.extend_from_slice(body.as_bytes());
    answer
}

/// R2's rule on multipart uploads: every part but the last has one size.
/// Parts are noted as they pass; the completion is refused if they break
/// the rule.
fn multipart_rule(line: &str, size: usize) -> Option<String> {
    static PARTS: Mutex<Vec<(String, u32, usize)>> = Mutex::new(Vec::new());
    let param = |name: &str| {
        line.split(['?', '&', ' '])
            .find_map(|p| p.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
    };
    let upload = param("uploadId")?;
    if line.starts_with("PUT ") {
        let n = param("partNumber")?.parse().ok()?;
        PARTS.lock().unwrap().push((upload, n, size));
        return None;
    }
    if !line.starts_with("POST ") {
        return None;
    }
    let mut sizes: Vec<(u32, usize)> = PARTS
        .lock()
        .unwrap()
        .iter()
        .filter(|(u, _, _)| *u == upload)
        .map(|(_, n, s)| (*n, *s))
        .collect();
    sizes.sort();
    let body_sizes: Vec<usize> = sizes.iter().map(|(_, s)| *s).collect();
    let (last, rest) = body_sizes.split_last()?;
    let equal = rest.windows(2).all(|w| w[0] == w[1]) && rest.first().is_none_or(|f| last <= f);
    (!equal).then(|| {
        let body = "<Error><Code>InvalidPart</Code><Message>All non-trailing parts must have the same length.</Message></Error>";
        format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    })
}

/// A response body, by its length or in chunks.
fn read_body(r: &mut BufReader<TcpStream>, head: &[String]) -> std::io::Result<Vec<u8>> {
    let chunked = head.iter().any(|l| {
        l.to_ascii_lowercase()
            .replace(' ', "")
            .starts_with("transfer-encoding:chunked")
    });
    if !chunked {
        let mut body = vec![0u8; content_length(head)];
        r.read_exact(&mut body)?;
        return Ok(body);
    }
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        r.read_line(&mut size)?;
        let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
            .map_err(std::io::Error::other)?;
        let mut chunk = vec![0u8; n + 2];
        r.read_exact(&mut chunk)?;
        if n == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&chunk[..n]);
    }
}

/// A request line without one query parameter.
fn drop_query_param(line: &str, name: &str) -> String {
    let mut parts = line.splitn(3, ' ');
    let (method, target, version) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let Some((path, query)) = target.split_once('?') else {
        return line.to_string();
    };
    let query: Vec<&str> = query
        .split('&')
        .filter(|p| !p.starts_with(&format!("{name}=")))
        .collect();
    format!("{method} {path}?{} {version}", query.join("&"))
}

//! The S3 requests object_store does not make: Object Lock (the bucket's
//! configuration, retention headers on a PUT, PutObjectRetention, an
//! object's retain-until date) and versions (ListObjectVersions, deleting
//! one version). Each request is signed by object_store's own signer, the
//! one that signs every other request of the bucket, as a presigned URL
//! that binds the request's headers (`SignedUrlOptions`), and sent with
//! reqwest, which object_store already uses. No signer is written here.
//!
//! Everything read back is from untrusted storage: answers are read up to
//! [`MAX_ANSWER`] bytes, listings are bounded like every other listing
//! ([`super::MAX_LISTED`], [`super::MAX_CONTINUATIONS`]) and must move
//! forward, and dates that do not parse or fall outside what a timestamp
//! holds refuse the answer.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use md5::Digest as _;
use object_store::aws::AmazonS3;
use object_store::path::Path as StorePath;
use object_store::signer::{SignedUrlOptions, Signer};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::retention::{LockMode, Retention};

/// The most bytes of one answer read: a page of 1,000 versions is about
/// 400 KB; anything far larger is not an honest answer.
const MAX_ANSWER: usize = 8 * 1024 * 1024;
/// Keys per ListObjectVersions page, as the other listings ask.
const PAGE: &str = "1000";
/// How long a presigned request stays valid: it is sent at once.
const VALID_FOR: Duration = Duration::from_secs(15 * 60);

/// One version of an object, as ListObjectVersions lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectVersion {
    /// The key, as stored (root path included).
    pub key: String,
    pub version: String,
    pub modified_ns: i64,
    pub size: u64,
    /// A delete marker: the object was deleted at `modified_ns`.
    pub deleted: bool,
    /// The current version of its key, as the store says.
    pub latest: bool,
}

/// What a request to delete one version came to.
#[derive(Debug, PartialEq, Eq)]
pub enum VersionDelete {
    Deleted,
    /// Refused (403): the version is under retention, or the key may not
    /// delete. The provider's words.
    Refused(String),
}

/// What a locked PUT came to.
#[derive(Debug, PartialEq, Eq)]
pub enum LockedPut {
    Written,
    /// `If-None-Match: *` and the object exists.
    Exists,
    /// `If-None-Match: *` answered 501 (B2): nothing was written.
    ConditionRefused,
}

/// The bucket's own requests beyond object_store's.
pub(crate) struct S3Extra {
    signer: Arc<AmazonS3>,
    http: reqwest::Client,
    location: String,
}

/// One answer: status, headers, body (bounded).
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    /// The provider's code and message, for an error.
    fn said(&self) -> String {
        match super::s3_error_words(&String::from_utf8_lossy(&self.body)) {
            Some(words) => format!("{} {words}", self.status),
            None => self.status.to_string(),
        }
    }

    fn code_is(&self, code: &str) -> bool {
        String::from_utf8_lossy(&self.body).contains(&format!("<Code>{code}</Code>"))
    }
}

/// S3's form of a retain-until date.
pub(crate) fn s3_date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn mode_name(mode: LockMode) -> &'static str {
    match mode {
        LockMode::Governance => "GOVERNANCE",
        LockMode::Compliance => "COMPLIANCE",
    }
}

fn header(name: &'static str, value: &str) -> Result<(HeaderName, HeaderValue)> {
    let v = HeaderValue::from_str(value)
        .map_err(|_| Error::InvalidArgument(format!("{name}: {value:?} is not a header value")))?;
    Ok((HeaderName::from_static(name), v))
}

fn content_md5(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body))
}

/// A date from storage, as Unix nanoseconds; `None` when it does not parse
/// or falls outside what a timestamp holds.
fn parse_date(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()?
        .with_timezone(&Utc)
        .timestamp_nanos_opt()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VersionsPage {
    #[serde(default)]
    is_truncated: bool,
    #[serde(default)]
    next_key_marker: Option<String>,
    #[serde(default)]
    next_version_id_marker: Option<String>,
    #[serde(default, rename = "Version")]
    versions: Vec<Entry>,
    #[serde(default, rename = "DeleteMarker")]
    markers: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    key: String,
    version_id: String,
    last_modified: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    is_latest: bool,
}

/// How many times a failed request of [`S3Extra`] is sent again.
const RETRIES: u32 = 3;

impl S3Extra {
    pub(crate) fn new(
        signer: Arc<AmazonS3>,
        timeout: Duration,
        connect_timeout: Duration,
        location: String,
    ) -> Result<S3Extra> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(connect_timeout)
            .build()
            .map_err(|e| Error::Backend(format!("{location}: cannot start an HTTP client: {e}")))?;
        Ok(S3Extra {
            signer,
            http,
            location,
        })
    }

    /// Sends a request, signed with `headers` bound to the signature, and
    /// again (at most [`RETRIES`] more times, after 0.2, 0.4 and 0.8 s)
    /// when it fails on the way or the store answers 500, 502, 503 or 504,
    /// as object_store retries its own requests: one SlowDown once failed
    /// a whole backup under Object Lock. A conditional write is sent once:
    /// sent again after its answer was lost, it would find its own object.
    async fn send(
        &self,
        method: Method,
        path: &StorePath,
        query: &[(&str, &str)],
        headers: Vec<(HeaderName, HeaderValue)>,
        body: Bytes,
    ) -> Result<Answer> {
        let conditional = headers
            .iter()
            .any(|(k, _)| k == http::header::IF_NONE_MATCH);
        let mut tries = 0;
        loop {
            let answer = self
                .send_once(method.clone(), path, query, headers.clone(), body.clone())
                .await;
            let again = match &answer {
                Ok(a) => a.status.is_server_error() && a.status.as_u16() != 501,
                Err(_) => true,
            };
            if !again || conditional || tries == RETRIES {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(200 << tries)).await;
            tries += 1;
        }
    }

    async fn send_once(
        &self,
        method: Method,
        path: &StorePath,
        query: &[(&str, &str)],
        headers: Vec<(HeaderName, HeaderValue)>,
        body: Bytes,
    ) -> Result<Answer> {
        let mut opts = SignedUrlOptions::new().with_query(query.iter().copied());
        for (k, v) in &headers {
            opts = opts.with_signed_header(k.clone(), v.clone());
        }
        let url = self
            .signer
            .signed_url_opts(method.clone(), path, VALID_FOR, &opts)
            .await
            .map_err(|e| {
                Error::Backend(format!("{}: cannot sign a request: {e}", self.location))
            })?;
        let mut req = self.http.request(method, url);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        // Without the URL: a presigned one carries the credential and the
        // signature, which an error message must not show.
        let what = match path.as_ref() {
            "" => "the bucket",
            p => p,
        };
        let mut resp = req.body(body).send().await.map_err(|e| {
            Error::Backend(format!(
                "{}: {what}: {}",
                self.location,
                super::provider_answer(&e.without_url())
            ))
        })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| Error::Backend(format!("{}: {}", self.location, e.without_url())))?
        {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(Error::Backend(format!(
                    "{}: an answer about {} goes on past {MAX_ANSWER} bytes: the storage is not \
                     answering honestly, so nothing was done from it",
                    self.location,
                    path.as_ref()
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            headers,
            body: Bytes::from(body),
        })
    }

    /// Whether the bucket has Object Lock turned on
    /// (GetObjectLockConfiguration). A bucket that has none, or a provider
    /// without the request, is `false`; other failures are errors.
    pub(crate) async fn object_lock_enabled(&self) -> Result<bool> {
        let a = self
            .send(
                Method::GET,
                &StorePath::default(),
                &[("object-lock", "")],
                Vec::new(),
                Bytes::new(),
            )
            .await?;
        if a.status.is_success() {
            let text = String::from_utf8_lossy(&a.body);
            return Ok(text.contains("<ObjectLockEnabled>Enabled</ObjectLockEnabled>"));
        }
        if a.code_is("ObjectLockConfigurationNotFoundError")
            || a.status == StatusCode::NOT_IMPLEMENTED
            || a.code_is("NotImplemented")
        {
            return Ok(false);
        }
        Err(Error::ProviderRefused(format!(
            "{}: asking for the bucket's Object Lock configuration, the provider answered {}",
            self.location,
            a.said()
        )))
    }

    /// Writes an object with a Content-MD5, and with retention until a
    /// date when `lock` says so (S3 requires a Content-MD5 with retention
    /// headers, and on every PUT to a bucket with a default retention). A
    /// provider that refuses the headers gives an error that names its
    /// answer.
    pub(crate) async fn put(
        &self,
        path: &StorePath,
        body: Bytes,
        lock: Option<(Retention, DateTime<Utc>)>,
        only_new: bool,
    ) -> Result<LockedPut> {
        let mut headers = vec![header("content-md5", &content_md5(&body))?];
        if let Some((retention, until)) = lock {
            headers.push(header("x-amz-object-lock-mode", mode_name(retention.mode))?);
            headers.push(header(
                "x-amz-object-lock-retain-until-date",
                &s3_date(until),
            )?);
        }
        if only_new {
            headers.push(header("if-none-match", "*")?);
        }
        let a = self.send(Method::PUT, path, &[], headers, body).await?;
        if a.status.is_success() {
            return Ok(LockedPut::Written);
        }
        if only_new && a.status == StatusCode::PRECONDITION_FAILED {
            return Ok(LockedPut::Exists);
        }
        if only_new && a.status == StatusCode::NOT_IMPLEMENTED {
            return Ok(LockedPut::ConditionRefused);
        }
        let how = match lock {
            Some((r, until)) => format!(
                " with Object Lock retention ({} until {})",
                mode_name(r.mode),
                s3_date(until)
            ),
            None => String::new(),
        };
        Err(Error::ProviderRefused(format!(
            "{}: writing {}{how}, the provider answered {}",
            self.location,
            path.as_ref(),
            a.said()
        )))
    }

    /// Sets an object's retention to `until` (PutObjectRetention). Only a
    /// longer retention is ever asked for, which both modes allow.
    pub(crate) async fn put_retention(
        &self,
        path: &StorePath,
        mode: LockMode,
        until: DateTime<Utc>,
    ) -> Result<()> {
        let xml = format!(
            "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{}</Mode>\
             <RetainUntilDate>{}</RetainUntilDate></Retention>",
            mode_name(mode),
            s3_date(until)
        );
        let body = Bytes::from(xml);
        let headers = vec![header("content-md5", &content_md5(&body))?];
        let a = self
            .send(Method::PUT, path, &[("retention", "")], headers, body)
            .await?;
        if a.status.is_success() {
            return Ok(());
        }
        Err(Error::ProviderRefused(format!(
            "{}: extending the retention of {} to {}, the provider answered {}",
            self.location,
            path.as_ref(),
            s3_date(until),
            a.said()
        )))
    }

    /// An object's retain-until date (its HEAD's
    /// `x-amz-object-lock-retain-until-date`), `None` when it has none or
    /// does not exist.
    pub(crate) async fn retained_until(&self, path: &StorePath) -> Result<Option<i64>> {
        let a = self
            .send(Method::HEAD, path, &[], Vec::new(), Bytes::new())
            .await?;
        if a.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !a.status.is_success() {
            return Err(Error::ProviderRefused(format!(
                "{}: asking for the retention of {}, the provider answered {}",
                self.location,
                path.as_ref(),
                a.said()
            )));
        }
        Ok(a.headers
            .get("x-amz-object-lock-retain-until-date")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_date))
    }

    /// Deletes one version of an object. A missing version is deleted.
    pub(crate) async fn delete_version(
        &self,
        path: &StorePath,
        version: &str,
    ) -> Result<VersionDelete> {
        let a = self
            .send(
                Method::DELETE,
                path,
                &[("versionId", version)],
                Vec::new(),
                Bytes::new(),
            )
            .await?;
        if a.status.is_success() || a.status == StatusCode::NOT_FOUND {
            return Ok(VersionDelete::Deleted);
        }
        if a.status == StatusCode::FORBIDDEN {
            return Ok(VersionDelete::Refused(a.said()));
        }
        Err(Error::ProviderRefused(format!(
            "{}: deleting version {version} of {}, the provider answered {}",
            self.location,
            path.as_ref(),
            a.said()
        )))
    }

    /// Every version and delete marker whose key starts with `prefix` (a
    /// stored key prefix, root path included), page by page. A page must
    /// move on from the one before and hold only keys under the prefix;
    /// at most `max` entries in all.
    pub(crate) async fn list_versions(
        &self,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<ObjectVersion>> {
        let refuse = |why: String| {
            Error::Backend(format!(
                "{}: the listing of versions under {prefix} {why}: the storage is not listing \
                 honestly, so nothing was done from it",
                self.location
            ))
        };
        let mut out: Vec<ObjectVersion> = Vec::new();
        let mut marker: Option<(String, String)> = None;
        let mut seen: std::collections::HashSet<(String, String)> = Default::default();
        for _ in 0..super::MAX_CONTINUATIONS {
            let mut query = vec![("versions", ""), ("prefix", prefix), ("max-keys", PAGE)];
            if let Some((k, v)) = &marker {
                query.push(("key-marker", k));
                query.push(("version-id-marker", v));
            }
            let a = self
                .send(
                    Method::GET,
                    &StorePath::default(),
                    &query,
                    Vec::new(),
                    Bytes::new(),
                )
                .await?;
            if !a.status.is_success() {
                return Err(Error::ProviderRefused(format!(
                    "{}: listing the versions under {prefix}, the provider answered {} (a \
                     provider without versions cannot read the repository as it was)",
                    self.location,
                    a.said()
                )));
            }
            match read_page(&a.body, prefix, marker.as_ref(), max, &mut out).map_err(refuse)? {
                // Version ids of one key come in no order, so a pair can
                // only be checked against every pair before: a bucket that
                // cycled through a key's ids would otherwise be read for
                // every page of the bound.
                Some(next) if !seen.insert(next.clone()) => {
                    return Err(refuse(format!(
                        "comes back to {:?} (a continuation that starts over)",
                        next.0
                    )));
                }
                Some(next) => marker = Some(next),
                None => return Ok(out),
            }
        }
        Err(refuse("never ends".into()))
    }
}

/// One ListObjectVersions page, added to `out`: the marker to continue
/// from, or `None` at the end. Refused (the reason, in words) when it is
/// not text or not the answer's shape, names a key outside `prefix`,
/// carries a date that does not parse, takes `out` past `max`, or does
/// not move on from `marker`.
fn read_page(
    body: &[u8],
    prefix: &str,
    marker: Option<&(String, String)>,
    max: usize,
    out: &mut Vec<ObjectVersion>,
) -> std::result::Result<Option<(String, String)>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "is not text".to_string())?;
    let page: VersionsPage =
        quick_xml::de::from_str(text).map_err(|e| format!("cannot be read ({e})"))?;
    let entries = page
        .versions
        .into_iter()
        .map(|e| (e, false))
        .chain(page.markers.into_iter().map(|e| (e, true)));
    for (e, deleted) in entries {
        if !e.key.starts_with(prefix) {
            return Err(format!("names {:?}, outside it", e.key));
        }
        let modified_ns =
            parse_date(&e.last_modified).ok_or_else(|| format!("dates {:?} impossibly", e.key))?;
        if out.len() >= max {
            return Err(format!("goes on past {max} entries"));
        }
        out.push(ObjectVersion {
            key: e.key,
            version: e.version_id,
            modified_ns,
            size: e.size,
            deleted,
            latest: e.is_latest,
        });
    }
    if !page.is_truncated {
        return Ok(None);
    }
    let next = match (page.next_key_marker, page.next_version_id_marker) {
        (Some(k), v) => (k, v.unwrap_or_default()),
        (None, _) => return Err("says there is more but not where".into()),
    };
    // Keys come in order; version ids within a key in no order.
    if marker.is_some_and(|m| next.0 < m.0 || next == *m) {
        return Err(format!(
            "comes back to {:?} (a continuation that starts over)",
            next.0
        ));
    }
    Ok(Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(truncated: bool, next: Option<(&str, &str)>, entries: &str) -> String {
        let next = next
            .map(|(k, v)| {
                format!(
                    "<NextKeyMarker>{k}</NextKeyMarker><NextVersionIdMarker>{v}</NextVersionIdMarker>"
                )
            })
            .unwrap_or_default();
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListVersionsResult>\
             <IsTruncated>{truncated}</IsTruncated>{next}{entries}</ListVersionsResult>"
        )
    }

    fn version(key: &str, id: &str, date: &str) -> String {
        format!(
            "<Version><Key>{key}</Key><VersionId>{id}</VersionId><IsLatest>true</IsLatest>\
             <LastModified>{date}</LastModified><Size>5</Size></Version>"
        )
    }

    fn marker(key: &str, id: &str, date: &str) -> String {
        format!(
            "<DeleteMarker><Key>{key}</Key><VersionId>{id}</VersionId><IsLatest>false</IsLatest>\
             <LastModified>{date}</LastModified></DeleteMarker>"
        )
    }

    const DAY: &str = "2026-12-03T17:00:00.000Z";

    fn read(body: &str, marker: Option<(&str, &str)>, max: usize) -> Result2 {
        let marker = marker.map(|(k, v)| (k.to_string(), v.to_string()));
        let mut out = Vec::new();
        read_page(body.as_bytes(), "r/", marker.as_ref(), max, &mut out).map(|n| (n, out))
    }

    type Result2 = std::result::Result<(Option<(String, String)>, Vec<ObjectVersion>), String>;

    #[test]
    fn an_honest_page_with_versions_and_markers_interleaved() {
        let entries =
            version("r/a", "1", DAY) + &marker("r/a", "2", DAY) + &version("r/b", "3", DAY);
        let (next, out) = read(&page(true, Some(("r/b", "3")), &entries), None, 10).unwrap();
        assert_eq!(next, Some(("r/b".to_string(), "3".to_string())));
        assert_eq!(out.len(), 3);
        assert_eq!(out.iter().filter(|v| v.deleted).count(), 1);
        assert!(
            out.iter()
                .all(|v| v.modified_ns == parse_date(DAY).unwrap())
        );
        let (next, out) = read(&page(false, None, ""), None, 10).unwrap();
        assert!(next.is_none() && out.is_empty());
    }

    /// What a hostile or broken store may answer is refused, never
    /// followed or trusted.
    #[test]
    fn hostile_pages_are_refused() {
        let refused = |body: String, marker: Option<(&str, &str)>, max: usize| {
            read(&body, marker, max).unwrap_err()
        };
        // A key outside the repository's root.
        let e = refused(page(false, None, &version("other/x", "1", DAY)), None, 10);
        assert!(e.contains("outside"), "{e}");
        // Dates no timestamp holds, or none at all.
        for date in ["+275760-09-13T00:00:00Z", "yesterday", "", "9999999999"] {
            let e = refused(page(false, None, &version("r/x", "1", date)), None, 10);
            assert!(
                e.contains("impossibly") || e.contains("cannot be read"),
                "{date}: {e}"
            );
        }
        // More entries than the bound, in one page.
        let many: String = (0..5)
            .map(|i| version(&format!("r/{i}"), "1", DAY))
            .collect();
        let e = refused(page(false, None, &many), None, 4);
        assert!(e.contains("past 4"), "{e}");
        // A continuation that starts over, or goes back.
        let e = refused(page(true, Some(("r/a", "1")), ""), Some(("r/a", "1")), 10);
        assert!(e.contains("starts over"), "{e}");
        let e = refused(page(true, Some(("r/a", "9")), ""), Some(("r/b", "1")), 10);
        assert!(e.contains("starts over"), "{e}");
        // More, but not where.
        let e = refused(page(true, None, ""), None, 10);
        assert!(e.contains("not where"), "{e}");
        // Not the answer's shape, or not text.
        assert!(refused("<html>".into(), None, 10).contains("cannot be read"));
        assert!(read_page(&[0xff, 0xfe], "r/", None, 10, &mut Vec::new()).is_err());
    }
}

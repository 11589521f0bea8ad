//! S3-compatible buckets through object_store's AmazonS3, configured from
//! the settings every provider's console shows: endpoint, region, bucket,
//! access key id, secret access key and an optional root path.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::{BackoffConfig, ClientOptions, RetryConfig};

use super::StoreBackend;
use crate::error::{Error, Result};

/// How the bucket appears in request URLs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Addressing {
    /// Virtual-hosted for providers that require it, path style otherwise.
    #[default]
    Auto,
    /// `https://endpoint/bucket/key`
    Path,
    /// `https://bucket.endpoint/key`
    Virtual,
}

impl std::str::FromStr for Addressing {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Addressing::Auto),
            "path" => Ok(Addressing::Path),
            "virtual" => Ok(Addressing::Virtual),
            _ => Err(format!(
                "{s:?} is not an addressing style (auto, path or virtual)"
            )),
        }
    }
}

/// Providers whose endpoints only answer virtual-hosted requests: Alibaba
/// OSS, Tencent COS, Volcano Engine and BytePlus TOS, Huawei OBS (which
/// answers a path-style PUT with a misleading 404 NoSuchKey) and AWS.
const VIRTUAL_ONLY: &[&str] = &[
    "aliyuncs.com",
    "myqcloud.com",
    "volces.com",
    "bytepluses.com",
    "myhuaweicloud.com",
    "amazonaws.com",
];

/// Other providers whose endpoint hosts have a known shape. With
/// [`VIRTUAL_ONLY`], the hosts in front of which a bucket label can be told
/// apart, and from which a region can be read.
const PATH_STYLE_PROVIDERS: &[&str] = &[
    "backblazeb2.com",
    "wasabisys.com",
    "r2.cloudflarestorage.com",
];

fn on_domain(host: &str, domain: &str) -> bool {
    host == domain || host.ends_with(&format!(".{domain}"))
}

/// The known provider domain `host` is on, if any.
fn known_provider(host: &str) -> Option<&'static str> {
    VIRTUAL_ONLY
        .iter()
        .chain(PATH_STYLE_PROVIDERS)
        .find(|d| on_domain(host, d))
        .copied()
}

/// The first label of a provider's service host (`oss-cn-hangzhou`, `s3`,
/// `cos`, `tos-s3-cn-beijing`, `obs`), as opposed to a bucket's.
fn is_service_label(label: &str) -> bool {
    label == "s3"
        || label.starts_with("s3-")
        || label.starts_with("oss-")
        || label == "cos"
        || label.starts_with("tos-")
        || label == "obs"
}

/// The bucket label in front of a known provider's service host, as a
/// console's "bucket domain" shows it (`mybucket.oss-cn-hangzhou.aliyuncs.com`,
/// `b-1250000000.cos.ap-guangzhou.myqcloud.com`).
/// The bucket's own name counts even where it looks like a service label
/// (a bucket called `oss-backup`). AWS PrivateLink and access-point hosts
/// (`vpce-….s3.REGION.vpce.amazonaws.com`) carry no bucket.
fn bucket_label<'h>(host: &'h str, bucket: &str) -> Option<&'h str> {
    known_provider(host)?;
    if host
        .split('.')
        .any(|l| l == "vpce" || l.starts_with("s3-accesspoint"))
    {
        return None;
    }
    let (first, rest) = host.split_once('.')?;
    let next = rest.split('.').next()?;
    let named = first.eq_ignore_ascii_case(bucket) || !is_service_label(first);
    (is_service_label(next) && named && !first.is_empty()).then_some(first)
}

/// The region a known provider's host names: `oss-cn-hangzhou.aliyuncs.com`
/// is `cn-hangzhou`, `s3.eu-west-3.amazonaws.com` is `eu-west-3`, R2 is
/// `auto`.
fn region_from_host(host: &str) -> Option<String> {
    let provider = known_provider(host)?;
    if provider == "r2.cloudflarestorage.com" {
        return Some("auto".into());
    }
    let labels: Vec<&str> = host
        .strip_suffix(provider)?
        .trim_end_matches('.')
        .split('.')
        .collect();
    let region = match provider {
        "aliyuncs.com" => labels
            .iter()
            .find_map(|l| l.strip_prefix("oss-"))
            .map(|r| r.trim_end_matches("-internal")),
        "volces.com" | "bytepluses.com" => labels
            .iter()
            .find_map(|l| l.strip_prefix("tos-s3-").or_else(|| l.strip_prefix("tos-"))),
        // cos.REGION, s3.REGION, obs.REGION, s3.dualstack.REGION; s3-REGION.
        _ => {
            let i = labels.iter().position(|l| is_service_label(l))?;
            let mut after = labels[i + 1..]
                .iter()
                .filter(|l| !is_service_label(l) && **l != "dualstack");
            after
                .next()
                .copied()
                .or_else(|| labels[i].strip_prefix("s3-"))
        }
    }?;
    let plausible = !region.is_empty()
        && region.len() <= 32
        && region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !matches!(region, "accelerate" | "accelerate-overseas" | "external-1");
    plausible.then(|| region.to_string())
}

#[derive(Clone, Debug)]
pub struct S3Options {
    pub bucket: String,
    /// Root path inside the bucket; empty for the bucket's top.
    pub root: String,
    /// `None` means AWS itself.
    pub endpoint: Option<String>,
    /// Empty means `us-east-1`; `auto` is what Cloudflare R2 expects.
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub addressing: Addressing,
    /// Parallel transfers.
    pub connections: usize,
    /// Whole-request timeout: must fit one pack on a slow link.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub retries: usize,
    /// Objects above this size are uploaded in parts of this size.
    pub multipart_part_size: usize,
    /// Use the multi-object delete request (some providers lack it).
    pub bulk_delete: bool,
    /// Where host names resolve; the system's resolver when `None`. Tests
    /// send providers' real host names to a server on 127.0.0.1 with it.
    pub dns_resolver: Option<Arc<dyn object_store::client::DnsResolver>>,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            bucket: String::new(),
            root: String::new(),
            endpoint: None,
            region: String::new(),
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            addressing: Addressing::Auto,
            connections: 4,
            // 24 MiB at 100 KiB/s takes four minutes; allow twice that.
            timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(15),
            retries: 5,
            multipart_part_size: 64 * 1024 * 1024,
            bulk_delete: true,
            dns_resolver: None,
        }
    }
}

impl S3Options {
    /// Parses `s3://BUCKET[/ROOT/PATH]` into bucket and root.
    pub fn parse_location(location: &str) -> Result<(String, String)> {
        let rest = location.strip_prefix("s3://").ok_or_else(|| {
            Error::InvalidArgument(format!("{location:?} is not an s3:// location"))
        })?;
        let (bucket, root) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{location:?} names no bucket (s3://BUCKET[/ROOT])"
            )));
        }
        Ok((bucket.to_string(), root.trim_matches('/').to_string()))
    }

    /// The region given; else the one a known provider's host names (most
    /// do: `oss-cn-hangzhou`, `s3.eu-west-3.amazonaws.com`); else
    /// `us-east-1`, which AWS and most others accept.
    pub fn region(&self) -> String {
        if !self.region.is_empty() {
            return self.region.clone();
        }
        self.endpoint_url()
            .ok()
            .flatten()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .and_then(|h| region_from_host(&h))
            .unwrap_or_else(|| "us-east-1".into())
    }

    /// Checks an endpoint as `--endpoint` takes it, before it is saved in a
    /// profile that would otherwise fail only at its first use.
    /// The bucket, when known, lets an endpoint that ends in it or starts
    /// with it be taken as consoles show it.
    pub fn check_endpoint(endpoint: &str, bucket: Option<&str>) -> Result<()> {
        S3Options {
            endpoint: Some(endpoint.to_string()),
            bucket: bucket.unwrap_or_default().to_string(),
            ..S3Options::default()
        }
        .endpoint_url()
        .map(|_| ())
    }

    /// The endpoint as a URL: https unless http:// is written out.
    fn endpoint_url(&self) -> Result<Option<url::Url>> {
        let Some(e) = self
            .endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        else {
            return Ok(None);
        };
        let with_scheme = if e.contains("://") {
            e.to_string()
        } else {
            format!("https://{e}")
        };
        let mut url = url::Url::parse(&with_scheme)
            .map_err(|err| Error::InvalidArgument(format!("endpoint {e:?} is not a URL: {err}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Error::InvalidArgument(format!(
                "endpoint {e:?} must be an http(s) URL with a host"
            )));
        }
        // `http://host:port/bucket` once put the repository at
        // bucket/bucket/…: the requests carry the bucket themselves. The
        // bucket itself is what consoles show after the host (R2), so it
        // is taken off; any other path is refused.
        let path = url.path().trim_matches('/');
        if !path.is_empty() && path == self.bucket && url.query().is_none() {
            url.set_path("");
        } else if !path.is_empty() || url.query().is_some() {
            return Err(Error::InvalidArgument(format!(
                "endpoint {e:?} has a path ({:?}): the endpoint is the server alone, such as \
                 {}://{}; the bucket and any folder in it belong in the repository, \
                 s3://BUCKET/FOLDER",
                url.path(),
                url.scheme(),
                &url[url::Position::BeforeHost..url::Position::AfterPort],
            )));
        }
        if let Some(url::Host::Domain(host)) = url.host() {
            let host = host.to_ascii_lowercase();
            if let Some(label) = bucket_label(&host, &self.bucket) {
                let rest = host[label.len() + 1..].to_string();
                if label == self.bucket.to_ascii_lowercase() {
                    // A bucket domain: the bucket goes back in front of the
                    // host, or into the path, as the addressing says.
                    url.set_host(Some(&rest))
                        .map_err(|err| Error::InvalidArgument(format!("endpoint {e:?}: {err}")))?;
                } else if !self.bucket.is_empty() {
                    return Err(Error::InvalidArgument(format!(
                        "endpoint {e:?} is the domain of bucket {label:?}, but the repository \
                         names bucket {:?}: give the provider's endpoint ({rest}) and \
                         s3://{label} as the repository, or correct the bucket",
                        self.bucket
                    )));
                }
            }
        }
        Ok(Some(url))
    }

    /// Whether requests use virtual-hosted style.
    pub(crate) fn virtual_hosted(&self) -> Result<bool> {
        Ok(match self.addressing {
            Addressing::Path => false,
            Addressing::Virtual => true,
            Addressing::Auto => {
                // A bucket name with a dot breaks AWS's wildcard
                // certificate in a host name: path style keeps TLS whole.
                let dotted = self.bucket.contains('.');
                match self.endpoint_url()? {
                    None => !dotted,
                    Some(url) => match url.host() {
                        Some(url::Host::Domain(d)) => {
                            let d = d.to_ascii_lowercase();
                            VIRTUAL_ONLY.iter().any(|p| on_domain(&d, p))
                                && !(dotted && on_domain(&d, "amazonaws.com"))
                        }
                        _ => false,
                    },
                }
            }
        })
    }

    /// What the user would call this repository.
    pub fn location(&self) -> String {
        let root = if self.root.is_empty() {
            String::new()
        } else {
            format!("/{}", self.root)
        };
        match &self.endpoint {
            Some(e) => format!("s3://{}{root} at {e}", self.bucket),
            None => format!("s3://{}{root}", self.bucket),
        }
    }
}

impl StoreBackend {
    pub fn s3(opts: &S3Options) -> Result<StoreBackend> {
        let virtual_hosted = opts.virtual_hosted()?;
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&opts.bucket)
            .with_region(aws_region(opts))
            .with_virtual_hosted_style_request(virtual_hosted)
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(200),
                    max_backoff: Duration::from_secs(15),
                    base: 2.0,
                },
                max_retries: opts.retries,
                retry_timeout: opts.timeout,
            })
            .with_client_options({
                let c = ClientOptions::new()
                    .with_timeout(opts.timeout)
                    .with_connect_timeout(opts.connect_timeout)
                    .with_pool_max_idle_per_host(opts.connections.max(1))
                    .with_allow_http(true);
                match &opts.dns_resolver {
                    Some(r) => c.with_dns_resolver(r.clone()),
                    None => c,
                }
            });
        if let Some(mut url) = opts.endpoint_url()? {
            if virtual_hosted {
                let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
                // A known provider's host has lost any bucket label above:
                // the bucket always goes in front (a bucket called `obs` on
                // `obs.cn-north-4.myhuaweicloud.com` too). Another host that
                // already starts with the bucket is taken as given.
                let known = known_provider(&host).is_some();
                if known || !host.starts_with(&format!("{}.", opts.bucket)) {
                    url.set_host(Some(&format!("{}.{host}", opts.bucket)))
                        .map_err(|e| {
                            Error::InvalidArgument(format!("endpoint with bucket: {e}"))
                        })?;
                }
            }
            b = b.with_endpoint(url.as_str().trim_end_matches('/'));
        }
        if let Some(k) = &opts.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(k) = &opts.secret_access_key {
            b = b.with_secret_access_key(k);
        }
        if let Some(t) = &opts.session_token {
            b = b.with_token(t);
        }
        if opts.access_key_id.is_none() || opts.secret_access_key.is_none() {
            return Err(Error::InvalidArgument(
                "S3 credentials missing: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or keys in a profile".into(),
            ));
        }
        let bulk = b
            .clone()
            .with_retry(RetryConfig {
                max_retries: 0,
                ..Default::default()
            })
            .build()
            .map_err(|e| Error::InvalidArgument(format!("S3 settings: {e}")))?;
        let store = Arc::new(
            b.with_disable_bulk_delete(true)
                .build()
                .map_err(|e| Error::InvalidArgument(format!("S3 settings: {e}")))?,
        );
        let mut backend = StoreBackend::new(store.clone(), &opts.root, opts.location())?;
        backend.extra = Some(super::versions::S3Extra::new(
            store.clone(),
            opts.timeout,
            opts.connect_timeout,
            opts.location(),
        )?);
        backend.bulk_store = Some(Arc::new(bulk));
        backend.bucket = Some(opts.bucket.clone());
        backend.folders = Some(store);
        backend.paged = true;
        backend
            .bulk
            .store(opts.bulk_delete, std::sync::atomic::Ordering::Relaxed);
        backend.multipart = Some(opts.multipart_part_size);
        backend.connections = opts.connections.max(1);
        let o = opts.clone();
        backend.explain = Some(Box::new(move |e| explain(&o, e)));
        Ok(backend)
    }
}

/// The region to sign with. On AWS itself with no region given, the
/// bucket's region as AWS reports it (one HEAD request): a bucket outside
/// us-east-1 otherwise failed, and was only explained afterwards. Where
/// that cannot be asked, [`S3Options::region`].
fn aws_region(opts: &S3Options) -> String {
    // Not from inside a runtime (a library caller's): blocking there panics.
    if opts.endpoint.is_some()
        || !opts.region.is_empty()
        || tokio::runtime::Handle::try_current().is_ok()
    {
        return opts.region();
    }
    // Short: offline, a command waits at most this long before signing
    // for us-east-1, whose errors name the right region.
    let client = ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(3))
        .with_timeout(Duration::from_secs(5));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()
        .and_then(|rt| {
            rt.block_on(object_store::aws::resolve_bucket_region(
                &opts.bucket,
                &client,
            ))
            .ok()
        })
        .unwrap_or_else(|| opts.region())
}

/// The error and its causes as one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

/// A message that names the setting at fault, for the failures people
/// actually meet when they first connect; `None` leaves the error as is.
/// The endpoint's host, lower-cased ("" for AWS itself).
fn endpoint_host(o: &S3Options) -> String {
    o.endpoint_url()
        .ok()
        .flatten()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default()
}

/// OBS answers a path-style PUT with 404 NoSuchKey while HEAD works: a
/// "missing" object there means the addressing, not the object.
fn misleading_not_found(
    o: &S3Options,
    host: &str,
    e: &object_store::Error,
    text: &str,
) -> Option<String> {
    (matches!(e, object_store::Error::NotFound { .. })
        && text.contains("NoSuchKey")
        && !o.virtual_hosted().unwrap_or(true)
        && VIRTUAL_ONLY.iter().any(|d| on_domain(host, d)))
    .then(|| {
        format!(
            "the provider at {} answered a path-style request with 404, as providers that \
             want the bucket in the host name do: leave --s3-addressing at auto or set it to \
             virtual",
            o.endpoint.as_deref().unwrap_or(host)
        )
    })
}

fn explain(o: &S3Options, e: &object_store::Error) -> Option<String> {
    let text = chain(e);
    let host = endpoint_host(o);
    if let Some(msg) = misleading_not_found(o, &host, e, &text) {
        return Some(msg);
    }
    if matches!(
        e,
        object_store::Error::NotFound { .. } | object_store::Error::AlreadyExists { .. }
    ) && !text.contains("NoSuchBucket")
        && !text.contains("<!DOCTYPE")
        && !text.contains("<html")
        && !text.contains("<HTML")
    {
        return None;
    }
    let scan = error_words(&text);
    let has = |s: &str| scan.contains(s);
    let endpoint = o.endpoint.as_deref().unwrap_or("AWS S3");
    let msg = if has("PathStyleDomainForbidden")
        || has("VirtualHostDomainRequired")
        || has("SecondLevelDomainForbidden")
    {
        format!(
            "the provider at {endpoint} answers only requests with the bucket in the host name \
             (bucket.{}); leave --s3-addressing at auto or set it to virtual",
            if host.is_empty() { "endpoint" } else { &host }
        )
    } else if has("NoSuchBucket") || (has("404") && has("bucket")) {
        format!(
            "bucket {:?} does not exist at {endpoint} (check the bucket name in --repo)",
            o.bucket
        )
    } else if has("InvalidAccessKeyId")
        || has("No such key")
        || has("access key") && has("not found")
    {
        format!(
            "access key id {:?} is not known at {endpoint} (check AWS_ACCESS_KEY_ID or the profile's access_key_id)",
            o.access_key_id.as_deref().unwrap_or("")
        )
    } else if has("SignatureDoesNotMatch") || has("signature") || has("Signature") {
        format!(
            "the secret access key does not match access key id {:?} (check AWS_SECRET_ACCESS_KEY or the profile's secret)",
            o.access_key_id.as_deref().unwrap_or("")
        )
    } else if has("AuthorizationHeaderMalformed")
        || has("IncorrectEndpoint")
        || has("PermanentRedirect")
        || has("region")
    {
        match reported_region(&text).filter(|r| *r != o.region()) {
            Some(right) => format!(
                "region {:?} is wrong for this bucket at {endpoint}: the server says it is \
                 {right:?} (use --region {right})",
                o.region()
            ),
            None => format!(
                "region {:?} is wrong for this bucket at {endpoint} (check --region)",
                o.region()
            ),
        }
    } else if has("<!DOCTYPE") || has("<html") || has("<HTML") {
        format!(
            "the endpoint {endpoint} answered with a web page, not as an S3 server would \
             (check --endpoint: it is the S3 API's address, not the provider's website)"
        )
    } else if has("400 Bad Request") && !has("<Code>") {
        // A HEAD request's error has no body to name the fault.
        format!(
            "the server at {endpoint} rejected the request as malformed (400), most often \
             because region {:?} is not the bucket's (check --region)",
            o.region()
        )
    } else if has("AccessDenied") || has("status code: 403") {
        format!(
            "access denied to bucket {:?}: the key may not read or write it",
            o.bucket
        )
    } else if has("certificate")
        || has("tls")
        || has("TLS")
        || has("handshake")
        || has("corrupt message")
        || has("InvalidContentType")
        || has("peer")
    {
        // `host:port` of a plain-HTTP server gave only "InvalidContentType".
        let hint = if o.endpoint.as_deref().is_some_and(|e| !e.contains("://")) {
            format!(
                " (the endpoint has no scheme, so https:// was used; if the server speaks plain \
                 HTTP, write http://{endpoint})"
            )
        } else {
            String::new()
        };
        format!(
            "TLS failure talking to {endpoint}: {}{hint}",
            last_cause(&text)
        )
    } else if has("error sending request")
        || has("Connection refused")
        || has("dns error")
        || has("connect")
        || has("timed out")
    {
        format!(
            "cannot reach the endpoint {endpoint}: {}",
            last_cause(&text)
        )
    } else {
        return None;
    };
    Some(msg + &provider_hint(o, &host, &scan))
}

/// What a provider's own rules add to an explanation: B2's master key and
/// COS's bucket names are the usual first-day mistakes there.
fn provider_hint(o: &S3Options, host: &str, scan: &str) -> String {
    let refused = [
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "403",
    ]
    .iter()
    .any(|w| scan.contains(w));
    if on_domain(host, "backblazeb2.com") && refused {
        return ". Backblaze's master application key cannot use the S3 API: create an \
                application key in the B2 console and use its keyID and applicationKey"
            .into();
    }
    let appid = o
        .bucket
        .rsplit_once('-')
        .is_some_and(|(_, id)| !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()));
    if on_domain(host, "myqcloud.com") && scan.contains("NoSuchBucket") && !appid {
        return format!(
            ". Tencent COS bucket names end in the account's APPID, as the console shows \
             them: {}-1250000000, not {}",
            o.bucket, o.bucket
        );
    }
    String::new()
}

/// The words of an error without the names the user chose: a root path
/// called "connect-test" once read as a connection failure, and a bucket
/// called "b", taken out letter by letter, hid "InvalidContentType". Names
/// appear in URLs and paths (tokens with a `/`) and in the XML elements
/// that echo the request; error codes and messages are kept.
fn error_words(text: &str) -> String {
    let mut t = text.to_string();
    for tag in [
        "Resource",
        "Key",
        "BucketName",
        "RequestId",
        "HostId",
        "Endpoint",
    ] {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        while let Some(a) = t.find(&open) {
            match t[a..].find(&close) {
                Some(b) => t.replace_range(a..a + b + close.len(), " "),
                None => break,
            }
        }
    }
    // Tags apart from their text, so that `<Code>X</Code>` stays whole.
    let t = t.replace('<', " <").replace('>', "> ");
    t.split_whitespace()
        .filter(|w| !w.contains("://") && (!w.contains('/') || w.starts_with('<')))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The region an S3 error body names (`<Region>eu-west-3</Region>`, as
/// AWS and Garage send with AuthorizationHeaderMalformed), if it looks
/// like one.
fn reported_region(text: &str) -> Option<String> {
    let start = text.find("<Region>")? + "<Region>".len();
    let len = text[start..].find("</Region>")?;
    let region = &text[start..start + len];
    (!region.is_empty()
        && region.len() <= 64
        && region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    .then(|| region.to_string())
}

fn last_cause(text: &str) -> &str {
    text.rsplit(": ")
        .find(|s| !s.trim().is_empty())
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_like_service_labels_and_aws_private_hosts() {
        // A bucket called like a service label, in front of its host.
        let oss = at(
            "oss-backup",
            "https://oss-backup.oss-cn-hangzhou.aliyuncs.com",
        );
        assert_eq!(host(&oss), "oss-cn-hangzhou.aliyuncs.com");
        assert_eq!(oss.region(), "cn-hangzhou");
        // A bucket called like the host's first label stays a bucket.
        let obs = at("obs", "https://obs.cn-north-4.myhuaweicloud.com");
        assert_eq!(host(&obs), "obs.cn-north-4.myhuaweicloud.com");
        assert_eq!(obs.region(), "cn-north-4");
        // PrivateLink and access points carry no bucket label.
        for h in [
            "https://bucket.vpce-0a1b2c3d4e5f-abcdefgh.s3.us-east-1.vpce.amazonaws.com",
            "https://ap-123456789012.s3-accesspoint.us-west-2.amazonaws.com",
        ] {
            assert!(at("mine", h).endpoint_url().is_ok(), "{h}");
        }
    }

    fn with(endpoint: &str) -> S3Options {
        S3Options {
            endpoint: Some(endpoint.into()),
            ..S3Options::default()
        }
    }

    #[test]
    fn auto_addressing_follows_the_provider() {
        assert!(
            with("https://oss-cn-hangzhou.aliyuncs.com")
                .virtual_hosted()
                .unwrap()
        );
        assert!(
            with("cos.ap-guangzhou.myqcloud.com")
                .virtual_hosted()
                .unwrap()
        );
        assert!(
            with("https://tos-s3-cn-beijing.volces.com")
                .virtual_hosted()
                .unwrap()
        );
        assert!(
            with("https://s3.eu-west-1.amazonaws.com")
                .virtual_hosted()
                .unwrap()
        );
        assert!(S3Options::default().virtual_hosted().unwrap());
        assert!(!with("http://127.0.0.1:3900").virtual_hosted().unwrap());
        assert!(!with("http://localhost:9000").virtual_hosted().unwrap());
        assert!(
            !with("https://abc.r2.cloudflarestorage.com")
                .virtual_hosted()
                .unwrap()
        );
        assert!(
            !with("https://s3.us-west-004.backblazeb2.com")
                .virtual_hosted()
                .unwrap()
        );
        assert!(!with("https://notaliyuncs.com").virtual_hosted().unwrap());
        let forced = S3Options {
            addressing: Addressing::Path,
            ..with("https://oss-cn-hangzhou.aliyuncs.com")
        };
        assert!(!forced.virtual_hosted().unwrap());
    }

    #[test]
    fn locations_and_regions() {
        assert_eq!(
            S3Options::parse_location("s3://b").unwrap(),
            ("b".into(), "".into())
        );
        assert_eq!(
            S3Options::parse_location("s3://b/x/y/").unwrap(),
            ("b".into(), "x/y".into())
        );
        assert!(S3Options::parse_location("s3://").is_err());
        assert_eq!(S3Options::default().region(), "us-east-1");
        assert!(with("ftp://x").endpoint_url().is_err());
        assert_eq!(
            with("minio.lan:9000")
                .endpoint_url()
                .unwrap()
                .unwrap()
                .scheme(),
            "https"
        );
        for with_path in [
            "http://127.0.0.1:3900/bucket",
            "https://s3.example.com/b/x",
            "http://h/?x=1",
        ] {
            let err = with(with_path).endpoint_url().unwrap_err().to_string();
            assert!(err.contains("has a path"), "{with_path}: {err}");
        }
        assert!(with("http://127.0.0.1:3900/").endpoint_url().is_ok());
        let body = "400 Bad Request: <Error><Code>AuthorizationHeaderMalformed</Code>\
                    <Region>eu-west-3</Region></Error>";
        assert_eq!(reported_region(body).as_deref(), Some("eu-west-3"));
        assert_eq!(reported_region("<Region><script></Region>"), None);
        assert_eq!(reported_region("<Region>"), None);
    }

    #[test]
    fn a_port_with_403_in_it_is_no_access_denial() {
        // An https endpoint on a plain-http port that happens to contain
        // "403" once made a TLS failure read as "access denied" (a flaky
        // test, since the test server's port is random).
        let o = with("https://127.0.0.1:40312");
        let e = object_store::Error::Generic {
            store: "S3",
            source: "error sending request for url (https://127.0.0.1:40312/b/config): \
                     client error (Connect): received corrupt message of type InvalidContentType"
                .into(),
        };
        let msg = explain(&o, &e).unwrap();
        assert!(msg.starts_with("TLS failure"), "{msg}");
        let denied = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 403 Forbidden: ".into(),
        };
        assert!(explain(&o, &denied).unwrap().starts_with("access denied"));
    }

    #[test]
    fn a_one_letter_bucket_hides_no_error_word() {
        let mut o = with("127.0.0.1:18120");
        o.bucket = "b".into();
        let e = object_store::Error::Generic {
            store: "S3",
            source: "error sending request for url (https://127.0.0.1:18120/b/config): client \
                     error (Connect): received corrupt message of type InvalidContentType"
                .into(),
        };
        let msg = explain(&o, &e).unwrap();
        assert!(msg.contains("no scheme"), "{msg}");
        let page = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 404 Not Found: <!DOCTYPE HTML><html>"
                .into(),
        };
        assert!(explain(&o, &page).unwrap().contains("web page"));
    }

    #[test]
    fn names_the_user_chose_are_not_read_as_errors() {
        // The root path "connect-test" once made a 400 read as "cannot
        // reach the endpoint".
        let mut o = with("http://127.0.0.1:3900");
        o.bucket = "timed-out".into();
        o.root = "connect-test".into();
        let e = object_store::Error::Generic {
            store: "S3",
            source: "Error performing HEAD http://127.0.0.1:3900/timed-out/connect-test/config \
                     in 1ms - Server returned non-2xx status code: 400 Bad Request: "
                .into(),
        };
        let msg = explain(&o, &e).unwrap();
        assert!(
            msg.contains("rejected the request") && msg.contains("region"),
            "{msg}"
        );
    }

    fn at(bucket: &str, endpoint: &str) -> S3Options {
        S3Options {
            bucket: bucket.into(),
            ..with(endpoint)
        }
    }

    fn host(o: &S3Options) -> String {
        o.endpoint_url()
            .unwrap()
            .unwrap()
            .host_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn endpoints_as_consoles_show_them() {
        // R2's dashboard shows the bucket after the host.
        let r2 = at("photos", "https://acct.r2.cloudflarestorage.com/photos");
        assert_eq!(r2.endpoint_url().unwrap().unwrap().path(), "/");
        assert_eq!(r2.region(), "auto");
        assert!(!r2.virtual_hosted().unwrap());
        let other = at("photos", "https://acct.r2.cloudflarestorage.com/videos");
        assert!(
            other
                .endpoint_url()
                .unwrap_err()
                .to_string()
                .contains("has a path")
        );
        // An OSS or COS bucket domain: the label is taken off and put back
        // by virtual-hosted addressing, once.
        let oss = at("mybucket", "https://mybucket.oss-cn-hangzhou.aliyuncs.com");
        assert_eq!(host(&oss), "oss-cn-hangzhou.aliyuncs.com");
        assert!(oss.virtual_hosted().unwrap());
        assert_eq!(oss.region(), "cn-hangzhou");
        let wrong = at("yours", "https://mybucket.oss-cn-hangzhou.aliyuncs.com");
        let err = wrong.endpoint_url().unwrap_err().to_string();
        assert!(
            err.contains("\"mybucket\"") && err.contains("\"yours\""),
            "{err}"
        );
        let cos = at("b-1250000000", "b-1250000000.cos.ap-guangzhou.myqcloud.com");
        assert_eq!(host(&cos), "cos.ap-guangzhou.myqcloud.com");
        assert_eq!(cos.region(), "ap-guangzhou");
        // The S3-compatible OSS host keeps its `s3.` label.
        let s3oss = at("b", "https://s3.oss-cn-shanghai.aliyuncs.com");
        assert_eq!(host(&s3oss), "s3.oss-cn-shanghai.aliyuncs.com");
        assert_eq!(s3oss.region(), "cn-shanghai");
        // A bucket named like a service label is not taken for one.
        let s3b = at(
            "s3-backups",
            "https://s3-backups.s3.us-west-2.amazonaws.com",
        );
        assert_eq!(s3b.region(), "us-west-2");
    }

    #[test]
    fn virtual_only_hosts_dotted_buckets_and_regions() {
        let obs = at("b", "https://obs.cn-north-4.myhuaweicloud.com");
        assert!(obs.virtual_hosted().unwrap());
        assert_eq!(obs.region(), "cn-north-4");
        let byteplus = at("b", "https://tos-s3-ap-southeast-1.bytepluses.com");
        assert!(byteplus.virtual_hosted().unwrap());
        assert_eq!(byteplus.region(), "ap-southeast-1");
        let volc = at("b", "https://tos-s3-cn-beijing.volces.com");
        assert_eq!(volc.region(), "cn-beijing");
        // Dots in a bucket name break AWS's wildcard certificate.
        assert!(!at("my.bucket", "").virtual_hosted().unwrap());
        assert!(at("mybucket", "").virtual_hosted().unwrap());
        let dotted = at("my.bucket", "https://s3.eu-west-1.amazonaws.com");
        assert!(!dotted.virtual_hosted().unwrap());
        assert_eq!(dotted.region(), "eu-west-1");
        assert_eq!(
            at("b", "https://s3-us-west-2.amazonaws.com").region(),
            "us-west-2"
        );
        assert_eq!(at("b", "https://s3.amazonaws.com").region(), "us-east-1");
        assert_eq!(
            at("b", "https://s3.us-west-004.backblazeb2.com").region(),
            "us-west-004"
        );
        assert_eq!(
            at("b", "https://s3.eu-central-1.wasabisys.com").region(),
            "eu-central-1"
        );
        assert_eq!(at("b", "http://127.0.0.1:3900").region(), "us-east-1");
        let given = S3Options {
            region: "garage".into(),
            ..at("b", "https://oss-cn-hangzhou.aliyuncs.com")
        };
        assert_eq!(given.region(), "garage", "an explicit region wins");
    }

    #[test]
    fn provider_answers_are_explained_in_words() {
        let generic = |body: &str| object_store::Error::Generic {
            store: "S3",
            source: body.to_string().into(),
        };
        let says = |o: &S3Options, body: &str, words: &str| {
            let msg = explain(o, &generic(body)).unwrap();
            assert!(msg.contains(words), "{msg}");
            msg
        };
        let obs = at("b", "https://obs.cn-north-4.myhuaweicloud.com");
        says(
            &obs,
            "403 Forbidden: <Error><Code>PathStyleDomainForbidden</Code></Error>",
            "bucket in the host name",
        );
        let forced = S3Options {
            addressing: Addressing::Path,
            ..obs.clone()
        };
        let missing = object_store::Error::NotFound {
            path: "b/config".into(),
            source: "404 Not Found: <Error><Code>NoSuchKey</Code></Error>".into(),
        };
        let msg = explain(&forced, &missing).unwrap();
        assert!(msg.contains("path-style request with 404"), "{msg}");
        assert!(
            explain(&obs, &missing).is_none(),
            "virtual-hosted: a missing object is one"
        );
        let b2 = at("b", "https://s3.us-west-004.backblazeb2.com");
        says(
            &b2,
            "403 Forbidden: <Error><Code>InvalidAccessKeyId</Code></Error>",
            "master application key",
        );
        let no_bucket = "404 Not Found: <Error><Code>NoSuchBucket</Code></Error>";
        let cos = at("mybucket", "https://cos.ap-guangzhou.myqcloud.com");
        says(&cos, no_bucket, "mybucket-1250000000");
        let named = at(
            "mybucket-1250000000",
            "https://cos.ap-guangzhou.myqcloud.com",
        );
        let msg = says(&named, no_bucket, "does not exist");
        assert!(!msg.contains("APPID"), "{msg}");
    }
}

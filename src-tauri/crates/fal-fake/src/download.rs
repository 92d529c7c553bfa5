//! The runner's downloads of input URLs (a trainer's `images_data_url`, an inference's
//! `loras[].path`), by fal's download rules (fal-protocol.md §7.1, §6 "Dataset download",
//! §4.4; `ssrf.py`): http and https only; the host resolved and refused if any
//! address it resolves to is not globally routable; the connection pinned to the checked
//! address; redirects followed by hand up to 5 hops, each hop checked again; a non-2xx answer or
//! a body shorter than its `Content-Length` fails. Proxies from the environment are ignored.
//!
//! Test-only allowance: the fake's own origin, where its storage serves uploads on loopback, and
//! the origins a test adds with `FakeFal::allow_dataset_origin`, are fetched without the
//! address check, as `ssrf.py` does with `allow_internal_hosts`. Nothing else on loopback is.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::header::LOCATION;
use bytes::Bytes;
use reqwest::Url;

use crate::public_address::is_globally_routable;
use crate::state::Shared;

/// `ssrf.py` `DEFAULT_MAX_REDIRECT_HOPS`.
const MAX_REDIRECT_HOPS: usize = 5;
/// `ssrf.py`'s socket timeout, per blocking operation.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) enum DownloadError {
    /// fal's download rules refuse the URL, or a redirect's (`SSRFError`); the message is
    /// `ssrf.py`'s.
    Refused(String),
    /// The download ran and failed: an HTTP error, a body cut short, not a zip.
    Unavailable(String),
}

/// Downloads the training zip as a runner would and returns its bytes. Only the zip signature is
/// checked here; what is inside matters only to a later inference with the LoRA.
pub(crate) async fn fetch_zip(shared: &Shared, url: &str) -> Result<Bytes, DownloadError> {
    let (response, url) = open(shared, url, "the training data").await?;
    read_zip(response, &url).await
}

/// GETs `url` as a runner would, following redirects by hand, and returns the first answer that
/// is not a redirect, whatever its status, with the URL that gave it. `what` names the file in
/// errors.
pub(crate) async fn open(
    shared: &Shared,
    url: &str,
    what: &str,
) -> Result<(reqwest::Response, Url), DownloadError> {
    let mut current =
        Url::parse(url).map_err(|error| DownloadError::Refused(format!("Invalid URL: {error}")))?;
    for _ in 0..=MAX_REDIRECT_HOPS {
        let response = get_one_hop(shared, &current, what).await?;
        if !is_redirect(response.status()) {
            return Ok((response, current));
        }
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|location| location.to_str().ok())
            .ok_or_else(|| {
                DownloadError::Refused("Redirect response missing Location header".into())
            })?;
        current = current
            .join(location)
            .map_err(|error| DownloadError::Refused(format!("Invalid URL: {error}")))?;
    }
    Err(DownloadError::Refused("Too many redirects".into()))
}

fn is_redirect(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// One GET, without following a redirect, after checking where it goes.
async fn get_one_hop(
    shared: &Shared,
    url: &Url,
    what: &str,
) -> Result<reqwest::Response, DownloadError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(DownloadError::Refused(format!(
            "URL scheme '{}' is not allowed",
            url.scheme()
        )));
    }
    let origin = url.origin().ascii_serialization();
    let admitted = shared.state().dataset_origins.contains(&origin);
    let client = if admitted {
        shared.dataset_http.clone()
    } else {
        pinned_client(url, public_address(url).await?)?
    };
    client.get(url.clone()).send().await.map_err(|error| {
        DownloadError::Unavailable(format!("Could not download {what} from {url}: {error}"))
    })
}

/// The first address `url`'s host resolves to, when every one of them is globally routable.
async fn public_address(url: &Url) -> Result<SocketAddr, DownloadError> {
    let host = url
        .host_str()
        .ok_or_else(|| DownloadError::Refused("URL has no hostname".into()))?;
    // An IPv6 literal comes in brackets; the resolver takes it bare.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_known_default().unwrap_or(80);
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| DownloadError::Refused("DNS resolution failed".into()))?
        .collect();
    if addresses
        .iter()
        .any(|address| !is_globally_routable(address.ip()))
    {
        return Err(DownloadError::Refused(
            "Hostname resolves to a non-routable address".into(),
        ));
    }
    addresses
        .first()
        .copied()
        .ok_or_else(|| DownloadError::Refused("Hostname did not resolve".into()))
}

/// A client that connects to `address` whatever the name resolves to by then, so a DNS answer
/// cannot change between the check and the fetch; TLS still verifies the name.
fn pinned_client(url: &Url, address: SocketAddr) -> Result<reqwest::Client, DownloadError> {
    let host = url.host_str().unwrap_or_default();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(SOCKET_TIMEOUT)
        .read_timeout(SOCKET_TIMEOUT)
        .resolve(host, address)
        .build()
        .map_err(|error| DownloadError::Unavailable(format!("No HTTP client: {error}")))
}

async fn read_zip(mut response: reqwest::Response, url: &Url) -> Result<Bytes, DownloadError> {
    let status = response.status();
    if !status.is_success() {
        return Err(DownloadError::Unavailable(format!(
            "Could not download the training data from {url}: the server answered HTTP {}",
            status.as_u16()
        )));
    }
    let announced = response.content_length();
    let mut zip = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| {
        DownloadError::Unavailable(format!(
            "The download of the training data from {url} broke off: {error}"
        ))
    })? {
        zip.extend_from_slice(&chunk);
    }
    if announced.is_some_and(|announced| (zip.len() as u64) < announced) {
        return Err(DownloadError::Unavailable(format!(
            "The download of the training data from {url} broke off after {} bytes",
            zip.len()
        )));
    }
    if !zip.starts_with(b"PK") {
        return Err(DownloadError::Unavailable(format!(
            "The training data at {url} is not a zip archive"
        )));
    }
    Ok(zip.into())
}

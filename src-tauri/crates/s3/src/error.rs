//! What can go wrong with the object store, in words a creator can act on.

use std::error::Error;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};

/// S3 and MinIO refuse requests signed further than this from their own clock.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// A failed storage operation. Messages and `Debug` output never contain the secret key.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error(
        "cannot reach the storage server at {endpoint}: {reason}. Check the endpoint address and that the server is running"
    )]
    Unreachable { endpoint: String, reason: String },
    #[error(
        "the storage server refused access key “{access_key}”: the access key or the secret key is wrong, or the key may not use bucket “{bucket}”"
    )]
    WrongCredentials { access_key: String, bucket: String },
    #[error(
        "access key “{access_key}” may not do this in bucket “{bucket}” ({message}); give it read and write access to the bucket"
    )]
    AccessDenied {
        access_key: String,
        bucket: String,
        message: String,
    },
    #[error(
        "the endpoint “{endpoint}” is not a web address; write it with its scheme, like http://192.168.1.20:9000"
    )]
    InvalidEndpoint { endpoint: String },
    #[error(
        "bucket “{bucket}” does not exist on the storage server; create it or correct its name"
    )]
    BucketMissing { bucket: String },
    /// `offset` is the measured difference, when the server said what time it is.
    #[error("{}", clock_skew_message(.offset))]
    ClockSkew { offset: Option<Duration> },
    /// Any other refusal, with the service's own error code.
    #[error("the storage server refused the request: {code} (HTTP {status}){}", detail(.message))]
    Service {
        status: u16,
        code: String,
        message: String,
    },
    #[error("cannot read {}: {cause}", path.display())]
    File { path: PathBuf, cause: io::Error },
    #[error("{} got shorter while it was being uploaded; upload it again once it is complete", path.display())]
    FileChanged { path: PathBuf },
    #[error("refusing to delete with an empty prefix: it would empty the whole bucket")]
    EmptyPrefix,
    /// The request could not be built or the answer could not be understood.
    #[error("the storage request failed: {detail}")]
    Request { detail: String },
}

/// Who was asked and when, to word an error and to tell a wrong key from a wrong clock.
pub(crate) struct Origin<'a> {
    pub endpoint: &'a str,
    pub bucket: &'a str,
    pub access_key: &'a str,
    pub local_time: SystemTime,
}

impl S3Error {
    pub(crate) fn from_sdk<E>(error: SdkError<E, HttpResponse>, origin: &Origin<'_>) -> Self
    where
        E: ProvideErrorMetadata + Error + Send + Sync + 'static,
    {
        match &error {
            SdkError::ServiceError(service) => from_answer(service.raw(), service.err(), origin),
            // The SDK's own words for this ("not a valid URI") do not say what to type instead.
            _ if !is_web_address(origin.endpoint) => Self::InvalidEndpoint {
                endpoint: origin.endpoint.to_owned(),
            },
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => Self::Unreachable {
                endpoint: origin.endpoint.to_owned(),
                reason: innermost_cause(&error),
            },
            _ => Self::Request {
                detail: DisplayErrorContext(&error).to_string(),
            },
        }
    }
}

fn from_answer(
    response: &HttpResponse,
    error: &impl ProvideErrorMetadata,
    origin: &Origin<'_>,
) -> S3Error {
    let status = response.status().as_u16();
    let wrong_credentials = || S3Error::WrongCredentials {
        access_key: origin.access_key.to_owned(),
        bucket: origin.bucket.to_owned(),
    };
    let bucket_missing = || S3Error::BucketMissing {
        bucket: origin.bucket.to_owned(),
    };
    match error.code() {
        // s3s answers an unknown access key with NotSignedUp, MinIO and S3 with InvalidAccessKeyId.
        Some("InvalidAccessKeyId" | "NotSignedUp" | "SignatureDoesNotMatch") => wrong_credentials(),
        Some("AccessDenied") => S3Error::AccessDenied {
            access_key: origin.access_key.to_owned(),
            bucket: origin.bucket.to_owned(),
            message: error.message().unwrap_or("access denied").to_owned(),
        },
        Some("NoSuchBucket") => bucket_missing(),
        Some("RequestTimeTooSkewed") => S3Error::ClockSkew {
            offset: clock_offset(response, origin.local_time),
        },
        // Answers to HEAD requests have no body, so the status is all there is to go on; a 403
        // then means a wrong key unless the server's clock is far from ours.
        Some("NotFound") | None if status == 404 => bucket_missing(),
        None if status == 403 => match clock_offset(response, origin.local_time) {
            Some(offset) if offset > MAX_CLOCK_SKEW => S3Error::ClockSkew {
                offset: Some(offset),
            },
            _ => wrong_credentials(),
        },
        code => S3Error::Service {
            status,
            code: code.unwrap_or("no error code").to_owned(),
            message: error.message().unwrap_or_default().to_owned(),
        },
    }
}

fn is_web_address(endpoint: &str) -> bool {
    let lowercase = endpoint.to_ascii_lowercase();
    lowercase.starts_with("http://") || lowercase.starts_with("https://")
}

/// How far the server's `Date` header is from our clock, in either direction.
fn clock_offset(response: &HttpResponse, local_time: SystemTime) -> Option<Duration> {
    let date = response.headers().get("date")?;
    let server_time =
        SystemTime::try_from(DateTime::from_str(date, DateTimeFormat::HttpDate).ok()?).ok()?;
    Some(match server_time.duration_since(local_time) {
        Ok(ahead) => ahead,
        Err(behind) => behind.duration(),
    })
}

/// The root cause says most ("Connection refused", "failed to lookup address information").
fn innermost_cause(error: &(dyn Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

fn clock_skew_message(offset: &Option<Duration>) -> String {
    let by = offset
        .map(|offset| format!(" by {} minutes", offset.as_secs().div_ceil(60)))
        .unwrap_or_default();
    format!(
        "this computer's clock differs from the storage server's{by}; set the date and time right \
         (automatic time) and try again"
    )
}

fn detail(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::primitives::SdkBody;

    use super::*;

    const IN_STEP: Duration = Duration::ZERO;
    const AN_HOUR: Duration = Duration::from_secs(60 * 60);

    /// How an answer with `status`, `code` and a server clock `server_ahead` of ours is worded.
    fn classify(status: u16, code: Option<&str>, server_ahead: Duration) -> S3Error {
        let local_time = SystemTime::now();
        let server_date = DateTime::from(local_time + server_ahead)
            .fmt(DateTimeFormat::HttpDate)
            .expect("a formattable date");
        let mut response =
            HttpResponse::new(status.try_into().expect("a valid status"), SdkBody::empty());
        response.headers_mut().insert("date", server_date);
        let mut metadata = ErrorMetadata::builder().message("said the server");
        if let Some(code) = code {
            metadata = metadata.code(code);
        }
        let origin = Origin {
            endpoint: "http://127.0.0.1:9000",
            bucket: "avatars",
            access_key: "studio",
            local_time,
        };
        from_answer(&response, &metadata.build(), &origin)
    }

    #[test]
    fn error_codes_become_errors_a_creator_can_act_on() {
        for code in ["InvalidAccessKeyId", "NotSignedUp", "SignatureDoesNotMatch"] {
            let error = classify(403, Some(code), IN_STEP);
            assert!(
                matches!(error, S3Error::WrongCredentials { .. }),
                "{code}: {error:?}"
            );
        }
        let error = classify(403, Some("AccessDenied"), IN_STEP);
        assert!(matches!(error, S3Error::AccessDenied { .. }), "{error:?}");
        let error = classify(404, Some("NoSuchBucket"), IN_STEP);
        assert!(matches!(error, S3Error::BucketMissing { .. }), "{error:?}");

        let error = classify(403, Some("RequestTimeTooSkewed"), AN_HOUR);
        assert!(
            matches!(error, S3Error::ClockSkew { offset: Some(_) }),
            "{error:?}"
        );
        assert!(error.to_string().contains("by 60 minutes"), "{error}");

        let error = classify(500, Some("InternalError"), IN_STEP);
        assert!(
            matches!(error, S3Error::Service { status: 500, .. }),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "the storage server refused the request: InternalError (HTTP 500): said the server"
        );
    }

    #[test]
    fn a_bodiless_refusal_is_a_wrong_key_unless_the_clocks_disagree() {
        let error = classify(403, None, IN_STEP);
        assert!(
            matches!(error, S3Error::WrongCredentials { .. }),
            "{error:?}"
        );
        let error = classify(403, None, AN_HOUR);
        assert!(matches!(error, S3Error::ClockSkew { .. }), "{error:?}");
        let error = classify(404, None, IN_STEP);
        assert!(matches!(error, S3Error::BucketMissing { .. }), "{error:?}");
    }
}

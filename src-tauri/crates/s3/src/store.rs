//! The S3 client built from [`S3Settings`] and the operations the app needs.

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::create_bucket::CreateBucketError;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart,
    CreateBucketConfiguration, Delete, ObjectIdentifier,
};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};

use crate::error::Origin;
use crate::parts::{self, Part};
use crate::{MAX_PRESIGNED_EXPIRY, PARALLEL_PARTS, PART_SIZE, S3Error, S3Settings};

/// One bucket on one S3-compatible server. Cheap to clone (its clones share one connection
/// pool); calls may run concurrently.
#[derive(Clone)]
pub struct S3Store {
    client: Client,
    endpoint: String,
    bucket: String,
    region: String,
    access_key: String,
}

impl S3Store {
    /// Builds the client from `settings` alone; nothing is sent until the first call.
    pub fn new(settings: S3Settings) -> S3Store {
        let config = sdk_config(&settings).build();
        S3Store::with_config(settings, config)
    }

    fn with_config(settings: S3Settings, config: aws_sdk_s3::Config) -> S3Store {
        S3Store {
            client: Client::from_conf(config),
            endpoint: settings.endpoint,
            bucket: settings.bucket,
            region: settings.region,
            access_key: settings.access_key,
        }
    }

    /// Creates the bucket when it is missing; an existing bucket is fine.
    ///
    /// Asks first rather than creating blindly, so a key that may use the bucket but not create
    /// buckets (a common MinIO policy) still passes.
    pub async fn ensure_bucket(&self) -> Result<(), S3Error> {
        match self.head_bucket().await {
            Err(S3Error::BucketMissing { .. }) => {}
            exists_or_failed => return exists_or_failed,
        }
        let mut create = self.client.create_bucket().bucket(&self.bucket);
        // S3 wants the region named outside us-east-1; MinIO accepts it either way.
        if self.region != "us-east-1" {
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(self.region.as_str()))
                    .build(),
            );
        }
        match create.send().await {
            Ok(_) => Ok(()),
            // Someone created it between the two requests.
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(CreateBucketError::is_bucket_already_owned_by_you) =>
            {
                Ok(())
            }
            Err(error) => Err(self.error(error)),
        }
    }

    /// Uploads a file from disk under `key`. Small files: one PutObject. Files over [`PART_SIZE`]:
    /// multipart, parts read from disk one by one (never the whole file in memory), up to
    /// [`PARALLEL_PARTS`] in flight at once, aborting the multipart upload on any failure.
    /// Returns the size uploaded.
    ///
    /// A file that gets shorter during the upload fails with [`S3Error::FileChanged`]. If the
    /// returned future is dropped mid-upload, the incomplete multipart upload stays on the server
    /// until a lifecycle rule removes it; it never becomes a visible object.
    pub async fn upload_file(
        &self,
        path: &Path,
        key: &str,
        content_type: &str,
    ) -> Result<u64, S3Error> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|cause| S3Error::File {
                path: path.to_owned(),
                cause,
            })?
            .len();
        if size <= PART_SIZE {
            let body = parts::read(path, 0, size).await?;
            self.put(key, body, content_type).await?;
        } else {
            self.upload_multipart(path, key, content_type, size).await?;
        }
        Ok(size)
    }

    /// Stores `bytes` under `key` with one PutObject.
    pub async fn put_bytes(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), S3Error> {
        self.put(key, Bytes::from(bytes), content_type).await
    }

    /// A URL anyone can GET `key` from until it expires, e.g. for fal to download a training set.
    ///
    /// `expires_in` is capped at [`MAX_PRESIGNED_EXPIRY`] (7 days): SigV4 presigned URLs cannot
    /// live longer, and servers refuse the ones that ask to. The URL is signed locally with this
    /// computer's clock; [`S3Store::check`] tells when that clock is too far off.
    pub async fn presigned_get(&self, key: &str, expires_in: Duration) -> Result<String, S3Error> {
        // Presigning would read the system clock; the store's clock keeps every signature alike.
        let presigning = PresigningConfig::builder()
            .start_time(self.now())
            .expires_in(expires_in.min(MAX_PRESIGNED_EXPIRY))
            .build()
            .map_err(|error| S3Error::Request {
                detail: error.to_string(),
            })?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presigning)
            .await
            .map_err(|error| self.error(error))?;
        Ok(request.uri().to_owned())
    }

    /// Removes every object whose key starts with `prefix` and returns how many there were.
    ///
    /// End the prefix with `/` to remove one folder: `sets/a` also matches `sets/ab/…`.
    /// An empty prefix is refused rather than emptying the bucket.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<usize, S3Error> {
        if prefix.is_empty() {
            return Err(S3Error::EmptyPrefix);
        }
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut deleted = 0;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| self.error(error))?;
            let objects: Vec<ObjectIdentifier> = page
                .contents()
                .iter()
                .filter_map(|object| object.key())
                .map(|key| {
                    ObjectIdentifier::builder()
                        .key(key)
                        .build()
                        .expect("the key is set")
                })
                .collect();
            if objects.is_empty() {
                continue;
            }
            let count = objects.len();
            // A listing page holds at most 1,000 keys, as many as one DeleteObjects accepts.
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .expect("the objects are set");
            let answer = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|error| self.error(error))?;
            if let Some(failure) = answer.errors().first() {
                return Err(self.refused_deletion(failure));
            }
            deleted += count;
        }
        Ok(deleted)
    }

    /// For a "check connection" action: one HeadBucket, its failure worded for the creator.
    ///
    /// Tried once, as the creator is waiting for this answer, and signed with this computer's
    /// own clock, as presigned URLs are: the SDK would otherwise silently correct a wrong clock
    /// for its own requests while the URLs handed to fal stay broken.
    pub async fn check(&self) -> Result<(), S3Error> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .customize()
            .config_override(
                aws_sdk_s3::Config::builder()
                    .retry_config(RetryConfig::disabled())
                    .disable_clock_skew_correction(true),
            )
            .send()
            .await
            .map_err(|error| self.error(error))?;
        Ok(())
    }

    async fn head_bucket(&self) -> Result<(), S3Error> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|error| self.error(error))?;
        Ok(())
    }

    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), S3Error> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|error| self.error(error))?;
        Ok(())
    }

    async fn upload_multipart(
        &self,
        path: &Path,
        key: &str,
        content_type: &str,
        size: u64,
    ) -> Result<(), S3Error> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            // Declared up front: MinIO refuses part checksums the upload was not created with.
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|error| self.error(error))?;
        let upload_id = created.upload_id().ok_or_else(|| S3Error::Request {
            detail: "the server started a multipart upload without naming it".to_owned(),
        })?;
        let uploaded = self.upload_parts(path, key, upload_id, size).await;
        if uploaded.is_err() {
            // Stored parts would otherwise linger unseen, taking space. The upload's own error is
            // what the creator needs, so a failed abort is not reported on top of it.
            let _abort_is_best_effort = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .send()
                .await;
        }
        uploaded
    }

    async fn upload_parts(
        &self,
        path: &Path,
        key: &str,
        upload_id: &str,
        size: u64,
    ) -> Result<(), S3Error> {
        // Each part is read only when its upload starts, so at most PARALLEL_PARTS are in memory;
        // the first failure drops (cancels) the parts still in flight.
        let mut completed: Vec<CompletedPart> = stream::iter(parts::plan(size))
            .map(|part| self.upload_part(path, key, upload_id, part))
            .buffer_unordered(PARALLEL_PARTS)
            .try_collect()
            .await?;
        completed.sort_by_key(|part| part.part_number());
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(completed))
                    .build(),
            )
            .send()
            .await
            .map_err(|error| self.error(error))?;
        Ok(())
    }

    async fn upload_part(
        &self,
        path: &Path,
        key: &str,
        upload_id: &str,
        part: Part,
    ) -> Result<CompletedPart, S3Error> {
        let body = parts::read(path, part.offset, part.len).await?;
        let uploaded = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part.number)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|error| self.error(error))?;
        // Servers that record part checksums require them again on completion.
        Ok(CompletedPart::builder()
            .part_number(part.number)
            .set_e_tag(uploaded.e_tag)
            .set_checksum_crc32(uploaded.checksum_crc32)
            .build())
    }

    fn refused_deletion(&self, failure: &aws_sdk_s3::types::Error) -> S3Error {
        let key = failure.key().unwrap_or_default();
        let message = failure.message().unwrap_or_default();
        match failure.code() {
            Some("AccessDenied") => S3Error::AccessDenied {
                access_key: self.access_key.clone(),
                bucket: self.bucket.clone(),
                message: format!("cannot delete {key}: {message}"),
            },
            // DeleteObjects reports per-key failures inside a successful (200) answer.
            code => S3Error::Service {
                status: 200,
                code: code.unwrap_or("no error code").to_owned(),
                message: format!("cannot delete {key}: {message}"),
            },
        }
    }

    fn error<E>(&self, error: SdkError<E, HttpResponse>) -> S3Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let origin = Origin {
            endpoint: &self.endpoint,
            bucket: &self.bucket,
            access_key: &self.access_key,
            local_time: self.now(),
        };
        S3Error::from_sdk(error, &origin)
    }

    /// The clock requests are signed with.
    fn now(&self) -> SystemTime {
        self.client
            .config()
            .time_source()
            .map_or_else(SystemTime::now, |clock| clock.now())
    }
}

/// Written by hand: the client's own `Debug` is long and says nothing useful.
impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// Everything comes from `settings`: nothing is read from `~/.aws` or `AWS_*` variables.
fn sdk_config(settings: &S3Settings) -> aws_sdk_s3::config::Builder {
    let credentials = Credentials::new(
        &settings.access_key,
        &settings.secret_key,
        None,
        None,
        "avatar-studio-settings",
    );
    aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&settings.endpoint)
        .region(Region::new(settings.region.clone()))
        .credentials_provider(credentials)
        // MinIO and most self-hosted stores serve buckets as paths, not as subdomains.
        .force_path_style(true)
}

#[cfg(test)]
mod tests {
    use aws_smithy_async::time::TimeSource;

    use super::*;
    use crate::test_server::S3TestServer;

    const AN_HOUR: Duration = Duration::from_secs(60 * 60);

    /// A computer whose clock is an hour behind the server's.
    #[derive(Debug)]
    struct HourBehind;

    impl TimeSource for HourBehind {
        fn now(&self) -> SystemTime {
            SystemTime::now() - AN_HOUR
        }
    }

    #[tokio::test]
    async fn check_reports_a_wrong_clock_that_ordinary_requests_get_past() {
        let server = S3TestServer::start();
        let settings = server.settings("skewed");
        S3Store::new(settings.clone())
            .ensure_bucket()
            .await
            .expect("create the bucket");
        let config = sdk_config(&settings).time_source(HourBehind).build();
        let store = S3Store::with_config(settings, config);

        let error = store
            .check()
            .await
            .expect_err("an hour off is past the server's limit");
        assert!(
            matches!(error, S3Error::ClockSkew { offset: Some(offset) } if offset.abs_diff(AN_HOUR) < Duration::from_secs(60)),
            "{error:?}"
        );

        // The SDK learns the server's time from a refusal and signs its retry with it...
        store
            .put_bytes("set.zip", b"zip".to_vec(), "application/zip")
            .await
            .expect("ordinary requests correct a skewed clock");
        // ...but a presigned URL carries this computer's time, which is why check() must tell.
        let url = store
            .presigned_get("set.zip", Duration::from_secs(30 * 60))
            .await
            .expect("presign");
        let status = reqwest::get(url).await.expect("GET the URL").status();
        assert_eq!(
            status, 403,
            "a URL signed an hour ago for 30 minutes has expired"
        );
    }
}

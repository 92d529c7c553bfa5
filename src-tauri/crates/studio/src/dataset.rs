//! The training set: the avatar's accepted photos, upright and stripped of metadata, packed into a
//! zip on disk (one photo in memory at a time), and the places it can be uploaded to.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use library::{PARTIAL_SUFFIX, Photo};
use md5::{Digest, Md5};
use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

use crate::{Error, Result};

/// MD5 over the photos' own hashes, in a stable order: which set a job trained on.
pub fn training_set_hash(photos: &[Photo]) -> String {
    let mut hashes: Vec<&str> = photos
        .iter()
        .map(|photo| photo.file_hash.as_str())
        .collect();
    hashes.sort_unstable();
    let mut hasher = Md5::new();
    for hash in hashes {
        hasher.update(hash.as_bytes());
        hasher.update(b"\n");
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Writes the zip to `destination` (through a partial name, so it is whole or absent). Photos
/// are stored, not deflated: JPEG and PNG do not compress further. With a trigger phrase, each
/// image gets a caption file naming it, which the trainers read. One thread reads and cleans the
/// next photo while another writes the zip; the queue between them holds one photo, so memory
/// stays at a few photos whatever the set's size.
pub fn pack(photos: &[PathBuf], caption: Option<&str>, destination: &Path) -> Result<u64> {
    let partial = destination.with_extension(format!("zip{PARTIAL_SUFFIX}"));
    let written = std::thread::scope(|scope| {
        let (sender, copies) = std::sync::mpsc::sync_channel(0);
        // Written copies come back to be filled again: a few buffers serve the whole set.
        let (give_back, written_copies) = std::sync::mpsc::channel();
        scope.spawn(move || {
            let mut bytes = Vec::new();
            for path in photos {
                bytes.clear();
                let reuse = written_copies.try_recv().unwrap_or_default();
                let copy = File::open(path)
                    .and_then(|mut file| file.read_to_end(&mut bytes))
                    .map_err(|error| error.to_string())
                    .and_then(|_| photos::training_copy(&bytes, reuse))
                    .map_err(|error| format!("{}: {error}", path.display()));
                let failed = copy.is_err();
                if sender.send(copy).is_err() || failed {
                    return;
                }
            }
        });
        write_zip(copies, give_back, caption, &partial, destination)
    });
    written.map_err(|error| {
        let _ = std::fs::remove_file(&partial);
        Error::Internal(format!("packing the training set failed: {error}"))
    })
}

fn write_zip(
    copies: std::sync::mpsc::Receiver<std::result::Result<photos::TrainingCopy, String>>,
    give_back: std::sync::mpsc::Sender<Vec<u8>>,
    caption: Option<&str>,
    partial: &Path,
    destination: &Path,
) -> std::result::Result<u64, String> {
    if let Some(parent) = destination.parent() {
        std::fs::create_dir_all(parent).map_err(|error| error.to_string())?;
    }
    let file = File::create(partial).map_err(|error| error.to_string())?;
    let mut zip = zip::ZipWriter::new(BufWriter::new(file));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .large_file(false);
    for (index, copy) in copies.into_iter().enumerate() {
        let copy = copy?;
        let stem = format!("{:03}", index + 1);
        zip.start_file(format!("{stem}.{}", copy.extension), options)
            .map_err(|error| error.to_string())?;
        zip.write_all(&copy.bytes)
            .map_err(|error| error.to_string())?;
        if let Some(caption) = caption {
            zip.start_file(format!("{stem}.txt"), options)
                .map_err(|error| error.to_string())?;
            zip.write_all(caption.as_bytes())
                .map_err(|error| error.to_string())?;
        }
        // The packer may have finished already; then the buffer is simply freed.
        let _ = give_back.send(copy.bytes);
    }
    let writer = zip.finish().map_err(|error| error.to_string())?;
    let file = writer.into_inner().map_err(|error| error.to_string())?;
    // Synced before it is renamed into place: an upload cut off by a crash goes on from this
    // file, so a whole file must never be confused with a torn one.
    file.sync_all().map_err(|error| error.to_string())?;
    let length = file.metadata().map_err(|error| error.to_string())?.len();
    std::fs::rename(partial, destination).map_err(|error| error.to_string())?;
    Ok(length)
}

/// Writes the training copy of the photo at `source` (upright, without metadata) to
/// `destination` and returns its extension.
pub fn write_training_copy(source: &Path, destination: &Path) -> Result<&'static str> {
    let failed = |error: String| {
        Error::Internal(format!(
            "preparing {} for upload failed: {error}",
            source.display()
        ))
    };
    let bytes = std::fs::read(source).map_err(|error| failed(error.to_string()))?;
    let copy = photos::training_copy(&bytes, Vec::new()).map_err(failed)?;
    std::fs::write(destination, &copy.bytes).map_err(|error| failed(error.to_string()))?;
    Ok(copy.extension)
}

/// Somewhere a training set can be put so that fal's runners can fetch it.
#[async_trait]
pub trait DatasetStore: Send + Sync {
    /// `s3` or `fal`, as recorded in the job.
    fn kind(&self) -> &'static str;
    /// Uploads a file under `key` and returns a URL fal can fetch without credentials.
    async fn upload(&self, path: &Path, key: &str, content_type: &str) -> Result<String>;
}

/// A MinIO/S3 bucket: multipart upload, then a presigned GET URL.
pub struct S3DatasetStore(pub s3::S3Store);

/// How long fal may take to fetch the set: the longest a SigV4 presigned URL may live, because a
/// job can wait in fal's queue for a long time before its runner downloads the zip.
const PRESIGNED_URL_LIFETIME: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

#[async_trait]
impl DatasetStore for S3DatasetStore {
    fn kind(&self) -> &'static str {
        "s3"
    }

    async fn upload(&self, path: &Path, key: &str, content_type: &str) -> Result<String> {
        let upload_error = s3_error;
        self.0.ensure_bucket().await.map_err(upload_error)?;
        self.0
            .upload_file(path, key, content_type)
            .await
            .map_err(upload_error)?;
        self.0
            .presigned_get(key, PRESIGNED_URL_LIFETIME)
            .await
            .map_err(upload_error)
    }
}

/// Whether photos sent to `endpoint` are encrypted on the way (`https`) or never leave this
/// machine (plain `http` to a loopback address).
pub(crate) fn is_encrypted_or_local(endpoint: &str) -> bool {
    let Ok(url) = url::Url::parse(endpoint) else {
        return false;
    };
    match (url.scheme(), url.host()) {
        ("https", Some(_)) => true,
        ("http", Some(url::Host::Domain(name))) => name == "localhost",
        ("http", Some(url::Host::Ipv4(address))) => address.is_loopback(),
        ("http", Some(url::Host::Ipv6(address))) => address.is_loopback(),
        _ => false,
    }
}

/// An S3 failure as the error the creator can act on.
pub(crate) fn s3_error(error: s3::S3Error) -> Error {
    let message = format!("S3: {error}");
    match error {
        s3::S3Error::WrongCredentials { .. } | s3::S3Error::AccessDenied { .. } => {
            Error::WrongKey(message)
        }
        s3::S3Error::InvalidEndpoint { .. } | s3::S3Error::BucketMissing { .. } => {
            Error::InvalidConfig(message)
        }
        _ => Error::Remote(message),
    }
}

/// How long fal storage keeps a training set (`X-Fal-Object-Lifecycle`): a public address to
/// the creator's face photos should not outlive its use. fal's runner fetches the set when the
/// job starts; a day covers a long queue, and a set that expired unused is uploaded again by a
/// new start.
pub const TRAINING_SET_LIFETIME: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// fal's own storage: public CDN URLs.
pub struct FalDatasetStore(pub fal::FalClient);

#[async_trait]
impl DatasetStore for FalDatasetStore {
    fn kind(&self) -> &'static str {
        "fal"
    }

    async fn upload(&self, path: &Path, key: &str, content_type: &str) -> Result<String> {
        let file_name = key.rsplit('/').next().unwrap_or(key);
        self.0
            .upload(fal::UploadFile {
                path,
                content_type,
                file_name,
                lifetime: fal::Lifetime(TRAINING_SET_LIFETIME),
            })
            .await
            .map_err(Error::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photos_go_only_over_https_or_to_this_machine() {
        for endpoint in [
            "https://s3.example.com",
            "https://192.168.1.20:9000",
            "http://127.0.0.1:9000",
            "http://localhost:9000",
            "http://[::1]:9000",
        ] {
            assert!(is_encrypted_or_local(endpoint), "{endpoint}");
        }
        for endpoint in [
            "http://192.168.1.20:9000",
            "http://minio.lan:9000",
            "http://s3.example.com",
            "ftp://127.0.0.1",
            "not an address",
        ] {
            assert!(!is_encrypted_or_local(endpoint), "{endpoint}");
        }
    }
}

//! How a file is cut into multipart-upload parts, and reading one part from disk.

use std::io::{ErrorKind, SeekFrom};
use std::path::Path;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::{PART_SIZE, S3Error};

/// S3 numbers parts 1 to 10,000.
const MAX_PARTS: u64 = 10_000;

/// One slice of the file, sent as one UploadPart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Part {
    /// 1-based, as S3 wants it.
    pub number: i32,
    pub offset: u64,
    pub len: u64,
}

/// The parts of a file of `size` bytes: [`PART_SIZE`] each (the last one shorter), grown only when
/// the file would otherwise need more parts than S3 allows.
pub(crate) fn plan(size: u64) -> impl Iterator<Item = Part> {
    let part_size = PART_SIZE.max(size.div_ceil(MAX_PARTS));
    (0..size.div_ceil(part_size)).map(move |index| {
        let offset = index * part_size;
        Part {
            number: i32::try_from(index + 1).expect("at most 10,000 parts"),
            offset,
            len: part_size.min(size - offset),
        }
    })
}

/// Reads `len` bytes at `offset`, opening the file afresh so parts can be read concurrently.
pub(crate) async fn read(path: &Path, offset: u64, len: u64) -> Result<Bytes, S3Error> {
    let unreadable = |cause| S3Error::File {
        path: path.to_owned(),
        cause,
    };
    let mut file = tokio::fs::File::open(path).await.map_err(unreadable)?;
    file.seek(SeekFrom::Start(offset))
        .await
        .map_err(unreadable)?;
    let mut buffer = vec![0; usize::try_from(len).expect("a part fits in memory")];
    file.read_exact(&mut buffer)
        .await
        .map_err(|cause| match cause.kind() {
            ErrorKind::UnexpectedEof => S3Error::FileChanged {
                path: path.to_owned(),
            },
            _ => unreadable(cause),
        })?;
    Ok(Bytes::from(buffer))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn parts_cover_the_file_in_order_with_a_shorter_last_part() {
        let parts: Vec<Part> = plan(30 * MIB).collect();
        let lens: Vec<u64> = parts.iter().map(|part| part.len / MIB).collect();
        assert_eq!(lens, [8, 8, 8, 6]);
        assert_eq!(
            parts.iter().map(|part| part.number).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert_eq!(parts[3].offset, 24 * MIB);
    }

    #[test]
    fn an_exact_multiple_has_no_empty_trailing_part() {
        let parts: Vec<Part> = plan(2 * PART_SIZE).collect();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|part| part.len == PART_SIZE));
    }

    #[test]
    fn huge_files_stay_within_the_part_limit() {
        let size = 200 * 1024 * MIB;
        let parts: Vec<Part> = plan(size).collect();
        assert!(parts.len() as u64 <= MAX_PARTS, "{} parts", parts.len());
        assert_eq!(parts.iter().map(|part| part.len).sum::<u64>(), size);
    }
}

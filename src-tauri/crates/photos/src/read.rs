//! Reading a photo file as far as it may go: only a regular file, never one of the kernel's
//! (procfs, sysfs, devices), never more than the size limit plus one byte. A file's size says
//! nothing for sure: `/proc/self/pagemap` reports 0 bytes and streams 256 GiB.

use std::io::Read;
use std::path::Path;

/// Why a file was not read whole.
#[derive(Debug)]
pub enum ReadRefusal {
    /// Larger than the limit: from its size, or once the limit was read.
    TooLarge { size: u64 },
    /// Not a regular file (a folder, a device, a pipe) or one of the kernel's files.
    NotAFile,
    /// The file system refused it.
    Unreadable(std::io::Error),
}

/// The kernel's file systems: their files are not photos, and some never end.
const KERNEL_FOLDERS: [&str; 3] = ["/proc", "/sys", "/dev"];

/// Reads `path` whole when it is a regular photo-sized file: its size, the file behind any link
/// and what it holds are checked before and while it is read, so a file that lies about its
/// size costs at most `max_bytes + 1` bytes.
pub fn read_photo_file(path: &Path, max_bytes: u64) -> Result<Vec<u8>, ReadRefusal> {
    // Stat the path first: opening a pipe for reading would wait for a writer.
    let metadata = std::fs::metadata(path).map_err(ReadRefusal::Unreadable)?;
    if !metadata.is_file() || is_kernel_file(path) {
        return Err(ReadRefusal::NotAFile);
    }
    if metadata.len() > max_bytes {
        return Err(ReadRefusal::TooLarge {
            size: metadata.len(),
        });
    }
    let file = std::fs::File::open(path).map_err(ReadRefusal::Unreadable)?;
    // The file opened may not be the one stat saw (swapped in between).
    let opened = file.metadata().map_err(ReadRefusal::Unreadable)?;
    if !opened.is_file() {
        return Err(ReadRefusal::NotAFile);
    }
    let mut bytes = Vec::with_capacity(opened.len().min(max_bytes) as usize);
    file.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadRefusal::Unreadable)?;
    if bytes.len() as u64 > max_bytes {
        return Err(ReadRefusal::TooLarge {
            size: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// Whether `path`, links followed, lives in one of the kernel's file systems.
pub fn is_kernel_file(path: &Path) -> bool {
    std::fs::canonicalize(path)
        .is_ok_and(|real| KERNEL_FOLDERS.iter().any(|folder| real.starts_with(folder)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_never_ends_is_read_no_further_than_allowed() {
        let dir = tempfile::tempdir().expect("dir");
        let link = dir.path().join("pagemap.jpg");
        std::os::unix::fs::symlink("/proc/self/pagemap", &link).expect("link");
        assert!(matches!(
            read_photo_file(&link, 1024),
            Err(ReadRefusal::NotAFile)
        ));
        let zero = dir.path().join("zero.jpg");
        std::os::unix::fs::symlink("/dev/zero", &zero).expect("link");
        assert!(matches!(
            read_photo_file(&zero, 1024),
            Err(ReadRefusal::NotAFile)
        ));
    }

    #[test]
    fn a_pipe_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().expect("dir");
        let pipe = dir.path().join("pipe.jpg");
        let made = std::process::Command::new("mkfifo")
            .arg(&pipe)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        assert!(matches!(
            read_photo_file(&pipe, 1024),
            Err(ReadRefusal::NotAFile)
        ));
    }

    #[test]
    fn a_regular_file_is_read_whole_within_the_limit_and_refused_past_it() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("photo.jpg");
        std::fs::write(&path, vec![7u8; 100]).expect("write");
        assert_eq!(read_photo_file(&path, 100).expect("read").len(), 100);
        assert!(matches!(
            read_photo_file(&path, 99),
            Err(ReadRefusal::TooLarge { size: 100 })
        ));
    }
}

use std::fmt;

/// Where training sets are stored and the key to store them with.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// The server's base URL, e.g. `http://192.168.1.20:9000` or `https://s3.example.com`.
    pub endpoint: String,
    pub bucket: String,
    /// The signing region; MinIO's default is `us-east-1`.
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
}

/// Written by hand so the secret key never reaches a log.
impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field(
                "secret_key",
                &format_args!(
                    "{}",
                    if self.secret_key.is_empty() {
                        "<empty>"
                    } else {
                        "<set>"
                    }
                ),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret_key() {
        let settings = S3Settings {
            endpoint: "http://127.0.0.1:9000".into(),
            bucket: "avatars".into(),
            region: "us-east-1".into(),
            access_key: "studio".into(),
            secret_key: "very-secret-value".into(),
        };
        let printed = format!("{settings:?}");
        assert!(!printed.contains("very-secret-value"), "{printed}");
        assert!(printed.contains("secret_key: <set>"), "{printed}");
        assert!(
            printed.contains("studio"),
            "the access key helps diagnose: {printed}"
        );
    }
}

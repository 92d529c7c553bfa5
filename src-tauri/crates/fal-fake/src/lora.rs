//! The LoRA file a successful job yields: a valid safetensors file of an exact size, generated
//! while it streams so that a 90 MB LoRA costs no memory.
//!
//! Layout (safetensors): an 8-byte little-endian header length, a JSON header padded with spaces
//! (the format allows trailing whitespace), then the tensor data. The header describes one F32
//! tensor, "lora.weight", whose data fills the rest of the file, and its `__metadata__` (string
//! values only, as the format requires) names the training request that made it, so a copy the
//! client uploads elsewhere still leads an inference back to that training's photos.

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use serde_json::{Value, json};

/// Room kept for the JSON header; the longest header (20-digit numbers, a 36-character request
/// id) needs about 200 bytes.
const HEADER_ROOM: u64 = 256;

/// The `__metadata__` key naming the training request a LoRA came from.
pub(crate) const TRAINING_REQUEST_KEY: &str = "fake_training_request";

/// The smallest LoRA the fake can produce: a header and no weights.
pub const MIN_LORA_BYTES: u64 = 8 + HEADER_ROOM;

const CHUNK_BYTES: u64 = 64 * 1024;

/// The header bytes (length prefix included) and the data length of a `total`-byte file.
fn layout(total: u64, training_request: &str) -> (Bytes, u64) {
    let elements = (total - MIN_LORA_BYTES) / 4;
    let data_len = elements * 4;
    let header_len = total - 8 - data_len;
    let header = json!({
        "__metadata__": { "format": "pt", TRAINING_REQUEST_KEY: training_request },
        "lora.weight": { "dtype": "F32", "shape": [elements], "data_offsets": [0, data_len] },
    })
    .to_string();
    let mut bytes = Vec::with_capacity(8 + header_len as usize);
    bytes.extend_from_slice(&header_len.to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.resize(8 + header_len as usize, b' ');
    (bytes.into(), data_len)
}

/// One chunk of small, varied weights, repeated to fill the data.
fn weight_chunk() -> Bytes {
    (0..CHUNK_BYTES / 4)
        .flat_map(|index| ((index * 7919 % 2001) as f32 * 1e-5 - 0.01).to_le_bytes())
        .collect::<Vec<u8>>()
        .into()
}

/// The bytes of a `total`-byte LoRA made by `training_request`; `total` is at least
/// [`MIN_LORA_BYTES`].
pub(crate) fn lora_file(
    total: u64,
    training_request: &str,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + use<> {
    let (header, data_len) = layout(total, training_request);
    let chunk = weight_chunk();
    let data = stream::unfold(data_len, move |remaining| {
        let next = chunk.slice(..remaining.min(CHUNK_BYTES) as usize);
        let left = remaining - next.len() as u64;
        async move { (remaining > 0).then_some((Ok(next), left)) }
    });
    stream::once(async { Ok(header) }).chain(data)
}

/// The training request named in a safetensors header, when the fake made that LoRA.
pub(crate) fn training_request(header: &Value) -> Option<&str> {
    header["__metadata__"][TRAINING_REQUEST_KEY].as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST_ID: &str = "0b3c5a3e-8f1d-4c61-9a57-2f1e4d6c7b80";

    async fn bytes_of(total: u64) -> Vec<u8> {
        let chunks: Vec<_> = lora_file(total, REQUEST_ID).collect().await;
        chunks
            .into_iter()
            .flat_map(|chunk| chunk.unwrap())
            .collect()
    }

    #[tokio::test]
    async fn files_have_the_exact_size_and_a_header_that_covers_the_data() {
        for total in [
            MIN_LORA_BYTES,
            MIN_LORA_BYTES + 1,
            MIN_LORA_BYTES + 3,
            4096,
            CHUNK_BYTES * 3 + 5,
        ] {
            let file = bytes_of(total).await;
            assert_eq!(file.len() as u64, total);

            let header_len = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
            let header: serde_json::Value =
                serde_json::from_slice(&file[8..8 + header_len]).unwrap();
            let tensor = &header["lora.weight"];
            assert_eq!(tensor["dtype"], "F32");
            let elements = tensor["shape"][0].as_u64().unwrap();
            let end = tensor["data_offsets"][1].as_u64().unwrap();
            assert_eq!(tensor["data_offsets"][0], 0);
            assert_eq!(end, elements * 4, "F32 data is four bytes per element");
            assert_eq!(
                8 + header_len as u64 + end,
                total,
                "the data runs to the end of the file"
            );
            assert_eq!(training_request(&header), Some(REQUEST_ID));
            assert!(
                header["__metadata__"]
                    .as_object()
                    .unwrap()
                    .values()
                    .all(Value::is_string),
                "safetensors metadata values are strings"
            );
        }
    }
}

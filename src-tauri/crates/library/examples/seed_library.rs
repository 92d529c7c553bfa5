//! Fills a library with many avatars and photos, for the UI's benchmarks (cold start with 1,000
//! avatars, scrolling 20,000 photos). Every photo gets its own bytes and thumbnail (a real
//! thumbnail with a distinct tail, which decoders ignore), so each is a separate file as in use.
//!
//! usage: cargo run --release -p library --example seed_library -- LIBRARY AVATARS \
//!        PHOTOS_PER_AVATAR THUMBNAIL.jpg

use std::path::PathBuf;

use chrono::Utc;
use library::{Avatar, Gender, Library, Photo, PhotoDetails, TrainingType};
use uuid::Uuid;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [library, avatars, photos, thumbnail] = args.as_slice() else {
        eprintln!("usage: seed_library LIBRARY AVATARS PHOTOS_PER_AVATAR THUMBNAIL.jpg");
        std::process::exit(2);
    };
    let library = Library::open(&PathBuf::from(library)).expect("library");
    let avatars: usize = avatars.parse().expect("a count of avatars");
    let photos: usize = photos.parse().expect("a count of photos per avatar");
    let thumbnail = std::fs::read(thumbnail).expect("thumbnail");
    for index in 0..avatars {
        let avatar = Avatar::draft(
            format!("Avatar {index:04}"),
            Gender::Female,
            TrainingType::Portrait,
            Utc::now(),
        );
        library.insert_avatar(&avatar).expect("avatar");
        for number in 0..photos {
            let mut bytes = thumbnail.clone();
            bytes.extend_from_slice(format!("{}-{number}", avatar.id).as_bytes());
            let photo = Photo {
                id: library::PhotoId::new(),
                avatar_id: avatar.id,
                minio_key: None,
                file_hash: format!("{:032x}", Uuid::new_v4().as_u128()),
                file_size: bytes.len() as u64,
                validation_status: "accepted".into(),
                has_face: true,
                face_count: 1,
                quality_score: Some(0.8),
                width: 3000,
                height: 4000,
                original_name: format!("IMG_{number:05}.jpg"),
                format: "jpeg".into(),
                difference_hash: None,
                warnings: Vec::new(),
                created_at: Utc::now(),
            };
            let details = PhotoDetails {
                faces_json: "[]",
                quality_json: "{}",
                identities_json: None,
            };
            library
                .store_photo(&photo, details, &bytes, Some(&bytes))
                .expect("photo");
        }
    }
    println!("seeded {avatars} avatars with {photos} photos each");
}

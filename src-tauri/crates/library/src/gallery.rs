//! Generations (sample packs made with a trained model) and the gallery of images they brought.
//! A generation is written before anything is made; an image's file is complete before its row
//! points at it, and each place in a pack holds one image, so a pack carried on after a crash
//! never stores an image twice.

use std::path::PathBuf;

use rusqlite::{OptionalExtension, Row, params};
use uuid::Uuid;

use crate::avatars::{parse_id, parse_time};
use crate::blobs::write_atomically;
use crate::jobs::{COMMITTED_IN_MONTH, timestamp};
use crate::{AvatarId, JobId};
use crate::{
    GalleryImage, Generation, GenerationRequest, GenerationState, JobFailure, Library,
    LibraryError, RequestState, Result,
};

/// The folder, inside a library folder, holding gallery images named by their content hash.
pub const GALLERY_DIR: &str = "gallery";

const SELECT_GENERATION: &str = "SELECT id, avatar_id, training_job_id, pack, prompts,
    images_per_prompt, seed, image_size, endpoint, test_mode, state, confirmed_cost_usd,
    price_source, failure, cancel_requested, created_at, updated_at, finished_at, lora_url
    FROM generations";

/// What recording a new generation did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GenerationInsert {
    Inserted,
    /// The month's paid and committed requests (`committed_usd`) and this pack would pass the budget.
    OverBudget {
        committed_usd: f64,
    },
}

const SELECT_IMAGE: &str = "SELECT id, generation_id, avatar_id, training_job_id, position, prompt,
    seed, file_hash, format, width, height, flagged, simulated, likeness, likeness_distance,
    copy_of, favourite, created_at FROM gallery_images";

impl Library {
    /// Where a gallery image's bytes live: `gallery/ab/abcdef….jpeg`.
    pub fn gallery_path(&self, file_hash: &str, format: &str) -> PathBuf {
        let shard = file_hash.get(..2).unwrap_or("00");
        self.root
            .join(GALLERY_DIR)
            .join(shard)
            .join(format!("{file_hash}.{format}"))
    }

    /// Records a new generation and one pending request per prompt, unless a monthly budget
    /// would be passed (checked and written in one transaction, as for trainings).
    pub fn insert_generation(
        &self,
        generation: &Generation,
        monthly_budget_usd: Option<f64>,
    ) -> Result<GenerationInsert> {
        let mut connection = self.connection();
        let transaction =
            connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Some(budget) = monthly_budget_usd {
            let month = generation.created_at.format("%Y-%m").to_string();
            let committed_usd: f64 =
                transaction.query_row(COMMITTED_IN_MONTH, [&month], |row| row.get(0))?;
            if committed_usd + generation.confirmed_cost_usd > budget + 0.005 {
                return Ok(GenerationInsert::OverBudget { committed_usd });
            }
        }
        transaction.execute(
            "INSERT INTO generations (id, avatar_id, training_job_id, pack, prompts,
                images_per_prompt, seed, image_size, endpoint, test_mode, state,
                confirmed_cost_usd, price_source, failure, cancel_requested, created_at,
                updated_at, finished_at, lora_url)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
            params![
                generation.id.to_string(),
                generation.avatar_id.to_string(),
                generation.training_job_id.to_string(),
                generation.pack,
                json(&generation.prompts)?,
                generation.images_per_prompt,
                generation.seed as i64,
                generation.image_size,
                generation.endpoint,
                generation.test_mode,
                generation.state.as_str(),
                generation.confirmed_cost_usd,
                generation.price_source,
                generation.failure.as_ref().map(json).transpose()?,
                generation.cancel_requested,
                timestamp(generation.created_at),
                timestamp(generation.updated_at),
                generation.finished_at.map(timestamp),
                generation.lora_url,
            ],
        )?;
        for prompt_index in 0..generation.prompts.len() as u32 {
            transaction.execute(
                "INSERT INTO generation_requests (generation_id, prompt_index, state)
                 VALUES (?1, ?2, 'pending')",
                params![generation.id.to_string(), prompt_index],
            )?;
        }
        transaction.commit()?;
        Ok(GenerationInsert::Inserted)
    }

    /// A generation's requests, one per prompt, in prompt order.
    pub fn generation_requests(&self, generation_id: Uuid) -> Result<Vec<GenerationRequest>> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached(
            "SELECT prompt_index, state, request_id, status_url, response_url, cancel_url, sent_at,
                paid, cancel_sent, failure
             FROM generation_requests WHERE generation_id = ?1 ORDER BY prompt_index",
        )?;
        let rows = statement.query_map([generation_id.to_string()], |row| {
            Ok((
                row.get::<_, u32>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, Option<String>>(4)?,
                row.get::<_, Option<String>>(5)?,
                row.get::<_, Option<String>>(6)?,
                row.get::<_, bool>(7)?,
                row.get::<_, bool>(8)?,
                row.get::<_, Option<String>>(9)?,
            ))
        })?;
        rows.map(|row| {
            let (
                prompt_index,
                state,
                request_id,
                status_url,
                response_url,
                cancel_url,
                sent_at,
                paid,
                cancel_sent,
                failure,
            ) = row?;
            let corrupt = |what: &str| {
                LibraryError::Corrupt(format!("request {prompt_index} of {generation_id}: {what}"))
            };
            Ok(GenerationRequest {
                generation_id,
                prompt_index,
                state: RequestState::parse(&state).ok_or_else(|| corrupt("state"))?,
                request_id,
                status_url,
                response_url,
                cancel_url,
                sent_at: sent_at.as_deref().map(parse_time).transpose()?,
                paid,
                cancel_sent,
                failure: failure
                    .map(|failure| serde_json::from_str::<JobFailure>(&failure))
                    .transpose()
                    .map_err(|_| corrupt("failure"))?,
            })
        })
        .collect()
    }

    /// Every fal request id any pack of the library holds.
    pub fn pack_request_ids(&self) -> Result<std::collections::HashSet<String>> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached(
            "SELECT request_id FROM generation_requests WHERE request_id IS NOT NULL",
        )?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Whether a pack request to `endpoint` other than prompt `prompt_index` of generation
    /// `generation_id` is being sent now (its answer not yet written): fal's history cannot then
    /// tell the two apart by time alone.
    pub fn pack_request_sending_to(
        &self,
        endpoint: &str,
        generation_id: Uuid,
        prompt_index: u32,
    ) -> Result<bool> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM generation_requests AS request
                JOIN generations ON generations.id = request.generation_id
             WHERE generations.endpoint = ?1 AND request.state = 'sending'
                AND NOT (request.generation_id = ?2 AND request.prompt_index = ?3))",
        )?;
        Ok(statement.query_row(
            params![endpoint, generation_id.to_string(), prompt_index],
            |row| row.get(0),
        )?)
    }

    /// Marks a pending request as being sent, paid, from `sent_at`: a compare-and-swap on its
    /// state, so of two processes advancing the same pack only the one whose row count is 1
    /// sends it.
    pub fn claim_generation_request(
        &self,
        request: &GenerationRequest,
        sent_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool> {
        let changed = self.connection().execute(
            "UPDATE generation_requests SET state = 'sending', paid = 1, sent_at = ?3
             WHERE generation_id = ?1 AND prompt_index = ?2 AND state = 'pending'",
            params![
                request.generation_id.to_string(),
                request.prompt_index,
                timestamp(sent_at),
            ],
        )?;
        Ok(changed == 1)
    }

    /// Writes one request of a generation as it is now.
    pub fn save_generation_request(&self, request: &GenerationRequest) -> Result<()> {
        self.connection().execute(
            "UPDATE generation_requests SET state = ?3, request_id = ?4, status_url = ?5,
                response_url = ?6, cancel_url = ?7, sent_at = ?8, paid = ?9, cancel_sent = ?10,
                failure = ?11
             WHERE generation_id = ?1 AND prompt_index = ?2",
            params![
                request.generation_id.to_string(),
                request.prompt_index,
                request.state.as_str(),
                request.request_id,
                request.status_url,
                request.response_url,
                request.cancel_url,
                request.sent_at.map(timestamp),
                request.paid,
                request.cancel_sent,
                request.failure.as_ref().map(json).transpose()?,
            ],
        )?;
        Ok(())
    }

    /// The LoRA URL a generation's requests name (a fresh copy once fal's had expired).
    pub fn set_generation_lora_url(&self, generation_id: Uuid, url: &str) -> Result<()> {
        self.connection().execute(
            "UPDATE generations SET lora_url = ?2 WHERE id = ?1",
            params![generation_id.to_string(), url],
        )?;
        Ok(())
    }

    /// Writes a generation's state, failure and times. A cancel asked for meanwhile by another
    /// process is kept.
    pub fn update_generation(&self, generation: &Generation) -> Result<()> {
        self.connection().execute(
            "UPDATE generations SET state = ?2, failure = ?3, updated_at = ?4, finished_at = ?5
             WHERE id = ?1",
            params![
                generation.id.to_string(),
                generation.state.as_str(),
                generation.failure.as_ref().map(json).transpose()?,
                timestamp(generation.updated_at),
                generation.finished_at.map(timestamp),
            ],
        )?;
        Ok(())
    }

    /// Asks an unfinished generation to stop; `false` when it had already ended.
    pub fn request_generation_cancel(&self, id: Uuid) -> Result<bool> {
        let changed = self.connection().execute(
            "UPDATE generations SET cancel_requested = 1
             WHERE id = ?1 AND state NOT IN ('completed', 'failed', 'cancelled')",
            [id.to_string()],
        )?;
        Ok(changed == 1)
    }

    pub fn generation(&self, id: Uuid) -> Result<Option<Generation>> {
        let connection = self.connection();
        let mut statement =
            connection.prepare_cached(&format!("{SELECT_GENERATION} WHERE id = ?1"))?;
        statement
            .query_row([id.to_string()], read_generation)
            .optional()?
            .transpose()
    }

    /// An avatar's generations, newest first.
    pub fn generations(&self, avatar_id: AvatarId) -> Result<Vec<Generation>> {
        self.query_generations(
            &format!(
                "{SELECT_GENERATION} WHERE avatar_id = ?1 ORDER BY created_at DESC, rowid DESC"
            ),
            &[&avatar_id.to_string()],
        )
    }

    /// Every generation not yet at its end, oldest first: what a start carries on.
    pub fn unfinished_generations(&self) -> Result<Vec<Generation>> {
        self.query_generations(
            &format!(
                "{SELECT_GENERATION} WHERE state NOT IN ('completed', 'failed', 'cancelled')
                 ORDER BY created_at, rowid"
            ),
            &[],
        )
    }

    fn query_generations(
        &self,
        sql: &str,
        parameters: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Generation>> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached(sql)?;
        let rows = statement.query_map(parameters, read_generation)?;
        rows.map(|row| row?).collect()
    }

    /// Stores an image at its place in a pack: the file first, then the row. An image already
    /// at that place (stored before a crash) is kept and `false` returned.
    pub fn store_gallery_image(&self, image: &GalleryImage, bytes: &[u8]) -> Result<bool> {
        // Under the shared file lock, so a sweep never takes a file whose row is on its way.
        self.storing(|| self.store_gallery_file_and_row(image, bytes))
    }

    fn store_gallery_file_and_row(&self, image: &GalleryImage, bytes: &[u8]) -> Result<bool> {
        let path = self.gallery_path(&image.file_hash, &image.format);
        if !path.exists() {
            write_atomically(&path, bytes).map_err(|source| LibraryError::Folder {
                path: path.clone(),
                source,
            })?;
        }
        let inserted = self.connection().execute(
            "INSERT OR IGNORE INTO gallery_images (id, generation_id, avatar_id, training_job_id,
                position, prompt, seed, file_hash, format, width, height, flagged, simulated,
                likeness, likeness_distance, copy_of, favourite, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
            params![
                image.id.to_string(),
                image.generation_id.to_string(),
                image.avatar_id.to_string(),
                image.training_job_id.to_string(),
                image.position,
                image.prompt,
                image.seed as i64,
                image.file_hash,
                image.format,
                image.width,
                image.height,
                image.flagged,
                image.simulated,
                image.likeness,
                image.likeness_distance,
                image.copy_of.map(|id| id.to_string()),
                image.favourite,
                timestamp(image.created_at),
            ],
        )?;
        Ok(inserted == 1)
    }

    /// An avatar's gallery, newest pack first, each pack in its own order.
    pub fn gallery(&self, avatar_id: AvatarId) -> Result<Vec<GalleryImage>> {
        self.query_images(
            &format!(
                "{SELECT_IMAGE} WHERE avatar_id = ?1
                 ORDER BY (SELECT created_at FROM generations WHERE id = generation_id) DESC,
                    generation_id, position"
            ),
            &[&avatar_id.to_string()],
        )
    }

    /// The likeness of every image of every completed pack, pack by pack, newest pack first:
    /// `(avatar, pack, likeness)`. One query, for the avatar cards.
    pub fn completed_pack_likeness(&self) -> Result<Vec<(AvatarId, Uuid, Option<f32>)>> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached(
            "SELECT packs.avatar_id, packs.id, images.likeness
             FROM generations AS packs JOIN gallery_images AS images ON images.generation_id = packs.id
             WHERE packs.state = 'completed'
             ORDER BY packs.created_at DESC, packs.rowid DESC",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<f32>>(2)?,
            ))
        })?;
        rows.map(|row| {
            let (avatar, pack, likeness) = row?;
            Ok((
                parse_id("avatar id", &avatar)?,
                parse_id("generation id", &pack)?,
                likeness,
            ))
        })
        .collect()
    }

    /// A generation's images, in pack order.
    pub fn generation_images(&self, generation_id: Uuid) -> Result<Vec<GalleryImage>> {
        self.query_images(
            &format!("{SELECT_IMAGE} WHERE generation_id = ?1 ORDER BY position"),
            &[&generation_id.to_string()],
        )
    }

    pub fn gallery_image(&self, id: Uuid) -> Result<Option<GalleryImage>> {
        Ok(self
            .query_images(&format!("{SELECT_IMAGE} WHERE id = ?1"), &[&id.to_string()])?
            .pop())
    }

    fn query_images(
        &self,
        sql: &str,
        parameters: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<GalleryImage>> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached(sql)?;
        let rows = statement.query_map(parameters, read_image)?;
        rows.map(|row| row?).collect()
    }

    /// Marks or unmarks an image as a favourite; `false` when there is no such image.
    pub fn set_favourite(&self, id: Uuid, favourite: bool) -> Result<bool> {
        let changed = self.connection().execute(
            "UPDATE gallery_images SET favourite = ?2 WHERE id = ?1",
            params![id.to_string(), favourite],
        )?;
        Ok(changed == 1)
    }

    /// Deletes an image's row, then its file through the sweep (unless another row holds the
    /// same bytes, or another process is storing files right now: a later sweep takes it).
    pub fn delete_gallery_image(&self, id: Uuid) -> Result<Option<GalleryImage>> {
        let Some(image) = self.gallery_image(id)? else {
            return Ok(None);
        };
        self.connection()
            .execute("DELETE FROM gallery_images WHERE id = ?1", [id.to_string()])?;
        self.sweep_unreferenced_files()?;
        Ok(Some(image))
    }
}

fn json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|error| LibraryError::Corrupt(error.to_string()))
}

fn read_generation(row: &Row<'_>) -> rusqlite::Result<Result<Generation>> {
    let text = |index: usize| row.get::<_, String>(index);
    let optional = |index: usize| row.get::<_, Option<String>>(index);
    let (id, avatar_id, training_job_id, prompts) = (text(0)?, text(1)?, text(2)?, text(4)?);
    let (state, failure) = (text(10)?, optional(13)?);
    let (created_at, updated_at, finished_at) = (text(15)?, text(16)?, optional(17)?);
    let seed: i64 = row.get(6)?;
    let generation = Generation {
        id: Uuid::nil(),
        avatar_id: AvatarId(Uuid::nil()),
        training_job_id: JobId(Uuid::nil()),
        pack: text(3)?,
        prompts: Vec::new(),
        images_per_prompt: row.get(5)?,
        seed: seed as u64,
        image_size: text(7)?,
        endpoint: text(8)?,
        test_mode: row.get(9)?,
        state: GenerationState::Pending,
        confirmed_cost_usd: row.get(11)?,
        price_source: text(12)?,
        failure: None,
        cancel_requested: row.get(14)?,
        created_at: chrono::DateTime::UNIX_EPOCH,
        updated_at: chrono::DateTime::UNIX_EPOCH,
        finished_at: None,
        lora_url: optional(18)?,
    };
    Ok((|| {
        let corrupt = |what: &str| LibraryError::Corrupt(format!("generation {id}: {what}"));
        Ok(Generation {
            id: parse_id("generation id", &id)?,
            avatar_id: parse_id("avatar id", &avatar_id)?,
            training_job_id: parse_id("training id", &training_job_id)?,
            prompts: serde_json::from_str(&prompts).map_err(|_| corrupt("prompts"))?,
            state: GenerationState::parse(&state).ok_or_else(|| corrupt("state"))?,
            failure: failure
                .map(|failure| serde_json::from_str::<JobFailure>(&failure))
                .transpose()
                .map_err(|_| corrupt("failure"))?,
            created_at: parse_time(&created_at)?,
            updated_at: parse_time(&updated_at)?,
            finished_at: finished_at.as_deref().map(parse_time).transpose()?,
            ..generation
        })
    })())
}

fn read_image(row: &Row<'_>) -> rusqlite::Result<Result<GalleryImage>> {
    let text = |index: usize| row.get::<_, String>(index);
    let (id, generation_id, avatar_id, training_job_id) = (text(0)?, text(1)?, text(2)?, text(3)?);
    let copy_of = row.get::<_, Option<String>>(15)?;
    let created_at = text(17)?;
    let seed: i64 = row.get(6)?;
    let image = GalleryImage {
        id: Uuid::nil(),
        generation_id: Uuid::nil(),
        avatar_id: AvatarId(Uuid::nil()),
        training_job_id: JobId(Uuid::nil()),
        position: row.get(4)?,
        prompt: text(5)?,
        seed: seed as u64,
        file_hash: text(7)?,
        format: text(8)?,
        width: row.get(9)?,
        height: row.get(10)?,
        flagged: row.get(11)?,
        simulated: row.get(12)?,
        likeness: row.get(13)?,
        likeness_distance: row.get(14)?,
        copy_of: None,
        favourite: row.get(16)?,
        created_at: chrono::DateTime::UNIX_EPOCH,
    };
    Ok((|| {
        Ok(GalleryImage {
            id: parse_id("image id", &id)?,
            generation_id: parse_id("generation id", &generation_id)?,
            avatar_id: parse_id("avatar id", &avatar_id)?,
            training_job_id: parse_id("training id", &training_job_id)?,
            copy_of: copy_of
                .as_deref()
                .map(|id| parse_id("photo id", id))
                .transpose()?,
            created_at: parse_time(&created_at)?,
            ..image
        })
    })())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::jobs::tests::library_with_avatar;

    fn pack(avatar_id: AvatarId) -> Generation {
        let at = chrono::Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
        Generation {
            id: Uuid::new_v4(),
            avatar_id,
            training_job_id: JobId::new(),
            pack: "custom".into(),
            prompts: vec!["TOK, a".into(), "TOK, b".into()],
            images_per_prompt: 2,
            seed: 1,
            image_size: "portrait_4_3".into(),
            endpoint: "fal-ai/flux-lora".into(),
            lora_url: None,
            test_mode: false,
            state: GenerationState::Pending,
            confirmed_cost_usd: 0.28,
            price_source: "fal".into(),
            failure: None,
            cancel_requested: false,
            created_at: at,
            updated_at: at,
            finished_at: None,
        }
    }

    #[test]
    fn a_pack_is_committed_while_it_may_send_and_its_paid_requests_are_in_the_ledger() {
        let (_dir, library, avatar) = library_with_avatar();
        let generation = pack(avatar);
        assert_eq!(
            library
                .insert_generation(&generation, Some(1.0))
                .expect("insert"),
            GenerationInsert::Inserted
        );
        assert_eq!(
            library.committed_in_month("2026-05").expect("committed"),
            0.28
        );
        assert_eq!(
            library
                .insert_generation(&pack(avatar), Some(0.5))
                .expect("insert"),
            GenerationInsert::OverBudget {
                committed_usd: 0.28
            },
            "two packs would pass a $0.50 budget"
        );
        let mut request = library
            .generation_requests(generation.id)
            .expect("requests")[0]
            .clone();
        assert_eq!(request.state, RequestState::Pending);
        request.state = RequestState::Sending;
        request.paid = true;
        library.save_generation_request(&request).expect("save");
        let months = library.monthly_spending().expect("ledger");
        assert_eq!(months.len(), 1);
        assert_eq!((months[0].requests, months[0].confirmed_usd), (1, 0.14));

        let mut ended = generation.clone();
        ended.state = GenerationState::Cancelled;
        library.update_generation(&ended).expect("end");
        assert_eq!(
            library.committed_in_month("2026-05").expect("committed"),
            0.28,
            "a pack with a paid request still counts"
        );
    }

    #[test]
    fn every_packs_request_ids_and_requests_being_sent_to_an_endpoint_are_known() {
        let (_dir, library, avatar) = library_with_avatar();
        let (first, second) = (pack(avatar), pack(avatar));
        for generation in [&first, &second] {
            library.insert_generation(generation, None).expect("insert");
        }
        let request = |generation: &Generation, index: usize| {
            library
                .generation_requests(generation.id)
                .expect("requests")[index]
                .clone()
        };
        let mut sent = request(&first, 0);
        sent.state = RequestState::Queued;
        sent.request_id = Some("req-first-0".into());
        library.save_generation_request(&sent).expect("save");
        let mut sending = request(&second, 1);
        sending.state = RequestState::Sending;
        library.save_generation_request(&sending).expect("save");
        assert_eq!(
            library.pack_request_ids().expect("ids"),
            std::collections::HashSet::from(["req-first-0".to_owned()])
        );
        let sending_besides = |generation: &Generation, index: u32| {
            library
                .pack_request_sending_to("fal-ai/flux-lora", generation.id, index)
                .expect("sending")
        };
        assert!(
            sending_besides(&first, 1),
            "another pack's request is being sent"
        );
        assert!(!sending_besides(&second, 1), "not counting itself");
        assert!(
            !library
                .pack_request_sending_to("fal-ai/other", first.id, 1)
                .expect("sending"),
            "only to the same endpoint"
        );
    }
}

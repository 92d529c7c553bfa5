//! What is left behind once a training ends: the library's S3 copies of its set (deleted unless
//! the creator keeps them) and the outputs fal stored for the request (deleted when the key may,
//! and what fal billed read when it may).

use library::TrainingJob;

use crate::Studio;
use crate::pricing::dollars;

/// Clean-up calls are best effort and the creator is not waiting on them: one retry.
const TIDY_TRIES: fal::RetryPolicy = fal::RetryPolicy {
    max_retries: 1,
    base_delay: std::time::Duration::from_millis(500),
    max_delay: std::time::Duration::from_millis(500),
};

impl Studio {
    /// Deletes the job's training set and the avatar's photo copies from S3 after a job ends,
    /// unless `AVATAR_KEEP_S3_UPLOADS` keeps them. The copies stay while a newer job of the
    /// avatar is under way (it uploads and uses them). A failure leaves them for the next end or
    /// the avatar's deletion; the job's own outcome does not depend on it.
    pub(crate) async fn remove_training_uploads(&self, job: &TrainingJob) {
        if self.config().keep_s3_uploads {
            return;
        }
        let Ok(Some(store)) = self.s3_store() else {
            return;
        };
        if job.storage.as_deref() == Some("s3")
            && let Some(key) = &job.dataset_key
        {
            let _ = store.delete_prefix(key).await;
        }
        let newer_under_way = self
            .library
            .latest_job(job.avatar_id)
            .ok()
            .flatten()
            .is_some_and(|latest| latest.id != job.id && !latest.state.is_final());
        if newer_under_way {
            return;
        }
        if store
            .delete_prefix(&format!("avatars/{}/photos/", job.avatar_id))
            .await
            .is_ok()
        {
            // The photo rows no longer name objects that are gone. A failure here only leaves
            // stale keys, rewritten by the next upload.
            let _ = self.library.clear_photo_keys(job.avatar_id);
        }
    }

    /// Once the model is saved: deletes the request's stored outputs on fal (`fal_outputs`
    /// records whether they went or stay until they expire) and reads what fal billed.
    pub(crate) async fn settle_on_fal(&self, job: &mut TrainingJob) {
        let (Ok(client), Some(request_id)) =
            (self.fal_client_retrying(TIDY_TRIES), job.request_id.clone())
        else {
            return;
        };
        // `deleted` only when fal named the files it found and deleted every one of them
        // (fal-protocol.md §8.3): an empty list found nothing, an `exception` kept that file.
        let deleted = client
            .delete_payloads(&request_id, &job.idempotency_key)
            .await
            .is_ok_and(|deletion| {
                !deletion.cdn_delete_results.is_empty()
                    && deletion
                        .cdn_delete_results
                        .iter()
                        .all(|file| file.exception.is_none())
            });
        job.fal_outputs = Some(if deleted { "deleted" } else { "kept" }.to_string());
        if let Ok(events) = client.billing_events(&request_id).await
            && !events.is_empty()
        {
            job.billed_cost_usd = Some(dollars(
                events.iter().map(fal::BillingEvent::cost_usd).sum(),
            ));
        }
    }
}

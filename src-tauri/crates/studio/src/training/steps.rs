//! The steps of a job: pack and upload the set, submit once, poll, fetch and verify the model;
//! and the trainer that does them on fal.

use super::*;

impl Studio {
    pub(super) async fn prepare_and_submit(&self, mut job: TrainingJob) -> Result<TrainingJob> {
        if job.cancel_requested {
            return self.conclude(job, JobState::Cancelled, None);
        }
        let avatar = self
            .library
            .avatar(job.avatar_id)?
            .ok_or_else(|| Error::NotFound(format!("the avatar of job {} is gone", job.id)))?;
        let trainer = self.trainer_of(job.test_mode);
        job = match trainer.upload(self, job.clone()).await {
            Ok(job) => job,
            // Settings the creator must fix: trying again later cannot help. The upload
            // wrote the job meanwhile, so it ends from what the ledger holds now.
            Err(
                Error::WrongKey(reason) | Error::InvalidConfig(reason) | Error::Rejected(reason),
            ) => {
                let latest = self.load_job(job.id)?;
                let failure = JobFailure::Settings { detail: reason };
                return self.conclude(latest, JobState::Failed, Some(failure));
            }
            // Another process moved the job on: this step stops at the fence.
            Err(error @ Error::Conflict(_)) => return Err(error),
            // Anything else (fal or S3 unreachable, an address gone, a file unreadable)
            // counts as a failed round, so the job cannot be retried for ever.
            Err(error) => {
                let latest = self.load_job(job.id)?;
                return self.transfer_failed(latest, Transfer::Upload, error);
            }
        };
        // A cancel may have come in while the set was uploading.
        let latest = self.load_job(job.id)?;
        if latest.cancel_requested {
            return self.conclude(job, JobState::Cancelled, None);
        }
        trainer.submit(self, job, &avatar).await
    }

    pub(super) async fn upload_training_set(&self, mut job: TrainingJob) -> Result<TrainingJob> {
        // One snapshot: the set and the photo copies go where one change of settings says.
        let in_force = self.in_force();
        let (route, _) = self.training_set_route(&in_force).await?;
        let store = super::dataset_store(&in_force, route)?;
        let photos: Vec<(library::Photo, PathBuf)> = self
            .library
            .photos(job.avatar_id)?
            .into_iter()
            .map(|photo| {
                let path = self.library.photo_path(&photo.file_hash, &photo.format);
                (photo, path)
            })
            .collect();
        let zip_path = self.library.dataset_path(job.id);
        // A set packed before a crash or a suspend is whole (it is renamed into place when
        // written) and keeps its upload journal valid, so the upload goes on where it stopped.
        let packed = match std::fs::metadata(&zip_path) {
            Ok(metadata) => metadata.len(),
            Err(_) => {
                job.progress = 2;
                let count = photos.len() as u32;
                job = self.save(job, JobStep::Packing { photos: count })?;
                let files: Vec<PathBuf> = photos.iter().map(|(_, path)| path.clone()).collect();
                let zip_path = zip_path.clone();
                tokio::task::spawn_blocking(move || dataset::pack(&files, None, &zip_path))
                    .await
                    .map_err(internal)??
            }
        };
        job.progress = 5;
        let megabytes = (packed as f64 / 1e5).round() / 10.0;
        let store_kind = store.kind().to_string();
        job = self.save(
            job,
            JobStep::Uploading {
                megabytes,
                store: store_kind,
            },
        )?;
        let prefix = format!("avatars/{}", job.avatar_id);
        if let Some(copies) = super::s3_copies(&in_force)? {
            // Each photo is kept as its own object too (the guide's `minio_key`): the same
            // upright, metadata-free copy the zip holds, never the original file.
            let copy_path = self.library.dataset_path(job.id).with_extension("photo");
            for (photo, path) in &photos {
                let extension = {
                    let (path, copy_path) = (path.clone(), copy_path.clone());
                    tokio::task::spawn_blocking(move || {
                        dataset::write_training_copy(&path, &copy_path)
                    })
                    .await
                    .map_err(internal)??
                };
                let key = format!("{prefix}/photos/{}.{extension}", photo.file_hash);
                let content_type = if extension == "png" {
                    "image/png"
                } else {
                    "image/jpeg"
                };
                let uploaded = copies.upload(&copy_path, &key, content_type).await;
                remove_if_present(&copy_path)?;
                uploaded?;
                self.library.set_photo_key(photo.id, &key)?;
            }
        }
        let key = format!("{prefix}/training/{}.zip", job.idempotency_key);
        let url = store.upload(&zip_path, &key, "application/zip").await?;
        remove_if_present(&zip_path)?;
        job.storage = Some(store.kind().to_string());
        job.dataset_key = Some(key);
        job.dataset_url = Some(url);
        job.progress = 8;
        self.save(job, JobStep::Uploaded)
    }

    /// Fetches the model as soon as the trainer reports completion (fal's results expire), under
    /// a partial name, verifies it, and only then moves it into place. A download that keeps
    /// failing ends the job with its reason after [`MAX_TRANSFER_ATTEMPTS`]; one that can never
    /// succeed ends it at once.
    pub(super) async fn download(&self, job: TrainingJob) -> Result<TrainingJob> {
        if job.cancel_requested {
            // The training ended; the creator no longer wants its model.
            return self.conclude(job, JobState::Cancelled, None);
        }
        let model_path = self.library.model_path(job.avatar_id, job.id);
        let partial = with_suffix(&model_path, PARTIAL_SUFFIX);
        remove_if_present(&partial)?;
        if let Some(parent) = model_path.parent() {
            std::fs::create_dir_all(parent).map_err(|error| file_error(parent, &error))?;
        }
        let trainer = self.trainer_of(job.test_mode);
        let (mut job, expected_size) = match trainer.fetch_model(self, job, &partial).await? {
            Fetched::Model { job, expected_size } => (job, expected_size),
            Fetched::Ended(job) => return Ok(job),
        };
        if let Err(reason) = verify_safetensors(&partial, expected_size) {
            remove_if_present(&partial)?;
            return self.transfer_failed(
                job,
                Transfer::Download,
                Error::Remote(format!("the downloaded model is damaged ({reason})")),
            );
        }
        std::fs::rename(&partial, &model_path).map_err(|error| file_error(&model_path, &error))?;
        job.model_path = Some(model_path.display().to_string());
        job.progress = 100;
        trainer.completed(self, &mut job).await;
        self.conclude(job, JobState::Completed, None)
    }

    /// The result, waiting briefly if fal answers "still in progress" just after COMPLETED.
    pub(super) async fn fetch_result(
        &self,
        client: &FalClient,
        response_url: &str,
    ) -> std::result::Result<serde_json::Value, FalError> {
        let mut attempts = 0;
        loop {
            match client.result(response_url).await {
                Err(FalError::NotReady) if attempts < 10 => {
                    attempts += 1;
                    self.clock.sleep(self.config().poll_interval).await;
                }
                other => return other,
            }
        }
    }
}

#[async_trait::async_trait]
impl Trainer for FalTrainer {
    fn ready(&self, studio: &Studio, storage: &str) -> Result<()> {
        let in_force = studio.in_force();
        in_force.fal_client()?;
        super::dataset_store(&in_force, storage)?;
        super::s3_copies(&in_force)?;
        Ok(())
    }

    async fn upload(&self, studio: &Studio, job: TrainingJob) -> Result<TrainingJob> {
        if job.dataset_url.is_some() {
            return Ok(job);
        }
        studio.upload_training_set(job).await
    }

    async fn submit(
        &self,
        studio: &Studio,
        mut job: TrainingJob,
        _avatar: &library::Avatar,
    ) -> Result<TrainingJob> {
        // Everything that can fail without fal is settled before the job is marked as being sent,
        // so a missing key never leaves a job whose fate cannot be told.
        let client = match studio.fal_client() {
            Ok(client) => client,
            Err(Error::InvalidConfig(reason)) => {
                let failure = JobFailure::Settings { detail: reason };
                return studio.conclude(job, JobState::Failed, Some(failure));
            }
            Err(error) => return Err(error),
        };
        let params: JobParams = serde_json::from_str(&job.params).map_err(internal)?;
        let trainer = studio.trainer(job.training_type);
        let input = TrainerSpec {
            endpoint: job.trainer.clone(),
            ..trainer
        }
        .input(
            job.dataset_url.as_deref().unwrap_or_default(),
            TRIGGER_PHRASE,
            fal::TrainingParams {
                steps: params.steps,
                learning_rate: params.learning_rate,
            },
        );
        let webhook = studio.webhook_url(job.training_type);
        // The fence before money moves: only the lease holder gets past it. From here on the
        // request counts as spent until fal's answer or its request history says otherwise.
        job.state = JobState::Submitting;
        job.paid_request = true;
        // Until fal answers, this is when sending began: the lookup of a lost answer starts here.
        job.submitted_at = Some(studio.clock.now());
        job = studio.save(job, JobStep::Sending)?;
        match client
            .submit(&job.trainer, &input, webhook.as_deref())
            .await
        {
            Ok(submitted) => {
                job.request_id = Some(submitted.request_id);
                job.status_url = Some(submitted.status_url);
                job.response_url = Some(submitted.response_url);
                job.cancel_url = Some(submitted.cancel_url);
                job.queue_position = submitted.queue_position;
                job.submitted_at = Some(studio.clock.now());
                job.state = JobState::Queued;
                job.progress = PROGRESS_SUBMITTED;
                let place = job.queue_position.map(|position| position + 1);
                studio.save(job, JobStep::Queued { place })
            }
            Err(error @ (FalError::WrongKey { .. } | FalError::Invalid { .. })) => {
                // Refused before it was queued: nothing runs, nothing is billed.
                job.paid_request = false;
                let failure = JobFailure::Refused {
                    detail: error.to_string(),
                };
                studio.conclude(job, JobState::Failed, Some(failure))
            }
            Err(error) if submit_not_taken(&error) => {
                // fal's answer proves it did not take the job: it waits for a later attempt.
                job.state = JobState::Preparing;
                job.paid_request = false;
                job.submitted_at = None;
                let detail = error.to_string();
                studio.save(job, JobStep::NotSent { detail })?;
                Err(error.into())
            }
            // The request left and no answer proves fal did not take it (a gateway's 408, 500,
            // 502 or 504, a timeout, a broken connection, an answer that does not parse): a
            // second submit could be a second paid run, so fal's request history settles it.
            Err(error) => {
                // The step (awaiting the history) says what happened; the log keeps the detail.
                job.last_log = Some(error.to_string());
                studio.settle_unanswered_submit(job).await
            }
        }
    }

    /// The process stopped between "about to submit" and "fal answered": fal's request history
    /// tells whether the request arrived. It is never sent again unasked.
    async fn settle_unanswered(&self, studio: &Studio, job: TrainingJob) -> Result<TrainingJob> {
        studio.settle_unanswered_submit(job).await
    }

    /// One status poll: queue position, progress from the logs, and the end.
    async fn poll(
        &self,
        studio: &Studio,
        mut job: TrainingJob,
        follower: &mut Follower,
    ) -> Result<TrainingJob> {
        let client = studio.fal_client()?;
        let (Some(status_url), Some(cancel_url)) = (job.status_url.clone(), job.cancel_url.clone())
        else {
            return studio.conclude(job, JobState::Failed, Some(JobFailure::NoRequest));
        };
        if job.cancel_requested && !follower.cancel_sent {
            // A cancel that fails is sent again at the next poll; the status is read either way,
            // so a job whose cancel keeps failing still reaches its end.
            match client.cancel(&cancel_url).await {
                Ok(_) => follower.cancel_sent = true,
                Err(error) => job.last_log = Some(error.to_string()),
            }
        }
        let status = match client.status(&status_url, true).await {
            Ok(status) => status,
            // A cancelled request that fal then forgets was removed from its queue.
            Err(FalError::NotFound(_)) if job.cancel_requested => {
                return studio.conclude(job, JobState::Cancelled, None);
            }
            Err(FalError::NotFound(_)) => {
                return studio.conclude(job, JobState::Failed, Some(JobFailure::Forgotten));
            }
            Err(error) if error.is_transient() => {
                let detail = error.to_string();
                return studio.save_if_changed(job, JobStep::Unreachable { detail });
            }
            Err(error) => return Err(error.into()),
        };
        if let Some(entry) = status.logs.last() {
            job.last_log = Some(entry.message.clone());
        }
        let step = match status.state {
            QueueState::InQueue => {
                job.state = JobState::Queued;
                job.queue_position = status.queue_position;
                JobStep::Queued {
                    place: status.queue_position.map(|position| position + 1),
                }
            }
            QueueState::InProgress => {
                job.state = JobState::Running;
                job.queue_position = None;
                let steps = status
                    .logs
                    .iter()
                    .rev()
                    .find_map(|entry| fal::step_progress(&entry.message));
                if let Some(steps) = steps {
                    job.progress = progress_at(steps.fraction());
                }
                JobStep::Training {
                    done: steps.map(|steps| steps.done),
                    total: steps.map(|steps| steps.total),
                }
            }
            QueueState::Completed => {
                job.queue_position = None;
                if let Some(error) = status.error {
                    let cancelled = job.cancel_requested
                        || status.error_type.as_deref() == Some("client_cancelled");
                    let state = if cancelled {
                        JobState::Cancelled
                    } else {
                        JobState::Failed
                    };
                    // The status says only "Invalid status code: 422"; the result carries the
                    // app's own words (a validation error's `detail` list).
                    let error = match (cancelled, job.response_url.as_deref()) {
                        (false, Some(response_url)) => match client.result(response_url).await {
                            Err(FalError::Invalid { message, .. }) => message,
                            _ => error,
                        },
                        _ => error,
                    };
                    let failure = JobFailure::FalFailed {
                        kind: status.error_type,
                        detail: error,
                    };
                    return studio.conclude(job, state, (!cancelled).then_some(failure));
                }
                job.state = JobState::Downloading;
                job.progress = PROGRESS_TRAINED;
                JobStep::Downloading {
                    after_cancel: job.cancel_requested,
                }
            }
        };
        studio.save_if_changed(job, step)
    }

    /// The model's address always comes from fal's own result.
    async fn fetch_model(
        &self,
        studio: &Studio,
        mut job: TrainingJob,
        partial: &Path,
    ) -> Result<Fetched> {
        let client = studio.fal_client()?;
        let response_url = job.response_url.clone().unwrap_or_default();
        let output = match studio.fetch_result(&client, &response_url).await {
            Ok(result) => fal::LoraOutput::from_result(&result)
                .map_err(|detail| JobFailure::ResultUnusable { detail }),
            Err(FalError::NotFound(_)) => Err(JobFailure::ResultExpired),
            Err(error @ (FalError::Invalid { .. } | FalError::WrongKey { .. })) => {
                Err(JobFailure::ResultUnusable {
                    detail: error.to_string(),
                })
            }
            Err(error) => {
                return studio
                    .transfer_failed(job, Transfer::Download, Error::Remote(error.to_string()))
                    .map(Fetched::Ended);
            }
        };
        let output = match output {
            Ok(output) => output,
            Err(failure) => {
                return studio
                    .conclude(job, JobState::Failed, Some(failure))
                    .map(Fetched::Ended);
            }
        };
        if !client.is_fal_file(&output.lora_url) {
            let failure = JobFailure::ModelNotHttps {
                url: output.lora_url,
            };
            return studio
                .conclude(job, JobState::Failed, Some(failure))
                .map(Fetched::Ended);
        }
        let expected_size = output.lora_size;
        if job.model_url.as_deref() != Some(output.lora_url.as_str()) {
            job.model_url = Some(output.lora_url);
            job.config_url = output.config_url;
            job = studio.save(
                job,
                JobStep::Downloading {
                    after_cancel: false,
                },
            )?;
        }
        let limit = expected_size.unwrap_or(studio.config().max_model_bytes);
        let url = job.model_url.clone().unwrap_or_default();
        let mut downloaded = client.download(&url, partial, limit).await;
        if let Err(FalError::FileUnavailable {
            status: status @ (401 | 403 | 404),
        }) = downloaded
        {
            // An account whose storage is private by default (`forbid` answers an error,
            // `hide` as if the file did not exist) reads its own files through a signed URL
            // (fal-protocol.md §8.4). Only fal's platform API is asked; the key never goes to
            // the file server.
            downloaded = match client.signed_url(&url).await {
                Ok(signed) => client.download(&signed, partial, limit).await,
                Err(_) => Err(FalError::FileUnavailable { status }),
            };
        }
        if let Err(error) = downloaded {
            remove_if_present(partial)?;
            let ended = match error {
                FalError::FileUnavailable { status: 404 | 410 } => {
                    studio.conclude(job, JobState::Failed, Some(JobFailure::ModelGone))
                }
                FalError::FileUnavailable { status } => studio.conclude(
                    job,
                    JobState::Failed,
                    Some(JobFailure::ModelPrivate { status }),
                ),
                error => studio.transfer_failed(
                    job,
                    Transfer::Download,
                    Error::Remote(error.to_string()),
                ),
            };
            return ended.map(Fetched::Ended);
        }
        Ok(Fetched::Model { job, expected_size })
    }

    async fn completed(&self, studio: &Studio, job: &mut TrainingJob) {
        studio.settle_on_fal(job).await;
    }

    async fn ended(&self, studio: &Studio, job: &TrainingJob) {
        studio.remove_training_uploads(job).await;
    }
}

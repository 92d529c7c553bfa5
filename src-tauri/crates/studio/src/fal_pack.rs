//! A sample pack on fal: one request per prompt to the LoRA inference endpoint (fal-protocol.md
//! §4.4), each written as being sent before it leaves, never sent twice (a lost answer is looked
//! up in fal's request history), followed to its end, its images downloaded into the gallery.
//! The LoRA is the training's on fal; once fal's copy has expired, the library's copy is uploaded
//! first.

use std::collections::HashSet;

use fal::{FalClient, FalError, QueueState};
use library::{
    GalleryImage, Generation, GenerationRequest, GenerationState, JobFailure, RequestState,
};
use serde_json::{Value, json};

use crate::generation::{FalSampleMaker, PackContext, Sample, SampleMaker};
use crate::settle::{Finding, LONGEST_INFERENCE_RUN, LostSubmit, settle_bound};
use crate::training::submit_not_taken;
use crate::{Error, Result, Studio};

/// How long an uploaded copy of a LoRA stays on fal: the pack's requests fetch it at once.
const LORA_COPY_LIFETIME: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// The longest pause between two looks at a pack's requests.
const MAX_PAUSE: std::time::Duration = std::time::Duration::from_secs(15);

#[async_trait::async_trait]
impl SampleMaker for FalSampleMaker {
    async fn fill(
        &self,
        studio: &Studio,
        mut generation: Generation,
        pack: &PackContext,
        on_image: &mut (dyn for<'image> FnMut(&'image GalleryImage) + Send),
    ) -> Result<Generation> {
        let client = match studio.fal_client() {
            Ok(client) => client,
            Err(Error::InvalidConfig(detail)) => {
                let failure = JobFailure::Settings { detail };
                return studio.end_generation(generation, GenerationState::Failed, Some(failure));
            }
            Err(error) => return Err(error),
        };
        // A pack resumed after a while re-checks the LoRA address it stored before sending more:
        // fal's copy may have expired meanwhile.
        let mut lora_checked = false;
        let mut pause = studio.config().poll_interval;
        // Every prompt is sent first, then all are followed together: fal runs them side by
        // side, and the pack takes as long as its slowest request, not their sum.
        loop {
            let requests = studio.library.generation_requests(generation.id)?;
            if requests.iter().all(|request| request.state.is_final()) {
                break;
            }
            let cancel = studio.load_generation(generation.id)?.cancel_requested;
            for mut request in requests
                .iter()
                .filter(|request| !request.state.is_final())
                .cloned()
            {
                match request.state {
                    RequestState::Pending if cancel => {
                        request.state = RequestState::Cancelled;
                        studio.library.save_generation_request(&request)?;
                    }
                    RequestState::Pending => {
                        if !lora_checked {
                            studio.recheck_lora(&mut generation, &client).await?;
                            lora_checked = true;
                        }
                        let lora = match studio.usable_lora(&mut generation, &client).await {
                            Ok(lora) => lora,
                            Err(failure) => {
                                return studio.end_generation(
                                    generation,
                                    GenerationState::Failed,
                                    Some(failure),
                                );
                            }
                        };
                        studio
                            .send(&generation, &mut request, &client, &lora)
                            .await?;
                    }
                    RequestState::Sending => {
                        studio
                            .settle_lost_request(&generation, &mut request, &client)
                            .await?;
                    }
                    _ => {
                        studio
                            .follow_request(
                                &generation,
                                &mut request,
                                &client,
                                cancel,
                                pack,
                                on_image,
                            )
                            .await?;
                    }
                }
            }
            let after = studio.library.generation_requests(generation.id)?;
            let waiting = after.iter().any(|request| {
                matches!(request.state, RequestState::Queued | RequestState::Sending)
            });
            if after != requests {
                pause = studio.config().poll_interval;
            }
            if waiting {
                // The pause grows while nothing changes, as a training's polls do: a request
                // awaiting fal's history may wait hours.
                studio.clock.sleep(pause).await;
                pause = pause.mul_f64(1.5).min(MAX_PAUSE);
            }
        }
        let requests = studio.library.generation_requests(generation.id)?;
        let failure = requests.iter().find_map(|request| request.failure.clone());
        let state = if requests
            .iter()
            .all(|request| request.state == RequestState::Done)
        {
            GenerationState::Completed
        } else if failure.is_some() {
            GenerationState::Failed
        } else {
            GenerationState::Cancelled
        };
        studio.end_generation(generation, state, failure)
    }
}

impl Studio {
    /// Forgets the pack's stored LoRA address when fal no longer serves it (the 24-hour copy,
    /// or the training's output, expired), so the next send uploads the library's copy.
    async fn recheck_lora(&self, generation: &mut Generation, client: &FalClient) -> Result<()> {
        let Some(url) = generation.lora_url.clone() else {
            return Ok(());
        };
        if !client.still_served(&url).await? {
            generation.lora_url = None;
        }
        Ok(())
    }

    /// The LoRA URL the requests name: the training's on fal while fal still serves it, else a
    /// copy of the library's file uploaded to fal storage (once per pack).
    async fn usable_lora(
        &self,
        generation: &mut Generation,
        client: &FalClient,
    ) -> std::result::Result<String, JobFailure> {
        if let Some(url) = &generation.lora_url {
            return Ok(url.clone());
        }
        let training = self
            .library
            .job(generation.training_job_id)
            .ok()
            .flatten()
            .ok_or_else(|| JobFailure::Other {
                detail: "the training that made the model is gone from the library".into(),
            })?;
        let on_fal = match &training.model_url {
            Some(url) => client
                .still_served(url)
                .await
                .map_err(|error| JobFailure::Other {
                    detail: error.to_string(),
                })?
                .then(|| url.clone()),
            None => None,
        };
        let url = match on_fal {
            Some(url) => url,
            None => {
                let model = training.model_path.ok_or(JobFailure::ModelGone)?;
                let file_name = format!("{}.safetensors", training.id);
                client
                    .upload(fal::UploadFile {
                        path: std::path::Path::new(&model),
                        content_type: "application/octet-stream",
                        file_name: &file_name,
                        lifetime: fal::Lifetime(LORA_COPY_LIFETIME),
                    })
                    .await
                    .map_err(|error| JobFailure::TransferGaveUp {
                        transfer: library::Transfer::Upload,
                        tries: 1,
                        detail: error.to_string(),
                    })?
            }
        };
        self.library
            .set_generation_lora_url(generation.id, &url)
            .map_err(|error| JobFailure::Other {
                detail: error.to_string(),
            })?;
        generation.lora_url = Some(url.clone());
        Ok(url)
    }

    /// Sends one request: marked as being sent (and counted as spent) first.
    async fn send(
        &self,
        generation: &Generation,
        request: &mut GenerationRequest,
        client: &FalClient,
        lora: &str,
    ) -> Result<()> {
        let input = request_input(generation, request.prompt_index, lora);
        let now = self.clock.now();
        if !self.library.claim_generation_request(request, now)? {
            // Another process (the app and the CLI at once) is sending it.
            return Ok(());
        }
        request.state = RequestState::Sending;
        request.paid = true;
        request.sent_at = Some(now);
        match client.submit(&generation.endpoint, &input, None).await {
            Ok(submitted) => {
                request.state = RequestState::Queued;
                request.request_id = Some(submitted.request_id);
                request.status_url = Some(submitted.status_url);
                request.response_url = Some(submitted.response_url);
                request.cancel_url = Some(submitted.cancel_url);
                self.library.save_generation_request(request)?;
                Ok(())
            }
            Err(error @ (FalError::WrongKey { .. } | FalError::Invalid { .. })) => {
                // Refused before it was queued: nothing runs, nothing is billed.
                request.paid = false;
                request.state = RequestState::Failed;
                request.failure = Some(JobFailure::Refused {
                    detail: error.to_string(),
                });
                self.library.save_generation_request(request)?;
                Ok(())
            }
            Err(error) if submit_not_taken(&error) => {
                request.state = RequestState::Pending;
                request.paid = false;
                request.sent_at = None;
                self.library.save_generation_request(request)?;
                Err(error.into())
            }
            // The request left and no answer proves fal did not take it: the history settles it
            // on the next turn of the loop.
            Err(_) => Ok(()),
        }
    }

    /// A request marked as being sent whose answer never came: adopted from fal's history, or
    /// ended as never received (nothing charged), never sent again.
    async fn settle_lost_request(
        &self,
        generation: &Generation,
        request: &mut GenerationRequest,
        client: &FalClient,
    ) -> Result<()> {
        let sending_began = request.sent_at.unwrap_or(generation.updated_at);
        let query = fal::RequestQuery {
            endpoint_id: &generation.endpoint,
            start: Some(sending_began - chrono::Duration::seconds(30)),
            end: None,
            request_id: None,
            with_payloads: true,
        };
        let records = match client.requests(&query).await {
            Ok(records) => records,
            Err(error) => {
                request.state = RequestState::Failed;
                request.failure = Some(JobFailure::Unsettled {
                    detail: error.to_string(),
                    sent_at: Some(sending_began),
                });
                return self
                    .library
                    .save_generation_request(request)
                    .map_err(Into::into);
            }
        };
        // Every request id of the library's packs and trainings is someone's: never adopted.
        let known: HashSet<String> = self
            .library
            .pack_request_ids()?
            .into_iter()
            .chain(
                self.library
                    .jobs()?
                    .into_iter()
                    .filter_map(|job| job.request_id),
            )
            .collect();
        let others_sending = self.library.pack_request_sending_to(
            &generation.endpoint,
            generation.id,
            request.prompt_index,
        )?;
        // fal keeps the inputs now (no `X-Fal-Store-IO: 0`): the prompt, the seed and the LoRA
        // address together name this request, not one of another pack. The LoRA it was sent
        // with is the pack's stored address or, when that was replaced since, the training's.
        let training_lora = self
            .library
            .job(generation.training_job_id)?
            .and_then(|training| training.model_url);
        let loras: Vec<Value> = [generation.lora_url.clone(), training_lora]
            .into_iter()
            .flatten()
            .map(|lora| request_input(generation, request.prompt_index, &lora)["loras"].clone())
            .collect();
        let expected = request_input(generation, request.prompt_index, "");
        let is_ours = |input: &Value| {
            input["prompt"] == expected["prompt"]
                && input["seed"] == expected["seed"]
                && loras.contains(&input["loras"])
        };
        let lost = LostSubmit {
            sending_began,
            known: &known,
            others_sending,
            longest_run: LONGEST_INFERENCE_RUN,
            what: "sample request",
        };
        match self.find_lost_request(records, lost, is_ours) {
            Finding::Arrived(record) => {
                let submitted = client.adopt(&generation.endpoint, &record.request_id);
                request.state = RequestState::Queued;
                request.request_id = Some(submitted.request_id);
                request.status_url = Some(submitted.status_url);
                request.response_url = Some(submitted.response_url);
                request.cancel_url = Some(submitted.cancel_url);
            }
            Finding::NotArrived => {
                request.paid = false;
                request.state = RequestState::Failed;
                let bound = settle_bound(LONGEST_INFERENCE_RUN, self.config().history_delay);
                request.failure = Some(JobFailure::NeverReceived {
                    minutes: bound.num_minutes() as u32,
                });
            }
            // Asked again on a later turn of the pack's loop.
            Finding::NotYetKnown => return Ok(()),
            Finding::Ambiguous(detail) => {
                request.state = RequestState::Failed;
                request.failure = Some(JobFailure::Unsettled {
                    detail,
                    sent_at: Some(sending_began),
                });
            }
        }
        self.library.save_generation_request(request)?;
        Ok(())
    }

    /// Looks at a queued request once (cancelling it first when asked); once it has completed,
    /// keeps its images.
    async fn follow_request(
        &self,
        generation: &Generation,
        request: &mut GenerationRequest,
        client: &FalClient,
        cancel: bool,
        pack: &PackContext,
        on_image: &mut (dyn FnMut(&GalleryImage) + Send),
    ) -> Result<()> {
        let (Some(status_url), Some(response_url)) =
            (request.status_url.clone(), request.response_url.clone())
        else {
            return Err(Error::Internal("a queued request has no addresses".into()));
        };
        if cancel && !request.cancel_sent {
            // A cancel that fails is sent again on the next turn; the status is read either
            // way, so a request whose cancel keeps failing still reaches its end.
            let cancelled = match &request.cancel_url {
                Some(cancel_url) => client.cancel(cancel_url).await.is_ok(),
                None => true,
            };
            if cancelled {
                request.cancel_sent = true;
                self.library.save_generation_request(request)?;
            }
        }
        let status = match client.status(&status_url, false).await {
            Ok(status) => status,
            // fal no longer knows this request: it ends alone, the pack goes on.
            Err(FalError::NotFound(_)) => {
                return self.end_request(request, None, Some(JobFailure::Forgotten));
            }
            Err(FalError::WrongKey { .. }) => {
                let failure = JobFailure::Settings {
                    detail: FalError::WrongKey { status: 401 }.to_string(),
                };
                return self.end_request(request, None, Some(failure));
            }
            // Tried again on the next turn.
            Err(_) => return Ok(()),
        };
        if status.state != QueueState::Completed {
            return Ok(());
        }
        match client.result(&response_url).await {
            Ok(output) => {
                let failure = self
                    .keep_fal_images(generation, request, &output, client, pack, on_image)
                    .await?;
                self.end_request(request, Some(RequestState::Done), failure)
            }
            // A cancelled request completes with an error of its own: it ended as asked.
            Err(_) if request.cancel_sent => {
                self.end_request(request, Some(RequestState::Cancelled), None)
            }
            Err(FalError::NotFound(_)) => {
                self.end_request(request, None, Some(JobFailure::ResultExpired))
            }
            Err(error) if error.is_transient() => Ok(()),
            Err(error) => {
                let failure = JobFailure::Refused {
                    detail: error.to_string(),
                };
                self.end_request(request, None, Some(failure))
            }
        }
    }

    /// Ends one request of a pack: `state`, or cancelled when a cancel was sent, else failed.
    fn end_request(
        &self,
        request: &mut GenerationRequest,
        state: Option<RequestState>,
        failure: Option<JobFailure>,
    ) -> Result<()> {
        request.state = state.unwrap_or(if request.cancel_sent {
            RequestState::Cancelled
        } else {
            RequestState::Failed
        });
        request.failure = if request.state == RequestState::Cancelled {
            None
        } else {
            failure
        };
        self.library.save_generation_request(request)?;
        Ok(())
    }

    /// Downloads each image of a completed request into the gallery, judged for likeness; a
    /// flagged one is kept as flagged, not scored. An image that cannot be downloaded is left
    /// out and named in the failure returned; the others are kept.
    async fn keep_fal_images(
        &self,
        generation: &Generation,
        request: &GenerationRequest,
        output: &Value,
        client: &FalClient,
        pack: &PackContext,
        on_image: &mut (dyn FnMut(&GalleryImage) + Send),
    ) -> Result<Option<JobFailure>> {
        let images = output["images"].as_array().cloned().unwrap_or_default();
        let flags = output["has_nsfw_concepts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let done = self.filled_places(generation)?;
        let prompt = &generation.prompts[request.prompt_index as usize];
        // fal answers one seed per request; an image's own seed wins where fal sends one.
        let seed_of_request = output["seed"]
            .as_u64()
            .unwrap_or_else(|| request_seed(generation, request.prompt_index));
        let mut failure = None;
        for (index, image) in images
            .iter()
            .enumerate()
            .take(generation.images_per_prompt as usize)
        {
            let position = request.prompt_index * generation.images_per_prompt + index as u32;
            if done.contains(&position) {
                continue;
            }
            let url = image["url"].as_str().ok_or_else(|| {
                Error::Remote(format!(
                    "fal's result names no file for image {}",
                    index + 1
                ))
            })?;
            // A name of its own: another process advancing the same pack may fetch it too.
            let partial = self.library.work_file(&format!(
                "{}-{position}-{}.image.partial",
                generation.id,
                uuid::Uuid::new_v4().simple()
            ));
            // No larger than a photo the library takes.
            let limit = self.config().photo_max_size;
            if let Err(error) = client.download(url, &partial, limit).await {
                let _ = std::fs::remove_file(&partial);
                failure = Some(match error {
                    FalError::FileUnavailable { status } => JobFailure::ImageUnavailable { status },
                    error => JobFailure::TransferGaveUp {
                        transfer: library::Transfer::Download,
                        tries: client.attempts(),
                        detail: error.to_string(),
                    },
                });
                continue;
            }
            let bytes = std::fs::read(&partial).map_err(|error| {
                Error::Internal(format!("the downloaded image cannot be read: {error}"))
            })?;
            let _ = std::fs::remove_file(&partial);
            // Only an image the gallery can show is kept: fal's file server answered something.
            let image_format = photos::Format::sniff(&bytes);
            if !matches!(
                image_format,
                Some(photos::Format::Jpeg | photos::Format::Png | photos::Format::Webp)
            ) {
                failure = Some(JobFailure::ResultUnusable {
                    detail: format!("image {} of fal's result is not an image", index + 1),
                });
                continue;
            }
            let sample = Sample {
                position,
                prompt,
                seed: image["seed"].as_u64().unwrap_or(seed_of_request),
                flagged: flags.get(index).and_then(Value::as_bool).unwrap_or(false),
                simulated: false,
            };
            if let Some(image) = self.keep_image(generation, pack, &sample, &bytes)? {
                on_image(&image);
            }
        }
        Ok(failure)
    }
}

/// A request's first seed: the pack's seed, moved on by the images before it.
fn request_seed(generation: &Generation, prompt_index: u32) -> u64 {
    generation.seed + u64::from(prompt_index * generation.images_per_prompt)
}

/// The input fal-protocol.md §4.4 gives `fal-ai/flux-lora`.
fn request_input(generation: &Generation, prompt_index: u32, lora: &str) -> Value {
    json!({
        "prompt": generation.prompts[prompt_index as usize],
        "loras": [{ "path": lora, "scale": 1.0 }],
        "image_size": generation.image_size,
        "num_images": generation.images_per_prompt,
        "seed": request_seed(generation, prompt_index),
        "enable_safety_checker": true,
        "output_format": "jpeg",
    })
}

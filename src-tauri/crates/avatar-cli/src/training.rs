//! `train`, `status`, `cancel` and `jobs`: the training ledger from a terminal or a script.

use std::io::{BufRead, IsTerminal};

use serde::Serialize;
use studio::{
    ErrorReport, JobFailure, JobState, JobStep, Overrides, Preset, Studio, TrainingJob,
    TrainingPlan,
};

use crate::Output;

/// One job as `status`, `jobs`, `train` and `cancel` report it.
#[derive(Serialize)]
struct JobReport<'a> {
    job_id: studio::JobId,
    avatar_id: studio::AvatarId,
    status: JobState,
    progress: u8,
    /// Where the job is, in English; `step` is the same as a code.
    status_text: Option<String>,
    step: Option<&'a JobStep>,
    request_id: Option<&'a str>,
    queue_position: Option<u32>,
    last_log: Option<&'a str>,
    model_path: Option<&'a str>,
    /// Why the job failed, in English; `failure` is the same as a code.
    error: Option<String>,
    failure: Option<&'a JobFailure>,
    preset: &'a str,
    trainer: &'a str,
    test_mode: bool,
    /// The cost confirmed before the start, in US dollars.
    confirmed_cost_usd: f64,
    cancel_requested: bool,
    created_at: String,
    finished_at: Option<String>,
}

impl<'a> From<&'a TrainingJob> for JobReport<'a> {
    fn from(job: &'a TrainingJob) -> Self {
        Self {
            job_id: job.id,
            avatar_id: job.avatar_id,
            status: job.state,
            progress: job.progress,
            status_text: job
                .step
                .as_ref()
                .map(|step| crate::words::step(step, job.test_mode)),
            step: job.step.as_ref(),
            request_id: job.request_id.as_deref(),
            queue_position: job.queue_position,
            last_log: job.last_log.as_deref(),
            model_path: job.model_path.as_deref(),
            error: job.failure.as_ref().map(crate::words::failure),
            failure: job.failure.as_ref(),
            preset: &job.preset,
            trainer: &job.trainer,
            test_mode: job.test_mode,
            confirmed_cost_usd: job.confirmed_cost_usd,
            cancel_requested: job.cancel_requested,
            created_at: job.created_at.to_rfc3339(),
            finished_at: job.finished_at.map(|time| time.to_rfc3339()),
        }
    }
}

pub struct TrainOptions {
    pub avatar: String,
    pub preset: Preset,
    pub overrides: Overrides,
    pub yes: bool,
    pub wait: bool,
}

pub async fn train(
    studio: &Studio,
    out: &Output,
    options: TrainOptions,
) -> Result<(), ErrorReport> {
    let plan = studio
        .plan_training(&options.avatar, options.preset, options.overrides)
        .await?;
    if !out.json {
        out.line(&describe_plan(&plan));
    }
    if !plan.test_mode && !options.yes && !confirm(out, "training")? {
        return Err(ErrorReport {
            code: studio::ErrorCode::Cancelled,
            message: "not started".to_string(),
        });
    }
    let job = studio.start_training(&plan).await?;
    // Without --wait, stop once fal holds the job; any later start of the CLI or the app
    // follows it to the end.
    let wait = options.wait;
    let job = studio
        .follow_with_relay(job.id, |job| {
            show_progress(out, job);
            wait || !matches!(job.state, JobState::Queued | JobState::Running)
        })
        .await?;
    out.job(&job);
    Ok(())
}

/// Asks on the terminal before a paid `what` starts; refused outright without one (or with
/// `--json`), where `--yes` is the only way to say yes.
pub fn confirm(out: &Output, what: &str) -> Result<bool, ErrorReport> {
    if out.json || !std::io::stdin().is_terminal() {
        return Err(ErrorReport {
            code: studio::ErrorCode::InvalidInput,
            message: format!("this {what} is paid: add --yes to start it without a question"),
        });
    }
    eprint!("Start this paid {what}? [y/N] ");
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|error| ErrorReport::internal(error.to_string()))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

pub fn describe_plan(plan: &TrainingPlan) -> String {
    let learning_rate = plan
        .learning_rate
        .map(|rate| format!(", learning rate {rate}"))
        .unwrap_or_default();
    let cost = match plan.price_source.as_str() {
        "none" => "test mode: simulated, no cost".to_string(),
        _ if plan.price_unverified => format!(
            "${:.2}, price unverified: fal's pricing says ${:.2} and fal's published table ${:.2}; the higher is what you confirm and what the budget counts",
            plan.cost_usd,
            plan.cost_usd_fal.unwrap_or_default(),
            plan.cost_usd_table.unwrap_or_default()
        ),
        "fal" => format!(
            "about ${:.2} at fal's price for this account",
            plan.cost_usd
        ),
        _ => format!(
            "about ${:.2} ({})",
            plan.cost_usd,
            crate::words::price_basis(plan.training_type)
        ),
    };
    let storage = match plan.storage_notice.as_deref() {
        Some("s3_not_public") => {
            "; fal cannot fetch from your S3 (it is not on the internet), so the training set goes through fal storage"
        }
        _ => "",
    };
    format!(
        "{} ({}), {} preset on {}: {} steps{learning_rate}, {} photos, about {}–{} min, {cost}{storage}",
        plan.avatar_name,
        plan.training_type,
        plan.preset,
        plan.trainer,
        plan.steps,
        plan.photos,
        plan.min_minutes,
        plan.max_minutes
    )
}

/// A line on stderr per change, for a person watching a terminal.
fn show_progress(out: &Output, job: &TrainingJob) {
    if out.json || !std::io::stderr().is_terminal() {
        return;
    }
    let text = match &job.step {
        Some(step) => crate::words::step(step, job.test_mode),
        None => job.state.to_string(),
    };
    eprintln!("[{:>3}%] {text}", job.progress);
}

pub async fn status(
    studio: &Studio,
    out: &Output,
    avatar: &str,
    wait: bool,
) -> Result<(), ErrorReport> {
    let Some(job) = studio.training_status(avatar)? else {
        let avatar = studio.avatar(avatar)?;
        return Err(ErrorReport {
            code: studio::ErrorCode::NotFound,
            message: format!("{} has never been trained", avatar.name),
        });
    };
    let job = if wait && !job.state.is_final() {
        studio
            .follow_with_relay(job.id, |job| {
                show_progress(out, job);
                true
            })
            .await?
    } else {
        job
    };
    out.job(&job);
    Ok(())
}

pub async fn cancel(studio: &Studio, out: &Output, avatar: &str) -> Result<(), ErrorReport> {
    let job = studio.request_cancel(avatar)?;
    // Keep following until fal confirms an end: a trainer may finish before the cancel lands.
    let job = studio
        .follow_with_relay(job.id, |job| {
            show_progress(out, job);
            true
        })
        .await?;
    out.job(&job);
    Ok(())
}

pub fn jobs(studio: &Studio, out: &Output) -> Result<(), ErrorReport> {
    let jobs = studio.jobs()?;
    if out.json {
        let reports: Vec<JobReport<'_>> = jobs.iter().map(JobReport::from).collect();
        out.print_json(&reports);
    } else if jobs.is_empty() {
        out.line("no trainings yet: start one with `avatar-cli train AVATAR`");
    } else {
        for job in &jobs {
            out.line(&describe_job(job));
        }
    }
    Ok(())
}

pub fn spend(studio: &Studio, out: &Output) -> Result<(), ErrorReport> {
    let spending = studio.spending()?;
    if out.json {
        out.print_json(&spending);
        return Ok(());
    }
    let budget = spending
        .monthly_budget_usd
        .map(|budget| format!(" of a ${budget:.2} budget"))
        .unwrap_or_default();
    out.line(&format!(
        "{}: ${:.2} spent or committed{budget}",
        spending.this_month, spending.committed_this_month_usd
    ));
    for month in &spending.months {
        let billed = month
            .billed_usd
            .map(|billed| {
                format!(
                    ", fal billed ${billed:.2} for {} of them",
                    month.billed_requests
                )
            })
            .unwrap_or_default();
        out.line(&format!(
            "{}: {} paid trainings, ${:.2} confirmed{billed}",
            month.month, month.requests, month.confirmed_usd
        ));
    }
    Ok(())
}

/// One error met while moving a training or a pack on, as `--json` reports it on stderr.
#[derive(Serialize)]
struct AdvanceError<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    job_id: Option<studio::JobId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation_id: Option<uuid::Uuid>,
    code: studio::ErrorCode,
    message: &'a str,
}

fn report_advance_error(out: &Output, what: &str, line: AdvanceError<'_>) {
    if out.json {
        eprintln!("{}", serde_json::to_string(&line).unwrap_or_default());
    } else {
        let id = line
            .job_id
            .map(|id| id.to_string())
            .or(line.generation_id.map(|id| id.to_string()))
            .unwrap_or_default();
        eprintln!("warning: {what} {id} could not move on: {}", line.message);
    }
}

/// Carries every unfinished sample pack to its end, as the app does at start: a pack cut off by
/// a crash or a closed laptop is finished from the command line too. Errors are reported like
/// a training's and never stop the command.
pub async fn advance_unfinished_packs(studio: &Studio, out: &Output) -> Result<(), ErrorReport> {
    for generation in studio.unfinished_generations()? {
        if let Err(error) = studio.advance_generation(generation.id, |_| {}).await {
            let report = ErrorReport::from(error);
            let line = AdvanceError {
                job_id: None,
                generation_id: Some(generation.id),
                code: report.code,
                message: &report.message,
            };
            report_advance_error(out, "pack", line);
        }
    }
    Ok(())
}

/// Moves every unfinished job on one step, so none waits for the app to be opened. Errors are
/// reported on stderr (one JSON object per line with `--json`) and never stop the command.
pub async fn advance_unfinished(studio: &Studio, out: &Output) -> Result<(), ErrorReport> {
    for (job, error) in studio.advance_unfinished().await? {
        let Some(error) = error else { continue };
        let report = ErrorReport::from(error);
        let line = AdvanceError {
            job_id: Some(job.id),
            generation_id: None,
            code: report.code,
            message: &report.message,
        };
        report_advance_error(out, "training", line);
    }
    Ok(())
}

fn describe_job(job: &TrainingJob) -> String {
    let mut line = format!(
        "{}  avatar {}  {}  {}%  {}",
        job.id,
        job.avatar_id,
        job.state,
        job.progress,
        job.step
            .as_ref()
            .map(|step| crate::words::step(step, job.test_mode))
            .unwrap_or_default()
    );
    if let Some(request_id) = &job.request_id {
        line.push_str(&format!("  request {request_id}"));
    }
    if let Some(path) = &job.model_path {
        line.push_str(&format!("  model {path}"));
    }
    if let Some(failure) = &job.failure {
        line.push_str(&format!("  error: {}", crate::words::failure(failure)));
    }
    line
}

impl Output {
    pub fn job(&self, job: &TrainingJob) {
        if self.json {
            self.print_json(&JobReport::from(job));
        } else {
            self.line(&describe_job(job));
        }
    }
}

/// `check-connection`: the relay step by step; fails when any step does.
pub async fn check_connection(studio: &Studio, out: &Output) -> Result<(), ErrorReport> {
    let report = studio.check_connection().await;
    if out.json {
        out.print_json(&report);
    } else {
        out.line(&format!("training updates arrive by {:?}", report.channel));
        for check in &report.checks {
            let mark = if check.passed { "ok  " } else { "FAIL" };
            out.line(&format!("{mark} {:?}: {}", check.step, check.detail));
            if let Some(problem) = check.problem {
                out.line(&format!(
                    "     {}",
                    crate::words::connection_problem(problem)
                ));
            }
        }
    }
    match report.checks.iter().find_map(|check| check.problem) {
        None => Ok(()),
        Some(problem) => Err(ErrorReport {
            code: studio::ErrorCode::RemoteUnavailable,
            message: crate::words::connection_problem(problem).to_string(),
        }),
    }
}

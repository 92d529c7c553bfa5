//! The training ledger. A job row is written before anything leaves the machine and updated at
//! every step, so any process can pick an unfinished job up where another left it. Two processes
//! (the app and the CLI) may follow the same job: a lease decides who uploads, submits and
//! downloads, and a final state is written once.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{ErrorCode, OptionalExtension, Row, params};
use uuid::Uuid;

use crate::avatars::{parse_id, parse_time};
use crate::{AvatarId, JobId};
use crate::{
    JobFailure, JobState, Library, LibraryError, MonthSpending, Result, TrainingJob, TrainingType,
};

const SELECT_JOB: &str = "SELECT id, avatar_id, idempotency_key, training_set_hash, trainer,
    training_type, preset, params, test_mode, state, request_id, status_url, response_url,
    cancel_url, storage, dataset_key, dataset_url, progress, queue_position, status_text, last_log,
    error, model_path, model_url, config_url, cancel_requested, created_at, updated_at,
    submitted_at, finished_at, revision, download_attempts, confirmed_cost_usd, price_source,
    paid_request, billed_cost_usd, fal_outputs, upload_attempts, step, failure
    FROM training_jobs";

const UNFINISHED: &str = "state NOT IN ('completed', 'failed', 'cancelled')";
/// The states in which a job's work (upload, submit, download) is done by the lease holder only.
const LEASED: &str = "state IN ('preparing', 'submitting', 'downloading')";

/// What became of a new job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JobInsert {
    Inserted,
    /// The avatar already has an unfinished job.
    AvatarBusy,
    /// The month's paid and committed jobs (`committed_usd`) and this one would pass the budget.
    OverBudget {
        committed_usd: f64,
    },
}

/// What the month of `created_at` (`YYYY-MM`) has spent or is about to: its paid and committed
/// trainings and sample packs. A pack counts while it may still send requests, and once one of
/// them may have been billed.
pub(crate) const COMMITTED_IN_MONTH: &str = "SELECT COALESCE(SUM(cost), 0) FROM (
    SELECT confirmed_cost_usd AS cost FROM training_jobs
    WHERE test_mode = 0 AND substr(created_at, 1, 7) = ?1
        AND (paid_request = 1 OR state IN ('preparing', 'submitting'))
    UNION ALL
    SELECT confirmed_cost_usd FROM generations
    WHERE test_mode = 0 AND substr(created_at, 1, 7) = ?1
        AND (state IN ('pending', 'running') OR EXISTS (
            SELECT 1 FROM generation_requests WHERE generation_id = generations.id AND paid = 1))
    UNION ALL
    SELECT confirmed FROM deleted_spending WHERE month = ?1)";

/// A paid request of the ledger, one row each, with its month, confirmed and billed cost: the
/// trainings, the pack requests (each at its share of the pack's confirmed cost; fal's billing
/// of them is not read) and what deleted avatars' paid requests cost. `{avatar}` narrows the
/// trainings and packs to one avatar's.
pub(crate) const PAID_REQUESTS: &str = "
    SELECT substr(created_at, 1, 7) AS month, confirmed_cost_usd AS confirmed,
        billed_cost_usd AS billed
    FROM training_jobs WHERE test_mode = 0 AND paid_request = 1 {avatar}
    UNION ALL
    SELECT substr(packs.created_at, 1, 7), packs.confirmed_cost_usd
        / json_array_length(packs.prompts), NULL
    FROM generation_requests AS requests
    JOIN generations AS packs ON packs.id = requests.generation_id
    WHERE packs.test_mode = 0 AND requests.paid = 1 {avatar_of_pack}";

impl Library {
    /// Records a new job, unless the avatar already has an unfinished one or, with a monthly
    /// budget, the month's paid and committed jobs and this one would pass it. The budget is
    /// checked and the row written in one write transaction, so two starts at the same moment
    /// cannot both fit in what is left.
    pub fn insert_job(
        &self,
        job: &TrainingJob,
        monthly_budget_usd: Option<f64>,
    ) -> Result<JobInsert> {
        let mut connection = self.connection();
        let transaction =
            connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Some(budget) = monthly_budget_usd {
            let month = job.created_at.format("%Y-%m").to_string();
            let committed_usd: f64 =
                transaction.query_row(COMMITTED_IN_MONTH, [&month], |row| row.get(0))?;
            // Cents decide, as on the creator's screen.
            if committed_usd + job.confirmed_cost_usd > budget + 0.005 {
                return Ok(JobInsert::OverBudget { committed_usd });
            }
        }
        let inserted = transaction.execute(
            "INSERT INTO training_jobs (id, avatar_id, idempotency_key, training_set_hash, trainer,
                training_type, preset, params, test_mode, state, progress, created_at, updated_at,
                confirmed_cost_usd, price_source)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14)",
            params![
                job.id.to_string(),
                job.avatar_id.to_string(),
                job.idempotency_key,
                job.training_set_hash,
                job.trainer,
                job.training_type.as_str(),
                job.preset,
                job.params,
                job.test_mode,
                job.state.as_str(),
                job.progress,
                timestamp(job.created_at),
                job.confirmed_cost_usd,
                job.price_source,
            ],
        );
        match inserted {
            Err(rusqlite::Error::SqliteFailure(failure, _))
                if failure.code == ErrorCode::ConstraintViolation =>
            {
                return Ok(JobInsert::AvatarBusy);
            }
            other => other?,
        };
        update_avatar(&transaction, job)?;
        transaction.commit()?;
        Ok(JobInsert::Inserted)
    }

    /// Moves the charge of a job that ended unsettled to the job that adopted its request: the
    /// request is paid once, by the job that follows it. Returns whether `from` still held it.
    pub fn hand_over_charge(&self, from: JobId) -> Result<bool> {
        let changed = self.connection().execute(
            "UPDATE training_jobs SET paid_request = 0 WHERE id = ?1 AND state = 'failed'
                AND paid_request = 1",
            [from.to_string()],
        )?;
        Ok(changed == 1)
    }

    pub fn job(&self, id: JobId) -> Result<Option<TrainingJob>> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached(&format!("{SELECT_JOB} WHERE id = ?1"))?;
        statement
            .query_row([id.to_string()], read_job)
            .optional()?
            .transpose()
    }

    /// The job fal knows by `request_id`.
    pub fn job_by_request_id(&self, request_id: &str) -> Result<Option<TrainingJob>> {
        let sql = format!("{SELECT_JOB} WHERE request_id = ?1 LIMIT 1");
        Ok(self
            .select_jobs(&sql, [request_id.to_string()])?
            .into_iter()
            .next())
    }

    /// Every job, newest first.
    pub fn jobs(&self) -> Result<Vec<TrainingJob>> {
        self.select_jobs(&format!("{SELECT_JOB} ORDER BY created_at DESC, id"), [])
    }

    /// The spending ledger: paid requests by month, newest first. Test-mode jobs and jobs whose
    /// request never left are not in it.
    pub fn monthly_spending(&self) -> Result<Vec<MonthSpending>> {
        let connection = self.connection();
        let paid = PAID_REQUESTS
            .replace("{avatar}", "")
            .replace("{avatar_of_pack}", "");
        let mut statement = connection.prepare(&format!(
            "SELECT month, SUM(confirmed), SUM(billed), COUNT(*), COUNT(billed) FROM (
                {paid}
                UNION ALL
                SELECT month, confirmed, billed FROM deleted_spending)
             GROUP BY month ORDER BY month DESC"
        ))?;
        let months = statement.query_map([], |row| {
            Ok(MonthSpending {
                month: row.get(0)?,
                confirmed_usd: row.get(1)?,
                billed_usd: row.get(2)?,
                requests: row.get(3)?,
                billed_requests: row.get(4)?,
            })
        })?;
        Ok(months.collect::<rusqlite::Result<_>>()?)
    }

    /// What the month starting at `month` (`YYYY-MM`) has spent or is about to: paid requests
    /// sent, and jobs confirmed but not sent yet.
    pub fn committed_in_month(&self, month: &str) -> Result<f64> {
        Ok(self
            .connection()
            .query_row(COMMITTED_IN_MONTH, [month], |row| row.get(0))?)
    }

    /// The avatar's newest job.
    pub fn latest_job(&self, avatar_id: AvatarId) -> Result<Option<TrainingJob>> {
        let sql = format!("{SELECT_JOB} WHERE avatar_id = ?1 ORDER BY created_at DESC, id LIMIT 1");
        Ok(self
            .select_jobs(&sql, [avatar_id.to_string()])?
            .into_iter()
            .next())
    }

    /// Jobs not yet in a final state, oldest first.
    pub fn unfinished_jobs(&self) -> Result<Vec<TrainingJob>> {
        self.select_jobs(
            &format!("{SELECT_JOB} WHERE {UNFINISHED} ORDER BY created_at, id"),
            [],
        )
    }

    fn select_jobs<const N: usize>(
        &self,
        sql: &str,
        values: [String; N],
    ) -> Result<Vec<TrainingJob>> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached(sql)?;
        let rows = statement.query_map(rusqlite::params_from_iter(values), read_job)?;
        rows.map(|row| row?).collect()
    }

    /// Writes the job's progress and outcome, and the avatar's status with it, as `writer` at
    /// `now`. The write is a compare-and-swap: it lands only over the revision the job was read
    /// at, only while the job is unfinished, and, while the job is in a leased state, only for the
    /// holder of an unexpired lease. Returns whether it wrote: the caller that moves a job to a
    /// final state and gets `true` is the one that finished it, exactly once.
    pub fn save_job(&self, job: &TrainingJob, writer: &str, now: DateTime<Utc>) -> Result<bool> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        let changed = transaction.execute(
            &format!(
                "UPDATE training_jobs SET state = ?2, request_id = ?3, status_url = ?4,
                    response_url = ?5, cancel_url = ?6, storage = ?7, dataset_key = ?8,
                    dataset_url = ?9, progress = ?10, queue_position = ?11, step = ?12,
                    last_log = ?13, failure = ?14, model_path = ?15, model_url = ?16,
                    config_url = ?17, updated_at = ?18, submitted_at = ?19, finished_at = ?20,
                    download_attempts = ?24, paid_request = ?25, billed_cost_usd = ?26,
                    fal_outputs = ?27, upload_attempts = ?28, revision = revision + 1
                 WHERE id = ?1 AND {UNFINISHED} AND revision = ?21
                    AND (NOT {LEASED} OR (lease_owner = ?22 AND lease_until > ?23))"
            ),
            params![
                job.id.to_string(),
                job.state.as_str(),
                job.request_id,
                job.status_url,
                job.response_url,
                job.cancel_url,
                job.storage,
                job.dataset_key,
                job.dataset_url,
                job.progress,
                job.queue_position,
                job.step.as_ref().map(to_json),
                job.last_log,
                job.failure.as_ref().map(to_json),
                job.model_path,
                job.model_url,
                job.config_url,
                timestamp(job.updated_at),
                job.submitted_at.map(timestamp),
                job.finished_at.map(timestamp),
                job.revision,
                writer,
                timestamp(now),
                job.download_attempts,
                job.paid_request,
                job.billed_cost_usd,
                job.fal_outputs,
                job.upload_attempts,
            ],
        )?;
        if changed == 1 {
            update_avatar(&transaction, job)?;
        }
        transaction.commit()?;
        Ok(changed == 1)
    }

    /// Marks an unfinished job as to be cancelled; whoever follows it acts on the mark.
    pub fn request_cancel(&self, id: JobId) -> Result<bool> {
        let changed = self.connection().execute(
            &format!(
                "UPDATE training_jobs SET cancel_requested = 1 WHERE id = ?1 AND {UNFINISHED}"
            ),
            [id.to_string()],
        )?;
        Ok(changed == 1)
    }

    /// Takes or renews the job's lease for `owner` until `until`; `false` while another owner
    /// holds an unexpired lease.
    pub fn take_lease(
        &self,
        id: JobId,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        self.take_row_lease(LeasedTable::Jobs, &id.to_string(), owner, now, until)
    }

    pub fn release_lease(&self, id: JobId, owner: &str) -> Result<()> {
        self.release_row_lease(LeasedTable::Jobs, &id.to_string(), owner)
    }

    /// [`Library::take_lease`] for a sample pack.
    pub fn take_generation_lease(
        &self,
        id: uuid::Uuid,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        self.take_row_lease(LeasedTable::Generations, &id.to_string(), owner, now, until)
    }

    pub fn release_generation_lease(&self, id: uuid::Uuid, owner: &str) -> Result<()> {
        self.release_row_lease(LeasedTable::Generations, &id.to_string(), owner)
    }

    fn take_row_lease(
        &self,
        table: LeasedTable,
        id: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let changed = self.connection().execute(
            &format!(
                "UPDATE {} SET lease_owner = ?2, lease_until = ?4
                 WHERE id = ?1 AND (lease_owner IS NULL OR lease_owner = ?2 OR lease_until <= ?3)",
                table.name()
            ),
            params![id, owner, timestamp(now), timestamp(until)],
        )?;
        Ok(changed == 1)
    }

    fn release_row_lease(&self, table: LeasedTable, id: &str, owner: &str) -> Result<()> {
        self.connection().execute(
            &format!(
                "UPDATE {} SET lease_owner = NULL, lease_until = NULL
                 WHERE id = ?1 AND lease_owner = ?2",
                table.name()
            ),
            params![id, owner],
        )?;
        Ok(())
    }
}

/// The tables whose rows one process at a time works on.
#[derive(Clone, Copy)]
enum LeasedTable {
    Jobs,
    Generations,
}

impl LeasedTable {
    fn name(self) -> &'static str {
        match self {
            Self::Jobs => "training_jobs",
            Self::Generations => "generations",
        }
    }
}

impl Library {
    /// The last relay feed cursor applied; 0 before the first.
    pub fn relay_cursor(&self) -> Result<i64> {
        Ok(self
            .connection()
            .query_row("SELECT cursor FROM relay_state WHERE id = 1", [], |row| {
                row.get(0)
            })
            .optional()?
            .unwrap_or(0))
    }

    pub fn set_relay_cursor(&self, cursor: i64) -> Result<()> {
        self.connection().execute(
            "INSERT INTO relay_state (id, cursor) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET cursor = MAX(cursor, excluded.cursor)",
            [cursor],
        )?;
        Ok(())
    }
}

/// Fixed-width UTC text, so that SQLite's text comparison orders times correctly.
fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("job codes serialise")
}

pub(crate) fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn update_avatar(transaction: &rusqlite::Transaction<'_>, job: &TrainingJob) -> Result<()> {
    transaction.execute(
        "UPDATE avatars SET status = ?2, training_progress = ?3,
            finetune_id = COALESCE(?4, finetune_id), updated_at = ?5
         WHERE id = ?1",
        params![
            job.avatar_id.to_string(),
            job.state.avatar_status().as_str(),
            job.progress,
            job.request_id,
            timestamp(job.updated_at),
        ],
    )?;
    Ok(())
}

fn read_job(row: &Row<'_>) -> rusqlite::Result<Result<TrainingJob>> {
    let text = |index: usize| row.get::<_, String>(index);
    let optional = |index: usize| row.get::<_, Option<String>>(index);
    let (id, avatar_id, training_type, state) = (text(0)?, text(1)?, text(5)?, text(9)?);
    let (created_at, updated_at) = (text(26)?, text(27)?);
    let (submitted_at, finished_at) = (optional(28)?, optional(29)?);
    let revision: u32 = row.get(30)?;
    let download_attempts: u32 = row.get(31)?;
    let confirmed_cost_usd: f64 = row.get(32)?;
    let price_source: String = row.get(33)?;
    let paid_request: bool = row.get(34)?;
    let billed_cost_usd: Option<f64> = row.get(35)?;
    let fal_outputs = optional(36)?;
    let upload_attempts: u32 = row.get(37)?;
    let progress: i64 = row.get(17)?;
    let queue_position: Option<i64> = row.get(18)?;
    let job = TrainingJob {
        id: JobId(Uuid::nil()),
        avatar_id: AvatarId(Uuid::nil()),
        idempotency_key: text(2)?,
        training_set_hash: text(3)?,
        trainer: text(4)?,
        training_type: TrainingType::Portrait,
        preset: text(6)?,
        params: text(7)?,
        test_mode: row.get(8)?,
        state: JobState::Preparing,
        request_id: optional(10)?,
        status_url: optional(11)?,
        response_url: optional(12)?,
        cancel_url: optional(13)?,
        storage: optional(14)?,
        dataset_key: optional(15)?,
        dataset_url: optional(16)?,
        progress: progress.clamp(0, 100) as u8,
        queue_position: queue_position.map(|position| position.max(0) as u32),
        // A step this build cannot read (written by a newer one) is shown by the job's state.
        step: optional(38)?.and_then(|json| serde_json::from_str(&json).ok()),
        last_log: optional(20)?,
        failure: match (optional(39)?, optional(21)?) {
            (Some(json), _) => {
                Some(serde_json::from_str(&json).unwrap_or(JobFailure::Other { detail: json }))
            }
            (None, legacy) => legacy.map(|detail| JobFailure::Other { detail }),
        },
        model_path: optional(22)?,
        model_url: optional(23)?,
        config_url: optional(24)?,
        cancel_requested: row.get(25)?,
        created_at: DateTime::<Utc>::MIN_UTC,
        updated_at: DateTime::<Utc>::MIN_UTC,
        submitted_at: None,
        finished_at: None,
        confirmed_cost_usd,
        price_source,
        paid_request,
        billed_cost_usd,
        fal_outputs,
        upload_attempts,
        download_attempts,
        revision,
    };
    Ok((|| {
        Ok(TrainingJob {
            id: parse_id("job id", &id)?,
            avatar_id: parse_id("avatar id", &avatar_id)?,
            training_type: TrainingType::parse(&training_type)
                .ok_or_else(|| LibraryError::Corrupt(format!("training type {training_type:?}")))?,
            state: JobState::parse(&state)
                .ok_or_else(|| LibraryError::Corrupt(format!("job state {state:?}")))?,
            created_at: parse_time(&created_at)?,
            updated_at: parse_time(&updated_at)?,
            submitted_at: submitted_at.as_deref().map(parse_time).transpose()?,
            finished_at: finished_at.as_deref().map(parse_time).transpose()?,
            ..job
        })
    })())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{Avatar, AvatarStatus, Gender};
    use chrono::TimeZone;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + seconds, 0)
            .single()
            .expect("time")
    }

    pub(crate) fn library_with_avatar() -> (tempfile::TempDir, Library, AvatarId) {
        let dir = tempfile::tempdir().expect("dir");
        let library = Library::open(dir.path()).expect("library");
        let avatar = Avatar::draft("Anna".into(), Gender::Female, TrainingType::Portrait, at(0));
        library.insert_avatar(&avatar).expect("avatar");
        (dir, library, avatar.id)
    }

    fn job(avatar_id: AvatarId) -> TrainingJob {
        TrainingJob {
            id: JobId::new(),
            avatar_id,
            idempotency_key: Uuid::new_v4().to_string(),
            training_set_hash: "hash".into(),
            trainer: "fal-ai/flux-lora-portrait-trainer".into(),
            training_type: TrainingType::Portrait,
            preset: "fast".into(),
            params: "{}".into(),
            test_mode: false,
            state: JobState::Preparing,
            request_id: None,
            status_url: None,
            response_url: None,
            cancel_url: None,
            storage: None,
            dataset_key: None,
            dataset_url: None,
            progress: 0,
            queue_position: None,
            step: None,
            last_log: None,
            failure: None,
            model_path: None,
            model_url: None,
            config_url: None,
            cancel_requested: false,
            created_at: at(1),
            updated_at: at(1),
            submitted_at: None,
            finished_at: None,
            confirmed_cost_usd: 2.5,
            price_source: "static".into(),
            paid_request: false,
            billed_cost_usd: None,
            fal_outputs: None,
            upload_attempts: 0,
            download_attempts: 0,
            revision: 0,
        }
    }

    #[test]
    fn the_spending_ledger_counts_requests_that_left_by_month() {
        let (_dir, library, avatar) = library_with_avatar();
        let mut first = job(avatar);
        assert_eq!(
            library.insert_job(&first, None).expect("insert"),
            JobInsert::Inserted
        );
        let month = at(1).format("%Y-%m").to_string();
        // Confirmed but not sent: committed for the budget, not spent yet.
        assert_eq!(library.committed_in_month(&month).expect("committed"), 2.5);
        assert!(library.monthly_spending().expect("ledger").is_empty());
        assert!(
            library
                .take_lease(first.id, "a", at(1), at(9))
                .expect("lease")
        );
        first.state = JobState::Submitting;
        first.paid_request = true;
        assert!(library.save_job(&first, "a", at(2)).expect("save"));
        first.revision += 1;
        first.state = JobState::Failed;
        first.billed_cost_usd = Some(2.25);
        assert!(library.save_job(&first, "a", at(3)).expect("save"));
        assert_eq!(
            library.monthly_spending().expect("ledger"),
            vec![MonthSpending {
                month: month.clone(),
                confirmed_usd: 2.5,
                billed_usd: Some(2.25),
                requests: 1,
                billed_requests: 1,
            }]
        );
        // A job whose request never left costs nothing.
        let mut unsent = job(avatar);
        assert_eq!(
            library.insert_job(&unsent, None).expect("insert"),
            JobInsert::Inserted
        );
        assert!(
            library
                .take_lease(unsent.id, "a", at(4), at(9))
                .expect("lease")
        );
        unsent.state = JobState::Failed;
        assert!(library.save_job(&unsent, "a", at(5)).expect("save"));
        assert_eq!(library.committed_in_month(&month).expect("committed"), 2.5);
        assert_eq!(library.monthly_spending().expect("ledger").len(), 1);
        // The budget is checked in the same transaction as the insert: 2.5 committed, and
        // another 2.5 does not fit in 4.
        let other = Avatar::draft(
            "Bella".into(),
            Gender::Female,
            TrainingType::Portrait,
            at(0),
        );
        library.insert_avatar(&other).expect("avatar");
        let other = other.id;
        assert_eq!(
            library.insert_job(&job(other), Some(4.0)).expect("insert"),
            JobInsert::OverBudget { committed_usd: 2.5 }
        );
        assert_eq!(
            library.insert_job(&job(other), Some(5.0)).expect("insert"),
            JobInsert::Inserted
        );
    }

    #[test]
    fn an_avatar_has_at_most_one_unfinished_job() {
        let (_dir, library, avatar) = library_with_avatar();
        let first = job(avatar);
        assert_eq!(
            library.insert_job(&first, None).expect("first"),
            JobInsert::Inserted
        );
        assert_eq!(
            library.insert_job(&job(avatar), None).expect("second"),
            JobInsert::AvatarBusy
        );
        assert_eq!(
            library
                .avatar(avatar)
                .expect("read")
                .expect("avatar")
                .status,
            AvatarStatus::Uploading
        );
        let finished = TrainingJob {
            state: JobState::Failed,
            ..first
        };
        assert!(
            library
                .take_lease(finished.id, "a", at(1), at(9))
                .expect("lease")
        );
        assert!(library.save_job(&finished, "a", at(2)).expect("finish"));
        assert_eq!(
            library
                .insert_job(&job(avatar), None)
                .expect("a new one after the end"),
            JobInsert::Inserted
        );
    }

    #[test]
    fn a_final_state_is_written_once_and_the_record_round_trips() {
        let (_dir, library, avatar) = library_with_avatar();
        let mut running = job(avatar);
        library.insert_job(&running, None).expect("insert");
        running.state = JobState::Running;
        running.request_id = Some("req-1".into());
        running.queue_position = Some(3);
        running.submitted_at = Some(at(2));
        library
            .take_lease(running.id, "a", at(1), at(9))
            .expect("lease");
        assert!(library.save_job(&running, "a", at(2)).expect("progress"));
        running.revision = 1;
        assert_eq!(
            library.job(running.id).expect("read"),
            Some(running.clone())
        );
        let done = TrainingJob {
            state: JobState::Completed,
            progress: 100,
            finished_at: Some(at(3)),
            ..running.clone()
        };
        assert!(library.save_job(&done, "b", at(3)).expect("first finisher"));
        let again = TrainingJob {
            revision: 2,
            ..done.clone()
        };
        assert!(
            !library
                .save_job(&again, "b", at(3))
                .expect("second finisher")
        );
        assert!(
            !library
                .save_job(&running, "b", at(3))
                .expect("no going back")
        );
        assert!(library.unfinished_jobs().expect("unfinished").is_empty());
        assert_eq!(
            library
                .avatar(avatar)
                .expect("read")
                .expect("avatar")
                .finetune_id
                .as_deref(),
            Some("req-1")
        );
    }

    #[test]
    fn a_write_lands_only_over_the_revision_it_read_and_only_for_the_lease_holder() {
        let (_dir, library, avatar) = library_with_avatar();
        let preparing = job(avatar);
        library.insert_job(&preparing, None).expect("insert");
        let submitting = TrainingJob {
            state: JobState::Submitting,
            ..preparing.clone()
        };
        assert!(
            !library.save_job(&submitting, "a", at(2)).expect("no lease"),
            "a leased state is written only under a lease"
        );
        library
            .take_lease(preparing.id, "a", at(1), at(5))
            .expect("lease");
        assert!(
            !library.save_job(&submitting, "a", at(5)).expect("expired"),
            "an expired lease fences its old holder"
        );
        // The lease expired and another process took the job over.
        assert!(
            library
                .take_lease(preparing.id, "b", at(6), at(10))
                .expect("taken")
        );
        assert!(
            !library
                .save_job(&submitting, "a", at(7))
                .expect("lost lease"),
            "a process that lost its lease cannot write"
        );
        assert!(library.save_job(&submitting, "b", at(7)).expect("holder"));
        assert!(
            !library.save_job(&submitting, "b", at(8)).expect("stale"),
            "a second write over the same revision is stale"
        );
        let stored = library.job(preparing.id).expect("read").expect("job");
        assert_eq!((stored.state, stored.revision), (JobState::Submitting, 1));
    }

    #[test]
    fn a_lease_is_held_until_it_expires_or_is_released() {
        let (_dir, library, avatar) = library_with_avatar();
        let job = job(avatar);
        library.insert_job(&job, None).expect("insert");
        assert!(
            library
                .take_lease(job.id, "a", at(10), at(20))
                .expect("take")
        );
        assert!(
            !library
                .take_lease(job.id, "b", at(15), at(25))
                .expect("held")
        );
        assert!(
            library
                .take_lease(job.id, "a", at(15), at(25))
                .expect("renew")
        );
        assert!(
            library
                .take_lease(job.id, "b", at(25), at(35))
                .expect("expired")
        );
        library.release_lease(job.id, "b").expect("release");
        assert!(
            library
                .take_lease(job.id, "a", at(26), at(36))
                .expect("free")
        );
    }
}

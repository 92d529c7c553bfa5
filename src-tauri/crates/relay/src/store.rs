//! The event store: one SQLite file in WAL mode with one writer thread. The writer commits every
//! insert that is waiting in one transaction (a group commit), and each commit is on disk before
//! the writer answers (`synchronous = FULL`): an event the relay acknowledged survives a crash or
//! a power cut. Readers use a connection of their own, which WAL lets read beside the writer.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot, watch};

use crate::wire::{EventKind, EventSource, FeedEvent, TrainingType};

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_events.sql"),
    include_str!("../migrations/0002_events_per_source.sql"),
];

/// The schema version this build writes, kept in SQLite's `user_version`.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The most inserts one transaction commits; more wait for the next.
const MAX_GROUP_COMMIT: usize = 256;
/// Writes waiting for the writer thread; handlers beyond this wait for room.
const WRITE_QUEUE: usize = 1024;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the event store failed: {0}")]
    Database(String),
    #[error(
        "the event store was written by a newer avatar-relay (schema {found}, this one knows up to {supported})"
    )]
    TooNew { found: i64, supported: i64 },
    #[error("the event store is closed")]
    Closed,
    #[error("the event store holds a value this version does not understand: {0}")]
    Corrupt(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Database(error.to_string())
    }
}

/// An event to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub request_id: String,
    pub kind: EventKind,
    /// Only for [`EventKind::InProgress`]: two progress reports differ by it.
    pub progress: Option<f64>,
    pub training_type: Option<TrainingType>,
    pub source: EventSource,
    /// The JSON body as received.
    pub body: String,
    pub received_at: DateTime<Utc>,
}

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// A new event, under this cursor.
    New(i64),
    /// The same event of the same request was stored before.
    Duplicate,
}

enum Write {
    Insert {
        event: NewEvent,
        done: oneshot::Sender<Result<Stored, StoreError>>,
    },
    DeleteReceivedBefore {
        before: DateTime<Utc>,
        done: oneshot::Sender<Result<usize, StoreError>>,
    },
    Close,
}

pub struct Store {
    writes: mpsc::Sender<Write>,
    writer: Mutex<Option<JoinHandle<()>>>,
    reader: Arc<Mutex<Connection>>,
    /// The newest cursor committed; followers wait on it for new events.
    latest: watch::Receiver<i64>,
}

impl Store {
    /// Opens the store at `path`, creating and migrating it as needed. Blocking.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut writer = Connection::open(path)?;
        configure(&writer)?;
        migrate(&mut writer)?;
        let reader = Connection::open(path)?;
        configure(&reader)?;
        reader.pragma_update(None, "query_only", true)?;

        let (latest_sender, latest) = watch::channel(last_cursor(&writer)?);
        let (writes, queue) = mpsc::channel(WRITE_QUEUE);
        let writer = std::thread::Builder::new()
            .name("relay-store-writer".to_owned())
            .spawn(move || run_writer(writer, queue, latest_sender))
            .map_err(|error| StoreError::Database(error.to_string()))?;
        Ok(Store {
            writes,
            writer: Mutex::new(Some(writer)),
            reader: Arc::new(Mutex::new(reader)),
            latest,
        })
    }

    /// Stores `event` unless the same event of the same request is there already. Returns once
    /// the transaction is on disk.
    pub async fn insert(&self, event: NewEvent) -> Result<Stored, StoreError> {
        let (done, outcome) = oneshot::channel();
        self.send(Write::Insert { event, done }).await?;
        outcome.await.map_err(|_| StoreError::Closed)?
    }

    /// Deletes the events received before `before`; returns how many.
    pub async fn delete_received_before(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let (done, outcome) = oneshot::channel();
        self.send(Write::DeleteReceivedBefore { before, done })
            .await?;
        outcome.await.map_err(|_| StoreError::Closed)?
    }

    /// The events after `cursor`, oldest first: at most `limit`, and no more than `max_bytes` of
    /// bodies (but always the first, whatever its size). Rows past the cap are never read.
    pub async fn events_after(
        &self,
        cursor: i64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<FeedEvent>, StoreError> {
        self.read(move |connection| events_after(connection, cursor, limit, max_bytes))
            .await
    }

    /// How many events the store holds.
    pub async fn count(&self) -> Result<i64, StoreError> {
        self.read(|connection| {
            Ok(connection.query_row("SELECT count(*) FROM events", [], |row| row.get(0))?)
        })
        .await
    }

    /// Follows the newest cursor committed.
    pub fn latest(&self) -> watch::Receiver<i64> {
        self.latest.clone()
    }

    /// Lets the writer finish what is queued, then closes it. Later writes fail with
    /// [`StoreError::Closed`].
    pub async fn close(&self) {
        let _ = self.writes.send(Write::Close).await;
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(writer) = writer {
            let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        }
    }

    async fn send(&self, write: Write) -> Result<(), StoreError> {
        self.writes
            .send(write)
            .await
            .map_err(|_| StoreError::Closed)
    }

    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            query(&reader.lock().unwrap_or_else(PoisonError::into_inner))
        })
        .await
        .map_err(|error| StoreError::Database(error.to_string()))?
    }
}

fn configure(connection: &Connection) -> Result<(), StoreError> {
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    // In WAL mode FULL syncs the log at every commit; NORMAL could lose the last commits on a
    // power cut, and those are events fal was told were received.
    connection.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    // Immediate: two relays opening the same new file cannot both apply a migration.
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = transaction.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        transaction.execute_batch(sql)?;
        transaction.pragma_update(None, "user_version", index as i64 + 1)?;
    }
    transaction.commit()?;
    Ok(())
}

/// The newest cursor ever handed out, deleted events included.
fn last_cursor(connection: &Connection) -> Result<i64, StoreError> {
    Ok(connection
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
            [],
            |row| row.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

fn run_writer(
    mut connection: Connection,
    mut queue: mpsc::Receiver<Write>,
    latest: watch::Sender<i64>,
) {
    while let Some(first) = queue.blocking_recv() {
        let mut inserts = Vec::new();
        let mut closing = false;
        let mut next = Some(first);
        while let Some(write) = next.take() {
            match write {
                Write::Insert { event, done } => inserts.push((event, done)),
                Write::DeleteReceivedBefore { before, done } => {
                    let _ = done.send(delete_received_before(&connection, before));
                }
                Write::Close => {
                    closing = true;
                    break;
                }
            }
            if inserts.len() < MAX_GROUP_COMMIT {
                next = queue.try_recv().ok();
            }
        }
        if !inserts.is_empty() {
            commit_inserts(&mut connection, inserts, &latest);
        }
        if closing {
            return;
        }
    }
}

type PendingInsert = (NewEvent, oneshot::Sender<Result<Stored, StoreError>>);

fn commit_inserts(
    connection: &mut Connection,
    inserts: Vec<PendingInsert>,
    latest: &watch::Sender<i64>,
) {
    let outcome = (|| {
        let transaction = connection.transaction()?;
        let stored = inserts
            .iter()
            .map(|(event, _)| insert(&transaction, event))
            .collect::<Result<Vec<_>, _>>()?;
        transaction.commit()?;
        Ok::<_, StoreError>(stored)
    })();
    match outcome {
        Ok(stored) => {
            let newest = stored
                .iter()
                .filter_map(|stored| match stored {
                    Stored::New(cursor) => Some(*cursor),
                    Stored::Duplicate => None,
                })
                .max();
            // Published after the commit: a follower woken by it finds the rows.
            if let Some(newest) = newest {
                latest.send_replace(newest);
            }
            for ((_, done), stored) in inserts.into_iter().zip(stored) {
                let _ = done.send(Ok(stored));
            }
        }
        Err(error) => {
            for (_, done) in inserts {
                let _ = done.send(Err(error.clone()));
            }
        }
    }
}

fn insert(connection: &Connection, event: &NewEvent) -> Result<Stored, StoreError> {
    // Looked up first rather than left to the unique index: a conflicting insert would still
    // use up a cursor, and the feed's cursors are clearer without gaps.
    let stored_before = connection
        .prepare_cached(
            "SELECT 1 FROM events
             WHERE request_id = ?1 AND kind = ?2 AND coalesce(progress, -1) = coalesce(?3, -1)
                AND source = ?4",
        )?
        .exists(params![
            event.request_id,
            event.kind.as_str(),
            event.progress,
            event.source.as_str()
        ])?;
    if stored_before {
        return Ok(Stored::Duplicate);
    }
    connection
        .prepare_cached(
            "INSERT INTO events (request_id, kind, progress, training_type, source, body, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            event.request_id,
            event.kind.as_str(),
            event.progress,
            event.training_type.map(TrainingType::as_str),
            event.source.as_str(),
            event.body,
            event.received_at.timestamp_millis(),
        ])?;
    Ok(Stored::New(connection.last_insert_rowid()))
}

fn delete_received_before(
    connection: &Connection,
    before: DateTime<Utc>,
) -> Result<usize, StoreError> {
    Ok(connection.execute(
        "DELETE FROM events WHERE received_at < ?1",
        [before.timestamp_millis()],
    )?)
}

fn events_after(
    connection: &Connection,
    cursor: i64,
    limit: usize,
    max_bytes: usize,
) -> Result<Vec<FeedEvent>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT cursor, request_id, kind, progress, training_type, source, body, received_at
         FROM events WHERE cursor > ?1 ORDER BY cursor LIMIT ?2",
    )?;
    let mut rows = statement.query(params![cursor, limit as i64])?;
    let mut events = Vec::new();
    let mut bytes = 0;
    // SQLite steps one row at a time: stopping here leaves the rest unread.
    while let Some(row) = rows.next()? {
        let body = row.get_ref(6)?.as_str();
        bytes += body.map_or(0, str::len);
        if bytes > max_bytes && !events.is_empty() {
            break;
        }
        events.push(feed_event(row)?);
    }
    Ok(events)
}

fn feed_event(row: &rusqlite::Row) -> Result<FeedEvent, StoreError> {
    let cursor: i64 = row.get(0)?;
    let corrupt = |what: &str| StoreError::Corrupt(format!("event {cursor}: {what}"));
    let kind: String = row.get(2)?;
    let training_type: Option<String> = row.get(4)?;
    let source: String = row.get(5)?;
    let body: String = row.get(6)?;
    let received_at: i64 = row.get(7)?;
    Ok(FeedEvent {
        cursor,
        request_id: row.get(1)?,
        kind: EventKind::parse(&kind).ok_or_else(|| corrupt("kind"))?,
        progress: row.get(3)?,
        training_type: training_type
            .map(|text| TrainingType::parse(&text).ok_or_else(|| corrupt("training_type")))
            .transpose()?,
        source: EventSource::parse(&source).ok_or_else(|| corrupt("source"))?,
        body: serde_json::from_str(&body).map_err(|_| corrupt("body"))?,
        received_at: DateTime::from_timestamp_millis(received_at)
            .ok_or_else(|| corrupt("received_at"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(request_id: &str, kind: EventKind, progress: Option<f64>) -> NewEvent {
        NewEvent {
            request_id: request_id.to_owned(),
            kind,
            progress,
            training_type: Some(TrainingType::Portrait),
            source: EventSource::Trusted,
            body: format!(r#"{{"request_id":"{request_id}"}}"#),
            received_at: Utc::now(),
        }
    }

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("relay.sqlite3")).unwrap();
        (dir, store)
    }

    #[test]
    fn every_migration_applies_to_an_empty_database() {
        let mut connection = Connection::open_in_memory().unwrap();
        migrate(&mut connection).unwrap();
        let version: i64 = connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        migrate(&mut connection).expect("a second run applies nothing");
    }

    #[test]
    fn a_store_from_a_newer_relay_is_refused() {
        let mut connection = Connection::open_in_memory().unwrap();
        connection
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        assert!(matches!(
            migrate(&mut connection),
            Err(StoreError::TooNew { found, .. }) if found == SCHEMA_VERSION + 1
        ));
    }

    #[tokio::test]
    async fn each_event_of_a_request_is_stored_once() {
        let (_dir, store) = open();
        let first = store
            .insert(event("r-1", EventKind::Completed, None))
            .await
            .unwrap();
        assert_eq!(first, Stored::New(1));
        assert_eq!(
            store
                .insert(event("r-1", EventKind::Completed, None))
                .await
                .unwrap(),
            Stored::Duplicate,
            "a completion without progress is still a duplicate: NULLs must not defeat the index"
        );
        for (progress, expected) in [
            (Some(10.0), Stored::New(2)),
            (Some(20.0), Stored::New(3)),
            (Some(20.0), Stored::Duplicate),
            (None, Stored::New(4)),
            (None, Stored::Duplicate),
        ] {
            let stored = store
                .insert(event("r-1", EventKind::InProgress, progress))
                .await
                .unwrap();
            assert_eq!(stored, expected, "progress {progress:?}");
        }
        assert_eq!(store.count().await.unwrap(), 4);
        assert_eq!(*store.latest().borrow(), 4);
        store.close().await;
    }

    #[tokio::test]
    async fn concurrent_inserts_all_commit_with_distinct_cursors() {
        let (_dir, store) = open();
        let store = Arc::new(store);
        let inserts = (0..500).map(|index| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .insert(event(&format!("r-{index}"), EventKind::Completed, None))
                    .await
            })
        });
        let mut cursors = Vec::new();
        for insert in inserts {
            match insert.await.unwrap().unwrap() {
                Stored::New(cursor) => cursors.push(cursor),
                Stored::Duplicate => panic!("every request id differs"),
            }
        }
        cursors.sort_unstable();
        assert_eq!(cursors, (1..=500).collect::<Vec<_>>());
        assert_eq!(
            store.events_after(0, 1000, usize::MAX).await.unwrap().len(),
            500
        );
        store.close().await;
    }

    #[tokio::test]
    async fn retention_deletes_old_events_and_cursors_are_never_reused() {
        let (dir, store) = open();
        let old = NewEvent {
            received_at: Utc::now() - chrono::Duration::days(40),
            ..event("old", EventKind::Completed, None)
        };
        store.insert(old).await.unwrap();
        store
            .insert(event("new", EventKind::Completed, None))
            .await
            .unwrap();
        let deleted = store
            .delete_received_before(Utc::now() - chrono::Duration::days(30))
            .await
            .unwrap();
        assert_eq!(deleted, 1);
        let left = store.events_after(0, 10, usize::MAX).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].request_id, "new");
        assert_eq!(left[0].cursor, 2);
        store.close().await;

        // Reopened after the newest row is gone, the store still hands out a higher cursor.
        let store = Store::open(&dir.path().join("relay.sqlite3")).unwrap();
        store
            .delete_received_before(Utc::now() + chrono::Duration::days(1))
            .await
            .unwrap();
        store.close().await;
        let store = Store::open(&dir.path().join("relay.sqlite3")).unwrap();
        assert_eq!(*store.latest().borrow(), 2);
        let stored = store
            .insert(event("newer", EventKind::Completed, None))
            .await
            .unwrap();
        assert_eq!(stored, Stored::New(3));
        store.close().await;
    }

    #[tokio::test]
    async fn a_page_stops_at_its_byte_cap_but_always_carries_one_event() {
        let (_dir, store) = open();
        for index in 0..5 {
            let mut event = event(&format!("req_{index}"), EventKind::InProgress, Some(0.5));
            event.body = format!(r#"{{"note":"{}"}}"#, "x".repeat(1000));
            store.insert(event).await.unwrap();
        }
        let page = store.events_after(0, 500, 2500).await.unwrap();
        assert_eq!(page.len(), 2, "two bodies of about 1 KB fit in 2.5 KB");
        let page = store.events_after(0, 500, 10).await.unwrap();
        assert_eq!(page.len(), 1, "the first event always comes");
        let page = store.events_after(0, 3, usize::MAX).await.unwrap();
        assert_eq!(page.len(), 3, "and the count limit still holds");
    }

    #[tokio::test]
    async fn writes_after_close_fail() {
        let (_dir, store) = open();
        store.close().await;
        assert!(matches!(
            store.insert(event("r", EventKind::Failed, None)).await,
            Err(StoreError::Closed)
        ));
    }
}

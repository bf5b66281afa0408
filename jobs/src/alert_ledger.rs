//! Where worker replicas keep which dead letters were announced when, so that an alert per
//! queue and kind goes out at most once per cooldown however many replicas see dead letters:
//! in memory for one process ([`MemoryLedger`]), or in the database for many
//! ([`SqlAlertLedger`], table `job_alerts`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, IntoActiveModel, QueryFilter,
    QuerySelect,
};

/// Dead letters of one queue and kind waiting to be announced.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Waiting {
    /// Queue.
    pub queue: String,
    /// Job kind.
    pub kind: String,
    /// How many died since the last announcement.
    pub count: u64,
    /// When the first of them died.
    pub since: DateTime<Utc>,
    /// The first one's error.
    pub first_error: String,
    /// The last one's error.
    pub last_error: String,
}

/// Keeps dead letters until they may be announced.
#[async_trait::async_trait]
pub trait AlertLedger: Send + Sync {
    /// Adds dead letters that just arrived. When their queue and kind were not announced within
    /// `cooldown`, everything waiting for them is returned to be announced now (and is no
    /// longer waiting).
    async fn add(&self, arrived: &Waiting, now: DateTime<Utc>, cooldown: Duration) -> anyhow::Result<Option<Waiting>>;

    /// Takes everything waiting whose cooldown has run out, to be announced now.
    async fn due(&self, now: DateTime<Utc>, cooldown: Duration) -> anyhow::Result<Vec<Waiting>>;
}

/// One queue and kind's record: when it was last announced, and what waits since.
#[derive(Clone, Debug)]
struct Record {
    announced_at: Option<DateTime<Utc>>,
    waiting: Option<Waiting>,
}

impl Record {
    fn add(&mut self, arrived: &Waiting) {
        match &mut self.waiting {
            Some(waiting) => {
                waiting.count += arrived.count;
                waiting.last_error.clone_from(&arrived.last_error);
            }
            None => self.waiting = Some(arrived.clone()),
        }
    }

    /// What waits, when the cooldown allows announcing it at `now`.
    fn take_if_due(&mut self, now: DateTime<Utc>, cooldown: Duration) -> Option<Waiting> {
        let cooled = self.announced_at.is_none_or(|at| (now - at).to_std().unwrap_or_default() >= cooldown);
        if !cooled {
            return None;
        }
        let waiting = self.waiting.take()?;
        self.announced_at = Some(now);
        Some(waiting)
    }
}

/// A ledger for one process.
#[derive(Default)]
pub struct MemoryLedger(Mutex<HashMap<(String, String), Record>>);

#[async_trait::async_trait]
impl AlertLedger for MemoryLedger {
    async fn add(&self, arrived: &Waiting, now: DateTime<Utc>, cooldown: Duration) -> anyhow::Result<Option<Waiting>> {
        let mut records = self.0.lock().map_err(|_| anyhow::anyhow!("the alert ledger is poisoned"))?;
        let record = records
            .entry((arrived.queue.clone(), arrived.kind.clone()))
            .or_insert(Record { announced_at: None, waiting: None });
        record.add(arrived);
        Ok(record.take_if_due(now, cooldown))
    }

    async fn due(&self, now: DateTime<Utc>, cooldown: Duration) -> anyhow::Result<Vec<Waiting>> {
        let mut records = self.0.lock().map_err(|_| anyhow::anyhow!("the alert ledger is poisoned"))?;
        Ok(records.values_mut().filter_map(|record| record.take_if_due(now, cooldown)).collect())
    }
}

/// The `job_alerts` table.
pub mod table {
    use sea_orm::entity::prelude::*;

    /// One queue and kind's alert record.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "job_alerts")]
    pub struct Model {
        /// Queue.
        #[sea_orm(primary_key, auto_increment = false)]
        pub queue: String,
        /// Job kind.
        #[sea_orm(primary_key, auto_increment = false)]
        pub kind: String,
        /// When its dead letters were last announced.
        pub announced_at: Option<DateTime>,
        /// Dead letters since then.
        pub waiting: i64,
        /// When the first of them died.
        pub waiting_since: Option<DateTime>,
        /// The first one's error.
        pub first_error: Option<String>,
        /// The last one's error.
        pub last_error: Option<String>,
    }

    /// Relations of `job_alerts` (none).
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A ledger every replica shares through the database: each change is made under a row lock
/// (SQLite has one writer), so of two replicas adding at once one announces and the other's
/// dead letters wait for the next announcement.
pub struct SqlAlertLedger {
    db: DatabaseConnection,
}

impl SqlAlertLedger {
    /// A ledger over `db`, which holds the `job_alerts` table.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    fn record(row: &table::Model) -> Record {
        let waiting = (row.waiting > 0).then(|| Waiting {
            queue: row.queue.clone(),
            kind: row.kind.clone(),
            count: u64::try_from(row.waiting).unwrap_or_default(),
            since: row.waiting_since.map_or_else(crate::now, |at| at.and_utc()),
            first_error: row.first_error.clone().unwrap_or_default(),
            last_error: row.last_error.clone().unwrap_or_default(),
        });
        Record { announced_at: row.announced_at.map(|at| at.and_utc()), waiting }
    }

    fn write(row: table::Model, record: &Record) -> table::ActiveModel {
        let mut active = row.into_active_model();
        let waiting = record.waiting.as_ref();
        active.announced_at = sea_orm::Set(record.announced_at.map(|at| at.naive_utc()));
        active.waiting = sea_orm::Set(waiting.map_or(0, |w| i64::try_from(w.count).unwrap_or(i64::MAX)));
        active.waiting_since = sea_orm::Set(waiting.map(|w| w.since.naive_utc()));
        active.first_error = sea_orm::Set(waiting.map(|w| w.first_error.clone()));
        active.last_error = sea_orm::Set(waiting.map(|w| w.last_error.clone()));
        active.reset_all()
    }

    fn locked(select: sea_orm::Select<table::Entity>, backend: DbBackend) -> sea_orm::Select<table::Entity> {
        if backend == DbBackend::MySql { select.lock_exclusive() } else { select }
    }
}

#[async_trait::async_trait]
impl AlertLedger for SqlAlertLedger {
    async fn add(&self, arrived: &Waiting, now: DateTime<Utc>, cooldown: Duration) -> anyhow::Result<Option<Waiting>> {
        let fresh = table::ActiveModel {
            queue: sea_orm::Set(arrived.queue.clone()),
            kind: sea_orm::Set(arrived.kind.clone()),
            announced_at: sea_orm::Set(None),
            waiting: sea_orm::Set(0),
            waiting_since: sea_orm::Set(None),
            first_error: sea_orm::Set(None),
            last_error: sea_orm::Set(None),
        };
        let txn = crate::transactions::begin(&self.db).await?;
        table::Entity::insert(fresh)
            .on_conflict(
                OnConflict::columns([table::Column::Queue, table::Column::Kind])
                    .do_nothing_on([table::Column::Queue])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        let select = table::Entity::find_by_id((arrived.queue.clone(), arrived.kind.clone()));
        let row = Self::locked(select, self.db.get_database_backend())
            .one(&txn)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the alert record of {}/{} vanished", arrived.queue, arrived.kind))?;
        let mut record = Self::record(&row);
        record.add(arrived);
        let announce = record.take_if_due(now, cooldown);
        Self::write(row, &record).update(&txn).await?;
        txn.commit().await?;
        Ok(announce)
    }

    async fn due(&self, now: DateTime<Utc>, cooldown: Duration) -> anyhow::Result<Vec<Waiting>> {
        let cooled = now - chrono::Duration::from_std(cooldown).unwrap_or_default();
        let txn = crate::transactions::begin(&self.db).await?;
        let select = table::Entity::find().filter(table::Column::Waiting.gt(0)).filter(
            sea_orm::Condition::any()
                .add(table::Column::AnnouncedAt.lte(cooled.naive_utc()))
                .add(table::Column::AnnouncedAt.is_null()),
        );
        let rows = Self::locked(select, self.db.get_database_backend()).all(&txn).await?;
        let mut announce = Vec::new();
        for row in rows {
            let mut record = Self::record(&row);
            if let Some(waiting) = record.take_if_due(now, cooldown) {
                announce.push(waiting);
                Self::write(row, &record).update(&txn).await?;
            }
        }
        txn.commit().await?;
        Ok(announce)
    }
}

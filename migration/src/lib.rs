//! tasklane's schema as SeaORM migrations; every migration runs on MySQL/MariaDB and SQLite.

use sea_orm_migration::prelude::*;

mod m20261125_000001_foundation;
mod m20261125_000002_jobs;
mod m20261125_000003_notifications;
mod m20261201_000004_jobs_policy;
mod m20261202_000005_reports;
mod m20261203_000006_hardening;
mod m20261204_000007_task_keys;
mod m20261205_000008_job_alerts;
mod m20261206_000009_task_words;
mod m20261207_000010_status_sorts;
mod m20261208_000011_pic_sorts;
mod m20261209_000012_word_ages;
mod types;

pub use m20261206_000009_task_words::index_task_words;

/// The ordered list of tasklane migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_foundation::Migration),
            Box::new(m20261125_000002_jobs::Migration),
            Box::new(m20261125_000003_notifications::Migration),
            Box::new(m20261201_000004_jobs_policy::Migration),
            Box::new(m20261202_000005_reports::Migration),
            Box::new(m20261203_000006_hardening::Migration),
            Box::new(m20261204_000007_task_keys::Migration),
            Box::new(m20261205_000008_job_alerts::Migration),
            Box::new(m20261206_000009_task_words::Migration),
            Box::new(m20261207_000010_status_sorts::Migration),
            Box::new(m20261208_000011_pic_sorts::Migration),
            Box::new(m20261209_000012_word_ages::Migration),
        ]
    }
}

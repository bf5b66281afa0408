//! Operator alerts are spaced out across worker replicas: `job_alerts` records, per queue and
//! job kind, when dead letters were last announced and what died since.

use sea_orm_migration::prelude::*;

use crate::types::instant;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_000008_job_alerts"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum JobAlerts {
    Table,
    Queue,
    Kind,
    AnnouncedAt,
    Waiting,
    WaitingSince,
    FirstError,
    LastError,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(JobAlerts::Table)
                    .col(ColumnDef::new(JobAlerts::Queue).string_len(100).not_null())
                    .col(ColumnDef::new(JobAlerts::Kind).string_len(100).not_null())
                    .col(instant(db, JobAlerts::AnnouncedAt).null())
                    .col(ColumnDef::new(JobAlerts::Waiting).big_integer().not_null().default(0))
                    .col(instant(db, JobAlerts::WaitingSince).null())
                    .col(ColumnDef::new(JobAlerts::FirstError).text().null())
                    .col(ColumnDef::new(JobAlerts::LastError).text().null())
                    .primary_key(Index::create().col(JobAlerts::Queue).col(JobAlerts::Kind))
                    .to_owned(),
            )
            .await
    }
}

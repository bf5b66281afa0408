//! Emails are claimed before they are sent: a worker writes its claim and how long it holds it
//! on the notification rows, so a second copy of the same job finds them taken and a claim
//! whose worker died can be taken over once it has run out.

use sea_orm_migration::prelude::*;

use crate::types::instant;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000006_delivery_claims"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Notifications {
    Table,
    ClaimedBy,
    ClaimedUntil,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_database_backend();
        // One column per statement: SQLite alters one column at a time.
        let columns = [
            ColumnDef::new(Notifications::ClaimedBy).string_len(200).null().to_owned(),
            instant(db, Notifications::ClaimedUntil).null().to_owned(),
        ];
        for mut column in columns {
            manager.alter_table(Table::alter().table(Notifications::Table).add_column(&mut column).to_owned()).await?;
        }
        Ok(())
    }
}

//! Column types whose best spelling differs between MySQL and SQLite.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// A UTC instant with microseconds. MySQL's plain `DATETIME` drops fractions of a second,
/// which would make `created_at`/`updated_at` orderings ambiguous within one second.
pub fn instant(backend: DbBackend, column: impl IntoIden) -> ColumnDef {
    let mut def = ColumnDef::new(column);
    match backend {
        DbBackend::MySql => def.custom(Alias::new("DATETIME(6)")),
        _ => def.timestamp_with_time_zone(),
    };
    def
}

/// Long free text: MySQL's `TEXT` holds only 64 KiB, too little for 20,000 multi-byte characters.
pub fn long_text(backend: DbBackend, column: impl IntoIden) -> ColumnDef {
    let mut def = ColumnDef::new(column);
    match backend {
        DbBackend::MySql => def.custom(Alias::new("MEDIUMTEXT")),
        _ => def.text(),
    };
    def
}

/// An index named `name` on `columns` of `table`.
pub fn index<T: IntoIden + Copy>(name: &str, table: T, columns: &[T]) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table);
    for column in columns {
        index.col(*column);
    }
    index.to_owned()
}

/// The four indexes that read the tasks of one value of `leading` (a status, a PIC) in each
/// list sort's order: (leading, sort key, id), named `{prefix}_{created|updated|urgency|deadline_key}`.
pub async fn sort_indexes<T: IntoIden + Copy>(
    manager: &SchemaManager<'_>,
    table: T,
    prefix: &str,
    leading: T,
    [created_at, updated_at, urgency_key, deadline_key, id]: [T; 5],
) -> Result<(), DbErr> {
    let sorts =
        [("created", created_at), ("updated", updated_at), ("urgency", urgency_key), ("deadline_key", deadline_key)];
    for (name, key) in sorts {
        manager.create_index(index(&format!("{prefix}_{name}"), table, &[leading, key, id])).await?;
    }
    Ok(())
}

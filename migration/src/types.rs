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

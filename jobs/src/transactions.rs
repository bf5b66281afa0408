//! Transactions that a cancelled caller cannot leave open.
//!
//! SQLx counts a MySQL transaction only once its `BEGIN` has answered: a caller dropped while
//! `BEGIN` is in flight (a shutting-down worker, a request whose client went away, a timeout)
//! returns the connection to the pool with the server inside a transaction SQLx does not know
//! of. Every later statement on that connection then runs inside it, holding its locks and
//! reading its snapshot, until some other `BEGIN` commits it implicitly (a MariaDB test
//! cancelling `BEGIN`s at random left 49 of 59 open). Beginning on a task of its own lets
//! `BEGIN` finish whatever happens to the caller; a transaction nobody takes is then dropped,
//! and rolled back, like any other.

use sea_orm::{AccessMode, DatabaseConnection, DatabaseTransaction, DbErr, IsolationLevel, TransactionTrait};

/// Begins a transaction on `db` (see the module).
pub async fn begin(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    begin_with(db, None, None).await
}

/// Begins a transaction on `db` with an isolation level or access mode (see the module).
pub async fn begin_with(
    db: &DatabaseConnection,
    isolation: Option<IsolationLevel>,
    access: Option<AccessMode>,
) -> Result<DatabaseTransaction, DbErr> {
    let db = db.clone();
    tokio::spawn(async move { db.begin_with_config(isolation, access).await })
        .await
        .map_err(|err| DbErr::Custom(format!("beginning a transaction stopped: {err}")))?
}

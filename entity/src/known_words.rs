//! Every word a task has held (as `task_words` spells it), so a search finds the stored words a
//! beginning stands for with one short index read. A word no task holds any more costs its
//! searches an empty walk until the maintenance worker takes it out, a grace period after it
//! was last remembered (see `remembered_at`).

use sea_orm::entity::prelude::*;

/// One known word.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "known_words")]
pub struct Model {
    /// The word, cut like `task_words.word`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub word: String,
    /// When a writer last added the word, about to write a task holding it: refreshed at most
    /// hourly, so that pruning never takes out a word whose task's transaction is still
    /// running. Null for words added before the column existed and by `migrate index-words`
    /// (kept until a task write remembers them).
    pub remembered_at: Option<DateTime>,
}

/// Relations of `known_words` (none).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

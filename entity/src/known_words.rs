//! Every word a task has held (as `task_words` spells it), so a search finds the stored words a
//! beginning stands for with one short index read. Words are never taken out: one that no task
//! holds any more only costs its search an empty walk.

use sea_orm::entity::prelude::*;

/// One known word.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "known_words")]
pub struct Model {
    /// The word, cut like `task_words.word`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub word: String,
}

/// Relations of `known_words` (none).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

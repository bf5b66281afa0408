//! The words of every task, each row carrying its task's sort keys, so that a search reads the
//! tasks holding a word already in the order of any sort (one index per sort key).

use std::collections::BTreeSet;

use sea_orm::entity::prelude::*;

/// One word of one task.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "task_words")]
pub struct Model {
    /// The task holding the word.
    #[sea_orm(primary_key, auto_increment = false)]
    pub task_id: i64,
    /// A word of [`super::tasks::search_text`], cut to [`MAX_WORD_CHARS`] characters.
    #[sea_orm(primary_key, auto_increment = false)]
    pub word: String,
    /// The task's `created_at`.
    pub created_at: DateTime,
    /// The task's `updated_at`, rewritten whenever the task's is.
    pub updated_at: DateTime,
    /// The task's `urgency_key`.
    pub urgency_key: i64,
    /// The task's `deadline_key`.
    pub deadline_key: i64,
}

/// Relations of `task_words` (none are navigated from here).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Longest word kept whole; longer ones are kept as their beginning, which a search treats
/// as a word that begins with it (and checks the rest against the task's `search_text`).
pub const MAX_WORD_CHARS: usize = 64;

/// The distinct words of a stored `search_text`, each cut to [`MAX_WORD_CHARS`] characters.
pub fn words_of(search_text: &str) -> BTreeSet<String> {
    search_text
        .split(' ')
        .filter(|word| !word.is_empty())
        .map(|word| word.chars().take(MAX_WORD_CHARS).collect())
        .collect()
}

/// What each word of a task copies from the task: its sort keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskKeys {
    /// The task's `created_at`.
    pub created_at: DateTime,
    /// The task's `updated_at`.
    pub updated_at: DateTime,
    /// The task's `urgency_key`.
    pub urgency_key: i64,
    /// The task's `deadline_key`.
    pub deadline_key: i64,
}

impl TaskKeys {
    /// The keys of a task with these times, priority and deadline, computed as the task's own.
    pub fn new(created_at: DateTime, updated_at: DateTime, priority: i16, deadline: Option<DateTime>) -> Self {
        Self {
            created_at,
            updated_at,
            urgency_key: super::tasks::urgency_key(priority, deadline),
            deadline_key: super::tasks::deadline_key(deadline),
        }
    }
}

/// The rows of one task: one per word (of [`words_of`] its `search_text`), with its sort keys.
pub fn rows_of(task_id: i64, words: &BTreeSet<String>, keys: TaskKeys) -> Vec<ActiveModel> {
    use sea_orm::ActiveValue::Set;
    words
        .iter()
        .map(|word| ActiveModel {
            task_id: Set(task_id),
            word: Set(word.clone()),
            created_at: Set(keys.created_at),
            updated_at: Set(keys.updated_at),
            urgency_key: Set(keys.urgency_key),
            deadline_key: Set(keys.deadline_key),
        })
        .collect()
}

/// The range of stored words that begin with `prefix`: from it, inclusive, to it followed by
/// the last code point, exclusive. Words are compared by code point (binary collation), and no
/// stored word holds that code point (it is not a letter or digit).
pub fn range_of(prefix: &str) -> (String, String) {
    let start: String = prefix.chars().take(MAX_WORD_CHARS).collect();
    let end = format!("{start}{}", char::MAX);
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_distinct_cut_and_ranges_hold_exactly_the_words_that_begin_with_a_prefix() {
        let long = "x".repeat(70);
        let words = words_of(&format!(" report reports report {long} 보고서 "));
        assert_eq!(words.len(), 4);
        assert!(words.contains(&"x".repeat(MAX_WORD_CHARS)));
        let (start, end) = range_of("rep");
        for word in ["rep", "report", "repz", "rep\u{10FFFD}x"] {
            assert!(word >= start.as_str() && word < end.as_str(), "{word}");
        }
        for word in ["re", "req", "rf", "reo"] {
            assert!(!(word >= start.as_str() && word < end.as_str()), "{word}");
        }
        let (start, end) = range_of("보고");
        assert!("보고서" >= start.as_str() && "보고서" < end.as_str());
    }
}

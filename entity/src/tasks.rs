//! A unit of user work.

use sea_orm::entity::prelude::*;

/// One row of `tasks`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tasks")]
pub struct Model {
    /// Surrogate key (the seed's `Task_id`).
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Short title.
    pub name: String,
    /// Free text.
    pub contents: String,
    /// `pending`, `in_progress` or `done`.
    pub status: String,
    /// 1 = low, 2 = medium, 3 = high, 4 = urgent (numeric so it sorts).
    pub priority: i16,
    /// When it is due, if ever.
    pub deadline: Option<DateTime>,
    /// Person in charge (assignee).
    pub pic_id: Option<i64>,
    /// Who oversees it.
    pub supervisor_id: Option<i64>,
    /// Who created it; null once that account is deleted.
    pub creator_id: Option<i64>,
    /// Optimistic-concurrency version; equals the sequence number of its latest event.
    pub version: i32,
    /// When it was created.
    pub created_at: DateTime,
    /// When it last changed.
    pub updated_at: DateTime,
    /// When it last became done; null while not done.
    pub completed_at: Option<DateTime>,
    /// The deadline it had when it last became done, while done.
    pub completed_due: Option<DateTime>,
    /// When work on it first started (it first moved to `in_progress`).
    pub started_at: Option<DateTime>,
    /// [`urgency_key`] of its priority and deadline, so the priority sort reads an index.
    pub urgency_key: i64,
    /// [`deadline_key`] of its deadline, so the deadline sort reads an index.
    pub deadline_key: i64,
    /// [`search_text`] of its name and contents, which `q` searches.
    #[sea_orm(column_type = "Text")]
    pub search_text: String,
}

/// Relations of `tasks` (none are navigated from here).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl ActiveModel {
    /// Sets the stored sort and search keys from the name, contents, priority and deadline set
    /// on it; every write of those fields goes through here so the keys never go stale.
    #[must_use]
    pub fn with_keys(mut self) -> Self {
        use sea_orm::ActiveValue::Set;
        if let (Set(priority), Set(deadline)) = (&self.priority, &self.deadline) {
            self.urgency_key = Set(urgency_key(*priority, *deadline));
            self.deadline_key = Set(deadline_key(*deadline));
        }
        if let (Set(name), Set(contents)) = (&self.name, &self.contents) {
            self.search_text = Set(search_text(name, contents));
        }
        self
    }
}

/// The deadline key of a task without a deadline: after every real one (9999-12-31 is about
/// 2.5e17 microseconds after 1970).
pub const NO_DEADLINE_KEY: i64 = 1_000_000_000_000_000_000 - 1;

/// Microseconds since 1970 of the deadline, or [`NO_DEADLINE_KEY`]: ascending order is
/// soonest first with tasks without a deadline last, in one non-null column.
pub fn deadline_key(deadline: Option<DateTime>) -> i64 {
    deadline.map_or(NO_DEADLINE_KEY, |at| at.and_utc().timestamp_micros().clamp(0, NO_DEADLINE_KEY - 1))
}

/// Ascending order is the priority sort's natural one: urgent first, then the nearest
/// deadline, tasks without a deadline last within their priority.
pub fn urgency_key(priority: i16, deadline: Option<DateTime>) -> i64 {
    let rank = i64::from(4 - priority.clamp(1, 4));
    rank * (NO_DEADLINE_KEY + 1) + deadline_key(deadline)
}

/// The first and last urgency key a task of `priority` can have: each priority's tasks lie
/// together in the priority sort, so a priority filter is a range of its index.
pub fn urgency_keys(priority: i16) -> (i64, i64) {
    let last = urgency_key(priority, None);
    (last - NO_DEADLINE_KEY, last)
}

/// The words of a name and contents as `q` matches them: lowercased, split at every
/// character that is not a letter or digit, one space between words and one at each end, so
/// `LIKE '% word%'` finds a word that begins with `word` and `task_words` holds the same words.
pub fn search_text(name: &str, contents: &str) -> String {
    let mut text = String::with_capacity(name.len() + contents.len() + 3);
    text.push(' ');
    for word in search_words(name).into_iter().chain(search_words(contents)) {
        text.push_str(&word);
        text.push(' ');
    }
    text
}

/// The words of `text` the way [`search_text`] stores them.
pub fn search_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()).map(str::to_lowercase).collect()
}

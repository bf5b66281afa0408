//! Task lists and searches over a few thousand tasks: every sort order and search gives the same
//! tasks, in the same order, as a sort of them all here, and edits move a task's words and
//! sort positions with it.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use chrono::{Duration, NaiveDateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    Statement,
};
use tasklane_core::AppContext;
use tasklane_core::auth::Principal;
use tasklane_core::tasks::list::{ListQuery, list};
use tasklane_entity::tasks;
use tasklane_testkit::{fresh_context, member};

/// Ten times the rows of the sort order one request examines to check filters (250).
const TASKS: usize = 2_600;

fn task(i: usize, creator: i64, origin: NaiveDateTime) -> tasks::ActiveModel {
    let mut contents = format!("routine item {i}");
    // A word that begins another, on a third of the tasks: two walks, each longer than a
    // request's scan budget shared between them.
    if i.is_multiple_of(3) {
        contents.push_str(" items");
    }
    // A middling word on every 40th task, a rare one on three tasks far apart, a word it
    // begins on a fourth, and a word that only appears inside another.
    if i % 40 == 7 {
        contents.push_str(" Quarterly-review");
    }
    if [5, 1_300, 2_590].contains(&i) {
        contents.push_str(" zephyr");
    }
    if i == 17 {
        contents.push_str(" prezephyrs");
    }
    if i == 2_000 {
        contents.push_str(" Zephyrs");
    }
    tasks::ActiveModel {
        name: Set(if i == 2_000 { "보고서 작성".to_owned() } else { format!("task t{i}") }),
        contents: Set(contents),
        status: Set(["pending", "in_progress", "done"][i % 3].to_owned()),
        priority: Set((i % 4 + 1) as i16),
        deadline: Set((!i.is_multiple_of(5)).then(|| origin + Duration::hours(((i * 7_919) % 3_000) as i64))),
        creator_id: Set(Some(creator)),
        version: Set(1),
        created_at: Set(origin + Duration::minutes(i as i64)),
        updated_at: Set(origin + Duration::minutes(((i * 104_729) % 10_000) as i64)),
        ..Default::default()
    }
    .with_keys()
}

async fn walk(ctx: &AppContext, who: &Principal, sort: &str, order: &str, q: &str, limit: u64) -> Vec<i64> {
    walk_status(ctx, who, None, sort, order, q, limit).await
}

async fn walk_status(
    ctx: &AppContext,
    who: &Principal,
    status: Option<&str>,
    sort: &str,
    order: &str,
    q: &str,
    limit: u64,
) -> Vec<i64> {
    let query = || ListQuery {
        status: status.map(str::to_owned),
        sort: Some(sort.to_owned()),
        order: Some(order.to_owned()),
        q: Some(q.to_owned()),
        limit: Some(limit),
        ..Default::default()
    };
    follow(ctx, who, query).await.0
}

/// Every task `query` lists, page by page, and how many pages came back short of their limit
/// with a cursor to go on (a request's scan budget ran out before its page filled).
async fn follow(ctx: &AppContext, who: &Principal, query: impl Fn() -> ListQuery) -> (Vec<i64>, usize) {
    let mut seen = Vec::new();
    let mut short_pages = 0;
    let mut cursor = None;
    loop {
        let query = ListQuery { cursor: cursor.take(), ..query() };
        let limit = query.limit.unwrap_or(50) as usize;
        let page = list(ctx, who, query).await.unwrap();
        seen.extend(page.tasks.iter().map(|t| t.id));
        match page.next_cursor {
            Some(next) => {
                short_pages += usize::from(page.tasks.len() < limit);
                cursor = Some(next);
            }
            None => return (seen, short_pages),
        }
    }
}

/// The order the API promises, computed from the rows themselves.
fn expected(rows: &[tasks::Model], sort: &str, descending: bool, matches: impl Fn(&tasks::Model) -> bool) -> Vec<i64> {
    let mut rows: Vec<&tasks::Model> = rows.iter().filter(|t| matches(t)).collect();
    rows.sort_by(|x, y| {
        let by_deadline = match (x.deadline, y.deadline) {
            (Some(a), Some(b)) => a.cmp(&b),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        match sort {
            "priority" => y.priority.cmp(&x.priority).then(by_deadline),
            "deadline" => by_deadline,
            "updated_at" => x.updated_at.cmp(&y.updated_at),
            _ => x.created_at.cmp(&y.created_at),
        }
        .then(x.id.cmp(&y.id))
    });
    let mut ids: Vec<i64> = rows.into_iter().map(|t| t.id).collect();
    if descending != (sort == "priority") {
        ids.reverse();
    }
    ids
}

#[tokio::test]
async fn searches_and_sorts_past_the_walked_window_agree_with_a_full_sort() {
    let (ctx, _dir) = fresh_context(|_| {}).await;
    let kim = member(&ctx, "kim@example.com").await;
    let lee = member(&ctx, "lee@example.com").await;
    let origin = (Utc::now() - Duration::days(30)).naive_utc();
    let creator = |i: usize| if i % 100 == 3 { lee.user_id } else { kim.user_id };
    // PICs: lee on one task in fifty, kim on half the rest, nobody on the others.
    let pic = |i: usize| match i {
        _ if i % 50 == 9 => Some(lee.user_id),
        _ if i.is_multiple_of(2) => Some(kim.user_id),
        _ => None,
    };
    let rows: Vec<tasks::ActiveModel> =
        (0..TASKS).map(|i| tasks::ActiveModel { pic_id: Set(pic(i)), ..task(i, creator(i), origin) }).collect();
    for chunk in rows.chunks(500) {
        tasks::Entity::insert_many(chunk.to_vec()).exec_without_returning(&ctx.db).await.unwrap();
    }
    assert_eq!(tasklane_core::db::index_task_words(&ctx.db, |_| {}).await.unwrap(), TASKS as u64);
    assert_eq!(tasklane_core::db::index_task_words(&ctx.db, |_| {}).await.unwrap(), 0, "indexing twice writes nothing");
    let all = tasks::Entity::find().all(&ctx.db).await.unwrap();
    let has = |needle: &'static str| {
        move |t: &tasks::Model| t.contents.to_lowercase().split(|c: char| !c.is_alphanumeric()).any(|w| w == needle)
    };
    let begins = |needle: &'static str| {
        move |t: &tasks::Model| {
            t.contents.to_lowercase().split(|c: char| !c.is_alphanumeric()).any(|w| w.starts_with(needle))
        }
    };

    // Sorts without a search, in both directions, a page of 100 at a time; and of one status
    // and of two.
    for sort in ["priority", "deadline", "created_at", "updated_at"] {
        for (order, descending) in [("asc", false), ("desc", true)] {
            let walked = walk(&ctx, &kim, sort, order, "", 100).await;
            assert_eq!(walked, expected(&all, sort, descending, |_| true), "sort={sort} order={order}");
            let walked = walk_status(&ctx, &kim, Some("done"), sort, order, "", 100).await;
            let done = expected(&all, sort, descending, |t| t.status == "done");
            assert_eq!(walked, done, "done sort={sort} order={order}");
            let walked = walk_status(&ctx, &kim, Some("pending,done"), sort, order, "", 100).await;
            let open = expected(&all, sort, descending, |t| t.status != "in_progress");
            assert_eq!(walked, open, "pending,done sort={sort} order={order}");
        }
    }
    // A rare word: three tasks, near either end of every order, and a fourth holding a longer
    // word it begins; a word inside another is no match.
    for sort in ["created_at", "updated_at", "priority", "deadline"] {
        for (order, descending) in [("asc", false), ("desc", true)] {
            let walked = walk(&ctx, &kim, sort, order, "ZEPHYR", 2).await;
            assert_eq!(walked, expected(&all, sort, descending, begins("zephyr")), "zephyr sort={sort} order={order}");
            assert_eq!(walked.len(), 4);
            let walked = walk(&ctx, &kim, sort, order, "zephyrs", 2).await;
            assert_eq!(walked, expected(&all, sort, descending, has("zephyrs")), "zephyrs sort={sort} order={order}");
            assert_eq!(walked.len(), 1);
        }
    }
    // The rarer word leads whichever comes first; the other is checked on each of its tasks.
    let zephyr = expected(&all, "priority", true, begins("zephyr"));
    assert_eq!(walk(&ctx, &kim, "priority", "desc", "routine zephyr", 2).await, zephyr);
    assert_eq!(walk(&ctx, &kim, "priority", "desc", "zephyr routine", 2).await, zephyr);
    assert_eq!(walk(&ctx, &kim, "priority", "desc", "zephyr quarterly", 2).await, Vec::<i64>::new());
    // A middling word (65 tasks), as a prefix, together with another word, and punctuation
    // between words.
    let quarterly = expected(&all, "created_at", true, has("quarterly"));
    assert_eq!(quarterly.len(), 65);
    assert_eq!(walk(&ctx, &kim, "created_at", "desc", "quart", 20).await, quarterly);
    assert_eq!(walk(&ctx, &kim, "created_at", "desc", "quarterly review", 20).await, quarterly);
    assert_eq!(walk(&ctx, &kim, "created_at", "desc", "review,quarterly!", 100).await, quarterly);
    assert_eq!(walk(&ctx, &kim, "created_at", "desc", "uarterly", 20).await, Vec::<i64>::new());
    // Every sort of a middling word, a page of 7 at a time, and beside a status filter.
    for sort in ["created_at", "updated_at", "priority", "deadline"] {
        for (order, descending) in [("asc", false), ("desc", true)] {
            let walked = walk(&ctx, &kim, sort, order, "quarterly", 7).await;
            assert_eq!(
                walked,
                expected(&all, sort, descending, has("quarterly")),
                "quarterly sort={sort} order={order}"
            );
        }
    }
    // One page of the pending tasks found by `q`, most urgent first.
    let pending_by_priority = |q: &'static str| {
        let (ctx, kim) = (&ctx, &kim);
        async move {
            let query = ListQuery {
                status: Some("pending".into()),
                sort: Some("priority".into()),
                q: Some(q.into()),
                limit: Some(100),
                ..Default::default()
            };
            list(ctx, kim, query).await.unwrap().tasks.iter().map(|t| t.id).collect::<Vec<_>>()
        }
    };
    let pending = |t: &tasks::Model| t.status == "pending" && has("quarterly")(t);
    assert_eq!(pending_by_priority("quarterly").await, expected(&all, "priority", true, pending));
    // Beginnings shared by more stored words than are walked one by one ("1", "t1" and "t10",
    // each the beginning of a hundred task numbers or more): found from the sort order and the
    // word rows of the whole beginning, page by page.
    let starts_with = |field: fn(&tasks::Model) -> &str, beginning: &'static str| {
        move |t: &tasks::Model| field(t).to_lowercase().split(' ').any(|w| w.starts_with(beginning))
    };
    fn contents(t: &tasks::Model) -> &str {
        &t.contents
    }
    fn name(t: &tasks::Model) -> &str {
        &t.name
    }
    for sort in ["created_at", "deadline", "priority"] {
        let walked = walk(&ctx, &kim, sort, "desc", "1", 100).await;
        assert_eq!(walked, expected(&all, sort, true, starts_with(contents, "1")), "prefix 1 sort={sort}");
        let walked = walk(&ctx, &kim, sort, "asc", "T1", 100).await;
        assert_eq!(walked, expected(&all, sort, false, starts_with(name, "t1")), "prefix t1 sort={sort}");
        let walked = walk(&ctx, &kim, sort, "desc", "t10", 30).await;
        let t10 = expected(&all, sort, true, starts_with(name, "t10"));
        assert_eq!(t10.len(), 111);
        assert_eq!(walked, t10, "prefix t10 sort={sort}");
    }
    // The same beside a filter, checked on each task of the word rows.
    let pending_t10 = |t: &tasks::Model| t.status == "pending" && starts_with(name, "t10")(t);
    assert_eq!(pending_by_priority("t10").await, expected(&all, "priority", true, pending_t10));
    // Filters few tasks pass (a deadline in the first 30 hours: 1 in 100) that no index serves in
    // the sort's order: a request examines a bounded share of the order, so pages come back
    // short with a cursor, and following them finds every task, in order. Alone, beside a word
    // walked in its index, and beside a beginning of two walked words.
    let early = origin + Duration::hours(30);
    let due_early = |t: &tasks::Model| t.deadline.is_some_and(|deadline| deadline < early);
    for sort in ["created_at", "updated_at", "priority", "deadline"] {
        for (order, descending) in [("asc", false), ("desc", true)] {
            let due_before = || early.and_utc().to_rfc3339();
            for q in [None, Some("routine"), Some("item")] {
                let query = || ListQuery {
                    due_before: Some(due_before()),
                    q: q.map(str::to_owned),
                    sort: Some(sort.to_owned()),
                    order: Some(order.to_owned()),
                    limit: Some(10),
                    ..Default::default()
                };
                let (walked, short_pages) = follow(&ctx, &kim, query).await;
                let wanted = expected(&all, sort, descending, due_early);
                assert!(wanted.len() > 10, "{}", wanted.len());
                assert_eq!(walked, wanted, "due early q={q:?} sort={sort} order={order}");
                if sort == "deadline" {
                    // The deadline sort reads the range of its key the filter selects.
                    assert_eq!(short_pages, 0, "q={q:?} sort={sort} order={order}");
                } else {
                    assert!(short_pages > 0, "q={q:?} sort={sort} order={order}: the budget never ran out");
                }
            }
        }
    }
    // Filters on the sort's own key are a range of its index (of the tasks' or the word's) in
    // full pages, however far into the order their tasks lie: priorities next to each other
    // under the priority sort, a deadline window and `overdue` under the deadline sort.
    // Priorities apart (low and urgent) are checked within the range around them.
    let window = (origin + Duration::hours(1_000), origin + Duration::hours(1_040));
    let in_window = |t: &tasks::Model| t.deadline.is_some_and(|d| d >= window.0 && d < window.1);
    let overdue = |t: &tasks::Model| t.deadline.is_some_and(|d| d < Utc::now().naive_utc()) && t.status != "done";
    type Matches<'a> = &'a dyn Fn(&tasks::Model) -> bool;
    let cases: [(&str, ListQuery, Matches, bool); 5] = [
        ("priority", ListQuery { priority: Some("low".into()), ..Default::default() }, &|t| t.priority == 1, true),
        (
            "priority",
            ListQuery { priority: Some("urgent,high".into()), ..Default::default() },
            &|t| t.priority >= 3,
            true,
        ),
        (
            "priority",
            ListQuery { priority: Some("low,urgent".into()), ..Default::default() },
            &|t| t.priority % 3 == 1,
            false,
        ),
        (
            "deadline",
            ListQuery {
                due_after: Some(window.0.and_utc().to_rfc3339()),
                due_before: Some(window.1.and_utc().to_rfc3339()),
                ..Default::default()
            },
            &in_window,
            true,
        ),
        ("deadline", ListQuery { overdue: Some(true), ..Default::default() }, &overdue, false),
    ];
    for (sort, filter, matches, full_pages) in cases {
        for (order, descending) in [("asc", false), ("desc", true)] {
            for q in [None, Some("routine"), Some("item")] {
                let query = || ListQuery {
                    q: q.map(str::to_owned),
                    sort: Some(sort.to_owned()),
                    order: Some(order.to_owned()),
                    limit: Some(20),
                    ..filter.clone()
                };
                let (walked, short_pages) = follow(&ctx, &kim, query).await;
                let context = format!("{filter:?} q={q:?} order={order}");
                let wanted = expected(&all, sort, descending, matches);
                assert!(wanted.len() > 20, "{context}: {}", wanted.len());
                assert_eq!(walked, wanted, "{context}");
                if full_pages {
                    assert_eq!(short_pages, 0, "{context}");
                }
            }
        }
    }
    // A PIC's tasks, few or many or nobody's, come from the PIC's index in every sort, in full
    // pages, beside a status too.
    for sort in ["created_at", "updated_at", "priority", "deadline"] {
        for (order, descending) in [("asc", false), ("desc", true)] {
            for (who, pic_id) in [("lee@example.com", Some(lee.user_id)), ("me", Some(kim.user_id)), ("none", None)] {
                for status in [None, Some("pending")] {
                    let query = || ListQuery {
                        pic: Some(who.to_owned()),
                        status: status.map(str::to_owned),
                        sort: Some(sort.to_owned()),
                        order: Some(order.to_owned()),
                        limit: Some(30),
                        ..Default::default()
                    };
                    let (walked, short_pages) = follow(&ctx, &kim, query).await;
                    let wanted = |t: &tasks::Model| t.pic_id == pic_id && status.is_none_or(|s| t.status == s);
                    let context = format!("pic={who} status={status:?} sort={sort} order={order}");
                    assert_eq!(walked, expected(&all, sort, descending, wanted), "{context}");
                    if status.is_none() {
                        assert_eq!(short_pages, 0, "{context}");
                    }
                }
            }
        }
    }
    // A creator's tasks, however few, come from that column's index in full pages.
    let by_lee = || ListQuery {
        creator: Some("lee@example.com".into()),
        sort: Some("priority".into()),
        limit: Some(10),
        ..Default::default()
    };
    let (walked, short_pages) = follow(&ctx, &kim, by_lee).await;
    assert_eq!(walked, expected(&all, "priority", true, |t| t.creator_id == Some(lee.user_id)));
    assert_eq!((walked.len(), short_pages), (26, 0));
    // A user of many tasks: found in the sort's order, within the budget, beside another filter.
    let kims_urgent = || ListQuery {
        creator: Some("me".into()),
        priority: Some("urgent".into()),
        sort: Some("deadline".into()),
        limit: Some(100),
        ..Default::default()
    };
    let (walked, _) = follow(&ctx, &kim, kims_urgent).await;
    let urgent = |t: &tasks::Model| t.creator_id == Some(kim.user_id) && t.priority == 4;
    assert_eq!(walked, expected(&all, "deadline", false, urgent));
    // Words of one or two letters, and Hangul found by the beginning of a word.
    let item_7 = expected(&all, "created_at", true, |t| t.contents.split(' ').any(|w| w.starts_with("7")));
    assert_eq!(walk(&ctx, &kim, "created_at", "desc", "item 7", 100).await, item_7);
    let report = expected(&all, "created_at", true, |t| t.name.starts_with("보고서"));
    assert_eq!(walk(&ctx, &kim, "created_at", "desc", "보고", 10).await, report);
    assert_eq!(report.len(), 1);
}

/// A search follows a task through its edits: new words find it and old ones do not, its new
/// priority and edit time place it, and a deleted task leaves every word.
#[tokio::test]
async fn edits_and_deletions_move_a_task_between_words_and_places() {
    use tasklane_core::tasks::{NewTask, TaskChange, TaskDeletion, create, delete, update};
    let (ctx, _dir) = fresh_context(|_| {}).await;
    let kim = member(&ctx, "kim@example.com").await;
    let new_task = |name: &str, priority: &str| NewTask {
        name: name.to_owned(),
        contents: Some("harbour crane inspection".to_owned()),
        status: None,
        priority: Some(priority.to_owned()),
        deadline: None,
        pic: None,
        supervisor: None,
    };
    let first = create(&ctx, &kim, new_task("first", "low")).await.unwrap();
    let second = create(&ctx, &kim, new_task("second", "medium")).await.unwrap();
    let third = create(&ctx, &kim, new_task("third", "high")).await.unwrap();
    let search = |q: &'static str, sort: &'static str| {
        let (ctx, kim) = (&ctx, &kim);
        async move {
            let query = ListQuery { q: Some(q.into()), sort: Some(sort.into()), ..Default::default() };
            list(ctx, kim, query).await.unwrap().tasks.iter().map(|t| t.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(search("crane", "priority").await, [third.id, second.id, first.id]);
    assert_eq!(search("crane", "updated_at").await, [third.id, second.id, first.id]);

    // The first task is edited: it leads the edit order, its new priority leads the priority
    // order, and its words are the new text's.
    let change = TaskChange {
        contents: Some("harbour gantry inspection".into()),
        priority: Some("urgent".into()),
        ..Default::default()
    };
    update(&ctx, &kim, first.id, change, None).await.unwrap();
    assert_eq!(search("harbour", "updated_at").await, [first.id, third.id, second.id]);
    assert_eq!(search("harbour", "priority").await, [first.id, third.id, second.id]);
    assert_eq!(search("crane", "created_at").await, [third.id, second.id]);
    assert_eq!(search("gantry", "created_at").await, [first.id]);
    // An edit that keeps the text moves only the sort keys.
    let change = TaskChange { priority: Some("low".into()), ..Default::default() };
    update(&ctx, &kim, third.id, change, None).await.unwrap();
    assert_eq!(search("inspection", "priority").await, [first.id, second.id, third.id]);
    assert_eq!(search("inspection", "updated_at").await, [third.id, first.id, second.id]);

    delete(&ctx, &kim, second.id, TaskDeletion::default(), None).await.unwrap();
    assert_eq!(search("inspection", "created_at").await, [third.id, first.id]);
    let left = tasklane_entity::task_words::Entity::find()
        .filter(tasklane_entity::task_words::Column::TaskId.eq(second.id))
        .count(&ctx.db)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

/// A search word checked on a task's text (every word but the one whose index is walked)
/// matches as the word index does, by code point: on MySQL the text column's collation would
/// let `resume` find `résumé` only when another word led the search.
#[tokio::test]
async fn a_word_checked_on_the_text_matches_as_the_word_index_does() {
    use tasklane_core::tasks::{NewTask, create};
    let (ctx, _dir) = fresh_context(|_| {}).await;
    let kim = member(&ctx, "kim@example.com").await;
    let new_task = |contents: &str| NewTask {
        name: "cv".to_owned(),
        contents: Some(contents.to_owned()),
        status: None,
        priority: None,
        deadline: None,
        pic: None,
        supervisor: None,
    };
    // `zork` is the rarer word, so it leads and the other is checked on the text.
    let accented = create(&ctx, &kim, new_task("zork Résumé")).await.unwrap();
    for _ in 0..3 {
        create(&ctx, &kim, new_task("resume résumé")).await.unwrap();
    }
    let search = |q: &'static str| {
        let (ctx, kim) = (&ctx, &kim);
        async move {
            let query = ListQuery { q: Some(q.into()), ..Default::default() };
            list(ctx, kim, query).await.unwrap().tasks.iter().map(|t| t.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(search("zork résumé").await, [accented.id]);
    assert_eq!(search("zork RÉSUMÉ").await, [accented.id]);
    assert_eq!(search("zork resume").await, Vec::<i64>::new());
    assert_eq!(search("resume").await.len(), 3);
}

/// A word no task holds any more leaves `known_words` a day after a writer last remembered it,
/// never sooner (a writer remembers its words just before its task's transaction); a word held
/// or remembered lately stays, and so does one remembered before the column existed.
#[tokio::test]
async fn known_words_no_task_holds_are_pruned_a_day_after_they_were_last_remembered() {
    use std::collections::BTreeSet;
    use tasklane_core::clock::Clock;
    use tasklane_core::housekeeping::prune_words;
    use tasklane_core::tasks::{NewTask, TaskChange, TaskDeletion, create, delete, update};
    use tasklane_entity::known_words;

    let (mut ctx, _dir) = fresh_context(|_| {}).await;
    let start = Utc::now();
    ctx.clock = Clock::fixed(start);
    let kim = member(&ctx, "kim@example.com").await;
    let new_task = |contents: String| NewTask {
        name: "walrus".to_owned(),
        contents: Some(contents),
        status: None,
        priority: None,
        deadline: None,
        pic: None,
        supervisor: None,
    };
    let known = |ctx: &AppContext| {
        let db = ctx.db.clone();
        async move {
            known_words::Entity::find().all(&db).await.unwrap().into_iter().map(|w| w.word).collect::<BTreeSet<_>>()
        }
    };
    // More words than one pruning statement looks at, then edited away.
    let many: Vec<String> = (0..2_500).map(|i| format!("zz{i:04}")).collect();
    let edited = create(&ctx, &kim, new_task(format!("pelican {}", many.join(" ")))).await.unwrap();
    let change = TaskChange { contents: Some("narwhal".into()), ..Default::default() };
    update(&ctx, &kim, edited.id, change, None).await.unwrap();
    // A word whose task is deleted, remembered again by a task written 23 hours later.
    let gone = create(&ctx, &kim, new_task("sturgeon".into())).await.unwrap();
    delete(&ctx, &kim, gone.id, TaskDeletion::default(), None).await.unwrap();
    // A word remembered by a version that did not record when.
    known_words::Entity::insert(known_words::ActiveModel {
        word: sea_orm::ActiveValue::Set("legacy".into()),
        remembered_at: sea_orm::ActiveValue::Set(None),
    })
    .exec(&ctx.db)
    .await
    .unwrap();
    assert_eq!(prune_words(&ctx).await.unwrap(), 0, "words remembered just now are kept");

    ctx.clock.set(start + Duration::hours(23));
    let again = create(&ctx, &kim, new_task("sturgeon".into())).await.unwrap();
    delete(&ctx, &kim, again.id, TaskDeletion::default(), None).await.unwrap();
    assert_eq!(prune_words(&ctx).await.unwrap(), 0);

    ctx.clock.set(start + Duration::hours(25));
    assert_eq!(prune_words(&ctx).await.unwrap(), 2_501, "the edited-away words, pelican included");
    let left = known(&ctx).await;
    for word in ["walrus", "narwhal", "sturgeon", "legacy"] {
        assert!(left.contains(word), "{word} was pruned");
    }
    assert!(!left.contains("pelican") && !left.iter().any(|w| w.starts_with("zz")), "{left:?}");
    let search = ListQuery { q: Some("narwhal".into()), ..Default::default() };
    assert_eq!(list(&ctx, &kim, search).await.unwrap().tasks.len(), 1);

    ctx.clock.set(start + Duration::hours(48));
    assert_eq!(prune_words(&ctx).await.unwrap(), 1, "sturgeon, a day after it was last remembered");
    assert_eq!(known(&ctx).await, BTreeSet::from(["legacy", "narwhal", "walrus"].map(str::to_owned)));
}

/// SQLite sorts a status-filtered list from the sort's index: its planner would read the
/// filter from the status index and sort every task it selected (54 ms a request over 100,000
/// tasks in the HTTP benchmark), statistics or not. MySQL chooses well on its own.
#[tokio::test]
async fn sqlite_sorts_a_status_filtered_list_from_the_sorts_index() {
    let (ctx, _dir) = fresh_context(|_| {}).await;
    if ctx.db.get_database_backend() != sea_orm::DbBackend::Sqlite {
        return;
    }
    let seed = "INSERT INTO tasks (name, contents, status, priority, version, created_at, updated_at, \
                urgency_key, deadline_key, search_text) \
                WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 100000) \
                SELECT 'task', '', CASE n % 3 WHEN 0 THEN 'pending' WHEN 1 THEN 'in_progress' ELSE 'done' END, \
                1 + n % 4, 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00', \
                (3 - n % 4) * 1000000000000000000 + n, n, ' task ' FROM seq";
    ctx.db.execute_unprepared(seed).await.unwrap();
    // Statistics would not change it: SQLite's planner sorts the filtered rows even with them.
    ctx.db.execute_unprepared("ANALYZE").await.unwrap();
    let query =
        ListQuery { status: Some("pending,in_progress".into()), sort: Some("priority".into()), ..Default::default() };
    let filtered = tasks::Entity::find()
        .filter(
            sea_orm::Condition::all()
                .add(sea_orm::sea_query::Expr::cust("+\"tasks\".\"status\" IN ('pending', 'in_progress')")),
        )
        .order_by_asc(tasks::Column::UrgencyKey)
        .order_by_asc(tasks::Column::Id)
        .limit(51)
        .build(sea_orm::DbBackend::Sqlite)
        .to_string();
    let rows = ctx
        .db
        .query_all_raw(Statement::from_string(sea_orm::DbBackend::Sqlite, format!("EXPLAIN QUERY PLAN {filtered}")))
        .await
        .unwrap();
    let plan: Vec<String> = rows.iter().map(|row| row.try_get::<String>("", "detail").unwrap()).collect();
    assert!(plan.iter().any(|step| step.contains("idx_tasks_urgency")), "{plan:?}");
    assert!(!plan.iter().any(|step| step.contains("TEMP B-TREE")), "{plan:?}");
    // One status, or one PIC, is read from its own index in the sort's order, in every sort.
    let one_status = || tasks::Column::Status.is_in(["pending"]);
    let one_pic = || tasks::Column::PicId.eq(1);
    for (filter, prefix) in [(one_status(), "idx_tasks_status"), (one_pic(), "idx_tasks_pic")] {
        for (column, index) in [
            (tasks::Column::UrgencyKey, "urgency"),
            (tasks::Column::DeadlineKey, "deadline_key"),
            (tasks::Column::CreatedAt, "created"),
            (tasks::Column::UpdatedAt, "updated"),
        ] {
            let one = tasks::Entity::find()
                .filter(filter.clone())
                .order_by_desc(column)
                .order_by_desc(tasks::Column::Id)
                .limit(51)
                .build(sea_orm::DbBackend::Sqlite)
                .to_string();
            let explain = Statement::from_string(sea_orm::DbBackend::Sqlite, format!("EXPLAIN QUERY PLAN {one}"));
            let rows = ctx.db.query_all_raw(explain).await.unwrap();
            let plan: Vec<String> = rows.iter().map(|row| row.try_get::<String>("", "detail").unwrap()).collect();
            assert!(plan.iter().any(|step| step.contains(&format!("{prefix}_{index} "))), "{plan:?}");
            assert!(!plan.iter().any(|step| step.contains("TEMP B-TREE")), "{plan:?}");
        }
    }
    // And the list itself: every task on the page is one of the statuses, most urgent first.
    let kim = member(&ctx, "kim@example.com").await;
    let page = list(&ctx, &kim, query).await.unwrap();
    assert_eq!(page.tasks.len(), 50);
    assert!(page.tasks.iter().all(|t| t.status.as_str() != "done"));
    assert!(page.tasks.iter().all(|t| serde_json::to_value(t.priority).unwrap() == "urgent"));
}

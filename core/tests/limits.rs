//! Rate limits against a real database: a fixed window counted in one upsert.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use chrono::Duration;
use tasklane_core::limits::take;

#[tokio::test]
async fn a_limit_lets_max_through_per_window_then_answers_429() {
    let (ctx, _dir) = tasklane_testkit::fresh_context(|_| {}).await;
    for _ in 0..3 {
        take(&ctx.db, "test:one", 3, Duration::hours(1)).await.unwrap();
    }
    let refused = take(&ctx.db, "test:one", 3, Duration::hours(1)).await.unwrap_err();
    let tasklane_core::Error::Client { retry_after_secs: Some(wait), .. } = refused else { panic!("{refused:?}") };
    assert!((3500..=3601).contains(&wait), "{wait}");
    // Another key has its own allowance; a window that has ended starts again.
    take(&ctx.db, "test:two", 3, Duration::hours(1)).await.unwrap();
    take(&ctx.db, "test:one", 3, Duration::zero() - Duration::seconds(1)).await.unwrap();
    take(&ctx.db, "test:one", 3, Duration::hours(1)).await.unwrap();
}

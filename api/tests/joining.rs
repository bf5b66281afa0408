//! Who may join and whose address is whose: sign-up modes, invitations, email verification,
//! and the limits on sign-ups, task writes and emails per recipient.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::{Mail, PASSWORD, TestApp, mails, spawn_app_with};
use serde_json::{Value, json};
use tasklane_core::auth::Role;
use tasklane_core::config::SignupMode;
use tasklane_testkit::wait_until;

const PATIENCE: Duration = Duration::from_secs(30);

fn sign_up_body(email: &str, invitation: Option<&str>) -> Value {
    let mut body = json!({ "email": email, "password": PASSWORD, "display_name": "New" });
    if let Some(token) = invitation {
        body["invitation"] = json!(token);
    }
    body
}

/// Waits for a mail to `to` whose subject contains `subject`.
async fn mail_to(app: &TestApp, to: &str, subject: &str) -> Mail {
    wait_until(&format!("a mail to {to} about {subject}"), PATIENCE, async || {
        mails(app).iter().any(|mail| mail.to == to && mail.subject.contains(subject))
    })
    .await;
    mails(app).into_iter().find(|mail| mail.to == to && mail.subject.contains(subject)).unwrap()
}

/// The value of `name=` in the first link of `text`.
fn link_parameter(text: &str, name: &str) -> String {
    let start = text.find(&format!("{name}=")).unwrap() + name.len() + 1;
    text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

#[tokio::test]
async fn invite_only_sign_up_takes_a_single_use_invitation_for_that_address() {
    let app = spawn_app_with(|config| config.accounts.signup = SignupMode::Invite).await;
    let _workers = app.start_workers();
    let admin = app.operator_made("boss", Role::Admin).await;
    let refused = app.post("/api/sign_up", None, sign_up_body("new@example.com", None)).await;
    assert_eq!(refused.expect_error(403), "invitation_required");

    let member = app.operator_made("plain", Role::Member).await;
    let by_member = app.post("/api/invitations", Some(&member.token), json!({ "email": "new@example.com" })).await;
    by_member.expect_error(403);
    let invitation = app.post("/api/invitations", Some(&admin.token), json!({ "email": "New@Example.com" })).await;
    let invitation = invitation.expect(201);
    assert_eq!(invitation["email"], "new@example.com");
    let mail = mail_to(&app, "new@example.com", "invited").await;
    let token = link_parameter(&mail.text, "invitation");
    assert!(invitation["link"].as_str().unwrap().contains(&token));
    let open = app.get("/api/invitations", &admin.token).await.expect(200);
    assert_eq!(open["invitations"].as_array().unwrap().len(), 1);

    // For another address it is refused; for its own it works once.
    let elsewhere = app.post("/api/sign_up", None, sign_up_body("other@example.com", Some(&token))).await;
    assert_eq!(elsewhere.expect_error(403), "invalid_invitation");
    let joined = app.post("/api/sign_up", None, sign_up_body("new@example.com", Some(&token))).await.expect(201);
    assert_eq!(joined["user"]["email"], "new@example.com");
    app.sign_in("new@example.com", PASSWORD).await.expect(200);
    let again = app.post("/api/sign_up", None, sign_up_body("new2@example.com", Some(&token))).await;
    assert_eq!(again.expect_error(403), "invalid_invitation");
    assert!(app.get("/api/invitations", &admin.token).await.expect(200)["invitations"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn domain_and_closed_sign_up() {
    let app = spawn_app_with(|config| {
        config.accounts.signup = SignupMode::Domains;
        config.accounts.signup_domains = vec!["example.com".into()];
    })
    .await;
    app.post("/api/sign_up", None, sign_up_body("kim@example.com", None)).await.expect(201);
    let outsider = app.post("/api/sign_up", None, sign_up_body("kim@example.org", None)).await;
    assert_eq!(outsider.expect_error(403), "signup_domain");
    // A look-alike domain is not the domain.
    let lookalike = app.post("/api/sign_up", None, sign_up_body("kim@evil-example.com", None)).await;
    assert_eq!(lookalike.expect_error(403), "signup_domain");

    let closed = spawn_app_with(|config| config.accounts.signup = SignupMode::Closed).await;
    assert_eq!(
        closed.post("/api/sign_up", None, sign_up_body("kim@example.com", None)).await.expect_error(403),
        "signup_closed"
    );
}

#[tokio::test]
async fn unverified_addresses_get_no_email_and_sign_up_does_not_reveal_accounts() {
    let app = spawn_app_with(|config| config.accounts.email_verification = true).await;
    let _workers = app.start_workers();
    let boss = app.admin("boss").await;
    boss_is_verified(&app, &boss.email).await;

    // A new address and a taken one get the same answer.
    let new = app.post("/api/sign_up", None, sign_up_body("fresh@example.com", None)).await;
    let taken = app.post("/api/sign_up", None, sign_up_body(&boss.email, None)).await;
    assert_eq!((new.status.as_u16(), taken.status.as_u16()), (202, 202));
    assert_eq!(new.body, taken.body);
    assert!(new.body.get("user").is_none());
    let owner_note = mail_to(&app, &boss.email, "tried to sign up").await;
    assert!(owner_note.text.contains("already has one"), "{}", owner_note.text);

    // The unverified user works in the app, but no email reaches them.
    let fresh = app.sign_in("fresh@example.com", PASSWORD).await.expect(200);
    let fresh_token = fresh["access_token"].as_str().unwrap().to_owned();
    let fresh_id = app.get("/api/users/me", &fresh_token).await.expect(200)["id"].as_i64().unwrap();
    let verify = mail_to(&app, "fresh@example.com", "Confirm").await;
    let token = link_parameter(&verify.text, "token");
    app.task(&boss, json!({ "name": "before verifying", "pic": fresh_id })).await;
    wait_until("the in-app notification", PATIENCE, async || {
        app.get("/api/notifications", &fresh_token).await.expect(200)["unread_count"] == 1
    })
    .await;
    let task_mails = |app: &TestApp| {
        mails(app).into_iter().filter(|m| m.to == "fresh@example.com" && m.subject.contains('“')).count()
    };
    assert_eq!(task_mails(&app), 0);

    // Verified, task emails arrive; the link works once.
    app.post("/api/verify_email", None, json!({ "token": token })).await.expect(200);
    let reused = app.post("/api/verify_email", None, json!({ "token": token })).await;
    assert_eq!(reused.expect_error(422), "invalid_token");
    app.task(&boss, json!({ "name": "after verifying", "pic": fresh_id })).await;
    wait_until("a task email", PATIENCE, async || task_mails(&app) == 1).await;
}

async fn boss_is_verified(app: &TestApp, email: &str) {
    let boss = tasklane_core::accounts::find_user(&app.ctx, email).await.unwrap();
    assert!(boss.email_verified_at.is_some(), "accounts made before verification or by operators count as verified");
}

#[tokio::test]
async fn changing_the_email_tells_the_old_address_and_ends_other_sessions() {
    let app = spawn_app_with(|config| config.accounts.email_verification = true).await;
    let _workers = app.start_workers();
    let kim = app.admin("kim").await;
    let other = app.sign_in(&kim.email, PASSWORD).await.expect(200);
    let change = json!({ "email": "kim.new@example.com", "current_password": PASSWORD });
    let changed = app.patch("/api/users/me", &kim.token, change).await.expect(200);
    assert_eq!(changed["user"]["email"], "kim.new@example.com");
    app.get("/api/users/me", other["access_token"].as_str().unwrap()).await.expect_error(401);
    app.get("/api/users/me", &kim.token).await.expect(200);
    let notice = mail_to(&app, &kim.email, "changed").await;
    assert!(notice.text.contains("kim.new@example.com"), "{}", notice.text);
    mail_to(&app, "kim.new@example.com", "Confirm").await;
    let user = tasklane_core::accounts::find_user(&app.ctx, "kim.new@example.com").await.unwrap();
    assert!(user.email_verified_at.is_none(), "the new address is unverified until confirmed");
}

#[tokio::test]
async fn sign_ups_and_task_writes_are_rate_limited() {
    let app = spawn_app_with(|config| {
        config.limits.signups_per_hour = 2;
        config.limits.task_writes_per_minute = 3;
    })
    .await;
    app.sign_up("one@example.com").await;
    app.sign_up("two@example.com").await;
    let third = app.post("/api/sign_up", None, sign_up_body("three@example.com", None)).await;
    assert!(third.headers.contains_key("retry-after"));
    assert_eq!(third.expect_error(429), "rate_limited");

    let body = app.sign_in("one@example.com", PASSWORD).await.expect(200);
    let token = body["access_token"].as_str().unwrap();
    for n in 0..3 {
        app.post("/api/tasks", Some(token), json!({ "name": format!("task {n}") })).await.expect(201);
    }
    let limited = app.post("/api/tasks", Some(token), json!({ "name": "one too many" })).await;
    let retry_after: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=61).contains(&retry_after), "{retry_after}");
    assert_eq!(limited.expect_error(429), "rate_limited");
    // Parallel writes get no more through than the limit: 429 for every one of them now.
    let burst = (0..5).map(|n| app.post("/api/tasks", Some(token), json!({ "name": format!("burst {n}") })));
    let replies = futures_util::future::join_all(burst).await;
    assert!(replies.iter().all(|reply| reply.status == 429));
}

#[tokio::test]
async fn a_flood_of_notifications_becomes_a_digest_not_a_flood_of_emails() {
    let app = spawn_app_with(|config| config.limits.emails_per_hour = 2).await;
    let cara = app.user("cara").await;
    let pia = app.user("pia").await;
    let _workers = app.start_workers();
    let emails_to_pia = || mails(&app).iter().filter(|m| m.to == pia.email).count();
    // The first two, one after the other, each go out ...
    for n in 0..2 {
        app.task(&cara, json!({ "name": format!("flood {n}"), "pic": pia.id })).await;
        wait_until("an email", PATIENCE, async || emails_to_pia() == n + 1).await;
    }
    // ... and the rest of the hour's flood waits for the digest.
    for n in 2..5 {
        app.task(&cara, json!({ "name": format!("flood {n}"), "pic": pia.id })).await;
    }
    wait_until("five in-app notifications", PATIENCE, async || app.inbox(&pia).await.len() == 5).await;
    assert_eq!(emails_to_pia(), 2);
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    use tasklane_entity::notifications;
    let waiting = notifications::Entity::find()
        .filter(notifications::Column::UserId.eq(pia.id))
        .filter(notifications::Column::Status.eq("digest"))
        .count(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(waiting, 3, "the rest wait for the digest");
}

//! Test harness: a real server on a random port over a fresh database per test — SQLite by
//! default, MariaDB/MySQL when `TASKLANE_TEST_MYSQL_URL` names a server.

#![allow(dead_code, unused_imports, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tasklane_core::AppContext;
use tasklane_core::config::Config;

pub const PASSWORD: &str = "correct horse battery";
pub use tasklane_testkit::JWT_SECRET;

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub ctx: AppContext,
    _data_dir: tasklane_testkit::TempDir,
}

/// Starts the API on a fresh database with default settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the API on a fresh database after `adjust` has changed the configuration.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let (ctx, data_dir) = tasklane_testkit::fresh_context(adjust).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(tasklane_api::serve(ctx.clone(), listener, std::future::pending()));
    TestApp {
        base,
        client: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap(),
        ctx,
        _data_dir: data_dir,
    }
}

/// Running workers; dropping this stops them.
pub struct Workers {
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A signed-up, signed-in user.
#[derive(Clone, Debug)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub token: String,
    pub refresh_token: String,
}

/// A response's status, headers and JSON body (`Value::Null` when not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.body);
        self.body
    }

    /// Asserts a 4xx with the error shape and returns the error code.
    #[track_caller]
    pub fn expect_error(self, status: u16) -> String {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.body);
        let code = self.body["error"]["code"].as_str().unwrap_or_else(|| panic!("no error shape: {}", self.body));
        assert!(self.body["error"]["message"].is_string(), "no message: {}", self.body);
        code.to_owned()
    }
}

impl TestApp {
    pub async fn request(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request).await
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, headers, body }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.request(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.request(Method::PATCH, path, Some(token), Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Reply {
        self.request(Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str, body: Option<Value>) -> Reply {
        self.request(Method::DELETE, path, Some(token), body).await
    }

    /// Signs up `email`; where addresses are verified, verifies it as following the link would.
    pub async fn sign_up(&self, email: &str) -> i64 {
        let body = json!({ "email": email, "password": PASSWORD, "display_name": email.split('@').next().unwrap() });
        let reply = self.post("/api/sign_up", None, body).await;
        if reply.status.as_u16() == 202 {
            use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
            use tasklane_entity::users;
            users::Entity::update_many()
                .col_expr(users::Column::EmailVerifiedAt, Expr::value(chrono::Utc::now().naive_utc()))
                .filter(users::Column::Email.eq(email))
                .exec(&self.ctx.db)
                .await
                .unwrap();
            return tasklane_core::accounts::find_user(&self.ctx, email).await.unwrap().id;
        }
        reply.expect(201)["user"]["id"].as_i64().unwrap()
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Reply {
        self.post("/api/sign_in", None, json!({ "email": email, "password": password })).await
    }

    /// Signs up and signs in a new member named `name`.
    pub async fn user(&self, name: &str) -> User {
        let email = format!("{name}@example.com");
        let id = self.sign_up(&email).await;
        let body = self.sign_in(&email, PASSWORD).await.expect(200);
        User {
            id,
            email,
            token: body["access_token"].as_str().unwrap().to_owned(),
            refresh_token: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// A user an operator created (as `tasklane users create` does), signed in: for
    /// deployments where nobody may sign up on their own.
    pub async fn operator_made(&self, name: &str, role: tasklane_core::auth::Role) -> User {
        use tasklane_core::accounts::{DisplayName, Email, create_user};
        use tasklane_core::auth::password::Password;
        let email = format!("{name}@example.com");
        let password = Password::parse(PASSWORD.into()).unwrap();
        let profile =
            create_user(&self.ctx, &Email::parse(&email).unwrap(), &password, &DisplayName::parse(name).unwrap(), role)
                .await
                .unwrap();
        let body = self.sign_in(&email, PASSWORD).await.expect(200);
        User {
            id: profile.id,
            email,
            token: body["access_token"].as_str().unwrap().to_owned(),
            refresh_token: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Signs up a user, makes them an admin and signs them in.
    pub async fn admin(&self, name: &str) -> User {
        let user = self.user(name).await;
        tasklane_core::accounts::set_role(&self.ctx, user.id, tasklane_core::auth::Role::Admin).await.unwrap();
        user
    }

    /// Starts the outbox relay, the scheduler and a worker for every queue on this app's
    /// database; they stop when the returned handle is dropped.
    pub fn start_workers(&self) -> Workers {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(tasklane_worker::run(self.ctx.clone(), async move {
            let _ = stopped.await;
        }));
        Workers { _stop: stop }
    }

    /// The signed-in user's in-app notifications (newest first).
    pub async fn inbox(&self, user: &User) -> Vec<Value> {
        let body = self.get("/api/notifications?limit=100", &user.token).await.expect(200);
        body["notifications"].as_array().unwrap().clone()
    }

    /// Creates a task as `creator` and returns its id.
    pub async fn task(&self, creator: &User, body: Value) -> i64 {
        let body = self.post("/api/tasks", Some(&creator.token), body).await.expect(201);
        body["Task_id"].as_i64().unwrap()
    }
}

/// One email the file mailer wrote.
#[derive(Debug)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
}

/// The `.eml` files the file mailer wrote, as written.
pub fn eml_files(app: &TestApp) -> Vec<Vec<u8>> {
    let dir = app.ctx.config.data_dir.join("mail");
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().and_then(|e| e.to_str()) == Some("eml"))
        .map(|path| std::fs::read(path).unwrap())
        .collect()
}

/// The emails the file mailer wrote: recipient, subject and plain text.
pub fn mails(app: &TestApp) -> Vec<Mail> {
    let mut mails = Vec::new();
    for raw in eml_files(app) {
        let parsed = mailparse::parse_mail(&raw).unwrap();
        let header = |name: &str| parsed.headers.iter().find(|h| h.get_key() == name).unwrap();
        let to = match &mailparse::addrparse_header(header("To")).unwrap()[0] {
            mailparse::MailAddr::Single(single) => single.addr.clone(),
            mailparse::MailAddr::Group(group) => panic!("a group recipient: {group:?}"),
        };
        let plain = parsed.subparts.iter().find(|part| part.ctype.mimetype == "text/plain").unwrap();
        let text = plain.get_body().unwrap().replace("\r\n", "\n");
        mails.push(Mail { to, subject: header("Subject").get_value(), text });
    }
    mails
}

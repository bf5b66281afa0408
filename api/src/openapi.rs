//! The OpenAPI 3.1 document served at `/api/openapi.json`, generated from the handlers'
//! annotations and the request/response types themselves.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{accounts, health, notifications, reports, tasks};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "tasklane", description = "Team task management on a job-queue worker platform."),
    paths(
        health::alive, health::ready,
        accounts::sign_up, accounts::sign_in, accounts::refresh, accounts::sign_out, accounts::sign_out_everywhere,
        accounts::me, accounts::update_me, accounts::delete_me, accounts::list_users,
        accounts::verify_email, accounts::resend_verification, accounts::invite, accounts::list_invitations,
        tasks::create, tasks::list, tasks::assigned, tasks::show, tasks::update, tasks::delete, tasks::history,
        notifications::list, notifications::read, notifications::read_all,
        reports::create, reports::list, reports::show,
    ),
    modifiers(&BearerAuth, &SeedAliases),
)]
pub struct ApiDoc;

struct BearerAuth;

/// The seed's spellings share a handler with the main form: `PUT /api/tasks/{id}` is the same
/// partial update as `PATCH`, and `GET /api/sign_in` (with a JSON body) the same as `POST`.
struct SeedAliases;

impl Modify for SeedAliases {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(item) = openapi.paths.paths.get_mut("/api/tasks/{id}") {
            item.put = item.patch.clone();
        }
        if let Some(item) = openapi.paths.paths.get_mut("/api/sign_in") {
            item.get = item.post.clone();
        }
    }
}

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

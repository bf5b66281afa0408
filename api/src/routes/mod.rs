//! The API's routes, one module per area.

pub mod accounts;
pub mod health;
pub mod notifications;
pub mod reports;
pub mod tasks;

use serde::Serialize;

/// A response that only says what happened.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MessageBody {
    /// What happened.
    pub message: &'static str,
}

//! One error type for the whole domain. Client mistakes carry a stable machine-readable
//! code and a message safe to show; everything else is `Internal` and its text is never shown.

use std::borrow::Cow;

/// What kind of client mistake an error is; the HTTP layer maps each to a status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed (400).
    BadRequest,
    /// Not signed in, or the credentials are wrong (401).
    Unauthorized,
    /// Signed in, but not allowed to do this (403).
    Forbidden,
    /// The thing does not exist (404).
    NotFound,
    /// The request conflicts with the current state, e.g. a taken email (409).
    Conflict,
    /// The client's `If-Match` version is stale (412).
    PreconditionFailed,
    /// Well-formed but semantically invalid, e.g. an unknown user (422).
    Unprocessable,
    /// Rate limited (429).
    TooManyRequests,
    /// Overloaded for a moment (503).
    Unavailable,
}

/// The domain error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something the client can fix.
    #[error("{message}")]
    Client {
        /// What kind of mistake.
        kind: ErrorKind,
        /// Stable code, e.g. `invalid_credentials`.
        code: &'static str,
        /// Human-readable explanation, safe to show.
        message: Cow<'static, str>,
        /// For rate limits: seconds until a retry may succeed.
        retry_after_secs: Option<u64>,
    },
    /// A bug or an infrastructure failure; logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Result with the domain error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    fn client(kind: ErrorKind, code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::Client { kind, code, message: message.into(), retry_after_secs: None }
    }

    /// 400: malformed request.
    pub fn bad_request(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::client(ErrorKind::BadRequest, code, message)
    }

    /// 401: missing, invalid or revoked credentials.
    pub fn unauthorized(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::client(ErrorKind::Unauthorized, code, message)
    }

    /// 403: not allowed.
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::client(ErrorKind::Forbidden, "forbidden", message)
    }

    /// 403 with a code of its own, for refusals a client can tell apart.
    pub fn forbidden_because(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::client(ErrorKind::Forbidden, code, message)
    }

    /// 404: no such thing.
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::client(ErrorKind::NotFound, "not_found", message)
    }

    /// 409: conflicts with current state.
    pub fn conflict(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::client(ErrorKind::Conflict, code, message)
    }

    /// 412: stale version.
    pub fn precondition_failed(message: impl Into<Cow<'static, str>>) -> Self {
        Self::client(ErrorKind::PreconditionFailed, "version_mismatch", message)
    }

    /// 422: a field's value is not acceptable.
    pub fn invalid(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::client(ErrorKind::Unprocessable, code, message)
    }

    /// 429: try again after `retry_after_secs`.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self::Client {
            kind: ErrorKind::TooManyRequests,
            code: "rate_limited",
            message: "too many attempts; try again later".into(),
            retry_after_secs: Some(retry_after_secs.max(1)),
        }
    }

    /// 503: too busy right now; try again after `retry_after_secs`.
    pub fn unavailable(message: impl Into<Cow<'static, str>>, retry_after_secs: u64) -> Self {
        Self::Client {
            kind: ErrorKind::Unavailable,
            code: "busy",
            message: message.into(),
            retry_after_secs: Some(retry_after_secs.max(1)),
        }
    }

    /// The client error kind, or `None` for internal errors.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            Self::Client { kind, .. } => Some(*kind),
            Self::Internal(_) => None,
        }
    }
}

impl From<sea_orm::DbErr> for Error {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Internal(err.into())
    }
}

impl From<minijinja::Error> for Error {
    fn from(err: minijinja::Error) -> Self {
        Self::Internal(anyhow::anyhow!("a template does not render: {err:#}"))
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Self::Internal(err.into())
    }
}

/// A domain error inside a job: a client mistake is a bug in the job (retrying will not
/// help); anything else may pass.
impl From<Error> for tasklane_jobs::JobError {
    fn from(err: Error) -> Self {
        match err {
            Error::Client { .. } => Self::Permanent(err.to_string()),
            Error::Internal(inner) => Self::Retry(format!("{inner:#}")),
        }
    }
}

impl From<sea_orm::TransactionError<Error>> for Error {
    fn from(err: sea_orm::TransactionError<Error>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(inner) => inner,
        }
    }
}

/// A write refused because a user it names no longer exists (deleted between the lookup and
/// the write) becomes the same 422 as naming an unknown user; anything else passes through.
pub fn unknown_user_on_foreign_key(err: sea_orm::DbErr) -> Error {
    if matches!(err.sql_err(), Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_))) {
        Error::invalid("unknown_user", "a user named in the request no longer exists")
    } else {
        err.into()
    }
}

/// True when the database refused a write because of a unique constraint.
pub fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
    matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

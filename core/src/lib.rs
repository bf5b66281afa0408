//! tasklane's core: configuration, database access and every domain rule (accounts,
//! authentication, tasks and their events, notifications, the event archive), the job kinds
//! that carry them out on the job platform (`tasklane-jobs`), and the adapters for the
//! services they talk to. The HTTP API, the worker and the CLI are thin layers over it.

pub mod accounts;
pub mod archive;
pub mod auth;
pub mod clock;
pub mod config;
pub mod context;
pub mod db;
pub mod error;
pub mod events;
pub mod housekeeping;
pub mod jobs;
pub mod limits;
pub mod notify;
pub mod outbound;
pub mod paging;
pub mod process;
pub mod proxies;
pub mod queues;
pub mod recovery;
pub mod reports;
pub mod tasks;
pub mod telemetry;

pub use clock::{now, stored, stored_now};
pub use context::AppContext;
pub use error::{Error, Result};

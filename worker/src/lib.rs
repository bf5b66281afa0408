//! tasklane's job runtime. Each queue is consumed by an apalis worker whose backend is one of
//! our transports; handlers, the retry policy and dead-lettering are the same for all of them.
//!
//! Retries are the transport's, not apalis's in-process retry layer: a job waiting for its
//! next attempt must survive the worker dying, and must not hold a lease meanwhile. So a
//! failed job is acknowledged back to the transport as "run again after this delay" (or "dead")
//! by our acknowledger, which apalis calls after every job.

pub mod runtime;

pub use runtime::{QueueSpec, WorkerRuntime};

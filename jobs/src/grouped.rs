//! Group commit for small writes that many concurrent jobs make at once (deleting finished
//! jobs, marking deliveries done): callers hand in an item and wait; one background writer runs a single
//! statement for everything that arrived while the previous statement ran. Under load many
//! writes cost one statement; when idle an item goes out at once, with no timer to wait for.

use std::sync::{Arc, OnceLock};

use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use crate::Result;

type Run<T> = Arc<dyn Fn(Vec<T>) -> BoxFuture<'static, std::result::Result<(), String>> + Send + Sync>;
type Arrival<T> = (T, oneshot::Sender<std::result::Result<(), String>>);

/// Items of type `T` written in groups by `run`, which must be idempotent: an item whose group
/// was interrupted is written again on its own.
pub struct Grouped<T> {
    run: Run<T>,
    max: usize,
    arrivals: OnceLock<mpsc::UnboundedSender<Arrival<T>>>,
}

impl<T: Clone + Send + 'static> Grouped<T> {
    /// Groups of at most `max` items, each written by `run`.
    pub fn new<F, Fut>(max: usize, run: F) -> Self
    where
        F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = std::result::Result<(), String>> + Send + 'static,
    {
        Self { run: Arc::new(move |items| Box::pin(run(items))), max: max.max(1), arrivals: OnceLock::new() }
    }

    /// Writes `item` with whatever else is waiting, and returns when it is written.
    pub async fn submit(&self, item: T) -> Result<()> {
        let arrivals = self.arrivals.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            tokio::spawn(write_groups(self.run.clone(), self.max, receiver));
            sender
        });
        let (done, outcome) = oneshot::channel();
        if arrivals.send((item.clone(), done)).is_ok()
            && let Ok(outcome) = outcome.await
        {
            return outcome.map_err(|err| anyhow::anyhow!(err));
        }
        // The grouping writer is gone (its runtime shut down): write this one directly.
        (self.run)(vec![item]).await.map_err(|err| anyhow::anyhow!(err))
    }
}

async fn write_groups<T>(run: Run<T>, max: usize, mut arrivals: mpsc::UnboundedReceiver<Arrival<T>>) {
    while let Some(first) = arrivals.recv().await {
        let mut group = vec![first];
        while group.len() < max {
            match arrivals.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let (items, waiting): (Vec<T>, Vec<_>) = group.into_iter().unzip();
        let outcome = run(items).await;
        for done in waiting {
            let _ = done.send(outcome.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn items_arriving_together_are_written_in_few_groups_and_all_are_written() {
        let groups = Arc::new(std::sync::Mutex::new(Vec::<Vec<u32>>::new()));
        let recorded = groups.clone();
        let grouped = Arc::new(Grouped::new(50, move |items: Vec<u32>| {
            let recorded = recorded.clone();
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                recorded.lock().unwrap().push(items);
                Ok(())
            }
        }));
        let writers: Vec<_> = (0..200)
            .map(|n| {
                tokio::spawn({
                    let grouped = grouped.clone();
                    async move { grouped.submit(n).await }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap().unwrap();
        }
        let groups = groups.lock().unwrap();
        let mut written: Vec<u32> = groups.iter().flatten().copied().collect();
        written.sort_unstable();
        assert_eq!(written, (0..200).collect::<Vec<_>>());
        assert!(groups.len() < 50, "{} groups for 200 items", groups.len());
        assert!(groups.iter().all(|group| group.len() <= 50));
    }

    #[tokio::test]
    async fn a_failed_group_fails_each_of_its_items() {
        let grouped = Grouped::new(10, |_: Vec<u32>| async { Err("disk on fire".to_owned()) });
        assert!(grouped.submit(1).await.unwrap_err().to_string().contains("disk on fire"));
    }
}

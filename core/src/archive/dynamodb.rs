//! The DynamoDB archive table: partition key `task_id`, sort key `at_event` (the event's time
//! in RFC 3339 with microseconds, `#`, its id zero-padded, so items sort by time and two events
//! at one instant stay apart), and the global secondary index `by_actor` on `actor_id` +
//! `at_event` for per-user analytics.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, PutRequest, ScalarAttributeType, TableStatus, WriteRequest,
};
use chrono::{DateTime, SecondsFormat, Utc};

use super::ArchiveQuery;
use crate::tasks::EventView;

/// The index by actor.
pub const ACTOR_INDEX: &str = "by_actor";
/// DynamoDB takes at most 25 writes per `BatchWriteItem`.
const BATCH_WRITE_MAX: usize = 25;
/// Tries per batch while DynamoDB hands back unprocessed items.
const BATCH_WRITE_TRIES: u32 = 8;

/// The sort key of an event.
pub fn sort_key(created_at: DateTime<Utc>, event_id: i64) -> String {
    format!("{}#{event_id:019}", created_at.to_rfc3339_opts(SecondsFormat::Micros, true))
}

fn item(event: &EventView) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("task_id".to_owned(), AttributeValue::N(event.task_id.to_string())),
        ("at_event".to_owned(), AttributeValue::S(sort_key(event.created_at, event.id))),
        ("event_id".to_owned(), AttributeValue::N(event.id.to_string())),
        ("seq".to_owned(), AttributeValue::N(event.seq.to_string())),
        ("kind".to_owned(), AttributeValue::S(event.kind.clone())),
        ("payload".to_owned(), AttributeValue::S(event.payload.to_string())),
        ("created_at".to_owned(), AttributeValue::S(event.created_at.to_rfc3339_opts(SecondsFormat::Micros, true))),
    ]);
    // Absent rather than null, so events without an actor stay out of the actor index.
    if let Some(actor) = event.actor_id {
        item.insert("actor_id".to_owned(), AttributeValue::N(actor.to_string()));
    }
    item
}

fn number<T: std::str::FromStr>(item: &HashMap<String, AttributeValue>, name: &str) -> Option<T> {
    item.get(name).and_then(|value| value.as_n().ok()).and_then(|n| n.parse().ok())
}

fn text<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|value| value.as_s().ok()).map(String::as_str)
}

fn event(item: &HashMap<String, AttributeValue>) -> anyhow::Result<EventView> {
    let missing = |name: &str| anyhow::anyhow!("archive item without {name}");
    Ok(EventView {
        id: number(item, "event_id").ok_or_else(|| missing("event_id"))?,
        task_id: number(item, "task_id").ok_or_else(|| missing("task_id"))?,
        seq: number(item, "seq").ok_or_else(|| missing("seq"))?,
        actor_id: number(item, "actor_id"),
        kind: text(item, "kind").ok_or_else(|| missing("kind"))?.to_owned(),
        payload: serde_json::from_str(text(item, "payload").unwrap_or("null"))?,
        created_at: text(item, "created_at").ok_or_else(|| missing("created_at"))?.parse()?,
    })
}

/// Writes events in batches of 25, retrying unprocessed items with back-off.
pub async fn write(client: &Client, table: &str, events: &[EventView]) -> anyhow::Result<()> {
    for chunk in events.chunks(BATCH_WRITE_MAX) {
        let mut requests = chunk
            .iter()
            .map(|event| {
                Ok(WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item(event))).build()?)
                    .build())
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut tries = 0;
        while !requests.is_empty() {
            tries += 1;
            if tries > BATCH_WRITE_TRIES {
                anyhow::bail!(
                    "DynamoDB left {} archive writes unprocessed after {BATCH_WRITE_TRIES} tries",
                    requests.len()
                );
            }
            if tries > 1 {
                tokio::time::sleep(Duration::from_millis(50 * (1 << tries.min(6)))).await;
            }
            let output = client
                .batch_write_item()
                .request_items(table, requests)
                .send()
                .await
                .map_err(|err| anyhow::anyhow!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&err)))
                .with_context(|| format!("cannot write to the DynamoDB table {table}"))?;
            requests = output.unprocessed_items.and_then(|mut left| left.remove(table)).unwrap_or_default();
        }
    }
    Ok(())
}

/// Creates the table and its index unless it exists, and waits until it is active.
pub async fn create_table(client: &Client, table: &str) -> anyhow::Result<String> {
    let key = |name: &str, kind: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
    let attribute = |name: &str, kind: ScalarAttributeType| {
        AttributeDefinition::builder().attribute_name(name).attribute_type(kind).build()
    };
    let index = GlobalSecondaryIndex::builder()
        .index_name(ACTOR_INDEX)
        .key_schema(key("actor_id", KeyType::Hash)?)
        .key_schema(key("at_event", KeyType::Range)?)
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()?;
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("task_id", ScalarAttributeType::N)?)
        .attribute_definitions(attribute("at_event", ScalarAttributeType::S)?)
        .attribute_definitions(attribute("actor_id", ScalarAttributeType::N)?)
        .key_schema(key("task_id", KeyType::Hash)?)
        .key_schema(key("at_event", KeyType::Range)?)
        .global_secondary_indexes(index)
        .send()
        .await;
    let outcome = match created {
        Ok(_) => format!("created the DynamoDB table {table}"),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => {
            format!("the DynamoDB table {table} exists already")
        }
        Err(err) => {
            return Err(anyhow::anyhow!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&err)))
                .with_context(|| format!("cannot create the DynamoDB table {table}"));
        }
    };
    for _ in 0..120 {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|err| anyhow::anyhow!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&err)))?;
        if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(outcome);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!("the DynamoDB table {table} did not become active within a minute")
}

/// Reads one task's or one actor's events, oldest first, following pagination.
pub async fn query(
    client: &Client,
    table: &str,
    query: &ArchiveQuery,
    since: Option<DateTime<Utc>>,
) -> anyhow::Result<Vec<EventView>> {
    let (index, key, id) = match query {
        ArchiveQuery::Task(id) => (None, "task_id", *id),
        ArchiveQuery::Actor(id) => (Some(ACTOR_INDEX), "actor_id", *id),
    };
    let mut condition = format!("{key} = :id");
    if since.is_some() {
        condition.push_str(" AND at_event >= :since");
    }
    let mut events = Vec::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let mut request = client
            .query()
            .table_name(table)
            .set_index_name(index.map(str::to_owned))
            .key_condition_expression(&condition)
            .expression_attribute_values(":id", AttributeValue::N(id.to_string()))
            .set_exclusive_start_key(start.take());
        if let Some(since) = since {
            request = request.expression_attribute_values(
                ":since",
                AttributeValue::S(since.to_rfc3339_opts(SecondsFormat::Micros, true)),
            );
        }
        let page = request
            .send()
            .await
            .map_err(|err| anyhow::anyhow!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&err)))
            .with_context(|| format!("cannot query the DynamoDB table {table}"))?;
        for item in page.items() {
            events.push(event(item)?);
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(events),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_keys_order_by_time_then_event() {
        let at: DateTime<Utc> = "2026-11-25T10:00:00.000001Z".parse().unwrap();
        let later: DateTime<Utc> = "2026-11-25T10:00:00.1Z".parse().unwrap();
        assert_eq!(sort_key(at, 42), "2026-11-25T10:00:00.000001Z#0000000000000000042");
        assert!(sort_key(at, 9) < sort_key(at, 10));
        assert!(sort_key(at, 99) < sort_key(later, 1));
    }

    #[test]
    fn items_round_trip_and_actorless_events_stay_out_of_the_actor_index() {
        let archived = EventView {
            id: 5,
            task_id: 2,
            seq: 3,
            actor_id: None,
            kind: "task.updated".into(),
            payload: serde_json::json!({"changes": {}}),
            created_at: "2026-11-25T10:00:00Z".parse().unwrap(),
        };
        let stored = item(&archived);
        assert!(!stored.contains_key("actor_id"));
        assert_eq!(event(&stored).unwrap(), archived);
    }
}

//! The names of the people a notification mentions, looked up when it is shown or sent rather
//! than stored with it: a deleted account's name leaves every notification with the account.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use tasklane_entity::users;

use super::model::Details;
use crate::Result;

/// Fills in the display names of the people `details` mention by id. A deleted account has
/// no name: as the actor it is nobody (the message says "someone"), in a change it is `#id`.
pub async fn name_people(db: &impl ConnectionTrait, details: &mut [&mut Details]) -> Result<()> {
    let ids: Vec<i64> = details
        .iter()
        .flat_map(|d| {
            d.actor_id.into_iter().chain(d.changes.iter().flat_map(|line| [line.old_user, line.new_user]).flatten())
        })
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let names: HashMap<i64, String> = users::Entity::find()
        .select_only()
        .columns([users::Column::Id, users::Column::DisplayName])
        .filter(users::Column::Id.is_in(ids))
        .into_tuple::<(i64, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let name = |id: i64| names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"));
    for details in details.iter_mut() {
        if let Some(actor) = details.actor_id {
            details.actor = names.get(&actor).cloned();
        }
        for line in &mut details.changes {
            if let Some(id) = line.old_user {
                line.old = Some(name(id));
            }
            if let Some(id) = line.new_user {
                line.new = Some(name(id));
            }
        }
    }
    Ok(())
}

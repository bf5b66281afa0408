//! `tasklane users …`: operator account management.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, bail};
use clap::Subcommand;
use tasklane_core::AppContext;
use tasklane_core::accounts::{self, DisplayName, Email, Profile, joining};
use tasklane_core::auth::Role;
use tasklane_core::auth::password::Password;

use crate::{Format, confirm, output};

#[derive(Subcommand)]
pub enum UsersAction {
    /// List every account.
    List,
    /// Show one account.
    Show {
        /// User id or email.
        user: String,
    },
    /// Create an account; the password is asked for on a terminal or read from stdin.
    Create {
        /// Email address.
        email: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Make the account an admin.
        #[arg(long)]
        admin: bool,
    },
    /// Invite someone: a single-use sign-up link for one address, emailed to it and printed.
    Invite {
        /// Email address.
        email: String,
        /// Make the account an admin when it is created.
        #[arg(long)]
        admin: bool,
    },
    /// Make a user an admin.
    Promote {
        /// User id or email.
        user: String,
    },
    /// Make an admin a member.
    Demote {
        /// User id or email.
        user: String,
    },
    /// Disable an account and end its sessions.
    Disable {
        /// User id or email.
        user: String,
    },
    /// Re-enable an account.
    Enable {
        /// User id or email.
        user: String,
    },
    /// Delete an account and its personal data; its tasks stay, unassigned.
    Delete {
        /// User id or email.
        user: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Set a new password (asked for on a terminal or read from stdin) and end every session.
    ResetPassword {
        /// User id or email.
        user: String,
    },
}

pub async fn run(ctx: &AppContext, action: UsersAction, format: Format) -> anyhow::Result<()> {
    match action {
        UsersAction::List => {
            let users = accounts::all_users(ctx).await?;
            print_profiles(format, &users)
        }
        UsersAction::Show { user } => {
            let found = accounts::find_user(ctx, &user).await?;
            print_profiles(format, &[found.into()])
        }
        UsersAction::Invite { email, admin } => {
            let email = Email::parse(&email)?;
            let role = if admin { Role::Admin } else { Role::Member };
            let invitation = joining::issue_invitation(ctx, None, &email, role).await?;
            let expires = invitation.expires_at.format("%Y-%m-%d %H:%M UTC").to_string();
            let row = vec![invitation.email.clone(), role.as_str().to_owned(), expires, invitation.link.clone()];
            output::print(format, &["email", "role", "expires", "link (works once)"], [row], &invitation)
        }
        UsersAction::Create { email, name, admin } => {
            let email = Email::parse(&email)?;
            let name = DisplayName::parse(&name)?;
            let password = Password::parse(read_new_password()?)?;
            let role = if admin { Role::Admin } else { Role::Member };
            let created = accounts::create_user(ctx, &email, &password, &name, role).await?;
            print_profiles(format, &[created])
        }
        UsersAction::Promote { user } => {
            change(ctx, format, &user, |ctx, id| Box::pin(accounts::set_role(ctx, id, Role::Admin))).await
        }
        UsersAction::Demote { user } => {
            change(ctx, format, &user, |ctx, id| Box::pin(accounts::set_role(ctx, id, Role::Member))).await
        }
        UsersAction::Disable { user } => {
            change(ctx, format, &user, |ctx, id| Box::pin(accounts::set_disabled(ctx, id, true))).await
        }
        UsersAction::Enable { user } => {
            change(ctx, format, &user, |ctx, id| Box::pin(accounts::set_disabled(ctx, id, false))).await
        }
        UsersAction::Delete { user, yes } => {
            let found = accounts::find_user(ctx, &user).await?;
            if !yes && !confirm(&format!("Delete {} and all their personal data?", found.email))? {
                bail!("not confirmed; nothing deleted (pass --yes to skip the question)");
            }
            accounts::delete_user(ctx, found.id).await?;
            eprintln!("deleted {}", found.email);
            Ok(())
        }
        UsersAction::ResetPassword { user } => {
            let found = accounts::find_user(ctx, &user).await?;
            let password = Password::parse(read_new_password()?)?;
            let profile = accounts::reset_password(ctx, found.id, &password).await?;
            eprintln!("password reset; every session of {} has ended", profile.email);
            Ok(())
        }
    }
}

type Change =
    for<'a> fn(
        &'a AppContext,
        i64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = tasklane_core::Result<Profile>> + Send + 'a>>;

async fn change(ctx: &AppContext, format: Format, user: &str, apply: Change) -> anyhow::Result<()> {
    let found = accounts::find_user(ctx, user).await?;
    let profile = apply(ctx, found.id).await?;
    print_profiles(format, &[profile])
}

fn print_profiles(format: Format, users: &[Profile]) -> anyhow::Result<()> {
    output::print(
        format,
        &["id", "email", "name", "role", "disabled", "created"],
        users.iter().map(|u| {
            vec![
                u.id.to_string(),
                u.email.clone(),
                u.display_name.clone(),
                u.role.as_str().to_owned(),
                u.disabled.to_string(),
                u.created_at.format("%Y-%m-%d %H:%M").to_string(),
            ]
        }),
        &users,
    )
}

/// Reads a new password: asked twice on a terminal, else the first line of stdin. Never argv.
fn read_new_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New password: ")?;
        let second = rpassword::prompt_password("Repeat it: ")?;
        if first != second {
            bail!("the two passwords differ");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from stdin")?;
        let password = line.trim_end_matches(['\r', '\n']).to_owned();
        if password.is_empty() {
            bail!("no password on stdin");
        }
        Ok(password)
    }
}

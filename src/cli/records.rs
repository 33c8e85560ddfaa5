//! `onair apikey`, `onair operator`, `onair member` and `onair gift`: the operator records.

use std::process::ExitCode;

use super::args::*;
use crate::commands::{gift_catalog, members};
use crate::domain::member::{MemberId, Role};
use crate::records::{api_keys, operators};
use crate::runtime::postgres::{connect_postgres, migrate};
use crate::server::config::ConnectionSettings;

pub(super) async fn api_key_command(
    db: &sqlx::PgPool,
    command: ApiKeyCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        ApiKeyCommand::Create {
            name,
            rate_limit_per_minute,
        } => {
            let (record, key) = api_keys::create(db, &name, rate_limit_per_minute).await?;
            eprintln!(
                "created API key {} ({}); store it now, it is not shown again:",
                record.id, record.name
            );
            println!("{key}");
        }
        ApiKeyCommand::List => {
            println!("id\tname\tprefix\trate_limit_per_minute\tcreated_at\trevoked_at");
            for k in api_keys::list(db).await? {
                println!(
                    "{}\t{}\t{}…\t{}\t{}\t{}",
                    k.id,
                    k.name,
                    k.key_prefix,
                    k.rate_limit_per_minute,
                    crate::events::cloudevents::format_time(k.created_at),
                    k.revoked_at
                        .map(crate::events::cloudevents::format_time)
                        .unwrap_or_else(|| "-".into())
                );
            }
        }
        ApiKeyCommand::Revoke { id } => {
            if api_keys::revoke(db, id).await? {
                eprintln!("revoked {id}");
            } else {
                eprintln!("no active key with id {id}");
                return Ok(ExitCode::FAILURE);
            }
        }
        ApiKeyCommand::SetLimit { id, per_minute } => {
            if api_keys::set_rate_limit(db, id, per_minute).await? {
                eprintln!("rate limit of {id} set to {per_minute} requests per minute");
            } else {
                eprintln!("no active key with id {id}");
                return Ok(ExitCode::FAILURE);
            }
        }
        ApiKeyCommand::Verify { key } => {
            return Ok(match api_keys::verify(db, &key).await? {
                Some(record) => {
                    eprintln!("valid: {} ({})", record.id, record.name);
                    ExitCode::SUCCESS
                }
                None => {
                    eprintln!("not a valid active key");
                    ExitCode::FAILURE
                }
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn operator_command(
    db: &sqlx::PgPool,
    command: OperatorCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        OperatorCommand::Create {
            website,
            master_agent,
        } => {
            let key = operators::create(db, &website, master_agent.as_deref()).await?;
            eprintln!("created operator {website}; store the key now, it is not shown again:");
            println!("{key}");
        }
        OperatorCommand::List => {
            println!("website\tmaster_agent\tcreated_at\trevoked_at");
            for o in operators::list(db).await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    o.website,
                    o.master_agent.as_deref().unwrap_or("*"),
                    crate::events::cloudevents::format_time(o.created_at),
                    o.revoked_at
                        .map(crate::events::cloudevents::format_time)
                        .unwrap_or_else(|| "-".into())
                );
            }
        }
        OperatorCommand::Revoke { website } => {
            if operators::revoke(db, &website).await? {
                eprintln!("revoked {website}");
            } else {
                eprintln!("no active operator {website}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Postgres (migrated) and the event stream, for commands that publish.
pub(super) async fn connect_all(
    connection: &ConnectionSettings,
) -> anyhow::Result<(sqlx::PgPool, crate::event_store::EventStore)> {
    let db = connect_postgres(&connection.database_url).await?;
    migrate(&db).await?;
    let store = crate::event_store::EventStore::connect(&connection.nats_url, "/onair/cli").await?;
    store.open_stream(connection.stream_replicas).await?;
    Ok((db, store))
}

pub(super) async fn member_command(
    connection: &ConnectionSettings,
    command: MemberCommand,
) -> anyhow::Result<ExitCode> {
    let MemberCommand::Create {
        member_id,
        nickname,
        role,
        password,
        password_stdin,
        avatar,
        vip,
        equipment_bar,
        account_id,
    } = command;
    let password = if password_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        password.unwrap_or_default()
    };
    let member_id = MemberId::parse(&member_id, "member-id")?;
    let (db, store) = connect_all(connection).await?;
    let registered = members::register(
        &db,
        &store,
        members::NewMember {
            member_id,
            role: match role {
                RoleArg::Member => Role::Member,
                RoleArg::Streamer => Role::Streamer,
            },
            password,
            nickname,
            avatar,
            vip,
            equipment_bar,
            account_id,
        },
        time::OffsetDateTime::now_utc(),
    )
    .await;
    let profile = match registered {
        Ok((profile, _)) => profile,
        // The member is registered; its event waits in the outbox for a server's relay.
        Err(members::MemberError::Store(e)) => {
            eprintln!(
                "registered, but its member.registered event is not stored yet ({e}); the outbox \
                 relay of a running `onair serve` (reactors role) publishes it"
            );
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    eprintln!("registered {} ({})", profile.member_id, profile.role);
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn gift_command(
    connection: &ConnectionSettings,
    command: GiftCommand,
) -> anyhow::Result<ExitCode> {
    let (db, store) = connect_all(connection).await?;
    match command {
        GiftCommand::Set {
            gift_id,
            name,
            points,
            anime_url,
            disabled,
        } => {
            let (gift, _) = gift_catalog::define(
                &db,
                &store,
                gift_catalog::Gift {
                    gift_id,
                    name,
                    points,
                    anime_url,
                    enabled: !disabled,
                },
                time::OffsetDateTime::now_utc(),
            )
            .await?;
            eprintln!(
                "gift {} set: {} ({} points)",
                gift.gift_id, gift.name, gift.points
            );
        }
        GiftCommand::List => {
            println!("gift_id\tname\tpoints\tanime_url\tenabled");
            for g in gift_catalog::list(&db).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    g.gift_id, g.name, g.points, g.anime_url, g.enabled
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

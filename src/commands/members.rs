//! Member records: members and streamers, with their profile and password hash.
//!
//! Members are operator records in Postgres (table `members`): they hold a password hash, which
//! must never reach the event stream. Every change is also published as an event carrying the
//! profile only (`onair.member.registered.v1`, `onair.member.edited.v1`), through the
//! transactional outbox ([`crate::event_store::outbox`]):
//!
//! 1. the member's row and the event's outbox row are written in **one** Postgres transaction
//!    ([`record_registration`], [`record_edit`]): a member without its event, or an event without
//!    its member, is never committed;
//! 2. right after the commit the request publishes its member's outbox rows, in the order they
//!    committed ([`publish_recorded`]), and answers with its event's stream sequence. If it
//!    cannot (NATS down, a crash), the outbox relay publishes the row after
//!    [`outbox::REQUEST_GRACE`], with the same `Nats-Msg-Id`, so a row published twice is stored
//!    once.
//!
//! Passwords are hashed with Argon2id (the `argon2` crate, its default parameters: 19 MiB, 2
//! passes), in a blocking task so a login never stalls the async runtime.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::domain::member::{MemberId, Role};
use crate::event_store::outbox::{self, OutboxError};
use crate::event_store::{EventStore, EventStoreError, NewEvent};
use crate::events::{Event, MemberEdited, MemberProfile, MemberRegistered};

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest accepted password, in characters (Argon2 accepts more; this bounds the work per login).
pub const MAX_PASSWORD_CHARS: usize = 128;
/// Longest nickname, in characters.
pub const MAX_NICKNAME_CHARS: usize = 50;
/// Longest avatar URL, in characters.
pub const MAX_AVATAR_CHARS: usize = 2048;
/// Longest `vip`, `equipmentBar` or `accountID`, in characters.
pub const MAX_SHORT_FIELD_CHARS: usize = 256;

/// A member as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MemberRecord {
    /// `account@agent.masterAgent`, compared exactly (case-sensitively).
    pub member_id: String,
    /// `member` or `streamer`, the wire spelling of [`Role`].
    pub role: String,
    /// Argon2id PHC string; never published.
    pub password_hash: String,
    /// Display name, 1 to [`MAX_NICKNAME_CHARS`] characters.
    pub nickname: String,
    /// Avatar (頭像) URL; empty when none.
    pub avatar: String,
    /// VIP level (vip等級), free text; empty when none.
    pub vip: String,
    /// Badge (勳章) shown in chat, the seed's `equipmentBar`; empty when none.
    pub equipment_bar: String,
    /// The seed's `accountID`; by default the account part of `member_id`.
    pub account_id: String,
    /// Bumped by each password or role change; tokens of an older version are refused.
    pub token_version: i32,
}

impl MemberRecord {
    /// The stored role; an unknown spelling reads as [`Role::Member`].
    pub fn role(&self) -> Role {
        self.role.parse().unwrap_or(Role::Member)
    }

    /// The public profile (no password hash).
    pub fn profile(&self) -> MemberProfile {
        MemberProfile {
            member_id: self.member_id.clone(),
            role: self.role(),
            nickname: self.nickname.clone(),
            avatar: self.avatar.clone(),
            vip: self.vip.clone(),
            equipment_bar: self.equipment_bar.clone(),
            account_id: self.account_id.clone(),
        }
    }
}

/// A member to register. `account_id` defaults to the account part of the member id.
#[derive(Clone, Debug)]
pub struct NewMember {
    /// The new member's id; registering it twice fails with [`MemberError::Exists`].
    pub member_id: MemberId,
    /// Member or streamer.
    pub role: Role,
    /// Plain-text password, [`MIN_PASSWORD_CHARS`] to [`MAX_PASSWORD_CHARS`] characters;
    /// only its Argon2id hash is stored.
    pub password: String,
    /// Display name, 1 to [`MAX_NICKNAME_CHARS`] characters.
    pub nickname: String,
    /// Avatar URL, at most [`MAX_AVATAR_CHARS`] characters; may be empty.
    pub avatar: String,
    /// VIP level, at most [`MAX_SHORT_FIELD_CHARS`] characters; may be empty.
    pub vip: String,
    /// Badge (`equipmentBar`), at most [`MAX_SHORT_FIELD_CHARS`] characters; may be empty.
    pub equipment_bar: String,
    /// The seed's `accountID`; `None` takes the account part of `member_id`.
    pub account_id: Option<String>,
}

impl NewMember {
    /// A member with only the required fields: no avatar, VIP level or equipment bar, and the
    /// account part of `member_id` as the account id.
    pub fn new(member_id: MemberId, role: Role, password: &str, nickname: &str) -> Self {
        Self {
            member_id,
            role,
            password: password.to_owned(),
            nickname: nickname.to_owned(),
            avatar: String::new(),
            vip: String::new(),
            equipment_bar: String::new(),
            account_id: None,
        }
    }
}

/// Changes to a member (`EditMember`): `None` keeps a field as it is.
#[derive(Clone, Debug, Default)]
pub struct MemberEdit {
    /// New role; a change bumps the token version, so the member's tokens stop working.
    pub role: Option<Role>,
    /// New plain-text password; bumps the token version.
    pub password: Option<String>,
    /// New display name.
    pub nickname: Option<String>,
    /// New avatar URL.
    pub avatar: Option<String>,
    /// New VIP level.
    pub vip: Option<String>,
    /// New badge (`equipmentBar`).
    pub equipment_bar: Option<String>,
    /// New `accountID`.
    pub account_id: Option<String>,
}

/// Why a member could not be registered or edited; nothing was stored or published.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    /// A field is empty, too long or holds control characters, or the password has the
    /// wrong length; the message names the field (HTTP 400 `VALIDATION_ERROR`).
    #[error("{0}")]
    Invalid(String),
    /// A member with this id is already registered (HTTP 409 `MEMBER_EXISTS`).
    #[error("member {0} already exists")]
    Exists(String),
    /// No member has this id (HTTP 404 `MEMBER_NOT_FOUND`).
    #[error("member {0} not found")]
    NotFound(String),
    /// The event was not stored yet (see [`EventStoreError`]; HTTP 503). The change itself is
    /// committed with its event in the outbox, which the outbox relay publishes once the stream
    /// answers (a retried `CreateMember` then answers `MEMBER_EXISTS`).
    #[error(transparent)]
    Store(#[from] EventStoreError),
    /// Postgres failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Argon2 hashing failed, or its blocking task did not finish.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

fn check_field(value: &str, field: &str, max: usize, required: bool) -> Result<(), MemberError> {
    if required && value.trim().is_empty() {
        return Err(MemberError::Invalid(format!(
            "{field} is required and must not be empty"
        )));
    }
    if value.chars().count() > max {
        return Err(MemberError::Invalid(format!(
            "{field} must be at most {max} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(MemberError::Invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(())
}

/// Checks a new password's length.
pub fn check_password(password: &str) -> Result<(), MemberError> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        return Err(MemberError::Invalid(format!(
            "password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

fn check_profile(p: &MemberProfile) -> Result<(), MemberError> {
    check_field(&p.nickname, "nickname", MAX_NICKNAME_CHARS, true)?;
    check_field(&p.avatar, "avatar", MAX_AVATAR_CHARS, false)?;
    check_field(&p.vip, "vip", MAX_SHORT_FIELD_CHARS, false)?;
    check_field(
        &p.equipment_bar,
        "equipmentBar",
        MAX_SHORT_FIELD_CHARS,
        false,
    )?;
    check_field(&p.account_id, "accountID", MAX_SHORT_FIELD_CHARS, true)?;
    Ok(())
}

/// Argon2 work allowed at once: one per core. Each hash holds 19 MiB (Argon2id's default
/// memory cost) while it runs; without a bound a burst of logins (or a flood of them) ran one per
/// blocking thread and the allocator kept the peak (hundreds of MiB after 32 logins at once).
fn password_work() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        tokio::sync::Semaphore::new(cores)
    })
}

/// Hashes a password with Argon2id and a random salt (PHC string); waits for one of the
/// per-core Argon2 permits first.
pub async fn hash_password(password: String) -> Result<String, MemberError> {
    let _permit = password_work()
        .acquire()
        .await
        .map_err(|e| MemberError::Hash(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| MemberError::Hash(e.to_string()))?;
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| MemberError::Hash(e.to_string()))
    })
    .await
    .map_err(|e| MemberError::Hash(e.to_string()))?
}

/// Whether `password` matches the stored PHC hash (false for a malformed hash); waits for one of
/// the per-core Argon2 permits first.
pub async fn verify_password(hash: String, password: String) -> bool {
    let Ok(_permit) = password_work().acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A member by id, if registered.
pub async fn find(db: &PgPool, member_id: &str) -> Result<Option<MemberRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT member_id, role, password_hash, nickname, avatar, vip, equipment_bar, account_id,
                token_version
         FROM members WHERE member_id = $1",
    )
    .bind(member_id)
    .fetch_optional(db)
    .await
}

/// A member change committed together with its event in the outbox, not published yet.
#[derive(Clone, Debug)]
pub struct RecordedChange {
    /// The member's profile after the change.
    pub profile: MemberProfile,
    /// The event's id (`ce-id`, `Nats-Msg-Id`), the key of its outbox row.
    pub event_id: uuid::Uuid,
}

/// The outbox ordering key of a member's events: they reach the stream in commit order.
fn ordering_key(member_id: &str) -> String {
    format!("member.{member_id}")
}

/// Registers a member and publishes `onair.member.registered.v1`; returns the profile and the
/// event's stream sequence.
#[tracing::instrument(skip_all, fields(member.id = %new.member_id), err(level = "info"))]
pub async fn register(
    db: &PgPool,
    store: &EventStore,
    new: NewMember,
    now: OffsetDateTime,
) -> Result<(MemberProfile, u64), MemberError> {
    let recorded = record_registration(db, store, new, now).await?;
    publish_recorded(db, store, recorded).await
}

/// Step 1 of [`register`]: checks the fields, hashes the password and writes the member's row
/// and its `onair.member.registered.v1` into the outbox in one transaction.
pub async fn record_registration(
    db: &PgPool,
    store: &EventStore,
    new: NewMember,
    now: OffsetDateTime,
) -> Result<RecordedChange, MemberError> {
    check_password(&new.password)?;
    let profile = MemberProfile {
        member_id: new.member_id.to_string(),
        role: new.role,
        nickname: new.nickname,
        avatar: new.avatar,
        vip: new.vip,
        equipment_bar: new.equipment_bar,
        account_id: new
            .account_id
            .unwrap_or_else(|| new.member_id.account().to_owned()),
    };
    check_profile(&profile)?;
    let hash = hash_password(new.password).await?;
    let mut tx = db.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO members (member_id, account, agent_id, role, password_hash, nickname, avatar,
                              vip, equipment_bar, account_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (member_id) DO NOTHING",
    )
    .bind(&profile.member_id)
    .bind(new.member_id.account())
    .bind(new.member_id.agent_id().as_str())
    .bind(profile.role.as_str())
    .bind(&hash)
    .bind(&profile.nickname)
    .bind(&profile.avatar)
    .bind(&profile.vip)
    .bind(&profile.equipment_bar)
    .bind(&profile.account_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(MemberError::Exists(profile.member_id));
    }
    let event = store.encode(&NewEvent::new(
        now,
        Event::MemberRegistered(MemberRegistered {
            profile: profile.clone(),
        }),
    ));
    let key = ordering_key(&profile.member_id);
    outbox::enqueue(&mut tx, &key, &event, Some(now + outbox::REQUEST_GRACE)).await?;
    tx.commit().await?;
    Ok(RecordedChange {
        profile,
        event_id: event.id,
    })
}

/// Step 2 of [`register`] and [`edit`]: publishes the member's outbox rows in commit order (the
/// recorded one among them) and answers its profile and its event's stream sequence.
pub async fn publish_recorded(
    db: &PgPool,
    store: &EventStore,
    recorded: RecordedChange,
) -> Result<(MemberProfile, u64), MemberError> {
    let key = ordering_key(&recorded.profile.member_id);
    match outbox::publish_own(db, store, &key, recorded.event_id).await {
        Ok(sequence) => Ok((recorded.profile, sequence)),
        Err(OutboxError::Store(e)) => Err(MemberError::Store(e)),
        Err(OutboxError::Database(e)) => Err(MemberError::Database(e)),
    }
}

/// Edits a member (`EditMember`) and publishes `onair.member.edited.v1` with the new profile;
/// returns the profile and the event's stream sequence.
#[tracing::instrument(skip_all, fields(member.id = %member_id), err(level = "info"))]
pub async fn edit(
    db: &PgPool,
    store: &EventStore,
    member_id: &str,
    edit: MemberEdit,
    now: OffsetDateTime,
) -> Result<(MemberProfile, u64), MemberError> {
    let recorded = record_edit(db, store, member_id, edit, now).await?;
    publish_recorded(db, store, recorded).await
}

/// Step 1 of [`edit`]: applies the edit to the member's row (locked) and writes its
/// `onair.member.edited.v1` into the outbox in the same transaction.
pub async fn record_edit(
    db: &PgPool,
    store: &EventStore,
    member_id: &str,
    edit: MemberEdit,
    now: OffsetDateTime,
) -> Result<RecordedChange, MemberError> {
    if let Some(password) = &edit.password {
        check_password(password)?;
    }
    let new_hash = match edit.password.clone() {
        Some(password) => Some(hash_password(password).await?),
        None => None,
    };
    let mut tx = db.begin().await?;
    let current: Option<MemberRecord> = sqlx::query_as(
        "SELECT member_id, role, password_hash, nickname, avatar, vip, equipment_bar, account_id,
                token_version
         FROM members WHERE member_id = $1 FOR UPDATE",
    )
    .bind(member_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(current) = current else {
        return Err(MemberError::NotFound(member_id.to_owned()));
    };
    let mut profile = current.profile();
    if let Some(role) = edit.role {
        profile.role = role;
    }
    for (target, value) in [
        (&mut profile.nickname, edit.nickname),
        (&mut profile.avatar, edit.avatar),
        (&mut profile.vip, edit.vip),
        (&mut profile.equipment_bar, edit.equipment_bar),
        (&mut profile.account_id, edit.account_id),
    ] {
        if let Some(value) = value {
            *target = value;
        }
    }
    check_profile(&profile)?;
    sqlx::query(
        "UPDATE members SET role = $2, password_hash = COALESCE($3, password_hash), nickname = $4,
                avatar = $5, vip = $6, equipment_bar = $7, account_id = $8, updated_at = now(),
                token_version = token_version
                    + CASE WHEN $3::text IS NOT NULL OR role <> $2 THEN 1 ELSE 0 END
         WHERE member_id = $1",
    )
    .bind(member_id)
    .bind(profile.role.as_str())
    .bind(&new_hash)
    .bind(&profile.nickname)
    .bind(&profile.avatar)
    .bind(&profile.vip)
    .bind(&profile.equipment_bar)
    .bind(&profile.account_id)
    .execute(&mut *tx)
    .await?;
    let event = store.encode(&NewEvent::new(
        now,
        Event::MemberEdited(MemberEdited {
            profile: profile.clone(),
            password_changed: new_hash.is_some(),
        }),
    ));
    outbox::enqueue(
        &mut tx,
        &ordering_key(member_id),
        &event,
        Some(now + outbox::REQUEST_GRACE),
    )
    .await?;
    tx.commit().await?;
    Ok(RecordedChange {
        profile,
        event_id: event.id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_verifies_against_its_hash_and_nothing_else() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(hash.clone(), "correct horse".into()).await);
        assert!(!verify_password(hash, "Correct horse".into()).await);
        assert!(!verify_password("not a hash".into(), "x".into()).await);
    }

    #[test]
    fn passwords_have_a_length_range() {
        assert!(check_password("1234567").is_err());
        assert!(check_password("12345678").is_ok());
        assert!(check_password(&"x".repeat(129)).is_err());
    }
}

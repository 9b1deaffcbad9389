//! The sub-commands other than `serve`: `migrate`, `user add|disable|enable`, `token`, `backup`.
//! Each reads the same settings as the server and prints only its result on standard output.

use std::io::BufRead;
use std::time::Duration;

use crate::auth::PasswordHasher;
use crate::config::{
    BackupArgs, ConfigError, Settings, StaffRole, TokenArgs, UserAddArgs, UserEmailArgs,
};
use crate::db::{self, DbConn, DbError, models::NewUser};
use crate::ids::{CompanyId, UserId};
use crate::startup::{StartupError, open_database, token_service};
use crate::time::now_millis;
use crate::user::clean_display_name;

/// `switchboard migrate`.
pub fn migrate(settings: &Settings) -> Result<(), StartupError> {
    open_database(settings, None)?;
    log::info!("database {} is up to date", settings.storage.database_url);
    Ok(())
}

/// `switchboard backup --to FILE`: a consistent copy of the database, taken while hubs keep
/// writing (SQLite's `VACUUM INTO` reads one snapshot, in WAL mode without stopping writers),
/// compacted. Prints the file and its size.
pub fn backup(settings: &Settings, args: &BackupArgs) -> Result<(), StartupError> {
    if args.to.exists() {
        return Err(
            ConfigError::new("--to", format!("{} exists already", args.to.display())).into()
        );
    }
    let target =
        args.to.to_str().ok_or_else(|| ConfigError::new("--to", "must be a UTF-8 path"))?;
    let pool = open_database(settings, None)?;
    let DbConn::Sqlite(mut conn) = pool.get().map_err(DbError::from)? else {
        let text = "is for SQLite; back up PostgreSQL with pg_dump (docs/operations.md)";
        return Err(ConfigError::new("backup", text).into());
    };
    let sql = format!("VACUUM INTO '{}'", target.replace('\'', "''"));
    diesel::connection::SimpleConnection::batch_execute(&mut *conn, &sql)
        .map_err(|e| ConfigError::new("--to", format!("cannot write {target}: {e}")))?;
    let size = std::fs::metadata(&args.to).map(|m| m.len()).unwrap_or(0);
    println!("{target} ({size} bytes)");
    Ok(())
}

/// Shortest password a login may have.
const MIN_PASSWORD_LEN: usize = 8;

/// `switchboard user add`: creates a login and prints its user id.
pub fn add_user(settings: &Settings, args: &UserAddArgs) -> Result<(), StartupError> {
    let email = args.email.trim().to_lowercase();
    if !email.contains('@') || email.len() > 254 {
        return Err(ConfigError::new("--email", "is not an email address").into());
    }
    let name = clean_display_name(&args.name);
    if name.is_empty() {
        return Err(ConfigError::new("--name", "must not be empty").into());
    }
    let company = CompanyId::parse(args.company.trim())
        .ok_or_else(|| ConfigError::new("--company", "must be 1-128 printable characters"))?;
    let password = read_password()?;
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(ConfigError::new(
            "SWITCHBOARD_PASSWORD",
            format!("the password needs at least {MIN_PASSWORD_LEN} characters"),
        )
        .into());
    }
    let pool = open_database(settings, None)?;
    let hasher = PasswordHasher::new()?;
    let password_hash = hasher.hash(&password)?;
    let id = crate::ids::random_uuid().simple().to_string();
    let role = match args.role {
        StaffRole::Agent => "agent",
        StaffRole::Admin => "admin",
    };
    let user = NewUser {
        id: &id,
        company: company.as_str(),
        email: &email,
        name: &name,
        role,
        password_hash: &password_hash,
        created_at: now_millis(),
    };
    let mut conn = pool.get().map_err(DbError::from)?;
    match db::users::insert(&mut conn, &user) {
        Ok(()) => {}
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => return Err(ConfigError::new("--email", "an account with this email exists").into()),
        Err(e) => return Err(DbError::from(e).into()),
    }
    log::info!("created {role} {email} in company {company}");
    println!("{id}");
    Ok(())
}

/// `switchboard user disable` / `user enable`: running hubs follow within a second (their
/// tokens are refused from then on, and open connections close with 4001).
pub fn set_user_disabled(
    settings: &Settings,
    args: &UserEmailArgs,
    disabled: bool,
) -> Result<(), StartupError> {
    let email = args.email.trim().to_lowercase();
    let pool = open_database(settings, None)?;
    let mut conn = pool.get().map_err(DbError::from)?;
    let at = disabled.then(now_millis);
    if !db::users::set_disabled(&mut conn, &email, at).map_err(DbError::from)? {
        return Err(ConfigError::new("--email", "no account has this email").into());
    }
    log::info!("{} {email}", if disabled { "disabled" } else { "enabled" });
    Ok(())
}

/// The password from `SWITCHBOARD_PASSWORD`, else the first line of standard input.
fn read_password() -> Result<String, StartupError> {
    if let Ok(password) = std::env::var("SWITCHBOARD_PASSWORD") {
        return Ok(password);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(StartupError::PasswordInput)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// `switchboard token`: prints only the signed token.
pub fn print_token(settings: &Settings, args: &TokenArgs) -> Result<(), StartupError> {
    let sub = UserId::parse(&args.sub)
        .ok_or_else(|| ConfigError::new("--sub", "must be 1-128 printable characters"))?;
    let company = CompanyId::parse(&args.company)
        .ok_or_else(|| ConfigError::new("--company", "must be 1-128 printable characters"))?;
    if args.ttl_secs == 0 {
        return Err(ConfigError::new("--ttl-secs", "must be positive").into());
    }
    let pool = open_database(settings, None)?;
    let tokens = token_service(settings, &pool, &crate::outbound::http_client)?;
    let name = args.name.as_deref().map(clean_display_name);
    let issued = tokens.issue(
        sub.as_str(),
        args.role,
        company.as_str(),
        name.as_deref(),
        Duration::from_secs(args.ttl_secs),
    )?;
    println!("{}", issued.token);
    Ok(())
}

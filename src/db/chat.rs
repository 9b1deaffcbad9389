//! Queries on `conversations`, `messages` and `read_positions` (`docs/protocol.md` §8).
//!
//! [`store`] takes a batch of sends and stores them in one immediate transaction (one commit,
//! one fsync, for everything the ChatHub had waiting); each message's `seq` is the
//! conversation's `last_seq + 1`, taken inside that transaction, so seqs have no gaps and no
//! duplicates. Reads are served by indexes: the inbox walks `conversations_inbox`
//! (company, last activity), a history page walks the messages' primary key (company,
//! conversation, seq), and a retried send finds its message through `messages_client_id`.

use diesel::prelude::*;

use super::DbConn;
use super::models::{Conversation, MessageRow};
use crate::chat::{ConversationId, Direction, Draft};
use crate::on_backend;
use crate::user::UserRef;

/// The query of [`history`]: one more than the page, to tell whether there is more. It walks
/// the primary key (company, conversation, seq) from the page's bound.
/// Written as a macro so that each backend's expansion is typed for that backend.
macro_rules! history_query {
    ($company:expr, $conversation:expr, $reader:expr, $page:expr, $direction:expr, $limit:expr) => {{
        let (company, conversation, reader, page, direction, limit) =
            ($company, $conversation, $reader, $page, $direction, $limit);
        use crate::db::schema::messages::dsl as m;
        let mut query = m::messages
            .filter(m::company.eq(company))
            .filter(m::conversation.eq(conversation))
            .into_boxed();
        query = match direction {
            Direction::Sent => query.filter(m::sender_id.eq(reader)),
            Direction::Received => query.filter(m::sender_id.ne(reader)),
            Direction::All => query,
        };
        let query = match page {
            Page::After(seq) => query.filter(m::seq.gt(seq)).order(m::seq.asc()),
            Page::Before(Some(seq)) => query.filter(m::seq.lt(seq)).order(m::seq.desc()),
            Page::Before(None) => query.order(m::seq.desc()),
        };
        query.limit(limit + 1)
    }};
}

/// The query of [`inbox`]: it walks `conversations_inbox` (company, last activity) newest
/// first, so a page costs the page, not the company's conversations.
/// Written as a macro so that each backend's expansion is typed for that backend.
macro_rules! inbox_query {
    ($company:expr, $reader:expr, $unread_only:expr, $cursor:expr, $limit:expr) => {{
        let (company, reader, unread_only, cursor, limit): (
            &str,
            &Reader,
            bool,
            Option<&InboxCursor>,
            i64,
        ) = ($company, $reader, $unread_only, $cursor, $limit);
        use crate::db::schema::conversations::dsl as c;
        use crate::db::schema::read_positions::dsl as r;
        let mut query = c::conversations.filter(c::company.eq(company)).into_boxed();
        query = match reader {
            Reader::Customer(id) => {
                query.filter(c::customer_id.eq(id)).filter(c::kind.eq("support"))
            }
            Reader::Staff(id) => {
                query.filter(c::kind.eq("support").or(c::member_a.eq(id)).or(c::member_b.eq(id)))
            }
            Reader::Service(_) => query,
        };
        if unread_only {
            // Sending moves the sender's position to its own message, so newer-than-position
            // always means unread messages of the others.
            let position = r::read_positions
                .filter(r::company.eq(c::company))
                .filter(r::conversation.eq(c::id))
                .filter(r::user_id.eq(reader.id()))
                .select(r::seq)
                .single_value();
            query = query.filter(c::last_seq.gt(coalesce(position, 0)));
        }
        if let Some((at, id)) = cursor {
            let older = c::last_message_at.lt(*at).or(c::last_message_at.eq(*at).and(c::id.lt(id)));
            query = query.filter(older);
        }
        query.order((c::last_message_at.desc(), c::id.desc())).limit(limit + 1)
    }};
}

/// One send to store.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub company: String,
    pub conversation: ConversationId,
    pub from: UserRef,
    pub draft: Draft,
    pub message_id: String,
    pub sent_at: i64,
}

/// What storing a send did.
#[derive(Debug, Clone)]
pub struct Stored {
    pub message: MessageRow,
    /// A retry: the message was stored before (same sender, conversation and client_id).
    pub repeated: bool,
}

/// Stores every send of the batch, in order, in one transaction.
pub fn store(conn: &mut DbConn, sends: &[Outgoing]) -> QueryResult<Vec<Stored>> {
    super::write(conn, |conn| sends.iter().map(|send| store_one(conn, send)).collect())
}

fn store_one(conn: &mut DbConn, send: &Outgoing) -> QueryResult<Stored> {
    use crate::db::schema::conversations::dsl as c;
    use crate::db::schema::messages::dsl as m;
    let conversation = send.conversation.to_string();
    if let Some(client_id) = &send.draft.client_id {
        let earlier = on_backend!(conn, db => {
            m::messages
                .filter(m::company.eq(&send.company))
                .filter(m::conversation.eq(&conversation))
                .filter(m::sender_id.eq(send.from.id.as_str()))
                .filter(m::client_id.eq(client_id))
                .select(MessageRow::as_select())
                .first(db)
                .optional()
        })?;
        if let Some(message) = earlier {
            return Ok(Stored { message, repeated: true });
        }
    }
    ensure_conversation(conn, send, &conversation)?;
    // The row is locked by this update until the transaction ends (also between hubs on
    // PostgreSQL), so each message gets the next seq: no gaps, no duplicates.
    let seq: i64 = on_backend!(conn, db => {
        diesel::update(c::conversations)
            .filter(c::company.eq(&send.company))
            .filter(c::id.eq(&conversation))
            .set((c::last_seq.eq(c::last_seq + 1), c::last_message_at.eq(send.sent_at)))
            .returning(c::last_seq)
            .get_result(db)
    })?;
    let message = MessageRow {
        company: send.company.clone(),
        conversation,
        seq,
        id: send.message_id.clone(),
        sender_id: send.from.id.to_string(),
        sender_name: send.from.name.to_string(),
        sender_role: send.from.role.as_str().to_owned(),
        text: send.draft.text.clone(),
        meta: send.draft.meta.clone(),
        client_id: send.draft.client_id.clone(),
        sent_at: send.sent_at,
    };
    on_backend!(conn, db => diesel::insert_into(m::messages).values(&message).execute(db))?;
    // Sending is reading up to what one sent.
    advance_read(conn, &send.company, &message.conversation, send.from.id.as_str(), seq)?;
    Ok(Stored { message, repeated: false })
}

/// Creates the conversation on its first message, and keeps the names shown in the inbox
/// current.
fn ensure_conversation(conn: &mut DbConn, send: &Outgoing, id: &str) -> QueryResult<()> {
    use crate::db::schema::conversations::dsl as c;
    let (mut customer, mut a, mut b) = (None, None, None);
    match &send.conversation {
        ConversationId::Support { customer: who } => customer = Some(who.to_string()),
        ConversationId::Direct { a: first, b: second } => {
            (a, b) = (Some(first.to_string()), Some(second.to_string()));
        }
    }
    let row = Conversation {
        company: send.company.clone(),
        id: id.to_owned(),
        kind: send.conversation.kind().to_owned(),
        customer_id: customer,
        member_a: a,
        member_b: b,
        customer_name: None,
        member_a_name: None,
        member_b_name: None,
        member_a_role: None,
        member_b_role: None,
        last_seq: 0,
        last_message_at: send.sent_at,
        created_at: send.sent_at,
    };
    on_backend!(conn, db => {
        diesel::insert_into(c::conversations).values(&row).on_conflict_do_nothing().execute(db)
    })?;
    let (name, role) = (send.from.name.to_string(), send.from.role.as_str());
    let target = c::conversations.filter(c::company.eq(&send.company)).filter(c::id.eq(id));
    let sender = Some(send.from.id.to_string());
    if row.customer_id == sender {
        on_backend!(conn, db => diesel::update(target).set(c::customer_name.eq(name)).execute(db))?;
    } else if row.member_a == sender {
        let names = (c::member_a_name.eq(name), c::member_a_role.eq(role));
        on_backend!(conn, db => diesel::update(target).set(names).execute(db))?;
    } else if row.member_b == sender {
        let names = (c::member_b_name.eq(name), c::member_b_role.eq(role));
        on_backend!(conn, db => diesel::update(target).set(names).execute(db))?;
    }
    Ok(())
}

/// Moves a reader's position forward to `seq` (never back).
fn advance_read(
    conn: &mut DbConn,
    company: &str,
    conversation: &str,
    user: &str,
    seq: i64,
) -> QueryResult<()> {
    use crate::db::schema::read_positions::dsl as r;
    // The larger of the two, in SQL both backends speak (SQLite's MAX(a, b) is PostgreSQL's
    // GREATEST).
    let larger = "CASE WHEN excluded.seq > read_positions.seq \
                  THEN excluded.seq ELSE read_positions.seq END";
    on_backend!(conn, db => {
        diesel::insert_into(r::read_positions)
            .values((
                r::company.eq(company),
                r::conversation.eq(conversation),
                r::user_id.eq(user),
                r::seq.eq(seq),
            ))
            .on_conflict((r::company, r::conversation, r::user_id))
            .do_update()
            .set(r::seq.eq(diesel::dsl::sql::<diesel::sql_types::BigInt>(larger)))
            .execute(db)
    })?;
    Ok(())
}

/// A reader's position in a conversation (0 before reading anything).
pub fn read_position(
    conn: &mut DbConn,
    company: &str,
    conversation: &str,
    user: &str,
) -> QueryResult<i64> {
    use crate::db::schema::read_positions::dsl as r;
    let position: Option<i64> = on_backend!(conn, db => {
        r::read_positions
            .filter(r::company.eq(company))
            .filter(r::conversation.eq(conversation))
            .filter(r::user_id.eq(user))
            .select(r::seq)
            .first(db)
            .optional()
    })?;
    Ok(position.unwrap_or(0))
}

/// Marks a conversation read up to `seq` (at most its newest message); returns the position
/// kept (never lower than before) and how many of the others' messages are still unread.
pub fn mark_read(
    conn: &mut DbConn,
    company: &str,
    conversation: &str,
    user: &str,
    seq: i64,
) -> QueryResult<(i64, i64)> {
    super::write(conn, |conn| {
        let newest = find(conn, company, conversation)?.map_or(0, |c| c.last_seq);
        let seq = seq.clamp(0, newest);
        if seq > 0 {
            advance_read(conn, company, conversation, user, seq)?;
        }
        let kept = read_position(conn, company, conversation, user)?;
        Ok((kept, unread(conn, company, conversation, user, kept)?))
    })
}

/// The others' messages after `position`.
pub fn unread(
    conn: &mut DbConn,
    company: &str,
    conversation: &str,
    user: &str,
    position: i64,
) -> QueryResult<i64> {
    use crate::db::schema::messages::dsl as m;
    on_backend!(conn, db => {
        m::messages
            .filter(m::company.eq(company))
            .filter(m::conversation.eq(conversation))
            .filter(m::seq.gt(position))
            .filter(m::sender_id.ne(user))
            .count()
            .get_result(db)
    })
}

pub fn find(conn: &mut DbConn, company: &str, id: &str) -> QueryResult<Option<Conversation>> {
    use crate::db::schema::conversations::dsl as c;
    on_backend!(conn, db => {
        c::conversations
            .filter(c::company.eq(company))
            .filter(c::id.eq(id))
            .select(Conversation::as_select())
            .first(db)
            .optional()
    })
}

/// Which page of a conversation's history.
#[derive(Debug, Clone, Copy)]
pub enum Page {
    /// The oldest messages after this seq (catching up).
    After(i64),
    /// The newest messages before this seq, or overall (scrolling back).
    Before(Option<i64>),
}

/// A page of history in ascending seq, and whether more exist beyond it in that direction.
pub fn history(
    conn: &mut DbConn,
    company: &str,
    conversation: &str,
    reader: &str,
    page: Page,
    direction: Direction,
    limit: i64,
) -> QueryResult<(Vec<MessageRow>, bool)> {
    let mut rows: Vec<MessageRow> = on_backend!(conn, db => {
        history_query!(company, conversation, reader, page, direction, limit).load(db)
    })?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    if matches!(page, Page::Before(_)) {
        rows.reverse();
    }
    Ok((rows, has_more))
}

/// Whose inbox: which conversations of the company a reader sees.
#[derive(Debug, Clone)]
pub enum Reader {
    /// A customer: their support conversation.
    Customer(String),
    /// Staff: every support conversation and their own direct ones.
    Staff(String),
    /// A service: everything.
    Service(String),
}

impl Reader {
    fn id(&self) -> &str {
        match self {
            Reader::Customer(id) | Reader::Staff(id) | Reader::Service(id) => id,
        }
    }
}

/// One inbox entry: the conversation, its newest message, the reader's unread count.
#[derive(Debug, Clone)]
pub struct InboxEntry {
    pub conversation: Conversation,
    pub last_message: Option<MessageRow>,
    pub unread: i64,
}

/// Where an inbox page starts: strictly older than `(last_message_at, id)`.
pub type InboxCursor = (i64, String);

/// A page of the inbox, latest activity first, and the cursor of the next page.
pub fn inbox(
    conn: &mut DbConn,
    company: &str,
    reader: &Reader,
    unread_only: bool,
    cursor: Option<&InboxCursor>,
    limit: i64,
) -> QueryResult<(Vec<InboxEntry>, Option<InboxCursor>)> {
    let mut rows: Vec<Conversation> = on_backend!(conn, db => {
        inbox_query!(company, reader, unread_only, cursor, limit).load(db)
    })?;
    let next = (rows.len() as i64 > limit).then(|| {
        rows.truncate(limit as usize);
        rows.last().map(|c| (c.last_message_at, c.id.clone()))
    });
    let reader_id = reader.id();
    let entries = rows
        .into_iter()
        .map(|conversation| entry(conn, conversation, reader_id))
        .collect::<QueryResult<Vec<_>>>()?;
    Ok((entries, next.flatten()))
}

fn entry(conn: &mut DbConn, conversation: Conversation, reader: &str) -> QueryResult<InboxEntry> {
    use crate::db::schema::messages::dsl as m;
    let last_message = on_backend!(conn, db => {
        m::messages
            .filter(m::company.eq(&conversation.company))
            .filter(m::conversation.eq(&conversation.id))
            .filter(m::seq.eq(conversation.last_seq))
            .select(MessageRow::as_select())
            .first(db)
            .optional()
    })?;
    let position = read_position(conn, &conversation.company, &conversation.id, reader)?;
    let unread = unread(conn, &conversation.company, &conversation.id, reader, position)?;
    Ok(InboxEntry { conversation, last_message, unread })
}

diesel::define_sql_function! {
    /// SQL's `COALESCE` for a missing read position.
    fn coalesce(value: diesel::sql_types::Nullable<diesel::sql_types::BigInt>, default: diesel::sql_types::BigInt) -> diesel::sql_types::BigInt;
}

/// Deletes messages sent before `cutoff` (unix ms); returns how many.
pub fn delete_older_than(conn: &mut DbConn, cutoff: i64) -> QueryResult<usize> {
    use crate::db::schema::messages::dsl as m;
    on_backend!(conn, db => diesel::delete(m::messages.filter(m::sent_at.lt(cutoff))).execute(db))
}

#[cfg(test)]
mod tests {
    use diesel::sql_types::Text;

    use diesel::sqlite::Sqlite;

    use super::*;
    use crate::config::{DatabaseUrl, Synchronous};
    use crate::db::schema::{conversations, messages};

    #[derive(QueryableByName)]
    struct PlanStep {
        #[diesel(sql_type = Text)]
        detail: String,
    }

    /// SQLite's plan for a query, one step a line.
    fn plan(
        conn: &mut diesel::SqliteConnection,
        query: &impl diesel::query_builder::QueryFragment<Sqlite>,
    ) -> Vec<String> {
        let sql = diesel::debug_query::<Sqlite, _>(query).to_string();
        let sql = sql.split(" -- binds").next().unwrap_or_default();
        diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
            .load::<PlanStep>(conn)
            .unwrap()
            .into_iter()
            .map(|step| step.detail)
            .collect()
    }

    /// A step that reads a table row by row, not through an index.
    fn full_scans(plan: &[String]) -> Vec<&String> {
        plan.iter().filter(|s| s.starts_with("SCAN") && !s.contains("USING")).collect()
    }

    #[test]
    fn the_inbox_and_a_history_page_are_served_by_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let url: DatabaseUrl = format!("sqlite://{}/t.db", dir.path().display()).parse().unwrap();
        let pool = crate::db::connect(&url, Synchronous::Full).unwrap();
        crate::db::migrate(&pool).unwrap();
        let DbConn::Sqlite(mut conn) = pool.get().unwrap() else { unreachable!("sqlite") };
        let cursor = (1_000, "support:x".to_owned());
        for reader in
            [Reader::Staff("ann".into()), Reader::Customer("g".into()), Reader::Service("s".into())]
        {
            for unread in [false, true] {
                let query: conversations::BoxedQuery<'_, Sqlite> =
                    inbox_query!("acme", &reader, unread, Some(&cursor), 50);
                let steps = plan(&mut conn, &query);
                assert!(full_scans(&steps).is_empty(), "{reader:?} unread={unread}: {steps:?}");
                assert!(steps.iter().any(|s| s.contains("conversations_inbox")), "{steps:?}");
            }
        }
        for page in [Page::After(10), Page::Before(Some(10)), Page::Before(None)] {
            for direction in [Direction::All, Direction::Sent] {
                let query: messages::BoxedQuery<'_, Sqlite> =
                    history_query!("acme", "support:g", "g", page, direction, 50);
                let steps = plan(&mut conn, &query);
                assert!(full_scans(&steps).is_empty(), "{page:?}: {steps:?}");
                // The primary key's index (SQLite's automatic one for a composite key).
                let by_key = "SEARCH messages USING INDEX sqlite_autoindex_messages_1 (company=? AND conversation=?";
                assert!(steps.iter().any(|s| s.starts_with(by_key)), "{steps:?}");
            }
        }
    }
}

//! Moving a whole store from one database to another — an embedded SQLite
//! install to PostgreSQL, or back (a backup, a restore) — and the schema
//! version a database is at ([`migrate`]).
//!
//! It owns [`copy`]: both databases are opened (so both are migrated to
//! this version's schema), the target must be empty, and then every table
//! of [`TABLES`], in that order (a row's references before it), is read in
//! batches in primary-key order from one read snapshot of the source and
//! written with the same values — ids included — one transaction per
//! batch. Columns are matched by name and converted by the type each side
//! declares (SQLite's `INTEGER` 0/1 to PostgreSQL's `BOOLEAN` and back;
//! times, ids, text and bytes as they are), so a column a migration adds
//! is copied without a change here; a table a migration adds must be
//! placed in [`TABLES`], and until it is the copy refuses to start. After
//! the rows, the target's id generators (PostgreSQL sequences, SQLite's
//! `sqlite_sequence`) are set past every copied id and past any the source
//! had already handed out. Then it checks: row counts per table, and the
//! audit chain read back through [`Store::audit_records`] on both sides,
//! which must verify and end at the same head.
//!
//! It does not stop the server that uses the source (the copy reads one
//! snapshot, but anything written after it is not copied: stop the server
//! first), merge into a database that holds data, or change either
//! schema beyond the migrations every open applies. Printing is the
//! caller's: it gets progress through a callback and a [`CopyReport`].

use std::collections::BTreeSet;

use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Postgres, QueryBuilder, Row, Sqlite, Transaction};

use crate::{
    AuditVerification, PostgresStore, SqliteStore, Store, StoreError, verify_audit,
    without_password,
};

/// Every table of the schema, in the order a copy writes them: a table
/// after those its rows refer to. (`_sqlx_migrations` is each database's
/// own; SQLite's `sqlite_*` tables are its internals.)
pub const TABLES: &[&str] = &[
    "executions",
    "output_chunks",
    "artifacts",
    "workflow_runs",
    "approvals",
    "catalog_versions",
    "audit_log",
    "offline_runs",
    "api_tokens",
    "chat_links",
    "chat_link_codes",
    "chat_deliveries",
    "alerts",
    "alert_groups",
    "alert_notification_log",
    "alert_deliveries",
    "silences",
    "alert_acks",
    "alert_escalations",
    "alert_automations",
    "alert_chat_cards",
    "schedule_ticks",
    "hook_deliveries",
    "leases",
    "door_states",
];

/// Rows per batch (fewer when a table has many columns, so a batch stays
/// within the databases' limit of bound values).
const BATCH_ROWS: usize = 1000;

/// Rows per batch of a table with bytes (artifacts: images), so a batch
/// stays a few megabytes.
const BATCH_ROWS_WITH_BYTES: usize = 50;

/// Bound values per statement at most (SQLite allows 32766, PostgreSQL 65535).
const MAX_BINDS: usize = 30_000;

/// The migrations applied to a database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaVersion {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The newest migration applied (its number), 0 when none.
    pub version: i64,
    /// Its description (`hook deliveries`).
    pub description: String,
    /// How many migrations are applied.
    pub applied: i64,
}

/// One side of a copy.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    /// The URL, its password masked.
    pub url: String,
    pub schema: SchemaVersion,
}

/// One table copied.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub table: String,
    /// Rows in the source's snapshot.
    pub source_rows: u64,
    pub read: u64,
    pub written: u64,
    /// Rows in the target after the copy.
    pub target_rows: u64,
    /// The next id the target hands out, for a table with generated ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_id: Option<i64>,
}

impl TableReport {
    /// Whether nothing was lost or added.
    pub fn matches(&self) -> bool {
        self.source_rows == self.read
            && self.read == self.written
            && self.written == self.target_rows
    }
}

/// What a copy did and found.
#[derive(Debug, Clone, Serialize)]
pub struct CopyReport {
    pub source: Endpoint,
    pub target: Endpoint,
    pub tables: Vec<TableReport>,
    pub source_audit: AuditVerification,
    pub target_audit: AuditVerification,
}

impl CopyReport {
    /// Every table's counts agree.
    pub fn counts_match(&self) -> bool {
        self.tables.iter().all(TableReport::matches)
    }

    /// Both chains verify, with the same records and head.
    pub fn audit_matches(&self) -> bool {
        self.source_audit.intact() && self.source_audit == self.target_audit
    }

    /// Nothing was lost: counts and the audit chain agree.
    pub fn ok(&self) -> bool {
        self.counts_match() && self.audit_matches()
    }
}

/// Opens the store at `url`, which applies the migrations it lacks, and
/// tells which migrations it now has.
pub async fn migrate(url: &str) -> Result<SchemaVersion, StoreError> {
    Backend::open(url).await?.schema_version().await
}

/// Copies everything in the store at `from_url` into the empty store at
/// `to_url` (see the module's documentation), calling `progress(table,
/// rows copied, rows in all)` as each table starts and after each batch.
/// Refuses a target that holds any row; the report tells whether the
/// counts and the audit chain agree.
pub async fn copy(
    from_url: &str,
    to_url: &str,
    mut progress: impl FnMut(&str, u64, u64),
) -> Result<CopyReport, StoreError> {
    let source = Backend::open_side(from_url, "source").await?;
    let target = Backend::open_side(to_url, "target").await?;
    let target_name = without_password(to_url);

    check_tables(&source.tables().await?, "source")?;
    check_tables(&target.tables().await?, "target")?;
    let mut plans = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        plans.push(Plan::new(
            table,
            source.columns(table).await?,
            target.columns(table).await?,
        )?);
    }

    let mut held = Vec::new();
    for table in TABLES {
        let n = target.count(table).await?;
        if n > 0 {
            held.push(((*table).to_owned(), n));
        }
    }
    if !held.is_empty() {
        return Err(StoreError::TargetNotEmpty {
            target: target_name,
            tables: held,
        });
    }

    let mut tables = copy_rows(&source, &target, &plans, &mut progress)
        .await
        .map_err(|e| {
            StoreError::Copy(format!(
                "{e}; the target {target_name} may now be partly filled: empty it (drop and \
                 create the database, or delete the file) before copying again"
            ))
        })?;

    for (plan, report) in plans.iter().zip(&mut tables) {
        if let Some(id) = plan.id_column() {
            let used = source.last_id_used(plan.table, id).await?;
            report.next_id = target.set_next_id(plan.table, id, used).await?;
        }
        report.target_rows = target.count(plan.table).await?;
    }

    Ok(CopyReport {
        source: Endpoint {
            url: without_password(from_url),
            schema: source.schema_version().await?,
        },
        target: Endpoint {
            url: target_name,
            schema: target.schema_version().await?,
        },
        tables,
        source_audit: verify_audit(source.store()).await?,
        target_audit: verify_audit(target.store()).await?,
    })
}

/// Copies every table's rows from one snapshot of the source; reports
/// what it read and wrote.
async fn copy_rows(
    source: &Backend,
    target: &Backend,
    plans: &[Plan],
    progress: &mut impl FnMut(&str, u64, u64),
) -> Result<Vec<TableReport>, StoreError> {
    let mut tables = Vec::with_capacity(plans.len());
    let mut snapshot = source.snapshot().await?;
    for plan in plans {
        let total = snapshot.count(plan.table).await?;
        progress(plan.table, 0, total);
        let (mut read, mut written) = (0u64, 0u64);
        let mut after: Option<Vec<Value>> = None;
        let at = |e: StoreError| StoreError::Copy(format!("table {}: {e}", plan.table));
        loop {
            let rows = snapshot.page(plan, after.as_deref()).await.map_err(at)?;
            let n = rows.len();
            if n == 0 {
                break;
            }
            read += n as u64;
            after = rows
                .last()
                .map(|row| plan.keys.iter().map(|&k| row[k].clone()).collect());
            let rows = rows
                .into_iter()
                .map(|row| plan.convert(row))
                .collect::<Result<Vec<_>, _>>()?;
            written += target.write(plan, rows).await.map_err(at)?;
            progress(plan.table, written, total);
            if n < plan.batch {
                break;
            }
        }
        tables.push(TableReport {
            table: plan.table.to_owned(),
            source_rows: total,
            read,
            written,
            target_rows: 0,
            next_id: None,
        });
    }
    snapshot.end().await?;
    Ok(tables)
}

/// Refuses a schema with tables the copy does not know, or without some
/// it does.
fn check_tables(found: &[String], side: &str) -> Result<(), StoreError> {
    let found: BTreeSet<&str> = found.iter().map(String::as_str).collect();
    let known: BTreeSet<&str> = TABLES.iter().copied().collect();
    let unknown: Vec<&str> = found.difference(&known).copied().collect();
    if !unknown.is_empty() {
        return Err(StoreError::Copy(format!(
            "the {side} has tables this version does not know how to copy: {} \
             (is it from a newer version?)",
            unknown.join(", ")
        )));
    }
    let missing: Vec<&str> = known.difference(&found).copied().collect();
    if !missing.is_empty() {
        return Err(StoreError::Copy(format!(
            "the {side} lacks the tables {}",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// How a column's values are read and bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Bool,
    Text,
    Bytes,
}

/// One value, typed even when null (PostgreSQL wants a typed null).
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Int(Option<i64>),
    Bool(Option<bool>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

/// A column as one database declares it.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    kind: Kind,
    /// Its place in the primary key.
    key: Option<usize>,
}

/// How one table is copied: the source's columns, what each becomes in
/// the target, and the key order.
#[derive(Debug)]
struct Plan {
    table: &'static str,
    source: Vec<Column>,
    /// The target's kind of each source column, in the same order.
    target: Vec<Kind>,
    /// Indexes into `source` of the primary key's columns, in key order.
    keys: Vec<usize>,
    batch: usize,
}

impl Plan {
    fn new(
        table: &'static str,
        source: Vec<Column>,
        target: Vec<Column>,
    ) -> Result<Self, StoreError> {
        let names =
            |cols: &[Column]| -> BTreeSet<String> { cols.iter().map(|c| c.name.clone()).collect() };
        if names(&source) != names(&target) {
            let (s, t) = (names(&source), names(&target));
            let only = |a: &BTreeSet<String>, b: &BTreeSet<String>| {
                a.difference(b).cloned().collect::<Vec<_>>().join(", ")
            };
            return Err(StoreError::Copy(format!(
                "table {table} differs: only in the source: [{}]; only in the target: [{}]",
                only(&s, &t),
                only(&t, &s)
            )));
        }
        let mut kinds = Vec::with_capacity(source.len());
        for column in &source {
            let Some(to) = target.iter().find(|c| c.name == column.name) else {
                continue;
            };
            if column.kind != to.kind
                && !matches!(
                    (column.kind, to.kind),
                    (Kind::Int, Kind::Bool) | (Kind::Bool, Kind::Int)
                )
            {
                return Err(StoreError::Copy(format!(
                    "column {table}.{} is {:?} in the source but {:?} in the target",
                    column.name, column.kind, to.kind
                )));
            }
            kinds.push(to.kind);
        }
        let mut keys: Vec<(usize, usize)> = source
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.key.map(|k| (k, i)))
            .collect();
        keys.sort_unstable();
        let keys: Vec<usize> = keys.into_iter().map(|(_, i)| i).collect();
        if keys.is_empty() {
            return Err(StoreError::Copy(format!(
                "table {table} has no primary key in the source"
            )));
        }
        let batch = if source.iter().any(|c| c.kind == Kind::Bytes) {
            BATCH_ROWS_WITH_BYTES
        } else {
            BATCH_ROWS.min(MAX_BINDS / source.len().max(1))
        };
        Ok(Self {
            table,
            source,
            target: kinds,
            keys,
            batch,
        })
    }

    /// The column of a one-column integer key: where generated ids live.
    fn id_column(&self) -> Option<&str> {
        match self.keys.as_slice() {
            [k] if self.source[*k].kind == Kind::Int => Some(&self.source[*k].name),
            _ => None,
        }
    }

    fn column_list(&self) -> String {
        self.source
            .iter()
            .map(|c| quote(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn key_list(&self) -> String {
        self.keys
            .iter()
            .map(|&k| quote(&self.source[k].name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A source row as the target takes it.
    fn convert(&self, row: Vec<Value>) -> Result<Vec<Value>, StoreError> {
        row.into_iter()
            .zip(&self.target)
            .zip(&self.source)
            .map(|((value, &kind), column)| {
                convert(value, kind).ok_or_else(|| {
                    StoreError::Copy(format!(
                        "a value of {}.{} is not a boolean (0 or 1)",
                        self.table, column.name
                    ))
                })
            })
            .collect()
    }
}

/// A value as a column of `kind` takes it; `None` when it cannot.
fn convert(value: Value, kind: Kind) -> Option<Value> {
    Some(match (value, kind) {
        (Value::Int(v), Kind::Bool) => Value::Bool(match v {
            None => None,
            Some(0) => Some(false),
            Some(1) => Some(true),
            Some(_) => return None,
        }),
        (Value::Bool(v), Kind::Int) => Value::Int(v.map(i64::from)),
        (value, _) => value,
    })
}

/// An identifier, quoted for both dialects.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Binds a [`Value`] to a query builder or one of its separated lists.
macro_rules! bind {
    ($builder:expr, $value:expr) => {
        match $value {
            Value::Int(v) => $builder.push_bind(v),
            Value::Bool(v) => $builder.push_bind(v),
            Value::Text(v) => $builder.push_bind(v),
            Value::Bytes(v) => $builder.push_bind(v),
        }
    };
}

/// Reads a row's columns by their kinds.
macro_rules! decode {
    ($row:expr, $columns:expr) => {
        $columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Ok(match c.kind {
                    Kind::Int => Value::Int($row.try_get(i)?),
                    Kind::Bool => Value::Bool($row.try_get(i)?),
                    Kind::Text => Value::Text($row.try_get(i)?),
                    Kind::Bytes => Value::Bytes($row.try_get(i)?),
                })
            })
            .collect::<Result<Vec<Value>, sqlx::Error>>()
    };
}

/// The statement reading one batch after the key `after`, in key order.
macro_rules! page_query {
    ($db:ty, $plan:expr, $after:expr) => {{
        let plan = $plan;
        let mut q = QueryBuilder::<$db>::new(format!(
            "SELECT {} FROM {} ",
            plan.column_list(),
            quote(plan.table)
        ));
        if let Some(after) = $after {
            q.push(format!("WHERE ({}) > (", plan.key_list()));
            let mut values = q.separated(", ");
            for value in after {
                bind!(values, value.clone());
            }
            q.push(") ");
        }
        q.push(format!("ORDER BY {} LIMIT {}", plan.key_list(), plan.batch));
        q
    }};
}

/// The statement writing one batch.
macro_rules! insert_query {
    ($db:ty, $plan:expr, $rows:expr) => {{
        let plan = $plan;
        let mut q = QueryBuilder::<$db>::new(format!(
            "INSERT INTO {} ({}) ",
            quote(plan.table),
            plan.column_list()
        ));
        q.push_values($rows, |mut b, row| {
            for value in row {
                bind!(b, value);
            }
        });
        q
    }};
}

/// An open store, with what the copy needs of its database.
enum Backend {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// A read snapshot of the source: everything is read from one transaction.
enum Snapshot {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Backend {
    async fn open(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(SqliteStore::open(url).await?))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(PostgresStore::open(url).await?))
        } else {
            Err(StoreError::UnsupportedUrl(without_password(url)))
        }
    }

    /// Opens one side of a copy; a failure names the side.
    async fn open_side(url: &str, side: &str) -> Result<Self, StoreError> {
        match Self::open(url).await {
            Err(e @ StoreError::UnsupportedUrl(_)) => Err(e),
            Err(e) => Err(StoreError::Copy(format!(
                "cannot open the {side} {}: {e}",
                without_password(url)
            ))),
            ok => ok,
        }
    }

    fn store(&self) -> &dyn Store {
        match self {
            Self::Sqlite(s) => s,
            Self::Postgres(s) => s,
        }
    }

    async fn schema_version(&self) -> Result<SchemaVersion, StoreError> {
        const LAST: &str = "SELECT version, description FROM _sqlx_migrations \
                            WHERE success ORDER BY version DESC LIMIT 1";
        const COUNT: &str = "SELECT COUNT(*) FROM _sqlx_migrations WHERE success";
        let (backend, last, applied): (_, Option<(i64, String)>, i64) = match self {
            Self::Sqlite(s) => {
                let pool = s.pools().0;
                let last = sqlx::query_as(LAST).fetch_optional(pool).await?;
                let applied = sqlx::query_scalar(COUNT).fetch_one(pool).await?;
                ("sqlite", last, applied)
            }
            Self::Postgres(s) => {
                let pool = s.pool();
                let last = sqlx::query_as(LAST).fetch_optional(pool).await?;
                let applied = sqlx::query_scalar(COUNT).fetch_one(pool).await?;
                ("postgres", last, applied)
            }
        };
        let (version, description) = last.unwrap_or_default();
        Ok(SchemaVersion {
            backend,
            version,
            description,
            applied,
        })
    }

    /// The tables of the schema, but the migrator's and SQLite's own.
    async fn tables(&self) -> Result<Vec<String>, StoreError> {
        Ok(match self {
            Self::Sqlite(s) => {
                sqlx::query_scalar(
                    "SELECT name FROM sqlite_master WHERE type = 'table' \
                     AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> '_sqlx_migrations'",
                )
                .fetch_all(s.pools().1)
                .await?
            }
            Self::Postgres(s) => {
                sqlx::query_scalar(
                    "SELECT table_name::text FROM information_schema.tables \
                     WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
                     AND table_name <> '_sqlx_migrations'",
                )
                .fetch_all(s.pool())
                .await?
            }
        })
    }

    /// A table's columns, with their kinds and primary key.
    async fn columns(&self, table: &str) -> Result<Vec<Column>, StoreError> {
        let unsupported = |column: &str, declared: &str| {
            StoreError::Copy(format!(
                "column {table}.{column} has the type `{declared}`, which the copy does not know"
            ))
        };
        match self {
            Self::Sqlite(s) => {
                let rows: Vec<(String, String, i64)> =
                    sqlx::query_as("SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid")
                        .bind(table)
                        .fetch_all(s.pools().1)
                        .await?;
                rows.into_iter()
                    .map(|(name, declared, pk)| {
                        let upper = declared.to_ascii_uppercase();
                        // SQLite's rules of type affinity; booleans are integers.
                        let kind = if upper.contains("INT") || upper.contains("BOOL") {
                            Kind::Int
                        } else if ["CHAR", "CLOB", "TEXT"].iter().any(|t| upper.contains(t)) {
                            Kind::Text
                        } else if upper.contains("BLOB") {
                            Kind::Bytes
                        } else {
                            return Err(unsupported(&name, &declared));
                        };
                        let key = usize::try_from(pk).ok().filter(|&k| k > 0);
                        Ok(Column { name, kind, key })
                    })
                    .collect()
            }
            Self::Postgres(s) => {
                let rows: Vec<(String, String, Option<i32>)> = sqlx::query_as(
                    "SELECT c.column_name::text, c.data_type::text, \
                            (SELECT array_position(i.indkey::int2[], a.attnum)::int4 \
                               FROM pg_index i JOIN pg_attribute a \
                                 ON a.attrelid = i.indrelid AND a.attname = c.column_name \
                              WHERE i.indrelid = to_regclass(quote_ident(c.table_schema) \
                                                 || '.' || quote_ident(c.table_name)) \
                                AND i.indisprimary) \
                       FROM information_schema.columns c \
                      WHERE c.table_schema = current_schema() AND c.table_name = $1 \
                      ORDER BY c.ordinal_position",
                )
                .bind(table)
                .fetch_all(s.pool())
                .await?;
                rows.into_iter()
                    .map(|(name, declared, key)| {
                        let kind = match declared.as_str() {
                            "bigint" => Kind::Int,
                            "boolean" => Kind::Bool,
                            "text" | "character varying" => Kind::Text,
                            "bytea" => Kind::Bytes,
                            _ => return Err(unsupported(&name, &declared)),
                        };
                        let key = key.and_then(|k| usize::try_from(k).ok());
                        Ok(Column { name, kind, key })
                    })
                    .collect()
            }
        }
    }

    async fn count(&self, table: &str) -> Result<u64, StoreError> {
        let sql = AssertSqlSafe(format!("SELECT COUNT(*) FROM {}", quote(table)));
        let n: i64 = match self {
            Self::Sqlite(s) => sqlx::query_scalar(sql).fetch_one(s.pools().0).await?,
            Self::Postgres(s) => sqlx::query_scalar(sql).fetch_one(s.pool()).await?,
        };
        Ok(u64::try_from(n).unwrap_or_default())
    }

    /// Starts the read snapshot everything is copied from.
    async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        Ok(match self {
            // A read transaction in WAL mode sees the database as of its
            // first read, whatever is written after.
            Self::Sqlite(s) => Snapshot::Sqlite(s.pools().1.begin().await?),
            Self::Postgres(s) => {
                let mut tx = s.pool().begin().await?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *tx)
                    .await?;
                Snapshot::Postgres(tx)
            }
        })
    }

    /// Writes one batch in one transaction; returns the rows written.
    async fn write(&self, plan: &Plan, rows: Vec<Vec<Value>>) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        Ok(match self {
            Self::Sqlite(s) => {
                let mut tx = s.pools().0.begin().await?;
                let done = insert_query!(Sqlite, plan, rows)
                    .build()
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                done.rows_affected()
            }
            Self::Postgres(s) => {
                let mut tx = s.pool().begin().await?;
                let done = insert_query!(Postgres, plan, rows)
                    .build()
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                done.rows_affected()
            }
        })
    }

    /// The last id a table's generator handed out (even if its row is
    /// gone), when it has a generator that did.
    async fn last_id_used(&self, table: &str, column: &str) -> Result<Option<i64>, StoreError> {
        Ok(match self {
            Self::Sqlite(s) => {
                let pool = s.pools().1;
                let has_sequence: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence')",
                )
                .fetch_one(pool)
                .await?;
                if !has_sequence {
                    return Ok(None);
                }
                sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = ?")
                    .bind(table)
                    .fetch_optional(pool)
                    .await?
            }
            Self::Postgres(s) => {
                sqlx::query_scalar(
                    "SELECT pg_sequence_last_value(pg_get_serial_sequence($1, $2)::regclass)",
                )
                .bind(quote(table))
                .bind(column)
                .fetch_one(s.pool())
                .await?
            }
        })
    }

    /// Sets a table's id generator past its rows' ids and past `used`;
    /// returns the next id it hands out, `None` when it has no generator.
    async fn set_next_id(
        &self,
        table: &str,
        column: &str,
        used: Option<i64>,
    ) -> Result<Option<i64>, StoreError> {
        let max = AssertSqlSafe(format!(
            "SELECT MAX({}) FROM {}",
            quote(column),
            quote(table)
        ));
        match self {
            Self::Sqlite(s) => {
                let pool = s.pools().0;
                let max: Option<i64> = sqlx::query_scalar(max).fetch_one(pool).await?;
                let last = max.max(used).unwrap_or(0);
                let autoincrement: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' \
                     AND name = ? AND sql LIKE '%AUTOINCREMENT%')",
                )
                .bind(table)
                .fetch_one(pool)
                .await?;
                if !autoincrement {
                    // A plain integer key: given by the caller, or the
                    // largest plus one, which SQLite finds by itself.
                    return Ok(None);
                }
                let mut tx = pool.begin().await?;
                let updated =
                    sqlx::query("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = ?")
                        .bind(last)
                        .bind(table)
                        .execute(&mut *tx)
                        .await?;
                if updated.rows_affected() == 0 {
                    sqlx::query("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)")
                        .bind(table)
                        .bind(last)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(Some(last + 1))
            }
            Self::Postgres(s) => {
                let pool = s.pool();
                let sequence: Option<String> =
                    sqlx::query_scalar("SELECT pg_get_serial_sequence($1, $2)")
                        .bind(quote(table))
                        .bind(column)
                        .fetch_one(pool)
                        .await?;
                let Some(sequence) = sequence else {
                    return Ok(None);
                };
                let max: Option<i64> = sqlx::query_scalar(max).fetch_one(pool).await?;
                let last = max.max(used).unwrap_or(0);
                if last > 0 {
                    sqlx::query("SELECT setval($1::regclass, $2, true)")
                        .bind(&sequence)
                        .bind(last)
                        .execute(pool)
                        .await?;
                }
                Ok(Some(last + 1))
            }
        }
    }
}

impl Snapshot {
    async fn count(&mut self, table: &str) -> Result<u64, StoreError> {
        let sql = AssertSqlSafe(format!("SELECT COUNT(*) FROM {}", quote(table)));
        let n: i64 = match self {
            Self::Sqlite(tx) => sqlx::query_scalar(sql).fetch_one(&mut **tx).await?,
            Self::Postgres(tx) => sqlx::query_scalar(sql).fetch_one(&mut **tx).await?,
        };
        Ok(u64::try_from(n).unwrap_or_default())
    }

    /// The next batch of rows after the key `after`, in key order.
    async fn page(
        &mut self,
        plan: &Plan,
        after: Option<&[Value]>,
    ) -> Result<Vec<Vec<Value>>, StoreError> {
        Ok(match self {
            Self::Sqlite(tx) => {
                let rows: Vec<SqliteRow> = page_query!(Sqlite, plan, after)
                    .build()
                    .fetch_all(&mut **tx)
                    .await?;
                rows.iter()
                    .map(|row| decode!(row, plan.source))
                    .collect::<Result<_, _>>()?
            }
            Self::Postgres(tx) => {
                let rows: Vec<PgRow> = page_query!(Postgres, plan, after)
                    .build()
                    .fetch_all(&mut **tx)
                    .await?;
                rows.iter()
                    .map(|row| decode!(row, plan.source))
                    .collect::<Result<_, _>>()?
            }
        })
    }

    /// Ends the read transaction (it changed nothing).
    async fn end(self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(tx) => tx.rollback().await?,
            Self::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly on the unexpected")]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_table_of_the_sqlite_schema_is_known_to_the_copy() {
        let store = Backend::open("sqlite::memory:").await.unwrap();
        let tables = store.tables().await.unwrap();
        check_tables(&tables, "source").unwrap();
        for table in TABLES {
            let columns = store.columns(table).await.unwrap();
            Plan::new(table, columns.clone(), columns).unwrap();
        }
    }

    #[test]
    fn booleans_cross_between_integer_and_boolean_columns() {
        assert_eq!(
            convert(Value::Int(Some(1)), Kind::Bool),
            Some(Value::Bool(Some(true)))
        );
        assert_eq!(
            convert(Value::Int(None), Kind::Bool),
            Some(Value::Bool(None))
        );
        assert_eq!(convert(Value::Int(Some(2)), Kind::Bool), None);
        assert_eq!(
            convert(Value::Bool(Some(false)), Kind::Int),
            Some(Value::Int(Some(0)))
        );
        assert_eq!(
            convert(Value::Text(Some("x".into())), Kind::Text),
            Some(Value::Text(Some("x".into())))
        );
    }
}

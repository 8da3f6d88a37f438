//! The environment: opening, table handles, schema check.

use crate::{
    error::{StorageError, StorageResult},
    reader::Reader,
    stats::{DbStats, TableStats},
    tables::{TABLE_COUNT, Table, meta_keys},
    writer::BlockWriter,
};
use signet_libmdbx::{
    DatabaseFlags, Environment, EnvironmentFlags, Geometry, MdbxError, Mode, SyncMode,
    TransactionKind, WriteFlags,
    tx::{Tx, aliases::RwTxSync},
};
use std::{
    borrow::Cow,
    path::{Path, PathBuf},
    sync::Arc,
};

/// Version of the table layout. Bump on any incompatible change of a key or
/// value encoding; [`Database::open`] refuses a database with another version.
pub const SCHEMA_VERSION: u64 = 2;

/// Name of MDBX's data file inside the database directory.
pub const DATA_FILE_NAME: &str = "mdbx.dat";

/// Upper bound of the memory map, in bytes (4 TiB; MDBX's limit with 4 KiB
/// pages is 8 TiB). The file only grows as data arrives.
pub const MAX_MAP_SIZE_BYTES: usize = 4 << 40;
/// How much the data file grows at a time, in bytes (256 MiB).
pub const GROWTH_STEP_BYTES: isize = 256 << 20;
/// Maximum number of concurrent read transactions (reader slots).
pub const MAX_READERS: u64 = 4096;
/// Longest accepted key of the `Meta` table, in bytes.
pub const MAX_META_KEY_BYTES: usize = 64;
/// Largest value accepted by any table, in bytes (1 GiB; MDBX's hard limit is
/// just under 2 GiB and exceeding it aborts the process).
pub const MAX_VALUE_BYTES: usize = 1 << 30;
/// MDBX's hard limit on a value, in bytes (`MDBX_MAXDATASIZE`).
const MDBX_MAX_DATA_BYTES: usize = 0x7fff_0000;

const _: () = assert!(MAX_VALUE_BYTES < MDBX_MAX_DATA_BYTES);
const _: () = assert!(GROWTH_STEP_BYTES > 0 && (GROWTH_STEP_BYTES as usize) < MAX_MAP_SIZE_BYTES);

/// Opened handles (DBIs) of every table, indexed by [`Table::index`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tables([signet_libmdbx::Database; TABLE_COUNT]);

impl Tables {
    #[inline]
    pub(crate) fn get(&self, table: Table) -> signet_libmdbx::Database {
        self.0[table.index()]
    }
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) env: Environment,
    pub(crate) tables: Tables,
    /// The database directory (for the data file's size in [`Database::stats`]).
    pub(crate) path: PathBuf,
}

/// The node's database: an MDBX environment with every table of
/// [`crate::tables::Table`] opened. Cheap to clone (an `Arc`), `Send + Sync`.
///
/// Any number of [`Reader`]s may be open at once; [`BlockWriter`]s are
/// serialised by MDBX (a second `writer()` blocks until the first ends).
#[derive(Clone, Debug)]
pub struct Database {
    inner: Arc<Inner>,
}

impl Database {
    /// Opens (creating if needed) the database in directory `path`.
    ///
    /// Commits are durable (`SyncMode::Durable`: data and meta pages are
    /// flushed before `commit` returns). Fails with
    /// [`StorageError::SchemaMismatch`] if the database was written with
    /// another [`SCHEMA_VERSION`].
    pub fn open(path: &Path) -> StorageResult<Self> {
        std::fs::create_dir_all(path).map_err(|source| StorageError::CreateDir {
            path: path.to_path_buf(),
            source,
        })?;
        let env = Environment::builder()
            // Write transactions modify pages in the map itself. Besides
            // being faster (no page copies), this keeps every value a read
            // returns inside the map: without it, libmdbx 0.13.7's
            // `mdbx_is_dirty` (which the bindings call on every borrowed
            // read in a write transaction) truncates the distance from the
            // map to a heap-allocated dirty page to a 32-bit page number and
            // can fail such a read with EINVAL when the heap lies a multiple
            // of 16 TiB above the map (seen with several environments open
            // at once, each reserving MAX_MAP_SIZE_BYTES).
            .write_map()
            .set_flags(EnvironmentFlags {
                // Flush data, then the meta page, on every commit.
                mode: Mode::ReadWrite {
                    sync_mode: SyncMode::Durable,
                },
                // State access is random: read-ahead only wastes page cache.
                no_rdahead: true,
                coalesce: true,
                ..Default::default()
            })
            .set_max_dbs(TABLE_COUNT)
            .set_max_readers(MAX_READERS)
            .set_geometry(Geometry {
                size: Some(0..MAX_MAP_SIZE_BYTES),
                growth_step: Some(GROWTH_STEP_BYTES),
                shrink_threshold: None,
                page_size: None,
            })
            .open(path)?;

        let tx = env.begin_rw_sync()?;
        let mut handles = [signet_libmdbx::Database::freelist_db(); TABLE_COUNT];
        for table in Table::ALL {
            handles[table.index()] = tx.create_db(Some(table.name()), DatabaseFlags::empty())?;
        }
        let tables = Tables(handles);
        let meta = tables.get(Table::Meta);
        let found: Option<Cow<'_, [u8]>> = tx.get(meta.dbi(), meta_keys::SCHEMA_VERSION)?;
        match found {
            Some(v) => {
                let found = crate::codec::decode_u64(Table::Meta, meta_keys::SCHEMA_VERSION, &v)?;
                if found != SCHEMA_VERSION {
                    return Err(StorageError::SchemaMismatch {
                        found,
                        expected: SCHEMA_VERSION,
                    });
                }
            }
            None => {
                tx.put(
                    meta,
                    meta_keys::SCHEMA_VERSION,
                    SCHEMA_VERSION.to_be_bytes(),
                    WriteFlags::empty(),
                )?;
            }
        }
        tx.commit()?;
        Ok(Self {
            inner: Arc::new(Inner {
                env,
                tables,
                path: path.to_path_buf(),
            }),
        })
    }

    /// Opens an existing database read-only, for operator tools.
    ///
    /// Creates nothing and writes nothing, so it is safe on a datadir a
    /// running node holds: MDBX lets other processes read concurrently (each
    /// [`Reader`] is a snapshot of the last commit). Fails with
    /// [`StorageError::NotADatabase`] when `path` holds no infera database
    /// and with [`StorageError::SchemaMismatch`] when another layout version
    /// wrote it. [`Database::writer`] fails on the returned handle.
    pub fn open_read_only(path: &Path) -> StorageResult<Self> {
        let not_a_database = |reason: String| StorageError::NotADatabase {
            path: path.to_path_buf(),
            reason,
        };
        if !path.join(DATA_FILE_NAME).is_file() {
            return Err(not_a_database(format!("no {DATA_FILE_NAME} file")));
        }
        let env = Environment::builder()
            .set_flags(EnvironmentFlags {
                mode: Mode::ReadOnly,
                no_rdahead: true,
                ..Default::default()
            })
            .set_max_dbs(TABLE_COUNT)
            .set_max_readers(MAX_READERS)
            .open(path)?;

        let tx = env.begin_ro_sync()?;
        let open_table = |table: Table| {
            tx.open_db(Some(table.name())).map_err(|e| match e {
                MdbxError::NotFound => not_a_database(format!("table {} is missing", table.name())),
                other => other.into(),
            })
        };
        // The layout version first: an older layout lacks newer tables, and
        // the operator should hear that it is older, not that it is broken.
        let meta = open_table(Table::Meta)?;
        let found: Option<Cow<'_, [u8]>> = tx.get(meta.dbi(), meta_keys::SCHEMA_VERSION)?;
        let found = found
            .map(|v| crate::codec::decode_u64(Table::Meta, meta_keys::SCHEMA_VERSION, &v))
            .transpose()?
            .ok_or_else(|| not_a_database("no schema version recorded".into()))?;
        if found != SCHEMA_VERSION {
            return Err(StorageError::SchemaMismatch {
                found,
                expected: SCHEMA_VERSION,
            });
        }
        let mut handles = [signet_libmdbx::Database::freelist_db(); TABLE_COUNT];
        for table in Table::ALL {
            handles[table.index()] = open_table(*table)?;
        }
        let tables = Tables(handles);
        // Committing (not aborting) a read transaction keeps the table
        // handles it opened valid for the environment's lifetime.
        tx.commit()?;
        Ok(Self {
            inner: Arc::new(Inner {
                env,
                tables,
                path: path.to_path_buf(),
            }),
        })
    }

    /// Opens a read transaction: a consistent snapshot of the last commit.
    ///
    /// Keep readers short-lived where possible: an open reader stops MDBX
    /// from reusing pages freed after its snapshot, so the file grows.
    pub fn reader(&self) -> StorageResult<Reader> {
        let tx = self.inner.env.begin_ro_sync()?;
        Ok(Reader::new(tx, self.inner.tables))
    }

    /// Opens the write transaction for one block. Dropping the writer
    /// without [`BlockWriter::commit`] discards everything it wrote.
    pub fn writer(&self) -> StorageResult<BlockWriter> {
        let tx = self.inner.env.begin_rw_sync()?;
        Ok(BlockWriter::new(tx, self.inner.tables))
    }

    /// The underlying MDBX environment (for statistics and tooling).
    pub fn env(&self) -> &Environment {
        &self.inner.env
    }

    /// Entries, pages and depth of every table, the data file's size and the
    /// head block number, all from one read snapshot. Cheap: MDBX keeps these
    /// counts in each table's header, nothing is walked.
    pub fn stats(&self) -> StorageResult<DbStats> {
        let tx = self.inner.env.begin_ro_sync()?;
        let page_size = self.inner.env.stat()?.page_size();
        let mut tables = Vec::with_capacity(TABLE_COUNT);
        for &table in Table::ALL {
            let stat = tx.db_stat(&self.inner.tables.get(table))?;
            tables.push(TableStats {
                table,
                entries: stat.entries() as u64,
                branch_pages: stat.branch_pages() as u64,
                leaf_pages: stat.leaf_pages() as u64,
                overflow_pages: stat.overflow_pages() as u64,
                depth: stat.depth(),
            });
        }
        let head_number =
            crate::reader::read_meta_u64(&tx, &self.inner.tables, meta_keys::HEAD_NUMBER)?;
        let data_file = self.inner.path.join(DATA_FILE_NAME);
        let file_size_bytes = std::fs::metadata(&data_file)
            .map_err(|source| StorageError::Io {
                path: data_file,
                source,
            })?
            .len();
        Ok(DbStats {
            page_size,
            tables,
            file_size_bytes,
            head_number,
        })
    }
}

/// Reads `key` of `table` as raw bytes (borrowed from the map where possible).
#[inline]
pub(crate) fn get_raw<'a, K: TransactionKind>(
    tx: &'a Tx<K>,
    tables: &Tables,
    table: Table,
    key: &[u8],
) -> StorageResult<Option<Cow<'a, [u8]>>> {
    Ok(tx.get(tables.get(table).dbi(), key)?)
}

/// Reads `key` of `table` and decodes it with `f`.
#[inline]
pub(crate) fn get_with<K: TransactionKind, T>(
    tx: &Tx<K>,
    tables: &Tables,
    table: Table,
    key: &[u8],
    f: impl FnOnce(&[u8]) -> StorageResult<T>,
) -> StorageResult<Option<T>> {
    match get_raw(tx, tables, table, key)? {
        Some(v) => f(&v).map(Some),
        None => Ok(None),
    }
}

/// Deletes every entry of `table` whose key starts with `prefix`, in key
/// order, handing each key and value to `visit` first. Returns how many went.
pub(crate) fn drain_prefix(
    tx: &RwTxSync,
    tables: &Tables,
    table: Table,
    prefix: &[u8],
    mut visit: impl FnMut(&[u8], &[u8]) -> StorageResult<()>,
) -> StorageResult<usize> {
    let mut cursor = tx.cursor(tables.get(table))?;
    let mut item = cursor.set_range::<Cow<'_, [u8]>, Cow<'_, [u8]>>(prefix)?;
    let mut drained = 0;
    while let Some((k, v)) = item {
        if !k.starts_with(prefix) {
            break;
        }
        visit(&k, &v)?;
        cursor.del()?;
        drained += 1;
        // After a delete MDBX's NEXT yields the entry that followed.
        item = cursor.next()?;
    }
    Ok(drained)
}

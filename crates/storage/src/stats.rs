//! Size statistics of the database, see [`crate::Database::stats`].

use crate::tables::Table;

/// MDBX's counts for one table (one B-tree).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableStats {
    /// The table.
    pub table: Table,
    /// Number of key/value pairs.
    pub entries: u64,
    /// Interior pages of the B-tree.
    pub branch_pages: u64,
    /// Leaf pages (keys and small values).
    pub leaf_pages: u64,
    /// Pages of values too large for a leaf page.
    pub overflow_pages: u64,
    /// Height of the B-tree (0 when empty).
    pub depth: u32,
}

impl TableStats {
    /// All pages of the table.
    pub const fn pages(&self) -> u64 {
        self.branch_pages + self.leaf_pages + self.overflow_pages
    }

    /// Bytes the table's pages take in the data file.
    pub const fn size_bytes(&self, page_size: u32) -> u64 {
        self.pages() * page_size as u64
    }
}

/// Statistics of the whole database, from one read snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbStats {
    /// MDBX page size, in bytes.
    pub page_size: u32,
    /// Every table of [`Table::ALL`], in that order.
    pub tables: Vec<TableStats>,
    /// Size of the data file on disk, in bytes (includes free pages and the
    /// growth reserve, so it is at least the sum of the tables' sizes).
    pub file_size_bytes: u64,
    /// Number of the canonical head block, `None` before genesis is written.
    pub head_number: Option<u64>,
}

impl DbStats {
    /// The statistics of one table.
    pub fn table(&self, table: Table) -> &TableStats {
        &self.tables[table.index()]
    }

    /// Entries of all tables.
    pub fn total_entries(&self) -> u64 {
        self.tables.iter().map(|t| t.entries).sum()
    }

    /// Pages of all tables.
    pub fn total_pages(&self) -> u64 {
        self.tables.iter().map(TableStats::pages).sum()
    }

    /// Bytes of all tables' pages.
    pub fn total_size_bytes(&self) -> u64 {
        self.total_pages() * u64::from(self.page_size)
    }
}

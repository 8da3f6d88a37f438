//! The environment's mapping mode. Without a write map, libmdbx keeps the
//! dirty pages of a write transaction on the heap, and its `mdbx_is_dirty`
//! (called by the bindings on every borrowed read in a write transaction)
//! can misjudge a heap page 16 TiB above the map: the conformance runner,
//! with a dozen environments open on 16 threads, failed 2 runs in 20 with
//! "invalid parameter" (EINVAL) that way (see `Database::open`). A
//! write-mapped environment has no heap pages, so that read cannot fail.

use infera_storage::Database;

#[test]
fn environments_are_write_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    assert!(db.env().is_write_map());
}

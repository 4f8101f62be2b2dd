//! Marathon's durable state behind one small key-value interface ([`KvStore`]), so the
//! ZooKeeper store of the HA work slots in beside the embedded redb file used now.
//!
//! Keys are plain strings (`framework-id`, `app/<id>`, `deployment/<uuid>`...); values are
//! the JSON the daemon writes. A batch is applied in one transaction: either all of it is on
//! disk or none of it.

use std::path::Path;

use redb::{Database, ReadableDatabase, TableDefinition};

/// Key -> value.
const ENTRIES: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("marathon_state");

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The embedded database failed.
    #[error("marathon store: {0}")]
    Db(#[from] redb::Error),
    /// The directory could not be created.
    #[error("marathon store: cannot create {path}: {source}")]
    Dir {
        /// The directory.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

fn db_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Db(e.into())
}

/// One change of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Set `key` to the value.
    Put(String, Vec<u8>),
    /// Remove `key` (no error when absent).
    Delete(String),
}

/// Where Marathon keeps its state.
pub trait KvStore: Send {
    /// Applies the changes durably, all or none.
    fn apply(&mut self, changes: &[Change]) -> Result<(), StoreError>;
    /// The value of `key`.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every `(key, value)` whose key starts with `prefix`, in key order.
    fn list(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;

    /// Sets one key.
    fn put(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.apply(&[Change::Put(key.to_string(), value.to_vec())])
    }
    /// Removes one key.
    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.apply(&[Change::Delete(key.to_string())])
    }
}

/// `<work_dir>/marathon.redb`.
pub struct RedbKv {
    db: Database,
}

impl RedbKv {
    /// Opens (or creates) the database in `dir`.
    pub fn open_in(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.display().to_string(),
            source,
        })?;
        let db = Database::create(dir.join("marathon.redb")).map_err(db_err)?;
        let txn = db.begin_write().map_err(db_err)?;
        txn.open_table(ENTRIES).map_err(db_err)?;
        txn.commit().map_err(db_err)?;
        Ok(RedbKv { db })
    }
}

impl KvStore for RedbKv {
    fn apply(&mut self, changes: &[Change]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut table = txn.open_table(ENTRIES).map_err(db_err)?;
            for c in changes {
                match c {
                    Change::Put(k, v) => {
                        table.insert(k.as_str(), v.as_slice()).map_err(db_err)?;
                    }
                    Change::Delete(k) => {
                        table.remove(k.as_str()).map_err(db_err)?;
                    }
                }
            }
        }
        txn.commit().map_err(db_err)?;
        Ok(())
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(ENTRIES).map_err(db_err)?;
        Ok(table.get(key).map_err(db_err)?.map(|v| v.value().to_vec()))
    }

    fn list(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(ENTRIES).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in table.range(prefix..).map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            let k = k.value();
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.to_string(), v.value().to_vec()));
        }
        Ok(out)
    }
}

/// An in-memory store, for tests and embedding without persistence.
#[derive(Default, Debug)]
pub struct MemoryKv(std::collections::BTreeMap<String, Vec<u8>>);

impl KvStore for MemoryKv {
    fn apply(&mut self, changes: &[Change]) -> Result<(), StoreError> {
        for c in changes {
            match c {
                Change::Put(k, v) => {
                    self.0.insert(k.clone(), v.clone());
                }
                Change::Delete(k) => {
                    self.0.remove(k);
                }
            }
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.0.get(key).cloned())
    }

    fn list(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(self
            .0
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(store: &mut dyn KvStore) {
        store.put("app//a", b"1").unwrap();
        store.put("app//b", b"2").unwrap();
        store.put("deployment/x", b"3").unwrap();
        assert_eq!(store.get("app//a").unwrap(), Some(b"1".to_vec()));
        let apps = store.list("app/").unwrap();
        assert_eq!(apps.len(), 2);
        store
            .apply(&[
                Change::Delete("app//a".into()),
                Change::Put("framework-id".into(), b"F".to_vec()),
            ])
            .unwrap();
        assert_eq!(store.get("app//a").unwrap(), None);
        assert_eq!(store.list("app/").unwrap()[0].0, "app//b");
        assert_eq!(store.list("").unwrap().len(), 3);
    }

    #[test]
    fn memory_store() {
        exercise(&mut MemoryKv::default());
    }

    #[test]
    fn redb_store_survives_reopening() {
        let dir = std::env::temp_dir().join(format!("marathon-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let mut s = RedbKv::open_in(&dir).unwrap();
            exercise(&mut s);
        }
        let s = RedbKv::open_in(&dir).unwrap();
        assert_eq!(s.get("framework-id").unwrap(), Some(b"F".to_vec()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

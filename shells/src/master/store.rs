//! The master's durable state: an append-only log of [`Record`]s behind a small trait, so the
//! embedded store used now can be swapped for ZooKeeper once masters run in HA mode.

use std::path::Path;

use mesos_core::master::{Record, Registry};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

/// Sequence number -> record JSON.
const RECORDS: TableDefinition<'static, u64, &'static [u8]> =
    TableDefinition::new("master_records");

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The embedded database failed.
    #[error("master store: {0}")]
    Db(#[from] redb::Error),
    /// A stored record could not be read back.
    #[error("master store: record {seq} is corrupt: {reason}")]
    Corrupt {
        /// Its sequence number.
        seq: u64,
        /// Why it could not be decoded.
        reason: String,
    },
    /// A record could not be encoded.
    #[error("master store: cannot encode a record: {0}")]
    Encode(String),
}

fn db_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Db(e.into())
}

/// Where the master keeps its records.
pub trait MasterStore: Send {
    /// Every record, oldest first.
    fn load(&mut self) -> Result<Vec<Record>, StoreError>;
    /// Appends records durably (one transaction).
    fn append(&mut self, records: &[Record]) -> Result<(), StoreError>;
    /// Replaces every record with `records` (one transaction).
    fn replace_all(&mut self, records: &[Record]) -> Result<(), StoreError>;
}

/// The shortest log that recovers the same master: the highest id counters, then the agents and
/// frameworks that were added and not removed, each with its latest record. The fold is the core's
/// [`Registry`], the one `Master::recover` uses, so compaction keeps exactly what recovery reads.
pub fn compact(records: &[Record]) -> Vec<Record> {
    Registry::fold(records).records()
}

/// A redb database file (`<work_dir>/master.redb`).
pub struct RedbStore {
    db: Database,
    next_seq: u64,
}

impl RedbStore {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(db_err)?;
        // Make sure the table exists so reads of a fresh database work.
        let txn = db.begin_write().map_err(db_err)?;
        let next_seq = {
            let table = txn.open_table(RECORDS).map_err(db_err)?;
            let last = table.last().map_err(db_err)?;
            last.map_or(0, |(k, _)| k.value() + 1)
        };
        txn.commit().map_err(db_err)?;
        Ok(RedbStore { db, next_seq })
    }
}

impl MasterStore for RedbStore {
    fn load(&mut self) -> Result<Vec<Record>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(RECORDS).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            let record: Record =
                serde_json::from_slice(v.value()).map_err(|e| StoreError::Corrupt {
                    seq: k.value(),
                    reason: e.to_string(),
                })?;
            out.push(record);
        }
        Ok(out)
    }

    fn append(&mut self, records: &[Record]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut table = txn.open_table(RECORDS).map_err(db_err)?;
            for (i, r) in records.iter().enumerate() {
                let bytes = serde_json::to_vec(r).map_err(|e| StoreError::Encode(e.to_string()))?;
                table
                    .insert(self.next_seq + i as u64, bytes.as_slice())
                    .map_err(db_err)?;
            }
        }
        txn.commit().map_err(db_err)?;
        self.next_seq += records.len() as u64;
        Ok(())
    }

    fn replace_all(&mut self, records: &[Record]) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        txn.delete_table(RECORDS).map_err(db_err)?;
        {
            let mut table = txn.open_table(RECORDS).map_err(db_err)?;
            for (i, r) in records.iter().enumerate() {
                let bytes = serde_json::to_vec(r).map_err(|e| StoreError::Encode(e.to_string()))?;
                table.insert(i as u64, bytes.as_slice()).map_err(db_err)?;
            }
        }
        txn.commit().map_err(db_err)?;
        self.next_seq = records.len() as u64;
        Ok(())
    }
}

/// An in-memory store (tests and benchmarks without a work dir).
#[derive(Default)]
pub struct MemoryStore {
    records: Vec<Record>,
}

impl MasterStore for MemoryStore {
    fn load(&mut self) -> Result<Vec<Record>, StoreError> {
        Ok(self.records.clone())
    }

    fn append(&mut self, records: &[Record]) -> Result<(), StoreError> {
        self.records.extend_from_slice(records);
        Ok(())
    }

    fn replace_all(&mut self, records: &[Record]) -> Result<(), StoreError> {
        self.records = records.to_vec();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_core::ids::{AgentId, FrameworkId};
    use mesos_core::master::{Address, FrameworkInfo};

    fn admitted(id: &str) -> Record {
        Record::AgentAdmitted {
            id: AgentId::new(id),
            hostname: "h".into(),
            address: Address::default(),
        }
    }

    fn added(id: &str, name: &str) -> Record {
        Record::FrameworkAdded {
            id: FrameworkId::new(id),
            info: FrameworkInfo {
                name: name.into(),
                ..FrameworkInfo::default()
            },
        }
    }

    #[test]
    fn compaction_keeps_what_recovery_needs() {
        let log = vec![
            Record::Counters {
                next_framework: 1,
                next_agent: 0,
            },
            added("f0", "first"),
            Record::Counters {
                next_framework: 1,
                next_agent: 1,
            },
            admitted("s0"),
            Record::Counters {
                next_framework: 2,
                next_agent: 2,
            },
            added("f1", "gone"),
            admitted("s1"),
            Record::FrameworkRemoved {
                id: FrameworkId::new("f1"),
            },
            Record::AgentRemoved {
                id: AgentId::new("s0"),
            },
            added("f0", "renamed"),
        ];
        let c = compact(&log);
        assert_eq!(
            c,
            vec![
                Record::Counters {
                    next_framework: 2,
                    next_agent: 2
                },
                admitted("s1"),
                added("f0", "renamed"),
            ]
        );
        assert_eq!(compact(&c), c, "idempotent");
    }

    #[test]
    fn redb_store_appends_reloads_and_replaces() {
        let dir = std::env::temp_dir().join(format!("master-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("master.redb");
        let _ = std::fs::remove_file(&path);
        {
            let mut s = RedbStore::open(&path).unwrap();
            assert!(s.load().unwrap().is_empty());
            s.append(&[admitted("s0"), added("f0", "a")]).unwrap();
            s.append(&[admitted("s1")]).unwrap();
        }
        let mut s = RedbStore::open(&path).unwrap();
        assert_eq!(
            s.load().unwrap(),
            vec![admitted("s0"), added("f0", "a"), admitted("s1")]
        );
        s.replace_all(&[admitted("s9")]).unwrap();
        s.append(&[added("f9", "b")]).unwrap();
        drop(s);
        let mut s = RedbStore::open(&path).unwrap();
        assert_eq!(s.load().unwrap(), vec![admitted("s9"), added("f9", "b")]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! The durable log's meaning: one fold over [`Record`]s, shared by [`Master::recover`] and the
//! shell's log compaction, so what a restarted master rebuilds and what compaction keeps can
//! never disagree.

use std::collections::BTreeMap;

use super::{Address, FrameworkInfo, Record};
use crate::ids::{AgentId, FrameworkId};

/// What a log of [`Record`]s says, folded in order: the highest id counters, and the agents and
/// frameworks that were added and not removed, each as its latest record gave it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Registry {
    /// The highest `(next_framework, next_agent)` seen, if any `Counters` record was.
    pub counters: Option<(u64, u64)>,
    /// Admitted agents: hostname and address.
    pub agents: BTreeMap<AgentId, (String, Address)>,
    /// Frameworks with their latest info.
    pub frameworks: BTreeMap<FrameworkId, FrameworkInfo>,
}

impl Registry {
    /// Folds a whole log, oldest record first.
    pub fn fold<'a>(records: impl IntoIterator<Item = &'a Record>) -> Self {
        let mut r = Registry::default();
        for record in records {
            r.apply(record);
        }
        r
    }

    /// Applies one record.
    pub fn apply(&mut self, record: &Record) {
        match record {
            Record::AgentAdmitted {
                id,
                hostname,
                address,
            } => {
                self.agents
                    .insert(id.clone(), (hostname.clone(), address.clone()));
            }
            Record::AgentRemoved { id } => {
                self.agents.remove(id);
            }
            Record::FrameworkAdded { id, info } => {
                self.frameworks.insert(id.clone(), info.clone());
            }
            Record::FrameworkRemoved { id } => {
                self.frameworks.remove(id);
            }
            Record::Counters {
                next_framework,
                next_agent,
            } => {
                let (f, a) = self.counters.unwrap_or((0, 0));
                self.counters = Some((f.max(*next_framework), a.max(*next_agent)));
            }
        }
    }

    /// The shortest log that folds back to this registry: the counters (if any), then the agents,
    /// then the frameworks, each in id order.
    pub fn records(&self) -> Vec<Record> {
        let mut out = Vec::with_capacity(1 + self.agents.len() + self.frameworks.len());
        if let Some((next_framework, next_agent)) = self.counters {
            out.push(Record::Counters {
                next_framework,
                next_agent,
            });
        }
        out.extend(
            self.agents
                .iter()
                .map(|(id, (hostname, address))| Record::AgentAdmitted {
                    id: id.clone(),
                    hostname: hostname.clone(),
                    address: address.clone(),
                }),
        );
        out.extend(
            self.frameworks
                .iter()
                .map(|(id, info)| Record::FrameworkAdded {
                    id: id.clone(),
                    info: info.clone(),
                }),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(id: &str, host: &str) -> Record {
        Record::AgentAdmitted {
            id: AgentId::new(id),
            hostname: host.into(),
            address: Address::default(),
        }
    }

    #[test]
    fn the_fold_keeps_the_latest_of_each_and_drops_the_removed() {
        let log = vec![
            admitted("s0", "a"),
            Record::Counters {
                next_framework: 3,
                next_agent: 1,
            },
            admitted("s1", "b"),
            Record::Counters {
                next_framework: 2,
                next_agent: 2,
            },
            admitted("s0", "c"),
            Record::AgentRemoved {
                id: AgentId::new("s1"),
            },
        ];
        let r = Registry::fold(&log);
        assert_eq!(r.counters, Some((3, 2)));
        assert_eq!(
            r.records(),
            vec![
                Record::Counters {
                    next_framework: 3,
                    next_agent: 2
                },
                admitted("s0", "c"),
            ]
        );
        assert_eq!(
            Registry::fold(&r.records()),
            r,
            "folding the compacted log changes nothing"
        );
    }

    #[test]
    fn records_carry_a_version_and_old_ones_still_read() {
        let r = Record::AgentRemoved {
            id: AgentId::new("s1"),
        };
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "AGENT_REMOVED", "id": {"value": "s1"}, "version": 1})
        );
        assert_eq!(serde_json::from_value::<Record>(json).unwrap(), r);
        let old = serde_json::json!({"type": "AGENT_REMOVED", "id": {"value": "s1"}});
        assert_eq!(serde_json::from_value::<Record>(old).unwrap(), r);
        let newer =
            serde_json::json!({"type": "AGENT_REMOVED", "id": {"value": "s1"}, "version": 2});
        let e = serde_json::from_value::<Record>(newer)
            .unwrap_err()
            .to_string();
        assert!(e.contains("record version 2 is not supported"), "{e}");
    }
}

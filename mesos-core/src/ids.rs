//! Identifiers of frameworks, agents, offers, tasks and executors.
//!
//! Each is a newtype over a shared string so that the allocator and the master can clone ids
//! on every offer without allocating. On the wire (v1 JSON) an id is an object
//! `{"value": "..."}`, exactly as Mesos' protobuf JSON mapping writes `FrameworkID` and friends.
//!
//! ```
//! use mesos_core::ids::AgentId;
//! let id = AgentId::new("S0");
//! assert_eq!(serde_json::to_string(&id).unwrap(), r#"{"value":"S0"}"#);
//! assert_eq!(id.as_str(), "S0");
//! ```

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Makes an id from any string.
            pub fn new(value: impl Into<String>) -> Self {
                Self(Arc::from(value.into()))
            }

            /// The id's text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(Arc::from(value))
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(Arc::from(value))
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                IdRef { value: &self.0 }.serialize(serializer)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let IdOwned { value } = IdOwned::deserialize(deserializer)?;
                Ok(Self(Arc::from(value)))
            }
        }
    };
}

#[derive(Serialize)]
struct IdRef<'a> {
    value: &'a str,
}

#[derive(Deserialize)]
struct IdOwned {
    value: String,
}

id_type!(
    /// A framework's id, `<master id>-NNNN` when the master assigns it.
    FrameworkId
);
id_type!(
    /// An agent's id, `<master id>-S<n>` when the master assigns it.
    AgentId
);
id_type!(
    /// An offer's id, `<master id>-O<n>`.
    OfferId
);
id_type!(
    /// A task's id, chosen by the framework; unique within that framework.
    TaskId
);
id_type!(
    /// An executor's id; for command tasks it equals the task id.
    ExecutorId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_v1_json() {
        let id = FrameworkId::new("abc-0000");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, r#"{"value":"abc-0000"}"#);
        assert_eq!(serde_json::from_str::<FrameworkId>(&json).unwrap(), id);
    }

    #[test]
    fn id_json_without_value_is_an_error() {
        let err = serde_json::from_str::<TaskId>(r#"{"val":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("value"), "{err}");
    }

    #[test]
    fn ids_display_and_debug() {
        let id = OfferId::new("m-O7");
        assert_eq!(id.to_string(), "m-O7");
        assert_eq!(format!("{id:?}"), r#"OfferId("m-O7")"#);
    }
}

//! The v1 JSON form: an array of `{name, type, scalar|ranges|set, role?, reservations?, allocation_info?}`.
//!
//! Reading accepts both the pre-refinement form (`"role": "r"`, optional `"reservation"`) and the
//! refined form (`"reservations": [...]`). Writing has both too, because Mesos sends frameworks
//! without the RESERVATION_REFINEMENT capability the old form.

use std::sync::Arc;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Map, Value as Json};

use super::parse::{scalar_from_f64, validate_role};
use super::{
    Name, Range, Ranges, Reservation, ReservationType, Resource, Resources, ResourcesError, Set,
    Value,
};

/// Which JSON shape to write for reservations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum JsonFormat {
    /// `"reservations": [{"type": "STATIC", "role": "r"}]`, no `role` (RESERVATION_REFINEMENT).
    #[default]
    Refined,
    /// `"role": "*"` or `"role": "r"` with an optional `"reservation"` (frameworks without refinement).
    PreRefinement,
}

#[derive(Deserialize)]
struct WireRange {
    begin: u64,
    end: u64,
}

#[derive(Deserialize)]
struct WireRanges {
    #[serde(default)]
    range: Vec<WireRange>,
}

#[derive(Deserialize)]
struct WireScalar {
    value: f64,
}

#[derive(Deserialize)]
struct WireSet {
    #[serde(default)]
    item: Vec<String>,
}

#[derive(Deserialize)]
struct WireLabel {
    key: String,
    value: Option<String>,
}

#[derive(Deserialize)]
struct WireLabels {
    #[serde(default)]
    labels: Vec<WireLabel>,
}

#[derive(Deserialize)]
struct WireReservation {
    #[serde(rename = "type")]
    kind: Option<String>,
    role: Option<String>,
    principal: Option<String>,
    labels: Option<WireLabels>,
}

#[derive(Deserialize)]
struct WireAllocation {
    role: Option<String>,
}

#[derive(Deserialize)]
struct WireResource {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    scalar: Option<WireScalar>,
    ranges: Option<WireRanges>,
    set: Option<WireSet>,
    role: Option<String>,
    reservation: Option<WireReservation>,
    #[serde(default)]
    reservations: Vec<WireReservation>,
    allocation_info: Option<WireAllocation>,
}

fn labels(l: Option<WireLabels>) -> Vec<(String, Option<String>)> {
    l.map(|l| l.labels.into_iter().map(|l| (l.key, l.value)).collect())
        .unwrap_or_default()
}

fn from_wire(w: WireResource, default_role: &str) -> Result<Resource, ResourcesError> {
    let name = w.name;
    if name.is_empty() {
        return Err(ResourcesError::EmptyName {
            token: "{\"name\": \"\"}".into(),
        });
    }
    let value = match w.kind.as_str() {
        "SCALAR" => {
            let s = w
                .scalar
                .ok_or_else(|| json_err(&name, "type SCALAR without `scalar`"))?;
            Value::Scalar(scalar_from_f64(&name, &format!("{:e}", s.value), s.value)?)
        }
        "RANGES" => {
            let r = w
                .ranges
                .ok_or_else(|| json_err(&name, "type RANGES without `ranges`"))?;
            let mut ranges = Vec::with_capacity(r.range.len());
            for x in r.range {
                if x.begin > x.end {
                    return Err(ResourcesError::InvalidRanges {
                        name: name.clone(),
                        value: format!("[{}-{}]", x.begin, x.end),
                        reason: format!("range {}-{} is inverted", x.begin, x.end),
                    });
                }
                ranges.push(Range::new(x.begin, x.end));
            }
            Value::Ranges(Ranges::new(ranges))
        }
        "SET" => {
            let s = w
                .set
                .ok_or_else(|| json_err(&name, "type SET without `set`"))?;
            let mut seen: Vec<&String> = Vec::new();
            for item in &s.item {
                if seen.contains(&item) {
                    return Err(ResourcesError::InvalidSet {
                        name: name.clone(),
                        value: format!("{{{}}}", s.item.join(",")),
                        reason: format!("duplicate item `{item}`"),
                    });
                }
                seen.push(item);
            }
            Value::Set(Set::new(s.item))
        }
        other => return Err(json_err(&name, &format!("unknown type `{other}`"))),
    };
    let mut resource = Resource::new(Name::from(name.as_str()), value);
    if !w.reservations.is_empty() {
        for r in w.reservations {
            let role = r
                .role
                .ok_or_else(|| json_err(&name, "reservation without `role`"))?;
            validate_role(&role)?;
            let kind = match r.kind.as_deref() {
                Some("STATIC") => ReservationType::Static,
                Some("DYNAMIC") => ReservationType::Dynamic,
                Some(other) => {
                    return Err(json_err(
                        &name,
                        &format!("unknown reservation type `{other}`"),
                    ))
                }
                None => return Err(json_err(&name, "reservation without `type`")),
            };
            resource.reservations.push(Reservation {
                kind,
                role: Arc::from(role.as_str()),
                principal: r.principal,
                labels: labels(r.labels),
            });
        }
    } else {
        let role = w.role.as_deref().unwrap_or(default_role);
        validate_role(role)?;
        if role != "*" {
            let mut reservation = Reservation::static_to(role);
            if let Some(d) = w.reservation {
                reservation.kind = ReservationType::Dynamic;
                reservation.principal = d.principal;
                reservation.labels = labels(d.labels);
            }
            resource.reservations.push(reservation);
        }
    }
    if let Some(role) = w.allocation_info.and_then(|a| a.role) {
        validate_role(&role)?;
        resource.allocation_role = Some(Arc::from(role.as_str()));
    }
    Ok(resource)
}

fn json_err(name: &str, what: &str) -> ResourcesError {
    ResourcesError::Json(format!("resource `{name}`: {what}"))
}

pub(super) fn from_json_str(text: &str, default_role: &str) -> Result<Resources, ResourcesError> {
    let wire: Vec<WireResource> =
        serde_json::from_str(text).map_err(|e| ResourcesError::Json(e.to_string()))?;
    from_wire_list(wire, default_role)
}

fn from_wire_list(
    wire: Vec<WireResource>,
    default_role: &str,
) -> Result<Resources, ResourcesError> {
    validate_role(default_role)?;
    let mut out = Resources::new();
    for w in wire {
        let r = from_wire(w, default_role)?;
        out.check_type(&r)?;
        out.push(r);
    }
    Ok(out)
}

/// One entry as v1 JSON.
pub(super) fn resource_to_json(r: &Resource, format: JsonFormat) -> Json {
    let mut m = Map::new();
    m.insert("name".into(), json!(r.name.as_str()));
    m.insert("type".into(), json!(r.value.value_type().as_str()));
    match &r.value {
        Value::Scalar(s) => {
            m.insert("scalar".into(), json!({ "value": s.as_f64() }));
        }
        Value::Ranges(rs) => {
            let range: Vec<Json> = rs
                .iter()
                .map(|x| json!({"begin": x.begin, "end": x.end}))
                .collect();
            m.insert("ranges".into(), json!({ "range": range }));
        }
        Value::Set(s) => {
            m.insert("set".into(), json!({ "item": s.items() }));
        }
    }
    match format {
        JsonFormat::Refined => {
            if !r.reservations.is_empty() {
                let list: Vec<Json> = r.reservations.iter().map(reservation_to_json).collect();
                m.insert("reservations".into(), Json::Array(list));
            }
        }
        JsonFormat::PreRefinement => {
            m.insert("role".into(), json!(r.reservation_role()));
            if let Some(last) = r
                .reservations
                .last()
                .filter(|l| l.kind == ReservationType::Dynamic)
            {
                let mut d = Map::new();
                if let Some(p) = &last.principal {
                    d.insert("principal".into(), json!(p));
                }
                m.insert("reservation".into(), Json::Object(d));
            }
        }
    }
    if let Some(role) = &r.allocation_role {
        m.insert("allocation_info".into(), json!({ "role": &**role }));
    }
    Json::Object(m)
}

fn reservation_to_json(r: &Reservation) -> Json {
    let mut m = Map::new();
    m.insert("type".into(), json!(r.kind.as_str()));
    m.insert("role".into(), json!(&*r.role));
    if let Some(p) = &r.principal {
        m.insert("principal".into(), json!(p));
    }
    if !r.labels.is_empty() {
        let labels: Vec<Json> = r
            .labels
            .iter()
            .map(|(k, v)| match v {
                Some(v) => json!({"key": k, "value": v}),
                None => json!({ "key": k }),
            })
            .collect();
        m.insert("labels".into(), json!({ "labels": labels }));
    }
    Json::Object(m)
}

impl Serialize for Resource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        resource_to_json(self, JsonFormat::Refined).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Resource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let w = WireResource::deserialize(deserializer)?;
        from_wire(w, "*").map_err(D::Error::custom)
    }
}

/// Serialises as the v1 JSON array in the refined format.
impl Serialize for Resources {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json(JsonFormat::Refined).serialize(serializer)
    }
}

/// Reads the v1 JSON array, validating every entry as the text parser does.
impl<'de> Deserialize<'de> for Resources {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Vec::<WireResource>::deserialize(deserializer)?;
        from_wire_list(wire, "*").map_err(D::Error::custom)
    }
}

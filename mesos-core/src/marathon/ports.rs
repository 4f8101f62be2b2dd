//! Ports: host ports taken from an offer, service ports from 10000-20000, and the `PORT*`
//! environment a task sees.
//!
//! Host ports (`PortsMatcher.scala`): a port mapping with `hostPort: 0` (or a port definition
//! without `requirePorts`) gets any offered port; a fixed host port must lie in an offered range.
//! Dynamic ports are drawn as Marathon draws them: the offered ranges in a shuffled order, a
//! random start over all their ports, then consecutive ports with wrap-around, skipping every port
//! the same app asks for by number. The randomness comes from the caller's rng, so a seed replays
//! a placement exactly.
//!
//! Service ports (`AssignDynamicServiceLogic.scala`): each service port 0 becomes a port the
//! previous version of the app had and no longer uses, else the lowest port of the range used by
//! no app. Explicit service ports are kept, even when another app uses them (Marathon does not
//! enforce uniqueness there either).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::app::{AppDefinition, NetworkMode};
use crate::resources::{Range, Ranges};

/// Marathon's default `--local_port_min`/`--local_port_max`.
pub const SERVICE_PORT_RANGE: RangeInclusive<u32> = 10000..=20000;

/// What one port mapping or port definition asks of the offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HostPortRequest {
    /// No host port (container networking without `hostPort`).
    None,
    /// Any offered port.
    Dynamic,
    /// Exactly this port.
    Fixed(u32),
}

/// The host ports an app needs per task, in port order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRequests {
    requests: Vec<HostPortRequest>,
    dynamic: u32,
    /// The fixed ports, sorted: never handed out as dynamic ones.
    fixed: Vec<u32>,
}

/// Why the offered ports do not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum PortShortage {
    /// A fixed host port is not among the offered ports.
    #[error("host port {port} is not offered")]
    FixedPortNotOffered {
        /// The port.
        port: u32,
    },
    /// Fewer ports are offered than dynamic ports are needed.
    #[error("{needed} dynamic host ports needed, {available} offered")]
    NotEnoughPorts {
        /// Dynamic ports needed.
        needed: u32,
        /// Ports available for them.
        available: u64,
    },
}

impl PortRequests {
    /// The host ports `app` needs per task.
    ///
    /// ```
    /// use mesos_core::marathon::{AppDefinition, HostPortRequest, PortRequests};
    /// let app = AppDefinition::from_json(&serde_json::json!({"id": "a", "cmd": "x", "ports": [80, 81]})).unwrap();
    /// // Without requirePorts the numbers are service ports; the host ports are dynamic.
    /// assert_eq!(PortRequests::of(&app).requests(), &[HostPortRequest::Dynamic, HostPortRequest::Dynamic]);
    /// ```
    pub fn of(app: &AppDefinition) -> PortRequests {
        let requests: Vec<HostPortRequest> = if app.network_mode() == NetworkMode::Host {
            app.port_definitions
                .iter()
                .map(|pd| match (app.require_ports, pd.port) {
                    (true, p) if p != 0 => HostPortRequest::Fixed(p),
                    _ => HostPortRequest::Dynamic,
                })
                .collect()
        } else {
            app.port_mappings()
                .iter()
                .map(|pm| match pm.host_port {
                    None => HostPortRequest::None,
                    Some(0) => HostPortRequest::Dynamic,
                    Some(p) => HostPortRequest::Fixed(p),
                })
                .collect()
        };
        PortRequests::new(requests)
    }

    /// From explicit requests.
    pub fn new(requests: Vec<HostPortRequest>) -> PortRequests {
        let dynamic = requests
            .iter()
            .filter(|r| **r == HostPortRequest::Dynamic)
            .count() as u32;
        let mut fixed: Vec<u32> = requests
            .iter()
            .filter_map(|r| match r {
                HostPortRequest::Fixed(p) => Some(*p),
                _ => None,
            })
            .collect();
        fixed.sort_unstable();
        fixed.dedup();
        PortRequests {
            requests,
            dynamic,
            fixed,
        }
    }

    /// The requests in port order.
    pub fn requests(&self) -> &[HostPortRequest] {
        &self.requests
    }

    /// True when no host port is needed.
    pub fn is_empty(&self) -> bool {
        self.dynamic == 0 && self.fixed.is_empty()
    }

    /// Checks without drawing: `Ok` when `offered` can serve these requests.
    pub fn check(&self, offered: &Ranges) -> Result<(), PortShortage> {
        self.check_in(offered.ranges())
    }

    /// [`PortRequests::check`] on sorted, disjoint ranges.
    pub(crate) fn check_in(&self, offered: &[Range]) -> Result<(), PortShortage> {
        for &port in &self.fixed {
            if !slice_contains(offered, u64::from(port)) {
                return Err(PortShortage::FixedPortNotOffered { port });
            }
        }
        if self.dynamic > 0 {
            // Every fixed port is offered (checked above) and unavailable to dynamic ones.
            let available = slice_count(offered).saturating_sub(self.fixed.len() as u64);
            if available < u64::from(self.dynamic) {
                return Err(PortShortage::NotEnoughPorts {
                    needed: self.dynamic,
                    available,
                });
            }
        }
        Ok(())
    }

    /// Picks the host ports from `offered`: one entry per request (`None` where no host port
    /// is wanted).
    ///
    /// ```
    /// use mesos_core::marathon::{HostPortRequest, PortRequests};
    /// use mesos_core::resources::Ranges;
    /// use rand::SeedableRng;
    /// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    /// let req = PortRequests::new(vec![HostPortRequest::Dynamic, HostPortRequest::Fixed(31200)]);
    /// let ports = req.assign(&Ranges::single(31000, 32000), &mut rng).unwrap();
    /// assert_eq!(ports[1], Some(31200));
    /// assert!(ports[0].is_some_and(|p| (31000..=32000).contains(&p) && p != 31200));
    /// ```
    pub fn assign(
        &self,
        offered: &Ranges,
        rng: &mut impl Rng,
    ) -> Result<Vec<Option<u32>>, PortShortage> {
        self.assign_in(offered.ranges(), rng)
    }

    /// [`PortRequests::assign`] on sorted, disjoint ranges.
    pub(crate) fn assign_in(
        &self,
        offered: &[Range],
        rng: &mut impl Rng,
    ) -> Result<Vec<Option<u32>>, PortShortage> {
        self.check_in(offered)?;
        let mut out: Vec<Option<u32>> = self
            .requests
            .iter()
            .map(|r| match r {
                HostPortRequest::Fixed(p) => Some(*p),
                HostPortRequest::None | HostPortRequest::Dynamic => None,
            })
            .collect();
        let mut slots = self
            .requests
            .iter()
            .enumerate()
            .filter(|(_, r)| **r == HostPortRequest::Dynamic)
            .map(|(i, _)| i);
        self.draw_dynamic(offered, rng, |port| {
            if let Some(i) = slots.next() {
                out[i] = Some(port);
            }
        });
        Ok(out)
    }

    /// Marathon shuffles the ranges, starts at a uniformly random position over all of their
    /// ports and walks on, wrapping around. The start port is then uniform over every offered
    /// port, and the ranges that follow its range come in a uniformly random order. We draw the
    /// start directly and shuffle the other ranges only if the walk leaves the start range, which
    /// gives the same distribution without shuffling on every launch.
    fn draw_dynamic(&self, offered: &[Range], rng: &mut impl Rng, mut emit: impl FnMut(u32)) {
        let n = self.dynamic as usize;
        if n == 0 || offered.is_empty() {
            return;
        }
        let total = slice_count(offered);
        let mut pos = rng.gen_range(0..total);
        let mut first = 0;
        while pos >= offered[first].len() {
            pos -= offered[first].len();
            first += 1;
        }
        let start = offered[first].begin + pos;
        let mut taken = 0;
        let mut take = |from: u64, to: u64, taken: &mut usize| {
            // Only real port numbers: also bounds the walk on absurd offered ranges.
            let to = to.min(u64::from(u16::MAX));
            let mut port = from;
            while port <= to && *taken < n {
                if let Ok(p) = u32::try_from(port) {
                    if self.fixed.binary_search(&p).is_err() {
                        emit(p);
                        *taken += 1;
                    }
                }
                port += 1;
            }
        };
        take(start, offered[first].end, &mut taken);
        if taken < n {
            let mut rest: Vec<&Range> = offered
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != first)
                .map(|(_, r)| r)
                .collect();
            rest.shuffle(rng);
            for r in rest {
                if taken == n {
                    break;
                }
                take(r.begin, r.end, &mut taken);
            }
        }
        if taken < n && start > offered[first].begin {
            take(offered[first].begin, start - 1, &mut taken);
        }
    }
}

/// True when `value` lies in sorted, disjoint `ranges`.
pub(crate) fn slice_contains(ranges: &[Range], value: u64) -> bool {
    let idx = ranges.partition_point(|r| r.end < value);
    ranges.get(idx).is_some_and(|r| r.begin <= value)
}

fn slice_count(ranges: &[Range]) -> u64 {
    ranges
        .iter()
        .map(Range::len)
        .fold(0u64, u64::saturating_add)
}

/// Removes one value from sorted, disjoint ranges in place (splitting a range if needed).
pub(crate) fn remove_value(ranges: &mut Vec<Range>, value: u64) {
    let idx = ranges.partition_point(|r| r.end < value);
    let Some(r) = ranges.get_mut(idx) else {
        return;
    };
    if r.begin > value {
        return;
    }
    if r.begin == r.end {
        ranges.remove(idx);
    } else if value == r.begin {
        r.begin += 1;
    } else if value == r.end {
        r.end -= 1;
    } else {
        let tail = Range::new(value + 1, r.end);
        r.end = value - 1;
        ranges.insert(idx + 1, tail);
    }
}

/// Service ports could not be assigned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("All ports in the range [{min}-{max}) are already in use")]
pub struct PortRangeExhausted {
    /// Range start.
    pub min: u32,
    /// Range end.
    pub max: u32,
}

/// Replaces every service port 0 of `app`: first by ports `previous` (the app's former version)
/// had in `range` and `app` no longer uses, then by the lowest port in `range` that is neither in
/// `used` (the service ports of every app, old and new) nor already taken here.
///
/// ```
/// use std::collections::BTreeSet;
/// use mesos_core::marathon::{assign_service_ports, AppDefinition, SERVICE_PORT_RANGE};
/// let mut app = AppDefinition::from_json(&serde_json::json!({"id": "a", "cmd": "x", "ports": [0, 0]})).unwrap();
/// let used = BTreeSet::from([10000]);
/// assign_service_ports(&mut app, None, &used, SERVICE_PORT_RANGE).unwrap();
/// assert_eq!(app.service_ports(), vec![10001, 10002]);
/// ```
pub fn assign_service_ports(
    app: &mut AppDefinition,
    previous: Option<&AppDefinition>,
    used: &BTreeSet<u32>,
    range: RangeInclusive<u32>,
) -> Result<(), PortRangeExhausted> {
    let current = app.service_ports();
    let mut taken: BTreeSet<u32> = used.iter().copied().collect();
    taken.extend(current.iter().copied().filter(|p| *p != 0));
    let mut reusable: Vec<u32> = previous
        .map(|p| p.service_ports())
        .unwrap_or_default()
        .into_iter()
        .filter(|p| *p != 0 && range.contains(p) && !current.contains(p))
        .collect();
    reusable.reverse();
    let mut next = *range.start();
    let mut assigned = Vec::with_capacity(current.len());
    for p in current {
        if p != 0 {
            assigned.push(p);
            continue;
        }
        let port = match reusable.pop() {
            Some(r) => r,
            None => {
                while next <= *range.end() && taken.contains(&next) {
                    next += 1;
                }
                if next > *range.end() {
                    return Err(PortRangeExhausted {
                        min: *range.start(),
                        max: *range.end(),
                    });
                }
                next
            }
        };
        taken.insert(port);
        assigned.push(port);
    }
    if app.network_mode() == NetworkMode::Host {
        for (pd, p) in app.port_definitions.iter_mut().zip(assigned) {
            pd.port = p;
        }
    } else if let Some(c) = app.container.as_mut() {
        for (pm, p) in c.port_mappings.iter_mut().zip(assigned) {
            pm.service_port = p;
        }
    }
    Ok(())
}

/// The `PORT*` variables of a task of `app` given its host ports (as from
/// [`PortRequests::assign`]): `PORT0..`, `PORT_<requested>`, `PORT_<NAME>`, `PORT`, `PORTS`.
/// In BRIDGE mode `PORT0` is the host port (Marathon #905); a mapping without host port exposes
/// its container port.
///
/// ```
/// use mesos_core::marathon::{port_env, AppDefinition};
/// let app = AppDefinition::from_json(&serde_json::json!({"id": "n", "container": {"docker": {
///     "image": "nginx", "network": "BRIDGE", "portMappings": [{"containerPort": 80}]}}})).unwrap();
/// let env = port_env(&app, &[Some(31005)]);
/// assert_eq!(env["PORT0"], "31005");
/// assert_eq!(env["PORT_80"], "31005");
/// assert_eq!(env["PORT"], "31005");
/// assert_eq!(env["PORTS"], "31005");
/// ```
pub fn port_env(app: &AppDefinition, host_ports: &[Option<u32>]) -> BTreeMap<String, String> {
    // (requested number, name, container port) per port.
    let described: Vec<(u32, Option<&str>, Option<u32>)> =
        if app.network_mode() == NetworkMode::Host {
            app.port_definitions
                .iter()
                .map(|pd| (pd.port, pd.name.as_deref(), None))
                .collect()
        } else {
            app.port_mappings()
                .iter()
                .map(|pm| {
                    (
                        pm.container_port,
                        pm.name.as_deref(),
                        Some(pm.container_port),
                    )
                })
                .collect()
        };
    let mut env = BTreeMap::new();
    let mut effective = Vec::new();
    for (i, (requested, name, container)) in described.iter().enumerate() {
        let host = host_ports.get(i).copied().flatten();
        let port = match (host, container) {
            (Some(h), _) => h,
            (None, Some(c)) => *c,
            (None, None) => continue,
        };
        effective.push(port);
        env.insert(format!("PORT{i}"), port.to_string());
        if *requested != 0 {
            env.insert(format!("PORT_{requested}"), port.to_string());
        }
        if let Some(n) = name {
            let key: String = n
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            env.insert(format!("PORT_{key}"), port.to_string());
        }
    }
    if let Some(first) = effective.first() {
        env.insert("PORT".to_string(), first.to_string());
        let all: Vec<String> = effective.iter().map(u32::to_string).collect();
        env.insert("PORTS".to_string(), all.join(","));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_value_splits_and_trims() {
        let mut r = vec![Range::new(1, 5), Range::new(7, 7), Range::new(9, 10)];
        remove_value(&mut r, 3);
        assert_eq!(
            r,
            [
                Range::new(1, 2),
                Range::new(4, 5),
                Range::new(7, 7),
                Range::new(9, 10)
            ]
        );
        remove_value(&mut r, 7);
        remove_value(&mut r, 1);
        remove_value(&mut r, 10);
        remove_value(&mut r, 8);
        assert_eq!(r, [Range::new(2, 2), Range::new(4, 5), Range::new(9, 9)]);
        assert!(slice_contains(&r, 4) && !slice_contains(&r, 3) && !slice_contains(&r, 11));
    }

    #[test]
    fn the_walk_wraps_to_the_start_of_the_first_range() {
        use rand::SeedableRng;
        // Every port needed: whatever the start, all five come out once.
        let req = PortRequests::new(vec![HostPortRequest::Dynamic; 5]);
        for seed in 0..20 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let ranges = [Range::new(10, 12), Range::new(20, 21)];
            let mut got: Vec<u32> = req
                .assign_in(&ranges, &mut rng)
                .unwrap()
                .into_iter()
                .flatten()
                .collect();
            got.sort_unstable();
            assert_eq!(got, [10, 11, 12, 20, 21]);
        }
    }
}

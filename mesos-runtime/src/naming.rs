//! Names derived from task ids: container names, cgroup names, checkpoint file names.
//!
//! Task ids are chosen by frameworks and may hold anything (`/`, spaces, dots). Engines accept
//! only `[A-Za-z0-9_.-]`, so names keep a readable, sanitised prefix of the id and end in a hash
//! of the full id, which keeps two ids that sanitise alike apart.

/// A file- and engine-safe name for `task_id`: `<sanitised prefix>-<16 hex digits>`.
pub(crate) fn safe_name(task_id: &str) -> String {
    let mut prefix: String = task_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    if prefix.is_empty() || !prefix.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        prefix.insert(0, 't');
    }
    format!("{prefix}-{:016x}", fnv1a(task_id.as_bytes()))
}

/// FNV-1a, 64 bit: stable across runs and builds, unlike `DefaultHasher`, which matters because
/// names must be found again after a restart.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_stable_and_distinct() {
        let a = safe_name("app/web.1 x");
        assert!(a.starts_with("app_web.1_x-"), "{a}");
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
        assert_eq!(a, safe_name("app/web.1 x"));
        assert_ne!(safe_name("a/b"), safe_name("a_b"));
        assert!(safe_name(".hidden").starts_with("t.hidden-"));
        assert_eq!(safe_name("x").len(), "x-".len() + 16);
    }
}

use super::*;

fn r(s: &str) -> Resources {
    Resources::parse(s).unwrap()
}

#[test]
fn placeholder_parses() {
    assert_eq!(r("cpus:1").cpus(), 1.0);
}

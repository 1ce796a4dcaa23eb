//! The GraphQL schema is the public API: any change to it must show up in review as a change
//! to `tests/snapshots/schema.graphql`. Run with `UPDATE_SNAPSHOTS=1` to accept a change.

#[test]
fn schema_matches_snapshot() {
    let sdl = bazaar_gateway::schema::sdl();
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/schema.graphql");
    if std::env::var("UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("snapshot dir");
        std::fs::write(&path, &sdl).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == sdl,
        "the GraphQL schema changed; review and run with UPDATE_SNAPSHOTS=1:\n{sdl}"
    );
}

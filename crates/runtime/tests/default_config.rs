//! `config.default.toml` documents every key: it must parse and yield the built-in defaults.

use bazaar_runtime::{ConfigArgs, Settings};

#[test]
fn the_documented_defaults_load() {
    let dir = tempfile::tempdir().unwrap();
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config.default.toml");
    let args = ConfigArgs {
        config: Some(file),
        data_dir: Some(dir.path().into()),
        ..Default::default()
    };
    let from_file = Settings::load(&args).unwrap();
    let builtin = Settings::load(&ConfigArgs {
        data_dir: Some(dir.path().into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(format!("{from_file:?}"), format!("{builtin:?}"));
}

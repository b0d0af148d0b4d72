//! Schema evolution guard. Every schema that ever shipped is kept in
//! `avro/history/<name>.v<N>.avsc`; the current schema must be able to read
//! data written with each of them (new readers, old data) and each of them
//! must be able to read data written with the current one (old readers, new
//! data). Adding a field without a default, removing one without a default,
//! or changing a type fails [`check`], and the compatibility test with it.

use apache_avro::{
    Schema,
    schema_compatibility::{Compatibility, SchemaCompatibility},
};

/// One pair of schemas that cannot be resolved in some direction.
#[derive(Debug, PartialEq, Eq)]
pub struct Incompatible {
    pub schema: String,
    pub history: String,
    pub reason: String,
}

/// Checks `current` against each `(label, historical schema text)`.
pub fn check(name: &str, current: &Schema, history: &[(String, String)]) -> Vec<Incompatible> {
    let mut out = Vec::new();
    for (label, text) in history {
        let fail = |reason: String| Incompatible {
            schema: name.to_owned(),
            history: label.clone(),
            reason,
        };
        let old = match Schema::parse_str(text) {
            Ok(s) => s,
            Err(e) => {
                out.push(fail(format!("history schema does not parse: {e}")));
                continue;
            }
        };
        for (direction, writer, reader) in [
            ("new readers cannot read old data", &old, current),
            ("old readers cannot read new data", current, &old),
        ] {
            match SchemaCompatibility::can_read(writer, reader) {
                Ok(Compatibility::Full) => {}
                Ok(partial) => out.push(fail(format!("{direction}: only {partial:?}"))),
                Err(e) => out.push(fail(format!("{direction}: {e}"))),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::embedded_schemas;
    use std::path::Path;

    fn history_of(name: &str) -> Vec<(String, String)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("avro/history");
        let mut v: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| {
                let e = e.ok()?;
                let file = e.file_name().to_string_lossy().into_owned();
                let stem = file.strip_suffix(".avsc")?;
                let (base, _version) = stem.rsplit_once(".v")?;
                (base == name).then(|| (file.clone(), std::fs::read_to_string(e.path()).unwrap()))
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn every_schema_stays_compatible_with_every_version_that_shipped() {
        for (name, schema) in embedded_schemas() {
            let history = history_of(name);
            assert!(
                !history.is_empty(),
                "{name} has no avro/history/{name}.v1.avsc"
            );
            let problems = check(name, schema, &history);
            assert!(problems.is_empty(), "{problems:#?}");
        }
    }

    fn deal_changed_with(extra_field: &str) -> Schema {
        let text = include_str!("../avro/deal_changed.avsc");
        let at = text.rfind(']').unwrap();
        let changed = format!(
            "{}, {extra_field}\n  {}",
            &text[..at].trim_end(),
            &text[at..]
        );
        Schema::parse_str(&changed).unwrap()
    }

    #[test]
    fn a_field_without_default_breaks_new_readers_of_old_data() {
        let broken = deal_changed_with(r#"{"name": "region", "type": "string"}"#);
        let problems = check("deal_changed", &broken, &history_of("deal_changed"));
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(problems[0].reason.contains("new readers"), "{problems:#?}");
    }

    #[test]
    fn a_field_with_default_is_compatible_both_ways() {
        let fine =
            deal_changed_with(r#"{"name": "region", "type": ["null", "string"], "default": null}"#);
        assert!(check("deal_changed", &fine, &history_of("deal_changed")).is_empty());
    }

    #[test]
    fn a_changed_type_breaks_old_readers() {
        let text = include_str!("../avro/deal_changed.avsc").replace(
            r#"{"name": "stock", "type": "int""#,
            r#"{"name": "stock", "type": "string""#,
        );
        let broken = Schema::parse_str(&text).unwrap();
        assert!(!check("deal_changed", &broken, &history_of("deal_changed")).is_empty());
    }
}

//! Checks on the merged `annotations.json` a LabelJob writes: a COCO detection dataset with one
//! image per input photo and well-formed annotations (absolute `[x, y, w, h]` boxes inside the
//! image, `area` = w·h, `iscrowd: 0`, known image and category ids, unique ids).

use std::collections::HashSet;

use serde_json::Value;

/// What is wrong with a COCO file.
#[derive(Debug, thiserror::Error)]
pub enum CocoError {
    /// Not JSON.
    #[error("not JSON: {0}")]
    Parse(#[source] serde_json::Error),
    /// A top-level list is missing.
    #[error("no `{0}` array")]
    Missing(&'static str),
    /// The images are not the input photos.
    #[error("images: expected {expected:?}, found {found:?}")]
    Images {
        /// Input file names, sorted.
        expected: Vec<String>,
        /// `file_name`s (base names), sorted.
        found: Vec<String>,
    },
    /// One entry breaks a rule.
    #[error("{list}[{index}]: {problem}")]
    Entry {
        /// `images`, `annotations` or `categories`.
        list: &'static str,
        /// Position in the list.
        index: usize,
        /// The rule broken.
        problem: String,
    },
}

/// Counts of a valid file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CocoSummary {
    /// Images.
    pub images: usize,
    /// Annotations (detections).
    pub annotations: usize,
    /// Categories.
    pub categories: usize,
}

fn entry(list: &'static str, index: usize, problem: impl Into<String>) -> CocoError {
    CocoError::Entry { list, index, problem: problem.into() }
}

fn array<'a>(doc: &'a Value, key: &'static str) -> Result<&'a Vec<Value>, CocoError> {
    doc.get(key).and_then(Value::as_array).ok_or(CocoError::Missing(key))
}

/// Validate `json` against the rules above; `expected_files` are the input photo names.
pub fn validate(json: &[u8], expected_files: &[String]) -> Result<CocoSummary, CocoError> {
    let doc: Value = serde_json::from_slice(json).map_err(CocoError::Parse)?;
    let images = array(&doc, "images")?;
    let annotations = array(&doc, "annotations")?;
    let categories = array(&doc, "categories")?;

    let mut category_ids = HashSet::new();
    for (i, c) in categories.iter().enumerate() {
        let id =
            c.get("id").and_then(Value::as_i64).ok_or_else(|| entry("categories", i, "no integer id"))?;
        if !category_ids.insert(id) {
            return Err(entry("categories", i, format!("duplicate id {id}")));
        }
        if c.get("name").and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(entry("categories", i, "no name"));
        }
    }

    let mut sizes = std::collections::HashMap::new();
    let mut found = Vec::new();
    for (i, im) in images.iter().enumerate() {
        let id = im.get("id").and_then(Value::as_i64).ok_or_else(|| entry("images", i, "no integer id"))?;
        let w = im.get("width").and_then(Value::as_f64).unwrap_or(0.0);
        let h = im.get("height").and_then(Value::as_f64).unwrap_or(0.0);
        if w <= 0.0 || h <= 0.0 {
            return Err(entry("images", i, format!("size {w}x{h}")));
        }
        let name =
            im.get("file_name").and_then(Value::as_str).ok_or_else(|| entry("images", i, "no file_name"))?;
        found.push(name.rsplit('/').next().unwrap_or(name).to_string());
        if sizes.insert(id, (w, h)).is_some() {
            return Err(entry("images", i, format!("duplicate id {id}")));
        }
    }
    let mut expected = expected_files.to_vec();
    expected.sort();
    found.sort();
    if expected != found {
        return Err(CocoError::Images { expected, found });
    }

    let mut ids = HashSet::new();
    for (i, a) in annotations.iter().enumerate() {
        let id =
            a.get("id").and_then(Value::as_i64).ok_or_else(|| entry("annotations", i, "no integer id"))?;
        if !ids.insert(id) {
            return Err(entry("annotations", i, format!("duplicate id {id}")));
        }
        let image_id = a.get("image_id").and_then(Value::as_i64).unwrap_or(-1);
        let (iw, ih) = *sizes
            .get(&image_id)
            .ok_or_else(|| entry("annotations", i, format!("unknown image_id {image_id}")))?;
        let cat = a.get("category_id").and_then(Value::as_i64).unwrap_or(-1);
        if !category_ids.contains(&cat) {
            return Err(entry("annotations", i, format!("unknown category_id {cat}")));
        }
        let bbox: Vec<f64> = a
            .get("bbox")
            .and_then(Value::as_array)
            .map(|b| b.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        let [x, y, w, h] = bbox[..] else {
            return Err(entry("annotations", i, "bbox is not 4 numbers"));
        };
        if !(x >= 0.0 && y >= 0.0 && w > 0.0 && h > 0.0 && x + w <= iw + 1.0 && y + h <= ih + 1.0) {
            return Err(entry("annotations", i, format!("bbox {bbox:?} outside the {iw}x{ih} image")));
        }
        let area = a.get("area").and_then(Value::as_f64).ok_or_else(|| entry("annotations", i, "no area"))?;
        if (area - w * h).abs() > 1e-3 * (w * h).max(1.0) {
            return Err(entry("annotations", i, format!("area {area} != w*h {}", w * h)));
        }
        if a.get("iscrowd").and_then(Value::as_i64) != Some(0) {
            return Err(entry("annotations", i, "iscrowd is not 0"));
        }
        if let Some(score) = a.get("score")
            && !score.as_f64().is_some_and(|s| (0.0..=1.0).contains(&s))
        {
            return Err(entry("annotations", i, format!("score {score} outside 0–1")));
        }
    }
    Ok(CocoSummary { images: images.len(), annotations: annotations.len(), categories: categories.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(annotation: &str) -> String {
        format!(
            r#"{{"info": {{}}, "categories": [{{"id": 1, "name": "person"}}, {{"id": 18, "name": "dog"}}],
                "images": [{{"id": 0, "file_name": "photos/dog.jpg", "width": 768, "height": 576}},
                           {{"id": 1, "file_name": "photos/kite.jpg", "width": 1000, "height": 600}}],
                "annotations": [{annotation}]}}"#
        )
    }

    fn files() -> Vec<String> {
        vec!["kite.jpg".into(), "dog.jpg".into()]
    }

    #[test]
    fn accepts_a_well_formed_file() {
        let ok = doc(
            r#"{"id": 7, "image_id": 0, "category_id": 18, "bbox": [10, 20, 100, 50], "area": 5000, "iscrowd": 0, "score": 0.9}"#,
        );
        let s = validate(ok.as_bytes(), &files()).expect("valid");
        assert_eq!(s, CocoSummary { images: 2, annotations: 1, categories: 2 });
        // Zero detections is still a valid file.
        assert_eq!(validate(doc("").as_bytes(), &files()).expect("valid").annotations, 0);
    }

    #[test]
    fn names_the_broken_rule() {
        let cases = [
            (
                r#"{"id": 1, "image_id": 0, "category_id": 18, "bbox": [10, 20, 100], "area": 1, "iscrowd": 0}"#,
                "4 numbers",
            ),
            (
                r#"{"id": 1, "image_id": 0, "category_id": 18, "bbox": [700, 20, 100, 50], "area": 5000, "iscrowd": 0}"#,
                "outside",
            ),
            (
                r#"{"id": 1, "image_id": 0, "category_id": 18, "bbox": [10, 20, 100, 50], "area": 10, "iscrowd": 0}"#,
                "area",
            ),
            (
                r#"{"id": 1, "image_id": 0, "category_id": 18, "bbox": [10, 20, 100, 50], "area": 5000}"#,
                "iscrowd",
            ),
            (
                r#"{"id": 1, "image_id": 9, "category_id": 18, "bbox": [10, 20, 100, 50], "area": 5000, "iscrowd": 0}"#,
                "image_id",
            ),
            (
                r#"{"id": 1, "image_id": 0, "category_id": 2, "bbox": [10, 20, 100, 50], "area": 5000, "iscrowd": 0}"#,
                "category_id",
            ),
        ];
        for (ann, want) in cases {
            let err = validate(doc(ann).as_bytes(), &files()).expect_err("invalid");
            assert!(err.to_string().contains(want), "{ann}: {err}");
        }
    }

    #[test]
    fn images_must_be_the_inputs() {
        let err = validate(doc("").as_bytes(), &["dog.jpg".to_string()]).expect_err("invalid");
        assert!(matches!(err, CocoError::Images { .. }), "{err}");
        assert!(matches!(validate(b"{}", &files()).expect_err("invalid"), CocoError::Missing("images")));
        assert!(matches!(validate(b"not json", &files()).expect_err("invalid"), CocoError::Parse(_)));
    }
}

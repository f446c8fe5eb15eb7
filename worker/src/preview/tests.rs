//! Tests of the contact sheet against the fixture photos and the reference boxes of
//! models/README.md.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::tile::{CAPTION_BG, FAILED_BG, caption_height, category_colour};
use super::*;

fn photo(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/photos").join(name)
}

/// The reference detections of dog.jpg (768×576) and giraffe.jpg (500×500).
fn reference_annotations() -> serde_json::Value {
    json!([
        {"id": 1, "image_id": 1, "category_id": 18, "bbox": [127, 226, 195, 319], "score": 0.965},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [107, 135, 467, 302], "score": 0.910},
        {"id": 3, "image_id": 1, "category_id": 3, "bbox": [457, 80, 243, 95], "score": 0.879},
        {"id": 4, "image_id": 2, "category_id": 25, "bbox": [163, 34, 290, 396], "score": 0.973},
        {"id": 5, "image_id": 2, "category_id": 24, "bbox": [239, 198, 185, 247], "score": 0.965},
        {"id": 6, "image_id": 2, "category_id": 24, "bbox": [194, 100, 238, 348], "score": 0.418},
    ])
}

/// Writes a COCO file into `dir` with the given images (`file_name`s) and annotations.
fn write_coco(dir: &Path, name: &str, files: &[String], annotations: serde_json::Value) -> PathBuf {
    let images: Vec<_> =
        files.iter().enumerate().map(|(i, f)| json!({"id": i + 1, "file_name": f})).collect();
    let coco = json!({
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": 2, "name": "bicycle"}, {"id": 3, "name": "car"}, {"id": 18, "name": "dog"},
            {"id": 24, "name": "zebra"}, {"id": 25, "name": "giraffe"},
        ],
    });
    let path = dir.join(name);
    std::fs::write(&path, coco.to_string()).expect("write coco");
    path
}

fn two_photos() -> Vec<String> {
    vec![photo("dog.jpg").display().to_string(), photo("giraffe.jpg").display().to_string()]
}

async fn render_sheet(coco: &Path, out: &Path) -> (usize, RgbImage) {
    let n = contact_sheet(coco.to_str().expect("utf-8 path"), out, 24, 320).await.expect("contact sheet");
    (n, image::open(out).expect("PNG decodes").to_rgb8())
}

/// Pixel rectangle (inclusive) of a box scaled by `s`, as the tile draws it.
fn rect(bbox: [f64; 4], s: f64) -> [u32; 4] {
    let [x, y, w, h] = bbox;
    [
        (x * s).floor() as u32,
        (y * s).floor() as u32,
        ((x + w) * s).ceil() as u32 - 1,
        ((y + h) * s).ceil() as u32 - 1,
    ]
}

#[tokio::test]
async fn draws_boxes_on_the_right_pixels() {
    let dir = tempfile::tempdir().expect("tempdir");
    let coco = write_coco(dir.path(), "annotations.json", &two_photos(), reference_annotations());
    let plain = write_coco(dir.path(), "plain.json", &two_photos(), json!([]));
    let (n, sheet) = render_sheet(&coco, &dir.path().join("sheet.png")).await;
    let (_, bare) = render_sheet(&plain, &dir.path().join("bare.png")).await;
    assert_eq!(n, 2);

    // Two columns; the row is as tall as the square giraffe tile (320 + caption).
    let cap = caption_height(320);
    assert_eq!(sheet.dimensions(), (2 * 320 + 3 * GAP, GAP + 320 + cap + GAP));
    assert_eq!(bare.dimensions(), sheet.dimensions());

    // dog.jpg: tile at (GAP, GAP), scale 320/768; dog box (category 18).
    let dog = category_colour(18);
    let [x0, y0, x1, y1] = rect([127.0, 226.0, 195.0, 319.0], 320.0 / 768.0);
    let at = |img: &RgbImage, x: u32, y: u32| *img.get_pixel(GAP + x, GAP + y);
    for (x, y) in [(x0, 200), (x0 + 1, 200), (x1, 200), (x1 - 1, 200), ((x0 + x1) / 2, y1)] {
        assert_eq!(at(&sheet, x, y), dog, "dog box edge at ({x}, {y})");
        assert_ne!(at(&bare, x, y), dog, "photo itself is not box-coloured at ({x}, {y})");
    }
    assert_eq!(at(&sheet, x0 + 2, 200), at(&bare, x0 + 2, 200), "outline is 2 px");
    let centre = ((x0 + x1) / 2, (y0 + y1) / 2);
    assert_eq!(at(&sheet, centre.0, centre.1), at(&bare, centre.0, centre.1), "box centre shows the photo");
    // Label box "dog 0.96" sits on the box's top edge, filled with the category colour.
    let label_h = 11;
    assert_eq!(at(&sheet, x0, y0 - label_h), dog);
    assert_ne!(at(&bare, x0, y0 - label_h), dog);

    // giraffe.jpg: tile at (2 GAP + 320, GAP), scale 320/500; giraffe box (category 25).
    let giraffe = category_colour(25);
    let [gx0, gy0, gx1, gy1] = rect([163.0, 34.0, 290.0, 396.0], 320.0 / 500.0);
    let at2 = |img: &RgbImage, x: u32, y: u32| *img.get_pixel(2 * GAP + 320 + x, GAP + y);
    assert_eq!(at2(&sheet, gx1, gy0 + 10), giraffe);
    assert_eq!(at2(&sheet, gx0, gy1 - 2), giraffe);
    let gc = ((gx0 + gx1) / 2, (gy0 + gy1) / 2 - 40);
    assert_eq!(at2(&sheet, gc.0, gc.1), at2(&bare, gc.0, gc.1));

    // Caption strips under both tiles; white gaps between and below the dog tile.
    assert_eq!(at(&sheet, 318, 240 + cap - 1), CAPTION_BG);
    assert_eq!(at2(&sheet, 318, 320 + cap - 1), CAPTION_BG);
    assert_eq!(*sheet.get_pixel(GAP + 320 + GAP / 2, 100), Rgb([255; 3]));
    assert_eq!(at(&sheet, 100, 240 + cap + 20), Rgb([255; 3]));
}

#[tokio::test]
async fn a_missing_image_becomes_a_grey_tile() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = vec!["does-not-exist.jpg".to_string(), photo("giraffe.jpg").display().to_string()];
    let coco = write_coco(dir.path(), "annotations.json", &files, json!([]));
    let (n, sheet) = render_sheet(&coco, &dir.path().join("sheet.png")).await;
    assert_eq!(n, 1, "only the giraffe is drawn");
    assert_eq!(*sheet.get_pixel(GAP + 300, GAP + 230), FAILED_BG);

    // Bytes that are no image fail the same way.
    std::fs::write(dir.path().join("garbage.jpg"), b"not an image at all").expect("write");
    let coco = write_coco(dir.path(), "garbage.json", &["garbage.jpg".to_string()], json!([]));
    let (n, sheet) = render_sheet(&coco, &dir.path().join("garbage.png")).await;
    assert_eq!(n, 0);
    assert_eq!(sheet.dimensions(), (320 + 2 * GAP, GAP + 240 + caption_height(320) + GAP));
}

#[tokio::test]
async fn reads_images_through_escaped_file_uris() {
    // file_name as labeljob writes it: the path percent-escaped (`#`, `?`, `%`, spaces)
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = dir.path().join("my photos");
    std::fs::create_dir(&sub).expect("mkdir");
    std::fs::copy(photo("dog.jpg"), sub.join("a b#1?%.jpg")).expect("copy");
    let loc = labeljob_store::Location::parse(&format!("file://{}", dir.path().display())).expect("loc");
    let name = loc.child_uri("my photos/a b#1?%.jpg");
    assert!(name.ends_with("/my%20photos/a%20b%231%3F%25.jpg"), "{name}");
    let coco = write_coco(dir.path(), "annotations.json", &[name], reference_annotations());
    let n = contact_sheet(&coco.display().to_string(), &dir.path().join("sheet.png"), 24, 320)
        .await
        .expect("contact sheet");
    assert_eq!(n, 1, "the image was found through its escaped URI");
}

#[tokio::test]
async fn reads_annotations_and_images_through_file_uris() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(photo("dog.jpg"), dir.path().join("dog.jpg")).expect("copy");
    let coco = write_coco(dir.path(), "annotations.json", &["dog.jpg".to_string()], reference_annotations());
    let uri = url::Url::from_file_path(&coco).expect("file URI").to_string();
    let out = dir.path().join("sheet.png");
    let n = contact_sheet(&uri, &out, 24, 320).await.expect("contact sheet");
    assert_eq!(n, 1);
    let sheet = image::open(&out).expect("PNG").to_rgb8();
    assert_eq!(sheet.dimensions(), (320 + 2 * GAP, GAP + 240 + caption_height(320) + GAP));
}

#[tokio::test]
async fn unreadable_annotations_name_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.json");
    let err = contact_sheet(missing.to_str().expect("utf-8"), &dir.path().join("o.png"), 4, 320)
        .await
        .expect_err("missing file");
    assert!(matches!(err, PreviewError::ReadAnnotations { .. }), "{err:?}");
    assert!(err.to_string().contains("nope.json"), "{err}");

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"images\": 3}").expect("write");
    let err = contact_sheet(bad.to_str().expect("utf-8"), &dir.path().join("o.png"), 4, 320)
        .await
        .expect_err("not COCO");
    assert!(matches!(err, PreviewError::ParseAnnotations { .. }), "{err:?}");
    assert!(err.to_string().contains("bad.json"), "{err}");

    let coco = write_coco(dir.path(), "a.json", &two_photos(), json!([]));
    let err = contact_sheet(coco.to_str().expect("utf-8"), &dir.path().join("no/such/dir/o.png"), 4, 320)
        .await
        .expect_err("unwritable output");
    assert!(matches!(err, PreviewError::Write { .. }), "{err:?}");
    let err = contact_sheet(coco.to_str().expect("utf-8"), &dir.path().join("o.png"), 4, 8).await;
    assert!(matches!(err, Err(PreviewError::TileWidth { tile: 8 })), "{err:?}");
}

#[test]
fn selection_prefers_images_with_boxes_in_file_order() {
    let images: Vec<CocoImage> = (1..=6).map(|id| CocoImage { id, file_name: format!("{id}.jpg") }).collect();
    let ann = |image_id| CocoAnnotation { image_id, category_id: 1, bbox: [0.0; 4], score: None };
    let anns = [ann(5), ann(2), ann(5)];
    let mut boxes: HashMap<u64, Vec<&CocoAnnotation>> = HashMap::new();
    for a in &anns {
        boxes.entry(a.image_id).or_default().push(a);
    }
    let ids = |max| select(&images, &boxes, max).iter().map(|&i| images[i].id).collect::<Vec<_>>();
    assert_eq!(ids(1), [2]);
    assert_eq!(ids(3), [1, 2, 5]);
    assert_eq!(ids(10), [1, 2, 3, 4, 5, 6]);
    assert!(ids(0).is_empty());
}

#[test]
fn labels_carry_names_and_scores_best_last() {
    let a = CocoAnnotation { image_id: 1, category_id: 18, bbox: [0.0; 4], score: Some(0.965) };
    let b = CocoAnnotation { image_id: 1, category_id: 99, bbox: [0.0; 4], score: Some(0.5) };
    let c = CocoAnnotation { image_id: 1, category_id: 18, bbox: [0.0; 4], score: None };
    let names = HashMap::from([(18, "dog")]);
    let labels: Vec<_> = marks(&[&a, &b, &c], &names).into_iter().map(|m| m.label).collect();
    assert_eq!(labels, ["#99 0.50", "dog 0.96", "dog"]);
}

#[test]
fn file_names_resolve_against_the_annotations() {
    let local = Source::of("/data/out/annotations.json");
    assert_eq!(local.sibling("a/b.jpg"), Source::Local(PathBuf::from("/data/out/a/b.jpg")));
    assert_eq!(local.sibling("/abs/c.jpg"), Source::Local(PathBuf::from("/abs/c.jpg")));
    assert_eq!(local.sibling("s3://bkt/x.jpg"), Source::Uri("s3://bkt/x.jpg".into()));
    let remote = Source::of("s3://bkt/out/annotations.json");
    assert_eq!(remote.sibling("img/1.jpg"), Source::Uri("s3://bkt/out/img/1.jpg".into()));
    assert_eq!(basename("s3://bkt/in/photo.jpg"), "photo.jpg");
    assert_eq!(basename("photo.jpg"), "photo.jpg");
}

#[test]
fn grid_has_four_columns_and_rows_as_tall_as_their_tallest_tile() {
    let ((w, h), corners) = layout(&[100, 120, 90, 100, 50], 80);
    assert_eq!(w, 4 * 80 + 5 * GAP);
    assert_eq!(h, GAP + 120 + GAP + 50 + GAP);
    assert_eq!(corners[3], (GAP + 3 * (80 + GAP), GAP));
    assert_eq!(corners[4], (GAP, 2 * GAP + 120));
}

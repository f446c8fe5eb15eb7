//! Writers on a tiny set: every file of every format, escaping, stems, empty images.

use super::*;
use crate::model::classes::Category;

fn meta() -> ExportMeta {
    let cat = |id: u32, name: &str| Category { id, name: name.into(), supercategory: name.into() };
    ExportMeta::new(vec![cat(1, "person"), cat(10, "traffic light")], "ab".repeat(32), "j<1>".into())
}

/// `rel` of the tree written with `archive`: `yolo/labels/x.txt` is `labels/x.txt` in `yolo.zip`.
fn read_tree(root: &std::path::Path, archive: Archive, rel: &str) -> String {
    let (format, inner) = rel.split_once('/').expect("format/path");
    match archive {
        Archive::None => std::fs::read_to_string(root.join(rel)).expect(rel),
        Archive::Zip => {
            let file = std::fs::File::open(root.join(format!("{format}.zip"))).expect("zip");
            let mut zip = zip::ZipArchive::new(file).expect("a zip archive");
            let mut entry = zip.by_name(inner).expect(rel);
            assert_eq!(entry.compression(), zip::CompressionMethod::Stored);
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).expect("utf-8");
            text
        }
    }
}

#[test]
fn every_format_writes_its_files() {
    for archive in [Archive::Zip, Archive::None] {
        every_format_writes_its_files_as(archive);
    }
}

fn every_format_writes_its_files_as(archive: Archive) {
    let dir = tempfile::tempdir().expect("tmp");
    let all = [
        OutputFormat::Coco,
        OutputFormat::Yolo,
        OutputFormat::Voc,
        OutputFormat::Cvat,
        OutputFormat::Labelstudio,
    ];
    let mut set = ExportSet::create(dir.path(), &all, archive, &meta(), true).expect("create");
    let mut stems = Stems::default();
    let dets = [
        Detection { bbox: [10.0, 20.0, 30.0, 40.0], score: 0.9, category_id: 1 },
        Detection { bbox: [-2.0, 0.0, 50.0, 10.0], score: 0.5, category_id: 10 },
    ];
    let a = OutImage {
        id: 1,
        uri: "file:///x/a&b.jpg".into(),
        width: 100,
        height: 50,
        detections: dets.to_vec(),
        flagged: false,
        stem: stems.assign("file:///x/a&b.jpg"),
    };
    let b = OutImage {
        id: 2,
        uri: "file:///y/a&b.jpg".into(),
        width: 10,
        height: 10,
        detections: vec![],
        flagged: true,
        stem: stems.assign("file:///y/a&b.jpg"),
    };
    for img in [a, b] {
        set.image(img).expect("image");
    }
    assert_eq!(set.images(), 2);
    set.finish(&serde_json::json!({"x": 1})).expect("finish");
    let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).expect(p);
    let tree = |p: &str| read_tree(dir.path(), archive, p);

    let coco: serde_json::Value = serde_json::from_str(&read("annotations.json")).expect("json");
    assert_eq!(coco["images"][1]["review"], true);
    assert_eq!(coco["annotations"][0]["segmentation"], serde_json::json!([]));
    assert_eq!(coco["categories"][1]["id"], 10);
    let results: serde_json::Value = serde_json::from_str(&read("results.json")).expect("json");
    assert_eq!(results.as_array().map(Vec::len), Some(2));

    assert_eq!(
        tree("yolo/labels/a&b.txt"),
        "0 0.250000 0.700000 0.300000 0.600000\n1 0.240000 0.100000 0.480000 0.200000\n"
    );
    assert_eq!(tree("yolo/labels/a&b_1.txt"), "", "an empty file for an image without boxes");
    assert!(tree("yolo/data.yaml").contains("names:\n  0: \"person\"\n  1: \"traffic light\"\n"));

    let voc = tree("voc/Annotations/a&b.xml");
    assert!(voc.contains("<filename>a&amp;b.jpg</filename>"), "{voc}");
    assert!(voc.contains("<xmin>0</xmin><ymin>0</ymin><xmax>48</xmax><ymax>10</ymax>"), "clamped: {voc}");
    assert_eq!(tree("voc/ImageSets/Main/default.txt"), "a&b\na&b_1\n");
    assert!(tree("voc/labelmap.txt").contains("traffic light:::\n"));

    let cvat = read("cvat/annotations.xml");
    assert!(cvat.contains("<name>j&lt;1&gt;</name>") && cvat.contains("<size>2</size>"), "{cvat}");
    assert!(cvat.contains("xtl=\"10.00\" ytl=\"20.00\" xbr=\"40.00\" ybr=\"60.00\""), "{cvat}");
    assert!(!dir.path().join("cvat/.annotations.xml.part").exists(), "spool removed");

    let tasks: serde_json::Value = serde_json::from_str(&read("labelstudio/tasks.json")).expect("json");
    let r = &tasks[0]["predictions"][0]["result"][0];
    assert_eq!((r["value"]["x"].as_f64(), r["value"]["height"].as_f64()), (Some(10.0), Some(80.0)));
    assert_eq!(tasks[0]["predictions"][0]["model_version"], "ab".repeat(32));
    assert!(read("labelstudio/config.xml").contains("<Label value=\"traffic light\"/>"));
    let stems_file = read(labeljob_store::layout::STEMS);
    assert_eq!(stems_file.lines().count(), 2);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let per_image = match archive {
        Archive::Zip => ["voc.zip", "yolo.zip"],
        Archive::None => ["voc", "yolo"],
    };
    let want = ["annotations.json", "cvat", "labelstudio", "results.json", "stems.jsonl"];
    let mut want: Vec<&str> = want.into_iter().chain(per_image).collect();
    want.sort();
    assert_eq!(names, want, "nothing else (no spool left) with {archive:?}");
}

#[test]
fn a_zip_past_65535_entries_is_zip64_and_complete() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut tree = tree::Tree::create(dir.path(), "big", Archive::Zip, &[]).expect("create");
    let list = tree.open_spool("list.txt").expect("spool");
    let n = 70_000u32;
    for i in 0..n {
        tree.put(&format!("labels/{i}.txt"), format!("{i}\n").as_bytes()).expect("put");
        std::io::Write::write_all(tree.spool(list), format!("{i}\n").as_bytes()).expect("list");
    }
    tree.finish().expect("finish");
    let file = std::fs::File::open(dir.path().join("big.zip")).expect("zip");
    let mut zip = zip::ZipArchive::new(file).expect("read back");
    assert_eq!(zip.len(), n as usize + 1);
    let mut text = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("labels/69999.txt").expect("last"), &mut text)
        .expect("read");
    assert_eq!(text, "69999\n");
    text.clear();
    std::io::Read::read_to_string(&mut zip.by_name("list.txt").expect("list"), &mut text).expect("read");
    assert_eq!(text.lines().count(), n as usize);
}

#[test]
fn push_fixed_prints_what_format_prints() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut off_by_one = 0;
    for _ in 0..100_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let v = (x % 4_000_000) as f64 / 997.0 - 2000.0;
        for places in [2u32, 6] {
            let mut got = String::new();
            push_fixed(&mut got, v, places);
            let want = format!("{v:.*}", places as usize);
            if got != want {
                // Only a tie in the last place may round the other way.
                let (g, w): (f64, f64) = (got.parse().expect("number"), want.parse().expect("number"));
                assert!((g - w).abs() <= 1.01 * 10f64.powi(-(places as i32)), "{v}: {got} vs {want}");
                off_by_one += 1;
            }
        }
    }
    assert!(off_by_one < 100, "{off_by_one} of 200000 differ in the last place");
    let mut s = String::new();
    for v in [0.0, -0.0004, -1.5, 1e300, f64::NAN] {
        push_fixed(&mut s, v, 2);
        s.push(' ');
    }
    assert_eq!(s, format!("0.00 0.00 -1.50 {:.2} NaN ", 1e300));
}

#[test]
fn a_failing_writer_is_reported_by_name() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut set =
        ExportSet::create(dir.path(), &[OutputFormat::Yolo], Archive::None, &meta(), false).expect("create");
    std::fs::remove_dir_all(dir.path().join("yolo")).expect("rm");
    let mut stems = Stems::default();
    let mut first_error = None;
    for id in 0..(BATCH as u64 * (QUEUE as u64 + 3)) {
        let uri = format!("file:///x/{id}.jpg");
        let img = OutImage {
            id,
            stem: stems.assign(&uri),
            uri,
            width: 1,
            height: 1,
            detections: vec![],
            flagged: false,
        };
        if let Err(e) = set.image(img) {
            first_error = Some(e);
            break;
        }
    }
    let e = match first_error {
        Some(e) => e,
        None => set.finish(&serde_json::json!({})).expect_err("the labels directory is gone"),
    };
    assert!(
        e.to_string().starts_with("writing yolo: ") && e.to_string().contains("yolo/labels/0.txt"),
        "{e}"
    );
}

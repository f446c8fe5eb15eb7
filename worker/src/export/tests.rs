//! Writers on a tiny set: every file of every format, escaping, stems, empty images.

use super::*;
use crate::model::classes::Category;

fn meta() -> ExportMeta {
    let cat = |id: u32, name: &str| Category { id, name: name.into(), supercategory: name.into() };
    ExportMeta {
        categories: vec![cat(1, "person"), cat(10, "traffic light")],
        model_sha256: "ab".repeat(32),
        job_name: "j<1>".into(),
    }
}

#[test]
fn every_format_writes_its_files() {
    let dir = tempfile::tempdir().expect("tmp");
    let all = [
        OutputFormat::Coco,
        OutputFormat::Yolo,
        OutputFormat::Voc,
        OutputFormat::Cvat,
        OutputFormat::Labelstudio,
    ];
    let mut set = ExportSet::create(dir.path(), &all, &meta(), true).expect("create");
    let mut stems = Stems::default();
    let dets = [
        Detection { bbox: [10.0, 20.0, 30.0, 40.0], score: 0.9, category_id: 1 },
        Detection { bbox: [-2.0, 0.0, 50.0, 10.0], score: 0.5, category_id: 10 },
    ];
    let a = OutImage {
        id: 1,
        uri: "file:///x/a&b.jpg",
        width: 100,
        height: 50,
        detections: &dets,
        flagged: false,
    };
    let b =
        OutImage { id: 2, uri: "file:///y/a&b.jpg", width: 10, height: 10, detections: &[], flagged: true };
    for img in [a, b] {
        let stem = stems.assign(img.uri);
        set.image(&img, &stem).expect("image");
    }
    assert_eq!(set.images(), 2);
    set.finish(&serde_json::json!({"x": 1})).expect("finish");
    let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).expect(p);

    let coco: serde_json::Value = serde_json::from_str(&read("annotations.json")).expect("json");
    assert_eq!(coco["images"][1]["review"], true);
    assert_eq!(coco["annotations"][0]["segmentation"], serde_json::json!([]));
    assert_eq!(coco["categories"][1]["id"], 10);
    let results: serde_json::Value = serde_json::from_str(&read("results.json")).expect("json");
    assert_eq!(results.as_array().map(Vec::len), Some(2));

    assert_eq!(
        read("yolo/labels/a&b.txt"),
        "0 0.250000 0.700000 0.300000 0.600000\n1 0.240000 0.100000 0.480000 0.200000\n"
    );
    assert_eq!(read("yolo/labels/a&b_1.txt"), "", "an empty file for an image without boxes");
    assert!(read("yolo/data.yaml").contains("names:\n  0: \"person\"\n  1: \"traffic light\"\n"));

    let voc = read("voc/Annotations/a&b.xml");
    assert!(voc.contains("<filename>a&amp;b.jpg</filename>"), "{voc}");
    assert!(voc.contains("<xmin>0</xmin><ymin>0</ymin><xmax>48</xmax><ymax>10</ymax>"), "clamped: {voc}");
    assert_eq!(read("voc/ImageSets/Main/default.txt"), "a&b\na&b_1\n");
    assert!(read("voc/labelmap.txt").contains("traffic light:::\n"));

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
}

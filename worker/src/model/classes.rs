//! Class vocabularies: the official COCO 2017 categories (ids 1–90 with gaps, names,
//! supercategories) and the mapping from a model's class index to a category.

use labeljob_api::v1alpha1::{ClassPreset, ClassesSpec};
use serde::Serialize;

/// The 80 COCO 2017 instance categories: (id, name, supercategory).
pub const COCO_CATEGORIES: [(u32, &str, &str); 80] = [
    (1, "person", "person"),
    (2, "bicycle", "vehicle"),
    (3, "car", "vehicle"),
    (4, "motorcycle", "vehicle"),
    (5, "airplane", "vehicle"),
    (6, "bus", "vehicle"),
    (7, "train", "vehicle"),
    (8, "truck", "vehicle"),
    (9, "boat", "vehicle"),
    (10, "traffic light", "outdoor"),
    (11, "fire hydrant", "outdoor"),
    (13, "stop sign", "outdoor"),
    (14, "parking meter", "outdoor"),
    (15, "bench", "outdoor"),
    (16, "bird", "animal"),
    (17, "cat", "animal"),
    (18, "dog", "animal"),
    (19, "horse", "animal"),
    (20, "sheep", "animal"),
    (21, "cow", "animal"),
    (22, "elephant", "animal"),
    (23, "bear", "animal"),
    (24, "zebra", "animal"),
    (25, "giraffe", "animal"),
    (27, "backpack", "accessory"),
    (28, "umbrella", "accessory"),
    (31, "handbag", "accessory"),
    (32, "tie", "accessory"),
    (33, "suitcase", "accessory"),
    (34, "frisbee", "sports"),
    (35, "skis", "sports"),
    (36, "snowboard", "sports"),
    (37, "sports ball", "sports"),
    (38, "kite", "sports"),
    (39, "baseball bat", "sports"),
    (40, "baseball glove", "sports"),
    (41, "skateboard", "sports"),
    (42, "surfboard", "sports"),
    (43, "tennis racket", "sports"),
    (44, "bottle", "kitchen"),
    (46, "wine glass", "kitchen"),
    (47, "cup", "kitchen"),
    (48, "fork", "kitchen"),
    (49, "knife", "kitchen"),
    (50, "spoon", "kitchen"),
    (51, "bowl", "kitchen"),
    (52, "banana", "food"),
    (53, "apple", "food"),
    (54, "sandwich", "food"),
    (55, "orange", "food"),
    (56, "broccoli", "food"),
    (57, "carrot", "food"),
    (58, "hot dog", "food"),
    (59, "pizza", "food"),
    (60, "donut", "food"),
    (61, "cake", "food"),
    (62, "chair", "furniture"),
    (63, "couch", "furniture"),
    (64, "potted plant", "furniture"),
    (65, "bed", "furniture"),
    (67, "dining table", "furniture"),
    (70, "toilet", "furniture"),
    (72, "tv", "electronic"),
    (73, "laptop", "electronic"),
    (74, "mouse", "electronic"),
    (75, "remote", "electronic"),
    (76, "keyboard", "electronic"),
    (77, "cell phone", "electronic"),
    (78, "microwave", "appliance"),
    (79, "oven", "appliance"),
    (80, "toaster", "appliance"),
    (81, "sink", "appliance"),
    (82, "refrigerator", "appliance"),
    (84, "book", "indoor"),
    (85, "clock", "indoor"),
    (86, "vase", "indoor"),
    (87, "scissors", "indoor"),
    (88, "teddy bear", "indoor"),
    (89, "hair drier", "indoor"),
    (90, "toothbrush", "indoor"),
];

/// One COCO `categories` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Category {
    /// Category id written to annotations.
    pub id: u32,
    /// Class name.
    pub name: String,
    /// COCO supercategory (the name itself for custom classes).
    pub supercategory: String,
}

/// Maps model class indices to categories.
#[derive(Debug, Clone)]
pub struct ClassMap {
    /// index → position in `categories` (None: the index has no category and is dropped).
    by_index: Vec<Option<usize>>,
    categories: Vec<Category>,
}

impl ClassMap {
    /// Build from the spec (`preset` or explicit `names`).
    pub fn from_spec(spec: &ClassesSpec) -> Self {
        match spec.preset {
            Some(preset) => Self::preset(preset),
            None => Self::names(&spec.names),
        }
    }

    /// A COCO preset.
    pub fn preset(preset: ClassPreset) -> Self {
        let categories: Vec<Category> = COCO_CATEGORIES
            .iter()
            .map(|(id, name, sup)| Category { id: *id, name: (*name).into(), supercategory: (*sup).into() })
            .collect();
        let by_index = match preset {
            // index + 1 is the COCO id; indices of the 10 unused ids map to nothing.
            ClassPreset::Coco90 => {
                (0..90u32).map(|i| categories.iter().position(|c| c.id == i + 1)).collect()
            }
            ClassPreset::Coco80 => (0..categories.len()).map(Some).collect(),
        };
        Self { by_index, categories }
    }

    /// Custom names: index i → category id i + 1.
    pub fn names(names: &[String]) -> Self {
        let categories: Vec<Category> = names
            .iter()
            .enumerate()
            .map(|(i, n)| Category { id: i as u32 + 1, name: n.clone(), supercategory: n.clone() })
            .collect();
        Self { by_index: (0..categories.len()).map(Some).collect(), categories }
    }

    /// The category of a model class index, if it has one.
    pub fn category(&self, index: u32) -> Option<&Category> {
        self.by_index.get(index as usize).copied().flatten().map(|p| &self.categories[p])
    }

    /// Every category, in id order (COCO `categories`).
    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    /// Number of class indices the model may emit.
    pub fn num_indices(&self) -> usize {
        self.by_index.len()
    }

    /// Category ids of the given names; unknown names are returned as errors.
    pub fn ids_of<'a>(&self, names: &'a [String]) -> Result<Vec<u32>, &'a str> {
        names
            .iter()
            .map(|n| self.categories.iter().find(|c| &c.name == n).map(|c| c.id).ok_or(n.as_str()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coco90_index_plus_one_is_the_id() {
        let m = ClassMap::preset(ClassPreset::Coco90);
        assert_eq!(m.category(0).map(|c| c.name.as_str()), Some("person"));
        assert_eq!(m.category(17).map(|c| (c.id, c.name.as_str())), Some((18, "dog")));
        assert_eq!(m.category(89).map(|c| c.id), Some(90));
        assert!(m.category(11).is_none(), "id 12 is unused in COCO");
        assert!(m.category(90).is_none());
        assert_eq!(m.categories().len(), 80);
    }

    #[test]
    fn coco80_is_positional() {
        let m = ClassMap::preset(ClassPreset::Coco80);
        assert_eq!(m.category(11).map(|c| (c.id, c.name.as_str())), Some((13, "stop sign")));
        assert_eq!(m.category(79).map(|c| c.id), Some(90));
    }

    #[test]
    fn matches_the_shipped_label_file() {
        let text = include_str!("../../../models/coco_labels.txt");
        let m = ClassMap::preset(ClassPreset::Coco90);
        for line in text.lines() {
            let (idx, name) = line.split_once("  ").expect("index and name");
            let idx: u32 = idx.parse().expect("index");
            assert_eq!(m.category(idx).map(|c| c.name.as_str()), Some(name), "index {idx}");
        }
    }

    #[test]
    fn names_filter() {
        let m = ClassMap::preset(ClassPreset::Coco90);
        assert_eq!(m.ids_of(&["dog".into(), "cat".into()]), Ok(vec![18, 17]));
        let bad = ["doge".to_string()];
        assert_eq!(m.ids_of(&bad), Err("doge"));
    }
}

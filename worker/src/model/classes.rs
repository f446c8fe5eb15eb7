//! Class vocabularies: the official COCO 2017 categories (ids 1–90 with gaps, names,
//! supercategories) and the mapping from a model's class index to a category.

use labeljob_api::v1alpha1::{ClassPreset, ClassesSpec};
use serde::Serialize;

pub use labeljob_api::coco::COCO_CATEGORIES;

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

    /// The same model classes with categories renamed or merged by `map` (model class name →
    /// output name). Classes with the same output name become one category whose id (and
    /// supercategory) are those of its smallest-id member; categories stay in id order.
    pub fn remapped(&self, map: &std::collections::BTreeMap<String, String>) -> Self {
        if map.is_empty() {
            return self.clone();
        }
        let out_name = |c: &Category| map.get(&c.name).cloned().unwrap_or_else(|| c.name.clone());
        let mut merged: Vec<Category> = Vec::new();
        let mut sorted: Vec<&Category> = self.categories.iter().collect();
        sorted.sort_by_key(|c| c.id);
        for c in sorted {
            let name = out_name(c);
            if !merged.iter().any(|m| m.name == name) {
                merged.push(Category { id: c.id, name, supercategory: c.supercategory.clone() });
            }
        }
        let by_index = self
            .by_index
            .iter()
            .map(|p| {
                let name = out_name(&self.categories[(*p)?]);
                merged.iter().position(|m| m.name == name)
            })
            .collect();
        Self { by_index, categories: merged }
    }

    /// The model class indices whose category is named `name`.
    pub fn indices_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = u32> + 'a {
        self.by_index
            .iter()
            .enumerate()
            .filter_map(move |(i, p)| p.filter(|p| self.categories[*p].name == name).map(|_| i as u32))
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
    fn class_map_renames_and_merges() {
        let m = ClassMap::preset(ClassPreset::Coco90);
        let map = [("truck", "car"), ("bus", "car"), ("person", "pedestrian")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let r = m.remapped(&map);
        assert_eq!(r.categories().len(), 78, "bus and truck merge into car");
        assert_eq!(r.category(0).map(|c| (c.id, c.name.as_str())), Some((1, "pedestrian")));
        for idx in [2, 5, 7] {
            assert_eq!(r.category(idx).map(|c| (c.id, c.name.as_str())), Some((3, "car")), "index {idx}");
        }
        assert_eq!(r.category(17).map(|c| (c.id, c.name.as_str())), Some((18, "dog")));
        assert_eq!(m.indices_named("dog").collect::<Vec<_>>(), vec![17]);
    }
}

//! The children of a LabelJob, said once: the one table of child kinds ([`Child`]: Kubernetes
//! kind, name suffix, `app.kubernetes.io/component` label, in apply order as [`Child::ALL`]),
//! [`ByChild`] (one slot per child) holding the objects to apply ([`Objects`], what `build`
//! returns) or seen ([`Objects`] again, what `observe` reads), and [`Want`], the decision
//! `build` takes. `observe`, `build`, `apply` and teardown iterate [`Child::ALL`]; nothing
//! else lists the children. A leaf: it imports no other controller module.

use std::ops::{Index, IndexMut};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::Serialize;

/// The Kubernetes kind of a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `v1/ConfigMap`.
    ConfigMap,
    /// `batch/v1/Job`.
    Job,
    /// `apps/v1/Deployment`.
    Deployment,
    /// `v1/Service`.
    Service,
}

impl Kind {
    /// The kind as the API spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::ConfigMap => "ConfigMap",
            Kind::Job => "Job",
            Kind::Deployment => "Deployment",
            Kind::Service => "Service",
        }
    }
}

/// The children of a LabelJob, declared in apply order (the ConfigMap first: pods mount it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Child {
    /// ConfigMap `NAME-job`: the LabelJob document the worker pods read.
    ConfigMap,
    /// Job `NAME-plan`: `labeljob plan`.
    PlanJob,
    /// Service `NAME-inference`.
    Service,
    /// Deployment `NAME-inference`: `labeljob serve`.
    Deployment,
    /// Indexed Job `NAME-shards`: `labeljob shard`, one index per shard.
    ShardsJob,
    /// Job `NAME-merge`: `labeljob merge`.
    MergeJob,
}

/// One row of the child table.
struct Row {
    kind: Kind,
    suffix: &'static str,
    component: &'static str,
}

impl Child {
    /// Every child, in apply order (teardown goes the other way).
    pub const ALL: [Child; 6] = [
        Child::ConfigMap,
        Child::PlanJob,
        Child::Service,
        Child::Deployment,
        Child::ShardsJob,
        Child::MergeJob,
    ];

    /// How many children there are.
    pub const COUNT: usize = Child::ALL.len();

    /// The table: kind, name suffix and component label of each child.
    const fn row(self) -> Row {
        let (kind, suffix, component) = match self {
            Child::ConfigMap => (Kind::ConfigMap, "job", "job"),
            Child::PlanJob => (Kind::Job, "plan", "plan"),
            Child::Service => (Kind::Service, "inference", "inference"),
            Child::Deployment => (Kind::Deployment, "inference", "inference"),
            Child::ShardsJob => (Kind::Job, "shards", "shard"),
            Child::MergeJob => (Kind::Job, "merge", "merge"),
        };
        Row { kind, suffix, component }
    }

    /// Its Kubernetes kind.
    pub const fn kind(self) -> Kind {
        self.row().kind
    }

    /// Its name suffix: the child of LabelJob `NAME` is `NAME-SUFFIX`.
    pub const fn suffix(self) -> &'static str {
        self.row().suffix
    }

    /// Its `app.kubernetes.io/component` label, also the name of its container.
    pub const fn component(self) -> &'static str {
        self.row().component
    }

    /// Its name for LabelJob `job`.
    pub fn name(self, job: &str) -> String {
        format!("{job}-{}", self.suffix())
    }

    /// The longest name suffix, with its dash: child names must fit a 63-character DNS label.
    pub const LONGEST_SUFFIX: usize = {
        let mut i = 0;
        let mut longest = 0;
        while i < Child::COUNT {
            let n = Child::ALL[i].suffix().len() + 1;
            if n > longest {
                longest = n;
            }
            i += 1;
        }
        longest
    };

    const fn index(self) -> usize {
        self as usize
    }
}

/// One `T` per child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByChild<T>([T; Child::COUNT]);

impl<T: Default> Default for ByChild<T> {
    fn default() -> Self {
        ByChild(std::array::from_fn(|_| T::default()))
    }
}

impl<T> Index<Child> for ByChild<T> {
    type Output = T;
    fn index(&self, c: Child) -> &T {
        &self.0[c.index()]
    }
}

impl<T> IndexMut<Child> for ByChild<T> {
    fn index_mut(&mut self, c: Child) -> &mut T {
        &mut self.0[c.index()]
    }
}

impl<T> ByChild<T> {
    /// Each child's value, computed by `f`.
    pub fn from_fn(f: impl FnMut(Child) -> T) -> Self {
        ByChild(Child::ALL.map(f))
    }
}

/// A set of children.
pub type ChildSet = ByChild<bool>;

impl ChildSet {
    /// The set of `children`.
    pub fn of(children: &[Child]) -> Self {
        ByChild::from_fn(|c| children.contains(&c))
    }

    /// Whether `c` is in the set.
    pub fn contains(&self, c: Child) -> bool {
        self[c]
    }
}

/// What `build` makes this pass: the decision it takes (from `decide`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Want {
    /// The children to apply.
    pub children: ChildSet,
    /// The children applied suspended: Jobs with `spec.suspend: true`, the Deployment at zero
    /// replicas.
    pub suspended: ChildSet,
}

/// A child object, of one of the kinds in [`Kind`]; serialises as the object itself. Boxed, so
/// a table of them (and every future holding one) stays a few pointers in size.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Object {
    /// A ConfigMap.
    ConfigMap(Box<ConfigMap>),
    /// A Job.
    Job(Box<Job>),
    /// A Deployment.
    Deployment(Box<Deployment>),
    /// A Service.
    Service(Box<Service>),
}

/// The Kubernetes types children are made of, tied to their [`Kind`] and [`Object`] variant.
pub trait ChildObject: Resource<DynamicType = ()> + Sized {
    /// The kind.
    const KIND: Kind;
    /// Wrap as an [`Object`].
    fn into_object(self) -> Object;
    /// The object, if it is of this type.
    fn from_object(o: &Object) -> Option<&Self>;
}

macro_rules! child_object {
    ($($t:ident),*) => {$(
        impl ChildObject for $t {
            const KIND: Kind = Kind::$t;
            fn into_object(self) -> Object {
                Object::$t(Box::new(self))
            }
            fn from_object(o: &Object) -> Option<&Self> {
                match o {
                    Object::$t(x) => Some(x.as_ref()),
                    _ => None,
                }
            }
        }
        impl From<$t> for Object {
            fn from(x: $t) -> Object {
                x.into_object()
            }
        }
    )*};
}
child_object!(ConfigMap, Job, Deployment, Service);

impl Object {
    /// Its metadata.
    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Object::ConfigMap(o) => o.meta(),
            Object::Job(o) => o.meta(),
            Object::Deployment(o) => o.meta(),
            Object::Service(o) => o.meta(),
        }
    }
}

/// Child objects: those to apply (`build`), or those the cluster shows (`observe`).
pub type Objects = ByChild<Option<Object>>;

impl Objects {
    /// Child `c`, if present and of type `K`.
    pub fn get<K: ChildObject>(&self, c: Child) -> Option<&K> {
        self[c].as_ref().and_then(K::from_object)
    }

    /// The children present, in apply order.
    pub fn present(&self) -> impl DoubleEndedIterator<Item = (Child, &Object)> {
        Child::ALL.into_iter().filter_map(|c| self[c].as_ref().map(|o| (c, o)))
    }

    /// Whether any child is present.
    pub fn any(&self) -> bool {
        self.present().next().is_some()
    }

    /// `(child, name, uid)` of every child present, in teardown order (the reverse of apply
    /// order: Jobs first, the ConfigMap they mount last).
    pub fn existing(&self) -> Vec<(Child, String, String)> {
        self.present()
            .rev()
            .filter_map(|(c, o)| {
                let m = o.meta();
                Some((c, m.name.clone()?, m.uid.clone().unwrap_or_default()))
            })
            .collect()
    }

    /// Take the children out, in apply order.
    pub fn into_present(self) -> impl Iterator<Item = (Child, Object)> {
        Child::ALL.into_iter().zip(self.0).filter_map(|(c, o)| o.map(|o| (c, o)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_each_child_once() {
        for (i, c) in Child::ALL.into_iter().enumerate() {
            assert_eq!(c.index(), i, "ALL is in declaration order");
        }
        let names: Vec<_> = Child::ALL.iter().map(|c| c.name("a")).collect();
        assert_eq!(names, ["a-job", "a-plan", "a-inference", "a-inference", "a-shards", "a-merge"]);
        assert_eq!(Child::LONGEST_SUFFIX, "-inference".len());
        assert_eq!(Child::ShardsJob.component(), "shard");
        assert_eq!(Child::Service.kind().as_str(), "Service");
    }

    #[test]
    fn objects_keep_their_slot_and_tear_down_in_reverse() {
        let mut objs = Objects::default();
        assert!(!objs.any());
        let named = |n: &str, uid: &str| ObjectMeta {
            name: Some(n.into()),
            uid: Some(uid.into()),
            ..ObjectMeta::default()
        };
        objs[Child::ConfigMap] =
            Some(ConfigMap { metadata: named("a-job", "1"), ..ConfigMap::default() }.into());
        objs[Child::ShardsJob] = Some(Job { metadata: named("a-shards", "2"), ..Job::default() }.into());
        assert!(objs.any());
        assert!(objs.get::<Job>(Child::ShardsJob).is_some());
        assert!(objs.get::<ConfigMap>(Child::ShardsJob).is_none(), "typed access checks the kind");
        let order: Vec<_> = objs.existing().into_iter().map(|(c, _, uid)| (c, uid)).collect();
        assert_eq!(order, [(Child::ShardsJob, "2".to_string()), (Child::ConfigMap, "1".to_string())]);
        let set = ChildSet::of(&[Child::PlanJob]);
        assert!(set.contains(Child::PlanJob) && !set.contains(Child::MergeJob));
    }
}

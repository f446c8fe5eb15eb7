//! Events about LabelJobs (`events.k8s.io/v1`), published the way kube's `Recorder` does — one
//! Event per (type, reason, action, object); a repeat within six minutes patches that Event's
//! `series` instead of creating another — with one difference: the name. kube names an Event
//! `{object name}.{nanoseconds in hex}`, which is longer than the 253 characters the apiserver
//! allows once the object's name is longer than 236, so the Event is refused and nothing is
//! published (a LabelJob may have a 253-character name, and a too-long name is exactly what
//! `InvalidSpec` must then report). [`event_name`] cuts the object part so the name always
//! fits and stays a DNS subdomain; `regarding` still names the object in full.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Client};

/// The longest object name the apiserver accepts (a DNS subdomain).
pub const MAX_NAME_LEN: usize = 253;
/// How long a published Event is remembered for series (as kube's `Recorder`).
const CACHE_TTL: SignedDuration = SignedDuration::from_mins(6);

/// The name of an Event about object `object` created at `nanos` (ns since the epoch):
/// `{object}.{nanos:x}`, the object part cut (and stripped of a trailing `-`/`.`) so that the
/// whole is at most [`MAX_NAME_LEN`] characters.
pub fn event_name(object: &str, nanos: i128) -> String {
    let suffix = format!(".{:x}", nanos.max(0));
    let room = MAX_NAME_LEN.saturating_sub(suffix.len());
    let mut prefix: String = object.chars().take(room).collect();
    while prefix.ends_with(['-', '.']) {
        prefix.pop();
    }
    if prefix.is_empty() {
        prefix.push_str("labeljob");
    }
    format!("{prefix}{suffix}")
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    type_: &'static str,
    reason: String,
    action: String,
    regarding: (Option<String>, Option<String>, Option<String>, Option<String>),
}

/// Publishes Events as one reporting controller instance.
pub struct EventRecorder {
    client: Client,
    controller: String,
    instance: String,
    cache: Mutex<HashMap<Key, K8sEvent>>,
}

impl EventRecorder {
    /// A recorder reporting as `controller` (instance `instance`, default: the controller).
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        EventRecorder {
            client,
            controller: controller.to_string(),
            instance: instance.unwrap_or_else(|| controller.to_string()),
            cache: Mutex::default(),
        }
    }

    fn event(&self, ev: &Event, type_: &str, reference: &ObjectReference, now: Timestamp) -> K8sEvent {
        let object = reference.name.as_deref().unwrap_or(&self.controller);
        K8sEvent {
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            event_time: Some(MicroTime(now)),
            regarding: Some(reference.clone()),
            note: ev.note.clone(),
            metadata: ObjectMeta {
                namespace: reference.namespace.clone(),
                name: Some(event_name(object, now.as_nanosecond())),
                ..ObjectMeta::default()
            },
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            type_: Some(type_.to_string()),
            related: ev.secondary.clone(),
            ..K8sEvent::default()
        }
    }

    /// Publish `ev` about the object `reference`: create an Event, or count a repeat on the
    /// one published for the same type, reason and action in the last six minutes.
    pub async fn publish(&self, ev: &Event, reference: &ObjectReference) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let type_ = match ev.type_ {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        };
        let key = Key {
            type_,
            reason: ev.reason.clone(),
            action: ev.action.clone(),
            regarding: (
                reference.namespace.clone(),
                reference.name.clone(),
                reference.uid.clone(),
                reference.kind.clone(),
            ),
        };
        let cached = match self.cache.lock() {
            Ok(mut cache) => {
                cache.retain(|_, e| {
                    let last = e
                        .series
                        .as_ref()
                        .map(|s| s.last_observed_time.0)
                        .or(e.event_time.as_ref().map(|t| t.0));
                    last.is_some_and(|t| t + CACHE_TTL > now)
                });
                cache.get(&key).cloned()
            }
            Err(_) => None,
        };
        let ns = reference.namespace.as_deref().unwrap_or("default");
        let events: Api<K8sEvent> = Api::namespaced(self.client.clone(), ns);
        let event = match cached {
            Some(mut e) => {
                let count = e.series.as_ref().map_or(2, |s| s.count + 1);
                e.series = Some(EventSeries { count, last_observed_time: MicroTime(now) });
                let name = e.metadata.name.clone().unwrap_or_default();
                events.patch(&name, &PatchParams::default(), &Patch::Merge(&e)).await?;
                e
            }
            None => {
                let e = self.event(ev, type_, reference, now);
                events.create(&PostParams::default(), &e).await?;
                e
            }
        };
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, event);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::validate::is_dns_subdomain;

    #[test]
    fn names_fit_for_every_object_name_length() {
        let nanos = 1_767_225_600_123_456_789_i128;
        assert_eq!(event_name("street", nanos), format!("street.{nanos:x}"));
        for len in [1, 63, 236, 237, 240, 253] {
            for unit in ["a", "ab-", "a.b-c"] {
                let object: String = unit.repeat(253).chars().take(len).collect();
                let object = object.trim_end_matches(['-', '.']).to_string();
                let name = event_name(&object, nanos);
                assert!(is_dns_subdomain(&name), "{len} {unit}: {name} ({} chars)", name.len());
                assert!(name.ends_with(&format!(".{nanos:x}")), "{name}");
            }
        }
        assert_eq!(event_name("", 0), "labeljob.0");
    }
}

//! `kubectl labeljob status NAME`: the LabelJob's status as a person reads it — phase,
//! progress, throughput and ETA, shard counts, GPU time and cost, the conditions — and a table
//! of every shard's progress as the shards last wrote it to the output store
//! (`progress/shard-NNNNN.json`, the files the operator reads). Rendering is pure.

use std::fmt::Write as _;

use labeljob_api::LabelJob;
use labeljob_operator::progress::ShardProgress;

fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// A shard's state from its progress file.
fn state(p: &ShardProgress) -> &'static str {
    if p.done { "done" } else { "running" }
}

/// The lines of `status NAME` for `lj`, with the shards' progress (or why it could not be read).
pub fn render(lj: &LabelJob, progress: &Result<Vec<Option<ShardProgress>>, String>) -> String {
    let mut out = String::new();
    let s = lj.status.clone().unwrap_or_default();
    let name = lj.metadata.name.as_deref().unwrap_or_default();
    let ns = lj.metadata.namespace.as_deref().unwrap_or_default();
    let phase = s.phase.map_or_else(|| "Pending".to_string(), |p| p.to_string());
    let _ = writeln!(out, "LabelJob {ns}/{name}: {phase}");
    let rate = s.images_per_second.map(|r| format!("{r:.1} img/s"));
    let images = s.images.map(|i| format!("{}/{} images, {} failed", i.processed, i.total, i.failed));
    let _ = writeln!(
        out,
        "  progress  {}   {}   ETA {}",
        images.unwrap_or_else(|| "-".into()),
        rate.unwrap_or_else(|| "- img/s".into()),
        or_dash(s.eta.as_deref())
    );
    if let Some(i) = s.images.filter(|i| i.review.is_some() || i.duplicates.is_some()) {
        let _ =
            writeln!(out, "  merged    review {}, duplicates {}", or_dash(i.review), or_dash(i.duplicates));
    }
    let shards = s
        .shards
        .map(|c| format!("{}/{} done, {} running, {} failed", c.succeeded, c.total, c.active, c.failed));
    let _ = writeln!(
        out,
        "  shards    {}",
        shards.unwrap_or_else(|| format!("{} planned", lj.spec.workers.shards))
    );
    let _ = writeln!(out, "  model     {}", or_dash(s.model.as_deref()));
    let _ = writeln!(out, "  output    {}", s.output.as_deref().unwrap_or(&lj.spec.output.uri));
    if let Some(g) = s.gpu_seconds {
        let cost = s.estimated_cost.map(|c| format!(", estimated cost {c:.2}")).unwrap_or_default();
        let _ = writeln!(out, "  gpu       {g:.0} GPU-seconds ({:.2} GPU-hours){cost}", g / 3600.0);
    }
    if !s.conditions.is_empty() {
        let _ = writeln!(out, "CONDITIONS");
        let width = s.conditions.iter().map(|c| c.type_.len()).max().unwrap_or(0);
        let rwidth = s.conditions.iter().map(|c| c.reason.len()).max().unwrap_or(0);
        for c in &s.conditions {
            let _ = writeln!(
                out,
                "  {:width$}  {:5}  {:rwidth$}  {}",
                c.type_,
                c.status,
                c.reason,
                c.message,
                width = width,
                rwidth = rwidth
            );
        }
    }
    match progress {
        Ok(shards) => {
            let _ = writeln!(out, "SHARD  PROCESSED        FAILED  IMG/S   STATE");
            for (i, p) in shards.iter().enumerate() {
                let line = match p {
                    Some(p) => format!(
                        "{i:<5}  {:<15}  {:<6}  {:<6.1}  {}",
                        format!("{}/{}", p.processed, p.total),
                        p.failed,
                        p.images_per_second(),
                        state(p)
                    ),
                    None => format!("{i:<5}  {:<15}  {:<6}  {:<6}  not started", "-", "-", "-"),
                };
                let _ = writeln!(out, "{}", line.trim_end());
            }
        }
        Err(e) => {
            let _ = writeln!(out, "SHARDS: cannot read their progress from {}: {e}", lj.spec.output.uri);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use labeljob_api::v1alpha1::ImageCounts;
    use labeljob_api::{LabelJobStatus, Phase};

    #[test]
    fn a_finished_job_shows_its_merge_counts_and_no_gpu_line_without_gpus() {
        let mut lj = labeljob_operator::fixtures::sample("labeljob-minimal.yaml");
        lj.status = Some(LabelJobStatus {
            phase: Some(Phase::Succeeded),
            images: Some(ImageCounts {
                total: 10,
                processed: 10,
                failed: 1,
                review: Some(2),
                duplicates: Some(0),
            }),
            output: Some("s3://labels/street/annotations.json".into()),
            ..LabelJobStatus::default()
        });
        let text = render(&lj, &Ok(vec![None]));
        assert!(text.contains(": Succeeded\n"), "{text}");
        assert!(text.contains("10/10 images, 1 failed   - img/s   ETA -"), "{text}");
        assert!(text.contains("merged    review 2, duplicates 0"), "{text}");
        assert!(text.contains("shards    4 planned"), "no shard counts yet: {text}");
        assert!(text.contains("output    s3://labels/street/annotations.json"), "{text}");
        assert!(!text.contains("gpu "), "{text}");
        assert!(!text.contains("CONDITIONS"), "{text}");
        let text = render(&lj, &Err("denied".into()));
        assert!(
            text.ends_with("SHARDS: cannot read their progress from s3://labels/street/: denied\n"),
            "{text}"
        );
    }
}

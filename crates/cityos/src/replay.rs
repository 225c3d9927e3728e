//! `cityos replay`: recorded vehicle positions pushed through the real
//! ingest path on a replayed clock, with the API and feeds served as it
//! goes, and the TripUpdates feed written every 30 s of replayed time so
//! anyone can score the predictions with their own tools.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cityos_realtime::{PositionRecord, decode_vehicle_positions, read_positions_csv};
use cityos_server::{AppState, Served};

/// Seconds of replayed time between two TripUpdates snapshots.
pub const SNAPSHOT_EVERY_S: i64 = 30;

/// What to replay and how.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// The GTFS feed the positions refer to (zip or folder).
    #[arg(long)]
    pub gtfs: PathBuf,
    /// Recorded positions: a CSV in the flattened GTFS-realtime layout
    /// (`vehicle.trip.trip_id`, `vehicle.position.latitude`, `vehicle.timestamp`, …),
    /// one GTFS-realtime VehiclePositions `.pb` file, or a folder of them.
    #[arg(long)]
    pub positions: PathBuf,
    /// Replayed seconds per real second; 0 replays as fast as the machine goes.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Write the TripUpdates feed as it stood every 30 s of replayed time
    /// here, one `trip-updates-<POSIX seconds>.pb` per snapshot.
    #[arg(long)]
    pub snapshots: Option<PathBuf>,
    /// Keep serving after the last position, until stopped.
    #[arg(long)]
    pub linger: bool,
}

/// Reads every position of `path`, in time order. Positions without a time
/// cannot be replayed and are counted as skipped.
pub fn read_positions(path: &Path) -> anyhow::Result<(Vec<PositionRecord>, usize)> {
    let mut positions = Vec::new();
    let mut skipped = 0;
    let mut read_pb = |file: &Path| -> anyhow::Result<()> {
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let feed =
            decode_vehicle_positions(&bytes).with_context(|| format!("{}", file.display()))?;
        skipped += feed.skipped;
        positions.extend(feed.positions);
        Ok(())
    };
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("cannot read the folder {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "pb"))
            .collect();
        files.sort();
        if files.is_empty() {
            bail!(
                "{} holds no .pb files of GTFS-realtime VehiclePositions",
                path.display()
            );
        }
        files.iter().try_for_each(|f| read_pb(f))?;
    } else if path.extension().is_some_and(|e| e == "pb") {
        read_pb(path)?;
    } else {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let csv = read_positions_csv(std::io::BufReader::new(file))
            .with_context(|| format!("{}", path.display()))?;
        if let Some(first) = csv.errors.first() {
            eprintln!(
                "{}: {} rows skipped, the first: {first}",
                path.display(),
                csv.bad_rows
            );
        }
        skipped += csv.bad_rows;
        positions = csv.positions;
    }
    let before = positions.len();
    positions.retain(|p| p.timestamp.is_some());
    skipped += before - positions.len();
    positions.sort_by_key(|p| p.timestamp);
    if positions.is_empty() {
        bail!("{} has no position with a time to replay", path.display());
    }
    Ok((positions, skipped))
}

/// What a replay did.
#[derive(Debug, Default)]
pub struct ReplaySummary {
    /// Positions taken in.
    pub accepted: u64,
    /// Positions refused, by reason.
    pub rejected: std::collections::BTreeMap<String, u64>,
    /// Snapshots written.
    pub snapshots: usize,
    /// Replayed seconds.
    pub replayed_s: i64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Replays `positions` on `served` through `state`'s live ingest: the
/// clock steps one replayed second at a time, paced by `speed`.
pub async fn drive(
    state: AppState,
    served: std::sync::Arc<Served>,
    positions: Vec<PositionRecord>,
    speed: f64,
    snapshots: Option<PathBuf>,
) -> anyhow::Result<ReplaySummary> {
    if let Some(dir) = &snapshots {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let (Some(first), Some(last)) = (
        positions.first().and_then(|p| p.timestamp),
        positions.last().and_then(|p| p.timestamp),
    ) else {
        bail!("nothing to replay");
    };
    let progress = crate::bar(
        (last - first).max(1) as u64,
        "{spinner} replaying {msg} [{bar:40}] {percent}% ({eta})",
    );
    let started = Instant::now();
    let mut summary = ReplaySummary::default();
    let mut next = 0;
    let mut t = first;
    let mut next_snapshot = first - first.rem_euclid(SNAPSHOT_EVERY_S) + SNAPSHOT_EVERY_S;
    while t <= last {
        state.live.clock.replay_at(t);
        let end = next + positions[next..].partition_point(|p| p.timestamp <= Some(t));
        if end > next {
            let batch = state
                .live
                .ingest_records(&served, &positions[next..end], &state.metrics);
            summary.accepted += batch.accepted;
            for (reason, n) in batch.rejected {
                *summary.rejected.entry(reason).or_default() += n;
            }
            next = end;
        }
        if t >= next_snapshot {
            cityos_server::realtime::refresh(&state).await;
            if let Some(dir) = &snapshots {
                let file = dir.join(format!("trip-updates-{t}.pb"));
                std::fs::write(&file, &state.live.snapshot().trip_updates)
                    .with_context(|| format!("cannot write {}", file.display()))?;
                summary.snapshots += 1;
            }
            next_snapshot += SNAPSHOT_EVERY_S;
            let at = jiff::Timestamp::from_second(t).map(|ts| {
                ts.to_zoned(served.network.timezone().clone())
                    .strftime("%Y-%m-%d %H:%M:%S")
                    .to_string()
            });
            progress.set_message(at.unwrap_or_default());
            progress.set_position((t - first) as u64);
        }
        t += 1;
        if speed > 0.0 {
            let due = started + Duration::from_secs_f64((t - first) as f64 / speed);
            tokio::time::sleep_until(due.into()).await;
        } else if (t - first) % 600 == 0 {
            // Let the server answer requests between long stretches.
            tokio::task::yield_now().await;
        }
    }
    progress.finish_and_clear();
    cityos_server::realtime::refresh(&state).await;
    summary.replayed_s = last - first;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Prints what a replay did.
pub fn report(summary: &ReplaySummary, skipped: usize) {
    let seconds = summary.elapsed.as_secs_f64().max(1e-9);
    let total = summary.accepted + summary.rejected.values().sum::<u64>();
    eprintln!(
        "replayed {} min of positions in {:.1} s ({:.0}× real time): {} positions, {} accepted, {} unreadable",
        summary.replayed_s / 60,
        seconds,
        summary.replayed_s as f64 / seconds,
        total,
        summary.accepted,
        skipped
    );
    for (reason, n) in &summary.rejected {
        eprintln!("  refused {n}: {reason}");
    }
    if summary.snapshots > 0 {
        eprintln!("wrote {} TripUpdates snapshots", summary.snapshots);
    }
}

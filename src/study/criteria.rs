//! The efficacy criteria of a study (issue 12 §4), per controller × patient, from the raw course results:
//! (a) assistance change from the first to the last session, (b) the patient's task-effort share, (c) targets
//! reached, and — with a `capacity_drop` — (d) whether help rises again within 5 assisted trials of the drop and
//! success recovers to ≥ 80 % within 20. Each is computed per course over its assisted trials, then summarised
//! across seeds (mean and 95 % interval, [`super::tables::mean_ci`]). Definitions: docs/studies.md.

use super::file::CapacityDrop;
use super::raw::{BlockResult, CourseResult};
use super::tables::{self, ordered};

/// Assisted trials after the drop within which the help must rise (issue 12 §2).
pub const RERAISE_WITHIN: usize = 5;
/// Assisted trials after the drop by which success must have recovered (issue 12 §2).
pub const RECOVER_WITHIN: usize = 20;
/// Success rate over the last 10 of those trials that counts as recovered [-].
pub const RECOVERED_SUCCESS: f64 = 0.8;
/// Help counts as raised when an assisted trial's RMS assistance reaches this multiple of the mean over the last
/// 10 assisted trials before the drop [-] (a 25 % rise: above the trial-to-trial spread of a settled course).
pub const RAISED_FACTOR: f64 = 1.25;

/// One assisted trial as the criteria need it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AssistedTrial {
    /// RMS assistance torque [Nm].
    pub assistance_nm: f64,
    /// Target reached.
    pub reached: bool,
}

/// The assisted trials of session `session` (1-based) of a course, in trial order, read from its trial rows.
pub fn assisted_trials(course: &CourseResult, session: u32) -> Vec<AssistedTrial> {
    let header = crate::summary::trials_csv_header(&course.joints);
    let col = |name: &str| header.iter().position(|h| h == name).expect("a trial-table column");
    let (mode, reached, assistance) = (col("mode"), col("reached"), col("assistance_rms_nm"));
    let Some(s) = course.sessions.iter().find(|s| s.session == session) else { return Vec::new() };
    s.trials
        .iter()
        .map(|line| crate::summary::split_csv_line(line))
        .filter(|f| f.get(mode).is_some_and(|m| m.starts_with("ActiveAssisted")))
        .filter_map(|f| {
            Some(AssistedTrial { assistance_nm: f.get(assistance)?.parse().ok()?, reached: f.get(reached)? == "1" })
        })
        .collect()
}

fn mean(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// The criteria of one course.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CourseCriteria {
    /// Change of the mean RMS assistance from the first session to the last, relative to the first [-]
    /// (−0.5 = halved).
    pub assistance_change: Option<f64>,
    /// True task-effort share over the course's assisted trials, the lowest session's [-].
    pub min_true_effort_share: Option<f64>,
    /// True task-effort share, mean of the sessions' [-].
    pub mean_true_effort_share: Option<f64>,
    /// Estimated task-effort share, mean of the sessions' [-].
    pub mean_effort_share: Option<f64>,
    /// Targets reached over all assisted trials of the course [-].
    pub success: Option<f64>,
    /// With a capacity drop: the assisted trial (1-based) after the drop at which the help first reached
    /// [`RAISED_FACTOR`] × its level before the drop, if within [`RERAISE_WITHIN`].
    pub reraised_at: Option<usize>,
    /// With a capacity drop: success over the first [`RERAISE_WITHIN`] assisted trials after it [-].
    pub success_after_drop: Option<f64>,
    /// With a capacity drop: success over assisted trials 11–20 after it [-].
    pub success_recovered: Option<f64>,
}

/// Computes the criteria of one course.
pub fn course_criteria(course: &CourseResult, drop: Option<CapacityDrop>) -> CourseCriteria {
    let sessions: Vec<u32> = course.sessions.iter().map(|s| s.session).collect();
    let assisted =
        |k: u32| course.sessions.iter().find(|s| s.session == k).and_then(|s| tables::assisted(&s.blocks)).cloned();
    let mut c = CourseCriteria::default();
    if let (Some(first), Some(last)) = (sessions.first(), sessions.last())
        && let (Some(a), Some(b)) = (assisted(*first), assisted(*last))
        && first != last
        && a.assistance_nm > 0.0
    {
        c.assistance_change = Some(b.assistance_nm / a.assistance_nm - 1.0);
    }
    let blocks: Vec<_> = sessions.iter().filter_map(|k| assisted(*k)).collect();
    let true_shares: Vec<f64> = blocks.iter().filter_map(|b| b.true_effort_share).collect();
    c.min_true_effort_share = true_shares.iter().copied().reduce(f64::min);
    c.mean_true_effort_share = mean(true_shares.iter().copied());
    c.mean_effort_share = mean(blocks.iter().filter_map(|b| b.effort_share));
    let (reached, trials) = blocks.iter().fold((0u32, 0u32), |(r, t), b| (r + b.successes, t + b.trials));
    c.success = (trials > 0).then(|| f64::from(reached) / f64::from(trials));
    if let Some(drop) = drop {
        let before = assisted_trials(course, drop.session - 1);
        let after = assisted_trials(course, drop.session);
        let level = mean(before.iter().rev().take(10).map(|t| t.assistance_nm));
        if let Some(level) = level {
            c.reraised_at =
                after.iter().take(RERAISE_WITHIN).position(|t| t.assistance_nm >= RAISED_FACTOR * level).map(|i| i + 1);
        }
        let rate = |ts: &[AssistedTrial]| mean(ts.iter().map(|t| f64::from(u8::from(t.reached))));
        c.success_after_drop = rate(&after[..after.len().min(RERAISE_WITHIN)]);
        if after.len() >= RECOVER_WITHIN {
            c.success_recovered = rate(&after[RECOVER_WITHIN - 10..RECOVER_WITHIN]);
        }
    }
    c
}

fn pct(values: &[f64]) -> String {
    match tables::mean_ci(values) {
        None => "–".into(),
        Some((m, None)) => format!("{:.0} %", 100.0 * m),
        Some((m, Some((lo, hi)))) => format!("{:.0} % [{:.0}, {:.0}]", 100.0 * m, 100.0 * lo, 100.0 * hi),
    }
}

/// The criteria section of the report: per controller × patient, across seeds.
pub fn criteria_md(courses: &[CourseResult], drop: Option<CapacityDrop>) -> String {
    let controllers = ordered(courses.iter().map(|c| c.controller.clone()));
    let patients = ordered(courses.iter().map(|c| c.patient.clone()));
    let mut s = String::from("## Efficacy criteria\n\n");
    s.push_str(
        "Per course over its assisted trials, then mean [95 % interval] across seeds. (a) change of the RMS \
         assistance torque from the first session to the last (assist-as-needed: ≤ −50 %); (b) the patient's true \
         task-effort share, mean of the sessions and the lowest session (≥ 60 %), with the clinic's estimate; \
         (c) targets reached over the course (≥ 90 %).",
    );
    if let Some(d) = drop {
        s.push_str(&format!(
            " (d) capacity × {} before session {}: courses whose help rose to ≥ {RAISED_FACTOR} × its level before \
             the drop within {RERAISE_WITHIN} assisted trials, success over those {RERAISE_WITHIN} trials, and \
             success over assisted trials 11–{RECOVER_WITHIN} after the drop (recovered: ≥ {:.0} %).",
            d.factor,
            d.session,
            100.0 * RECOVERED_SUCCESS
        ));
    }
    s.push_str("\n\n| controller | patient | (a) assistance change | (b) true effort share (mean) | (b) lowest session | effort share (est.) | (c) success |");
    if drop.is_some() {
        s.push_str(" (d) help re-raised | success, 5 after drop | success, 11–20 after drop |");
    }
    s.push_str(if drop.is_some() {
        "\n|---|---|---|---|---|---|---|---|---|---|\n"
    } else {
        "\n|---|---|---|---|---|---|---|\n"
    });
    for ctrl in &controllers {
        for patient in &patients {
            let cs: Vec<CourseCriteria> = courses
                .iter()
                .filter(|c| &c.controller == ctrl && &c.patient == patient)
                .map(|c| course_criteria(c, drop))
                .collect();
            if cs.is_empty() {
                continue;
            }
            let of = |f: fn(&CourseCriteria) -> Option<f64>| cs.iter().filter_map(f).collect::<Vec<f64>>();
            s.push_str(&format!(
                "| {ctrl} | {patient} | {} | {} | {} | {} | {} |",
                pct(&of(|c| c.assistance_change)),
                pct(&of(|c| c.mean_true_effort_share)),
                pct(&of(|c| c.min_true_effort_share)),
                pct(&of(|c| c.mean_effort_share)),
                pct(&of(|c| c.success)),
            ));
            if drop.is_some() {
                let raised = cs.iter().filter(|c| c.reraised_at.is_some()).count();
                s.push_str(&format!(
                    " {raised}/{} | {} | {} |",
                    cs.len(),
                    pct(&of(|c| c.success_after_drop)),
                    pct(&of(|c| c.success_recovered))
                ));
            }
            s.push('\n');
        }
    }
    s.push('\n');
    s
}

/// Whether a block is an unassisted probe: its name starts with "probe" (any case).
pub fn is_probe(block: &BlockResult) -> bool {
    block.name.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("probe"))
}

/// The probes of a course: the first session's first probe block (before training), the last session's last
/// (after all training) and the first session's last (after one session's training); `None` without two probes.
pub fn course_probes(course: &CourseResult) -> Option<(&BlockResult, &BlockResult, &BlockResult)> {
    fn probes(blocks: &[BlockResult]) -> Vec<&BlockResult> {
        blocks.iter().filter(|b| is_probe(b)).collect()
    }
    let all: Vec<&BlockResult> = course.sessions.iter().flat_map(|s| probes(&s.blocks)).collect();
    let first_session = course.sessions.first().map(|s| probes(&s.blocks)).unwrap_or_default();
    match (&all[..], first_session.last()) {
        ([first, .., last], Some(after_first)) => Some((first, last, after_first)),
        _ => None,
    }
}

/// The probes of one course: first, last, after the first session.
type Probes<'a> = (&'a BlockResult, &'a BlockResult, &'a BlockResult);

/// The probe section of the report, when the protocols have probe blocks (name starting with "probe": blocks in
/// which the robot does not help, to measure what the patient learned): per controller × patient, the final
/// error of the course's first probe, of the first session's last and of the course's last, the change from the
/// first to the last, RMS tracking error and success, mean [95 % interval] across seeds. Empty without probes.
pub fn probes_md(courses: &[CourseResult]) -> String {
    let with: Vec<(&CourseResult, Probes)> = courses.iter().filter_map(|c| course_probes(c).map(|p| (c, p))).collect();
    if with.is_empty() {
        return String::new();
    }
    let controllers = ordered(with.iter().map(|(c, _)| c.controller.clone()));
    let patients = ordered(with.iter().map(|(c, _)| c.patient.clone()));
    let mut s = String::from("## Probe blocks: what the patient learned\n\n");
    s.push_str(
        "Blocks named `probe…`: the course's first probe (session 1, before training), the first session's last \
         probe (after one session's training: the immediate effect) and the course's last probe (last session, \
         after all training), mean [95 % interval] across seeds: final error [mm] (distance of the handle from the \
         target at the trial end), its change from the first probe to the last (learning: negative), RMS tracking \
         error [deg] and targets reached, first → last.\n\n",
    );
    s.push_str(
        "| controller | patient | final error [mm] first → after session 1 → last | change | RMS error [deg] first → \
         last | success first → last |\n|---|---|---|---|---|---|\n",
    );
    let deg = 180.0 / std::f64::consts::PI;
    let rate = |b: &BlockResult| f64::from(b.successes) / f64::from(b.trials.max(1));
    for ctrl in &controllers {
        for patient in &patients {
            let ps: Vec<Probes> =
                with.iter().filter(|(c, _)| &c.controller == ctrl && &c.patient == patient).map(|(_, p)| *p).collect();
            if ps.is_empty() {
                continue;
            }
            let of = |f: &dyn Fn(&Probes) -> f64| ps.iter().map(f).collect::<Vec<f64>>();
            s.push_str(&format!(
                "| {ctrl} | {patient} | {} → {} → {} | {} | {} → {} | {} → {} |\n",
                tables::mean_ci_text(&of(&|p| 1e3 * p.0.final_error_m), 1),
                tables::mean_ci_text(&of(&|p| 1e3 * p.2.final_error_m), 1),
                tables::mean_ci_text(&of(&|p| 1e3 * p.1.final_error_m), 1),
                pct(&of(&|p| p.1.final_error_m / p.0.final_error_m - 1.0)),
                tables::mean_ci_text(&of(&|p| deg * p.0.rms_error_rad), 2),
                tables::mean_ci_text(&of(&|p| deg * p.1.rms_error_rad), 2),
                pct(&of(&|p| rate(p.0))),
                pct(&of(&|p| rate(p.1))),
            ));
        }
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::raw::SessionResult;

    #[test]
    fn csv_lines_split_back_into_the_fields_written() {
        use crate::summary::{csv_field, split_csv_line};
        assert_eq!(split_csv_line(r#"1,"a, ""b""",c"#), vec!["1", r#"a, "b""#, "c"]);
        assert_eq!(split_csv_line(""), vec![""]);
        let fields = ["plain", "a,b", "say \"x\"", "", "line\nbreak"];
        let line = fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
        assert_eq!(split_csv_line(&line), fields);
    }

    fn row(mode: &str, reached: bool, assistance: f64, joints: usize) -> String {
        let mut f = vec![String::new(); crate::summary::TRIAL_COLUMNS.len() - 1 + joints];
        f[3] = mode.to_owned();
        f[7] = u8::from(reached).to_string();
        f[26] = assistance.to_string();
        f.join(",")
    }

    fn block(name: &str, final_error_m: f64, successes: u32) -> BlockResult {
        BlockResult {
            name: name.into(),
            mode: "Transparent".into(),
            trials: 10,
            successes,
            final_error_m,
            rms_error_rad: 0.1,
            assistance_nm: 0.0,
            assistance_j: 0.0,
            effort_j: 1.0,
            effort_share: None,
            true_effort_share: None,
            speed_peaks: 1.0,
            sparc: None,
            movement_time_s: None,
            stiffness_nm_rad: 0.0,
            arm_support: None,
            duration_s: 2.0,
        }
    }

    #[test]
    fn the_probes_of_a_course_are_the_first_sessions_first_and_the_last_sessions_last() {
        let session = |k: u32, blocks: Vec<BlockResult>| SessionResult {
            session: k,
            seed: 1,
            end: "completed".into(),
            session_time_s: 1.0,
            blocks,
            trials: Vec::new(),
        };
        let course = |controller: &str, seed: u64, last_error: f64| CourseResult {
            study: String::new(),
            courses: 2,
            index: 0,
            controller: controller.into(),
            patient: "p".into(),
            seed,
            joints: vec!["j".into()],
            sessions: vec![
                session(
                    1,
                    vec![block("Probe before", 0.02, 5), block("training", 0.5, 0), block("probe after", 0.015, 6)],
                ),
                session(
                    2,
                    vec![
                        block("probe before", 0.014, 7),
                        block("training", 0.5, 0),
                        block("probe after", last_error, 9),
                    ],
                ),
            ],
        };
        let c = course("ea", 1, 0.01);
        let (first, last, after_first) = course_probes(&c).expect("two probes");
        assert_eq!(after_first.final_error_m, 0.015, "the first session's last probe");
        assert_eq!((first.name.as_str(), first.final_error_m), ("Probe before", 0.02), "case-insensitive, first");
        assert_eq!((last.name.as_str(), last.final_error_m), ("probe after", 0.01), "the last session's last");
        assert!(!is_probe(&block("training", 0.0, 0)) && !is_probe(&block("prob", 0.0, 0)));
        let md = probes_md(&[c, course("ea", 2, 0.014)]);
        // Final error 20 mm -> 12 mm on average (10 and 14), a 40 % fall; success 50 % -> 90 %.
        assert!(
            md.contains("| ea | p | 20.0 [20.0, 20.0] → 15.0 [15.0, 15.0] → 12.0 [-13.4, 37.4] | -40 % [-167, 87] |"),
            "{md}"
        );
        assert!(md.contains("| 50 % [50, 50] → 90 % [90, 90] |"), "{md}");
        let without =
            CourseResult { sessions: vec![session(1, vec![block("training", 0.5, 0)])], ..course("x", 1, 0.0) };
        assert_eq!(probes_md(&[without]), "", "no probe blocks, no section");
    }

    #[test]
    fn the_help_counts_as_raised_at_the_first_assisted_trial_above_the_level_before_the_drop() {
        let joints = vec!["j".to_owned()];
        let session = |k: u32, rows: Vec<String>| SessionResult {
            session: k,
            seed: 1,
            end: "completed".into(),
            session_time_s: 1.0,
            blocks: Vec::new(),
            trials: rows,
        };
        let before = (0..12).map(|_| row("ActiveAssisted/Emken", true, 2.0, 1)).collect();
        let mut after = vec![row("Passive", false, 9.0, 1)];
        after.extend([1.0, 2.2, 2.6, 3.0].iter().map(|a| row("ActiveAssisted/Emken", false, *a, 1)));
        after.extend((0..20).map(|i| row("ActiveAssisted/Emken", i % 10 != 0, 3.0, 1)));
        let course = CourseResult {
            study: String::new(),
            courses: 1,
            index: 0,
            controller: "c".into(),
            patient: "p".into(),
            seed: 1,
            joints,
            sessions: vec![session(1, before), session(2, after)],
        };
        assert_eq!(assisted_trials(&course, 2).len(), 24, "the passive trial is not an assisted one");
        let c = course_criteria(&course, Some(CapacityDrop { session: 2, factor: 0.5 }));
        // Level 2.0 Nm before; 2.6 >= 1.25 × 2.0 = 2.5 is the third assisted trial after the drop.
        assert_eq!(c.reraised_at, Some(3));
        assert_eq!(c.success_after_drop, Some(0.0));
        assert_eq!(c.success_recovered, Some(0.9));
    }
}

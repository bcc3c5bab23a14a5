//! The viewer layout (Rerun blueprint) sent with every recording and live stream, so that the viewer opens on
//! panels that answer a session's questions instead of a layout it invents:
//!
//! ```text
//! ┌──────────────┬────────────────────────────────────────────────┐
//! │ arm (3D)     │ per joint (grid):                              │
//! │              │   position: q, q_ref [deg]                     │
//! ├──────────────┤   torque: commanded, patient est., true [Nm]   │
//! │ session      │   stiffness [Nm/rad], assistance [Nm]          │
//! ├──────────────┤                                                │
//! │ events       │                                                │
//! └──────────────┴────────────────────────────────────────────────┘
//! ```
//!
//! The time series are one entity per plot group with the group's quantities as instances
//! ([`entities::SERIES_GROUPS`]: `joints/position`, `joints/torque`, `joints/stiffness`, `session/effort`); a
//! panel shows exactly the instances it lists ([`time_series_panels`]: a `SeriesLines` visible-series override per
//! view and entity), so a joint's torque panel draws that joint's three torques out of the entity's twelve.
//! The block markers (`session/blocks/<k>`: a bar at height k over block k, named after it) are in the session,
//! trials and joint position panels, so block boundaries show on the plots. The 3D view (origin `world`) holds
//! the robot, the patient's arm, the hand, the targets and every trial's hand path. The default timeline is
//! `sim_time`.

use rerun::blueprint::{
    Blueprint, ContainerLike, Grid, Horizontal, Spatial3DView, TextLogView, TimePanel, TimeSeriesView, Vertical,
};

use super::entities::{self, SeriesGroup};

/// Colour of a time-series quantity (of [`entities::SERIES_GROUPS`]), or of a per-trial series path, so that a
/// quantity has the same colour in every joint's panel.
pub fn series_color(series: &str) -> [u8; 3] {
    match series {
        entities::Q => [31, 119, 180],
        entities::Q_REF => [255, 127, 14],
        entities::TAU_CMD => [31, 119, 180],
        entities::TAU_PATIENT_EST => [214, 39, 40],
        entities::TAU_PATIENT_TRUE => [44, 160, 44],
        entities::STIFFNESS => [148, 103, 189],
        entities::ASSISTANCE => [127, 127, 127],
        _ => [23, 190, 207],
    }
}

/// Colour of block `block`'s marker (a qualitative palette, repeating after eight blocks).
pub fn block_color(block: usize) -> [u8; 3] {
    const PALETTE: [[u8; 3]; 8] = [
        [102, 194, 165],
        [252, 141, 98],
        [141, 160, 203],
        [231, 138, 195],
        [166, 216, 84],
        [255, 217, 47],
        [229, 196, 148],
        [179, 179, 179],
    ];
    PALETTE[block % PALETTE.len()]
}

/// Legend name of block `block`'s marker: `block <k>: <name>`.
pub fn block_marker_name(block: usize, name: &str) -> String {
    format!("block {block}: {name}")
}

/// What a panel shows of one entity: the group and the quantities of it.
pub type PanelGroup = (SeriesGroup, &'static [&'static str]);

/// The panels of one joint: each shows, of each listed entity, the joint's instances of the listed quantities
/// (the session group's quantities have one instance for all joints).
pub const JOINT_PANELS: [(&str, &[PanelGroup]); 3] = [
    ("position [deg]", &[(entities::POSITION, &[entities::Q, entities::Q_REF])]),
    ("torque [Nm]", &[(entities::TORQUE, &[entities::TAU_CMD, entities::TAU_PATIENT_EST, entities::TAU_PATIENT_TRUE])]),
    (
        "stiffness [Nm/rad], assistance [Nm]",
        &[(entities::STIFFNESS_GROUP, &[entities::STIFFNESS]), (entities::EFFORT, &[entities::ASSISTANCE])],
    ),
];

/// Title of joint `joint`'s panel `panel` (a title of [`JOINT_PANELS`]).
pub fn joint_panel_title(joint: &str, panel: &str) -> String {
    format!("{joint}: {panel}")
}

/// Title of the session panel.
pub const SESSION_PANEL: &str = "session: assistance [Nm], patient effort share [0-1]";
/// Title of the per-trial panel (one point per trial at its end).
pub const TRIALS_PANEL: &str = "trials: reached [1/0], final error [mm], SPARC [-]";
/// Title of the 3D view.
pub const ARM_PANEL: &str = "arm";
/// Title of the event log.
pub const EVENTS_PANEL: &str = "events";

/// What one time-series panel shows of one entity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PanelSeries {
    /// Entity path (unrooted, as in [`entities`]).
    pub path: String,
    /// The instances shown (indices into a full row).
    pub shown: Vec<usize>,
    /// Instances of a full row: when more than shown, the others are hidden by an override.
    pub of: usize,
}

/// A time-series panel of the blueprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Panel {
    /// Title.
    pub title: String,
    /// Its series.
    pub series: Vec<PanelSeries>,
    /// The block markers are drawn in it.
    pub blocks: bool,
}

/// The time-series panels of the blueprint for the joints `joints` (in the model's order, the instance order of
/// the joint groups): per joint its [`JOINT_PANELS`], then the session and trials panels. The blueprint shows
/// exactly these series; the tests check every one of them against a recording.
pub fn time_series_panels(joints: &[String]) -> Vec<Panel> {
    let dof = joints.len();
    let mut panels = Vec::new();
    for (j, joint) in joints.iter().enumerate() {
        for (title, groups) in JOINT_PANELS {
            let series = groups
                .iter()
                .map(|(group, quantities)| {
                    let joint = group.per_joint.then_some(j);
                    let shown = quantities.iter().filter_map(|q| group.instance(q, joint, dof)).collect();
                    PanelSeries { path: group.path.to_owned(), shown, of: group.instances(dof) }
                })
                .collect();
            panels.push(Panel {
                title: joint_panel_title(joint, title),
                series,
                blocks: groups[0].0 == entities::POSITION,
            });
        }
    }
    let effort = entities::EFFORT.instances(dof);
    panels.push(Panel {
        title: SESSION_PANEL.to_owned(),
        series: vec![PanelSeries { path: entities::EFFORT.path.to_owned(), shown: (0..effort).collect(), of: effort }],
        blocks: true,
    });
    panels.push(Panel {
        title: TRIALS_PANEL.to_owned(),
        series: entities::TRIAL_SERIES
            .iter()
            .map(|(path, _)| PanelSeries { path: (*path).to_owned(), shown: vec![0], of: 1 })
            .collect(),
        blocks: true,
    });
    panels
}

/// The number of views [`blueprint`] lays out for `dof` joints.
pub fn view_count(dof: usize) -> usize {
    4 + JOINT_PANELS.len() * dof
}

/// The blueprint of a session recording with the joints `joints` (in the model's order, which is the instance
/// order of the joint series). Not real-time safe.
pub fn blueprint(joints: &[String]) -> Blueprint {
    let rooted = |path: &str| format!("/{path}");
    let blocks = format!("/{}/**", entities::BLOCKS);
    let view = |panel: &Panel| {
        let mut contents: Vec<String> = panel.series.iter().map(|s| rooted(&s.path)).collect();
        if panel.blocks {
            contents.push(blocks.clone());
        }
        let mut view = TimeSeriesView::new(panel.title.clone()).with_contents(contents);
        for s in panel.series.iter().filter(|s| s.shown.len() < s.of) {
            let visible = (0..s.of).map(|k| s.shown.contains(&k));
            view = view.with_override(rooted(&s.path), &rerun::SeriesLines::new().with_visible_series(visible));
        }
        view
    };
    let mut panels = time_series_panels(joints).into_iter();
    let per_joint: Vec<ContainerLike> = joints
        .iter()
        .map(|joint| {
            let views = panels.by_ref().take(JOINT_PANELS.len()).map(|p| ContainerLike::from(view(&p)));
            ContainerLike::from(Vertical::new(views.collect::<Vec<_>>()).with_name(joint.clone()))
        })
        .collect();
    let (session, trials) =
        (view(&panels.next().expect("the session panel")), view(&panels.next().expect("the trials panel")));
    let columns = (joints.len() as f64).sqrt().ceil().max(1.0) as u32;
    let joints_grid = Grid::new(per_joint).with_name("joints").with_grid_columns(columns);
    let arm = Spatial3DView::new(ARM_PANEL).with_origin("/world");
    let events =
        TextLogView::new(EVENTS_PANEL).with_contents([rooted(entities::EVENTS), rooted(entities::ANNOTATIONS)]);
    let left =
        Vertical::new([arm.into(), session.into(), trials.into(), events.into()]).with_row_shares([2.0, 1.0, 1.0, 1.0]);
    Blueprint::new(Horizontal::new([left.into(), joints_grid.into()]).with_column_shares([1.0, 2.0]))
        .with_time_panel(TimePanel::new().with_timeline(entities::SIM_TIME))
}

#[cfg(test)]
mod tests {
    use super::{JOINT_PANELS, time_series_panels};
    use crate::telemetry::entities;

    #[test]
    fn each_joint_panel_shows_its_joints_instances_of_its_quantities_and_the_session_panel_all_of_effort() {
        let joints: Vec<String> = ["a", "b", "c", "d"].iter().map(|j| (*j).to_owned()).collect();
        let panels = time_series_panels(&joints);
        assert_eq!(panels.len(), JOINT_PANELS.len() * 4 + 2);
        // Joint c (index 2), torque panel: cmd, est, true of joint c in the 12 instances of `joints/torque`.
        let torque = &panels[2 * JOINT_PANELS.len() + 1];
        assert_eq!(torque.title, "c: torque [Nm]");
        assert_eq!((torque.series[0].path.as_str(), &torque.series[0].shown[..]), ("joints/torque", &[2, 6, 10][..]));
        assert_eq!(torque.series[0].of, 12);
        // Its stiffness panel: joint c's stiffness and the assistance (instance 0 of `session/effort`).
        let stiffness = &panels[2 * JOINT_PANELS.len() + 2];
        assert_eq!(stiffness.series[0].shown, vec![2]);
        assert_eq!((stiffness.series[1].path.as_str(), &stiffness.series[1].shown[..]), ("session/effort", &[0][..]));
        // Every shown instance's name is that joint's (or a session quantity's).
        for (j, joint) in joints.iter().enumerate() {
            for panel in &panels[j * JOINT_PANELS.len()..(j + 1) * JOINT_PANELS.len()] {
                for s in &panel.series {
                    let group = entities::SERIES_GROUPS.iter().find(|g| g.path == s.path).unwrap();
                    let names = group.names(&joints);
                    for &k in &s.shown {
                        assert!(!group.per_joint || names[k].starts_with(&format!("{joint} ")), "{}", panel.title);
                    }
                }
            }
        }
        let session = &panels[JOINT_PANELS.len() * 4];
        assert_eq!(session.series[0].shown, vec![0, 1]);
        assert_eq!(entities::EFFORT.names(&joints), vec!["assistance [Nm]", "patient effort share [0-1]"]);
        assert_eq!(entities::TORQUE.instance(entities::TAU_PATIENT_TRUE, Some(3), 4), Some(11));
        assert_eq!(entities::TORQUE.instance(entities::Q, Some(0), 4), None, "not a torque");
        assert_eq!(entities::POSITION.instance(entities::Q, Some(4), 4), None, "no fifth joint");
    }
}

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
//! The joint series are one entity per quantity with one instance per joint ([`super::entities`]); a joint's
//! panel shows only that joint's instance of each entity (a `SeriesLines` visible-series override per view).
//! The block markers (`session/blocks/<k>`: a bar at height k over block k, named after it) are in the session,
//! trials and joint position panels, so block boundaries show on the plots. The 3D view (origin `world`) holds
//! the robot, the patient's arm, the hand, the targets and every trial's hand path. The default timeline is
//! `sim_time`.

use rerun::blueprint::{
    Blueprint, ContainerLike, Grid, Horizontal, Spatial3DView, TextLogView, TimePanel, TimeSeriesView, Vertical,
};

use super::entities;

/// Colour of a time series (a joint quantity of [`entities::JOINT_SERIES`], or a session series path), so that a
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

/// The panels of one joint: each shows the joint's instance of the entities of `series`.
pub const JOINT_PANELS: [(&str, &[&str]); 3] = [
    ("position [deg]", &[entities::Q, entities::Q_REF]),
    ("torque [Nm]", &[entities::TAU_CMD, entities::TAU_PATIENT_EST, entities::TAU_PATIENT_TRUE]),
    ("stiffness [Nm/rad], assistance [Nm]", &[entities::STIFFNESS]),
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

/// The number of views [`blueprint`] lays out for `dof` joints.
pub fn view_count(dof: usize) -> usize {
    4 + JOINT_PANELS.len() * dof
}

/// The blueprint of a session recording with the joints `joints` (in the model's order, which is the instance
/// order of the joint series).
pub fn blueprint(joints: &[String]) -> Blueprint {
    let rooted = |path: &str| format!("/{path}");
    let blocks = format!("/{}/**", entities::BLOCKS);
    let per_joint = joints.iter().enumerate().map(|(j, joint)| {
        let visible: Vec<bool> = (0..joints.len()).map(|k| k == j).collect();
        let panels = JOINT_PANELS.iter().map(|(title, series)| {
            let mut contents: Vec<String> = series.iter().map(|s| rooted(&entities::joints(s))).collect();
            if series.contains(&entities::STIFFNESS) {
                contents.push(rooted(entities::ASSISTANCE));
            }
            if series.contains(&entities::Q) {
                contents.push(blocks.clone());
            }
            let mut view = TimeSeriesView::new(joint_panel_title(joint, title)).with_contents(contents);
            for s in *series {
                let only_this_joint = rerun::SeriesLines::new().with_visible_series(visible.iter().copied());
                view = view.with_override(rooted(&entities::joints(s)), &only_this_joint);
            }
            ContainerLike::from(view)
        });
        ContainerLike::from(Vertical::new(panels).with_name(joint.clone()))
    });
    let columns = (joints.len() as f64).sqrt().ceil().max(1.0) as u32;
    let joints_grid = Grid::new(per_joint).with_name("joints").with_grid_columns(columns);
    let arm = Spatial3DView::new(ARM_PANEL).with_origin("/world");
    let session = TimeSeriesView::new(SESSION_PANEL).with_contents([
        rooted(entities::ASSISTANCE),
        rooted(entities::PATIENT_EFFORT_SHARE),
        blocks.clone(),
    ]);
    let trials = TimeSeriesView::new(TRIALS_PANEL).with_contents(
        entities::TRIAL_SERIES.iter().map(|(path, _)| rooted(path)).chain([blocks.clone()]).collect::<Vec<_>>(),
    );
    let events =
        TextLogView::new(EVENTS_PANEL).with_contents([rooted(entities::EVENTS), rooted(entities::ANNOTATIONS)]);
    let left =
        Vertical::new([arm.into(), session.into(), trials.into(), events.into()]).with_row_shares([2.0, 1.0, 1.0, 1.0]);
    Blueprint::new(Horizontal::new([left.into(), joints_grid.into()]).with_column_shares([1.0, 2.0]))
        .with_time_panel(TimePanel::new().with_timeline(entities::SIM_TIME))
}

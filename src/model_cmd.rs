//! `plexo model`: prints the parsed kinematic chain of a URDF (or an embedded default robot).

use plexo_kinematics::Model;
use serde::Serialize;

use crate::AppError;

/// Loads a robot model from a URDF path or, if no such file exists, from an embedded default robot name
/// (`plexo-arm4`, `plexo-arm6`, `test-arm7`). Errors name the file. Not real-time safe.
pub fn load_robot(spec: &str) -> Result<Model, AppError> {
    Ok(crate::setup::load_robot(spec)?.value.0)
}

/// Machine-readable summary of a model (`plexo model --json`).
#[derive(Debug, Serialize)]
pub struct ModelSummary {
    /// Robot name from the URDF.
    pub name: String,
    /// Number of actuated joints.
    pub dof: usize,
    /// Total mass [kg].
    pub total_mass_kg: f64,
    /// Actuated joints in order.
    pub joints: Vec<JointSummary>,
    /// Every named frame.
    pub frames: Vec<FrameSummary>,
}

/// One joint of [`ModelSummary`].
#[derive(Debug, Serialize)]
pub struct JointSummary {
    /// Joint name.
    pub name: String,
    /// Joint type (revolute, continuous, prismatic).
    pub kind: String,
    /// Parent joint name, or `null` for the base.
    pub parent: Option<String>,
    /// Axis in the joint frame (unit vector).
    pub axis: [f64; 3],
    /// Lower position limit [rad] or [m]; `null` for a continuous joint (no limit).
    pub lower: Option<f64>,
    /// Upper position limit [rad] or [m]; `null` for a continuous joint (no limit).
    pub upper: Option<f64>,
    /// Velocity limit [rad/s] or [m/s].
    pub velocity: f64,
    /// Effort limit [Nm] or [N].
    pub effort: f64,
    /// Mass of the body this joint moves (fixed children merged) [kg].
    pub body_mass_kg: f64,
}

/// One frame of [`ModelSummary`].
#[derive(Debug, Serialize)]
pub struct FrameSummary {
    /// Frame name.
    pub name: String,
    /// Joint whose body carries the frame, or `null` for the base.
    pub joint: Option<String>,
    /// Position of the frame origin in the world at q = 0 [m].
    pub world_position_at_zero: [f64; 3],
}

/// Builds the summary of `model` (runs forward kinematics at q = 0). Not real-time safe.
pub fn summarize(model: &Model) -> ModelSummary {
    let mut data = plexo_kinematics::Data::new(model);
    let q = vec![0.0; model.nv()];
    plexo_kinematics::forward_kinematics(model, &mut data, &q);
    let joint_name = |i: Option<usize>| i.map(|i| model.joints()[i].name.clone());
    ModelSummary {
        name: model.name().to_owned(),
        dof: model.nv(),
        total_mass_kg: model.total_mass(),
        joints: model
            .joints()
            .iter()
            .map(|j| JointSummary {
                name: j.name.clone(),
                kind: format!("{:?}", j.kind).to_lowercase(),
                parent: joint_name(j.parent),
                axis: [j.axis.x, j.axis.y, j.axis.z],
                lower: Some(j.limits.lower).filter(|v| v.is_finite()),
                upper: Some(j.limits.upper).filter(|v| v.is_finite()),
                velocity: j.limits.velocity,
                effort: j.limits.effort,
                body_mass_kg: j.body.mass,
            })
            .collect(),
        frames: model
            .frames()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let p = data.world_T_frame[i].translation.vector;
                FrameSummary {
                    name: f.name.clone(),
                    joint: joint_name(f.joint),
                    world_position_at_zero: [p.x, p.y, p.z],
                }
            })
            .collect(),
    }
}

/// Human-readable rendering of a summary.
pub fn render_text(s: &ModelSummary) -> String {
    let mut out = format!("robot {}: {} actuated joints, total mass {:.3} kg\n", s.name, s.dof, s.total_mass_kg);
    out += &format!(
        "\n{:<3} {:<20} {:<20} {:<10} {:<20} {:>22} {:>10} {:>9} {:>9}\n",
        "#", "joint", "parent", "type", "axis", "limits [deg]", "vel[r/s]", "eff[Nm]", "mass[kg]"
    );
    for (i, j) in s.joints.iter().enumerate() {
        let axis = format!("({:+.2}, {:+.2}, {:+.2})", j.axis[0], j.axis[1], j.axis[2]);
        let limits = match (j.lower, j.upper) {
            (Some(lo), Some(hi)) if j.kind == "prismatic" => format!("[{lo:.3}, {hi:.3}] m"),
            (Some(lo), Some(hi)) => format!("[{:.1}, {:.1}]", lo.to_degrees(), hi.to_degrees()),
            _ => "continuous".to_owned(),
        };
        out += &format!(
            "{:<3} {:<20} {:<20} {:<10} {:<20} {:>22} {:>10.2} {:>9.1} {:>9.3}\n",
            i,
            j.name,
            j.parent.as_deref().unwrap_or("(base)"),
            j.kind,
            axis,
            limits,
            j.velocity,
            j.effort,
            j.body_mass_kg
        );
    }
    out += &format!("\n{:<24} {:<20} {:>26}\n", "frame", "on joint", "world position at q=0 [m]");
    for f in &s.frames {
        let p = format!(
            "({:+.3}, {:+.3}, {:+.3})",
            f.world_position_at_zero[0], f.world_position_at_zero[1], f.world_position_at_zero[2]
        );
        out += &format!("{:<24} {:<20} {:>26}\n", f.name, f.joint.as_deref().unwrap_or("(base)"), p);
    }
    out
}

//! Shared helpers for the integration tests.
#![allow(dead_code)]

use nalgebra::{Isometry3, Matrix3, UnitQuaternion, Vector3};
use plexo_kinematics::{Joint, JointKind, Model, ModelBuilder, RigidBody, default_robot_urdf};

pub fn robot(name: &str) -> Model {
    Model::from_urdf_str(default_robot_urdf(name).expect("embedded robot")).expect("valid URDF")
}

/// A branching tree with a prismatic joint, oblique axes and rotated joint frames, built in code.
pub fn tree_with_prismatic() -> Model {
    let body = |m: f64, c: [f64; 3]| {
        RigidBody::new(
            m,
            Vector3::from(c),
            Matrix3::new(0.02, 0.001, -0.002, 0.001, 0.03, 0.0015, -0.002, 0.0015, 0.025) * m,
        )
    };
    let pose = |t: [f64; 3], rpy: [f64; 3]| {
        Isometry3::from_parts(Vector3::from(t).into(), UnitQuaternion::from_euler_angles(rpy[0], rpy[1], rpy[2]))
    };
    ModelBuilder::new("tree")
        .joint(
            Joint::new("root", JointKind::Revolute, None, pose([0.0, 0.0, 0.1], [0.1, 0.0, 0.0]), Vector3::z())
                .with_body(body(2.0, [0.05, 0.0, 0.1])),
        )
        .joint(
            Joint::new(
                "slide",
                JointKind::Prismatic,
                Some(0),
                pose([0.1, 0.0, 0.2], [0.0, 0.3, 0.0]),
                Vector3::new(1.0, 0.5, 0.2),
            )
            .with_body(body(1.5, [0.0, 0.1, 0.05])),
        )
        .joint(
            Joint::new("left", JointKind::Revolute, Some(1), pose([0.0, 0.2, 0.0], [0.0, 0.0, 0.4]), Vector3::y())
                .with_body(body(1.0, [0.15, 0.0, 0.0])),
        )
        .joint(
            Joint::new(
                "right",
                JointKind::Continuous,
                Some(0),
                pose([0.0, -0.2, 0.3], [0.2, -0.1, 0.0]),
                Vector3::new(0.3, -0.2, 0.9),
            )
            .with_body(body(1.2, [0.0, -0.1, 0.1])),
        )
        .joint(
            Joint::new(
                "right_tip",
                JointKind::Revolute,
                Some(3),
                pose([0.0, 0.0, 0.25], [0.0, 0.0, 0.0]),
                Vector3::x(),
            )
            .with_body(body(0.6, [0.0, 0.0, 0.1])),
        )
        .frame("left_tool", Some(2), pose([0.3, 0.0, 0.0], [0.5, 0.2, -0.3]))
        .frame("right_tool", Some(4), pose([0.0, 0.05, 0.2], [0.0, 0.4, 0.0]))
        .build()
        .expect("valid tree")
}

/// Armature per joint of [`tree_with_armature`]: reflected rotor inertias of the size an exoskeleton's geared
/// motors have (rotor 1e-5…1e-4 kg m² behind 6:1…50:1 gears), different on every joint so a misplaced index
/// shows; [kg] for the prismatic joint.
pub const TREE_ARMATURE: [f64; 5] = [0.12, 0.35, 0.004, 0.06, 0.021];

/// [`tree_with_prismatic`] with armature on every joint (the prismatic one included).
pub fn tree_with_armature() -> Model {
    tree_with_prismatic().with_armature(&TREE_ARMATURE).expect("valid armature")
}

/// Every model the generic tests run on, with a tip frame: the default robots, a branching tree with a
/// prismatic joint, and the same tree with armature.
pub fn all_models() -> Vec<(Model, &'static str)> {
    vec![
        (robot("plexo-arm4"), "handle"),
        (robot("plexo-arm6"), "handle"),
        (robot("test-arm7"), "tool"),
        (tree_with_prismatic(), "right_tool"),
        (tree_with_armature(), "right_tool"),
    ]
}

/// Deterministic pseudo-random numbers in [-1, 1] (no RNG crate needed for fixed test vectors).
pub fn pseudo_random(seed: u64, n: usize) -> Vec<f64> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((x >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

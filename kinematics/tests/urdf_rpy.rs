//! The URDF `rpy` convention against hand-computed rotations: fixed-axis roll about x, then pitch about y, then
//! yaw about z, i.e. R = Rz(yaw)·Ry(pitch)·Rx(roll) (<http://wiki.ros.org/urdf/XML/joint>, `<origin>`). The
//! expected values are built from explicit matrices here, never with nalgebra's Euler-angle constructors, so a
//! swapped order or sign in the parser shows.

// Rotation names carry their frames (`world_R_arm`), per Plexo style.
#![allow(non_snake_case)]

use std::f64::consts::FRAC_PI_2;

use nalgebra::{Matrix3, Vector3};
use plexo_kinematics::{Data, Model, crba, forward_kinematics};

fn rx(a: f64) -> Matrix3<f64> {
    let (s, c) = a.sin_cos();
    Matrix3::new(1.0, 0.0, 0.0, 0.0, c, -s, 0.0, s, c)
}

fn ry(a: f64) -> Matrix3<f64> {
    let (s, c) = a.sin_cos();
    Matrix3::new(c, 0.0, s, 0.0, 1.0, 0.0, -s, 0.0, c)
}

fn rz(a: f64) -> Matrix3<f64> {
    let (s, c) = a.sin_cos();
    Matrix3::new(c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0)
}

/// The URDF rotation of `rpy`.
fn urdf_rpy(roll: f64, pitch: f64, yaw: f64) -> Matrix3<f64> {
    rz(yaw) * ry(pitch) * rx(roll)
}

const INERTIAL: &str =
    r#"<inertial><mass value="1"/><inertia ixx="0.01" ixy="0" ixz="0" iyy="0.01" iyz="0" izz="0.01"/></inertial>"#;

/// base → (revolute `joint` about z at `origin`) → arm → (fixed `tool_joint` at `tool_origin`) → tool.
fn two_frame_robot(origin: &str, tool_origin: &str) -> Model {
    Model::from_urdf_str(&format!(
        r#"<robot name="rpy">
  <link name="base">{INERTIAL}</link>
  <link name="arm">{INERTIAL}</link>
  <link name="tool"/>
  <joint name="joint" type="revolute"><parent link="base"/><child link="arm"/>{origin}<axis xyz="0 0 1"/>
    <limit lower="-3" upper="3" effort="1" velocity="1"/></joint>
  <joint name="tool_joint" type="fixed"><parent link="arm"/><child link="tool"/>{tool_origin}</joint>
</robot>"#
    ))
    .expect("valid URDF")
}

fn world_R_frame_and_position(model: &Model, q: f64, frame: &str) -> (Matrix3<f64>, Vector3<f64>) {
    let mut data = Data::new(model);
    forward_kinematics(model, &mut data, &[q]);
    let pose = data.world_T_frame[model.frame_id(frame).expect("frame").0];
    (*pose.rotation.to_rotation_matrix().matrix(), pose.translation.vector)
}

#[test]
fn single_axis_rpy_rotate_the_axes_as_the_urdf_spec_says() {
    // yaw π/2: x → y. roll π/2: y → z. pitch π/2: z → x.
    for (rpy, from, to) in [
        ("0 0 1.5707963267948966", Vector3::x(), Vector3::y()),
        ("1.5707963267948966 0 0", Vector3::y(), Vector3::z()),
        ("0 1.5707963267948966 0", Vector3::z(), Vector3::x()),
    ] {
        let model = two_frame_robot(&format!(r#"<origin rpy="{rpy}"/>"#), "");
        let (r, _) = world_R_frame_and_position(&model, 0.0, "arm");
        assert!((r * from - to).norm() < 1e-15, "rpy {rpy}: {from:?} ↦ {:?}, expected {to:?}", r * from);
    }
    // Order: roll π/2 then pitch π/2 about the fixed axes takes y → z → x; the other order would leave y ↦ z.
    let model = two_frame_robot(r#"<origin rpy="1.5707963267948966 1.5707963267948966 0"/>"#, "");
    let (r, _) = world_R_frame_and_position(&model, 0.0, "arm");
    assert!((r * Vector3::y() - Vector3::x()).norm() < 1e-15, "y ↦ {:?}", r * Vector3::y());
    assert!((urdf_rpy(FRAC_PI_2, FRAC_PI_2, 0.0) - r).abs().max() < 1e-15);
}

#[test]
fn joint_and_fixed_frame_origins_compose_as_hand_computed() {
    let (roll, pitch, yaw) = (0.3, -0.5, 1.1);
    let (troll, tpitch, tyaw) = (-0.8, 0.25, 0.6);
    let p_joint = Vector3::new(0.1, -0.2, 0.35);
    let p_tool = Vector3::new(0.05, 0.0, -0.12);
    let model = two_frame_robot(
        &format!(r#"<origin xyz="0.1 -0.2 0.35" rpy="{roll} {pitch} {yaw}"/>"#),
        &format!(r#"<origin xyz="0.05 0 -0.12" rpy="{troll} {tpitch} {tyaw}"/>"#),
    );
    for q in [0.0, 0.7, -2.1] {
        // world_T_arm = T(p_joint, R_joint) · Rz(q); world_T_tool = world_T_arm · T(p_tool, R_tool).
        let world_R_arm = urdf_rpy(roll, pitch, yaw) * rz(q);
        let world_R_tool = world_R_arm * urdf_rpy(troll, tpitch, tyaw);
        let tool_position = p_joint + world_R_arm * p_tool;
        let (r, p) = world_R_frame_and_position(&model, q, "arm");
        assert!((r - world_R_arm).abs().max() < 1e-14, "q {q}: world_R_arm {r} vs {world_R_arm}");
        assert!((p - p_joint).norm() < 1e-15);
        let (r, p) = world_R_frame_and_position(&model, q, "tool");
        assert!((r - world_R_tool).abs().max() < 1e-14, "q {q}: world_R_tool {r} vs {world_R_tool}");
        assert!((p - tool_position).norm() < 1e-14, "q {q}: tool at {p:?}, expected {tool_position:?}");
        // The fixed joint's own frame coincides with the tool link.
        let (r_joint, p_joint_frame) = world_R_frame_and_position(&model, q, "tool_joint");
        assert!((r_joint - world_R_tool).abs().max() < 1e-14 && (p_joint_frame - tool_position).norm() < 1e-14);
    }
}

/// A single revolute joint about z carrying a link whose `<inertial>` has the given origin and inertia.
fn link_with_inertial(origin: &str, inertia: &str, mass: f64) -> Model {
    Model::from_urdf_str(&format!(
        r#"<robot name="inertial">
  <link name="base"/>
  <link name="arm"><inertial>{origin}<mass value="{mass}"/><inertia {inertia}/></inertial></link>
  <joint name="joint" type="revolute"><parent link="base"/><child link="arm"/><axis xyz="0 0 1"/>
    <limit lower="-3" upper="3" effort="1" velocity="1"/></joint>
</robot>"#
    ))
    .expect("valid URDF")
}

#[test]
fn rotated_inertial_origin_rotates_the_inertia_into_the_link_frame() {
    // Roll π/2 maps the inertial frame's y axis onto the link's z axis and z onto −y: diag(ixx, iyy, izz) becomes
    // diag(ixx, izz, iyy) in the link frame. About the joint axis (link z, through the origin) the arm's inertia is
    // then iyy + m (cx² + cy²) = 0.03 + 1.5 × 0.1² = 0.045 kg m².
    let model = link_with_inertial(
        r#"<origin xyz="0.1 0 0.2" rpy="1.5707963267948966 0 0"/>"#,
        r#"ixx="0.01" ixy="0" ixz="0" iyy="0.03" iyz="0" izz="0.02""#,
        1.5,
    );
    let body = model.joints()[0].body;
    assert!((body.com - Vector3::new(0.1, 0.0, 0.2)).norm() < 1e-15);
    let expected = Matrix3::from_diagonal(&Vector3::new(0.01, 0.02, 0.03));
    assert!((body.inertia_com - expected).abs().max() < 1e-15, "{}", body.inertia_com);
    let m = crba(&model, &mut Data::new(&model), &[0.4])[(0, 0)];
    assert!((m - 0.045).abs() < 1e-15, "M = {m}");

    // A general rotation of a full inertia tensor: I_link = R I Rᵀ with R = Rz(yaw) Ry(pitch) Rx(roll).
    let (roll, pitch, yaw) = (0.4, -0.9, 2.2);
    let inertia = Matrix3::new(0.05, 0.004, -0.003, 0.004, 0.04, 0.002, -0.003, 0.002, 0.03);
    let model = link_with_inertial(
        &format!(r#"<origin xyz="0.2 -0.1 0.05" rpy="{roll} {pitch} {yaw}"/>"#),
        r#"ixx="0.05" ixy="0.004" ixz="-0.003" iyy="0.04" iyz="0.002" izz="0.03""#,
        2.0,
    );
    let r = urdf_rpy(roll, pitch, yaw);
    let expected = r * inertia * r.transpose();
    let body = model.joints()[0].body;
    assert!((body.inertia_com - expected).abs().max() < 1e-15, "{} vs {expected}", body.inertia_com);
    // About the joint axis: (R I Rᵀ)_zz + m (cx² + cy²).
    let m = crba(&model, &mut Data::new(&model), &[-1.3])[(0, 0)];
    let about_axis = expected[(2, 2)] + 2.0 * (0.2f64.powi(2) + 0.1f64.powi(2));
    assert!((m - about_axis).abs() < 1e-15, "M = {m}, expected {about_axis}");
}

//! Every kind of bad URDF or builder input gets a clear error naming the culprit, never a panic.

use nalgebra::{Isometry3, Matrix3, Vector3};
use plexo_kinematics::{Joint, JointKind, JointLimits, KinematicsError, Model, ModelBuilder, RigidBody};

const INERTIAL: &str =
    r#"<inertial><mass value="1"/><inertia ixx="0.01" ixy="0" ixz="0" iyy="0.01" iyz="0" izz="0.01"/></inertial>"#;

fn link(name: &str) -> String {
    format!(r#"<link name="{name}">{INERTIAL}</link>"#)
}

fn joint(name: &str, kind: &str, parent: &str, child: &str) -> String {
    format!(
        r#"<joint name="{name}" type="{kind}"><parent link="{parent}"/><child link="{child}"/><axis xyz="0 0 1"/><limit lower="-1" upper="1" effort="10" velocity="2"/></joint>"#
    )
}

fn robot(body: &str) -> String {
    format!(r#"<robot name="bad">{body}</robot>"#)
}

/// Links `a` and `b` and the XML of a joint between them (a robot's body, without the `<robot>` element).
fn a_b_body(joint_xml: &str) -> String {
    format!("{}{}{joint_xml}", link("a"), link("b"))
}

/// A robot of links `a` and `b` and the XML of a joint between them.
fn a_b_joined(joint_xml: &str) -> String {
    robot(&a_b_body(joint_xml))
}

fn err(xml: &str) -> KinematicsError {
    match Model::from_urdf_str(xml) {
        Ok(_) => panic!("accepted bad URDF:\n{xml}"),
        Err(e) => e,
    }
}

fn assert_names(error: &KinematicsError, names: &[&str]) {
    let message = error.to_string();
    for name in names {
        assert!(message.contains(name), "error '{message}' does not name '{name}'");
    }
}

#[test]
fn a_good_two_link_urdf_parses() {
    let xml = a_b_joined(&joint("j", "revolute", "a", "b"));
    let model = Model::from_urdf_str(&xml).unwrap();
    assert_eq!(model.nv(), 1);
    assert_eq!(model.joints()[0].limits.upper, 1.0);
    assert_eq!(model.joints()[0].limits.effort, 10.0);
}

#[test]
fn missing_parent_or_child_link_is_named() {
    let e = err(&robot(&format!("{}{}", link("a"), joint("elbow", "revolute", "ghost", "a"))));
    assert!(matches!(e, KinematicsError::MissingLink { role: "parent", .. }), "{e:?}");
    assert_names(&e, &["elbow", "ghost"]);
    let e = err(&robot(&format!("{}{}", link("a"), joint("elbow", "revolute", "a", "phantom"))));
    assert!(matches!(e, KinematicsError::MissingLink { role: "child", .. }), "{e:?}");
    assert_names(&e, &["elbow", "phantom"]);
}

#[test]
fn cycles_are_detected() {
    // root -> a -> b -> a: b's child a already has a parent (several parents).
    let xml = robot(&format!(
        "{}{}{}{}{}{}",
        link("root"),
        link("a"),
        link("b"),
        joint("j0", "revolute", "root", "a"),
        joint("j1", "revolute", "a", "b"),
        joint("j2", "revolute", "b", "a")
    ));
    let e = err(&xml);
    assert!(matches!(e, KinematicsError::SeveralParents { .. }), "{e:?}");
    assert_names(&e, &["'a'", "j0", "j2"]);
    // A pure loop without a root.
    let xml = robot(&format!(
        "{}{}{}{}",
        link("a"),
        link("b"),
        joint("j1", "revolute", "a", "b"),
        joint("j2", "revolute", "b", "a")
    ));
    let e = err(&xml);
    assert!(matches!(e, KinematicsError::Cycle { .. }), "{e:?}");
    // A root plus a separate loop.
    let xml = robot(&format!(
        "{}{}{}{}{}",
        link("root"),
        link("a"),
        link("b"),
        joint("j1", "revolute", "a", "b"),
        joint("j2", "revolute", "b", "a")
    ));
    let e = err(&xml);
    assert!(matches!(e, KinematicsError::Cycle { .. }), "{e:?}");
}

/// The cycle error's link and joints, or a panic.
fn cycle_of(error: &KinematicsError) -> (String, Vec<String>) {
    match error {
        KinematicsError::Cycle { link, joints } => (link.clone(), joints.clone()),
        other => panic!("expected a cycle error, got {other:?}"),
    }
}

#[test]
fn cycle_error_names_a_link_and_the_joints_on_the_cycle_not_a_link_hanging_off_it() {
    // Regression: the error named the first unreached link in file order, which can hang off the cycle.
    // Loop a → b → c → a, with "tail" (listed first) hanging off c and "twig" off tail.
    let cycle = format!(
        "{}{}{}{}{}{}{}",
        joint("ab", "revolute", "a", "b"),
        joint("bc", "revolute", "b", "c"),
        joint("ca", "revolute", "c", "a"),
        joint("c_tail", "revolute", "c", "tail"),
        joint("tail_twig", "revolute", "tail", "twig"),
        link("twig"),
        link("tail"),
    );
    let on_cycle = ["a", "b", "c"];
    let check = |xml: &str| {
        let e = err(xml);
        let (link, joints) = cycle_of(&e);
        assert!(on_cycle.contains(&link.as_str()), "named '{link}', which is not on the cycle: {e}");
        // The three joints of the loop, in parent → child order from the named link.
        let order = ["ab", "bc", "ca"];
        let first = order.iter().position(|j| *j == joints[0]).expect("a cycle joint first");
        let expected: Vec<&str> = (0..3).map(|k| order[(first + k) % 3]).collect();
        assert_eq!(joints, expected, "{e}");
        assert_eq!(link, ["a", "b", "c"][first], "the first joint's parent is the named link");
        assert!(!e.to_string().contains("tail"), "{e}");
    };
    // No root at all: every link has a parent.
    check(&robot(&format!("{cycle}{}{}{}", link("a"), link("b"), link("c"))));
    // A proper tree from "root" plus the separate loop with its tail.
    check(&robot(&format!(
        "{}{}{}{cycle}{}{}{}",
        link("root"),
        link("arm"),
        joint("shoulder", "revolute", "root", "arm"),
        link("a"),
        link("b"),
        link("c"),
    )));
    // A joint whose parent is its own child.
    let e = err(&robot(&format!("{}{}{}", link("root"), link("self"), joint("loop", "revolute", "self", "self"))));
    assert_eq!(cycle_of(&e), ("self".to_string(), vec!["loop".to_string()]));
}

#[test]
fn several_roots_are_listed() {
    let e = err(&robot(&format!("{}{}", link("left"), link("right"))));
    assert!(matches!(e, KinematicsError::SeveralRoots { .. }), "{e:?}");
    assert_names(&e, &["left", "right"]);
}

#[test]
fn unsupported_joint_types_are_named() {
    for kind in ["floating", "planar"] {
        let e = err(&a_b_joined(&joint("free", kind, "a", "b")));
        assert!(matches!(e, KinematicsError::UnsupportedJointType { .. }), "{e:?}");
        assert_names(&e, &["free", kind]);
    }
}

#[test]
fn unknown_joint_type_names_the_joint_and_the_type() {
    // Regression: urdf-rs rejected type="wobbly" with a schema message naming neither the joint nor the type.
    let xml = a_b_joined(&joint("odd", "wobbly", "a", "b"));
    let e = err(&xml);
    assert!(matches!(e, KinematicsError::UnsupportedJointType { .. }), "{e:?}");
    assert_names(&e, &["'odd'", "wobbly"]);
    // Case matters in URDF.
    let e = err(&a_b_joined(&joint("elbow", "Revolute", "a", "b")));
    assert_names(&e, &["'elbow'", "Revolute"]);
    // A joint without a type attribute.
    let e = err(&a_b_joined(r#"<joint name="untyped"><parent link="a"/><child link="b"/></joint>"#));
    assert!(matches!(e, KinematicsError::UnsupportedJointType { .. }), "{e:?}");
    assert_names(&e, &["'untyped'", "missing type"]);
    // From a file, the error names the file too.
    let dir = std::env::temp_dir().join(format!("plexo-kinematics-wobbly-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("wobbly.urdf");
    std::fs::write(&path, &xml).unwrap();
    let e = Model::from_urdf_file(&path).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(e, KinematicsError::InFile { .. }), "{e:?}");
    assert_names(&e, &["wobbly.urdf", "'odd'", "wobbly"]);
}

/// A joint with the given `<limit …/>` element text (or none).
fn joint_with_limit(name: &str, kind: &str, limit: &str) -> String {
    format!(
        r#"<joint name="{name}" type="{kind}"><parent link="a"/><child link="b"/><axis xyz="0 0 1"/>{limit}</joint>"#
    )
}

#[test]
fn revolute_or_prismatic_joint_without_limit_is_rejected_naming_the_joint() {
    // Regression: urdf-rs silently gave such joints range 0..0, velocity 0 and effort 0.
    for kind in ["revolute", "prismatic"] {
        let e = err(&a_b_joined(&joint_with_limit("knee", kind, "")));
        assert!(matches!(e, KinematicsError::MissingLimit { .. }), "{e:?}");
        assert_names(&e, &["'knee'", kind, "<limit>"]);
    }
    // A <limit> of a transmission or another element does not count; only the joint's own child.
    let xml = robot(&format!(
        r#"{}{}{}<transmission name="t"><joint name="knee"><limit effort="1" velocity="1"/></joint></transmission>"#,
        link("a"),
        link("b"),
        joint_with_limit("knee", "revolute", "")
    ));
    assert!(matches!(err(&xml), KinematicsError::MissingLimit { .. }));
}

#[test]
fn continuous_joint_without_limit_is_unlimited_not_zero() {
    // Regression: urdf-rs gave a continuous joint without <limit> velocity 0 and effort 0.
    let model = Model::from_urdf_str(&a_b_joined(&joint_with_limit("spin", "continuous", ""))).unwrap();
    assert_eq!(model.joints()[0].limits, JointLimits::UNLIMITED);
    // With a <limit>, its velocity and effort are kept (position limits never apply to continuous joints).
    let limited = joint_with_limit("spin", "continuous", r#"<limit effort="3" velocity="4"/>"#);
    let model = Model::from_urdf_str(&a_b_joined(&limited)).unwrap();
    let l = model.joints()[0].limits;
    assert_eq!((l.lower, l.upper, l.velocity, l.effort), (f64::NEG_INFINITY, f64::INFINITY, 4.0, 3.0));
}

#[test]
fn limit_without_effort_or_velocity_is_rejected_before_urdf_1_2_and_unlimited_from_1_2() {
    // Before URDF 1.2 `effort` is required; urdf-rs would read 0 N·m (a joint that cannot be driven).
    let body = a_b_body(&joint_with_limit("wrist", "revolute", r#"<limit lower="-1" upper="1" velocity="2"/>"#));
    let e = err(&robot(&body));
    assert!(matches!(e, KinematicsError::InvalidLimits { .. }), "{e:?}");
    assert_names(&e, &["'wrist'", "effort"]);
    // A missing velocity is named too (urdf-rs's own message names neither joint nor attribute).
    let no_velocity = a_b_body(&joint_with_limit("wrist", "prismatic", r#"<limit lower="-1" upper="1" effort="2"/>"#));
    let e = err(&robot(&no_velocity));
    assert!(matches!(e, KinematicsError::InvalidLimits { .. }), "{e:?}");
    assert_names(&e, &["'wrist'", "velocity"]);
    // URDF 1.2: an omitted limit attribute means no limit.
    let model = Model::from_urdf_str(&format!(r#"<robot name="v12" version="1.2">{body}</robot>"#)).unwrap();
    let l = model.joints()[0].limits;
    assert_eq!((l.lower, l.upper, l.velocity, l.effort), (-1.0, 1.0, 2.0, f64::INFINITY));
}

fn with_inertial(mass: &str, inertia: &str) -> String {
    robot(&format!(
        r#"{}<link name="arm"><inertial><mass value="{mass}"/><inertia {inertia}/></inertial></link>{}"#,
        link("base"),
        joint("shoulder", "revolute", "base", "arm")
    ))
}

const GOOD_INERTIA: &str = r#"ixx="0.01" ixy="0" ixz="0" iyy="0.01" iyz="0" izz="0.01""#;

#[test]
fn bad_mass_properties_are_named() {
    let e = err(&with_inertial("-1", GOOD_INERTIA));
    assert!(matches!(e, KinematicsError::NonPositiveMass { .. }), "{e:?}");
    assert_names(&e, &["arm"]);
    let e = err(&with_inertial("0", GOOD_INERTIA));
    assert!(matches!(e, KinematicsError::NonPositiveMass { .. }), "{e:?}");
    let e = err(&with_inertial("1", r#"ixx="0.01" ixy="0" ixz="0" iyy="-0.01" iyz="0" izz="0.01""#));
    assert!(matches!(e, KinematicsError::InertiaNotPositiveDefinite { .. }), "{e:?}");
    assert_names(&e, &["arm"]);
    let e = err(&with_inertial("1", r#"ixx="0.01" ixy="0" ixz="0" iyy="0.01" iyz="0" izz="0.05""#));
    assert!(matches!(e, KinematicsError::InertiaTriangleInequality { .. }), "{e:?}");
    assert_names(&e, &["arm"]);
    // A massless moving link with nothing below it: the joint moves no mass (singular mass matrix).
    let xml =
        robot(&format!(r#"{}<link name="empty"/>{}"#, link("base"), joint("shoulder", "revolute", "base", "empty")));
    let e = err(&xml);
    assert!(matches!(e, KinematicsError::NonPositiveMass { .. }), "{e:?}");
    assert_names(&e, &["shoulder"]);
}

#[test]
fn non_finite_numbers_are_named() {
    let e = err(&with_inertial("NaN", GOOD_INERTIA));
    assert!(matches!(e, KinematicsError::NonFinite { .. }), "{e:?}");
    assert_names(&e, &["arm"]);
    let e = err(&with_inertial("1", r#"ixx="inf" ixy="0" ixz="0" iyy="0.01" iyz="0" izz="0.01""#));
    assert!(matches!(e, KinematicsError::NonFinite { .. }), "{e:?}");
    let xml = a_b_joined(
        r#"<joint name="elbow" type="revolute"><parent link="a"/><child link="b"/><origin xyz="0 NaN 0"/><axis xyz="0 0 1"/><limit lower="-1" upper="1" effort="1" velocity="1"/></joint>"#,
    );
    let e = err(&xml);
    assert!(matches!(e, KinematicsError::NonFinite { .. }), "{e:?}");
    assert_names(&e, &["elbow", "origin"]);
    let xml = a_b_joined(
        r#"<joint name="elbow" type="revolute"><parent link="a"/><child link="b"/><axis xyz="0 inf 0"/><limit lower="-1" upper="1" effort="1" velocity="1"/></joint>"#,
    );
    assert_names(&err(&xml), &["elbow", "axis"]);
    let xml = a_b_joined(
        r#"<joint name="elbow" type="revolute"><parent link="a"/><child link="b"/><axis xyz="0 0 1"/><limit lower="NaN" upper="1" effort="1" velocity="1"/></joint>"#,
    );
    let e = err(&xml);
    assert!(matches!(e, KinematicsError::InvalidLimits { .. }), "{e:?}");
    assert_names(&e, &["elbow"]);
}

#[test]
fn zero_axis_and_inverted_limits_are_named() {
    let xml = a_b_joined(
        r#"<joint name="wrist" type="revolute"><parent link="a"/><child link="b"/><axis xyz="0 0 0"/><limit lower="-1" upper="1" effort="1" velocity="1"/></joint>"#,
    );
    let e = err(&xml);
    assert!(matches!(e, KinematicsError::ZeroAxis { .. }), "{e:?}");
    assert_names(&e, &["wrist"]);
    let xml = a_b_joined(
        r#"<joint name="wrist" type="revolute"><parent link="a"/><child link="b"/><axis xyz="1 0 0"/><limit lower="1" upper="-1" effort="1" velocity="1"/></joint>"#,
    );
    let e = err(&xml);
    assert!(matches!(e, KinematicsError::InvalidLimits { .. }), "{e:?}");
    assert_names(&e, &["wrist"]);
}

#[test]
fn duplicate_names_malformed_xml_and_missing_files_are_reported() {
    let e = err(&robot(&format!("{}{}", link("a"), link("a"))));
    assert!(matches!(e, KinematicsError::DuplicateName { what: "link", .. }), "{e:?}");
    let e = err(&robot(&format!(
        "{}{}{}{}{}",
        link("a"),
        link("b"),
        link("c"),
        joint("j", "revolute", "a", "b"),
        joint("j", "revolute", "b", "c")
    )));
    assert!(matches!(e, KinematicsError::DuplicateName { what: "joint", .. }), "{e:?}");
    assert!(matches!(err("<robot name=\"x\"><link name=\"a\">"), KinematicsError::Parse { .. }));
    assert!(matches!(err("not xml at all"), KinematicsError::Parse { .. }));
    let e = Model::from_urdf_file("/definitely/not/here.urdf").unwrap_err();
    assert!(matches!(e, KinematicsError::ReadFile { .. }));
    assert_names(&e, &["/definitely/not/here.urdf"]);
}

#[test]
fn errors_inside_a_file_name_the_file() {
    let dir = std::env::temp_dir().join(format!("plexo-kinematics-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.urdf");
    std::fs::write(&path, with_inertial("-2", GOOD_INERTIA)).unwrap();
    let e = Model::from_urdf_file(&path).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(e, KinematicsError::InFile { .. }), "{e:?}");
    assert_names(&e, &["broken.urdf", "arm"]);
}

#[test]
fn fixed_joints_merge_bodies_and_become_frames() {
    // Two 1 kg links fixed together behave as one 2 kg body with the combined CoM.
    let xml = robot(&format!(
        r#"{}{}<link name="tip">{INERTIAL}</link>{}<joint name="weld" type="fixed"><parent link="arm"/><child link="tip"/><origin xyz="0.4 0 0"/></joint>"#,
        link("base"),
        link("arm"),
        joint("shoulder", "revolute", "base", "arm"),
    ));
    let model = Model::from_urdf_str(&xml).unwrap();
    assert_eq!(model.nv(), 1);
    let body = model.joints()[0].body;
    assert!((body.mass - 2.0).abs() < 1e-12);
    assert!((body.com - Vector3::new(0.2, 0.0, 0.0)).norm() < 1e-12);
    // Parallel axis: 2 × 0.01 + 2 × 1 kg × (0.2 m)² about y and z.
    assert!((body.inertia_com[(2, 2)] - (0.02 + 0.08)).abs() < 1e-12);
    let tip = model.frame_id("tip").unwrap();
    assert_eq!(model.frames()[tip.0].joint, Some(0));
    assert!(model.frame_id("weld").is_some(), "fixed joints are frames too");
    assert!((model.total_mass() - 3.0).abs() < 1e-12);
}

#[test]
fn builder_rejects_bad_input_without_panicking() {
    let body = RigidBody::new(1.0, Vector3::zeros(), Matrix3::identity() * 0.01);
    let ok = |j: Joint| ModelBuilder::new("m").joint(j.with_body(body)).build();
    assert!(ok(Joint::new("a", JointKind::Revolute, None, Isometry3::identity(), Vector3::z())).is_ok());
    let e = ok(Joint::new("a", JointKind::Revolute, None, Isometry3::identity(), Vector3::zeros())).unwrap_err();
    assert!(matches!(e, KinematicsError::ZeroAxis { .. }));
    let e = ok(Joint::new("a", JointKind::Revolute, Some(3), Isometry3::identity(), Vector3::z())).unwrap_err();
    assert!(matches!(e, KinematicsError::MissingParentJoint { .. }));
    let e = ok(Joint::new("a", JointKind::Revolute, None, Isometry3::translation(f64::NAN, 0.0, 0.0), Vector3::z()))
        .unwrap_err();
    assert!(matches!(e, KinematicsError::NonFinite { .. }));
    let limits = JointLimits { lower: 1.0, upper: 0.0, velocity: 1.0, effort: 1.0 };
    let e = ok(Joint::new("a", JointKind::Prismatic, None, Isometry3::identity(), Vector3::x()).with_limits(limits))
        .unwrap_err();
    assert!(matches!(e, KinematicsError::InvalidLimits { .. }));
    let e = ModelBuilder::new("m")
        .joint(Joint::new("a", JointKind::Revolute, None, Isometry3::identity(), Vector3::z()).with_body(body))
        .frame("f", Some(5), Isometry3::identity())
        .build()
        .unwrap_err();
    assert!(matches!(e, KinematicsError::MissingParentJoint { .. }));
    let bad_body = RigidBody::new(1.0, Vector3::zeros(), Matrix3::from_diagonal(&Vector3::new(1.0, 1.0, 3.0)));
    let e = ModelBuilder::new("m")
        .joint(Joint::new("a", JointKind::Revolute, None, Isometry3::identity(), Vector3::z()).with_body(bad_body))
        .build()
        .unwrap_err();
    assert!(matches!(e, KinematicsError::InertiaTriangleInequality { .. }));
}

#[test]
fn bad_payloads_are_rejected_and_leave_the_model_unchanged() {
    let mut model = Model::from_urdf_str(&a_b_joined(&joint("j", "revolute", "a", "b"))).unwrap();
    let before = model.total_mass();
    let e = model.attach_payload("b", &RigidBody::point_mass(-1.0, Vector3::zeros())).unwrap_err();
    assert!(matches!(e, KinematicsError::NonPositiveMass { .. }));
    let e = model.attach_payload("b", &RigidBody::point_mass(0.0, Vector3::zeros())).unwrap_err();
    assert!(matches!(e, KinematicsError::NonPositiveMass { .. }));
    let e = model.attach_payload("b", &RigidBody::point_mass(1.0, Vector3::new(f64::NAN, 0.0, 0.0))).unwrap_err();
    assert!(matches!(e, KinematicsError::NonFinite { .. }));
    let e = model.attach_payload("nowhere", &RigidBody::point_mass(1.0, Vector3::zeros())).unwrap_err();
    assert!(matches!(e, KinematicsError::UnknownFrame { .. }));
    assert_eq!(model.total_mass(), before);
}

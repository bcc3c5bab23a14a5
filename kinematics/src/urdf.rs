//! URDF → [`Model`] conversion (the text checked against the specification in `urdf_schema`, parsing by
//! `urdf-rs`, validation and fixed-joint merging here).

use std::collections::HashMap;

use nalgebra::{Isometry3, Matrix3, Translation3, UnitQuaternion, Vector3};

use crate::model::{Frame, check_finite};
use crate::urdf_schema;
use crate::{Joint, JointKind, JointLimits, KinematicsError, Model, ModelBuilder, RigidBody};

fn pose_to_isometry(what: &str, pose: &urdf_rs::Pose) -> Result<Isometry3<f64>, KinematicsError> {
    check_finite(&format!("{what} xyz"), &pose.xyz.0)?;
    check_finite(&format!("{what} rpy"), &pose.rpy.0)?;
    let [x, y, z] = pose.xyz.0;
    let [roll, pitch, yaw] = pose.rpy.0;
    // URDF rpy: fixed-axis roll about x, then pitch about y, then yaw about z: R = Rz(yaw) Ry(pitch) Rx(roll),
    // which is nalgebra's `from_euler_angles(roll, pitch, yaw)`.
    Ok(Isometry3::from_parts(Translation3::new(x, y, z), UnitQuaternion::from_euler_angles(roll, pitch, yaw)))
}

fn link_body(link: &urdf_rs::Link) -> Result<RigidBody, KinematicsError> {
    let what = format!("link '{}'", link.name);
    let inertial = &link.inertial;
    let i = &inertial.inertia;
    let inertia = Matrix3::new(i.ixx, i.ixy, i.ixz, i.ixy, i.iyy, i.iyz, i.ixz, i.iyz, i.izz);
    let link_T_inertial = pose_to_isometry(&format!("{what} inertial origin"), &inertial.origin)?;
    // The inertia is given about the CoM in the inertial frame's axes; rotate it into the link frame.
    let body = RigidBody::new(inertial.mass.value, Vector3::zeros(), inertia);
    body.validate(&what, true)?;
    Ok(body.transformed(&link_T_inertial))
}

fn joint_kind(joint: &urdf_rs::Joint) -> Result<Option<JointKind>, KinematicsError> {
    use urdf_rs::JointType as T;
    match joint.joint_type {
        T::Revolute => Ok(Some(JointKind::Revolute)),
        T::Continuous => Ok(Some(JointKind::Continuous)),
        T::Prismatic => Ok(Some(JointKind::Prismatic)),
        T::Fixed => Ok(None),
        ref other => Err(KinematicsError::UnsupportedJointType {
            joint: joint.name.clone(),
            joint_type: format!("{other:?}").to_lowercase(),
        }),
    }
}

/// What the URDF text says about one `<joint>` that `urdf-rs` does not tell us.
struct JointSyntax {
    /// The joint has a `<limit>` element (`urdf-rs` substitutes zeros for a missing one).
    has_limit: bool,
}

/// Pre-scans the `<joint>` elements of the document with the XML parser `urdf-rs` itself builds on, for what
/// `urdf-rs` hides or reports without naming the joint:
/// - an unknown `type` (`urdf-rs` fails with a schema message that names neither the joint nor the type);
/// - a revolute or prismatic joint without `<limit>`, which the URDF specification requires
///   (<http://wiki.ros.org/urdf/XML/joint>; urdfdom rejects it) and for which `urdf-rs` silently substitutes
///   position range 0..0, velocity 0 and effort 0;
/// - a `<limit>` without `effort` or `velocity` before URDF 1.2, where both are required: `urdf-rs` reads a
///   missing effort as 0 and rejects a missing velocity without naming the joint (from URDF 1.2 an omitted
///   limit means unlimited, and `urdf-rs` reads infinity).
///
/// Returns, per joint name, what the text says. A document this parser cannot read is left to `urdf-rs`, which
/// reports the syntax error.
fn prescan_joints(xml: &str) -> Result<HashMap<String, JointSyntax>, KinematicsError> {
    let mut joints = HashMap::new();
    let Ok(robot) = xml.parse::<rustyxml::Element>() else {
        return Ok(joints);
    };
    let version_at_least_1_2 = robot
        .get_attribute("version", None)
        .and_then(|v| v.trim().split_once('.'))
        .and_then(|(major, minor)| Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?)))
        .is_some_and(|version| version >= (1, 2));
    for element in robot.get_children("joint", None) {
        let name = element.get_attribute("name", None).unwrap_or_default().to_string();
        let joint_type = element.get_attribute("type", None);
        let movable = match joint_type {
            Some("revolute" | "prismatic" | "continuous") => true,
            Some("fixed") => false,
            other => {
                return Err(KinematicsError::UnsupportedJointType {
                    joint: name,
                    joint_type: other.unwrap_or("(missing type attribute)").to_string(),
                });
            }
        };
        let limit = element.get_child("limit", None);
        if let Some(kind @ ("revolute" | "prismatic")) = joint_type
            && limit.is_none()
        {
            return Err(KinematicsError::MissingLimit { joint: name, joint_type: kind.to_string() });
        }
        if movable
            && !version_at_least_1_2
            && let Some(limit) = limit
        {
            // Before URDF 1.2 both are required; urdf-rs would read a missing effort as 0 N·m (a joint that
            // cannot be driven) and reject a missing velocity without naming the joint.
            for attribute in ["effort", "velocity"] {
                if limit.get_attribute(attribute, None).is_none() {
                    return Err(KinematicsError::InvalidLimits {
                        joint: name,
                        reason: format!("<limit> has no {attribute} attribute (required before URDF 1.2)"),
                    });
                }
            }
        }
        joints.insert(name, JointSyntax { has_limit: limit.is_some() });
    }
    Ok(joints)
}

/// The link where following parent joints from `start` first comes back to a link already seen: a link on the
/// cycle that `start` hangs off (every link reached has exactly one parent joint), with the cycle's joints in
/// parent → child order starting at that link.
fn cycle_from(
    robot: &urdf_rs::Robot,
    link_index: &HashMap<&str, usize>,
    parent_joint: &[Option<usize>],
    start: usize,
) -> KinematicsError {
    let parent_link = |link: usize| parent_joint[link].map(|j| (j, link_index[robot.joints[j].parent.link.as_str()]));
    let mut seen = vec![false; robot.links.len()];
    let mut link = start;
    while !seen[link] {
        seen[link] = true;
        match parent_link(link) {
            Some((_, parent)) => link = parent,
            // Unreachable when called on a link with no path to a root; report the start rather than panic.
            None => return KinematicsError::Cycle { link: robot.links[start].name.clone(), joints: Vec::new() },
        }
    }
    // `link` is on the cycle: walk it once more, collecting the joints (child → parent), then reverse.
    let mut joints = Vec::new();
    let mut at = link;
    while let Some((j, parent)) = parent_link(at) {
        joints.push(robot.joints[j].name.clone());
        at = parent;
        if at == link {
            break;
        }
    }
    joints.reverse();
    KinematicsError::Cycle { link: robot.links[link].name.clone(), joints }
}

/// Largest limit magnitude of a revolute joint [rad]: one turn each way (multi-turn joints of real arms, e.g.
/// UR's ±6.28318530718, reach it), with a margin for the rounding of 2π in the file.
const REVOLUTE_LIMIT: f64 = core::f64::consts::TAU + 1e-6;

/// A link waiting in the depth-first walk: (link index, body it belongs to, body_T_link, movable joint to create
/// when it is visited).
type PendingLink = (usize, Option<usize>, Isometry3<f64>, Option<Joint>);

/// Parses and validates a URDF document into a [`Model`].
/// `e` (an error of [`Model::from_urdf_str`] on `xml`) with the element and line it is about, if it names a
/// joint or link but not where it is ([`KinematicsError::AtUrdfElement`]); other errors are returned as they
/// are. Applications call it to report every URDF error at its line; the library's own errors keep their kinds.
/// Not real-time safe.
pub fn locate_urdf_error(xml: &str, e: KinematicsError) -> KinematicsError {
    use KinematicsError as E;
    if e.to_string().contains("(line ") {
        return e; // located already (the schema check names the line of the attribute)
    }
    // The name between the first pair of quotes of `body` ("link 'forearm'", "joint 'elbow' (everything ...)").
    let quoted = |body: &str| -> Option<(&'static str, String)> {
        let tag = if body.starts_with("joint") {
            "joint"
        } else if body.starts_with("link") {
            "link"
        } else {
            return None;
        };
        let name = body.split('\'').nth(1)?;
        Some((tag, name.to_owned()))
    };
    let (tag, name, nth) = match &e {
        E::DuplicateName { what, name } if *what == "joint" || *what == "link" => (*what, name.clone(), 2),
        E::MissingLink { joint, .. }
        | E::UnsupportedJointType { joint, .. }
        | E::MissingLimit { joint, .. }
        | E::ZeroAxis { joint }
        | E::InvalidLimits { joint, .. }
        | E::InvalidArmature { joint, .. } => ("joint", joint.clone(), 1),
        E::SeveralParents { second, .. } => ("joint", second.clone(), 1),
        E::Cycle { link, .. } => ("link", link.clone(), 1),
        E::SeveralRoots { roots } if roots.len() > 1 => ("link", roots[1].clone(), 1),
        E::NonPositiveMass { body, .. }
        | E::InertiaNotPositiveDefinite { body, .. }
        | E::InertiaTriangleInequality { body, .. } => match quoted(body) {
            Some((tag, name)) => (tag, name, 1),
            None => return e,
        },
        _ => return e,
    };
    match element_line(xml, tag, &name, nth) {
        Some(line) => E::AtUrdfElement { line, element: format!("<{tag} name=\"{name}\">"), source: Box::new(e) },
        None => e,
    }
}

/// Line (1-based) of the `nth` start tag `<tag ... name="name" ...>` in `xml`.
fn element_line(xml: &str, tag: &str, name: &str, nth: usize) -> Option<usize> {
    let open = format!("<{tag}");
    let (double, single) = (format!("name=\"{name}\""), format!("name='{name}'"));
    xml.match_indices(&open)
        .filter(|(i, _)| xml[i + open.len()..].starts_with(|c: char| c.is_whitespace()))
        .filter(|(i, _)| {
            let rest = &xml[*i..];
            let head = &rest[..rest.find('>').unwrap_or(rest.len())];
            head.split_whitespace()
                .any(|a| a == double || a == single || a.starts_with(&double) || a.starts_with(&single))
        })
        .nth(nth - 1)
        .map(|(i, _)| xml[..i].matches('\n').count() + 1)
}

pub(crate) fn parse(xml: &str) -> Result<Model, KinematicsError> {
    let syntax = prescan_joints(xml)?;
    urdf_schema::check(xml)?;
    let xml = urdf_schema::without_nameless_textures(xml);
    let robot = urdf_rs::read_from_string(&xml).map_err(|e| KinematicsError::Parse { message: e.to_string() })?;
    if robot.links.is_empty() {
        return Err(KinematicsError::Empty);
    }
    let mut link_index: HashMap<&str, usize> = HashMap::new();
    for (i, link) in robot.links.iter().enumerate() {
        if link_index.insert(link.name.as_str(), i).is_some() {
            return Err(KinematicsError::DuplicateName { what: "link", name: link.name.clone() });
        }
    }
    let mut joint_names: HashMap<&str, usize> = HashMap::new();
    let mut parent_joint: Vec<Option<usize>> = vec![None; robot.links.len()];
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); robot.links.len()];
    for (j, joint) in robot.joints.iter().enumerate() {
        if joint_names.insert(joint.name.as_str(), j).is_some() {
            return Err(KinematicsError::DuplicateName { what: "joint", name: joint.name.clone() });
        }
        joint_kind(joint)?;
        let find = |role: &'static str, link: &str| {
            link_index.get(link).copied().ok_or_else(|| KinematicsError::MissingLink {
                joint: joint.name.clone(),
                role,
                link: link.to_string(),
            })
        };
        let parent = find("parent", &joint.parent.link)?;
        let child = find("child", &joint.child.link)?;
        if let Some(first) = parent_joint[child] {
            return Err(KinematicsError::SeveralParents {
                link: joint.child.link.clone(),
                first: robot.joints[first].name.clone(),
                second: joint.name.clone(),
            });
        }
        parent_joint[child] = Some(j);
        children[parent].push(j);
    }
    let roots: Vec<usize> = (0..robot.links.len()).filter(|&l| parent_joint[l].is_none()).collect();
    let root = match roots.as_slice() {
        [root] => *root,
        // Every link has one parent: following parents from any link ends on a cycle.
        [] => return Err(cycle_from(&robot, &link_index, &parent_joint, 0)),
        _ => {
            return Err(KinematicsError::SeveralRoots {
                roots: roots.iter().map(|&l| robot.links[l].name.clone()).collect(),
            });
        }
    };

    // Depth-first from the root, parents before children, children in file order. Each link carries
    // (index of the movable joint whose body it belongs to, placement of the link in that joint's frame).
    let mut visited = vec![false; robot.links.len()];
    // Movable joints are numbered when their child link is popped, so numbering is depth-first pre-order.
    let mut stack: Vec<PendingLink> = vec![(root, None, Isometry3::identity(), None)];
    let mut joints: Vec<Joint> = Vec::new();
    let mut link_frames: Vec<Frame> = Vec::new();
    let mut fixed_joint_frames: Vec<Frame> = Vec::new();
    let mut base_body = RigidBody::ZERO;
    while let Some((link, mut body, body_T_link, pending_joint)) = stack.pop() {
        visited[link] = true;
        if let Some(joint) = pending_joint {
            joints.push(joint);
            body = Some(joints.len() - 1);
        }
        let urdf_link = &robot.links[link];
        let link_body = link_body(urdf_link)?.transformed(&body_T_link);
        match body {
            Some(j) => joints[j].body = joints[j].body.merged(&link_body),
            None => base_body = base_body.merged(&link_body),
        }
        if link != root {
            link_frames.push(Frame { name: urdf_link.name.clone(), joint: body, joint_T_frame: body_T_link });
        }
        for &j in children[link].iter().rev() {
            let joint = &robot.joints[j];
            let what = format!("joint '{}'", joint.name);
            let body_T_joint = body_T_link * pose_to_isometry(&format!("{what} origin"), &joint.origin)?;
            let child = link_index[joint.child.link.as_str()];
            match joint_kind(joint)? {
                None => {
                    fixed_joint_frames.push(Frame {
                        name: joint.name.clone(),
                        joint: body,
                        joint_T_frame: body_T_joint,
                    });
                    stack.push((child, body, body_T_joint, None));
                }
                Some(kind) => {
                    check_finite(&format!("{what} axis"), &joint.axis.xyz.0)?;
                    let axis = Vector3::from(joint.axis.xyz.0);
                    if axis.norm() < 1e-9 {
                        return Err(KinematicsError::ZeroAxis { joint: joint.name.clone() });
                    }
                    let l = &joint.limit;
                    // A continuous joint may omit <limit>: no velocity or effort limit (as urdfdom), not the zeros
                    // urdf-rs substitutes. Revolute and prismatic joints without one were rejected by the pre-scan.
                    let has_limit = syntax.get(joint.name.as_str()).is_none_or(|s| s.has_limit);
                    let limits = if has_limit {
                        JointLimits { lower: l.lower, upper: l.upper, velocity: l.velocity, effort: l.effort }
                    } else {
                        JointLimits::UNLIMITED
                    };
                    let new_joint = Joint::new(joint.name.clone(), kind, body, body_T_joint, axis).with_limits(limits);
                    stack.push((child, None, Isometry3::identity(), Some(new_joint)));
                }
            }
        }
    }
    if let Some(l) = visited.iter().position(|v| !v) {
        // Not reachable from the root: the link's chain of parents ends on a cycle.
        return Err(cycle_from(&robot, &link_index, &parent_joint, l));
    }
    for joint in &joints {
        if joint.limits.lower > joint.limits.upper {
            return Err(KinematicsError::InvalidLimits {
                joint: joint.name.clone(),
                reason: format!("lower {} > upper {}", joint.limits.lower, joint.limits.upper),
            });
        }
        if joint.kind == JointKind::Revolute
            && (joint.limits.lower < -REVOLUTE_LIMIT || joint.limits.upper > REVOLUTE_LIMIT)
        {
            return Err(KinematicsError::InvalidLimits {
                joint: joint.name.clone(),
                reason: format!(
                    "revolute range [{}, {}] rad reaches beyond one turn each way (±2π); a joint that turns without \
                     limit is continuous",
                    joint.limits.lower, joint.limits.upper
                ),
            });
        }
    }

    let mut builder =
        ModelBuilder::new(robot.name.clone()).base_frame(robot.links[root].name.clone()).base_body(base_body);
    for joint in joints {
        builder = builder.joint(joint);
    }
    let link_names: Vec<&str> = robot.links.iter().map(|l| l.name.as_str()).collect();
    for f in
        link_frames.into_iter().chain(fixed_joint_frames.into_iter().filter(|f| !link_names.contains(&f.name.as_str())))
    {
        builder = builder.frame(f.name, f.joint, f.joint_T_frame);
    }
    builder.build()
}

impl Model {
    /// Loads a URDF file. Errors name the file and the joint or link at fault.
    pub fn from_urdf_file(path: impl AsRef<std::path::Path>) -> Result<Model, KinematicsError> {
        let path = path.as_ref();
        let xml = std::fs::read_to_string(path)
            .map_err(|source| KinematicsError::ReadFile { path: path.to_path_buf(), source })?;
        Model::from_urdf_str(&xml).map_err(|e| e.in_file(path.to_path_buf()))
    }

    /// Parses a URDF document.
    ///
    /// Supported joints: revolute, continuous, prismatic (1 DOF each) and fixed (merged into the parent body; the
    /// child link becomes a frame). Every link gets a frame named after it (the root link is the base frame, fixed
    /// to the world); every joint gets a frame named after it unless a link already has that name. Checked, with
    /// an error naming the joint or link: duplicate names, missing parent/child links, links with several parents,
    /// cycles (naming a link and the joints on the cycle), several roots, floating/planar/unknown joint types,
    /// revolute or prismatic joints without `<limit>` (required by the URDF specification), `<limit>` without
    /// `effort` before URDF 1.2, NaN/infinite numbers, zero axes, lower > upper limits, negative velocity/effort
    /// limits, negative mass, inertia that is not positive definite or violates the triangle inequality, joints
    /// that move no mass at all, and joints whose bodies have no inertia about the joint axis at q = 0 (singular
    /// mass matrix). Checked against the URDF specification first, with an error naming the item, the joint or
    /// link and the line: unknown elements and attributes (a misspelt `<axis>` or `lower=` would otherwise take
    /// its default), non-finite numbers in any element (visuals and collisions included; an explicit
    /// `effort="inf"` too), revolute limits beyond ±2π; `<transmission>`, `<gazebo>`, `<ros2_control>` and
    /// namespaced elements are not checked, and a cosmetic `<texture>` without `filename` is ignored. A
    /// continuous joint without `<limit>` has no velocity or effort limit. A link without
    /// `<inertial>` (or with mass 0 and zero inertia, which `urdf-rs` cannot tell apart) is massless. Joint
    /// armature is not part of URDF: add it with [`Model::with_armature`].
    pub fn from_urdf_str(xml: &str) -> Result<Model, KinematicsError> {
        parse(xml)
    }
}

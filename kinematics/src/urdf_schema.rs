//! The URDF text checked against the elements and attributes of the URDF specification
//! (<http://wiki.ros.org/urdf/XML>), before `urdf-rs` reads it: `urdf-rs` ignores what it does not know, so a
//! misspelt `<axiss>` would silently leave the axis at its default (+x) and `lowr=` the lower limit at 0. Also
//! refused here, naming the line: non-finite numbers in any element, including the visual and collision
//! elements the model otherwise ignores. Extension elements (`<transmission>`, `<gazebo>`, `<ros2_control>`
//! and any namespaced element such as `xacro:…`) are not checked.

use std::borrow::Cow;

use rustyxml::{Event, Parser};

use crate::KinematicsError;

/// Top-level extension elements whose content is not URDF kinematics and is not checked.
const EXTENSIONS: [&str; 3] = ["transmission", "gazebo", "ros2_control"];

/// Attributes whose values are numbers (one or several, space separated).
const NUMERIC: [&str; 26] = [
    "xyz",
    "rpy",
    "value",
    "ixx",
    "ixy",
    "ixz",
    "iyy",
    "iyz",
    "izz",
    "size",
    "radius",
    "length",
    "scale",
    "rgba",
    "lower",
    "upper",
    "effort",
    "velocity",
    "damping",
    "friction",
    "rising",
    "falling",
    "multiplier",
    "offset",
    "soft_lower_limit",
    "soft_upper_limit",
];

/// Numeric attributes of `<safety_controller>` besides the soft limits.
const NUMERIC_GAINS: [&str; 2] = ["k_position", "k_velocity"];

/// The attributes `element` may carry inside `parent` (`""`: the document), or `None` if the URDF specification
/// has no such element there.
fn known_attributes(parent: &str, element: &str) -> Option<&'static [&'static str]> {
    Some(match (parent, element) {
        ("", "robot") => &["name", "version"],
        ("robot", "link") => &["name"],
        ("robot", "joint") => &["name", "type"],
        ("robot", "material") | ("visual", "material") => &["name"],
        ("link", "inertial") => &[],
        ("link", "visual" | "collision") => &["name"],
        ("inertial" | "visual" | "collision" | "joint", "origin") => &["xyz", "rpy"],
        ("inertial", "mass") => &["value"],
        ("inertial", "inertia") => &["ixx", "ixy", "ixz", "iyy", "iyz", "izz"],
        ("visual" | "collision", "geometry") => &[],
        ("geometry", "box") => &["size"],
        ("geometry", "cylinder" | "capsule") => &["radius", "length"],
        ("geometry", "sphere") => &["radius"],
        ("geometry", "mesh") => &["filename", "scale"],
        ("material", "color") => &["rgba"],
        ("material", "texture") => &["filename"],
        ("joint", "parent" | "child") => &["link"],
        ("joint", "axis") => &["xyz"],
        ("joint", "limit") => &["lower", "upper", "effort", "velocity"],
        ("joint", "dynamics") => &["damping", "friction"],
        ("joint", "calibration") => &["rising", "falling", "reference_position"],
        ("joint", "mimic") => &["joint", "multiplier", "offset"],
        ("joint", "safety_controller") => &["soft_lower_limit", "soft_upper_limit", "k_position", "k_velocity"],
        _ => return None,
    })
}

/// The elements the URDF specification allows inside `parent`, for error messages.
fn known_children(parent: &str) -> &'static str {
    match parent {
        "" => "<robot>",
        "robot" => "<link>, <joint>, <material>, <transmission>, <gazebo>, <ros2_control>",
        "link" => "<inertial>, <visual>, <collision>",
        "inertial" => "<origin>, <mass>, <inertia>",
        "visual" => "<origin>, <geometry>, <material>",
        "collision" => "<origin>, <geometry>",
        "geometry" => "<box>, <cylinder>, <sphere>, <capsule>, <mesh>",
        "material" => "<color>, <texture>",
        "joint" => {
            "<origin>, <parent>, <child>, <axis>, <limit>, <dynamics>, <calibration>, <mimic>, <safety_controller>"
        }
        _ => "(none)",
    }
}

/// An open element while walking the document.
struct Open {
    name: String,
    /// Inside an extension element: nothing below is checked.
    skipped: bool,
    /// The link, joint or top-level material it belongs to (`joint 'elbow'`), or the robot.
    within: String,
    /// The joint's name when it belongs to a joint.
    joint: Option<String>,
}

/// Checks every element, attribute and number of a URDF document; errors name the item, the joint or link it
/// belongs to and the line (where the element's start tag ends). A document that is not well-formed XML is left
/// to `urdf-rs`, which reports the syntax error. Not real-time safe.
pub(crate) fn check(xml: &str) -> Result<(), KinematicsError> {
    let mut parser = Parser::new();
    let mut stack: Vec<Open> = Vec::new();
    for (index, text) in xml.split_inclusive('\n').enumerate() {
        let line = index + 1;
        parser.feed_str(text);
        for event in &mut parser {
            match event {
                Err(_) => return Ok(()),
                Ok(Event::ElementStart(tag)) => {
                    let open = open_element(&stack, &tag, line)?;
                    stack.push(open);
                }
                Ok(Event::ElementEnd(_)) => {
                    stack.pop();
                }
                Ok(_) => {}
            }
        }
    }
    Ok(())
}

fn open_element(stack: &[Open], tag: &rustyxml::StartTag, line: usize) -> Result<Open, KinematicsError> {
    let parent = stack.last();
    let parent_name = parent.map_or("", |p| p.name.as_str());
    let element = tag.name.as_str();
    let mut within = parent.map_or_else(|| "robot".to_string(), |p| p.within.clone());
    let mut joint = parent.and_then(|p| p.joint.clone());
    let skipped = parent.is_some_and(|p| p.skipped)
        || tag.prefix.is_some()
        || (parent_name == "robot" && EXTENSIONS.contains(&element));
    if skipped {
        return Ok(Open { name: element.to_string(), skipped, within, joint });
    }
    let name = tag.attributes.get(&("name".to_string(), None)).cloned().unwrap_or_default();
    match (parent_name, element) {
        ("", "robot") => within = format!("robot '{name}'"),
        ("robot", "link" | "joint" | "material") => within = format!("{element} '{name}'"),
        _ => {}
    }
    if (parent_name, element) == ("robot", "joint") {
        joint = Some(name);
    }
    let Some(known) = known_attributes(parent_name, element) else {
        return Err(KinematicsError::UnknownUrdfItem {
            line,
            within,
            item: format!("element <{element}> in <{parent_name}>"),
            known: known_children(parent_name).to_string(),
        });
    };
    // Sorted, so the first of several unknown attributes is reported deterministically.
    let mut attributes: Vec<(&str, &str)> = tag
        .attributes
        .iter()
        .filter(|((attribute, ns), _)| ns.is_none() && !attribute.starts_with("xmlns"))
        .map(|((attribute, _), value)| (attribute.as_str(), value.as_str()))
        .collect();
    attributes.sort_unstable();
    for (attribute, value) in attributes {
        if !known.contains(&attribute) {
            return Err(KinematicsError::UnknownUrdfItem {
                line,
                within,
                item: format!("attribute {attribute}= of <{element}>"),
                known: if known.is_empty() { "(none)".to_string() } else { known.join(", ") },
            });
        }
        if NUMERIC.contains(&attribute) || NUMERIC_GAINS.contains(&attribute) {
            check_numbers(&within, joint.as_deref(), element, attribute, value, line)?;
        }
    }
    Ok(Open { name: element.to_string(), skipped, within, joint })
}

/// Every number of a numeric attribute must be finite. A text that is not a number is left to `urdf-rs`.
fn check_numbers(
    within: &str,
    joint: Option<&str>,
    element: &str,
    attribute: &str,
    value: &str,
    line: usize,
) -> Result<(), KinematicsError> {
    for number in value.split_whitespace().filter_map(|token| token.parse::<f64>().ok()) {
        if number.is_finite() {
            continue;
        }
        return Err(match (element, joint) {
            // A joint's limits are reported as its limits (an infinite effort is no URDF 1.2 "unlimited": that is
            // written by leaving the attribute out).
            ("limit", Some(joint)) => KinematicsError::InvalidLimits {
                joint: joint.to_string(),
                reason: format!("<limit> {attribute}=\"{value}\" is not finite (line {line})"),
            },
            _ => KinematicsError::NonFinite {
                what: format!("{within} <{element}> {attribute} (line {line})"),
                value: number,
            },
        });
    }
    Ok(())
}

/// The document without `<texture>` elements that have no `filename`: a texture is cosmetic, real robot
/// descriptions carry empty ones, and `urdf-rs` refuses them ("missing field `filename`", naming nothing).
/// Removed elements are replaced by their line breaks, so lines keep their numbers. Not real-time safe.
pub(crate) fn without_nameless_textures(xml: &str) -> Cow<'_, str> {
    const OPEN: &str = "<texture";
    const CLOSE: &str = "</texture>";
    let mut out = String::new();
    let mut rest = xml;
    let mut changed = false;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let is_texture = after.chars().next().is_some_and(|c| c.is_whitespace() || c == '/' || c == '>');
        let Some(tag_end) = after.find('>').filter(|_| is_texture) else {
            out.push_str(&rest[..start + OPEN.len()]);
            rest = after;
            continue;
        };
        let attributes = &after[..tag_end];
        let element_end = if attributes.ends_with('/') {
            start + OPEN.len() + tag_end + 1
        } else {
            match after.find(CLOSE) {
                Some(close) => start + OPEN.len() + close + CLOSE.len(),
                // Unclosed: malformed XML, which urdf-rs reports.
                None => break,
            }
        };
        let has_filename = attributes
            .match_indices("filename")
            .any(|(i, _)| attributes[i + "filename".len()..].trim_start().starts_with('='));
        if has_filename {
            out.push_str(&rest[..element_end]);
        } else {
            out.push_str(&rest[..start]);
            out.extend(rest[start..element_end].chars().filter(|&c| c == '\n'));
            changed = true;
        }
        rest = &rest[element_end..];
    }
    if !changed {
        return Cow::Borrowed(xml);
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use crate::{KinematicsError, Model};

    const INERTIAL: &str =
        r#"<inertial><mass value="1"/><inertia ixx="0.01" ixy="0" ixz="0" iyy="0.01" iyz="0" izz="0.01"/></inertial>"#;

    /// Two links and a revolute elbow; `axis`, `limit` and `visual` are the joint's axis and limit elements and
    /// the forearm's extra content, one per line.
    fn arm(axis: &str, limit: &str, visual: &str) -> String {
        format!(
            "<robot name=\"arm\">\n<link name=\"upper\">{INERTIAL}</link>\n<link name=\"forearm\">{INERTIAL}\n{visual}\n</link>\n\
             <joint name=\"elbow\" type=\"revolute\">\n<parent link=\"upper\"/><child link=\"forearm\"/>\n{axis}\n{limit}\n</joint>\n</robot>\n"
        )
    }

    const AXIS: &str = r#"<axis xyz="0 1 0"/>"#;
    const LIMIT: &str = r#"<limit lower="-1" upper="2" effort="10" velocity="2"/>"#;
    const VISUAL: &str = r#"<visual><origin xyz="0 0 -0.1"/><geometry><cylinder radius="0.03" length="0.2"/></geometry><material name="grey"><color rgba="0.5 0.5 0.5 1"/></material></visual>"#;

    fn error_of(xml: &str) -> String {
        Model::from_urdf_str(xml).unwrap_err().to_string()
    }

    #[test]
    fn the_reference_arm_parses() {
        let model = Model::from_urdf_str(&arm(AXIS, LIMIT, VISUAL)).unwrap();
        assert_eq!(model.joints()[0].axis.into_inner(), nalgebra::Vector3::y());
        assert_eq!(model.joints()[0].limits.lower, -1.0);
    }

    #[test]
    fn a_misspelt_element_is_named_with_its_joint_and_line_not_defaulted() {
        // Before: <axiss> was ignored and the elbow turned about +x.
        let e = error_of(&arm(r#"<axiss xyz="0 1 0"/>"#, LIMIT, VISUAL));
        assert!(e.contains("<axiss>") && e.contains("joint 'elbow'") && e.contains("line 8"), "{e}");
        let e = error_of(&arm(
            AXIS,
            LIMIT,
            &VISUAL.replace("<geometry>", "<geometri>").replace("</geometry>", "</geometri>"),
        ));
        assert!(e.contains("<geometri>") && e.contains("link 'forearm'") && e.contains("line 4"), "{e}");
    }

    #[test]
    fn a_misspelt_attribute_is_named_with_its_element_joint_and_line_not_defaulted() {
        // Before: lowr= was ignored and the lower limit was 0.
        let e = error_of(&arm(AXIS, &LIMIT.replace("lower=", "lowr="), VISUAL));
        assert!(
            e.contains("lowr=") && e.contains("<limit>") && e.contains("joint 'elbow'") && e.contains("line 9"),
            "{e}"
        );
    }

    #[test]
    fn non_finite_numbers_in_visuals_and_limits_are_refused_at_load() {
        let e = Model::from_urdf_str(&arm(AXIS, LIMIT, &VISUAL.replace("0 0 -0.1", "0 nan -0.1"))).unwrap_err();
        assert!(matches!(e, KinematicsError::NonFinite { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("link 'forearm'") && msg.contains("<origin> xyz") && msg.contains("line 4"), "{msg}");
        let e =
            Model::from_urdf_str(&arm(AXIS, &LIMIT.replace("effort=\"10\"", "effort=\"inf\""), VISUAL)).unwrap_err();
        assert!(matches!(e, KinematicsError::InvalidLimits { ref joint, .. } if joint == "elbow"), "{e:?}");
        assert!(e.to_string().contains("effort"), "{e}");
    }

    #[test]
    fn a_revolute_range_beyond_one_turn_each_way_is_refused() {
        let e = Model::from_urdf_str(&arm(
            AXIS,
            &LIMIT.replace("-1", "-610").replace("\"2\" effort", "\"611\" effort"),
            VISUAL,
        ))
        .unwrap_err();
        assert!(matches!(e, KinematicsError::InvalidLimits { ref joint, .. } if joint == "elbow"), "{e:?}");
        assert!(e.to_string().contains("-610"), "{e}");
        // Multi-turn joints of real arms span ±2π (UR: ±6.28318530718).
        let ur = LIMIT.replace("-1", "-6.28318530718").replace("\"2\" effort", "\"6.28318530718\" effort");
        assert!(Model::from_urdf_str(&arm(AXIS, &ur, VISUAL)).is_ok());
    }

    #[test]
    fn a_texture_without_filename_does_not_refuse_the_robot() {
        for texture in ["<texture/>", "<texture />", "<texture></texture>"] {
            let visual = VISUAL.replace("</material>", &format!("{texture}</material>"));
            Model::from_urdf_str(&arm(AXIS, LIMIT, &visual)).unwrap();
        }
        let visual = VISUAL.replace("</material>", r#"<texture filename = "wood.png"/></material>"#);
        Model::from_urdf_str(&arm(AXIS, LIMIT, &visual)).unwrap();
    }

    #[test]
    fn extension_and_namespaced_elements_are_not_checked() {
        let xml = arm(AXIS, LIMIT, VISUAL).replace(
            "</robot>",
            "<transmission name=\"t\"><type>x</type><anything/></transmission><gazebo><plugin/></gazebo></robot>",
        );
        Model::from_urdf_str(&xml).unwrap();
        let xml = xml.replace(
            "<robot name=\"arm\">",
            "<robot name=\"arm\" xmlns:xacro=\"http://ros.org/wiki/xacro\"><xacro:property name=\"p\" value=\"1\"/>",
        );
        Model::from_urdf_str(&xml).unwrap();
    }
}

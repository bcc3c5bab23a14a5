//! The crate's single error type.

use std::path::PathBuf;

/// Everything that can go wrong while building a [`crate::Model`], attaching payloads or computing
/// anthropometrics. Every variant names the file, joint, link or quantity at fault.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum KinematicsError {
    /// The URDF file could not be read.
    #[error("cannot read URDF file '{path}': {source}")]
    ReadFile {
        /// The file that was opened.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An error found while loading the named file.
    #[error("in URDF file '{path}': {source}")]
    InFile {
        /// The file that was loaded.
        path: PathBuf,
        /// The error found in it.
        source: Box<KinematicsError>,
    },
    /// The XML is not a well-formed URDF document (as reported by `urdf-rs`).
    #[error("malformed URDF: {message}")]
    Parse {
        /// The parser's message.
        message: String,
    },
    /// Two links, two joints or two frames share a name.
    #[error("duplicate {what} name '{name}'")]
    DuplicateName {
        /// "link", "joint" or "frame".
        what: &'static str,
        /// The repeated name.
        name: String,
    },
    /// A joint refers to a link (parent or child) that does not exist.
    #[error("joint '{joint}': {role} link '{link}' does not exist")]
    MissingLink {
        /// The joint.
        joint: String,
        /// "parent" or "child".
        role: &'static str,
        /// The missing link's name.
        link: String,
    },
    /// A builder joint or frame refers to a parent joint that was not added before it.
    #[error("'{name}': parent joint '{parent}' does not exist (parents must be added before children)")]
    MissingParentJoint {
        /// The joint or frame being added.
        name: String,
        /// The parent joint name or index.
        parent: String,
    },
    /// A link is the child of more than one joint.
    #[error("link '{link}' is the child of several joints ('{first}' and '{second}')")]
    SeveralParents {
        /// The link.
        link: String,
        /// First joint naming it as child.
        first: String,
        /// Second joint naming it as child.
        second: String,
    },
    /// The kinematic graph contains a cycle through this link.
    #[error("kinematic cycle through link '{link}' (joints {joints:?})")]
    Cycle {
        /// A link on the cycle.
        link: String,
        /// The joints around the cycle, parent → child, starting with the one whose parent is `link`.
        joints: Vec<String>,
    },
    /// More than one link has no parent joint.
    #[error("several root links (links without a parent joint): {roots:?}")]
    SeveralRoots {
        /// All parentless links.
        roots: Vec<String>,
    },
    /// The model has no link at all.
    #[error("the model has no links")]
    Empty,
    /// A joint type this library does not model.
    #[error(
        "joint '{joint}': unsupported joint type '{joint_type}' (supported: revolute, continuous, prismatic, fixed)"
    )]
    UnsupportedJointType {
        /// The joint.
        joint: String,
        /// The type found.
        joint_type: String,
    },
    /// A revolute or prismatic joint without the `<limit>` element the URDF specification requires.
    #[error(
        "joint '{joint}': a {joint_type} joint needs a <limit> element (position, velocity and effort limits; URDF spec)"
    )]
    MissingLimit {
        /// The joint.
        joint: String,
        /// "revolute" or "prismatic".
        joint_type: String,
    },
    /// A body has zero or negative mass where a positive mass is needed.
    #[error("{body}: mass {mass} kg must be positive")]
    NonPositiveMass {
        /// The link, payload or joint body.
        body: String,
        /// The offending mass [kg].
        mass: f64,
    },
    /// A rotational inertia is not symmetric positive definite.
    #[error("{body}: inertia tensor is not positive definite (principal moments {moments:?} kg m²)")]
    InertiaNotPositiveDefinite {
        /// The link or payload.
        body: String,
        /// Principal moments found [kg m²].
        moments: [f64; 3],
    },
    /// The principal moments violate the triangle inequality (no physical body has them).
    #[error("{body}: principal moments {moments:?} kg m² violate the triangle inequality")]
    InertiaTriangleInequality {
        /// The link or payload.
        body: String,
        /// Principal moments found [kg m²].
        moments: [f64; 3],
    },
    /// A NaN or infinite number where a finite one is required.
    #[error("{what}: non-finite number {value}")]
    NonFinite {
        /// Which quantity, naming the joint/link (e.g. "joint 'elbow' origin xyz").
        what: String,
        /// The value found.
        value: f64,
    },
    /// A joint axis of (near) zero length.
    #[error("joint '{joint}': axis has zero length")]
    ZeroAxis {
        /// The joint.
        joint: String,
    },
    /// Joint limits are inconsistent (lower > upper, negative velocity or effort, NaN).
    #[error("joint '{joint}': invalid limits ({reason})")]
    InvalidLimits {
        /// The joint.
        joint: String,
        /// What is wrong.
        reason: String,
    },
    /// A joint armature that is negative, NaN or infinite.
    #[error("joint '{joint}': armature {value} must be finite and non-negative [kg m² or kg]")]
    InvalidArmature {
        /// The joint.
        joint: String,
        /// The value given.
        value: f64,
    },
    /// A per-joint list has the wrong number of entries.
    #[error("{what}: {got} values given, the model has {expected} joints")]
    LengthMismatch {
        /// Which list (e.g. "armature").
        what: &'static str,
        /// Number of joints.
        expected: usize,
        /// Number of values given.
        got: usize,
    },
    /// A joint moves no inertia about its axis at q = 0: the mass matrix is singular there (detected at build).
    #[error(
        "joint '{joint}': the bodies it moves have no inertia about its axis at q = 0 (singular mass matrix); give \
         them mass and rotational inertia, or the joint an armature"
    )]
    NoInertiaAboutAxis {
        /// The joint.
        joint: String,
    },
    /// The mass matrix is singular at the configuration given to [`crate::try_aba`].
    #[error(
        "joint '{joint}': the mass matrix is singular at this configuration (articulated inertia about the axis \
         {pivot} kg m²); the accelerations are undefined"
    )]
    SingularMassMatrix {
        /// The joint whose articulated inertia about its axis vanished.
        joint: String,
        /// That inertia [kg m²] ([kg] for a prismatic joint); zero, negative round-off or NaN.
        pivot: f64,
    },
    /// No frame of that name.
    #[error("unknown frame '{name}'")]
    UnknownFrame {
        /// The requested name.
        name: String,
    },
    /// The payload id is not attached to this model.
    #[error("payload {id} is not attached to this model")]
    UnknownPayload {
        /// The numeric id.
        id: u64,
    },
    /// An anthropometric input outside the table's validated range.
    #[error("{quantity} = {value} is outside the supported range [{min}, {max}]")]
    OutOfRange {
        /// "body height [m]" or "body mass [kg]".
        quantity: &'static str,
        /// The value given.
        value: f64,
        /// Smallest accepted value.
        min: f64,
        /// Largest accepted value.
        max: f64,
    },
    /// A URDF element or attribute the URDF specification does not have there (a misspelt `<axis>` or `lower=`
    /// would otherwise silently take its default).
    #[error("line {line}: {within}: unknown {item} (known here: {known})")]
    UnknownUrdfItem {
        /// Line of the document (where the element's start tag ends).
        line: usize,
        /// The joint, link or material it belongs to, e.g. `joint 'elbow'`, or the robot.
        within: String,
        /// What is unknown, e.g. `element <axiss> in <joint>` or `attribute lowr= of <limit>`.
        item: String,
        /// What the specification allows there.
        known: String,
    },
    /// A URDF error located in the document: the element (`<joint name="elbow">`) and its line.
    #[error("line {line}: {element}: {source}")]
    AtUrdfElement {
        /// Line of the element's start tag (1-based).
        line: usize,
        /// The element, e.g. `<joint name="elbow">`.
        element: String,
        /// The error.
        #[source]
        source: Box<KinematicsError>,
    },
    /// A patient specification could not be parsed (TOML syntax, unknown key, wrong type).
    #[error("patient spec {file}: {reason}")]
    PatientSpecParse {
        /// File name.
        file: String,
        /// The parser's message (names the key and line).
        reason: String,
    },
    /// A patient-specification value is outside its allowed range.
    #[error("patient spec {file}: {key} = {value} is outside the allowed range {allowed}")]
    PatientSpecValue {
        /// File name.
        file: String,
        /// Dotted key path, e.g. `range_of_motion.elbow_flexion[1]`.
        key: String,
        /// The offending value, as written.
        value: String,
        /// The allowed range with units, e.g. `[1.2, 2.2] m`.
        allowed: &'static str,
    },
    /// A joint is missing from, or unknown to, a patient specification's table.
    #[error("patient spec {file}: {key}: joint `{joint}` {reason}")]
    PatientSpecJoint {
        /// File name.
        file: String,
        /// Dotted key path of the entry, e.g. `range_of_motion.wrist_flexion`.
        key: String,
        /// The joint.
        joint: String,
        /// What is wrong.
        reason: &'static str,
    },
}

impl KinematicsError {
    /// Wraps this error with the file it was found in (for callers that read the URDF text themselves).
    pub fn in_file(self, path: PathBuf) -> Self {
        KinematicsError::InFile { path, source: Box::new(self) }
    }
}

impl KinematicsError {
    /// The error without its URDF location ([`KinematicsError::AtUrdfElement`] unwrapped), for matching on
    /// the kind of error.
    pub fn unlocated(&self) -> &KinematicsError {
        match self {
            KinematicsError::AtUrdfElement { source, .. } => source.unlocated(),
            other => other,
        }
    }
}

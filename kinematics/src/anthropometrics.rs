//! Human arm segment parameters from body height and mass, ready to attach to the exoskeleton as payloads.
//!
//! Source: P. de Leva, "Adjustments to Zatsiorsky–Seluyanov's segment inertia parameters", *Journal of
//! Biomechanics* 29(9):1223–1230, 1996, Table 4 (segment lengths of the reference subjects, mass fractions,
//! centre-of-mass positions and radii of gyration as fractions of segment length). Segment endpoints: upper arm
//! = shoulder joint centre → elbow joint centre; forearm = elbow joint centre → wrist joint centre (stylion);
//! hand = wrist joint centre → third metacarpale (the palm; fingers excluded from the length but included in
//! the mass). Lengths are scaled by stature from the reference subjects (male 1.741 m, female 1.735 m), which is
//! the usual first-order approximation; masses are fractions of body mass.

use nalgebra::{Matrix3, Unit, Vector3};

use crate::{KinematicsError, RigidBody};

/// Biological sex of the reference population of de Leva's table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Sex {
    /// Male reference subjects (stature 1.741 m).
    Male,
    /// Female reference subjects (stature 1.735 m).
    Female,
}

/// One arm segment.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Segment {
    /// Length from the proximal to the distal joint centre [m].
    pub length: f64,
    /// Mass [kg].
    pub mass: f64,
    /// Distance of the centre of mass from the proximal joint centre along the segment [m].
    pub com_from_proximal: f64,
    /// Radii of gyration about the CoM [m]: x = sagittal (flexion) axis, y = transverse (abduction) axis,
    /// z = longitudinal axis.
    pub radius_of_gyration: Vector3<f64>,
}

impl Segment {
    /// The segment as a rigid body in a frame where it starts at `proximal_offset` [m] and points along
    /// `proximal_to_distal`. The two transverse moments are averaged (they differ by < 10 % in the table and
    /// the segment's own sagittal orientation is not known here); the longitudinal moment is about the segment
    /// axis.
    pub fn to_rigid_body(&self, proximal_to_distal: Unit<Vector3<f64>>, proximal_offset: Vector3<f64>) -> RigidBody {
        let d = proximal_to_distal.into_inner();
        let r = self.radius_of_gyration;
        let transverse = self.mass * 0.5 * (r.x * r.x + r.y * r.y);
        let longitudinal = self.mass * r.z * r.z;
        let along = d * d.transpose();
        RigidBody::new(
            self.mass,
            proximal_offset + d * self.com_from_proximal,
            along * longitudinal + (Matrix3::identity() - along) * transverse,
        )
    }
}

/// Upper arm, forearm and hand of one person.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct ArmAnthropometrics {
    /// Shoulder → elbow.
    pub upper_arm: Segment,
    /// Elbow → wrist.
    pub forearm: Segment,
    /// Wrist → palm (third metacarpale); mass includes the fingers.
    pub hand: Segment,
}

/// de Leva 1996, Table 4: (reference length [mm], mass fraction, CoM fraction from proximal,
/// radii of gyration fractions (sagittal, transverse, longitudinal)).
type Row = (f64, f64, f64, [f64; 3]);
const MALE: [Row; 3] = [
    (281.7, 0.0271, 0.5772, [0.285, 0.269, 0.158]),
    (268.9, 0.0162, 0.4574, [0.276, 0.265, 0.121]),
    (86.2, 0.0061, 0.7900, [0.628, 0.513, 0.401]),
];
const FEMALE: [Row; 3] = [
    (275.1, 0.0255, 0.5754, [0.278, 0.260, 0.148]),
    (264.3, 0.0138, 0.4559, [0.261, 0.257, 0.094]),
    (78.0, 0.0056, 0.7474, [0.531, 0.454, 0.335]),
];

/// Accepted body height range [m].
pub const HEIGHT_RANGE: (f64, f64) = (1.0, 2.3);
/// Accepted body mass range [kg].
pub const MASS_RANGE: (f64, f64) = (25.0, 250.0);

fn check_range(quantity: &'static str, value: f64, (min, max): (f64, f64)) -> Result<(), KinematicsError> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(KinematicsError::OutOfRange { quantity, value, min, max })
    }
}

impl ArmAnthropometrics {
    /// Segments of a male adult of `height_m` [m] (1.0–2.3) and `mass_kg` [kg] (25–250).
    pub fn from_height_mass(height_m: f64, mass_kg: f64) -> Result<Self, KinematicsError> {
        Self::from_height_mass_sex(height_m, mass_kg, Sex::Male)
    }

    /// Segments of an adult of `height_m` [m] (1.0–2.3), `mass_kg` [kg] (25–250) and `sex`.
    pub fn from_height_mass_sex(height_m: f64, mass_kg: f64, sex: Sex) -> Result<Self, KinematicsError> {
        check_range("body height [m]", height_m, HEIGHT_RANGE)?;
        check_range("body mass [kg]", mass_kg, MASS_RANGE)?;
        let (table, reference_height) = match sex {
            Sex::Male => (&MALE, 1.741),
            Sex::Female => (&FEMALE, 1.735),
        };
        let segment = |(length_mm, mass_fraction, com_fraction, r): Row| {
            let length = length_mm * 1e-3 * height_m / reference_height;
            Segment {
                length,
                mass: mass_fraction * mass_kg,
                com_from_proximal: com_fraction * length,
                radius_of_gyration: Vector3::new(r[0], r[1], r[2]) * length,
            }
        };
        Ok(ArmAnthropometrics { upper_arm: segment(table[0]), forearm: segment(table[1]), hand: segment(table[2]) })
    }

    /// Total arm mass [kg].
    pub fn total_mass(&self) -> f64 {
        self.upper_arm.mass + self.forearm.mass + self.hand.mass
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_male_reproduces_de_leva_table() {
        let arm = ArmAnthropometrics::from_height_mass(1.741, 73.0).unwrap();
        assert!((arm.upper_arm.length - 0.2817).abs() < 1e-12);
        assert!((arm.forearm.length - 0.2689).abs() < 1e-12);
        assert!((arm.hand.length - 0.0862).abs() < 1e-12);
        assert!((arm.upper_arm.mass - 0.0271 * 73.0).abs() < 1e-12);
        assert!((arm.upper_arm.com_from_proximal - 0.5772 * 0.2817).abs() < 1e-12);
        assert!((arm.forearm.radius_of_gyration.z - 0.121 * 0.2689).abs() < 1e-12);
    }

    #[test]
    fn segments_scale_with_height_and_mass_and_are_plausible() {
        let arm = ArmAnthropometrics::from_height_mass(1.75, 75.0).unwrap();
        // An adult's arm is ~5 % of body mass; upper arm ~0.28 m, forearm ~0.27 m.
        assert!((arm.total_mass() / 75.0 - 0.0494).abs() < 1e-3);
        assert!(arm.upper_arm.length > 0.26 && arm.upper_arm.length < 0.31);
        assert!(arm.forearm.length > 0.25 && arm.forearm.length < 0.29);
        let tall = ArmAnthropometrics::from_height_mass(1.95, 75.0).unwrap();
        assert!((tall.forearm.length / arm.forearm.length - 1.95 / 1.75).abs() < 1e-12);
        let heavy = ArmAnthropometrics::from_height_mass(1.75, 150.0).unwrap();
        assert!((heavy.hand.mass / arm.hand.mass - 2.0).abs() < 1e-12);
        let female = ArmAnthropometrics::from_height_mass_sex(1.75, 75.0, Sex::Female).unwrap();
        assert!(female.forearm.mass < arm.forearm.mass);
    }

    #[test]
    fn out_of_range_inputs_are_rejected_with_the_quantity_named() {
        for (h, m, what) in [
            (0.9, 70.0, "height"),
            (2.4, 70.0, "height"),
            (f64::NAN, 70.0, "height"),
            (1.7, 20.0, "mass"),
            (1.7, 300.0, "mass"),
            (1.7, f64::INFINITY, "mass"),
        ] {
            let e = ArmAnthropometrics::from_height_mass(h, m).unwrap_err();
            assert!(matches!(e, KinematicsError::OutOfRange { .. }));
            assert!(e.to_string().contains(what), "{e}");
        }
    }

    #[test]
    fn rigid_body_places_the_segment_along_the_given_direction() {
        let arm = ArmAnthropometrics::from_height_mass(1.75, 75.0).unwrap();
        let s = arm.forearm;
        let body = s.to_rigid_body(Unit::new_normalize(-Vector3::z()), Vector3::new(0.0, 0.0, -0.1));
        assert!((body.com - Vector3::new(0.0, 0.0, -0.1 - s.com_from_proximal)).norm() < 1e-12);
        let rz = s.radius_of_gyration.z;
        assert!((body.inertia_com[(2, 2)] - s.mass * rz * rz).abs() < 1e-12, "longitudinal about the segment axis");
        assert!(body.inertia_com[(0, 0)] > body.inertia_com[(2, 2)], "transverse moments are larger");
        assert!(body.validate("forearm", true).is_ok());
    }
}
